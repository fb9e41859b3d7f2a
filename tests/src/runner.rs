//! Runs one scenario: a fresh 4-validator network, the background load, the
//! hostile peer saying yes while the chain warms up, then the attack for its
//! window, then the checks.
//!
//! Each scenario gets its own network (an attack that wedges a node must not
//! be blamed on the next one) and they run one at a time: a 2-core machine
//! running two networks would mostly measure the contention.

use std::time::{Duration, Instant};

use crate::checks::{self, Verdict};
use crate::client::Load;
use crate::cluster::{Cluster, HONEST, HOSTILE, LOAD_SIGNER};
use crate::hostile::{Attack, Hostile};

/// The height the chain reaches before an attack starts.
const WARMUP_HEIGHT: u64 = 2;
const WARMUP_LIMIT: Duration = Duration::from_secs(45);
/// Blocks the others commit while the restarted validator is down.
const BLOCKS_WHILE_DOWN: u64 = 4;

/// How long an attack runs by default: the commit deadline and then some,
/// so "keeps committing" means a commit after the attack took hold.
pub const ATTACK_WINDOW: Duration = Duration::from_secs(12);

/// The validator a restart scenario stops and starts again.
pub const RESTARTED: usize = 2;

/// One attack and how to stage it.
pub struct Scenario {
    /// Short and unique: names the failure and the kept directory.
    pub name: &'static str,
    pub attack: fn() -> Box<dyn Attack>,
    /// How long the attack runs; the checks' deadline is within it.
    pub window: Duration,
    /// Stop [`RESTARTED`] before the attack, let the chain advance, and
    /// start it again as the attack starts: it syncs under attack.
    pub restart: bool,
    /// The hostile equivocates: every honest node must list evidence
    /// against it at `GET /v1/evidence`.
    pub expect_evidence: bool,
}

impl Scenario {
    pub const fn new(name: &'static str, attack: fn() -> Box<dyn Attack>) -> Scenario {
        Scenario {
            name,
            attack,
            window: ATTACK_WINDOW,
            restart: false,
            expect_evidence: false,
        }
    }

    pub const fn expecting_evidence(self) -> Scenario {
        Scenario {
            expect_evidence: true,
            ..self
        }
    }

    pub const fn with_restart(self) -> Scenario {
        Scenario {
            restart: true,
            ..self
        }
    }

    pub const fn with_window(self, window: Duration) -> Scenario {
        Scenario { window, ..self }
    }
}

/// Runs `scenario` and judges it; never panics on a broken check (the
/// verdict lists it), so one run reports every attack.
pub fn run(runtime: &tokio::runtime::Runtime, scenario: &Scenario) -> Verdict {
    let started = Instant::now();
    let mut verdict = Verdict {
        scenario: scenario.name.to_string(),
        ..Verdict::default()
    };
    let mut cluster = Cluster::start(scenario.name);
    let mut phases = vec![("start", started.elapsed())];
    let mut hostile = Hostile::start(runtime, &cluster, (scenario.attack)());
    let load = Load::start(
        HONEST.iter().map(|&index| cluster.api(index)).collect(),
        cluster.net.genesis.chain_id(),
        cluster.net.participant_keys[LOAD_SIGNER].clone(),
    );
    if let Err(error) = checks::wait_for_height(&cluster, WARMUP_HEIGHT, WARMUP_LIMIT) {
        verdict.failures.push(format!("setup: {error}"));
    } else {
        if scenario.restart {
            stop_for_a_while(&mut cluster, &mut verdict);
        }
        let before: Vec<u64> = checks::heights(&cluster)
            .into_iter()
            .map(|height| height.unwrap_or(0))
            .collect();
        phases.push(("warmup", started.elapsed()));
        hostile.arm(true);
        let attack_started = Instant::now();
        if scenario.restart {
            cluster.restart(RESTARTED);
        }
        checks::watch_progress(
            &mut cluster,
            &before,
            attack_started,
            scenario.window,
            &mut verdict,
        );
        hostile.arm(false);
        phases.push(("attack", started.elapsed()));
        checks::check_state(&mut cluster, &before, &mut verdict);
        if scenario.expect_evidence {
            check_evidence(&cluster, &mut verdict);
        }
        phases.push(("checks", started.elapsed()));
    }
    verdict.hostile_sent = hostile.stop();
    drop(load);
    if !verdict.passed() {
        cluster.keep = true;
        for index in HONEST {
            for line in cluster.log_trouble(index, 4) {
                eprintln!("[{}] validator-{index}: {line}", scenario.name);
            }
        }
    }
    drop(cluster);
    phases.push(("teardown", started.elapsed()));
    let phases: Vec<String> = phases
        .iter()
        .map(|(phase, at)| format!("{phase} {:.1}", at.as_secs_f64()))
        .collect();
    eprintln!(
        "[{}] {} ({} s)",
        scenario.name,
        if verdict.passed() { "passed" } else { "FAILED" },
        phases.join(", ")
    );
    verdict
}

/// Every honest node kept evidence of the hostile's equivocation, and
/// none against an honest validator.
fn check_evidence(cluster: &Cluster, verdict: &mut Verdict) {
    let hostile = cluster.net.genesis.validators[HOSTILE].public_key;
    for index in HONEST {
        let url = format!("{}/v1/evidence", cluster.api(index));
        match crate::client::get_json::<Vec<consensus::Equivocation>>(&url) {
            Ok(records) if records.is_empty() => verdict
                .failures
                .push(format!("validator-{index} lists no equivocation evidence")),
            Ok(records) => {
                if let Some(wrong) = records.iter().find(|record| record.offender() != hostile) {
                    verdict.failures.push(format!(
                        "validator-{index} lists evidence against honest validator {}",
                        wrong.offender()
                    ));
                }
            }
            Err(error) => verdict
                .failures
                .push(format!("validator-{index}: GET /v1/evidence: {error}")),
        }
    }
}

/// Stops [`RESTARTED`] until the others have committed a few blocks.
fn stop_for_a_while(cluster: &mut Cluster, verdict: &mut Verdict) {
    cluster.stop(RESTARTED);
    let start = checks::heights(cluster)[0].unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if checks::heights(cluster)[0].is_some_and(|height| height >= start + BLOCKS_WHILE_DOWN) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    verdict.failures.push(format!(
        "setup: with validator-{RESTARTED} down the others did not commit {BLOCKS_WHILE_DOWN} blocks in 30 s"
    ));
}
