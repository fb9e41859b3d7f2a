//! The chaos runner (issue 18): a local network of real `scf` processes
//! under steady business traffic while validators are killed, paused,
//! isolated and restarted on a schedule drawn from a seed, then a checker
//! that reads the history and every node's chain and proves nothing
//! acknowledged was lost and no two nodes disagree.
//!
//! - [`net`]: the processes (N validators and an observer);
//! - [`model`] and [`traffic`]: the business mix, paced, its outcomes
//!   written to the history;
//! - [`faults`]: the seeded schedule and its execution, with [`disk`]'s
//!   full filesystems and damaged files;
//! - [`history`]: the JSON-lines record of everything that happened;
//! - [`checker`]: the verdict and the summary JSON.
//!
//! [`run`] ties them together; the `scf-chaos` binary and the CI test
//! (`tests/tests/chaos.rs`) only build a [`Config`] and call it.
//!
//! The seed fixes the fault schedule (kinds, targets, times, durations) and
//! every choice the traffic makes from a given chain; the chain itself
//! depends on timing, so two runs of a seed are alike, not identical.

pub mod checker;
pub mod disk;
pub mod faults;
pub mod history;
pub mod model;
pub mod net;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::SignedTransaction;
use node::api::types::{ErrorBody, StatusView, SubmitTx};
use serde::de::DeserializeOwned;

pub use checker::Summary;
pub use faults::FaultKind;

use history::{Event, History};
use net::{ChaosNet, Roster};

/// How long the traffic may take to resolve what is in flight at the end.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long the nodes may take to reach one height at the end.
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);

/// What one run does.
#[derive(Clone, Debug)]
pub struct Config {
    pub validators: usize,
    pub seconds: u64,
    /// Transactions released per second (the participants' count follows).
    pub rate: u32,
    pub faults: Vec<FaultKind>,
    pub seed: u64,
    /// The `scf` binary the nodes run.
    pub binary: PathBuf,
    /// Where the history goes; by default `history.jsonl` in the run's
    /// directory.
    pub history: Option<PathBuf>,
    /// Keep the run's directory even when it passed.
    pub keep: bool,
    /// Confirmed receivables mature this many seconds after confirmation
    /// (lowest, highest).
    pub maturity_s: (u64, u64),
}

impl Config {
    /// The command line that replays this run.
    pub fn replay_command(&self) -> String {
        let faults: Vec<&str> = self.faults.iter().map(|kind| kind.name()).collect();
        format!(
            "scf-chaos --validators {} --seconds {} --rate {} --faults {} --seed {}",
            self.validators,
            self.seconds,
            self.rate,
            faults.join(","),
            self.seed
        )
    }
}

/// A small seeded generator (SplitMix64): the schedule and the traffic's
/// choices must replay from the seed alone, on any platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// Uniform in `low..=high` seconds.
    pub fn seconds(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(1000 * low + self.below(1000 * (high - low) + 1))
    }
}

/// Which nodes take traffic now, and the height each last reported.
#[derive(Debug)]
pub struct Liveness {
    up: Vec<AtomicBool>,
    heights: Vec<AtomicU64>,
}

impl Liveness {
    pub fn new(nodes: usize) -> Liveness {
        Liveness {
            up: (0..nodes).map(|_| AtomicBool::new(true)).collect(),
            heights: (0..nodes).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn set_up(&self, node: usize, up: bool) {
        self.up[node].store(up, Ordering::Relaxed);
    }

    pub fn is_up(&self, node: usize) -> bool {
        self.up[node].load(Ordering::Relaxed)
    }

    pub fn height(&self, node: usize) -> u64 {
        self.heights[node].load(Ordering::Relaxed)
    }

    /// A random node that is up.
    pub fn pick(&self, rng: &mut Rng) -> Option<usize> {
        let up: Vec<usize> = (0..self.up.len()).filter(|n| self.is_up(*n)).collect();
        (!up.is_empty()).then(|| up[rng.below(up.len() as u64) as usize])
    }

    /// The up node with the highest height, if that is at least `height`.
    pub fn highest_at_least(&self, height: u64) -> Option<usize> {
        (0..self.up.len())
            .filter(|n| self.is_up(*n))
            .max_by_key(|n| self.height(*n))
            .filter(|n| self.height(*n) >= height)
    }

    /// The highest height any node but `except` reported.
    pub fn highest_but(&self, except: usize) -> u64 {
        (0..self.up.len())
            .filter(|n| *n != except)
            .map(|n| self.height(n))
            .max()
            .unwrap_or(0)
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: std::sync::OnceLock<ureq::Agent> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(3)))
            .http_status_as_error(false)
            .build()
            .into()
    })
}

/// GET a JSON answer; an error names the URL and ends with `HTTP <code>`
/// when the node answered with another status than 200.
pub fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    let mut answer = agent()
        .get(url)
        .call()
        .map_err(|error| format!("GET {url}: {error}"))?;
    let status = answer.status().as_u16();
    if status != 200 {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    answer
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_json()
        .map_err(|error| format!("GET {url}: {error}"))
}

/// POST /v1/txs: the HTTP status (0: no answer) and the error body if any.
pub fn post_tx(api: &str, tx: &SignedTransaction) -> (u16, Option<ErrorBody>) {
    match agent().post(format!("{api}/v1/txs")).send_json(SubmitTx {
        tx: hex::encode(tx.to_bytes()),
    }) {
        Ok(mut answer) => {
            let status = answer.status().as_u16();
            let body = if status >= 400 {
                answer.body_mut().read_json::<ErrorBody>().ok()
            } else {
                None
            };
            (status, body)
        }
        Err(_) => (0, None),
    }
}

pub fn status(api: &str) -> Result<StatusView, String> {
    get_json(&format!("{api}/v1/status"))
}

/// The thread that keeps [`Liveness`]'s heights (which the traffic's
/// follower reads) and the history's height records up to date; stopped
/// and joined when dropped.
pub struct Monitor {
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    pub fn start(apis: Vec<String>, live: Arc<Liveness>, history: Arc<History>) -> Monitor {
        let running = Arc::new(AtomicBool::new(true));
        let thread = {
            let running = Arc::clone(&running);
            std::thread::spawn(move || monitor(&apis, &live, &history, &running))
        };
        Monitor {
            running,
            thread: Some(thread),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls every node that is up, records height changes, every 200 ms.
fn monitor(apis: &[String], live: &Liveness, history: &History, running: &AtomicBool) {
    let mut last = vec![u64::MAX; apis.len()];
    while running.load(Ordering::Relaxed) {
        for (node, api) in apis.iter().enumerate() {
            if !live.is_up(node) {
                continue;
            }
            if let Ok(status) = status(api) {
                live.heights[node].store(status.height, Ordering::Relaxed);
                if status.height != last[node] {
                    last[node] = status.height;
                    history.record(Event::Height {
                        node,
                        height: status.height,
                    });
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `scf` binary next to the running executable (`target/<profile>/`
/// for a binary, its parent for a test in `deps/`), or `$SCF_BIN`.
pub fn sibling_scf_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SCF_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|error| error.to_string())?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let binary = dir.join("scf");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "no scf binary at {}: build it with `cargo build --workspace --bins` (add --release for a release run) or set SCF_BIN",
            binary.display()
        ))
    }
}

/// Runs one chaos scenario end to end and returns its summary (whose
/// `violations` say whether it passed). `Err` only when the run could not
/// be staged at all (no binary, no directory, a node that never started).
pub fn run(config: &Config) -> Result<Summary, String> {
    let started = Instant::now();
    let roster = Roster::for_rate(config.rate);
    let chaos = ChaosNet::start(
        &config.binary,
        config.validators,
        &roster,
        config.faults.contains(&FaultKind::Disk),
    )?;
    let history_path = config
        .history
        .clone()
        .unwrap_or_else(|| chaos.dir().join("history.jsonl"));
    let history = Arc::new(
        History::create(&history_path, started)
            .map_err(|error| format!("creating {}: {error}", history_path.display()))?,
    );
    eprintln!(
        "chaos: seed {} · {} validators + 1 observer in {} · history {}",
        config.seed,
        config.validators,
        chaos.dir().display(),
        history_path.display()
    );
    let apis = chaos.apis();
    let live = Arc::new(Liveness::new(chaos.len()));
    let monitor = Monitor::start(apis.clone(), Arc::clone(&live), Arc::clone(&history));
    let model = model::Model::new(
        chaos.net.genesis.chain_id(),
        &chaos.net.participant_keys,
        &roster.participants(),
        config.seed,
        config.maturity_s,
    );
    let mut traffic = traffic::Traffic::start(
        apis.clone(),
        model,
        Arc::clone(&history),
        Arc::clone(&live),
        config.rate,
        config.seed,
    );
    let schedule = faults::schedule(
        config.seed,
        &config.faults,
        config.validators,
        Duration::from_secs(config.seconds),
    );
    let chaos = Arc::new(Mutex::new(chaos));
    let fault_thread = faults::Injector::start(
        Arc::clone(&chaos),
        Arc::clone(&live),
        Arc::clone(&history),
        schedule,
        started,
    );
    let end = started + Duration::from_secs(config.seconds);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(250));
        let mut net = chaos.lock().unwrap_or_else(|poison| poison.into_inner());
        for (node, status) in net.poll_exits() {
            live.set_up(node, false);
            history.record(Event::Violation {
                what: format!(
                    "{} exited on its own ({status}); last errors: {:?}",
                    net.name(node),
                    net.log_trouble(node, 3)
                ),
            });
        }
    }
    let injected = fault_thread.stop();
    let stuck = traffic.stop(DRAIN_LIMIT);
    let stats = Arc::clone(&traffic.stats);
    let participants = traffic.participants();
    drop(traffic);
    let mut chaos = Arc::try_unwrap(chaos)
        .map_err(|_| "the fault injector still holds the network".to_string())?
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    // Every node, healed, must reach one height.
    let converge = checker::wait_for_convergence(&apis, &live, CONVERGE_LIMIT);
    drop(monitor);
    history.flush();
    let mut summary = checker::check(
        &mut chaos,
        config,
        &history_path,
        &participants,
        checker::RunFacts {
            injected,
            stuck_in_flight: stuck,
            converge,
            stats: &stats,
            seconds: started.elapsed().as_secs_f64(),
        },
    );
    summary.history = history_path.display().to_string();
    if !summary.violations.is_empty() || config.keep {
        summary.dir = Some(chaos.keep_dir().display().to_string());
    } else if config.history.is_none() {
        summary.history =
            "(removed with the run's directory: pass --keep or --history FILE)".into();
    }
    Ok(summary)
}
