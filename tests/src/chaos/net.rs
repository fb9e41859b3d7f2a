//! The chaos run's local network: N validators and one observer, each a
//! real `scf node start --home` process, in a temporary directory.
//!
//! Unlike [`crate::cluster`] (the Byzantine harness, where validator 3 is
//! an in-process impostor), every node here is an honest process, and the
//! network offers what an operator or a failing machine does to one:
//! `kill -9`, SIGSTOP/SIGCONT, a graceful stop, a restart with the same
//! command, and a start inside an empty network namespace (`unshare -n`,
//! loopback up, so the node runs but reaches no peer and no client reaches
//! it). Each process appends to `HOME/node.log`. Every child is killed (and
//! resumed first, if stopped) when the network is dropped, panicking or
//! not.
//!
//! It judges nothing; it only reports what it was asked to do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ledger::Role;
use node::localnet::{self, LocalNet, LocalNetSpec};

/// How long a node may take to open its store and serve its API.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful stop may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How a node's process was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On the machine's network, as an operator starts it.
    Normal,
    /// Inside an empty network namespace: alive, but cut off.
    Isolated,
    /// With its wall clock moved by this many seconds (libfaketime; the
    /// monotonic clock, which the node's timers use, is left alone).
    Skewed(i64),
}

/// Where Debian's `faketime` package puts the library.
const LIBFAKETIME: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
];

pub struct ChaosNet {
    dir: Option<tempfile::TempDir>,
    pub net: LocalNet,
    binary: PathBuf,
    children: Vec<Option<Child>>,
    paused: Vec<bool>,
    /// Processes that ended without being asked to: (node, status).
    exited: Vec<(usize, ExitStatus)>,
    /// Nodes whose disk is full now: their exit is expected, and goes to
    /// `disk_exits` for the disk fault to judge.
    pub disk_full: Vec<bool>,
    pub disk_exits: Vec<(usize, ExitStatus)>,
    /// tmpfs mounts to undo when dropped.
    mounts: Vec<PathBuf>,
    /// Keep the directory when dropped.
    pub keep: bool,
}

/// The participants of a run's genesis, by role, sized for the traffic.
#[derive(Clone, Debug)]
pub struct Roster {
    pub banks: usize,
    pub cores: usize,
    pub suppliers: usize,
    pub auditors: usize,
}

impl Roster {
    /// Enough participants for `rate` transactions a second, each with at
    /// most one transaction in flight (from release to the block that
    /// carries it, two seconds or so on a busy machine) and many with
    /// nothing to do at a given moment (a supplier without tokens, a core
    /// without credit): the summary's `starved` counts what the rate asked
    /// for and nobody could make.
    pub fn for_rate(rate: u32) -> Roster {
        let rate = rate as usize;
        Roster {
            banks: (rate / 10).clamp(2, 100),
            cores: (rate / 5).clamp(3, 200),
            suppliers: (rate * 2).clamp(20, 2_000),
            auditors: 2,
        }
    }

    pub fn participants(&self) -> Vec<(String, Vec<Role>)> {
        // An operator is required by genesis; the traffic never uses it.
        let mut all = vec![("operator".to_string(), vec![Role::Operator])];
        let mut add = |prefix: &str, count: usize, role: Role| {
            for index in 0..count {
                all.push((format!("{prefix}-{index:03}"), vec![role]));
            }
        };
        add("bank", self.banks, Role::Bank);
        add("core", self.cores, Role::CoreEnterprise);
        add("supplier", self.suppliers, Role::Supplier);
        add("auditor", self.auditors, Role::Auditor);
        all
    }
}

impl ChaosNet {
    /// Writes the network and starts every node; with `tmpfs_data`, each
    /// validator's data directory is a size-limited tmpfs (the disk fault).
    pub fn start(
        binary: &Path,
        validators: usize,
        roster: &Roster,
        tmpfs_data: bool,
    ) -> Result<ChaosNet, String> {
        let dir = tempfile::Builder::new()
            .prefix("scf-chaos-")
            .tempdir()
            .map_err(|error| format!("a temporary directory: {error}"))?;
        let net = localnet::create(
            dir.path(),
            &LocalNetSpec {
                chain_name: "chaos".into(),
                validators,
                observers: 1,
                participants: roster.participants(),
                consensus: localnet::local_consensus(),
            },
        )
        .map_err(|error| format!("creating the local network: {error}"))?;
        let count = net.nodes.len();
        let mut chaos = ChaosNet {
            dir: Some(dir),
            net,
            binary: binary.to_path_buf(),
            children: (0..count).map(|_| None).collect(),
            paused: vec![false; count],
            exited: Vec::new(),
            disk_full: vec![false; count],
            disk_exits: Vec::new(),
            mounts: Vec::new(),
            keep: false,
        };
        if tmpfs_data {
            for index in 0..validators {
                let data = chaos.data_dir(index);
                super::disk::mount_tmpfs(&data, super::disk::DATA_TMPFS)?;
                chaos.mounts.push(data);
            }
        }
        for index in 0..count {
            chaos.spawn(index, Placement::Normal)?;
        }
        for index in 0..count {
            chaos.wait_for_api(index)?;
        }
        Ok(chaos)
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("kept until dropped").path()
    }

    pub fn len(&self) -> usize {
        self.net.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.net.nodes.is_empty()
    }

    pub fn validators(&self) -> usize {
        self.net.nodes.iter().filter(|node| node.validator).count()
    }

    pub fn home(&self, index: usize) -> &Path {
        &self.net.nodes[index].home
    }

    /// The node's data directory (`data_dir` of `config.toml`: the
    /// default, `HOME/data`, is what `localnet` writes).
    pub fn data_dir(&self, index: usize) -> PathBuf {
        self.home(index).join("data")
    }

    pub fn name(&self, index: usize) -> &str {
        &self.net.nodes[index].name
    }

    pub fn api(&self, index: usize) -> String {
        format!("http://{}", self.net.nodes[index].api)
    }

    pub fn apis(&self) -> Vec<String> {
        (0..self.len()).map(|index| self.api(index)).collect()
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Starts node `index` with `scf node start --home HOME`, the way an
    /// operator does (inside `unshare -n` when isolated).
    pub fn spawn(&mut self, index: usize, placement: Placement) -> Result<(), String> {
        if self.children[index].is_some() {
            return Err(format!("{} is already running", self.name(index)));
        }
        let home = self.home(index).to_path_buf();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.join("node.log"))
            .map_err(|error| format!("the log of {}: {error}", home.display()))?;
        let mut command = match placement {
            Placement::Normal => Command::new(&self.binary),
            Placement::Skewed(seconds) => {
                let library = LIBFAKETIME
                    .iter()
                    .find(|path| Path::new(path).exists())
                    .ok_or("libfaketime is not installed (apt-get install faketime; see scripts/setup.sh)")?;
                let mut command = Command::new(&self.binary);
                command
                    .env("LD_PRELOAD", library)
                    .env("FAKETIME", format!("{seconds:+}s"))
                    .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                    .env("FAKETIME_NO_CACHE", "1");
                command
            }
            Placement::Isolated => {
                // `unshare -n` leaves loopback down; bring it up so the node
                // can bind its 127.0.0.1 addresses, then exec the node (the
                // child's pid stays the node's pid for signals).
                let mut command = Command::new("unshare");
                command.args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""]);
                command.arg(&self.binary);
                command
            }
        };
        command
            .args(["node", "start", "--home"])
            .arg(&home)
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|error| error.to_string())?)
            .stderr(log);
        let child = command
            .spawn()
            .map_err(|error| format!("starting {}: {error}", self.name(index)))?;
        self.children[index] = Some(child);
        self.paused[index] = false;
        Ok(())
    }

    /// Waits (bounded) until node `index` serves its API.
    pub fn wait_for_api(&mut self, index: usize) -> Result<(), String> {
        let url = format!("{}/v1/status", self.api(index));
        let deadline = Instant::now() + START_TIMEOUT;
        while super::get_json::<serde_json::Value>(&url).is_err() {
            self.poll_exits();
            if self.children[index].is_none() {
                return Err(format!(
                    "{} exited while starting; see {}",
                    self.name(index),
                    self.home(index).join("node.log").display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{}'s API did not answer within {START_TIMEOUT:?}",
                    self.name(index)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    pub fn is_running(&self, index: usize) -> bool {
        self.children[index].is_some()
    }

    pub fn pid(&self, index: usize) -> Option<u32> {
        self.children[index].as_ref().map(Child::id)
    }

    fn signal(&self, index: usize, signal: &str) -> Result<(), String> {
        let pid = self
            .pid(index)
            .ok_or_else(|| format!("{} is not running", self.name(index)))?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .map_err(|error| format!("kill {signal} {pid}: {error}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill {signal} {pid} failed: {status}"))
        }
    }

    /// `kill -9`: the process ends at whatever instant it is in.
    pub fn kill(&mut self, index: usize) -> Result<(), String> {
        let Some(mut child) = self.children[index].take() else {
            return Err(format!("{} is not running", self.name(index)));
        };
        let _ = child.kill();
        let _ = child.wait();
        self.paused[index] = false;
        Ok(())
    }

    /// SIGTERM, as `systemctl stop` would; SIGKILL after [`STOP_TIMEOUT`].
    /// Returns the exit status (a clean stop is a success).
    pub fn stop(&mut self, index: usize) -> Result<ExitStatus, String> {
        if self.paused[index] {
            self.resume(index)?;
        }
        self.signal(index, "-TERM")?;
        let mut child = self.children[index].take().expect("signalled, so running");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let status = child.wait().map_err(|error| error.to_string())?;
                return Err(format!(
                    "{} did not stop within {STOP_TIMEOUT:?} of SIGTERM (killed: {status})",
                    self.name(index)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGSTOP: a stalled process (a long GC pause, a frozen VM).
    pub fn pause(&mut self, index: usize) -> Result<(), String> {
        self.signal(index, "-STOP")?;
        self.paused[index] = true;
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, index: usize) -> Result<(), String> {
        self.signal(index, "-CONT")?;
        self.paused[index] = false;
        Ok(())
    }

    /// Notes every process that ended on its own since the last call, and
    /// returns the new ones.
    pub fn poll_exits(&mut self) -> Vec<(usize, ExitStatus)> {
        let mut new = Vec::new();
        for (index, slot) in self.children.iter_mut().enumerate() {
            if let Some(child) = slot
                && let Ok(Some(status)) = child.try_wait()
            {
                if self.disk_full[index] {
                    self.disk_exits.push((index, status));
                } else {
                    new.push((index, status));
                }
                *slot = None;
            }
        }
        self.exited.extend(new.iter().copied());
        new
    }

    /// The last lines of a node's log that look like trouble.
    pub fn log_trouble(&self, index: usize, lines: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.home(index).join("node.log")).unwrap_or_default();
        let trouble: Vec<String> = text
            .lines()
            .filter(|line| {
                line.contains("ERROR") || line.contains("panicked") || line.starts_with("error:")
            })
            .map(str::to_owned)
            .collect();
        trouble[trouble.len().saturating_sub(lines)..].to_vec()
    }

    /// Leaves the directory in place after the network is dropped and
    /// returns its path.
    pub fn keep_dir(&mut self) -> PathBuf {
        self.keep = true;
        self.dir().to_path_buf()
    }
}

impl Drop for ChaosNet {
    fn drop(&mut self) {
        for (index, slot) in self.children.iter_mut().enumerate() {
            if let Some(mut child) = slot.take() {
                if self.paused[index] {
                    let _ = Command::new("kill")
                        .args(["-CONT", &child.id().to_string()])
                        .status();
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for mount in self.mounts.drain(..) {
            super::disk::unmount(&mount);
        }
        if (self.keep || std::thread::panicking())
            && let Some(dir) = self.dir.take()
        {
            let path = dir.keep();
            eprintln!(
                "chaos: kept {} (node logs in */node.log, history in history.jsonl)",
                path.display()
            );
        }
    }
}
