//! What the CLI trusts: the chain id and currency decimals it signs with come
//! from a genesis the user trusts (`--genesis FILE`, or the node's genesis
//! pinned on first use), and a node that contradicts it is refused before
//! anything is signed or sent. `audit verify --node` never takes its genesis
//! from the node it audits. The nodes here are fakes (`support/fake_node.rs`)
//! that lie in one way each.

mod support;

use std::path::{Path, PathBuf};

use support::fake_node::{self, Answers, FakeNode};
use support::{scf, scf_with_config};

/// A genesis written by `scf genesis new`, and the same chain with 8
/// currency decimals (so another chain id).
struct Chains {
    _dir: tempfile::TempDir,
    genesis: PathBuf,
    chain_id: String,
    eight_decimals: PathBuf,
    eight_decimals_id: String,
    key: PathBuf,
}

fn chain_id_of(path: &Path) -> String {
    scf(&["--json", "genesis", "validate", path.to_str().unwrap()]).ok_json()["chain_id"]
        .as_str()
        .expect("chain_id")
        .to_string()
}

fn chains() -> Chains {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    scf(&[
        "--json",
        "genesis",
        "new",
        "--chain",
        "trust-test",
        "--validators",
        "1",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok_json();
    let genesis = out.join("genesis.json");
    let mut altered: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&genesis).unwrap()).unwrap();
    altered["currency_decimals"] = 8.into();
    let eight_decimals = dir.path().join("eight.json");
    std::fs::write(&eight_decimals, altered.to_string()).unwrap();
    Chains {
        chain_id: chain_id_of(&genesis),
        eight_decimals_id: chain_id_of(&eight_decimals),
        key: out.join("keys").join("operator.key"),
        genesis,
        eight_decimals,
        _dir: dir,
    }
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// A node that serves `genesis` and reports `chain_id` with `decimals`.
fn answers(genesis: &Path, chain_id: &str, decimals: u8) -> Answers {
    Answers {
        status: fake_node::status(chain_id, "trust-test", "CNY", decimals),
        genesis: text(genesis),
    }
}

/// A transaction the fake node must never receive.
fn grant<'a>(node: &'a str, key: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--node", node];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "credit",
        "grant",
        "--core",
        "1111111111111111111111111111111111111111111111111111111111111111",
        "--limit",
        "1000.00",
        "--key",
        key.to_str().unwrap(),
    ]);
    args
}

#[test]
fn cli_refuses_a_node_reporting_another_chain() {
    let chains = chains();
    // Self-consistent: the 8-decimal genesis and its own chain id.
    let node = FakeNode::start(answers(
        &chains.eight_decimals,
        &chains.eight_decimals_id,
        8,
    ));
    let genesis = chains.genesis.to_str().unwrap();
    let outcome = scf(&grant(&node.url, &chains.key, &["--genesis", genesis]));
    outcome.fails(
        4,
        &[
            &node.url,
            &chains.eight_decimals_id,
            &chains.chain_id,
            genesis,
            "--genesis FILE",
        ],
    );
    node.was_only_asked_who_it_is();
    assert!(!node.requests().is_empty(), "the node was asked its status");
}

#[test]
fn cli_refuses_a_node_reporting_other_decimals_for_the_trusted_chain() {
    let chains = chains();
    let node = FakeNode::start(answers(&chains.genesis, &chains.chain_id, 8));
    let genesis = chains.genesis.to_str().unwrap();
    scf(&grant(&node.url, &chains.key, &["--genesis", genesis])).fails(
        4,
        &[&node.url, "currency decimals 8", "says 2", &chains.chain_id],
    );
    node.was_only_asked_who_it_is();
    // The same lie is refused with a genesis pinned on first use.
    scf(&grant(&node.url, &chains.key, &[])).fails(4, &["currency decimals 8", "says 2"]);
    node.was_only_asked_who_it_is();
}

#[test]
fn cli_pins_a_node_on_first_use_and_refuses_it_on_another_chain_later() {
    let chains = chains();
    let config = tempfile::tempdir().unwrap();
    let node = FakeNode::start(answers(&chains.genesis, &chains.chain_id, 2));
    let first = scf_with_config(config.path(), &["--node", &node.url, "status"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first.stderr.contains("note: first use of node"),
        "{first:?}"
    );
    assert!(first.stderr.contains(&chains.chain_id), "{first:?}");
    let pinned = config
        .path()
        .join("scf")
        .join("genesis")
        .join(format!("{}.json", chains.chain_id));
    assert_eq!(chain_id_of(&pinned), chains.chain_id);
    let again = scf_with_config(config.path(), &["--node", &node.url, "status"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        !again.stderr.contains("first use"),
        "pinned once: {again:?}"
    );

    // The node now serves a self-consistent chain of its own, 8 decimals.
    node.set(answers(
        &chains.eight_decimals,
        &chains.eight_decimals_id,
        8,
    ));
    let before = node.requests().len();
    let refused = scf_with_config(config.path(), &grant(&node.url, &chains.key, &[]));
    refused.fails(
        4,
        &[
            &node.url,
            &chains.eight_decimals_id,
            &chains.chain_id,
            "pinned",
            "remove",
            config.path().join("scf").join("nodes").to_str().unwrap(),
        ],
    );
    assert_eq!(node.requests()[before..], ["GET /v1/status".to_string()]);
}

#[test]
fn first_use_is_reported_as_one_json_line_with_json() {
    let chains = chains();
    let config = tempfile::tempdir().unwrap();
    let node = FakeNode::start(answers(&chains.genesis, &chains.chain_id, 2));
    let outcome = scf_with_config(config.path(), &["--json", "--node", &node.url, "status"]);
    let status = outcome.ok_json();
    assert_eq!(status["chain_id"], chains.chain_id.as_str());
    let note: serde_json::Value = serde_json::from_str(outcome.stderr.trim())
        .unwrap_or_else(|error| panic!("stderr is one JSON line ({error}): {outcome:?}"));
    assert_eq!(note["note"], "pinned_on_first_use");
    assert_eq!(note["node"], node.url.as_str());
    assert_eq!(note["chain_id"], chains.chain_id.as_str());
    assert_eq!(note["currency_decimals"], 2);
}

#[test]
fn cli_refuses_a_node_whose_genesis_is_not_the_chain_it_reports() {
    let chains = chains();
    let config = tempfile::tempdir().unwrap();
    // Reports the real chain id but serves the 8-decimal genesis.
    let node = FakeNode::start(answers(&chains.eight_decimals, &chains.chain_id, 8));
    scf_with_config(config.path(), &grant(&node.url, &chains.key, &[])).fails(
        4,
        &[
            &node.url,
            &chains.chain_id,
            &chains.eight_decimals_id,
            "hashes to",
        ],
    );
    node.was_only_asked_who_it_is();
    let nodes = config.path().join("scf").join("nodes");
    assert!(
        !nodes.exists() || std::fs::read_dir(&nodes).unwrap().next().is_none(),
        "nothing was pinned"
    );
}

#[test]
fn audit_verify_of_a_node_without_a_trusted_genesis_is_refused() {
    let chains = chains();
    let node = FakeNode::start(answers(&chains.genesis, &chains.chain_id, 2));
    scf(&["--node", &node.url, "audit", "verify"])
        .fails(2, &[&node.url, "--genesis FILE", "--chain-id HEX", "trust"]);
    assert!(node.requests().is_empty(), "{:?}", node.requests());
}

#[test]
fn audit_verify_refuses_a_node_serving_another_chain_than_the_trusted_one() {
    let chains = chains();
    // A fake chain, consistent with the genesis it serves.
    let node = FakeNode::start(answers(
        &chains.eight_decimals,
        &chains.eight_decimals_id,
        8,
    ));
    let genesis = chains.genesis.to_str().unwrap();
    let parts = [
        node.url.as_str(),
        chains.eight_decimals_id.as_str(),
        chains.chain_id.as_str(),
        "not the chain you trust",
    ];
    scf(&["--node", &node.url, "--genesis", genesis, "audit", "verify"]).fails(1, &parts);
    scf(&[
        "--node",
        &node.url,
        "audit",
        "verify",
        "--chain-id",
        &chains.chain_id,
    ])
    .fails(1, &parts);
    assert!(
        node.requests()
            .iter()
            .all(|request| request == "GET /v1/genesis"),
        "no block was read: {:?}",
        node.requests()
    );
}
