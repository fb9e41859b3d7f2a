//! Running a scenario over many seeds: prints the failing seed and how to
//! replay it (or, for a negative control, the seeds that forked), and honours `SIM_SEED=<n>` to run exactly one seed (and, where
//! a test asks for it, `SIM_SEEDS=<count>` to run more).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Instant;

use super::{Report, Scenario};

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

/// How many seeds to run: `SIM_SEEDS` if set (e.g. 1000 for a long run),
/// else `default` (what CI runs).
pub fn count(default: u64) -> u64 {
    match std::env::var("SIM_SEEDS") {
        Ok(text) => text
            .trim()
            .parse()
            .expect("SIM_SEEDS must be an unsigned integer"),
        Err(_) => default,
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

/// Runs `scenario(seed)` for each seed; returns the seeds whose run ended
/// with agreement broken. Any other violation fails the test: the control
/// must fail for the reason it is about.
pub fn seeds_with_a_fork(name: &str, count: u64, scenario: impl Fn(u64) -> Scenario) -> Vec<u64> {
    let mut forks = Vec::new();
    for seed in seeds(0..count) {
        let report: Report = scenario(seed).run();
        match report.violations.first() {
            None => {}
            Some(v) if v.starts_with("agreement broken") => {
                if forks.is_empty() {
                    println!("{name}: first fork at seed {seed}: {v}");
                }
                forks.push(seed);
            }
            Some(v) => panic!(
                "{name}: seed {seed}: unexpected violation {v}\nreplay with: SIM_SEED={seed} cargo test -p consensus {name}"
            ),
        }
    }
    println!(
        "{name}: {} of {} seeds forked",
        forks.len(),
        seeds(0..count).len()
    );
    forks
}

/// The control passes if some seed forked. Replaying one seed with
/// `SIM_SEED` only reports whether that seed forks.
pub fn assert_some_fork(forks: &[u64], what: &str) {
    if std::env::var("SIM_SEED").is_err() {
        assert!(
            !forks.is_empty(),
            "{what} never broke agreement: the checker may be blind"
        );
    }
}
