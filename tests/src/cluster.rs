//! A local network whose nodes are real `scf node start` processes: for the
//! Byzantine harness, four validators of which [`Cluster::start`] runs 0–2
//! (validator 3's home is left for the in-process hostile peer, which takes
//! its node key and validator key); for the governance scenario, any number
//! of validators and observers, started one by one, and nodes joining later.
//!
//! [`Cluster::create`] writes the genesis and the homes with
//! `node::localnet::create` (free ports on 127.0.0.1, a temporary directory). Each process
//! logs to `HOME/node.log`. Every child is killed when the cluster is
//! dropped, panicking or not; the directory is kept (and its path printed)
//! when the test failed, so the logs can be read.
//!
//! It does not judge anything: the checks are in [`crate::checks`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ledger::Role;
use node::localnet::{self, LocalNet, LocalNetSpec};

/// The validator the hostile peer impersonates (its genesis identity).
pub const HOSTILE: usize = 3;
/// The validators run as honest processes.
pub const HONEST: [usize; 3] = [0, 1, 2];
/// The participant whose transactions the background load signs.
pub const LOAD_SIGNER: &str = "operator";
/// A second operator: the hostile peer's own transactions (a Byzantine
/// validator may well also be a participant).
pub const INTRUDER: &str = "intruder";

/// How long a node may take to open its store and serve its API.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    pub net: LocalNet,
    children: Vec<Option<Child>>,
    /// Exit statuses of processes that ended without being asked to.
    exited: Vec<(usize, ExitStatus)>,
    /// Keep the directory when dropped (set on a failed check).
    pub keep: bool,
}

/// The consortium: the load's operator, the intruder and a few others so
/// the genesis looks like a real one.
fn participants() -> Vec<(String, Vec<Role>)> {
    vec![
        (LOAD_SIGNER.into(), vec![Role::Operator]),
        (INTRUDER.into(), vec![Role::Operator]),
        ("bank".into(), vec![Role::Bank]),
        ("core".into(), vec![Role::CoreEnterprise]),
        ("supplier1".into(), vec![Role::Supplier]),
    ]
}

/// The `scf` binary of this build, built (or found up to date) once per
/// test process.
///
/// Cargo gives `CARGO_BIN_EXE_<name>` only for the tested package's own
/// binaries, and a dependency's binaries are not built for tests, so the
/// harness asks the same cargo, with the same target directory and
/// profile, to build `cli`'s `scf` with the workspace's feature set (the one `cargo test --workspace` built with): a no-op when it is up to date, never a
/// stale binary from an older checkout.
pub fn scf_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        // target/<profile>/deps/<test>-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test runs from target/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(&cargo);
        // Cargo gives a test process variables of its own (the package's,
        // and the target directory in the library path); build scripts
        // that watch such variables would rebuild on every run.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_MANIFEST_")
                || name.starts_with("CARGO_CRATE_")
                || name.starts_with("CARGO_BIN_")
                || name.starts_with("CARGO_PRIMARY_")
                || name == "CARGO_TARGET_TMPDIR"
                || name.starts_with("RUST_TEST_")
            {
                build.env_remove(name.as_ref());
            }
        }
        if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
            let kept: Vec<PathBuf> = std::env::split_paths(&paths)
                .filter(|path| {
                    !path.starts_with(target_dir)
                        && !path.components().any(|c| c.as_os_str() == "toolchains")
                })
                .collect();
            build.env(
                "LD_LIBRARY_PATH",
                std::env::join_paths(kept).unwrap_or_default(),
            );
        }
        // Any directory of the workspace; this crate's own, as compiled,
        // may be a checkout that no longer exists (see `package_dir`).
        let workspace_member = crate::package_dir();
        build
            .args(["build", "--quiet", "--workspace", "--bin", "scf"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(workspace_member);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let status = build.status().unwrap_or_else(|error| {
            panic!("cannot run `{cargo} build -p cli --bin scf` to build the node binary: {error}")
        });
        let binary = profile_dir.join("scf");
        assert!(
            status.success() && binary.exists(),
            "`cargo build -p cli --bin scf` failed ({status}) or left no {}; build it by hand \
             with the same CARGO_TARGET_DIR and rerun",
            binary.display()
        );
        binary
    })
}

impl Cluster {
    /// Writes a 4-validator network and starts the honest validators.
    pub fn start(name: &str) -> Cluster {
        let mut cluster = Cluster::create(&format!("byz-{name}"), 4, 0, participants());
        for index in HONEST {
            cluster.start_node(index, scf_binary());
        }
        for index in HONEST {
            cluster.wait_for_api(index);
        }
        cluster
    }

    /// Writes a network of `validators` and `observers` named `name`, with
    /// `participants` in its genesis, and starts none of its nodes.
    pub fn create(
        name: &str,
        validators: usize,
        observers: usize,
        participants: Vec<(String, Vec<Role>)>,
    ) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir()
            .expect("a temporary directory");
        let net = localnet::create(
            dir.path(),
            &LocalNetSpec {
                chain_name: name.to_string(),
                validators,
                observers,
                participants,
                consensus: localnet::local_consensus(),
            },
        )
        .expect("creating the local network");
        Cluster {
            dir: Some(dir),
            children: (0..net.nodes.len()).map(|_| None).collect(),
            net,
            exited: Vec::new(),
            keep: false,
        }
    }

    /// Adds a node whose home was made after the network (see
    /// `localnet::joining_node`); returns its index. Not started.
    pub fn add_node(&mut self, node: localnet::LocalNode) -> usize {
        self.net.nodes.push(node);
        self.children.push(None);
        self.net.nodes.len() - 1
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("kept until dropped").path()
    }

    pub fn home(&self, index: usize) -> &Path {
        &self.net.nodes[index].home
    }

    pub fn api(&self, index: usize) -> String {
        format!("http://{}", self.net.nodes[index].api)
    }

    fn start_node(&mut self, index: usize, binary: &Path) {
        let home = self.home(index).to_path_buf();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.join("node.log"))
            .expect("the node's log file");
        let child = Command::new(binary)
            .args(["node", "start", "--home"])
            .arg(&home)
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file again"))
            .stderr(log)
            .spawn()
            .expect("starting an scf node process");
        self.children[index] = Some(child);
    }

    fn wait_for_api(&mut self, index: usize) {
        let url = format!("{}/v1/status", self.api(index));
        let deadline = Instant::now() + START_TIMEOUT;
        while crate::client::get_json::<serde_json::Value>(&url).is_err() {
            self.poll_exits();
            assert!(
                self.children[index].is_some(),
                "validator-{index} exited while starting; see {}",
                self.home(index).join("node.log").display()
            );
            assert!(
                Instant::now() < deadline,
                "validator-{index}'s API did not answer within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops a validator with SIGTERM (bounded wait, then SIGKILL).
    pub fn stop(&mut self, index: usize) {
        let Some(mut child) = self.children[index].take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts node `index` (a stopped one again) and waits for its API.
    pub fn restart(&mut self, index: usize) {
        self.start_node(index, scf_binary());
        self.wait_for_api(index);
    }

    /// Notes every process that ended on its own since the last call.
    pub fn poll_exits(&mut self) {
        for (index, slot) in self.children.iter_mut().enumerate() {
            if let Some(child) = slot
                && let Ok(Some(status)) = child.try_wait()
            {
                self.exited.push((index, status));
                *slot = None;
            }
        }
    }

    /// Processes that ended without being stopped: (validator, status).
    pub fn exited(&mut self) -> &[(usize, ExitStatus)] {
        self.poll_exits();
        &self.exited
    }

    /// The process id of a running validator.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.children[index].as_ref().map(Child::id)
    }

    /// Peak resident memory (VmHWM) of a running validator, in bytes.
    pub fn peak_rss(&self, index: usize) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(index)?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The last lines of a validator's log that look like trouble.
    pub fn log_trouble(&self, index: usize, lines: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.home(index).join("node.log")).unwrap_or_default();
        let trouble: Vec<String> = text
            .lines()
            .filter(|line| {
                line.contains("ERROR") || line.contains("panicked") || line.contains("WARN")
            })
            .map(str::to_owned)
            .collect();
        trouble[trouble.len().saturating_sub(lines)..].to_vec()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        if (self.keep || std::thread::panicking())
            && let Some(dir) = self.dir.take()
        {
            let path = dir.keep();
            eprintln!("cluster: kept {} (node logs in */node.log)", path.display());
        }
    }
}
