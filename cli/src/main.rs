//! `scf`: the scfledger command-line tool. Keys, genesis, running a node or a
//! local testnet, every transaction, every query, the lineage trace, and the
//! demo.
//!
//! `main` only parses arguments and dispatches; each command lives in its
//! own module. Exit codes: 0 success, 1 an error (bad input, a file),
//! 2 a usage error, 3 the node is unreachable, 4 refused (a ledger rule or the
//! node said no), 5 not found, 6 accepted but not committed in time.

mod audit;
mod client;
mod commands;
mod demo;
mod events;
mod explain;
mod genesis_cmd;
mod keys;
mod node_cmd;
mod output;
mod parse;
mod queries;
mod setup;
mod sink;
mod testnet;
mod trace;
mod transactions;
mod trust;
mod validators;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::NodeError;
use crate::explain::CliError;

/// mimalloc for every Rust allocation of the node and the sink: both
/// allocate and free many small values per transaction (decoded blocks,
/// state values, event rows), where glibc's allocator spent about a sixth
/// of the sink's checking thread (`malloc_consolidate`, `unlink_chunk`).
/// Built with `no_thp`, which turns transparent huge pages off for the
/// process: with them, memory mimalloc took back from the kernel came
/// back as fresh 2 MiB pages the kernel zeroed (`clear_page_erms` under
/// `do_huge_pmd_anonymous_page`, a fifth of the checking thread), and the
/// sink caught up 8 % slower (`MIMALLOC_ALLOW_THP=0`, alternated runs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// scfledger: a permissioned ledger for tokenized receivables in supply-chain finance.
///
/// Quick start: `scf testnet --dir /tmp/scf` in one terminal, then
/// `scf demo --dir /tmp/scf` in another (or just `scf demo`).
#[derive(Parser, Debug)]
#[command(name = "scf", version, about, long_about = None)]
struct Cli {
    /// Print results as JSON (errors too, on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// The node's HTTP API.
    #[arg(
        long,
        global = true,
        env = "SCF_NODE",
        default_value = "http://127.0.0.1:8700"
    )]
    node: String,
    /// The chain's genesis file, from your consortium: the chain id and
    /// currency decimals the CLI signs with, and the chain a node must serve.
    /// Without it, each node's genesis is pinned on first use (see the README).
    #[arg(long, global = true, env = "SCF_GENESIS", value_name = "FILE")]
    genesis: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create and show key files.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Define a chain: genesis file and node homes.
    #[command(subcommand)]
    Genesis(genesis_cmd::GenesisCommand),
    /// Make a new node's home, or run a node.
    #[command(subcommand)]
    Node(node_cmd::NodeCommand),
    /// Run a local network of validators with demo participants until Ctrl-C.
    Testnet(testnet::TestnetArgs),
    /// Register, deactivate and show participants.
    #[command(subcommand)]
    Participant(commands::ParticipantCommand),
    /// The validator set and its governance: list, proposals, propose, approve.
    #[command(subcommand)]
    Validator(validators::ValidatorCommand),
    /// Credit lines (bank).
    #[command(subcommand)]
    Credit(commands::CreditCommand),
    /// Confirm receivables and settle them (core enterprise).
    #[command(subcommand)]
    Receivable(commands::ReceivableCommand),
    /// Transfer, freeze, show, list and trace tokens.
    #[command(subcommand)]
    Token(commands::TokenCommand),
    /// Financing: request (holder), accept or reject (bank).
    #[command(subcommand)]
    Finance(commands::FinanceCommand),
    /// Show blocks.
    #[command(subcommand)]
    Block(commands::BlockCommand),
    /// Show transactions.
    #[command(subcommand)]
    Tx(commands::TxCommand),
    /// Show the node's status: height, app hash, peers.
    Status,
    /// Follow the event feed: every committed state change, in order.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Verify the whole chain from genesis, or export it for offline verification (auditor).
    Audit(audit::AuditArgs),
    /// Write the verified chain's events and state into a database (PostgreSQL).
    #[command(subcommand)]
    Sink(sink::SinkCommand),
    /// Run the whole lifecycle of a receivable on a local testnet.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error, json),
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let Cli {
        json,
        node,
        genesis,
        command,
    } = cli;
    let target = commands::Target {
        client: client::NodeClient::new(&node),
        trust: trust::Trust::new(genesis.clone(), json),
    };
    match command {
        Command::Keys(command) => keys::run(command, json),
        Command::Genesis(command) => genesis_cmd::run(command, genesis.as_deref(), json),
        Command::Node(command) => node_cmd::run(command, genesis.as_deref(), json),
        Command::Testnet(args) => testnet::run(args, json),
        Command::Participant(command) => commands::participant(command, &target, json),
        Command::Validator(command) => validators::run(command, &target, json),
        Command::Credit(command) => commands::credit(command, &target, json),
        Command::Receivable(command) => commands::receivable(command, &target, json),
        Command::Token(command) => commands::token(command, &target, json),
        Command::Finance(command) => commands::finance(command, &target, json),
        Command::Block(command) => commands::block(command, &target, json),
        Command::Tx(command) => commands::tx(command, &target, json),
        Command::Status => queries::status(&target, json),
        Command::Events(command) => events::run(command, &target, json),
        Command::Audit(args) => audit::run(args, &node, genesis.as_deref(), json),
        Command::Sink(command) => sink::run(command, &node, genesis.as_deref(), json),
        Command::Demo(args) => demo::run(args, json),
    }
}

/// Prints the error and chooses the exit code.
/// The error and its causes, joined by ": ", each said once: a library
/// error whose message already includes its source's (`"store: {0}"`) would
/// otherwise repeat it.
fn error_chain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    let (code, name) = if let Some(cli) = error.downcast_ref::<CliError>() {
        (cli.failure.exit_code(), cli.code.clone())
    } else if let Some(node) = error.downcast_ref::<NodeError>() {
        match node {
            NodeError::Unreachable { .. } => (3, Some("unreachable".to_string())),
            NodeError::Refused { code, .. } => (4, Some(code.clone())),
            NodeError::BadAnswer { .. } => (1, None),
        }
    } else {
        (1, None)
    };
    let message = error_chain(error);
    if json {
        let body = serde_json::json!({
            "error": name.unwrap_or_else(|| "error".to_string()),
            "detail": message,
        });
        eprintln!("{body}");
    } else {
        eprintln!("error: {message}");
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("the safety record is corrupt")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("consensus driver: {0}")]
        Driver(#[from] Inner),
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let error = anyhow::Error::from(Outer::from(Inner)).context("starting the node");
        assert_eq!(
            error_chain(&error),
            "starting the node: consensus driver: the safety record is corrupt"
        );
        let plain = anyhow::anyhow!("bad input").context("reading the file");
        assert_eq!(error_chain(&plain), "reading the file: bad input");
    }
}
