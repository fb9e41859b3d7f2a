//! Watching a running testnet's validators: one that stops is reported (who,
//! pid, exit status, home, log, and the command that starts it again) while
//! the others go on; one started again by hand is noticed and watched too.
//!
//! Each validator is in one of three states:
//!
//! - **started**: a child of this process; its exit is seen by `try_wait`,
//!   with its exit status.
//! - **down**: not running. Its API (the address in its home's
//!   `config.toml`) is polled; when it answers with this chain's id and the
//!   validator's name, someone started it again.
//! - **outside**: running, but started by someone else (the operator, with
//!   the printed command). It is not our child, so it cannot be waited on:
//!   its pid comes from `HOME/node.pid` (written by the node once started)
//!   and it is down when that process is gone; its exit status is unknown.
//!   A node that wrote no pid file is down after its API fails
//!   [`UNANSWERED_LIMIT`] polls in a row.
//!
//! The testnet runs while at least one validator runs, however few: the
//! chain stalls below quorum but resumes when enough come back, and a
//! validator that comes back catches up from the others. When the last one
//! stops there is nothing left to watch, so the testnet stops too (with an
//! error); `scf testnet` on the same directory resumes the chain.
//!
//! On Ctrl-C or SIGTERM it stops every validator: its children by closing
//! their standard input, validators started by hand by SIGTERM to the pid in
//! their pid file (then SIGKILL after [`STOP_TIMEOUT`], as for children).
//! One that runs without a pid file cannot be stopped and is named.
//!
//! A validator that exits before all have answered once is a failed start,
//! not a crash to ride out: the testnet stops and shows its log.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::process::{Child, ChildStdin, Command};

use super::process;
use super::{TestnetFile, TestnetValidator, log_tail};
use crate::client::NodeClient;

/// How long the validators get to answer on their API after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a validator gets to stop cleanly before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the validators are checked.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long one API probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Failed API polls in a row after which a validator started by hand,
/// without a pid file, counts as stopped.
const UNANSWERED_LIMIT: u32 = 3;
/// Lines of a crashed validator's log shown with its exit.
const LOG_TAIL_LINES: usize = 8;

/// One validator of the testnet and what is known of its process.
struct Validator {
    spec: TestnetValidator,
    voting_power: u64,
    state: State,
}

enum State {
    Started {
        /// Boxed: a `Child` is large beside the other states.
        child: Box<Child>,
        /// Closing it tells the child to stop.
        stdin: Option<ChildStdin>,
    },
    Down,
    Outside {
        pid: Option<u32>,
        unanswered: u32,
    },
}

impl Validator {
    fn runs(&self) -> bool {
        !matches!(self.state, State::Down)
    }
}

/// What the testnet reports while it runs (`--json`: one JSON line each).
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    ValidatorExited {
        name: String,
        pid: Option<u32>,
        /// "signal: 9 (SIGKILL)", "exit status: 1", or why it is unknown.
        status: String,
        started_by_testnet: bool,
        home: PathBuf,
        log: PathBuf,
        /// The end of its log, for a validator that failed on its own.
        log_tail: Option<String>,
        restart: String,
        quorum: Quorum,
    },
    ValidatorBack {
        name: String,
        pid: Option<u32>,
        height: u64,
        api: String,
        quorum: Quorum,
    },
}

#[derive(Debug, Serialize)]
struct Quorum {
    running: usize,
    validators: usize,
    /// Whether the running validators hold more than 2/3 of the voting power.
    can_commit: bool,
}

/// Starts every validator of `file` as a child `scf node start`, waits until
/// all answer, calls `ready`, then watches them until `stop` resolves (then
/// stops them all) or none is left.
pub async fn supervise(
    file: &TestnetFile,
    voting_powers: &[u64],
    json: bool,
    stop: impl Future<Output = ()>,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let mut validators = Vec::new();
    for (spec, power) in file.validators.iter().zip(voting_powers) {
        let (child, stdin) = spawn(spec)?;
        validators.push(Validator {
            spec: spec.clone(),
            voting_power: *power,
            state: State::Started {
                child: Box::new(child),
                stdin,
            },
        });
    }
    let outcome = async {
        wait_ready(file, &mut validators).await?;
        ready();
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        loop {
            let stopping = tokio::select! {
                _ = &mut stop => true,
                _ = tick.tick() => false,
            };
            if stopping {
                // One started by hand since the last poll is stopped too.
                for index in 0..validators.len() {
                    if matches!(validators[index].state, State::Down)
                        && let Some(event) = check(&mut validators, index, &file.chain_id).await
                    {
                        report(&event, json);
                    }
                }
                return Ok(());
            }
            for index in 0..validators.len() {
                if let Some(event) = check(&mut validators, index, &file.chain_id).await {
                    report(&event, json);
                }
            }
            if !validators.iter().any(Validator::runs) {
                bail!(
                    "every validator has stopped, so the testnet stops too; run the same `scf testnet` command to resume the chain"
                );
            }
        }
    }
    .await;
    stop_all(validators, json).await;
    outcome
}

fn spawn(spec: &TestnetValidator) -> anyhow::Result<(Child, Option<ChildStdin>)> {
    let exe = std::env::current_exe().context("finding the scf executable")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .with_context(|| format!("opening {}", spec.log.display()))?;
    let mut child = Command::new(&exe)
        .arg("node")
        .arg("start")
        .arg("--home")
        .arg(&spec.home)
        .arg("--stop-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", spec.name))?;
    let stdin = child.stdin.take();
    Ok((child, stdin))
}

/// Fails if a child has exited: during the start, that is a failed start.
fn failed_start(validators: &mut [Validator]) -> anyhow::Result<()> {
    for validator in validators {
        if let State::Started { child, .. } = &mut validator.state
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "{} exited ({status}); see its log {}:\n{}",
                validator.spec.name,
                validator.spec.log.display(),
                log_tail(&validator.spec.log)
            );
        }
    }
    Ok(())
}

async fn wait_ready(file: &TestnetFile, validators: &mut [Validator]) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let apis: Vec<String> = file.validators.iter().map(|v| v.api.clone()).collect();
    loop {
        failed_start(validators)?;
        let apis = apis.clone();
        let ready = tokio::task::spawn_blocking(move || {
            apis.iter().all(|api| {
                NodeClient::with_timeout(api, PROBE_TIMEOUT)
                    .status()
                    .is_ok()
            })
        })
        .await?;
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the validators did not answer on their APIs within {} s; see their logs ({})",
                READY_TIMEOUT.as_secs(),
                file.validators
                    .iter()
                    .map(|v| v.log.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Moves validator `index` to its next state, if something changed, and
/// says what.
async fn check(validators: &mut [Validator], index: usize, chain_id: &str) -> Option<Event> {
    let validator = &mut validators[index];
    match &mut validator.state {
        State::Started { child, .. } => {
            let pid = child.id();
            let status = match child.try_wait() {
                Ok(Some(status)) => status,
                Ok(None) => return None,
                Err(error) => {
                    // Cannot happen for a child not yet reaped; treat the
                    // child as gone rather than watch it blindly.
                    return Some(down(validators, index, pid, error.to_string(), false));
                }
            };
            let tail = (!killed_from_outside(&status)).then(|| tail_lines(&validator.spec.log));
            let mut event = down(validators, index, pid, status.to_string(), true);
            if let Event::ValidatorExited { log_tail, .. } = &mut event {
                *log_tail = tail;
            }
            Some(event)
        }
        State::Down => {
            let status = probe(&validator.spec.api, chain_id, &validator.spec.name).await?;
            let pid = live_pid(&validator.spec.home).await;
            validator.state = State::Outside { pid, unanswered: 0 };
            Some(Event::ValidatorBack {
                name: validator.spec.name.clone(),
                pid,
                height: status.height,
                api: validator.spec.api.clone(),
                quorum: quorum(validators),
            })
        }
        State::Outside { pid: Some(pid), .. } => {
            let pid = *pid;
            if process::alive(pid).await {
                return None;
            }
            Some(down(
                validators,
                index,
                Some(pid),
                "unknown: it was not started by this testnet".to_string(),
                false,
            ))
        }
        State::Outside {
            pid: pid @ None,
            unanswered,
        } => {
            // The node writes its pid file just after its API starts
            // answering, so the first polls may not find it yet.
            *pid = live_pid(&validator.spec.home).await;
            if pid.is_some() {
                return None;
            }
            let answered = probe(&validator.spec.api, chain_id, &validator.spec.name)
                .await
                .is_some();
            *unanswered = if answered { 0 } else { *unanswered + 1 };
            if *unanswered < UNANSWERED_LIMIT {
                return None;
            }
            Some(down(
                validators,
                index,
                None,
                format!(
                    "unknown: it wrote no pid file and its API has not answered {UNANSWERED_LIMIT} polls in a row"
                ),
                false,
            ))
        }
    }
}

/// Marks validator `index` down and builds the report of its exit.
fn down(
    validators: &mut [Validator],
    index: usize,
    pid: Option<u32>,
    status: String,
    started_by_testnet: bool,
) -> Event {
    validators[index].state = State::Down;
    let spec = &validators[index].spec;
    Event::ValidatorExited {
        name: spec.name.clone(),
        pid,
        status,
        started_by_testnet,
        home: spec.home.clone(),
        log: spec.log.clone(),
        log_tail: None,
        restart: process::restart_command(&spec.home),
        quorum: quorum(validators),
    }
}

/// Killed by SIGKILL, SIGTERM or SIGINT: someone stopped it, and its log
/// cannot say why.
fn killed_from_outside(status: &ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    matches!(status.signal(), Some(2 | 9 | 15))
}

fn tail_lines(log: &Path) -> String {
    let tail = log_tail(log);
    let lines: Vec<&str> = tail.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

fn quorum(validators: &[Validator]) -> Quorum {
    let total: u64 = validators.iter().map(|v| v.voting_power).sum();
    let running: u64 = validators
        .iter()
        .filter(|v| v.runs())
        .map(|v| v.voting_power)
        .sum();
    Quorum {
        running: validators.iter().filter(|v| v.runs()).count(),
        validators: validators.len(),
        can_commit: running * 3 > total * 2,
    }
}

/// The validator's status if its API answers as this chain's `name`.
async fn probe(api: &str, chain_id: &str, name: &str) -> Option<node::api::types::StatusView> {
    let client = NodeClient::with_timeout(api, PROBE_TIMEOUT);
    let status = tokio::task::spawn_blocking(move || client.status())
        .await
        .ok()?
        .ok()?;
    (status.chain_id.to_string() == chain_id && status.node_name == name).then_some(status)
}

/// The pid in the home's pid file, if that process is alive and may be a
/// node.
async fn live_pid(home: &Path) -> Option<u32> {
    let pid = node::pid_file::read(home)?;
    (process::alive(pid).await && process::may_be_a_node(pid)).then_some(pid)
}

fn report(event: &Event, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(event).expect("events always serialise")
        );
        return;
    }
    match event {
        Event::ValidatorExited {
            name,
            pid,
            status,
            started_by_testnet,
            home,
            log,
            log_tail,
            restart,
            quorum,
        } => {
            let others = if quorum.running > 0 {
                "the other validators go on"
            } else {
                "no validator runs any more"
            };
            println!("{name} ({}) exited: {status}; {others}", pid_text(*pid));
            println!("  home: {}", home.display());
            if *started_by_testnet {
                println!("  log:  {}", log.display());
            } else {
                println!(
                    "  log:  where its starter sent it ({} holds its runs under the testnet)",
                    log.display()
                );
            }
            if let Some(tail) = log_tail.as_deref().filter(|tail| !tail.is_empty()) {
                println!("  last lines of its log:");
                for line in tail.lines() {
                    println!("    {line}");
                }
            }
            println!("  restart it with: {restart}");
            println!(
                "  (the testnet notices when it answers again; its log then goes where you send it)"
            );
            print_quorum(quorum);
        }
        Event::ValidatorBack {
            name,
            pid,
            height,
            api,
            quorum,
        } => {
            println!(
                "{name} is running again ({}, started outside the testnet), at height {height}, API {api}; the testnet watches it and stops it on Ctrl-C",
                pid_text(*pid)
            );
            print_quorum(quorum);
        }
    }
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

fn print_quorum(quorum: &Quorum) {
    let verdict = if quorum.can_commit {
        "enough to commit blocks"
    } else {
        "too few to commit blocks until more than 2/3 of the voting power runs again"
    };
    println!(
        "  {} of {} validators run: {verdict}",
        quorum.running, quorum.validators
    );
}

/// Stops every validator still running: children by closing their standard
/// input, validators started by hand by SIGTERM to their pid; waits, then
/// kills what is left.
async fn stop_all(validators: Vec<Validator>, json: bool) {
    let mut validators = validators;
    for validator in &mut validators {
        match &mut validator.state {
            State::Started { stdin, .. } => {
                stdin.take();
            }
            State::Outside { pid: Some(pid), .. } => {
                if !json {
                    println!(
                        "stopping {} (pid {pid}, started outside the testnet)",
                        validator.spec.name
                    );
                }
                process::signal(*pid, "TERM").await;
            }
            State::Outside { pid: None, .. } => eprintln!(
                "{} runs, started outside the testnet, but wrote no pid file ({}); stop it yourself",
                validator.spec.name,
                validator.spec.home.join(node::pid_file::PID_FILE).display()
            ),
            State::Down => {}
        }
    }
    for mut validator in validators {
        let name = &validator.spec.name;
        match &mut validator.state {
            State::Started { child, .. } => {
                if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                    .await
                    .is_err()
                {
                    eprintln!(
                        "{name} did not stop within {} s; killing it",
                        STOP_TIMEOUT.as_secs()
                    );
                    let _ = child.kill().await;
                }
            }
            State::Outside { pid: Some(pid), .. } => {
                let pid = *pid;
                let deadline = Instant::now() + STOP_TIMEOUT;
                while process::alive(pid).await {
                    if Instant::now() > deadline {
                        eprintln!(
                            "{name} (pid {pid}) did not stop within {} s; killing it",
                            STOP_TIMEOUT.as_secs()
                        );
                        process::signal(pid, "KILL").await;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            State::Outside { pid: None, .. } | State::Down => {}
        }
    }
    if !json {
        println!("testnet stopped");
    }
}
