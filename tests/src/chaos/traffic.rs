//! Steady business traffic from many participants, each transaction sent to
//! a live node and every outcome written to the history.
//!
//! Three kinds of thread share the [`Model`]:
//! - the pacer releases transactions at the configured rate, one per idle
//!   participant that has something to do, and asks about any transaction
//!   in flight for longer than [`STALE_AFTER`];
//! - workers send them (`POST /v1/txs` to a random live node; another node
//!   on no answer) and ask about stale ones (`GET /v1/txs/{hash}`): refused
//!   at execution frees the participant, unknown everywhere it asked means
//!   the transaction was lost from the mempools with a killed node, so the
//!   same signed transaction is sent again, as a client would;
//! - the follower reads every committed block in height order from a live
//!   node and applies it to the model; each of our transactions in it is
//!   recorded as committed, with the node that served it — the
//!   acknowledgement the checker holds every node to.
//!
//! It checks nothing (see [`super::checker`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ledger::{Block, SignedTransaction, TxHash};
use node::api::types::{BlockView, TxState, TxStatusView};

use super::history::{Event, History};
use super::model::{InFlight, Model};
use super::{Liveness, Rng};

/// A transaction in flight this long is asked about.
const STALE_AFTER: Duration = Duration::from_secs(5);
/// Nodes a submission tries before it is left to the stale check.
const SUBMIT_TRIES: usize = 3;
/// Threads sending transactions. Each submission is a blocking HTTP call
/// (tens of milliseconds on a loaded machine), so twelve capped the offered
/// rate near 290/s with no faults; 48 reached 434/s in the same setting.
const WORKERS: usize = 64;

/// Counters for the summary.
#[derive(Debug, Default)]
pub struct TrafficStats {
    pub submitted: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub committed: AtomicU64,
    pub resubmitted: AtomicU64,
    /// Transactions the rate asked for that no idle participant could make.
    pub starved: AtomicU64,
    /// Committed transactions the traffic did not sign (none expected).
    pub foreign: AtomicU64,
}

enum Job {
    Submit {
        actor: usize,
        tx: Box<SignedTransaction>,
        attempt: u32,
    },
    Check {
        actor: usize,
        tx: Box<SignedTransaction>,
        attempts: u32,
    },
}

struct Context {
    apis: Vec<String>,
    model: Mutex<Model>,
    history: Arc<History>,
    live: Arc<Liveness>,
    stats: Arc<TrafficStats>,
}

/// The running traffic.
pub struct Traffic {
    context: Arc<Context>,
    pacing: Arc<AtomicBool>,
    working: Arc<AtomicBool>,
    pacer: Option<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
    pub stats: Arc<TrafficStats>,
}

impl Traffic {
    pub fn start(
        apis: Vec<String>,
        model: Model,
        history: Arc<History>,
        live: Arc<Liveness>,
        rate: u32,
        seed: u64,
    ) -> Traffic {
        let stats = Arc::new(TrafficStats::default());
        let context = Arc::new(Context {
            apis,
            model: Mutex::new(model),
            history,
            live,
            stats: Arc::clone(&stats),
        });
        let pacing = Arc::new(AtomicBool::new(true));
        let working = Arc::new(AtomicBool::new(true));
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut others = Vec::new();
        for worker in 0..WORKERS {
            let (context, queue, working, jobs) = (
                Arc::clone(&context),
                Arc::clone(&queue),
                Arc::clone(&working),
                jobs.clone(),
            );
            let rng = Rng::new(seed ^ 0x5eed_0000 ^ worker as u64);
            others.push(std::thread::spawn(move || {
                work(&context, &queue, &jobs, &working, rng);
            }));
        }
        {
            let (context, working) = (Arc::clone(&context), Arc::clone(&working));
            others.push(std::thread::spawn(move || follow(&context, &working)));
        }
        let pacer = {
            let (context, pacing, working) = (
                Arc::clone(&context),
                Arc::clone(&pacing),
                Arc::clone(&working),
            );
            Some(std::thread::spawn(move || {
                pace(
                    &context,
                    &jobs,
                    &pacing,
                    &working,
                    rate,
                    Rng::new(seed ^ 0x7a_ff1c),
                );
            }))
        };
        Traffic {
            context,
            pacing,
            working,
            pacer,
            others,
            stats,
        }
    }

    /// Transactions in flight now.
    pub fn in_flight(&self) -> usize {
        lock(&self.context.model)
            .actors
            .iter()
            .filter(|actor| actor.in_flight.is_some())
            .count()
    }

    /// Stops releasing new transactions, waits (at most `limit`) for those
    /// in flight to be resolved, then stops every thread. Returns those
    /// still in flight: (tx hash, kind, seconds in flight, submissions).
    pub fn stop(&mut self, limit: Duration) -> Vec<(String, String, f64, u32)> {
        // The pacer goes on asking about stale transactions (and so
        // sending lost ones again) while they drain.
        self.pacing.store(false, Ordering::Relaxed);
        let deadline = Instant::now() + limit;
        while self.in_flight() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let left = lock(&self.context.model)
            .actors
            .iter()
            .filter_map(|actor| actor.in_flight.as_ref())
            .map(|flight| {
                (
                    flight.hash.to_string(),
                    flight.tx.tx.body.kind().to_string(),
                    flight.since.elapsed().as_secs_f64(),
                    flight.attempts + 1,
                )
            })
            .collect();
        self.working.store(false, Ordering::Relaxed);
        if let Some(pacer) = self.pacer.take() {
            let _ = pacer.join();
        }
        for thread in self.others.drain(..) {
            let _ = thread.join();
        }
        left
    }

    /// (participant name, public key, committed count) per participant.
    pub fn participants(&self) -> Vec<(String, crypto::PublicKey, u64)> {
        lock(&self.context.model)
            .actors
            .iter()
            .map(|actor| (actor.name.clone(), actor.key.public(), actor.committed))
            .collect()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.pacing.store(false, Ordering::Relaxed);
        self.working.store(false, Ordering::Relaxed);
        if let Some(pacer) = self.pacer.take() {
            let _ = pacer.join();
        }
        for thread in self.others.drain(..) {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Releases transactions at `rate` a second while `pacing`, and asks about
/// stale ones while `working`.
fn pace(
    context: &Context,
    jobs: &Sender<Job>,
    pacing: &AtomicBool,
    working: &AtomicBool,
    rate: u32,
    mut rng: Rng,
) {
    let started = Instant::now();
    let mut released = 0u64;
    let mut cursor = 0usize;
    while working.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
        let due = if pacing.load(Ordering::Relaxed) {
            (f64::from(rate) * started.elapsed().as_secs_f64()) as u64
        } else {
            released
        };
        let now_ms = node::shared::now_ms();
        let mut model = lock(&context.model);
        let count = model.actors.len();
        let mut scanned = 0;
        while released < due && scanned < count {
            let actor = cursor % count;
            cursor += 1;
            scanned += 1;
            if model.actors[actor].in_flight.is_some() {
                continue;
            }
            let Some(body) = model.choose(actor, now_ms, &mut rng) else {
                continue;
            };
            let tx = model.sign(actor, body);
            let now = Instant::now();
            model.actors[actor].in_flight = Some(InFlight {
                hash: tx.hash(),
                tx: tx.clone(),
                since: now,
                last_check: now,
                attempts: 0,
            });
            released += 1;
            let _ = jobs.send(Job::Submit {
                actor,
                tx: Box::new(tx),
                attempt: 0,
            });
        }
        if released < due {
            // Every participant is busy or has nothing to do: the rate is
            // not banked for later (that would be a burst, not a rate).
            context
                .stats
                .starved
                .fetch_add(due - released, Ordering::Relaxed);
            released = due;
        }
        for (actor, state) in model.actors.iter_mut().enumerate() {
            if let Some(flight) = &mut state.in_flight
                && flight.last_check.elapsed() > STALE_AFTER
            {
                flight.last_check = Instant::now();
                let _ = jobs.send(Job::Check {
                    actor,
                    tx: Box::new(flight.tx.clone()),
                    attempts: flight.attempts,
                });
            }
        }
    }
}

fn work(
    context: &Context,
    queue: &Mutex<Receiver<Job>>,
    jobs: &Sender<Job>,
    working: &AtomicBool,
    mut rng: Rng,
) {
    while working.load(Ordering::Relaxed) {
        let job = lock(queue).recv_timeout(Duration::from_millis(100));
        match job {
            Ok(Job::Submit { actor, tx, attempt }) => {
                submit(context, actor, &tx, attempt, &mut rng);
            }
            Ok(Job::Check {
                actor,
                tx,
                attempts,
            }) => check(context, jobs, actor, tx, attempts, &mut rng),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Frees `actor` if its transaction in flight is `hash`.
fn free(context: &Context, actor: usize, hash: &TxHash) {
    let mut model = lock(&context.model);
    if model.actors[actor]
        .in_flight
        .as_ref()
        .is_some_and(|flight| flight.hash == *hash)
    {
        model.actors[actor].in_flight = None;
    }
}

fn submit(context: &Context, actor: usize, tx: &SignedTransaction, attempt: u32, rng: &mut Rng) {
    let hash = tx.hash();
    let history = &context.history;
    for _ in 0..SUBMIT_TRIES {
        let Some(node) = context.live.pick(rng) else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        history.record(Event::Submitted {
            tx: hash.to_string(),
            signer: tx.tx.signer.to_string(),
            nonce: tx.tx.nonce,
            kind: tx.tx.body.kind().into(),
            node,
            attempt,
        });
        context.stats.submitted.fetch_add(1, Ordering::Relaxed);
        let (http, error) = super::post_tx(&context.apis[node], tx);
        match http {
            200 | 202 | 409 => {
                history.record(Event::Accepted {
                    tx: hash.to_string(),
                    node,
                });
                context.stats.accepted.fetch_add(1, Ordering::Relaxed);
                return;
            }
            400..=499 => {
                let (rule, detail) = error.map_or_else(
                    || (format!("http_{http}"), String::new()),
                    |body| (body.error, body.detail),
                );
                history.record(Event::Refused {
                    tx: hash.to_string(),
                    node,
                    rule,
                    detail,
                });
                context.stats.refused.fetch_add(1, Ordering::Relaxed);
                free(context, actor, &hash);
                return;
            }
            _ => history.record(Event::Unreachable {
                tx: hash.to_string(),
                node,
                http,
            }),
        }
    }
    // Left in flight: the stale check finds out where it is.
}

fn check(
    context: &Context,
    jobs: &Sender<Job>,
    actor: usize,
    tx: Box<SignedTransaction>,
    attempts: u32,
    rng: &mut Rng,
) {
    let hash = tx.hash();
    let Some(node) = context.live.pick(rng) else {
        return;
    };
    let url = format!("{}/v1/txs/{hash}", context.apis[node]);
    match super::get_json::<TxStatusView>(&url) {
        Ok(view) => match view.status {
            // The follower records the commit when it reads the block.
            TxState::Committed { .. } | TxState::Pending => {}
            TxState::Rejected { error, detail } => {
                context.history.record(Event::Refused {
                    tx: hash.to_string(),
                    node,
                    rule: error,
                    detail,
                });
                context.stats.refused.fetch_add(1, Ordering::Relaxed);
                free(context, actor, &hash);
            }
        },
        Err(error) if error.ends_with("HTTP 404") => {
            // Unknown to a live node: lost with a killed node's mempool (or
            // never delivered). Send the same signed transaction again.
            let attempt = attempts + 1;
            {
                let mut model = lock(&context.model);
                match &mut model.actors[actor].in_flight {
                    Some(flight) if flight.hash == hash => flight.attempts = attempt,
                    _ => return,
                }
            }
            context.stats.resubmitted.fetch_add(1, Ordering::Relaxed);
            let _ = jobs.send(Job::Submit { actor, tx, attempt });
        }
        Err(_) => {}
    }
}

/// Reads every committed block in order from a live node and applies it.
fn follow(context: &Context, working: &AtomicBool) {
    let mut next = 1u64;
    while working.load(Ordering::Relaxed) {
        let Some(node) = context.live.highest_at_least(next) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let url = format!("{}/v1/blocks/{next}", context.apis[node]);
        let block = super::get_json::<BlockView>(&url).and_then(|view| {
            let bytes = hex::decode(&view.block_hex).map_err(|error| error.to_string())?;
            Block::from_bytes(&bytes).map_err(|error| error.to_string())
        });
        let Ok(block) = block else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let mut model = lock(&context.model);
        for (index, tx) in block.txs.iter().enumerate() {
            let tokens = match model.apply(tx) {
                Some(applied) => {
                    context.stats.committed.fetch_add(1, Ordering::Relaxed);
                    applied.tokens
                }
                None => {
                    context.stats.foreign.fetch_add(1, Ordering::Relaxed);
                    Vec::new()
                }
            };
            context.history.record(Event::Committed {
                tx: tx.hash().to_string(),
                node,
                height: next,
                index: index as u32,
                tokens: tokens.iter().map(ToString::to_string).collect(),
            });
        }
        drop(model);
        next += 1;
    }
}
