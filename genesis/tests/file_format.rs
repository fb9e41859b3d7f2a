//! Reading and writing genesis files: round trips, defaults, and parse errors
//! that say where the problem is.

mod common;

use common::{key, sample};
use genesis::{ConsensusParams, Genesis, GenesisError, ValidationError};

fn sample_json() -> serde_json::Value {
    serde_json::from_str(&sample().to_json_pretty()).unwrap()
}

fn parse(value: &serde_json::Value) -> Result<Genesis, GenesisError> {
    Genesis::from_json(&value.to_string())
}

#[test]
fn saved_genesis_loads_back_equal_with_the_same_chain_id() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("genesis.json");
    let genesis = sample();
    genesis.save(&path).unwrap();
    let loaded = Genesis::load(&path).unwrap();
    assert_eq!(loaded, genesis);
    assert_eq!(loaded.chain_id(), genesis.chain_id());
}

#[test]
fn saved_file_writes_every_consensus_parameter() {
    let json = sample_json();
    let consensus = json["consensus"].as_object().unwrap();
    for field in [
        "timeout_propose_ms",
        "timeout_prevote_ms",
        "timeout_precommit_ms",
        "timeout_delta_ms",
        "max_block_txs",
        "max_block_bytes",
    ] {
        assert!(consensus.contains_key(field), "{field} missing from {json}");
    }
}

#[test]
fn documented_example_parses() {
    let text = format!(
        r#"{{
          "chain_name": "acme-supply-chain",
          "currency_code": "CNY",
          "currency_decimals": 2,
          "genesis_time_ms": 1767225600000,
          "validators": [
            {{ "name": "bank-a", "public_key": "{validator}", "peer_id": "12D3KooWBankA",
               "address": "/ip4/10.0.0.1/tcp/26656", "voting_power": 1 }}
          ],
          "observers": [
            {{ "name": "auditor-node", "peer_id": "12D3KooWAudit", "address": "/ip4/10.0.0.9/tcp/26656" }}
          ],
          "participants": [
            {{ "name": "consortium-admin", "public_key": "{admin}", "roles": ["operator"] }}
          ],
          "consensus": {{ "timeout_propose_ms": 3000, "max_block_txs": 2000, "heartbeat_interval_ms": 5000 }}
        }}"#,
        validator = key(1),
        admin = key(11),
    );
    let genesis = Genesis::from_json(&text).unwrap();
    assert_eq!(genesis.validators[0].public_key, key(1));
    assert_eq!(genesis.consensus.heartbeat_interval_ms, Some(5000));
    assert_eq!(
        genesis.consensus.timeout_prevote_ms,
        ConsensusParams::default().timeout_prevote_ms
    );
}

#[test]
fn omitted_observers_and_consensus_take_defaults() {
    let mut json = sample_json();
    let object = json.as_object_mut().unwrap();
    object.remove("observers");
    object.remove("consensus");
    let genesis = parse(&json).unwrap();
    assert!(genesis.observers.is_empty());
    assert_eq!(genesis.consensus, ConsensusParams::default());
}

#[test]
fn bad_validator_key_hex_names_the_field_and_the_entry() {
    let mut json = sample_json();
    json["validators"][1]["public_key"] = "not-hex".into();
    let error = parse(&json).unwrap_err();
    let Some(ValidationError::BadKey {
        field,
        entry,
        reason,
    }) = error.validation_error()
    else {
        panic!("expected BadKey, got {error}");
    };
    assert_eq!(
        (field.as_str(), entry.as_str()),
        ("validators[1].public_key", "core-b")
    );
    assert!(reason.contains("64 hex digits"), "{reason}");
    assert!(
        error
            .to_string()
            .contains("validators[1].public_key of \"core-b\""),
        "{error}"
    );
}

#[test]
fn bad_participant_key_hex_names_the_field_and_the_entry() {
    let mut json = sample_json();
    json["participants"][2]["public_key"] = "ab".repeat(31).into();
    let error = parse(&json).unwrap_err();
    assert!(
        matches!(
            error.validation_error(),
            Some(ValidationError::BadKey { field, entry, .. })
                if field == "participants[2].public_key" && entry == "core-b"
        ),
        "{error}"
    );
}

#[test]
fn key_hex_may_be_uppercase_or_0x_prefixed() {
    let mut json = sample_json();
    json["validators"][0]["public_key"] = format!("0x{}", key(1).to_hex().to_uppercase()).into();
    assert_eq!(parse(&json).unwrap(), sample());
}

#[test]
fn genesis_time_must_be_integer_milliseconds() {
    for time in [
        serde_json::json!("2026-01-01T00:00:00Z"),
        serde_json::json!(-1),
        serde_json::json!(1.5),
    ] {
        let mut json = sample_json();
        json["genesis_time_ms"] = time.clone();
        let error = parse(&json).unwrap_err();
        assert!(matches!(error, GenesisError::Json(_)), "{time}: {error}");
    }
}

#[test]
fn unknown_fields_are_refused_at_every_level() {
    let paths: [fn(&mut serde_json::Value) -> &mut serde_json::Value; 5] = [
        |json| json,
        |json| &mut json["validators"][0],
        |json| &mut json["observers"][0],
        |json| &mut json["participants"][0],
        |json| &mut json["consensus"],
    ];
    for path in paths {
        let mut json = sample_json();
        path(&mut json)["voting_pwer"] = 1.into();
        let error = parse(&json).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `voting_pwer`"),
            "{error}"
        );
    }
}

#[test]
fn missing_required_field_is_named() {
    let mut json = sample_json();
    json.as_object_mut().unwrap().remove("currency_code");
    let error = parse(&json).unwrap_err();
    assert!(
        error.to_string().contains("missing field `currency_code`"),
        "{error}"
    );
}

#[test]
fn deserializing_through_serde_also_validates() {
    let mut json = sample_json();
    json["participants"][0]["roles"] = serde_json::json!(["bank"]);
    let error = serde_json::from_value::<Genesis>(json).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no participant has the operator role"),
        "{error}"
    );
}

#[test]
fn load_errors_name_the_path() {
    let directory = tempfile::tempdir().unwrap();

    let missing = directory.path().join("missing.json");
    let error = Genesis::load(&missing).unwrap_err();
    assert!(
        matches!(&error, GenesisError::Read { path, .. } if *path == missing),
        "{error}"
    );
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );

    let malformed = directory.path().join("malformed.json");
    std::fs::write(&malformed, "{ \"chain_name\": ").unwrap();
    let error = Genesis::load(&malformed).unwrap_err();
    let GenesisError::InFile { path, error: inner } = &error else {
        panic!("expected InFile, got {error}");
    };
    assert_eq!(path, &malformed);
    assert!(matches!(**inner, GenesisError::Json(_)), "{error}");
    assert!(
        error.to_string().contains(&malformed.display().to_string()),
        "{error}"
    );

    let invalid = directory.path().join("invalid.json");
    let mut genesis = sample();
    genesis.validators.clear();
    std::fs::write(&invalid, genesis.to_json_pretty()).unwrap();
    let error = Genesis::load(&invalid).unwrap_err();
    assert_eq!(
        error.validation_error(),
        Some(&ValidationError::NoValidators)
    );
    assert!(
        error.to_string().contains(&invalid.display().to_string()),
        "{error}"
    );
}

#[test]
fn save_refuses_an_invalid_genesis_and_writes_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("genesis.json");
    let mut genesis = sample();
    genesis.currency_decimals = 40;
    let error = genesis.save(&path).unwrap_err();
    assert!(
        matches!(
            error,
            GenesisError::Invalid(ValidationError::DecimalsTooLarge { .. })
        ),
        "{error}"
    );
    assert!(!path.exists());
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_read_and_one_at_it_is_parsed() {
    let directory = tempfile::tempdir().unwrap();
    let huge = directory.path().join("huge.json");
    // Sparse: no disk is used, and nothing is read.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(genesis::MAX_GENESIS_FILE_BYTES + 1)
        .unwrap();
    let error = Genesis::load(&huge).unwrap_err();
    assert!(
        matches!(&error, GenesisError::TooLarge { path, size, max }
            if *path == huge && *size == genesis::MAX_GENESIS_FILE_BYTES + 1
                && *max == genesis::MAX_GENESIS_FILE_BYTES),
        "{error}"
    );
    assert!(
        error.to_string().contains(&huge.display().to_string()),
        "{error}"
    );

    // At the limit exactly, the file is read and parsed.
    let at_limit = directory.path().join("at-limit.json");
    let mut text = sample().to_json_pretty();
    let padding = usize::try_from(genesis::MAX_GENESIS_FILE_BYTES).unwrap() - text.len();
    text.push_str(&" ".repeat(padding));
    std::fs::write(&at_limit, &text).unwrap();
    let loaded = Genesis::load(&at_limit).expect("trailing whitespace is JSON");
    assert_eq!(loaded, sample());
}
