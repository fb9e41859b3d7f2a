//! End-to-end tests on a real 4-validator testnet: the whole lifecycle of a
//! receivable through the `scf` binary, its JSON outputs field by field, and
//! each user error with its message and exit code.
//!
//! The tests share one testnet (starting one takes seconds) and take turns
//! through a lock, because they sign with the same demo keys (one nonce
//! sequence per key). Each builds its own receivable, so order does not
//! matter. The testnet stops when the test process ends: it watches its
//! standard input, whose other end only this process holds.

mod support;

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::Value;
use support::{Testnet, is_hex, rfc3339_in, scf, unique};

fn testnet() -> MutexGuard<'static, Testnet> {
    static TESTNET: OnceLock<Mutex<Testnet>> = OnceLock::new();
    TESTNET
        .get_or_init(|| Mutex::new(Testnet::start(4)))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a transaction command as `signer` on validator `node`, with --json.
fn tx(net: &Testnet, node: usize, signer: &str, args: &[&str]) -> support::Outcome {
    let api = net.api(node);
    let key = net.key(signer);
    let mut all = vec!["--json", "--node", &api];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--key", &key]);
    scf(&all)
}

fn query(net: &Testnet, args: &[&str]) -> Value {
    let api = net.api(0);
    let mut all = vec!["--json", "--node", &api];
    all.extend_from_slice(args);
    scf(&all).ok_json()
}

fn check_tx_json(outcome: &Value, tokens: usize) {
    assert!(is_hex(&outcome["tx_hash"], 64), "{outcome}");
    assert!(outcome["height"].as_u64().unwrap() >= 1, "{outcome}");
    let created = outcome["tokens"].as_array().unwrap();
    assert_eq!(created.len(), tokens, "{outcome}");
    assert!(created.iter().all(|token| is_hex(token, 64)), "{outcome}");
}

/// Grants core a generous line and confirms a fresh receivable to supplier1;
/// returns the root token id.
fn confirmed_receivable(net: &Testnet, amount: &str, maturity: &str) -> String {
    let core = net.public_key("core");
    let grant = tx(
        net,
        0,
        "bank",
        &[
            "credit",
            "grant",
            "--core",
            &core,
            "--limit",
            "100000000.00",
        ],
    );
    check_tx_json(&grant.ok_json(), 0);
    let supplier1 = net.public_key("supplier1");
    let confirm = tx(
        net,
        1,
        "core",
        &[
            "receivable",
            "confirm",
            "--to",
            &supplier1,
            "--amount",
            amount,
            "--maturity",
            maturity,
            "--invoice",
            &unique("INV"),
        ],
    )
    .ok_json();
    check_tx_json(&confirm, 1);
    confirm["tokens"][0].as_str().unwrap().to_string()
}

#[test]
fn the_whole_lifecycle_commits_and_prints_every_field() {
    let net = testnet();
    let supplier1 = net.public_key("supplier1");
    let supplier2 = net.public_key("supplier2");
    let supplier3 = net.public_key("supplier3");
    let bank = net.public_key("bank");
    let core = net.public_key("core");

    let maturity = rfc3339_in(25);
    let root = confirmed_receivable(&net, "1000000.00", &maturity);

    let shown = query(&net, &["token", "show", &root]);
    assert_eq!(shown["id"], root.as_str());
    assert_eq!(shown["root_id"], root.as_str());
    assert_eq!(shown["parent_id"], Value::Null);
    assert_eq!(shown["issuer"], core.as_str());
    assert_eq!(shown["holder"], supplier1.as_str());
    assert_eq!(shown["amount"], "1000000.00");
    assert_eq!(shown["status"], "active");
    assert!(
        shown["maturity"]
            .as_str()
            .unwrap()
            .starts_with(&maturity[..16]),
        "{shown}"
    );

    // supplier1 pays supplier2 400000.00; 600000.00 comes back as a new token.
    let split = tx(
        &net,
        2,
        "supplier1",
        &[
            "token",
            "transfer",
            &root,
            "--to",
            &supplier2,
            "--amount",
            "400000.00",
        ],
    )
    .ok_json();
    check_tx_json(&split, 2);
    let to_supplier2 = split["tokens"][0].as_str().unwrap().to_string();
    let change = split["tokens"][1].as_str().unwrap().to_string();
    let paid = query(&net, &["token", "show", &to_supplier2]);
    assert_eq!(paid["holder"], supplier2.as_str());
    assert_eq!(paid["amount"], "400000.00");
    assert_eq!(paid["parent_id"], root.as_str());
    assert_eq!(paid["root_id"], root.as_str());
    assert_eq!(paid["issuer"], core.as_str());
    assert_eq!(paid["maturity"], shown["maturity"]);
    let kept = query(&net, &["token", "show", &change]);
    assert_eq!(kept["holder"], supplier1.as_str());
    assert_eq!(kept["amount"], "600000.00");
    assert_eq!(query(&net, &["token", "show", &root])["status"], "spent");

    // A split among two recipients at once.
    let split2 = tx(
        &net,
        3,
        "supplier2",
        &[
            "token",
            "transfer",
            &to_supplier2,
            "--to",
            &supplier3,
            "--amount",
            "150000.00",
            "--to",
            &supplier1,
            "--amount",
            "50000.00",
        ],
    )
    .ok_json();
    check_tx_json(&split2, 3);
    let to_supplier3 = split2["tokens"][0].as_str().unwrap().to_string();

    let holdings = query(&net, &["token", "list", "--holder", &supplier3]);
    let listed = holdings
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["id"] == to_supplier3.as_str())
        .expect("supplier3 holds its token");
    assert_eq!(listed["amount"], "150000.00");
    assert_eq!(listed["holder"], supplier3.as_str());
    assert_eq!(listed["status"], "active");

    // supplier3 finances its part at the bank.
    let request = tx(
        &net,
        0,
        "supplier3",
        &[
            "finance",
            "request",
            &to_supplier3,
            "--bank",
            &bank,
            "--rate",
            "4.35",
        ],
    )
    .ok_json();
    check_tx_json(&request, 0);
    assert_eq!(
        query(&net, &["token", "show", &to_supplier3])["status"],
        "pending"
    );
    let accept = tx(&net, 1, "bank", &["finance", "accept", &to_supplier3]).ok_json();
    check_tx_json(&accept, 1);
    let financed = query(
        &net,
        &["token", "show", accept["tokens"][0].as_str().unwrap()],
    );
    assert_eq!(financed["holder"], bank.as_str());
    assert_eq!(financed["amount"], "150000.00");
    assert_eq!(financed["origin"]["kind"], "financed");

    // The participant and the credit line.
    let core_view = query(&net, &["participant", "show", &core]);
    assert_eq!(core_view["name"], "core");
    assert_eq!(core_view["roles"][0], "core_enterprise");
    assert_eq!(core_view["active"], true);
    assert!(core_view["next_nonce"].as_u64().unwrap() >= 1);
    assert_eq!(core_view["credit_line"]["limit"], "100000000.00");

    // Settle once matured.
    let wait_ms =
        (time::OffsetDateTime::parse(&maturity, &time::format_description::well_known::Rfc3339)
            .unwrap()
            - time::OffsetDateTime::now_utc())
        .whole_milliseconds()
        .max(0) as u64
            + 1_500;
    std::thread::sleep(Duration::from_millis(wait_ms));
    let settle = tx(
        &net,
        2,
        "core",
        &["receivable", "settle", &root, "--payment-ref", "PAY-1"],
    )
    .ok_json();
    check_tx_json(&settle, 0);
    let settled = query(&net, &["token", "show", &change]);
    assert_eq!(settled["status"], "settled");

    // The trace: root at the top, every descendant below with names.
    let trace = query(&net, &["token", "trace", &to_supplier3]);
    assert_eq!(trace["root"]["id"], root.as_str());
    assert_eq!(trace["issuer_name"], "core");
    assert_eq!(trace["root"]["holder_name"], "supplier1");
    let children = trace["root"]["children"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    let api = net.api(0);
    let human = scf(&["--node", &api, "token", "trace", &root]);
    assert_eq!(human.code, 0, "{human:?}");
    for part in [
        "supplier1",
        "supplier2",
        "supplier3",
        "bank",
        "├─",
        "└─",
        "1000000.00",
        "settled",
    ] {
        assert!(
            human.stdout.contains(part),
            "trace lacks {part}:\n{}",
            human.stdout
        );
    }

    // Blocks and status.
    let height = settle["height"].as_u64().unwrap();
    let block = query(&net, &["block", "show", &height.to_string()]);
    assert_eq!(block["height"].as_u64(), Some(height));
    assert!(
        block["txs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["hash"] == settle["tx_hash"])
    );
    assert!(block["certificate"].is_object(), "{block}");
    let status = query(&net, &["status"]);
    assert!(status["height"].as_u64().unwrap() >= height);
    assert!(is_hex(&status["app_hash"], 64));
    assert!(status["peers"].is_array());
    let tx_view = query(&net, &["tx", "show", settle["tx_hash"].as_str().unwrap()]);
    assert_eq!(tx_view["status"], "committed");
}

#[test]
fn a_signer_without_the_role_is_told_which_role_is_needed() {
    let net = testnet();
    let core = net.public_key("core");
    tx(
        &net,
        0,
        "supplier1",
        &["credit", "grant", "--core", &core, "--limit", "10.00"],
    )
    .fails(4, &["wrong role", "supplier1", "bank role"]);
}

#[test]
fn transferring_someone_elses_token_names_the_holder() {
    let net = testnet();
    let root = confirmed_receivable(&net, "1000.00", &rfc3339_in(3600));
    let supplier3 = net.public_key("supplier3");
    tx(
        &net,
        0,
        "supplier2",
        &[
            "token", "transfer", &root, "--to", &supplier3, "--amount", "10.00",
        ],
    )
    .fails(4, &["not the holder", "held by supplier1", "supplier2"]);
}

#[test]
fn transferring_more_than_the_token_holds_shows_both_amounts() {
    let net = testnet();
    let root = confirmed_receivable(&net, "1000000.00", &rfc3339_in(3600));
    let supplier2 = net.public_key("supplier2");
    tx(
        &net,
        0,
        "supplier1",
        &[
            "token",
            "transfer",
            &root,
            "--to",
            &supplier2,
            "--amount",
            "900000.00",
            "--to",
            &supplier2,
            "--amount",
            "300000.00",
        ],
    )
    .fails(4, &["1200000.00", "1000000.00"]);
}

#[test]
fn an_unknown_token_is_not_found() {
    let net = testnet();
    let missing = "ab".repeat(32);
    let api = net.api(0);
    scf(&["--node", &api, "token", "show", &missing]).fails(5, &["unknown token", &missing]);
    let supplier2 = net.public_key("supplier2");
    tx(
        &net,
        0,
        "supplier1",
        &[
            "token", "transfer", &missing, "--to", &supplier2, "--amount", "1.00",
        ],
    )
    .fails(5, &["unknown token"]);
}

#[test]
fn transferring_a_matured_token_is_refused() {
    let net = testnet();
    let root = confirmed_receivable(&net, "500.00", &rfc3339_in(4));
    std::thread::sleep(Duration::from_secs(5));
    let supplier2 = net.public_key("supplier2");
    tx(
        &net,
        0,
        "supplier1",
        &[
            "token", "transfer", &root, "--to", &supplier2, "--amount", "100.00",
        ],
    )
    .fails(4, &["matured", &root, "settle"]);
}

#[test]
fn confirming_an_invoice_twice_is_refused() {
    let net = testnet();
    let core = net.public_key("core");
    tx(
        &net,
        0,
        "bank",
        &[
            "credit",
            "grant",
            "--core",
            &core,
            "--limit",
            "100000000.00",
        ],
    )
    .ok_json();
    let supplier1 = net.public_key("supplier1");
    let invoice = unique("INV-TWICE");
    let maturity = rfc3339_in(3600);
    let args = [
        "receivable",
        "confirm",
        "--to",
        &supplier1,
        "--amount",
        "10.00",
        "--maturity",
        &maturity,
        "--invoice",
        &invoice,
    ];
    tx(&net, 1, "core", &args).ok_json();
    tx(&net, 1, "core", &args).fails(4, &["invoice", &invoice, "already confirmed"]);
}

#[test]
fn an_unregistered_key_is_told_to_ask_an_operator() {
    let net = testnet();
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("stranger.key");
    scf(&["keys", "new", "--out", stranger.to_str().unwrap()]);
    let api = net.api(0);
    scf(&[
        "--node",
        &api,
        "credit",
        "grant",
        "--core",
        &net.public_key("core"),
        "--limit",
        "1.00",
        "--key",
        stranger.to_str().unwrap(),
    ])
    .fails(
        4,
        &["not a registered participant", "scf participant register"],
    );
}

#[test]
fn an_operator_registers_a_participant_who_can_then_receive_tokens() {
    let net = testnet();
    let dir = tempfile::tempdir().unwrap();
    let newcomer = dir.path().join("supplier4.key");
    let key = scf(&["--json", "keys", "new", "--out", newcomer.to_str().unwrap()]).ok_json();
    let key = key["public_key"].as_str().unwrap().to_string();
    let api = net.api(0);
    let operator = net.key("operator");
    let registered = scf(&[
        "--json",
        "--node",
        &api,
        "participant",
        "register",
        "--name",
        &unique("supplier4"),
        "--role",
        "supplier",
        "--key",
        &key,
        "--signer",
        &operator,
    ])
    .ok_json();
    check_tx_json(&registered, 0);
    let view = query(&net, &["participant", "show", &key]);
    assert_eq!(view["roles"][0], "supplier");
    assert_eq!(view["active"], true);
    let root = confirmed_receivable(&net, "100.00", &rfc3339_in(3600));
    tx(
        &net,
        0,
        "supplier1",
        &[
            "token", "transfer", &root, "--to", &key, "--amount", "100.00",
        ],
    )
    .ok_json();
    let holdings = query(&net, &["token", "list", "--holder", &key]);
    assert_eq!(holdings[0]["amount"], "100.00");
}

#[test]
fn audit_verify_of_a_node_passes_with_the_consortium_genesis_or_chain_id() {
    let net = testnet();
    let api = net.api(0);
    let genesis = net.dir.join("genesis.json");
    let by_file = scf(&[
        "--json",
        "--node",
        &api,
        "--genesis",
        genesis.to_str().unwrap(),
        "audit",
        "verify",
    ])
    .ok_json();
    assert_eq!(by_file["verified"], true);
    let chain_id = net.file()["chain_id"].as_str().unwrap().to_string();
    assert_eq!(by_file["chain_id"], chain_id.as_str());
    let by_id = scf(&[
        "--json",
        "--node",
        &api,
        "audit",
        "verify",
        "--chain-id",
        &chain_id,
    ])
    .ok_json();
    assert_eq!(by_id["verified"], true);
}

/// Every line `scf --json events tail ARGS` prints on node 0, as JSON.
fn tail(net: &Testnet, args: &[&str]) -> Vec<Value> {
    let api = net.api(0);
    let mut all = vec!["--json", "--node", &api, "events", "tail"];
    all.extend_from_slice(args);
    let outcome = scf(&all);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    outcome
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line:?}: {error}")))
        .collect()
}

#[test]
fn events_tail_prints_the_feed_as_json_lines_and_follows_new_events() {
    let net = testnet();
    let root = confirmed_receivable(&net, "1000.00", &rfc3339_in(3_600));
    // Committed through node 1: wait (bounded) until node 0 has its events.
    let mut confirmed = Vec::new();
    for _ in 0..100 {
        confirmed = tail(&net, &["--kinds", "receivable_confirmed"]);
        if confirmed.iter().any(|event| event["root"] == root.as_str()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ours = confirmed
        .iter()
        .find(|event| event["root"] == root.as_str())
        .unwrap_or_else(|| panic!("no receivable_confirmed for {root}: {confirmed:?}"));
    assert_eq!(ours["amount"], "1000.00");
    assert_eq!(ours["amount_minor"], 100_000);
    assert_eq!(ours["supplier"], net.public_key("supplier1").as_str());
    assert_eq!(ours["signer"], net.public_key("core").as_str());
    assert!(is_hex(&ours["tx_hash"], 64), "{ours}");
    assert!(
        confirmed
            .iter()
            .all(|event| event["kind"] == "receivable_confirmed")
    );

    // The whole feed: cursors strictly increasing, the filtered events in it.
    let everything = tail(&net, &[]);
    let cursors: Vec<&str> = everything
        .iter()
        .map(|event| event["cursor"].as_str().expect("a cursor"))
        .collect();
    assert!(cursors.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(cursors.contains(&ours["cursor"].as_str().unwrap()));
    // After a cursor: only what follows it.
    let after = tail(&net, &["--after", ours["cursor"].as_str().unwrap()]);
    assert!(
        after
            .iter()
            .all(|event| event["cursor"].as_str() > ours["cursor"].as_str())
    );
    // A party's events all involve it.
    let bank = net.public_key("bank");
    let banks = tail(&net, &["--party", &bank, "--kinds", "credit_line_granted"]);
    assert!(!banks.is_empty());
    assert!(banks.iter().all(|event| event["bank"] == bank.as_str()));

    // Human lines: cursor, time, kind.
    let api = net.api(0);
    let human = scf(&[
        "--node",
        &api,
        "events",
        "tail",
        "--after",
        ours["cursor"].as_str().unwrap(),
    ]);
    assert_eq!(human.code, 0, "{human:?}");
    let last = cursors.last().unwrap();
    // A bad cursor is refused before anything is asked.
    scf(&["--node", &api, "events", "tail", "--after", "12"]).fails(1, &["cursor \"12\""]);
    scf(&["--node", &api, "events", "tail", "--kinds", "nonsense"]).fails(1, &["event kind"]);

    // --follow: started at the end of the feed, it prints the next event.
    let config = tempfile::tempdir().unwrap();
    let mut follower = std::process::Command::new(support::scf_path())
        .args(["--json", "--node", &api, "events", "tail", "--follow"])
        .args(["--after", last])
        .env_remove("SCF_NODE")
        .env_remove("SCF_GENESIS")
        .env("XDG_CONFIG_HOME", config.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("scf starts");
    let stdout = follower.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let supplier2 = net.public_key("supplier2");
    let split = tx(
        &net,
        0,
        "supplier1",
        &[
            "token", "transfer", &root, "--to", &supplier2, "--amount", "10.00",
        ],
    )
    .ok_json();
    let mut seen = None;
    while let Ok(line) = received.recv_timeout(Duration::from_secs(60)) {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["kind"] == "token_transferred" && event["input"] == root.as_str() {
            seen = Some(event);
            break;
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let event = seen.expect("the follower printed the transfer within 60 s");
    assert_eq!(event["tx_hash"], split["tx_hash"]);
    assert_eq!(event["outputs"][0]["holder"], supplier2.as_str());
    assert_eq!(event["outputs"][0]["amount"], "10.00");
    assert_eq!(event["outputs"][1]["amount"], "990.00");
    assert!(
        human
            .stdout
            .lines()
            .all(|line| line.len() > 42 && line.as_bytes()[20] == b'-')
    );
}
