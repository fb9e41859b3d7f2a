//! `scf testnet --validators N --dir DIR`: a local network of N validator
//! processes on 127.0.0.1 with the demo participants, run until Ctrl-C.
//!
//! The first run writes the network (`setup.rs`) and `DIR/testnet.json`;
//! a later run on the same DIR resumes the same chain: same genesis, homes
//! and data (the libp2p ports are part of genesis, so they are kept; an API
//! port taken by something else is replaced in that node's config.toml).
//!
//! Each validator is a child `scf node start --home DIR/validator-i`, logging
//! to `DIR/validator-i/node.log`. The children never outlive this process:
//! each reads its standard input, whose other end only this process holds,
//! and stops when it closes; on Ctrl-C or SIGTERM this process closes them
//! all and waits (then kills what is left); `kill_on_drop` covers panics.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use ledger::Role;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, ChildStdin, Command};

use crate::client::NodeClient;
use crate::node_cmd;
use crate::output::emit;
use crate::setup::{self, Network, NetworkSpec};

pub const TESTNET_FILE: &str = "testnet.json";
const LOG_FILE: &str = "node.log";
/// How long the validators get to answer on their API after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a validator gets to stop cleanly before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The demo consortium registered in a testnet's genesis.
pub fn demo_participants() -> Vec<(&'static str, Vec<Role>)> {
    vec![
        ("operator", vec![Role::Operator]),
        ("bank", vec![Role::Bank]),
        ("core", vec![Role::CoreEnterprise]),
        ("supplier1", vec![Role::Supplier]),
        ("supplier2", vec![Role::Supplier]),
        ("supplier3", vec![Role::Supplier]),
        ("auditor", vec![Role::Auditor]),
    ]
}

#[derive(Args, Debug, Clone)]
pub struct TestnetArgs {
    /// How many validators (on a resumed DIR, the existing count is kept).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// The network's directory: created on the first run, resumed after.
    #[arg(long)]
    pub dir: PathBuf,
    /// The chain's name (first run only).
    #[arg(long, default_value = "scf-testnet")]
    pub chain: String,
    /// Also stop when standard input closes (for a parent process).
    #[arg(long, hide = true)]
    pub stop_on_stdin_eof: bool,
}

/// `DIR/testnet.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestnetFile {
    pub chain_id: String,
    pub chain_name: String,
    pub validators: Vec<TestnetValidator>,
    /// Demo participant name → key file.
    pub keys: BTreeMap<String, PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestnetValidator {
    pub name: String,
    /// The HTTP API's URL, e.g. http://127.0.0.1:8701.
    pub api: String,
    pub home: PathBuf,
    pub log: PathBuf,
}

impl TestnetFile {
    pub fn load(dir: &Path) -> anyhow::Result<TestnetFile> {
        let path = dir.join(TESTNET_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (made by `scf testnet`)", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The key file of a demo participant.
    pub fn key(&self, name: &str) -> anyhow::Result<&Path> {
        self.keys
            .get(name)
            .map(PathBuf::as_path)
            .with_context(|| format!("the testnet has no key for {name:?}"))
    }
}

pub fn run(args: TestnetArgs, json: bool) -> anyhow::Result<()> {
    let dir = absolute(&args.dir)?;
    let network = prepare(&dir, args.validators, &args.chain)?;
    let file = write_testnet_file(&dir, &network)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(supervise(&file, json, args.stop_on_stdin_eof))
}

fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))
}

/// Writes a new network into `dir`, or checks and reuses the one there.
fn prepare(dir: &Path, validators: usize, chain: &str) -> anyhow::Result<Network> {
    if !dir.join(setup::GENESIS_FILE).exists() {
        let spec = NetworkSpec {
            chain_name: chain.to_string(),
            validators,
            participants: demo_participants(),
            consensus: node::localnet::local_consensus(),
        };
        return setup::write_network(dir, &spec);
    }
    let mut network = setup::read_network(dir)?;
    if network.validators.len() != validators {
        eprintln!(
            "note: {} holds a chain of {} validators; resuming it as it is",
            dir.display(),
            network.validators.len()
        );
    }
    if let Some(first) = network.validators.first() {
        let client = NodeClient::new(&format!("http://{}", first.api));
        if let Ok(status) = client.status()
            && status.chain_id == network.genesis.chain_id()
        {
            bail!(
                "a testnet is already running on {} (its API answers at {}); use it, or stop it first",
                dir.display(),
                client.url()
            );
        }
    }
    for (validator, listed) in network.validators.iter().zip(&network.genesis.validators) {
        if let Some(port) = tcp_port(&listed.address)
            && TcpListener::bind(("127.0.0.1", port)).is_err()
        {
            bail!(
                "port {port} of {} (its address in genesis) is in use; stop what uses it (another testnet on this directory?) and run again",
                validator.name
            );
        }
    }
    for validator in &mut network.validators {
        if TcpListener::bind(validator.api).is_err() {
            let port = node::localnet::free_port()?;
            let mut config =
                node::home::NodeConfig::load(&validator.home, &node::home::Overrides::default())?
                    .config;
            config.api.set_port(port);
            let path = validator.home.join(node::home::CONFIG_FILE);
            std::fs::write(&path, config.to_toml())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "note: API port {} of {} is in use; it now listens on {}",
                validator.api.port(),
                validator.name,
                config.api
            );
            validator.api = config.api;
        }
    }
    Ok(network)
}

fn tcp_port(multiaddr: &str) -> Option<u16> {
    let mut parts = multiaddr.split('/');
    while let Some(part) = parts.next() {
        if part == "tcp" {
            return parts.next()?.parse().ok();
        }
    }
    None
}

fn write_testnet_file(dir: &Path, network: &Network) -> anyhow::Result<TestnetFile> {
    let file = TestnetFile {
        chain_id: network.genesis.chain_id().to_string(),
        chain_name: network.genesis.chain_name.clone(),
        validators: network
            .validators
            .iter()
            .map(|validator| TestnetValidator {
                name: validator.name.clone(),
                api: format!("http://{}", validator.api),
                home: validator.home.clone(),
                log: validator.home.join(LOG_FILE),
            })
            .collect(),
        keys: network.key_files.iter().cloned().collect(),
    };
    let path = dir.join(TESTNET_FILE);
    let mut text = serde_json::to_string_pretty(&file).expect("plain data serialises");
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(file)
}

struct RunningValidator {
    name: String,
    log: PathBuf,
    child: Child,
    /// Closing it tells the child to stop.
    stdin: Option<ChildStdin>,
}

async fn supervise(file: &TestnetFile, json: bool, stop_on_stdin_eof: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the scf executable")?;
    let mut validators = Vec::new();
    for validator in &file.validators {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&validator.log)
            .with_context(|| format!("opening {}", validator.log.display()))?;
        let mut child = Command::new(&exe)
            .arg("node")
            .arg("start")
            .arg("--home")
            .arg(&validator.home)
            .arg("--stop-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", validator.name))?;
        let stdin = child.stdin.take();
        validators.push(RunningValidator {
            name: validator.name.clone(),
            log: validator.log.clone(),
            child,
            stdin,
        });
    }

    let outcome = async {
        wait_ready(file, &mut validators).await?;
        emit(json, file, print_ready);
        let stop = node_cmd::shutdown(stop_on_stdin_eof);
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = &mut stop => return Ok::<(), anyhow::Error>(()),
                _ = tick.tick() => exited(&mut validators)?,
            }
        }
    }
    .await;
    stop_all(validators, json).await;
    outcome
}

/// Fails if a validator has exited, pointing at its log.
fn exited(validators: &mut [RunningValidator]) -> anyhow::Result<()> {
    for validator in validators {
        if let Some(status) = validator.child.try_wait()? {
            bail!(
                "{} exited ({status}); see its log {}:\n{}",
                validator.name,
                validator.log.display(),
                log_tail(&validator.log)
            );
        }
    }
    Ok(())
}

async fn wait_ready(file: &TestnetFile, validators: &mut [RunningValidator]) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let apis: Vec<String> = file.validators.iter().map(|v| v.api.clone()).collect();
    loop {
        exited(validators)?;
        let apis = apis.clone();
        let ready = tokio::task::spawn_blocking(move || {
            apis.iter().all(|api| NodeClient::new(api).status().is_ok())
        })
        .await?;
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the validators did not answer on their APIs within {} s; see their logs ({})",
                READY_TIMEOUT.as_secs(),
                file.validators
                    .iter()
                    .map(|v| v.log.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_ready(file: &TestnetFile) {
    println!(
        "testnet {} ({}) is running: {} validators",
        file.chain_name,
        file.chain_id,
        file.validators.len()
    );
    for validator in &file.validators {
        println!(
            "  {:<12} API {}   log {}",
            validator.name,
            validator.api,
            validator.log.display()
        );
    }
    if let Some((_, first)) = file.keys.iter().next()
        && let Some(dir) = first.parent()
    {
        println!(
            "  keys in {}: {}",
            dir.display(),
            file.keys.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(first) = file.validators.first()
        && let Some(dir) = first.home.parent()
    {
        println!(
            "try: scf --node {} --genesis {} status",
            first.api,
            dir.join(setup::GENESIS_FILE).display()
        );
    }
    println!("Ctrl-C stops every validator; run the same command again to resume this chain");
}

/// Closes every validator's standard input (they stop cleanly), waits, then
/// kills what is still running.
async fn stop_all(validators: Vec<RunningValidator>, json: bool) {
    let mut validators = validators;
    for validator in &mut validators {
        validator.stdin.take();
    }
    for mut validator in validators {
        match tokio::time::timeout(STOP_TIMEOUT, validator.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!(
                    "{} did not stop within {} s; killing it",
                    validator.name,
                    STOP_TIMEOUT.as_secs()
                );
                let _ = validator.child.kill().await;
            }
        }
    }
    if !json {
        println!("testnet stopped");
    }
}

/// The last lines of a log, for an error message.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
