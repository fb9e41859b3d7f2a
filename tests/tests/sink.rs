//! The PostgreSQL sink (`scf sink postgres`, issue 20) end to end, on real
//! validator processes and a real PostgreSQL server (started by the test
//! in a temporary directory, see `scf_tests::postgres`):
//!
//! - a sink follows a 4-validator network (and its observer) under the
//!   chaos runner's business traffic (credit lines, confirmations, splits,
//!   financing accepted and rejected, freezes, settlements, registrations,
//!   a participant rotating its key and having a lost key recovered), then
//!   through governance: the validators adopt a change of one's voting
//!   power and leave a second change open; another sink into another
//!   database is killed with SIGKILL at random points, at least 20 times,
//!   and restarted; both end with the same rows (counts, sums, and a digest
//!   of every table's content); the SQL answers equal the node's API (the
//!   validator set of every epoch and every proposal included); the
//!   README's example queries run;
//! - a node that serves a tampered block or a tampered event (a proxy in
//!   front of a real node) is refused, naming the height and what differed,
//!   and the database is unchanged;
//! - a financing request rejected and offered again in one block, a batch
//!   after the request: the rejection closes the earlier request only.
//!
//! The kill points come from a seed, printed; replay with `SIM_SEED=<n>`.
//! Each test stages its own network; they run one at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crypto::{Hash, Keypair};
use ledger::governance::{ValidatorChange, ValidatorInfo};
use ledger::{Role, Transaction, TxBody};
use node::api::governance::{ProposalView, ProposalsView, ValidatorSetView};
use node::api::types::{ParticipantView, TokenPage, TokenView, TxState, TxStatusView};
use scf_tests::chaos::history::History;
use scf_tests::chaos::model::Model;
use scf_tests::chaos::net::{ChaosNet, Roster};
use scf_tests::chaos::traffic::Traffic;
use scf_tests::chaos::{self, Liveness, Monitor, Rng};
use scf_tests::cluster::scf_binary;
use scf_tests::governance::Governor;
use scf_tests::postgres::Postgres;
use scf_tests::sink::history::{self, FINANCING_EVERY, HistorySpec};
use scf_tests::sink::proxy::{Proxy, Tamper};
use scf_tests::sink::{self, Snapshot};

/// Transactions a second of business traffic.
const RATE: u32 = 100;
/// How long the traffic runs.
const TRAFFIC: Duration = Duration::from_secs(20);
/// SIGKILLs of the crashing sink, at least.
const KILLS: usize = 24;
/// Longest a sink run to the tip may take.
const SINK_LIMIT: Duration = Duration::from_secs(120);

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn seed() -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos() as u64
        })
}

/// A network whose business traffic is done, every node at one height.
struct Staged {
    net: ChaosNet,
    roster: Roster,
    genesis: PathBuf,
    tip: u64,
}

/// Starts `validators` validators and an observer, calls `before_traffic`
/// (with the network and its genesis file), runs the business traffic for
/// `traffic_for` (with an operator registering and deactivating a
/// participant), and waits for every node to reach one height.
fn stage<T>(
    validators: usize,
    traffic_for: Duration,
    seed: u64,
    before_traffic: impl FnOnce(&ChaosNet, &Path) -> T,
) -> (Staged, T) {
    let roster = Roster::for_rate(RATE);
    let net = ChaosNet::start(scf_binary(), validators, &roster, false)
        .unwrap_or_else(|error| panic!("starting the network: {error}"));
    let genesis = net.home(0).join(node::home::GENESIS_FILE);
    let hooked = before_traffic(&net, &genesis);
    let apis = net.apis();
    let history = Arc::new(
        History::create(&net.dir().join("history.jsonl"), Instant::now())
            .expect("the traffic's history file"),
    );
    let live = Arc::new(Liveness::new(net.len()));
    let monitor = Monitor::start(apis.clone(), Arc::clone(&live), Arc::clone(&history));
    let model = Model::new(
        net.net.genesis.chain_id(),
        &net.net.participant_keys,
        &roster.participants(),
        seed,
        (4, 10),
    );
    let started = Instant::now();
    let mut traffic = Traffic::start(apis.clone(), model, history, Arc::clone(&live), RATE, seed);
    register_and_deactivate(&net, &apis[0]);
    std::thread::sleep(traffic_for.saturating_sub(started.elapsed()));
    traffic.stop(Duration::from_secs(30));
    drop(traffic);
    let tip = chaos::checker::wait_for_convergence(&apis, &live, Duration::from_secs(60))
        .unwrap_or_else(|error| panic!("{error}"));
    drop(monitor);
    let staged = Staged {
        net,
        roster,
        genesis,
        tip,
    };
    (staged, hooked)
}

/// The key-rotation events, which the business traffic does not make, on
/// a newcomer: the operator registers it and an auditor of its own (the
/// traffic's auditors sign with nonces the traffic tracks); the newcomer
/// rotates its key; the operator asks to replace that key as lost and the
/// auditor approves; the operator deactivates the newcomer.
fn register_and_deactivate(net: &ChaosNet, api: &str) {
    let operator = &net.net.participant_keys["operator"];
    let newcomer = Keypair::from_seed(Hash::digest(b"sink test newcomer").0);
    let rotated = Keypair::from_seed(Hash::digest(b"sink test newcomer, rotated").0);
    let recovered = Keypair::from_seed(Hash::digest(b"sink test newcomer, recovered").0);
    let auditor = Keypair::from_seed(Hash::digest(b"sink test recovery auditor").0);
    let steps: [(&Keypair, u64, TxBody); 6] = [
        (
            operator,
            0,
            TxBody::RegisterParticipant {
                key: newcomer.public(),
                name: "newcomer".into(),
                roles: vec![Role::Supplier],
            },
        ),
        (
            operator,
            1,
            TxBody::RegisterParticipant {
                key: auditor.public(),
                name: "recovery auditor".into(),
                roles: vec![Role::Auditor],
            },
        ),
        (
            &newcomer,
            0,
            TxBody::RotateParticipantKey {
                new_key: rotated.public(),
            },
        ),
        (
            operator,
            2,
            TxBody::RequestKeyRecovery {
                participant: newcomer.public(),
                new_key: recovered.public(),
            },
        ),
        (
            &auditor,
            0,
            TxBody::ApproveKeyRecovery {
                participant: newcomer.public(),
                new_key: recovered.public(),
            },
        ),
        (
            operator,
            3,
            TxBody::DeactivateParticipant {
                key: newcomer.public(),
            },
        ),
    ];
    let chain_id = net.net.genesis.chain_id();
    for (signer, nonce, body) in steps {
        let tx = Transaction {
            chain_id,
            signer: signer.public(),
            nonce,
            body,
        }
        .sign(signer);
        let answer: serde_json::Value =
            ureq::post(format!("{api}/v1/txs?wait=commit&timeout_ms=30000"))
                .send_json(serde_json::json!({ "tx": hex::encode(tx.to_bytes()) }))
                .expect("the transaction is answered")
                .body_mut()
                .read_json()
                .expect("a status view");
        assert_eq!(answer["status"], "committed", "{answer}");
    }
}

/// The governance events, which the business traffic does not make, while
/// the reference sink follows: the validators adopt a change of
/// validator-0's power (1 to 2; it proposes, two others approve: 3 of 4)
/// and leave a change of validator-1's open (it proposes, one other
/// approves: 2, short of a quorum in either set). Returns the height every
/// node then reaches.
fn change_the_validator_set(net: &ChaosNet) -> u64 {
    let mut governor = Governor::new(net.net.genesis.chain_id());
    let mut consensus_keys = Vec::new();
    for index in 0..net.validators() {
        let key = genesis::read_key_file(net.home(index).join(node::home::VALIDATOR_KEY_FILE))
            .expect("a validator's key file");
        consensus_keys.push(key.public());
        governor.add_member(net.name(index), key, net.api(index));
    }
    let power = |index: usize, power: u64| ValidatorChange::SetPower {
        consensus_key: consensus_keys[index],
        power,
    };
    let adopted = governor
        .adopt(net.name(0), &[net.name(1), net.name(2)], power(0, 2))
        .unwrap_or_else(|error| panic!("{error}"));
    eprintln!(
        "sink test: validator-0's power is 2 from height {}",
        adopted.effective_from.expect("adopted")
    );
    governor
        .propose(net.name(1), &[net.name(2)], power(1, 2))
        .unwrap_or_else(|error| panic!("{error}"));
    chaos::checker::wait_for_convergence(
        &net.apis(),
        &Liveness::new(net.len()),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

fn connect(postgres: &Postgres, database: &str) -> postgres::Client {
    postgres
        .connect(database)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// A sink that runs until killed, logging to `log`.
fn spawn(binary: &Path, node: &str, genesis: &Path, url: &str, args: &[&str], log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("the sink's log");
    sink::command(binary, node, genesis, url, args)
        .stdout(Stdio::null())
        .stderr(file.try_clone().expect("the log again"))
        .spawn()
        .expect("starting a sink")
}

/// Waits (bounded) until the database's cursor reaches `height`.
fn wait_for_height(client: &mut postgres::Client, height: u64, limit: Duration, log: &Path) {
    let deadline = Instant::now() + limit;
    while sink::cursor_height(client) < height {
        assert!(
            Instant::now() < deadline,
            "the sink did not reach height {height} within {limit:?}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn snapshot(client: &mut postgres::Client) -> Snapshot {
    sink::snapshot(client).unwrap_or_else(|error| panic!("{error}"))
}

/// Runs a sink to the node's tip; returns what it printed.
fn run_to_tip(node: &str, genesis: &Path, url: &str) -> sink::Finished {
    sink::run(
        sink::command(scf_binary(), node, genesis, url, &["--exit-at-tip"]),
        SINK_LIMIT,
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn a_sink_killed_at_random_points_ends_like_one_that_never_crashed_and_answers_like_the_api() {
    let _serial = serial();
    let seed = seed();
    eprintln!("sink test seed {seed} (replay: SIM_SEED={seed})");
    let binary = scf_binary();
    let postgres = Postgres::start(false).unwrap_or_else(|error| panic!("{error}"));
    let logs = tempfile::tempdir().expect("a directory for the sinks' logs");
    let reference_url = postgres
        .create_database("reference")
        .unwrap_or_else(|error| panic!("{error}"));
    let reference_log = logs.path().join("reference.log");
    let metrics_port = node::localnet::free_port().expect("a free port");

    // The reference sink follows the observer from before the first block:
    // it keeps up with a growing chain, and is never killed.
    let (mut staged, mut reference) = stage(4, TRAFFIC, seed, |net, genesis| {
        let metrics = format!("127.0.0.1:{metrics_port}");
        spawn(
            binary,
            &net.api(net.len() - 1),
            genesis,
            &reference_url,
            &["--metrics", &metrics],
            &reference_log,
        )
    });
    staged.tip = change_the_validator_set(&staged.net);
    let Staged {
        net,
        roster,
        genesis,
        tip,
    } = &staged;
    let observer = net.api(net.len() - 1);
    let mut reference_db = connect(&postgres, "reference");
    wait_for_height(
        &mut reference_db,
        *tip,
        Duration::from_secs(60),
        &reference_log,
    );
    check_metrics(metrics_port, *tip);
    let _ = reference.kill();
    let _ = reference.wait();

    // The crashing sink, into a database of its own: killed with SIGKILL
    // at random points and restarted, then run to the tip.
    let crashed_url = postgres
        .create_database("crashed")
        .unwrap_or_else(|error| panic!("{error}"));
    let crashed_log = logs.path().join("crashed.log");
    let mut crashed_db = connect(&postgres, "crashed");
    let mut rng = Rng::new(seed);
    let mut mid_ingest = 0;
    for kill in 0..KILLS {
        let before = sink::cursor_height(&mut crashed_db);
        // Kills spread over the chain: the next after a random part of
        // an even share of what is left.
        let share = (tip.saturating_sub(before) / (KILLS - kill) as u64).max(1);
        let target = before + 1 + rng.below(share);
        let mut child = spawn(
            binary,
            &observer,
            genesis,
            &crashed_url,
            &["--batch-blocks", "1", "--batch-events", "20"],
            &crashed_log,
        );
        if kill % 4 == 3 {
            // Anywhere early: starting, migrating, replaying what it wrote.
            std::thread::sleep(Duration::from_millis(rng.below(400)));
        } else {
            // While it writes: once it has committed up to the target.
            let deadline = Instant::now() + Duration::from_secs(30);
            while sink::cursor_height(&mut crashed_db) < target
                && Instant::now() < deadline
                && child.try_wait().ok().flatten().is_none()
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(rng.below(5)));
        }
        child.kill().expect("SIGKILL the sink");
        child.wait().expect("reap the sink");
        if sink::cursor_height(&mut crashed_db) < *tip {
            mid_ingest += 1;
        }
    }
    eprintln!("sink test: {KILLS} kills, {mid_ingest} before the sink reached the tip {tip}");
    assert!(
        mid_ingest >= 20,
        "only {mid_ingest} of {KILLS} kills landed before the tip: the test did not test (seed {seed})"
    );
    let finished = run_to_tip(&observer, genesis, &crashed_url);
    assert!(finished.status.success(), "{}", finished.stderr);
    assert_eq!(sink::cursor_height(&mut crashed_db), *tip);
    let reference_rows = snapshot(&mut reference_db);
    assert_eq!(
        snapshot(&mut crashed_db),
        reference_rows,
        "the crashed sink's database differs from the reference (seed {seed}; logs in {})",
        logs.keep().display()
    );

    every_kind_was_written(&mut reference_db);
    sql_answers_equal_the_api(&mut reference_db, &observer, net, roster);
    governance_answers_equal_the_api(&mut reference_db, &observer, *tip);
    readme_queries_run(&mut reference_db, &observer, net);
}

#[test]
fn a_node_serving_a_tampered_block_or_event_is_refused_and_the_database_is_unchanged() {
    let _serial = serial();
    let seed = seed();
    eprintln!("sink test seed {seed} (replay: SIM_SEED={seed})");
    let postgres = Postgres::start(false).unwrap_or_else(|error| panic!("{error}"));
    let (staged, ()) = stage(1, Duration::from_secs(8), seed, |_, _| ());
    let node = staged.net.api(0);
    let genesis = &staged.genesis;
    let proxy = Proxy::start(&node);
    let url = postgres
        .create_database("tampered")
        .unwrap_or_else(|error| panic!("{error}"));
    let mut database = connect(&postgres, "tampered");

    // The database holds the chain up to just before a height whose events
    // carry amounts; the proxy then serves that height tampered with.
    let height = height_with_amounts(&node, staged.tip / 2);
    proxy.set(height - 1, Tamper::Nothing);
    let honest = run_to_tip(&proxy.url, genesis, &url);
    assert!(honest.status.success(), "{}", honest.stderr);
    assert_eq!(sink::cursor_height(&mut database), height - 1);
    let before = snapshot(&mut database);

    for (tamper, what) in [
        (Tamper::Block { height }, "tx root mismatch"),
        (Tamper::Event { height }, "the node's feed serves event"),
    ] {
        proxy.set(height, tamper);
        let refused = run_to_tip(&proxy.url, genesis, &url);
        assert!(
            !refused.status.success(),
            "{tamper:?} was not refused: {}",
            refused.stderr
        );
        for part in [
            "refused what node",
            &format!("height {height}: "),
            what,
            "nothing of it was written",
        ] {
            assert!(
                refused.stderr.contains(part),
                "{tamper:?}: the error lacks {part:?}: {}",
                refused.stderr
            );
        }
        assert_eq!(
            snapshot(&mut database),
            before,
            "{tamper:?} changed the database"
        );
    }
    let event = run_to_tip(&proxy.url, genesis, &url);
    assert!(
        event.stderr.contains("amount_minor"),
        "the event's refusal names the field: {}",
        event.stderr
    );

    // The honest node's chain is then taken where the refusals left it.
    proxy.set(u64::MAX, Tamper::Nothing);
    let resumed = run_to_tip(&proxy.url, genesis, &url);
    assert!(resumed.status.success(), "{}", resumed.stderr);
    assert_eq!(sink::cursor_height(&mut database), staged.tip);
}

/// A bank rejects a financing request and, in the same block, the seller
/// offers the token again; the request was written in an earlier batch.
/// The rejection, applied by token to the open requests the database
/// holds, must close the earlier request and leave the new one open. (It
/// closed both once: the batch's new rows are inserted before its
/// decisions on earlier ones, and the sink stopped on its own count check.)
#[test]
fn a_request_rejected_and_offered_again_in_one_batch_leaves_the_new_request_open() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("a temporary directory");
    // One financing round: requests in one block, then the decisions (a
    // rejection and a new offer for suppliers 0 and 10) in the next.
    let spec = HistorySpec {
        suppliers: 20,
        rounds: FINANCING_EVERY,
        cores: 2,
        banks: 2,
    };
    let history =
        history::write(&dir.path().join("net"), &spec).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(history.reoffered.len(), 2, "suppliers 0 and 10 offer again");
    let node = history::serve(scf_binary(), &history).unwrap_or_else(|error| panic!("{error}"));
    let postgres = Postgres::start(false).unwrap_or_else(|error| panic!("{error}"));
    let url = postgres
        .create_database("reoffered")
        .unwrap_or_else(|error| panic!("{error}"));
    // One block a batch: the request and the decisions are two batches.
    let finished = sink::run(
        sink::command(
            scf_binary(),
            &node.api,
            &history.genesis_path,
            &url,
            &["--exit-at-tip", "--batch-blocks", "1"],
        ),
        SINK_LIMIT,
    )
    .unwrap_or_else(|error| panic!("{error}"));
    assert!(finished.status.success(), "{}", finished.stderr);
    let mut database = connect(&postgres, "reoffered");
    assert_eq!(sink::cursor_height(&mut database), history.height);
    for token in &history.reoffered {
        let rows: Vec<(String, i32, bool)> = database
            .query(
                "SELECT status, rate_bps, decision IS NULL FROM financing
                 WHERE token = $1 ORDER BY request",
                &[&token.to_string()],
            )
            .expect("the financing rows")
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
        assert_eq!(rows.len(), 2, "token {token}: {rows:?}");
        assert_eq!(rows[0].0, "rejected", "token {token}: {rows:?}");
        assert!(!rows[0].2, "the rejection is recorded: {rows:?}");
        assert_eq!(
            rows[1],
            ("requested".to_string(), 600, true),
            "token {token}: the new offer stays open"
        );
    }
    let open: i64 = database
        .query_one(
            "SELECT count(*) FROM financing WHERE status = 'requested'",
            &[],
        )
        .expect("a count")
        .get(0);
    assert_eq!(open, 2, "only the new offers are open");
}

/// The first height above `above` with an event that has an amount.
fn height_with_amounts(api: &str, above: u64) -> u64 {
    let mut after = format!("{above:020}-{:010}-{:010}", u32::MAX, u32::MAX);
    for _ in 0..1_000 {
        let page: serde_json::Value =
            chaos::get_json(&format!("{api}/v1/events?after={after}&limit=1000"))
                .unwrap_or_else(|error| panic!("{error}"));
        let events = page["events"].as_array().expect("events");
        if let Some(event) = events.iter().find(|event| event["amount_minor"].is_u64()) {
            return event["height"].as_u64().expect("a height");
        }
        assert!(!events.is_empty(), "no event with an amount above {above}");
        after = page["next"].as_str().expect("next").to_string();
    }
    panic!("no event with an amount above {above} within 1,000 pages");
}

/// `/metrics` of the reference sink shows the tip, no lag, and events.
fn check_metrics(port: u16, tip: u64) {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = ureq::get(&url)
            .call()
            .ok()
            .and_then(|mut answer| answer.body_mut().read_to_string().ok())
            .unwrap_or_default();
        let value = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        };
        if value("scf_sink_height") == Some(tip)
            && value("scf_sink_lag_blocks") == Some(0)
            && value("scf_sink_events_total").is_some_and(|events| events > 0)
            && value("scf_sink_batches_total").is_some_and(|batches| batches > 0)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sink's /metrics never showed height {tip} without lag:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn every_kind_was_written(database: &mut postgres::Client) {
    let kinds: BTreeSet<String> = database
        .query("SELECT DISTINCT kind FROM events", &[])
        .expect("the events' kinds")
        .iter()
        .map(|row| row.get(0))
        .collect();
    eprintln!("sink test: event kinds written: {kinds:?}");
    for kind in [
        "participant_registered",
        "participant_deactivated",
        "credit_line_granted",
        "receivable_confirmed",
        "token_transferred",
        "financing_requested",
        "financing_accepted",
        "receivable_settled",
        "participant_key_rotated",
        "key_recovery_requested",
        "participant_key_recovered",
        "validator_change_proposed",
        "validator_change_approved",
        "validator_change_adopted",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} event was written: {kinds:?}"
        );
    }
}

fn get<T: serde::de::DeserializeOwned>(url: &str) -> T {
    chaos::get_json(url).unwrap_or_else(|error| panic!("{error}"))
}

/// Every unspent token the API lists for `key`, every page.
fn holdings(api: &str, key: &str) -> Vec<TokenView> {
    let mut tokens = Vec::new();
    let mut after = String::new();
    for _ in 0..10_000 {
        let page: TokenPage = get(&format!("{api}/v1/participants/{key}/tokens{after}"));
        tokens.extend(page.tokens);
        match page.next {
            Some(next) => after = format!("?after={next}"),
            None => return tokens,
        }
    }
    panic!("the holdings of {key} did not end within 10,000 pages");
}

/// Participants (with credit lines and holdings), tokens and every event
/// in the database against what the node's API says.
fn sql_answers_equal_the_api(
    database: &mut postgres::Client,
    api: &str,
    net: &ChaosNet,
    roster: &Roster,
) {
    let decimals = net.net.genesis.currency_decimals;
    let money = |minor: i64| ledger::Amount(minor as u64).to_decimal_string(decimals);
    let participants = database
        .query(
            "SELECT p.key, p.name, p.roles, p.active, p.next_nonce, c.limit_minor, c.outstanding_minor
             FROM participants p LEFT JOIN credit_lines c ON c.core = p.key ORDER BY p.key",
            &[],
        )
        .expect("participants");
    assert_eq!(
        participants.len(),
        roster.participants().len() + net.validators() + 2,
        "genesis's participants, the validators' accounts genesis records, the newcomer and its recovery auditor"
    );
    for row in &participants {
        let key: String = row.get(0);
        let view: ParticipantView = get(&format!("{api}/v1/participants/{key}"));
        assert_eq!(view.name, row.get::<_, String>(1));
        assert_eq!(view.roles, row.get::<_, Vec<String>>(2));
        assert_eq!(view.active, row.get::<_, bool>(3));
        assert_eq!(view.next_nonce, row.get::<_, i64>(4) as u64, "{key}");
        let line = row
            .get::<_, Option<i64>>(5)
            .map(|limit| (money(limit), money(row.get::<_, i64>(6))));
        assert_eq!(
            view.credit_line.map(|line| (line.limit, line.outstanding)),
            line,
            "the credit line of {key}"
        );
        let from_api: BTreeMap<String, (u64, String)> = holdings(api, &key)
            .into_iter()
            .map(|token| (token.id.to_string(), (token.amount_minor, token.status)))
            .collect();
        let from_sql: BTreeMap<String, (u64, String)> = database
            .query(
                "SELECT id, amount_minor, status FROM tokens
                 WHERE holder = $1 AND status IN ('active', 'pending')",
                &[&key],
            )
            .expect("holdings")
            .iter()
            .map(|row| {
                (
                    row.get(0),
                    (row.get::<_, i64>(1) as u64, row.get::<_, String>(2)),
                )
            })
            .collect();
        assert_eq!(from_sql, from_api, "the holdings of {key}");
    }
    let tokens = database
        .query(
            "SELECT id, root, parent, holder, amount_minor, status, frozen, created_height
             FROM tokens ORDER BY id",
            &[],
        )
        .expect("tokens");
    assert!(tokens.len() > 100, "only {} tokens", tokens.len());
    for row in tokens.iter().step_by(5) {
        let id: String = row.get(0);
        let view: TokenView = get(&format!("{api}/v1/tokens/{id}"));
        assert_eq!(view.root_id.to_string(), row.get::<_, String>(1));
        assert_eq!(
            view.parent_id.map(|parent| parent.to_string()),
            row.get::<_, Option<String>>(2)
        );
        assert_eq!(view.holder.to_string(), row.get::<_, String>(3));
        assert_eq!(view.amount_minor, row.get::<_, i64>(4) as u64);
        assert_eq!(view.status, row.get::<_, String>(5), "token {id}");
        assert_eq!(view.frozen, row.get::<_, bool>(6));
        assert_eq!(view.created_at, row.get::<_, i64>(7) as u64);
    }
    // Every event of the feed, in order, with the same fields.
    let rows = database
        .query(
            "SELECT cursor, kind, payload::text FROM events ORDER BY cursor",
            &[],
        )
        .expect("events");
    let mut feed = Vec::new();
    let mut after = String::new();
    for _ in 0..10_000 {
        let page: serde_json::Value = get(&format!("{api}/v1/events?limit=1000{after}"));
        let events = page["events"].as_array().expect("events").clone();
        if events.is_empty() {
            break;
        }
        feed.extend(events);
        after = format!("&after={}", page["next"].as_str().expect("next"));
    }
    assert_eq!(
        rows.len(),
        feed.len(),
        "events in the database and the feed"
    );
    keys_follow_the_feed(database, &feed);
    for (row, mut event) in rows.iter().zip(feed) {
        assert_eq!(event["cursor"], row.get::<_, String>(0));
        assert_eq!(event["kind"], row.get::<_, String>(1));
        let object = event.as_object_mut().expect("an event object");
        for common in [
            "cursor",
            "height",
            "tx_index",
            "event_index",
            "block_time",
            "block_time_ms",
            "tx_hash",
            "signer",
        ] {
            object.remove(common);
        }
        let payload: serde_json::Value =
            serde_json::from_str(&row.get::<_, String>(2)).expect("a JSON payload");
        assert_eq!(payload, event, "the payload of {}", row.get::<_, String>(0));
    }
}

/// A validator as a row of `validators` shows it: consensus key, identity,
/// name, peer id, address, power.
type Member = (String, String, String, String, String, u64);

/// An epoch as `validator_epochs` and its members show it: number, first
/// height, member count, total power, members sorted by consensus key.
type Epoch = (u64, u64, usize, u64, Vec<Member>);

fn epoch_of_api(epoch: u64, from_height: u64, validators: &[ValidatorInfo]) -> Epoch {
    let mut members: Vec<Member> = validators
        .iter()
        .map(|validator| {
            (
                validator.consensus_key.to_string(),
                validator.identity.to_string(),
                validator.name.clone(),
                validator.peer_id.to_string(),
                validator.address.clone(),
                validator.power,
            )
        })
        .collect();
    members.sort();
    let total = validators.iter().map(|validator| validator.power).sum();
    (epoch, from_height, validators.len(), total, members)
}

/// The governance tables against the API: the set `GET /v1/validators`
/// answers for each epoch's first height and for the tip is that epoch's
/// row and members, with the later epochs as its scheduled sets; each
/// proposal is what `GET /v1/validators/proposals/{id}` shows (its
/// adopting approval committed at its adoption height, the epoch it made
/// in force from its `effective_from`); the open ones are the list
/// `GET /v1/validators/proposals` gives.
fn governance_answers_equal_the_api(database: &mut postgres::Client, api: &str, tip: u64) {
    let mut epochs: Vec<Epoch> = Vec::new();
    for row in database
        .query(
            "SELECT epoch, from_height, validators, total_power FROM validator_epochs ORDER BY epoch",
            &[],
        )
        .expect("validator epochs")
    {
        let number = row.get::<_, i64>(0);
        let mut members: Vec<Member> = database
            .query(
                "SELECT consensus_key, identity, name, peer_id, address, power FROM validators
                 WHERE epoch = $1",
                &[&number],
            )
            .expect("an epoch's validators")
            .iter()
            .map(|member| {
                (
                    member.get(0),
                    member.get(1),
                    member.get(2),
                    member.get(3),
                    member.get(4),
                    member.get::<_, i64>(5) as u64,
                )
            })
            .collect();
        members.sort();
        epochs.push((
            number as u64,
            row.get::<_, i64>(1) as u64,
            row.get::<_, i32>(2) as usize,
            row.get::<_, i64>(3) as u64,
            members,
        ));
    }
    assert!(
        epochs.len() >= 2,
        "genesis's set and the adopted change's: {epochs:?}"
    );
    let heights = epochs.iter().map(|epoch| epoch.1).chain([tip]);
    for height in heights {
        let view: ValidatorSetView = get(&format!("{api}/v1/validators?height={height}"));
        assert_eq!(view.committed, tip);
        let in_force = epochs
            .iter()
            .rposition(|epoch| epoch.1 <= height)
            .expect("an epoch from height 1");
        assert_eq!(
            epoch_of_api(view.epoch, view.from_height, &view.validators),
            epochs[in_force],
            "the set in force at height {height}"
        );
        assert_eq!(view.total_power, epochs[in_force].3);
        let scheduled: Vec<Epoch> = view
            .scheduled
            .iter()
            .map(|set| epoch_of_api(set.epoch, set.from_height, &set.validators))
            .collect();
        assert_eq!(
            scheduled,
            epochs[in_force + 1..],
            "the sets scheduled after height {height}"
        );
    }

    let proposals = database
        .query(
            "SELECT id, change, details::text, proposer, proposed_height, expires_at, approvals,
                    adopted_height, adopted_by, effective_from, epoch,
                    adopted_height IS NULL AND expires_at > (SELECT height + 1 FROM sink_cursor)
             FROM validator_proposals ORDER BY id",
            &[],
        )
        .expect("validator proposals");
    let mut open = BTreeSet::new();
    let mut adopted = 0;
    for row in &proposals {
        let id: String = row.get(0);
        let view: ProposalView = get(&format!("{api}/v1/validators/proposals/{id}"));
        assert_eq!(view.change.kind(), row.get::<_, String>(1), "{id}");
        let details: serde_json::Value =
            serde_json::from_str(&row.get::<_, String>(2)).expect("a JSON change");
        assert_eq!(
            serde_json::to_value(&view.change).expect("a change serialises"),
            details,
            "{id}"
        );
        assert_eq!(view.proposer.to_string(), row.get::<_, String>(3));
        assert_eq!(view.proposed_at, row.get::<_, i64>(4) as u64);
        assert_eq!(view.expires_at, row.get::<_, i64>(5) as u64);
        let approvals: Vec<String> = view.approvals.iter().map(ToString::to_string).collect();
        assert_eq!(
            approvals,
            row.get::<_, Vec<String>>(6),
            "the approvals of {id}"
        );
        let optional = |column: usize| row.get::<_, Option<i64>>(column).map(|n| n as u64);
        assert_eq!(view.adopted_at, optional(7), "{id}");
        assert_eq!(view.effective_from, optional(9), "{id}");
        if row.get::<_, bool>(11) {
            open.insert(id.clone());
        }
        let status = match (view.adopted_at, row.get::<_, bool>(11)) {
            (Some(_), _) => "adopted",
            (None, true) => "open",
            (None, false) => "expired",
        };
        assert_eq!(view.status, status, "{id}");
        if let (Some(at), Some(from)) = (view.adopted_at, view.effective_from) {
            adopted += 1;
            let by: String = row
                .get::<_, Option<String>>(8)
                .expect("an adopting approval");
            let approval: TxStatusView = get(&format!("{api}/v1/txs/{by}"));
            assert!(
                matches!(approval.status, TxState::Committed { height, .. } if height == at),
                "the approval that adopted {id} committed at {at}: {approval:?}"
            );
            let set: ValidatorSetView = get(&format!("{api}/v1/validators?height={from}"));
            assert_eq!(Some(set.epoch), optional(10), "the epoch {id} made");
        }
    }
    let listed: ProposalsView = get(&format!("{api}/v1/validators/proposals"));
    assert_eq!(listed.committed, tip);
    let listed: BTreeSet<String> = listed
        .proposals
        .iter()
        .map(|proposal| proposal.id.to_string())
        .collect();
    assert_eq!(open, listed, "the open proposals");
    assert!(
        adopted > 0 && !open.is_empty(),
        "the chain has no adopted or no open proposal: {adopted} adopted, {open:?} open"
    );
}

/// The key tables against the feed's key events: every key a participant
/// rotated to (by rotating, or by an approved recovery) is bound to it,
/// each participant signs with the last of them (or its own key), and
/// each requested recovery is recorded with its approval.
fn keys_follow_the_feed(database: &mut postgres::Client, feed: &[serde_json::Value]) {
    let mut bound = BTreeMap::new();
    let mut signing = BTreeMap::new();
    let mut recoveries = BTreeMap::new();
    for event in feed {
        let text = |field: &str| event[field].as_str().expect(field).to_string();
        match event["kind"].as_str().expect("an event's kind") {
            "key_recovery_requested" => {
                recoveries.insert(text("participant"), (text("new_key"), text("signer"), None));
            }
            kind @ ("participant_key_rotated" | "participant_key_recovered") => {
                let (participant, new_key) = (text("participant"), text("new_key"));
                if kind == "participant_key_recovered" {
                    let recovery = recoveries
                        .get_mut(&participant)
                        .expect("a recovery is approved after its request");
                    recovery.2 = Some(text("signer"));
                }
                bound.insert(new_key.clone(), participant.clone());
                signing.insert(participant, new_key);
            }
            _ => {}
        }
    }
    assert!(
        !bound.is_empty() && !recoveries.is_empty(),
        "the chain has no key rotation or recovery"
    );
    let from_sql: BTreeMap<String, String> = database
        .query("SELECT key, participant FROM key_bindings", &[])
        .expect("key bindings")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(from_sql, bound, "the key bindings");
    for row in database
        .query("SELECT key, signing_key FROM participants", &[])
        .expect("signing keys")
    {
        let key: String = row.get(0);
        let expected = signing.get(&key).unwrap_or(&key);
        assert_eq!(
            &row.get::<_, String>(1),
            expected,
            "the signing key of {key}"
        );
    }
    let from_sql: BTreeMap<String, (String, String, Option<String>)> = database
        .query(
            "SELECT participant, new_key, requested_by, approved_by FROM key_recoveries",
            &[],
        )
        .expect("key recoveries")
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3))))
        .collect();
    assert_eq!(from_sql, recoveries, "the key recoveries");
}

/// The README's example queries, from its PostgreSQL sink section.
fn readme_queries() -> Vec<String> {
    let readme =
        std::fs::read_to_string(scf_tests::package_dir().join("../README.md")).expect("README.md");
    let section = readme
        .split("### PostgreSQL sink")
        .nth(1)
        .expect("the README has a PostgreSQL sink section");
    let section = section.split("\n### ").next().unwrap_or(section);
    section
        .split("```sql\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or(block).to_string())
        .collect()
}

/// Each README query runs; the first (outstanding per core enterprise)
/// equals the API, the others agree with the tables they summarise.
fn readme_queries_run(database: &mut postgres::Client, api: &str, net: &ChaosNet) {
    let queries = readme_queries();
    assert_eq!(queries.len(), 4, "the README's example queries");
    let as_text = |query: &str, columns: &str| {
        format!(
            "SELECT {columns} FROM ({}) answer",
            query.trim().trim_end_matches(';')
        )
    };
    // Outstanding confirmed receivables per core enterprise.
    let outstanding: BTreeMap<String, String> = database
        .query(
            &as_text(&queries[0], "core_enterprise, outstanding::text"),
            &[],
        )
        .expect("the README's outstanding query")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let decimals = net.net.genesis.currency_decimals;
    for (name, key) in net
        .net
        .participant_keys
        .iter()
        .filter(|(name, _)| name.starts_with("core-"))
    {
        let view: ParticipantView = get(&format!("{api}/v1/participants/{}", key.public()));
        let expected = view.credit_line.map_or_else(
            || ledger::Amount(0).to_decimal_string(decimals),
            |line| line.outstanding,
        );
        assert_eq!(outstanding.get(name), Some(&expected), "{name}");
    }
    // Tokens held per tier: every unspent token of a supplier, once.
    let held: i64 = database
        .query_one(
            &as_text(&queries[1], "coalesce(sum(tokens_held), 0)::int8"),
            &[],
        )
        .expect("the README's tier query")
        .get(0);
    let unspent: i64 = database
        .query_one(
            "SELECT count(*) FROM tokens t JOIN participants p ON p.key = t.holder
             WHERE 'supplier' = ANY (p.roles) AND t.status IN ('active', 'pending')",
            &[],
        )
        .expect("supplier holdings")
        .get(0);
    assert_eq!(
        held, unspent,
        "the tiers hold every supplier's unspent tokens"
    );
    // Financing per bank per month: every accepted financing, once.
    let financed: i64 = database
        .query_one(
            &as_text(&queries[2], "coalesce(sum(financed), 0)::int8"),
            &[],
        )
        .expect("the README's financing query")
        .get(0);
    let accepted: i64 = database
        .query_one(
            "SELECT count(*) FROM financing WHERE status = 'accepted'",
            &[],
        )
        .expect("accepted financing")
        .get(0);
    assert_eq!(financed, accepted);
    assert!(accepted > 0, "no financing was accepted");
    // Tokens maturing next week: runs (the traffic's matured long ago).
    database
        .query(&queries[3], &[])
        .expect("the README's maturity query");
}
