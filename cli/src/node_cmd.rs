//! `scf node init --home DIR`: make the home of a node that joins a running
//! chain, and print what the consortium needs to add it as a validator.
//!
//! `scf node start --home DIR`: load the home's config, start logging, run the
//! node until SIGINT or SIGTERM (or, for nodes a parent `scf` started, until
//! the parent goes away).

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use genesis::Genesis;
use node::home::{NewNode, NodeConfig, Overrides};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use crate::explain;
use crate::output::emit;

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Make the home of a new node for a running chain (the chain's genesis
    /// file is the global --genesis FILE): config, genesis, a fresh node key
    /// and validator key. Prints what a validator proposes to add it.
    Init(InitArgs),
    /// Run a node from its home directory until Ctrl-C or SIGTERM.
    Start(StartArgs),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The directory to make the home in (created if missing); one that
    /// already holds a node's config or keys is refused.
    #[arg(long)]
    pub home: PathBuf,
    /// The libp2p multiaddr the node listens on.
    #[arg(long, default_value = node::home::DEFAULT_LISTEN)]
    pub listen: String,
    /// The multiaddr other nodes dial to reach it, recorded on the chain,
    /// e.g. /ip4/10.0.0.5/tcp/26656. Default: --listen, which must then
    /// name a host (not 0.0.0.0).
    #[arg(long)]
    pub address: Option<String>,
    /// The HTTP API address.
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub api: SocketAddr,
    /// The node's name in logs and in the validator set. Default: the home
    /// directory's name.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// The node's home (config.toml, genesis.json, node.key, validator.key, safety.json, data/).
    #[arg(long)]
    pub home: PathBuf,
    /// Override the libp2p listen multiaddr of config.toml.
    #[arg(long)]
    pub listen: Option<String>,
    /// Override the HTTP API address of config.toml, e.g. 127.0.0.1:8700.
    #[arg(long)]
    pub api: Option<SocketAddr>,
    /// Override the data directory of config.toml.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Override the log filter of config.toml, e.g. info or node=debug,info.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Also stop when standard input closes: a parent process (`scf
    /// testnet`) holds the other end, so the node never outlives it.
    #[arg(long, hide = true)]
    pub stop_on_stdin_eof: bool,
}

/// `genesis_file` is the global `--genesis FILE` (or `SCF_GENESIS`): the
/// chain `init` makes a home for.
pub fn run(command: NodeCommand, genesis_file: Option<&Path>, json: bool) -> anyhow::Result<()> {
    match command {
        NodeCommand::Init(args) => init(args, genesis_file, json),
        NodeCommand::Start(args) => start(args),
    }
}

/// What `scf node init` made, and what the consortium needs to add it.
#[derive(Serialize)]
struct InitSummary {
    home: PathBuf,
    name: String,
    chain_name: String,
    chain_id: String,
    peer_id: String,
    consensus_key: String,
    listen: String,
    /// The multiaddr the chain records for it (what other nodes dial).
    address: String,
    api: SocketAddr,
    start_command: String,
    /// For a current validator to run, with its own home.
    propose_command: String,
}

fn init(args: InitArgs, genesis_file: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let genesis_file = genesis_file.ok_or_else(|| {
        explain::usage(
            "`scf node init` makes a home for the chain of a genesis file; pass the consortium's file with --genesis FILE",
        )
    })?;
    let name = match args.name {
        Some(name) => name,
        None => default_name(&args.home)?,
    };
    // Checked (size, JSON, every genesis rule) before anything is written.
    let genesis = Genesis::load(genesis_file)?;
    let made = node::home::init_home(
        &args.home,
        &genesis,
        &NewNode {
            name: name.clone(),
            listen: args.listen.clone(),
            address: args.address,
            api: args.api,
        },
    )?;
    let home = std::path::absolute(&made.home).unwrap_or(made.home.clone());
    let summary = InitSummary {
        start_command: format!(
            "scf node start --home {}",
            shell_word(&home.display().to_string())
        ),
        propose_command: format!(
            "scf validator propose add --name {} --consensus-key {} --peer-id {} --address {} --home VALIDATOR_HOME",
            shell_word(&name),
            made.consensus_key,
            made.peer_id,
            shell_word(&made.address),
        ),
        home,
        name,
        chain_name: genesis.chain_name.clone(),
        chain_id: genesis.chain_id().to_string(),
        peer_id: made.peer_id.to_string(),
        consensus_key: made.consensus_key.to_hex(),
        listen: made.config.listen.clone(),
        address: made.address,
        api: made.config.api,
    };
    emit(json, &summary, |summary| {
        println!("node home      {}", summary.home.display());
        println!(
            "chain          {} ({})",
            summary.chain_name, summary.chain_id
        );
        println!("name           {}", summary.name);
        println!("peer_id        {}", summary.peer_id);
        println!("consensus_key  {}", summary.consensus_key);
        println!("listen         {}", summary.listen);
        println!("address        {}", summary.address);
        println!("api            {}", summary.api);
        println!();
        println!("Start it (it follows the chain as an observer until it is a validator):");
        println!("  {}", summary.start_command);
        println!(
            "Ask a current validator to propose it (more than 2/3 of the power must approve; it votes from the adopting height + 2):"
        );
        println!("  {}", summary.propose_command);
    });
    Ok(())
}

/// The name of the home directory itself (`/srv/acme-node` gives `acme-node`).
fn default_name(home: &Path) -> anyhow::Result<String> {
    let absolute = std::path::absolute(home)
        .with_context(|| format!("resolving the home directory {}", home.display()))?;
    absolute
        .components()
        .next_back()
        .and_then(|last| match last {
            std::path::Component::Normal(name) => name.to_str().map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| {
            explain::usage(format!(
                "{} has no directory name to name the node after; pass --name NAME",
                home.display()
            ))
        })
}

/// `text` as one word for a POSIX shell: as it is when it holds only
/// characters no shell treats specially, else in single quotes.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+=,".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn start(args: StartArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        api: args.api,
        data_dir: args.data_dir,
        log_level: args.log_level,
    };
    let config = NodeConfig::load(&args.home, &overrides)?;
    node::init_logging(&config.config);
    if let Some(migration) = &config.safety_migration {
        eprintln!("note: {migration}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let stop_on_eof = args.stop_on_stdin_eof;
    runtime.block_on(async move { node::run(config, shutdown(stop_on_eof)).await })?;
    Ok(())
}

/// Resolves on SIGINT, SIGTERM, or (if asked) when standard input closes.
pub async fn shutdown(stop_on_stdin_eof: bool) {
    let stdin_closed = stdin_eof(stop_on_stdin_eof);
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
                _ = stdin_closed => {}
            }
        }
        Err(_) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = stdin_closed => {}
            }
        }
    }
}

/// Resolves when standard input reaches its end; never if `watch` is false.
/// A plain thread reads it (blocking), so the runtime need not wait for it.
pub async fn stdin_eof(watch: bool) {
    if !watch {
        return std::future::pending().await;
    }
    let (closed, on_closed) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 256];
        let mut stdin = std::io::stdin();
        while let Ok(read) = stdin.read(&mut buffer) {
            if read == 0 {
                break;
            }
        }
        let _ = closed.send(());
    });
    let _ = on_closed.await;
}
