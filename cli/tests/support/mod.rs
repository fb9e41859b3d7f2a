//! Helpers for the end-to-end tests: run the real `scf` binary with a time
//! limit, and run a testnet in a temporary directory that is always stopped.
//!
//! Every child is bounded: commands are killed after [`COMMAND_TIMEOUT`];
//! a [`Testnet`] stops its `scf testnet` on drop, and because that process
//! holds the standard input of its validators (and the test holds its
//! standard input), nothing outlives the test process even if it dies.

#![allow(dead_code)]

pub mod fake_node;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(150);

pub fn scf_path() -> &'static str {
    env!("CARGO_BIN_EXE_scf")
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:?}"))
    }

    /// Asserts success and returns the JSON it printed.
    pub fn ok_json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self.json()
    }

    /// Asserts a failure with `code` whose message holds every one of `parts`.
    pub fn fails(&self, code: i32, parts: &[&str]) {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        for part in parts {
            assert!(
                self.stderr.contains(part),
                "stderr lacks {part:?}: {}",
                self.stderr
            );
        }
    }
}

/// Runs `scf ARGS` with the environment cleared of SCF_* settings and a
/// configuration directory of its own (so nodes pinned on first use are
/// pinned there, never in the user's `~/.config`, and no run sees another's).
pub fn scf(args: &[&str]) -> Outcome {
    let config = tempfile::tempdir().expect("a temporary config directory");
    scf_with_config(config.path(), args)
}

/// Runs `scf ARGS` with `XDG_CONFIG_HOME=config`, where it pins the
/// genesis of the nodes it talks to.
pub fn scf_with_config(config: &Path, args: &[&str]) -> Outcome {
    let mut child = Command::new(scf_path())
        .args(args)
        .env_remove("SCF_NODE")
        .env_remove("SCF_KEY")
        .env_remove("SCF_GENESIS")
        .env("XDG_CONFIG_HOME", config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the scf binary starts");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for scf") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("scf {args:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("reader thread"),
        stderr: err.join().expect("reader thread"),
    }
}

/// A URL on 127.0.0.1 where nothing listens.
pub fn dead_node_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    format!("http://127.0.0.1:{port}")
}

/// A running `scf testnet` in a directory; stopped on drop.
pub struct Testnet {
    pub dir: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    _temporary: Option<tempfile::TempDir>,
}

impl Testnet {
    /// Starts a testnet of `validators` in a new temporary directory.
    pub fn start(validators: usize) -> Testnet {
        let temporary = tempfile::Builder::new()
            .prefix("scf-e2e-")
            .tempdir()
            .expect("a temporary directory");
        let dir = temporary.path().to_path_buf();
        Testnet::start_in(&dir, validators, Some(temporary))
    }

    /// Starts (or resumes) the testnet of `dir`.
    pub fn start_in(
        dir: &Path,
        validators: usize,
        temporary: Option<tempfile::TempDir>,
    ) -> Testnet {
        let log = std::fs::File::create(dir.join("e2e-testnet.log")).expect("a log file");
        let mut child = Command::new(scf_path())
            .args(["testnet", "--validators", &validators.to_string(), "--dir"])
            .arg(dir)
            .arg("--stop-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("scf testnet starts");
        let stdin = child.stdin.take();
        let mut testnet = Testnet {
            dir: dir.to_path_buf(),
            child,
            stdin,
            _temporary: temporary,
        };
        testnet.wait_ready();
        testnet
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting") {
                panic!("scf testnet exited ({status}): {}", self.log());
            }
            if self.dir.join("testnet.json").exists()
                && self
                    .apis()
                    .iter()
                    .all(|api| scf(&["--node", api, "status"]).code == 0)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the testnet did not start within 120 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("e2e-testnet.log")).unwrap_or_default()
    }

    pub fn file(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.join("testnet.json")).expect("testnet.json");
        serde_json::from_str(&text).expect("testnet.json is JSON")
    }

    pub fn apis(&self) -> Vec<String> {
        self.file()["validators"]
            .as_array()
            .expect("validators")
            .iter()
            .map(|validator| validator["api"].as_str().expect("api").to_string())
            .collect()
    }

    /// The API of validator `index`.
    pub fn api(&self, index: usize) -> String {
        let apis = self.apis();
        apis[index % apis.len()].clone()
    }

    pub fn key(&self, name: &str) -> String {
        self.dir
            .join("keys")
            .join(format!("{name}.key"))
            .display()
            .to_string()
    }

    /// The public key of a demo participant.
    pub fn public_key(&self, name: &str) -> String {
        scf(&["--json", "keys", "show", &self.key(name)]).ok_json()["public_key"]
            .as_str()
            .expect("public_key")
            .to_string()
    }

    /// Whether the `scf testnet` process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the testnet to stop (as Ctrl-C does) without waiting for it.
    pub fn ask_to_stop(&mut self) {
        self.stdin.take();
    }

    /// Stops the testnet and waits for it (and so its validators).
    pub fn stop(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Now plus `seconds`, as RFC 3339.
pub fn rfc3339_in(seconds: u64) -> String {
    let when = std::time::SystemTime::now() + Duration::from_secs(seconds);
    let millis = when
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000)
        .expect("a valid time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// A text unique to this moment (invoice numbers).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!("{prefix}-{nanos}")
}

pub fn is_hex(value: &serde_json::Value, len: usize) -> bool {
    value
        .as_str()
        .is_some_and(|text| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit()))
}
