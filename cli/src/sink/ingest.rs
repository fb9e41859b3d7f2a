//! The sink's pipeline: a fetcher thread reads blocks and feed pages from
//! the node (`fetch.rs`), a checker thread verifies, replays and compares
//! them (`check.rs`) and groups the checked blocks into batches
//! (`rows.rs`), and this task writes each batch in one database
//! transaction (`write.rs`), in height order. Each stage hands over through
//! a bounded channel, so a slow database slows the fetcher instead of
//! filling memory.
//!
//! On start the heights the database already holds are fetched and
//! replayed again, in memory and without their events, to rebuild the
//! state the next blocks are checked on; the block at the database's
//! cursor must be the one it was written from. That costs what `scf audit
//! verify` costs for those heights.
//!
//! The first error anywhere stops the sink: nothing of the batch being
//! built is written, and the database stays at its last committed cursor.

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::{Duration, Instant};

use genesis::Genesis;
use serde::Serialize;
use tokio::sync::mpsc;

use super::check::{CheckError, Checker};
use super::fetch::{self, FetchError, FetchPlan, Fetched, NodeReader};
use super::metrics::SinkMetrics;
use super::rows::{Batch, BatchBuilder, TooLarge};
use super::write::{Database, Stored};

/// Blocks fetched ahead of the checks.
const FETCHED_AHEAD: usize = 8;
/// Batches checked ahead of the database.
const CHECKED_AHEAD: usize = 2;
/// How often progress is logged while catching up.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// How the pipeline batches and when it stops.
#[derive(Clone, Copy, Debug)]
pub struct IngestConfig {
    /// A batch is written once it holds this many events…
    pub batch_events: usize,
    /// …or this many blocks, or the node has nothing further yet.
    pub batch_blocks: usize,
    /// Stop at the node's tip instead of following it.
    pub exit_at_tip: bool,
}

/// Why the pipeline stopped before writing what the node served.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error(
        "height {height}: the node's block hashes to {served}, but this database was written from block {stored}: the node serves another history of the chain"
    )]
    Forked {
        height: u64,
        stored: crypto::Hash,
        served: crypto::Hash,
    },
}

impl IngestError {
    /// The height the node served wrong, if it is the chain that is wrong.
    fn refused_height(&self) -> Option<u64> {
        match self {
            IngestError::Check(error) => error.height(),
            IngestError::Forked { height, .. } => Some(*height),
            _ => None,
        }
    }
}

/// What the checker hands to the writer.
enum Checked {
    /// The database's heights were replayed again (nothing written).
    Rebuilt {
        height: u64,
        transactions: u64,
        seconds: f64,
    },
    Batch {
        batch: Box<Batch>,
        tip: u64,
    },
    /// Everything the node has (as far as its events are derived) is
    /// handed over; `tip` is the node's height.
    AtTip {
        tip: u64,
    },
}

/// What one run wrote.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    pub height: u64,
    pub events: u64,
    pub blocks: u64,
    /// From the pipeline's start (the rebuild of heights already written
    /// included) to its end.
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Runs the pipeline until the node's tip (with `exit_at_tip`), `shutdown`,
/// or the first error.
pub async fn run(
    database: &mut Database,
    reader: NodeReader,
    genesis: Genesis,
    stored: Stored,
    config: IngestConfig,
    metrics: Arc<SinkMetrics>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<IngestSummary> {
    let (fetched_tx, fetched_rx) = sync_channel(FETCHED_AHEAD);
    let (checked_tx, mut checked_rx) = mpsc::channel(CHECKED_AHEAD);
    let plan = FetchPlan {
        rebuild_to: stored.height,
        exit_at_tip: config.exit_at_tip,
    };
    let url = reader.url().to_string();
    std::thread::Builder::new()
        .name("sink-fetch".into())
        .spawn(move || fetch::run(reader, plan, fetched_tx))?;
    let checker_stored = stored.clone();
    std::thread::Builder::new()
        .name("sink-check".into())
        .spawn(move || {
            if let Err(error) = check(genesis, &checker_stored, config, &fetched_rx, &checked_tx) {
                let _ = checked_tx.blocking_send(Err(error));
            }
        })?;

    let mut progress = Progress::new(stored.height);
    metrics.heights(stored.height, stored.height);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let message = tokio::select! {
            message = checked_rx.recv() => message,
            () = &mut shutdown => {
                tracing::info!(height = progress.height, "stopping: the database is at a committed cursor");
                break;
            }
        };
        match message {
            None => break,
            Some(Err(error)) => {
                let refused = error.refused_height().is_some();
                let held = format!(
                    "nothing of it was written: the database holds heights 1..={} ({} events)",
                    progress.height,
                    stored.events + progress.events
                );
                return Err(if refused {
                    anyhow::anyhow!("refused what node {url} served: {error}; {held}")
                } else {
                    anyhow::anyhow!("stopped reading node {url}: {error}; {held}")
                });
            }
            Some(Ok(Checked::Rebuilt {
                height,
                transactions,
                seconds,
            })) => {
                tracing::info!(
                    height,
                    transactions,
                    seconds,
                    "replayed the heights already in the database again (verified, not written) to rebuild the state"
                );
            }
            Some(Ok(Checked::Batch { batch, tip })) => {
                let writing = Instant::now();
                database.write(&batch).await?;
                progress.writing += writing.elapsed();
                let events = batch.event_count() as u64;
                let blocks = batch.end.height - batch.first_height + 1;
                metrics.events.inc_by(events);
                metrics.blocks.inc_by(blocks);
                metrics.batches.inc();
                metrics.heights(batch.end.height, tip);
                progress.written(batch.end.height, events, blocks, tip);
            }
            Some(Ok(Checked::AtTip { tip })) => {
                metrics.heights(progress.height, tip);
                progress.at_tip(tip);
            }
        }
    }
    Ok(progress.summary())
}

/// The checker thread: verifies, replays, compares and batches.
fn check(
    genesis: Genesis,
    stored: &Stored,
    config: IngestConfig,
    fetched: &Receiver<Result<Fetched, FetchError>>,
    out: &mpsc::Sender<Result<Checked, IngestError>>,
) -> Result<(), IngestError> {
    let mut checker = Checker::from_genesis(&genesis)?;
    let started = Instant::now();
    let mut transactions = 0u64;
    let mut builder = BatchBuilder::new();
    let mut blocks = 0usize;
    let mut tip = 0;
    let send = |checked: Checked| out.blocking_send(Ok(checked)).is_ok();
    // Ends when the fetcher stops (at the tip, or on an error it sent).
    while let Ok(message) = fetched.recv() {
        match message? {
            Fetched::Block {
                height,
                raw,
                feed: None,
                tip: node_tip,
            } => {
                tip = node_tip;
                transactions += checker.replay(&raw)? as u64;
                if height == stored.height {
                    let served = checker.verifier().block_hash();
                    if served != stored.block_hash {
                        return Err(IngestError::Forked {
                            height,
                            stored: stored.block_hash,
                            served,
                        });
                    }
                    let rebuilt = Checked::Rebuilt {
                        height,
                        transactions,
                        seconds: started.elapsed().as_secs_f64(),
                    };
                    if !send(rebuilt) {
                        return Ok(());
                    }
                }
            }
            Fetched::Block {
                raw,
                feed: Some(feed),
                tip: node_tip,
                ..
            } => {
                tip = node_tip;
                builder.add(checker.check(&raw, &feed)?)?;
                blocks += 1;
                if builder.event_count() >= config.batch_events || blocks >= config.batch_blocks {
                    let full = std::mem::take(&mut builder);
                    blocks = 0;
                    if !hand_over(full, &checker, tip, out)? {
                        return Ok(());
                    }
                }
            }
            Fetched::AtTip { tip: node_tip } => {
                tip = node_tip;
                let pending = std::mem::take(&mut builder);
                blocks = 0;
                if !hand_over(pending, &checker, tip, out)? || !send(Checked::AtTip { tip }) {
                    return Ok(());
                }
            }
        }
    }
    hand_over(builder, &checker, tip, out)?;
    Ok(())
}

/// Sends the batch built so far, if any; `false` once the writer is gone.
fn hand_over(
    builder: BatchBuilder,
    checker: &Checker,
    tip: u64,
    out: &mpsc::Sender<Result<Checked, IngestError>>,
) -> Result<bool, IngestError> {
    let Some(batch) = builder.finish(checker.verifier().state())? else {
        return Ok(true);
    };
    let batch = Box::new(batch);
    Ok(out.blocking_send(Ok(Checked::Batch { batch, tip })).is_ok())
}

/// Progress lines in the log: events/s and the lag behind the node.
struct Progress {
    /// Time spent in database transactions since the last log line: the
    /// rest of the time the writer waited for checked batches.
    writing: Duration,
    height: u64,
    events: u64,
    blocks: u64,
    started: Instant,
    last_logged: Instant,
    events_at_last_log: u64,
    caught_up: bool,
}

impl Progress {
    fn new(height: u64) -> Progress {
        Progress {
            writing: Duration::ZERO,
            height,
            events: 0,
            blocks: 0,
            started: Instant::now(),
            last_logged: Instant::now(),
            events_at_last_log: 0,
            caught_up: false,
        }
    }

    fn written(&mut self, height: u64, events: u64, blocks: u64, tip: u64) {
        let now = Instant::now();
        self.height = height;
        self.events += events;
        self.blocks += blocks;
        if now.duration_since(self.last_logged) >= LOG_EVERY {
            self.log(tip, "ingesting");
        }
    }

    fn at_tip(&mut self, tip: u64) {
        if !self.caught_up || self.last_logged.elapsed() >= LOG_EVERY * 12 {
            self.log(tip, "caught up with the node; following it");
            self.caught_up = true;
        }
    }

    fn log(&mut self, tip: u64, what: &str) {
        let seconds = self.last_logged.elapsed().as_secs_f64().max(1e-3);
        let events_per_second = (self.events - self.events_at_last_log) as f64 / seconds;
        tracing::info!(
            height = self.height,
            node_height = tip,
            lag_blocks = tip.saturating_sub(self.height),
            events_per_second = events_per_second.round(),
            events_written = self.events,
            database_busy_percent = (100.0 * self.writing.as_secs_f64() / seconds).round(),
            "{what}"
        );
        self.writing = Duration::ZERO;
        self.last_logged = Instant::now();
        self.events_at_last_log = self.events;
    }

    fn summary(&self) -> IngestSummary {
        let seconds = self.started.elapsed().as_secs_f64();
        IngestSummary {
            height: self.height,
            events: self.events,
            blocks: self.blocks,
            seconds,
            events_per_second: if seconds > 0.0 {
                self.events as f64 / seconds
            } else {
                0.0
            },
        }
    }
}
