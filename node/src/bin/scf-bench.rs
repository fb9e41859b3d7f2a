//! `scf-bench`: the load generator. Starts a local network of validator
//! processes in a temporary directory, submits signed transfers from many
//! accounts as fast as the network takes them, and prints what it measured.
//!
//! ```text
//! cargo run --release --bin scf-bench -- --validators 4 --seconds 20 --json
//! ```
//!
//! Each account holds one token and transfers it to itself over and over:
//! every transfer spends the token the previous one created (its id is
//! derived from the transaction hash, so the next transfer can be signed
//! before the previous one commits), keeping up to `--depth` transfers in
//! flight per account. Accounts are shared among `--senders` threads, each
//! submitting in batches (`POST /v1/txs/batch`) to one validator. The first
//! `--presign` transfers are signed before the clock starts, so that the
//! generator's own signing (about 25 µs each) takes less of the CPU the nodes
//! share with it; the rest are signed while the load runs. Commits are observed by
//! reading every new block's transaction list from the first validator; latency is from the
//! submission to the moment its block was seen (the poll adds ≤ 20 ms).
//!
//! The nodes are this same binary, re-run with the hidden `node` command;
//! each logs to `node.log` in its home at the level `SCF_BENCH_NODE_LOG`
//! gives (default `warn`; `info` shows each block's timings).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use crypto::{Hash, Keypair};
use ledger::{Amount, Role, Timestamp, TokenId, Transaction, TxBody, TxHash};
use node::api::types::{BatchResult, BlockTxsView, StatusView, SubmitBatch};
use node::localnet::{self, LocalNetSpec};
use parking_lot::Mutex;
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(
    name = "scf-bench",
    version,
    about = "Load generator for a local scfledger network"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Hidden>,
    /// Validator processes to start.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// How long to submit load, after the set-up.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Accounts sending transfers.
    #[arg(long, default_value_t = 400)]
    accounts: usize,
    /// Transfers in flight per account. Latency is what the load makes it:
    /// more in flight queues more in the mempool (see the README's figures).
    #[arg(long, default_value_t = 10)]
    depth: usize,
    /// Threads that sign and submit (at least one per validator); each owns
    /// a share of the accounts and submits to one validator.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Transfers signed before the load starts (spread over the accounts);
    /// the rest are signed while it runs. 0 signs everything on the fly.
    #[arg(long, default_value_t = 400_000)]
    presign: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the network's files here instead of a temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Hidden {
    /// Runs one node (how the benchmark starts its validators).
    #[command(hide = true)]
    Node {
        #[arg(long)]
        home: PathBuf,
    },
}

#[derive(Serialize, Debug)]
struct Report {
    validators: usize,
    accounts: usize,
    seconds: f64,
    presigned_tx: usize,
    submitted_tx: u64,
    committed_tx: u64,
    committed_tx_per_s: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    blocks: u64,
    peak_rss_mib: f64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Hidden::Node { home }) = cli.command {
        return run_node(&home);
    }
    let temporary;
    let dir = match &cli.dir {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::tempdir().context("creating a temporary directory")?;
            temporary.path().to_path_buf()
        }
    };
    let report = bench(&cli, &dir)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} validators, {} accounts: {} transactions committed in {:.1} s = {:.0} tx/s; latency p50 {:.0} ms, p99 {:.0} ms; {} blocks; largest node {:.0} MiB",
            report.validators,
            report.accounts,
            report.committed_tx,
            report.seconds,
            report.committed_tx_per_s,
            report.latency_p50_ms,
            report.latency_p99_ms,
            report.blocks,
            report.peak_rss_mib
        );
    }
    Ok(())
}

fn run_node(home: &Path) -> anyhow::Result<()> {
    let config = node::NodeConfig::load(home, &node::Overrides::default())?;
    node::init_logging(&config.config);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        node::run(config, shutdown).await
    })?;
    Ok(())
}

/// Child processes, killed when dropped.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One sending account, owned by one sender thread.
struct Account {
    /// Its place in `in_flight`.
    index: usize,
    key: Keypair,
    token: TokenId,
    nonce: u64,
    /// Its next transfers, signed before the load started (hash, hex).
    presigned: std::collections::VecDeque<(TxHash, String)>,
}

impl Account {
    /// Signs the account's next transfer: it spends the token the previous
    /// one created (whose id follows from that transaction's hash).
    fn sign_next(&mut self, chain_id: crypto::ChainId) -> (TxHash, String) {
        let tx = Transaction {
            chain_id,
            signer: self.key.public(),
            nonce: self.nonce,
            body: TxBody::Transfer {
                token: self.token,
                outputs: vec![ledger::Output {
                    recipient: self.key.public(),
                    amount: Amount(1_000_000),
                }],
            },
        }
        .sign(&self.key);
        let hash = tx.hash();
        self.token = TokenId::derive(&hash, 0);
        self.nonce += 1;
        (hash, hex::encode(tx.to_bytes()))
    }

    fn next(&mut self, chain_id: crypto::ChainId) -> (TxHash, String) {
        match self.presigned.pop_front() {
            Some(next) => next,
            None => self.sign_next(chain_id),
        }
    }
}

fn bench(cli: &Cli, dir: &Path) -> anyhow::Result<Report> {
    if cli.validators == 0 || cli.accounts == 0 {
        bail!("--validators and --accounts must be at least 1");
    }
    let mut participants = vec![
        ("bank".to_string(), vec![Role::Bank]),
        ("core".to_string(), vec![Role::CoreEnterprise]),
    ];
    participants.push(("operator".to_string(), vec![Role::Operator]));
    for index in 0..cli.accounts {
        participants.push((format!("account-{index}"), vec![Role::Supplier]));
    }
    let net = localnet::create(
        dir,
        &LocalNetSpec {
            chain_name: "scf-bench".into(),
            validators: cli.validators,
            observers: 0,
            participants,
            consensus: localnet::local_consensus(),
        },
    )?;
    let chain_id = net.genesis.chain_id();
    let exe = std::env::current_exe()?;
    let mut children = Nodes(Vec::new());
    for node in &net.nodes {
        let log = std::fs::File::create(node.home.join("node.log"))?;
        children.0.push(
            Command::new(&exe)
                .args(["node", "--home"])
                .arg(&node.home)
                .env(
                    "RUST_LOG",
                    std::env::var("SCF_BENCH_NODE_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting a validator process")?,
        );
    }
    let apis: Vec<String> = net
        .nodes
        .iter()
        .map(|node| format!("http://{}", node.api))
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    for api in &apis {
        wait_until(Duration::from_secs(60), || {
            agent.get(format!("{api}/v1/status")).call().is_ok()
        })
        .with_context(|| {
            format!(
                "node at {api} did not start; see its node.log in {}",
                dir.display()
            )
        })?;
    }

    // Set-up: a credit line, then one receivable per account.
    let keys = &net.participant_keys;
    let bank = &keys["bank"];
    let core = &keys["core"];
    let sign = |key: &Keypair, nonce: u64, body: TxBody| {
        Transaction {
            chain_id,
            signer: key.public(),
            nonce,
            body,
        }
        .sign(key)
    };
    let grant = sign(
        bank,
        0,
        TxBody::GrantCreditLine {
            core: core.public(),
            limit: Amount(u64::MAX / 4),
        },
    );
    submit_and_wait(&agent, &apis[0], &[grant.to_bytes()])?;
    let maturity = Timestamp(4_102_444_800_000); // 2100-01-01
    let mut accounts = Vec::new();
    let mut confirmations = Vec::new();
    for index in 0..cli.accounts {
        let key = keys[&format!("account-{index}")].clone();
        let confirm = sign(
            core,
            index as u64,
            TxBody::ConfirmReceivable {
                supplier: key.public(),
                amount: Amount(1_000_000),
                maturity,
                invoice_ref: Hash::digest(format!("bench-invoice-{index}").as_bytes()),
            },
        );
        accounts.push(Account {
            index,
            token: TokenId::derive(&confirm.hash(), 0),
            key,
            nonce: 0,
            presigned: Default::default(),
        });
        confirmations.push(confirm.to_bytes());
    }
    // One core enterprise signs them all: a chunk stays within the
    // mempool's default limit per signer (512 pending).
    for chunk in confirmations.chunks(500) {
        submit_and_wait(&agent, &apis[0], chunk)?;
    }
    let start_height = status(&agent, &apis[0])?.height;

    // Load: each sender thread owns a share of the accounts and submits to
    // one validator; signing happens outside every lock.
    let threads = cli.senders.max(apis.len());
    let mut shares: Vec<Vec<Account>> = (0..threads).map(|_| Vec::new()).collect();
    for (index, account) in accounts.into_iter().enumerate() {
        shares[index % threads].push(account);
    }
    // Signing costs the machine the nodes run on about 25 µs a transfer;
    // what can be signed before the clock starts is.
    let per_account = cli.presign.div_ceil(cli.accounts);
    let signers: Vec<_> = shares
        .into_iter()
        .map(|mut share| {
            std::thread::spawn(move || {
                for account in &mut share {
                    for _ in 0..per_account {
                        let next = account.sign_next(chain_id);
                        account.presigned.push_back(next);
                    }
                }
                share
            })
        })
        .collect();
    let shares: Vec<Vec<Account>> = signers
        .into_iter()
        .map(|signer| signer.join().expect("a signing thread panicked"))
        .collect();
    let in_flight: Arc<Vec<AtomicUsize>> =
        Arc::new((0..cli.accounts).map(|_| AtomicUsize::new(0)).collect());
    let pending: Arc<Mutex<HashMap<TxHash, (usize, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let submitted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for (thread, mut share) in shares.into_iter().enumerate() {
        let in_flight = Arc::clone(&in_flight);
        let pending = Arc::clone(&pending);
        let stop = Arc::clone(&stop);
        let submitted = Arc::clone(&submitted);
        let agent = agent.clone();
        let api = apis[thread % apis.len()].clone();
        let depth = cli.depth;
        senders.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut batch = Vec::new();
                let mut hashes = Vec::new();
                let now = Instant::now();
                for account in &mut share {
                    if in_flight[account.index].load(Ordering::Relaxed) >= depth {
                        continue;
                    }
                    let (hash, hex) = account.next(chain_id);
                    in_flight[account.index].fetch_add(1, Ordering::Relaxed);
                    hashes.push((hash, (account.index, now)));
                    batch.push(hex);
                }
                if batch.is_empty() {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                pending.lock().extend(hashes);
                let count = batch.len() as u64;
                match agent
                    .post(format!("{api}/v1/txs/batch"))
                    .send_json(SubmitBatch { txs: batch })
                {
                    Ok(mut answer) => {
                        let results: Vec<BatchResult> =
                            answer.body_mut().read_json().unwrap_or_default();
                        let refused = results
                            .iter()
                            .filter(|r| matches!(r, BatchResult::Refused { .. }))
                            .count();
                        if let Some(BatchResult::Refused { detail, .. }) = results
                            .iter()
                            .find(|r| matches!(r, BatchResult::Refused { .. }))
                        {
                            eprintln!("{refused} transactions refused, e.g.: {detail}");
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        submitted.fetch_add(count - refused as u64, Ordering::Relaxed);
                    }
                    Err(error) => {
                        eprintln!("submission to {api} failed: {error}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }));
    }

    // Observe commits on the first validator.
    let mut latencies: Vec<f64> = Vec::new();
    let mut committed = 0u64;
    let mut next_height = start_height + 1;
    let load_time = Duration::from_secs(cli.seconds);
    let mut peak_rss = 0u64;
    while started.elapsed() < load_time {
        let latest = status(&agent, &apis[0])?.height;
        while next_height <= latest {
            let block: BlockTxsView = agent
                .get(format!("{}/v1/blocks/{next_height}/txs", apis[0]))
                .call()?
                .body_mut()
                .with_config()
                .limit(256 << 20)
                .read_json()?;
            let seen = Instant::now();
            let mut pending = pending.lock();
            for tx in &block.txs {
                if let Some((account, at)) = pending.remove(&tx.hash) {
                    in_flight[account].fetch_sub(1, Ordering::Relaxed);
                    latencies.push((seen - at).as_secs_f64() * 1_000.0);
                    committed += 1;
                }
            }
            next_height += 1;
        }
        for child in &children.0 {
            peak_rss = peak_rss.max(rss_kib(child.id()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        let _ = sender.join();
    }
    drop(children);
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            latencies[((latencies.len() - 1) as f64 * p).round() as usize]
        }
    };
    Ok(Report {
        validators: cli.validators,
        accounts: cli.accounts,
        seconds: elapsed,
        presigned_tx: per_account * cli.accounts,
        submitted_tx: submitted.load(Ordering::Relaxed),
        committed_tx: committed,
        committed_tx_per_s: committed as f64 / elapsed,
        latency_p50_ms: percentile(0.50),
        latency_p99_ms: percentile(0.99),
        blocks: next_height - start_height - 1,
        peak_rss_mib: peak_rss as f64 / 1024.0,
    })
}

fn status(agent: &ureq::Agent, api: &str) -> anyhow::Result<StatusView> {
    Ok(agent
        .get(format!("{api}/v1/status"))
        .call()?
        .body_mut()
        .read_json()?)
}

/// Submits encoded transactions in one batch and waits until all commit.
fn submit_and_wait(agent: &ureq::Agent, api: &str, txs: &[Vec<u8>]) -> anyhow::Result<()> {
    let results: Vec<BatchResult> = agent
        .post(format!("{api}/v1/txs/batch"))
        .send_json(SubmitBatch {
            txs: txs.iter().map(hex::encode).collect(),
        })?
        .body_mut()
        .read_json()?;
    let mut hashes = Vec::new();
    for result in results {
        match result {
            BatchResult::Accepted { tx_hash } => hashes.push(tx_hash),
            BatchResult::Refused { error, detail } => {
                bail!("set-up transaction refused: {error}: {detail}")
            }
        }
    }
    let last = *hashes.last().context("nothing submitted")?;
    wait_until(Duration::from_secs(120), || {
        agent
            .get(format!("{api}/v1/txs/{last}"))
            .call()
            .ok()
            .and_then(|mut answer| answer.body_mut().read_json::<serde_json::Value>().ok())
            .is_some_and(|value| value["status"] == "committed")
    })
    .context("set-up transactions did not commit")?;
    Ok(())
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out after {} s", limit.as_secs())
}

/// Resident set size of a process, from /proc (0 when unavailable).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}
