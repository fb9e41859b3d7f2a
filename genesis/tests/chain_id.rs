//! The chain id: the same definition always gives the same id, whatever its
//! JSON layout; any change of meaning gives another; and the byte layout is
//! pinned by a golden vector.

mod common;

use common::{key, sample};
use genesis::{CHAIN_ID_DOMAIN, Genesis};

#[test]
fn json_layout_does_not_change_the_chain_id() {
    let genesis = sample();
    let pretty = genesis.to_json_pretty();
    // serde_json's Value sorts object keys, so this is compact and reordered.
    let value: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    let compact_sorted = serde_json::to_string(&value).unwrap();
    assert_ne!(pretty, compact_sorted);
    assert!(compact_sorted.starts_with(r#"{"chain_name":"acme-supply-chain","consensus":"#));
    let reparsed = Genesis::from_json(&compact_sorted).unwrap();
    assert_eq!(reparsed.chain_id(), genesis.chain_id());
}

#[test]
fn omitted_parameters_hash_like_their_written_defaults() {
    let mut value: serde_json::Value = serde_json::from_str(&sample().to_json_pretty()).unwrap();
    value.as_object_mut().unwrap().remove("consensus");
    let omitted = Genesis::from_json(&value.to_string()).unwrap();
    assert_eq!(omitted.chain_id(), sample().chain_id());
}

#[test]
fn role_order_does_not_change_the_chain_id() {
    let mut genesis = sample();
    genesis.participants[4].roles.reverse();
    assert_eq!(genesis.chain_id(), sample().chain_id());
}

type Change = fn(&mut Genesis);

#[test]
fn any_change_of_meaning_changes_the_chain_id() {
    let changes: Vec<(&str, Change)> = vec![
        ("chain name", |genesis| genesis.chain_name.push('2')),
        ("currency code", |genesis| {
            genesis.currency_code = "USD".to_owned()
        }),
        ("currency decimals", |genesis| genesis.currency_decimals = 3),
        ("genesis time", |genesis| genesis.genesis_time_ms += 1),
        ("validator name", |genesis| {
            genesis.validators[0].name.push('2')
        }),
        ("validator key", |genesis| {
            genesis.validators[0].public_key = key(99)
        }),
        ("validator peer id", |genesis| {
            genesis.validators[0].peer_id.push('2')
        }),
        ("validator address", |genesis| {
            genesis.validators[0].address.push('0')
        }),
        ("validator power", |genesis| {
            genesis.validators[2].voting_power += 1
        }),
        ("validator order", |genesis| genesis.validators.swap(0, 1)),
        ("validator removed", |genesis| {
            genesis.validators.pop();
        }),
        ("observer name", |genesis| {
            genesis.observers[0].name.push('2')
        }),
        ("observer peer id", |genesis| {
            genesis.observers[0].peer_id.push('2')
        }),
        ("observer address", |genesis| {
            genesis.observers[0].address.push('0')
        }),
        ("observer removed", |genesis| genesis.observers.clear()),
        ("participant name", |genesis| {
            genesis.participants[1].name.push('2')
        }),
        ("participant key", |genesis| {
            genesis.participants[1].public_key = key(99)
        }),
        ("participant role", |genesis| {
            genesis.participants[3].roles = vec!["bank".to_owned()]
        }),
        ("participant role added", |genesis| {
            genesis.participants[3].roles.push("auditor".to_owned())
        }),
        ("participant order", |genesis| {
            genesis.participants.swap(1, 2)
        }),
        ("timeout propose", |genesis| {
            genesis.consensus.timeout_propose_ms += 1
        }),
        ("timeout prevote", |genesis| {
            genesis.consensus.timeout_prevote_ms += 1
        }),
        ("timeout precommit", |genesis| {
            genesis.consensus.timeout_precommit_ms += 1
        }),
        ("timeout delta", |genesis| {
            genesis.consensus.timeout_delta_ms += 1
        }),
        ("max block txs", |genesis| {
            genesis.consensus.max_block_txs += 1
        }),
        ("max block bytes", |genesis| {
            genesis.consensus.max_block_bytes += 1
        }),
        ("heartbeat", |genesis| {
            genesis.consensus.heartbeat_interval_ms = Some(1_000)
        }),
    ];
    let original = sample().chain_id();
    let mut seen = std::collections::BTreeMap::new();
    for (what, change) in changes {
        let mut genesis = sample();
        change(&mut genesis);
        let id = genesis.chain_id();
        assert_ne!(id, original, "changing the {what} kept the chain id");
        if let Some(other) = seen.insert(id, what) {
            panic!("changing the {what} and the {other} gave the same chain id");
        }
    }
}

#[test]
fn strings_are_length_prefixed_so_moving_text_between_fields_changes_the_id() {
    let mut one = sample();
    one.chain_name = "ab".to_owned();
    one.currency_code = "CNYX".to_owned();
    let mut two = sample();
    two.chain_name = "abC".to_owned();
    two.currency_code = "NYX".to_owned();
    assert_ne!(one.chain_id(), two.chain_id());
}

/// A small fixed genesis. Its keys are those of seeds [1; 32] and [11; 32].
const GOLDEN_GENESIS: &str = r#"{
  "chain_name": "golden",
  "currency_code": "CNY",
  "currency_decimals": 2,
  "genesis_time_ms": 1700000000000,
  "validators": [
    {
      "name": "v1",
      "public_key": "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
      "peer_id": "12D3KooWGolden",
      "address": "/ip4/127.0.0.1/tcp/26656",
      "voting_power": 1
    }
  ],
  "participants": [
    {
      "name": "admin",
      "public_key": "66be7e332c7a453332bd9d0a7f7db055f5c5ef1a06ada66d98b39fb6810c473a",
      "roles": ["supplier", "operator"]
    }
  ]
}"#;

/// The canonical bytes, spelled out: a change here is a new chain format.
#[test]
fn golden_genesis_has_the_pinned_canonical_form_and_chain_id() {
    let genesis = Genesis::from_json(GOLDEN_GENESIS).unwrap();
    let string = |text: &str| {
        [
            (text.len() as u32).to_le_bytes().as_slice(),
            text.as_bytes(),
        ]
        .concat()
    };
    let mut expected = CHAIN_ID_DOMAIN.to_vec();
    expected.extend(string("golden"));
    expected.extend(string("CNY"));
    expected.push(2);
    expected.extend(1_700_000_000_000u64.to_le_bytes());
    expected.extend(1u32.to_le_bytes()); // one validator
    expected.extend(string("v1"));
    expected.extend(key(1).0);
    expected.extend(string("12D3KooWGolden"));
    expected.extend(string("/ip4/127.0.0.1/tcp/26656"));
    expected.extend(1u64.to_le_bytes());
    expected.extend(0u32.to_le_bytes()); // no observers
    expected.extend(1u32.to_le_bytes()); // one participant
    expected.extend(string("admin"));
    expected.extend(key(11).0);
    expected.extend(2u32.to_le_bytes()); // roles, sorted
    expected.extend(string("operator"));
    expected.extend(string("supplier"));
    for default in [3_000u64, 1_000, 1_000, 500, 2_000, 1 << 20] {
        expected.extend(default.to_le_bytes());
    }
    expected.push(0); // no heartbeat
    assert_eq!(
        hex::encode(genesis.canonical_bytes()),
        hex::encode(&expected)
    );

    assert_eq!(
        genesis.chain_id().to_string(),
        "45109118abffcb8211c092ff0ffa77a7c2c356e1e7653e8d17662c260b94d219"
    );
}
