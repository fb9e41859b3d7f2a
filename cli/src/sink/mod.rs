//! `scf sink postgres`: a long-running process that writes every event of
//! the chain, and the current state users query, into PostgreSQL, exactly
//! once, after verifying what it writes.
//!
//! - **Trust.** Like `scf audit verify --node`, the sink never takes the
//!   genesis from the node it reads: it needs `--genesis FILE` from the
//!   consortium, or `--chain-id HEX`, or a database an earlier run wrote
//!   (which recorded the chain id it was given then). Certificates are
//!   checked against that genesis's validators.
//! - **Verified before written.** Each block is verified and replayed as the
//!   audit does, and the events derived from it must equal those the
//!   node's feed serves (`check.rs`); the first difference stops the sink,
//!   naming the height and what differed, before any of that batch is
//!   written.
//! - **Exactly once.** Each batch of blocks is written in one transaction
//!   together with the cursor (`write.rs`); a sink killed at any instant
//!   resumes from the committed cursor. On start it replays the heights
//!   already written, in memory, to rebuild the state (`ingest.rs`).
//! - **Schema.** Versioned migrations in `migrations/`, applied on start
//!   (`schema.rs`). The README lists the tables and example queries.
//!
//! Not here: serving anything but `/metrics`; TLS to the database (the
//! sink is meant to run next to its PostgreSQL).

mod check;
mod copy;
mod fetch;
mod ingest;
mod metrics;
mod rows;
mod schema;
#[cfg(test)]
mod tests;
mod write;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use genesis::Genesis;

use crate::audit::{BlockSource, NodeSource, TrustedGenesis, TrustedSource};
use crate::explain;
use crate::output::emit;
use fetch::NodeReader;
use ingest::IngestConfig;
use write::{Database, Stored};

#[derive(Subcommand, Debug)]
pub enum SinkCommand {
    /// Write every event and the current state (participants, credit lines,
    /// receivables, tokens, financing) into PostgreSQL, verifying each block
    /// and its events first; follows the node until interrupted.
    Postgres(PostgresArgs),
}

#[derive(Args, Debug)]
pub struct PostgresArgs {
    /// The database, e.g. postgres://scf@127.0.0.1:5432/scf or
    /// "host=/run/postgresql dbname=scf". The schema is created or
    /// migrated on start.
    #[arg(long, env = "SCF_DATABASE_URL", value_name = "URL")]
    pub database_url: String,
    /// The chain id you trust (64 hex digits), instead of --genesis FILE:
    /// the genesis the node serves must hash to it.
    #[arg(long, value_name = "HEX")]
    pub chain_id: Option<String>,
    /// Serve Prometheus metrics (GET /metrics) on this address, e.g.
    /// 127.0.0.1:9187 (port 0 picks one and logs it). Off when absent.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Write a batch once it holds this many events…
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub batch_events: usize,
    /// …or this many blocks (or the node has nothing further yet).
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub batch_blocks: usize,
    /// Stop once everything the node had is written, instead of following it.
    #[arg(long)]
    pub exit_at_tip: bool,
}

/// Runs `scf sink ...` against the node of the global `--node URL`, trusting
/// the global `--genesis FILE` when given.
pub fn run(
    command: SinkCommand,
    node: &str,
    genesis: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let SinkCommand::Postgres(args) = command;
    if args.batch_events == 0 || args.batch_blocks == 0 {
        return Err(explain::usage(
            "--batch-events and --batch-blocks must be at least 1",
        ));
    }
    init_logging(json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the sink's runtime")?;
    let summary = runtime.block_on(postgres(args, node, genesis))?;
    emit(json, &summary, |summary| {
        println!(
            "wrote {} events of {} blocks up to height {} in {:.1} s ({:.0} events/s)",
            summary.events,
            summary.blocks,
            summary.height,
            summary.seconds,
            summary.events_per_second
        )
    });
    Ok(())
}

async fn postgres(
    args: PostgresArgs,
    node: &str,
    genesis_file: Option<&Path>,
) -> anyhow::Result<ingest::IngestSummary> {
    let (mut database, migrated) = Database::open(&args.database_url).await?;
    if !migrated.is_empty() {
        tracing::info!(versions = ?migrated, "migrated the database's schema");
    }
    let stored = database.stored().await?;
    let (genesis, trusted) = trusted_genesis(node, genesis_file, &args, stored.as_ref())?;
    let chain_id = genesis.chain_id();
    tracing::info!(
        chain = %chain_id,
        name = %genesis.chain_name,
        trusted = %trusted,
        node,
        "verifying every block against the validators of this genesis"
    );
    let stored = match stored {
        Some(stored) if stored.chain_id != chain_id => {
            anyhow::bail!(
                "this database holds chain {}, but {trusted} is chain {chain_id}; give the sink a database of its own for each chain",
                stored.chain_id
            );
        }
        Some(stored) => stored,
        None => {
            // Height 0 is what the verifier's replay starts from, so the
            // database starts from the state the blocks are checked on.
            let verifier = crate::audit::ChainVerifier::from_genesis(&genesis)?;
            let state = rows::genesis_rows(verifier.state())?;
            database
                .initialize(&genesis, &state, verifier.app_hash())
                .await?;
            Stored {
                chain_id,
                height: 0,
                block_hash: crypto::Hash::ZERO,
                events: 0,
            }
        }
    };
    let metrics = Arc::new(metrics::SinkMetrics::new());
    if let Some(addr) = args.metrics {
        let bound = metrics::serve(addr, Arc::clone(&metrics))
            .await
            .with_context(|| format!("serving --metrics on {addr}"))?;
        tracing::info!(%bound, "serving GET /metrics");
    }
    let config = IngestConfig {
        batch_events: args.batch_events,
        batch_blocks: args.batch_blocks,
        exit_at_tip: args.exit_at_tip,
    };
    let reader = NodeReader::new(node, &genesis);
    ingest::run(
        &mut database,
        reader,
        genesis,
        stored,
        config,
        metrics,
        crate::node_cmd::shutdown(false),
    )
    .await
}

/// The genesis the sink verifies against, and where the trust in it comes
/// from: `--genesis FILE`, else `--chain-id HEX`, else the chain id an
/// earlier run recorded in the database. The node must serve that chain.
fn trusted_genesis(
    node: &str,
    genesis_file: Option<&Path>,
    args: &PostgresArgs,
    stored: Option<&Stored>,
) -> anyhow::Result<(Genesis, String)> {
    let trusted = match crate::audit::trusted_genesis(genesis_file, args.chain_id.as_deref())? {
        Some(trusted) => trusted,
        None => match stored {
            Some(stored) => TrustedGenesis::Recorded {
                chain_id: stored.chain_id,
                place: "the chain id this database was first written for".to_string(),
            },
            None => {
                return Err(explain::usage(format!(
                    "the sink verifies every block against a genesis you trust, not the one node {node} serves (a node can make up a whole self-consistent chain): pass --genesis FILE with your consortium's genesis.json, or --chain-id HEX with the chain id you know. Later runs on the same database may omit both: it records the chain id"
                )));
            }
        },
    };
    let described = trusted.describe();
    let mut source = NodeSource::new(node);
    let genesis = TrustedSource::new(&mut source, trusted)
        .genesis()
        .with_context(|| format!("checking the chain node {node} serves"))?;
    Ok((genesis, described))
}

/// Log lines on stderr: text, or JSON lines with `--json`; `RUST_LOG`
/// overrides the level (default `info`).
fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
