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
//!
//! While it runs, `supervisor` watches them: a validator that stops is
//! reported with the command that restarts it, and the others go on; one
//! restarted by hand is noticed, watched, and stopped with the rest. This
//! file sets the network up; `supervisor` runs it.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use ledger::Role;
use serde::{Deserialize, Serialize};

use crate::client::NodeClient;
use crate::node_cmd;
use crate::output::emit;
use crate::setup::{self, Network, NetworkSpec};

mod process;
mod supervisor;

pub const TESTNET_FILE: &str = "testnet.json";
const LOG_FILE: &str = "node.log";

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
    let voting_powers: Vec<u64> = network
        .genesis
        .validators
        .iter()
        .map(|validator| validator.voting_power)
        .collect();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(supervisor::supervise(
        &file,
        &voting_powers,
        json,
        node_cmd::shutdown(args.stop_on_stdin_eof),
        || emit(json, &file, print_ready),
    ))
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
    println!(
        "a validator that stops is reported with the command that restarts it; the others go on"
    );
    println!("Ctrl-C stops every validator; run the same command again to resume this chain");
}

/// The last lines of a log, for an error message.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
