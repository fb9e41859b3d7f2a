//! Faults on a schedule drawn from the seed, and the thread that injects
//! them into the network.
//!
//! The schedule is sequential: one fault at a time, each followed by a
//! short gap, so never more than one validator is out (at most f for any
//! n ≥ 4) — except `quorum`, which takes f + 1 validators down on purpose.
//! Single-node faults rotate over the validators. Kinds:
//!
//! | kind | what happens to the target | healed by |
//! | --- | --- | --- |
//! | `kill` | `kill -9` | `scf node start --home` after 2–6 s |
//! | `pause` | SIGSTOP | SIGCONT after 5–20 s |
//! | `restart` | SIGTERM (must exit cleanly) | an immediate start |
//! | `isolate` | `kill -9`, then started inside `unshare -n` (alive, cut off) | `kill -9` and a normal start after 5–15 s |
//! | `quorum` | `kill -9` of f + 1 validators | starting them all after 8–15 s |
//! | `disk` | its data tmpfs shrunk to what it holds (no space left; see [`super::disk`]) | the space given back after 5–15 s, and a restart if it stopped |
//! | `clock` | restarted with its wall clock 3–8 s ahead or behind (libfaketime) | a normal restart after 15–30 s |
//!
//! After each fault the injector waits for the target to reach the height
//! the others held when it came back, and records how long that took.
//! Stopping the injector heals the fault in progress first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::history::{Event, History};
use super::net::{ChaosNet, Placement};
use super::{Liveness, Rng};

/// A restarted or resumed validator must catch up within this long (the
/// issue's bound); the injector waits a little longer to measure a miss.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(20);
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(40);
/// No fault starts before the network has committed for this long.
const WARM_UP: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Kill,
    Pause,
    Restart,
    Isolate,
    Quorum,
    Clock,
    Disk,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Restart,
        FaultKind::Isolate,
        FaultKind::Quorum,
        FaultKind::Clock,
        FaultKind::Disk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
            FaultKind::Isolate => "isolate",
            FaultKind::Quorum => "quorum",
            FaultKind::Clock => "clock",
            FaultKind::Disk => "disk",
        }
    }

    pub fn parse(name: &str) -> Result<FaultKind, String> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = FaultKind::ALL.iter().map(|kind| kind.name()).collect();
                format!("unknown fault {name:?}; known: {}", known.join(","))
            })
    }

    /// How long the fault lasts, drawn from its range.
    fn duration(self, rng: &mut Rng) -> Duration {
        match self {
            FaultKind::Kill => rng.seconds(2, 6),
            FaultKind::Pause => rng.seconds(5, 20),
            FaultKind::Restart => Duration::ZERO,
            FaultKind::Isolate => rng.seconds(5, 15),
            FaultKind::Quorum => rng.seconds(8, 15),
            FaultKind::Clock => rng.seconds(15, 30),
            FaultKind::Disk => rng.seconds(5, 15),
        }
    }
}

/// One fault of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedFault {
    pub id: u32,
    /// From the run's start.
    pub at: Duration,
    pub kind: FaultKind,
    pub validators: Vec<usize>,
    pub duration: Duration,
    /// The clock skew of a `clock` fault, seconds (0 for the others).
    pub skew_s: i64,
}

/// The faults of a run of `length` on `validators` validators: a function
/// of its arguments only.
pub fn schedule(
    seed: u64,
    kinds: &[FaultKind],
    validators: usize,
    length: Duration,
) -> Vec<PlannedFault> {
    let mut rng = Rng::new(seed ^ 0xfa01_7000);
    let mut planned = Vec::new();
    if kinds.is_empty() || validators == 0 {
        return planned;
    }
    let f = (validators - 1) / 3;
    let mut at = WARM_UP;
    let mut target = rng.below(validators as u64) as usize;
    // Leave the last stretch of the run for recovery.
    let last = length.saturating_sub(Duration::from_secs(10));
    // Each kind in turn, in an order the seed shuffles once per round, so a
    // short run still sees every kind it asked for.
    let mut round: Vec<FaultKind> = Vec::new();
    while at < last {
        if round.is_empty() {
            round = kinds.to_vec();
            for index in (1..round.len()).rev() {
                round.swap(index, rng.below(index as u64 + 1) as usize);
            }
        }
        let kind = round.pop().expect("refilled above");
        let duration = kind.duration(&mut rng);
        let targets: Vec<usize> = if kind == FaultKind::Quorum {
            (0..=f).map(|k| (target + k) % validators).collect()
        } else {
            vec![target]
        };
        target = (target + 1) % validators;
        let skew_s = if kind == FaultKind::Clock {
            let magnitude = 3 + rng.below(6) as i64;
            if rng.below(2) == 0 {
                magnitude
            } else {
                -magnitude
            }
        } else {
            0
        };
        planned.push(PlannedFault {
            id: planned.len() as u32,
            at,
            kind,
            validators: targets,
            duration,
            skew_s,
        });
        // About one fault every 10 s, counting its length and catching up.
        at += duration.max(Duration::from_secs(4)) + rng.seconds(4, 8);
    }
    planned
}

/// What the injector did, for the summary.
#[derive(Clone, Debug, Default)]
pub struct Injected {
    /// (kind, count) of faults injected.
    pub counts: Vec<(FaultKind, u32)>,
    /// Steps that failed (a node that would not start again, a stop that
    /// was not clean): each a violation.
    pub failures: Vec<String>,
}

pub struct Injector {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Injected>>,
}

impl Injector {
    pub fn start(
        net: Arc<Mutex<ChaosNet>>,
        live: Arc<Liveness>,
        history: Arc<History>,
        schedule: Vec<PlannedFault>,
        started: Instant,
    ) -> Injector {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut injected = Injected::default();
                for fault in schedule {
                    if !sleep_until(started + fault.at, &stop) {
                        break;
                    }
                    inject(&net, &live, &history, &fault, &stop, &mut injected);
                }
                injected
            })
        };
        Injector {
            stop,
            thread: Some(thread),
        }
    }

    /// Heals the fault in progress and returns what was injected.
    pub fn stop(mut self) -> Injected {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|thread| thread.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// Sleeps until `when` or until stopped; false when stopped.
fn sleep_until(when: Instant, stop: &AtomicBool) -> bool {
    while Instant::now() < when {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !stop.load(Ordering::Relaxed)
}

fn lock(net: &Mutex<ChaosNet>) -> std::sync::MutexGuard<'_, ChaosNet> {
    net.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn inject(
    net: &Mutex<ChaosNet>,
    live: &Liveness,
    history: &History,
    fault: &PlannedFault,
    stop: &AtomicBool,
    injected: &mut Injected,
) {
    let kind = fault.kind;
    let mut failures = Vec::new();
    let mut note = |result: Result<(), String>| {
        if let Err(error) = result {
            failures.push(format!("{} #{}: {error}", kind.name(), fault.id));
        }
    };
    // Take the targets out of the traffic before touching them.
    for &node in &fault.validators {
        live.set_up(node, false);
    }
    history.record(Event::FaultStart {
        id: fault.id,
        kind: kind.name().into(),
        validators: fault.validators.clone(),
        detail: if kind == FaultKind::Clock {
            format!(
                "clock {:+} s for {:.1} s",
                fault.skew_s,
                fault.duration.as_secs_f64()
            )
        } else {
            format!("for {:.1} s", fault.duration.as_secs_f64())
        },
    });
    match kind {
        FaultKind::Kill | FaultKind::Quorum => {
            for &node in &fault.validators {
                note(lock(net).kill(node));
            }
            if kind == FaultKind::Quorum {
                history.record(Event::Quorum { up: false });
            }
        }
        FaultKind::Pause => {
            for &node in &fault.validators {
                note(lock(net).pause(node));
            }
        }
        FaultKind::Disk => {
            for &node in &fault.validators {
                let mut net = lock(net);
                net.disk_full[node] = true;
                note(super::disk::fill(&net.data_dir(node)).map(|_| ()));
            }
        }
        FaultKind::Restart => {
            for &node in &fault.validators {
                let stopped = lock(net).stop(node);
                note(stopped.and_then(|status| {
                    if status.success() {
                        Ok(())
                    } else {
                        Err(format!("a SIGTERM stop exited with {status}, not cleanly"))
                    }
                }));
            }
        }
        FaultKind::Isolate | FaultKind::Clock => {
            let placement = if kind == FaultKind::Clock {
                Placement::Skewed(fault.skew_s)
            } else {
                Placement::Isolated
            };
            for &node in &fault.validators {
                let mut net = lock(net);
                note(net.kill(node));
                note(net.spawn(node, placement));
            }
            if kind == FaultKind::Clock {
                // A skewed validator keeps voting: back in the traffic.
                for &node in &fault.validators {
                    note(wait_for_api(net, node));
                    live.set_up(node, true);
                }
            }
        }
    }
    // The fault lasts its duration, or until the run stops.
    if kind == FaultKind::Disk {
        // RocksDB appends to a WAL it preallocated, so a running node may
        // not notice a full disk for minutes; an operator's restart on the
        // full disk (which must fail cleanly, or run) is what surely
        // writes. Half the fault running, then the restart.
        let _ = sleep_until(Instant::now() + fault.duration / 2, stop);
        for &node in &fault.validators {
            let mut net = lock(net);
            if net.is_running(node) {
                match net.stop(node) {
                    Ok(status) if !status.success() => note(Err(format!(
                        "a SIGTERM stop on a full disk exited with {status}; last errors: {:?}",
                        net.log_trouble(node, 2)
                    ))),
                    Ok(_) => {}
                    Err(error) => note(Err(error)),
                }
                // Closing gave back the WAL's preallocated space: full again.
                note(super::disk::fill(&net.data_dir(node)).map(|_| ()));
                note(net.spawn(node, Placement::Normal));
            }
        }
        let _ = sleep_until(Instant::now() + fault.duration / 2, stop);
    } else {
        let _ = sleep_until(Instant::now() + fault.duration, stop);
    }
    match kind {
        FaultKind::Pause => {
            for &node in &fault.validators {
                note(lock(net).resume(node));
            }
        }
        FaultKind::Isolate | FaultKind::Clock => {
            for &node in &fault.validators {
                live.set_up(node, false);
                let mut net = lock(net);
                if net.is_running(node) {
                    note(net.kill(node));
                } else {
                    note(Err(format!(
                        "{} exited during a {} fault; last errors: {:?}",
                        net.name(node),
                        kind.name(),
                        net.log_trouble(node, 3)
                    )));
                }
                note(net.spawn(node, Placement::Normal));
            }
        }
        FaultKind::Kill | FaultKind::Quorum | FaultKind::Restart => {
            // Quorum returns as the validators start again: they vote as
            // soon as their stores are open, often before their APIs
            // answer, so the outage ends here and the 10 s allowed for
            // commits to resume include their start-up.
            if kind == FaultKind::Quorum {
                history.record(Event::Quorum { up: true });
            }
            for &node in &fault.validators {
                note(lock(net).spawn(node, Placement::Normal));
            }
        }
        FaultKind::Disk => {
            for &node in &fault.validators {
                let mut net = lock(net);
                note(super::disk::free(&net.data_dir(node)));
                net.poll_exits();
                net.disk_full[node] = false;
                let stopped = net
                    .disk_exits
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == node)
                    .copied();
                net.disk_exits.retain(|(n, _)| *n != node);
                let log =
                    std::fs::read_to_string(net.home(node).join("node.log")).unwrap_or_default();
                let panicked = log.contains("panicked");
                if let Some((_, status)) = stopped {
                    // Stopping is allowed; crashing is not.
                    if status.code().is_none() || status.code() == Some(101) || panicked {
                        note(Err(format!(
                            "{} crashed ({status}) when its disk was full instead of stopping cleanly; last errors: {:?}",
                            net.name(node),
                            net.log_trouble(node, 3)
                        )));
                    } else {
                        history.record(Event::DiskFull {
                            node,
                            outcome: format!(
                                "stopped ({status}): {}",
                                net.log_trouble(node, 1).join(" ")
                            ),
                        });
                    }
                    note(net.spawn(node, Placement::Normal));
                } else {
                    if panicked {
                        note(Err(format!(
                            "{} panicked when its disk was full; last errors: {:?}",
                            net.name(node),
                            net.log_trouble(node, 3)
                        )));
                    }
                    history.record(Event::DiskFull {
                        node,
                        outcome: format!(
                            "kept running; last errors: {}",
                            net.log_trouble(node, 1).join(" ")
                        ),
                    });
                }
            }
        }
    }
    // Back in the traffic once each answers again.
    let mut targets = Vec::new();
    for &node in &fault.validators {
        let answered = wait_for_api(net, node);
        note(answered);
        targets.push((node, live.highest_but(node)));
        live.set_up(node, true);
    }
    history.record(Event::FaultEnd {
        id: fault.id,
        kind: kind.name().into(),
    });
    for (node, target) in targets {
        let back = Instant::now();
        let mut seconds = None;
        while back.elapsed() < CATCH_UP_WAIT {
            if live.height(node) >= target {
                seconds = Some(back.elapsed().as_secs_f64());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        history.record(Event::CaughtUp {
            node,
            target,
            seconds,
        });
    }
    for failure in &failures {
        history.record(Event::Violation {
            what: failure.clone(),
        });
    }
    injected.failures.extend(failures);
    match injected.counts.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, count)) => *count += 1,
        None => injected.counts.push((kind, 1)),
    }
}

/// Waits for a node's API without holding the network's lock for long.
fn wait_for_api(net: &Mutex<ChaosNet>, node: usize) -> Result<(), String> {
    let api = lock(net).api(node);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if super::status(&api).is_ok() {
            return Ok(());
        }
        let net = lock(net);
        if !net.is_running(node) {
            return Err(format!(
                "{} exited while starting again; last errors: {:?}",
                net.name(node),
                net.log_trouble(node, 3)
            ));
        }
        drop(net);
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "node {node}'s API did not answer within 60 s of its restart"
    ))
}
