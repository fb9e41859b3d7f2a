//! Mempool fairness on real processes (issue 17): one participant fills
//! every node's mempool with big transactions that wait behind a nonce gap,
//! and another participant's next transaction still commits on every node.
//!
//! Four `scf node start` validators on 127.0.0.1 in a temporary directory,
//! with a small pool (16 MiB) that one signer may fill on its own (its
//! per-signer limit is set above the pool's), so what lets the honest transaction
//! in is eviction, not the per-signer cap; and gapped transactions that do
//! not expire during the test, so expiry does not help either. The flooder
//! submits ~16 KB registrations with nonces next+1, next+2, … (gossip copies
//! them to every node) until every pool is full.
//!
//! Reports each node's peak RSS (VmHWM) and asserts [`RSS_BOUND`]. Every
//! wait is bounded; every child is killed when the test ends, passing or
//! not (the directory is kept on failure, with each node's `node.log`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crypto::{Hash, Keypair};
use ledger::{Role, SignedTransaction, Transaction, TxBody};
use node::api::types::{TxState, TxStatusView};
use node::localnet::{self, LocalNetSpec};
use scf_tests::client;
use scf_tests::cluster::scf_binary;

/// Each node's pool; one signer may hold all of it.
const POOL_BYTES: usize = 16 * 1024 * 1024;
/// Gapped transactions the flooder sends: ~17 MiB, more than a pool holds.
const FLOOD_TXS: u64 = 1_100;
/// A node's peak resident memory must stay under this during the flood:
/// an idle node's ~35 MiB, the 16 MiB pool, and room for a few more
/// pool-fulls of copies in flight (API bodies, gossip batches). Measured:
/// about 55 MiB per node.
const RSS_BOUND: u64 = 160 * 1024 * 1024;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const FILL_TIMEOUT: Duration = Duration::from_secs(30);
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The validator processes; killed when dropped. The directory is kept
/// (and its path printed) when the test panicked.
struct Nodes {
    children: Vec<Child>,
    dir: Option<tempfile::TempDir>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "flood_mempool: kept {} (node logs in */node.log)",
                dir.keep().display()
            );
        }
    }
}

impl Nodes {
    fn peak_rss(&self, index: usize) -> Option<u64> {
        let pid = self.children[index].id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    fn assert_running(&mut self) {
        for (index, child) in self.children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("validator-{index} exited ({status})");
            }
        }
    }
}

/// Replaces the `[mempool]` section of a node's `config.toml`.
fn configure_mempool(home: &Path) {
    let path = home.join(node::home::CONFIG_FILE);
    let text = std::fs::read_to_string(&path).expect("the node's config.toml");
    let mut kept = Vec::new();
    let mut in_mempool = false;
    for line in text.lines() {
        if line.trim_start().starts_with('[') {
            in_mempool = line.trim() == "[mempool]";
        }
        if !in_mempool {
            kept.push(line.to_string());
        }
    }
    kept.push(String::new());
    kept.push("[mempool]".into());
    kept.push(format!("max_bytes = {POOL_BYTES}"));
    // Larger than the pool: no cap per signer at all.
    kept.push(format!("max_bytes_per_sender = {}", 2 * POOL_BYTES));
    kept.push("max_per_sender = 4096".into());
    kept.push("max_nonce_gap = 4096".into());
    kept.push("gap_expiry_blocks = 100000".into());
    std::fs::write(&path, kept.join("\n") + "\n").expect("writing config.toml");
}

/// A registration padded with repeated roles to just under the 16 KiB
/// transaction limit: valid on its own, waiting for nonce 0 forever.
fn big_registration(chain_id: crypto::ChainId, signer: &Keypair, nonce: u64) -> SignedTransaction {
    let padded = |roles: usize| {
        Transaction {
            chain_id,
            signer: signer.public(),
            nonce,
            body: TxBody::RegisterParticipant {
                key: Keypair::from_seed(Hash::digest(&nonce.to_le_bytes()).0).public(),
                name: format!("flood-{nonce}"),
                roles: vec![Role::Supplier; roles],
            },
        }
        .sign(signer)
    };
    let overhead = padded(1).to_bytes().len() - 1;
    padded(ledger::transaction::MAX_TX_BYTES - overhead)
}

fn tx_state(api: &str, hash: &ledger::TxHash) -> Option<TxState> {
    client::get_json::<TxStatusView>(&format!("{api}/v1/txs/{hash}"))
        .ok()
        .map(|view| view.status)
}

/// The value of a metric (its first sample) in a node's `/metrics`.
fn metric(api: &str, name: &str) -> f64 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let text = agent
        .get(format!("{api}/metrics"))
        .call()
        .ok()
        .and_then(|mut answer| answer.body_mut().read_to_string().ok())
        .unwrap_or_default();
    text.lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_flood_of_gapped_big_transactions_cannot_keep_another_signers_next_transaction_out() {
    // Built (or found up to date) before the clock starts.
    let binary = scf_binary();
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("flood-mempool-")
        .tempdir()
        .expect("a temporary directory");
    let net = localnet::create(
        dir.path(),
        &LocalNetSpec {
            chain_name: "flood-mempool".into(),
            validators: 4,
            observers: 0,
            participants: vec![
                ("flooder".into(), vec![Role::Operator]),
                ("honest".into(), vec![Role::Operator]),
            ],
            consensus: localnet::local_consensus(),
        },
    )
    .expect("creating the local network");
    let mut nodes = Nodes {
        children: Vec::new(),
        dir: Some(dir),
    };
    for node in &net.nodes {
        configure_mempool(&node.home);
        let log = std::fs::File::create(node.home.join("node.log")).expect("the node's log");
        nodes.children.push(
            Command::new(binary)
                .args(["node", "start", "--home"])
                .arg(&node.home)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("the log file again"))
                .stderr(log)
                .spawn()
                .expect("starting an scf node process"),
        );
    }
    let apis: Vec<String> = net
        .nodes
        .iter()
        .map(|node| format!("http://{}", node.api))
        .collect();
    let deadline = Instant::now() + START_TIMEOUT;
    for api in &apis {
        while client::status(api).is_err() {
            nodes.assert_running();
            assert!(Instant::now() < deadline, "{api} did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let chain_id = net.genesis.chain_id();
    let flooder = &net.participant_keys["flooder"];
    let honest = &net.participant_keys["honest"];

    // The flood: nonces 1..=FLOOD_TXS (0 never comes), spread over the
    // nodes; gossip copies each to the others.
    let mut accepted = 0;
    for nonce in 1..=FLOOD_TXS {
        let api = &apis[nonce as usize % apis.len()];
        if matches!(
            client::submit(api, &big_registration(chain_id, flooder, nonce)),
            200 | 202
        ) {
            accepted += 1;
        }
    }
    let deadline = Instant::now() + FILL_TIMEOUT;
    let full_enough = POOL_BYTES - 2 * ledger::transaction::MAX_TX_BYTES;
    loop {
        let sizes: Vec<usize> = apis
            .iter()
            .map(|api| client::status(api).map_or(0, |status| status.mempool_bytes))
            .collect();
        if sizes.iter().all(|bytes| *bytes >= full_enough) {
            eprintln!("flood_mempool: {accepted} of {FLOOD_TXS} accepted; pools {sizes:?} bytes");
            break;
        }
        nodes.assert_running();
        assert!(
            Instant::now() < deadline,
            "the pools did not fill: {sizes:?} bytes of {POOL_BYTES}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let flooder_refused: f64 = apis
        .iter()
        .map(|api| {
            metric(
                api,
                "scf_mempool_refused_txs_total{reason=\"mempool_full\"}",
            )
        })
        .sum();
    assert!(flooder_refused > 0.0, "the flood overflowed the pools");

    // The honest participant's next transaction, submitted to one node.
    let honest_tx = client::registration(chain_id, honest, 0, 17);
    let hash = honest_tx.hash();
    let code = client::submit(&apis[1], &honest_tx);
    assert_eq!(code, 202, "the honest transaction is taken by a full pool");
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    let mut committed = vec![false; apis.len()];
    while !committed.iter().all(|done| *done) {
        for (index, api) in apis.iter().enumerate() {
            if !committed[index] {
                committed[index] = matches!(tx_state(api, &hash), Some(TxState::Committed { .. }));
            }
        }
        nodes.assert_running();
        assert!(
            Instant::now() < deadline,
            "the honest transaction did not commit on every node within {COMMIT_TIMEOUT:?}: {committed:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let evicted: Vec<f64> = apis
        .iter()
        .map(|api| metric(api, "scf_mempool_evicted_txs_total"))
        .collect();
    assert!(
        evicted[1] >= 1.0,
        "the node it was submitted to evicted a gapped transaction for it: {evicted:?}"
    );

    let mut peaks = Vec::new();
    for index in 0..apis.len() {
        let peak = nodes
            .peak_rss(index)
            .expect("reading the node's /proc/PID/status");
        peaks.push(peak);
    }
    let mib: Vec<u64> = peaks.iter().map(|peak| peak >> 20).collect();
    eprintln!(
        "flood_mempool: committed on every node after {:.1} s; evicted per node {evicted:?}; peak RSS per node {mib:?} MiB (bound {} MiB)",
        started.elapsed().as_secs_f64(),
        RSS_BOUND >> 20
    );
    for (index, peak) in peaks.iter().enumerate() {
        assert!(
            *peak < RSS_BOUND,
            "validator-{index} peaked at {} MiB, over the {} MiB bound",
            peak >> 20,
            RSS_BOUND >> 20
        );
    }
}
