//! Running a scenario over many seeds: prints the failing seed and how to
//! replay it, and honours `SIM_SEED=<n>` to run exactly one seed.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Instant;

use super::Report;

/// Totals over the seeds of one test, printed at the end (`--nocapture`).
#[derive(Debug, Default)]
pub struct Summary {
    pub seeds: u64,
    pub heights_decided: u64,
    pub messages_delivered: u64,
    pub simulated_ms: u64,
    pub wall_ms: u128,
}

/// The seeds to run: `SIM_SEED` if set, else `default`.
pub fn seeds(default: std::ops::Range<u64>) -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(text) => vec![
            text.trim()
                .parse()
                .expect("SIM_SEED must be an unsigned integer"),
        ],
        Err(_) => default.collect(),
    }
}

/// Runs `scenario` for every seed; the closure returns the run's report or a
/// description of the violated property.
pub fn run_seeds(
    name: &str,
    default: std::ops::Range<u64>,
    mut scenario: impl FnMut(u64) -> Result<Report, String>,
) -> Summary {
    let started = Instant::now();
    let mut summary = Summary::default();
    for seed in seeds(default) {
        let replay = format!("replay with: SIM_SEED={seed} cargo test -p consensus {name}");
        match catch_unwind(AssertUnwindSafe(|| scenario(seed))) {
            Ok(Ok(report)) => {
                summary.seeds += 1;
                summary.heights_decided += report.heights_decided();
                summary.messages_delivered += report.messages_delivered;
                summary.simulated_ms += report.time_ms;
            }
            Ok(Err(violation)) => panic!("{name}: seed {seed} failed: {violation}\n{replay}"),
            Err(panic) => {
                eprintln!("{name}: seed {seed} panicked\n{replay}");
                resume_unwind(panic)
            }
        }
    }
    summary.wall_ms = started.elapsed().as_millis();
    println!(
        "{name}: {} seeds, {} heights decided, {} messages delivered, {:.1} s simulated, {:.2} s wall, {:.0} msgs/s",
        summary.seeds,
        summary.heights_decided,
        summary.messages_delivered,
        summary.simulated_ms as f64 / 1000.0,
        summary.wall_ms as f64 / 1000.0,
        summary.messages_delivered as f64 * 1000.0 / summary.wall_ms.max(1) as f64,
    );
    summary
}
