//! The PostgreSQL sink (`scf sink postgres`) driven as a process, for the
//! end-to-end tests (`tests/tests/sink.rs`) and the sink benchmark
//! (`scf-sink-bench`): starting it, running it to the node's tip with a
//! time limit, and reading back what it wrote as a [`Snapshot`] that two
//! databases can be compared by.
//!
//! - [`history`]: a committed history written straight into a validator's
//!   store, and its node started on it, for the benchmark and a test;
//! - [`proxy`]: a node that serves a real node's answers, or tampered ones.
//!
//! It judges nothing.

pub mod history;
pub mod proxy;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `scf --node NODE --genesis GENESIS sink postgres --database-url URL ARGS`.
pub fn command(
    binary: &Path,
    node: &str,
    genesis: &Path,
    database_url: &str,
    args: &[&str],
) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["--node", node, "--genesis"])
        .arg(genesis)
        .args(["sink", "postgres", "--database-url", database_url])
        .args(args)
        .env_remove("SCF_DATABASE_URL")
        .env_remove("SCF_NODE")
        .env_remove("SCF_GENESIS")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

/// A sink run that ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

/// Runs `command` (a sink, usually with `--exit-at-tip`) to its end, killed
/// after `limit`.
pub fn run(mut command: Command, limit: Duration) -> Result<Finished, String> {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("starting the sink: {error}"))?;
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped")));
    let stderr = read(Box::new(child.stderr.take().expect("piped")));
    let status = wait(&mut child, limit);
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let status = status.map_err(|error| format!("{error}; its log:\n{stderr}"))?;
    Ok(Finished {
        status,
        stdout,
        stderr,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Waits for `child` at most `limit`, then kills it (SIGKILL) and says so.
pub fn wait(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the sink did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sink's cursor height in a database (0 before its first run).
pub fn cursor_height(client: &mut postgres::Client) -> u64 {
    client
        .query_opt("SELECT height FROM sink_cursor", &[])
        .ok()
        .flatten()
        .map_or(0, |row| row.get::<_, i64>(0).max(0) as u64)
}

/// Every table's row count, sums of its amounts, and a digest of its whole
/// content in key order: two databases with equal snapshots hold the same
/// rows. `sink_cursor` is compared without its wall-clock `updated_at`.
pub type Snapshot = BTreeMap<String, String>;

/// (table, key order, what is summed).
const TABLES: [(&str, &str, &str); 13] = [
    ("events", "cursor", "count(DISTINCT kind)"),
    ("participants", "key", "sum(next_nonce)"),
    (
        "credit_lines",
        "core",
        "sum(limit_minor), sum(outstanding_minor)",
    ),
    ("credit_grants", "core, bank", "sum(limit_minor)"),
    (
        "receivables",
        "root",
        "sum(amount_minor), count(*) FILTER (WHERE settled)",
    ),
    (
        "tokens",
        "id",
        "sum(amount_minor) FILTER (WHERE status IN ('active', 'pending')), count(*) FILTER (WHERE status = 'settled')",
    ),
    (
        "financing",
        "request",
        "sum(amount_minor), sum(price_minor)",
    ),
    ("key_bindings", "key", "count(DISTINCT participant)"),
    (
        "key_recoveries",
        "participant",
        "count(*) FILTER (WHERE approved_by IS NOT NULL)",
    ),
    ("validator_epochs", "epoch", "max(from_height)"),
    ("validators", "epoch, consensus_key", "sum(power)"),
    (
        "validator_proposals",
        "id",
        "count(*) FILTER (WHERE adopted_height IS NOT NULL)",
    ),
    (
        "sink_cursor",
        "id",
        "max(height), max(block_hash), max(app_hash), max(last_event), max(events)",
    ),
];

pub fn snapshot(client: &mut postgres::Client) -> Result<Snapshot, String> {
    let mut snapshot = Snapshot::new();
    for (table, order, sums) in TABLES {
        let content = if table == "sink_cursor" {
            "md5(string_agg(concat_ws(',', height, block_hash, app_hash, block_time, last_event, events), '|'))"
                .to_string()
        } else {
            format!("md5(string_agg(t::text, '|' ORDER BY {order}))")
        };
        let sql = format!("SELECT concat_ws(' ', count(*), {sums}, {content}) FROM {table} t");
        let row = client
            .query_one(&sql, &[])
            .map_err(|error| format!("{sql}: {error}"))?;
        snapshot.insert(table.to_string(), row.get::<_, String>(0));
    }
    Ok(snapshot)
}
