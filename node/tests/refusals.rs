//! What a node refuses: peers not in genesis, and transactions that can
//! never be valid, each with its reason at the API.

mod common;

use std::time::Duration;

use common::{Net, serial};
use crypto::{ChainId, Hash, Keypair};
use ledger::{Amount, Transaction, TxBody};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn the_api_refuses_another_chain_a_bad_signature_and_an_unregistered_key_with_reasons() {
    let _serial = serial();
    let mut net = Net::create(1, 0);
    net.start_all();
    let core = net.key("core").public();

    let mut other_chain = net.sign_at(
        "bank",
        0,
        TxBody::GrantCreditLine {
            core,
            limit: Amount(1),
        },
    );
    other_chain.tx.chain_id = ChainId(Hash::digest(b"another consortium"));
    let other_chain = other_chain.tx.clone().sign(net.key("bank"));
    let (code, body) = net.submit(0, &other_chain, false);
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"], "wrong_chain");
    assert!(body["detail"].as_str().unwrap().contains("chain"), "{body}");

    let mut forged = net.sign_at(
        "bank",
        0,
        TxBody::GrantCreditLine {
            core,
            limit: Amount(2),
        },
    );
    forged.tx.body = TxBody::GrantCreditLine {
        core,
        limit: Amount(3),
    };
    let (code, body) = net.submit(0, &forged, false);
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"], "bad_signature");

    let stranger = Keypair::from_seed([77; 32]);
    let unregistered = Transaction {
        chain_id: net.net.genesis.chain_id(),
        signer: stranger.public(),
        nonce: 0,
        body: TxBody::GrantCreditLine {
            core,
            limit: Amount(4),
        },
    }
    .sign(&stranger);
    let (code, body) = net.submit(0, &unregistered, false);
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"], "unknown_participant");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&stranger.public().to_string())
    );

    // Not hex, not a transaction, not JSON: 400 with what to send.
    let mut answer = net
        .agent
        .post(format!("{}/v1/txs", net.api(0)))
        .send_json(serde_json::json!({ "tx": "zz" }))
        .expect("API reachable");
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.body_mut().read_json().unwrap();
    assert_eq!(body["error"], "bad_hex");
    let mut answer = net
        .agent
        .post(format!("{}/v1/txs", net.api(0)))
        .send_json(serde_json::json!({ "tx": "00ff" }))
        .expect("API reachable");
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.body_mut().read_json().unwrap();
    assert_eq!(body["error"], "malformed_transaction");

    // A valid one goes through, and the same again is a duplicate or a replay.
    let grant = net.sign(
        "bank",
        TxBody::GrantCreditLine {
            core,
            limit: Amount(5),
        },
    );
    net.commit(0, &grant);
    let (code, body) = net.submit(0, &grant, false);
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"], "replay");

    // The block that holds it lists it, alone or with the block's hex.
    let (code, status) = net.get(0, &format!("/v1/txs/{}", grant.hash()));
    assert_eq!(code, 200, "{status}");
    let height = status["height"].as_u64().expect("committed at a height");
    let (code, txs) = net.get(0, &format!("/v1/blocks/{height}/txs"));
    assert_eq!(code, 200, "{txs}");
    let (_, block) = net.get(0, &format!("/v1/blocks/{height}"));
    assert_eq!(txs["hash"], block["hash"]);
    assert_eq!(txs["txs"], block["txs"]);
    assert!(txs.get("block_hex").is_none());
    let listed = txs["txs"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|tx| tx["hash"] == grant.hash().to_string() && tx["kind"] == "grant_credit_line"),
        "{txs}"
    );
    let (code, _) = net.get(0, "/v1/blocks/999/txs");
    assert_eq!(code, 404);

    // The raw form: the same bytes as the view's hex, borsh, unparsed.
    let raw = raw_block(&net, height);
    assert_eq!(raw.height, height);
    assert_eq!(
        hex::encode(&raw.block),
        block["block_hex"].as_str().unwrap()
    );
    assert_eq!(
        raw.certificate.as_deref().map(hex::encode).as_deref(),
        block["certificate_hex"].as_str()
    );
    let (code, body) = net.get(0, "/v1/blocks/999/raw");
    assert_eq!(code, 404, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("last committed height")
    );
    let (code, body) = net.get(0, "/v1/blocks/tall/raw");
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"], "bad_height");

    // Unknown things are 404 with a JSON error.
    let (code, body) = net.get(0, &format!("/v1/tokens/{}", Hash::digest(b"nothing")));
    assert_eq!(code, 404);
    assert_eq!(body["error"], "not_found");
    let (code, body) = net.get(0, "/v1/blocks/999");
    assert_eq!(code, 404);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("last committed height")
    );
    let (code, body) = net.get(0, "/v1/tokens/not-hex");
    assert_eq!(code, 400);
    assert_eq!(body["error"], "bad_token_id");
}

#[test]
fn a_peer_not_in_genesis_can_neither_connect_nor_inject_transactions() {
    let _serial = serial();
    // Two validators and one listed observer; the observer's home then gets
    // a node key that genesis does not list: it becomes a stranger that
    // knows every address and the chain.
    let mut net = Net::create(2, 1);
    let rogue_home = net.home(2);
    std::fs::remove_file(rogue_home.join(node::home::NODE_KEY_FILE)).unwrap();
    let rogue_key = Keypair::generate();
    genesis::write_key_file(
        rogue_home.join(node::home::NODE_KEY_FILE),
        &rogue_key,
        genesis::Overwrite::Refuse,
    )
    .unwrap();
    let rogue_peer = node::network::identity::peer_id_of(&rogue_key).to_string();
    net.start_all();

    // A transaction signed by a registered participant, given to the rogue.
    let core = net.key("core").public();
    let grant = net.sign(
        "bank",
        TxBody::GrantCreditLine {
            core,
            limit: Amount(9),
        },
    );
    let (code, body) = net.submit(2, &grant, false);
    assert_eq!(code, 202, "the rogue's own API takes it: {body}");

    std::thread::sleep(Duration::from_secs(5));
    for validator in 0..2 {
        let status = net.status(validator);
        assert!(
            !status.peers.contains(&rogue_peer),
            "validator {validator} lists the rogue as a peer"
        );
        assert_eq!(status.peers.len(), 1, "validators see each other only");
        let (code, _) = net.get(validator, &format!("/v1/txs/{}", grant.hash()));
        assert_eq!(
            code, 404,
            "the rogue's transaction reached validator {validator}"
        );
    }
    assert_eq!(net.status(2).peer_count, 0, "the rogue has no peers");
    // The validators still work.
    net.wait_for(LIMIT, "validators to stay up", || {
        net.status(0).peer_count == 1
    });
}

/// `GET /v1/blocks/{height}/raw`, decoded.
fn raw_block(net: &Net, height: u64) -> node::api::types::RawBlockAnswer {
    let url = format!("{}/v1/blocks/{height}/raw", net.api(0));
    let mut answer = net.agent.get(&url).call().expect("the node answers");
    assert_eq!(answer.status().as_u16(), 200, "{url}");
    let bytes = answer.body_mut().read_to_vec().expect("the answer's bytes");
    borsh::from_slice(&bytes).expect("a borsh RawBlockAnswer")
}
