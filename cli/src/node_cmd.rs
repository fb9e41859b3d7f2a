//! `scf node start --home DIR`: load the home's config, start logging, run the
//! node until SIGINT or SIGTERM (or, for nodes a parent `scf` started, until
//! the parent goes away).

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use node::home::{NodeConfig, Overrides};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Run a node from its home directory until Ctrl-C or SIGTERM.
    Start(StartArgs),
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

pub fn run(command: NodeCommand) -> anyhow::Result<()> {
    let NodeCommand::Start(args) = command;
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
