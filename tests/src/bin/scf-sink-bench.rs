//! `scf-sink-bench`: how fast `scf sink postgres` catches up. Writes a long
//! history into a one-validator network's store (`scf_tests::sink::history`),
//! starts that validator (`scf node start`), starts a throwaway PostgreSQL
//! with its default durability (`scf_tests::postgres`), runs the sink from
//! an empty database to the node's tip (`--exit-at-tip`) and prints what it
//! measured: events written, and events per second of the sink's wall time
//! (start, schema, every block fetched, verified, replayed, compared with
//! the feed, and written).
//!
//! ```text
//! cargo build --workspace --bins && target/debug/scf-sink-bench --json
//! ```
//!
//! The sink, the node and PostgreSQL share the machine's cores.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use scf_tests::postgres::Postgres;
use scf_tests::sink::history::{self, HistorySpec};
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(
    name = "scf-sink-bench",
    about = "How fast scf sink postgres catches up"
)]
struct Cli {
    /// Suppliers: each signs one transaction per round.
    #[arg(long, default_value_t = 1_000)]
    suppliers: usize,
    /// Rounds of the history (one block each; every 25th is two blocks of
    /// financing).
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Passed to the sink.
    #[arg(long, default_value_t = 20_000)]
    batch_events: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the network, the sink's log and the database's files here.
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Serialize, Debug)]
struct Report {
    heights: u64,
    transactions: u64,
    events: u64,
    history_seconds: f64,
    sink_seconds: f64,
    events_per_second: f64,
    /// As the sink itself reports it (from its pipeline's start).
    sink_reported_events_per_second: f64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let binary = scf_tests::chaos::sibling_scf_binary().map_err(anyhow::Error::msg)?;
    let temporary;
    let dir = match &cli.dir {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::tempdir().context("a temporary directory")?;
            temporary.path().to_path_buf()
        }
    };
    let started = Instant::now();
    let spec = HistorySpec {
        suppliers: cli.suppliers,
        rounds: cli.rounds,
        cores: 10,
        banks: 5,
    };
    let history = history::write(&dir.join("net"), &spec).map_err(anyhow::Error::msg)?;
    let history_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "sink bench: wrote {} transactions in {} blocks in {history_seconds:.1} s",
        history.transactions, history.height
    );
    let node = history::serve(&binary, &history).map_err(anyhow::Error::msg)?;
    let postgres = Postgres::start(true).map_err(anyhow::Error::msg)?;
    let database_url = postgres
        .create_database("bench")
        .map_err(anyhow::Error::msg)?;
    let batch_events = cli.batch_events.to_string();
    let finished = scf_tests::sink::run(
        scf_tests::sink::command(
            &binary,
            &node.api,
            &history.genesis_path,
            &database_url,
            &["--exit-at-tip", "--json", "--batch-events", &batch_events],
        ),
        Duration::from_secs(1_800),
    )
    .map_err(anyhow::Error::msg)?;
    std::fs::write(dir.join("sink.log"), &finished.stderr)?;
    if !finished.status.success() {
        bail!("the sink failed ({}): {}", finished.status, finished.stderr);
    }
    let summary: serde_json::Value =
        serde_json::from_str(finished.stdout.trim()).context("the sink's JSON summary")?;
    let mut client = postgres.connect("bench").map_err(anyhow::Error::msg)?;
    let events: i64 = client.query_one("SELECT count(*) FROM events", &[])?.get(0);
    let report = Report {
        heights: history.height,
        transactions: history.transactions,
        events: events as u64,
        history_seconds,
        sink_seconds: finished.seconds,
        events_per_second: events as f64 / finished.seconds,
        sink_reported_events_per_second: summary["events_per_second"].as_f64().unwrap_or(0.0),
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} events ({} transactions, {} blocks) written in {:.2} s: {:.0} events/s",
            report.events,
            report.transactions,
            report.heights,
            report.sink_seconds,
            report.events_per_second
        );
    }
    Ok(())
}
