//! A throwaway PostgreSQL server for tests and the sink benchmark: Debian's
//! `postgresql` package (installed by `scripts/setup.sh`), a data directory
//! and a socket directory in a new temporary directory, listening on a free
//! port of 127.0.0.1 only, stopped (immediate shutdown) and removed when
//! dropped.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then `initdb` and
//! the server run as the `postgres` system user the package creates, through
//! `setpriv` (which `exec`s, so the child is the server itself and the
//! stop reaches it), in a directory that user owns. The server is a child
//! of the test process, started in the foreground; every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an immediate shutdown may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The role the tests connect as (trust authentication, 127.0.0.1 only).
pub const SUPERUSER: &str = "postgres";

/// A running server; stopped and removed when dropped.
pub struct Postgres {
    dir: Option<tempfile::TempDir>,
    server: Option<Child>,
    port: u16,
}

/// The directory of `initdb` and `postgres`: `$SCF_PG_BIN` if set, else the
/// newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SCF_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|error| {
            format!(
                "no PostgreSQL in {} ({error}): run scripts/setup.sh (it installs Debian's postgresql), or set SCF_PG_BIN to the directory of initdb and postgres",
                root.display()
            )
        })?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "no PostgreSQL version under {} has bin/initdb: run scripts/setup.sh",
            root.display()
        )
    })
}

fn is_root() -> bool {
    // The effective uid of this process, from /proc (no libc call needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(str::to_owned))
        })
        .is_some_and(|uid| uid == "0")
}

/// `program ARGS`, as the `postgres` user when this process is root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--clear-groups",
                "--reset-env",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("{what}: cannot run it: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl Postgres {
    /// Creates a cluster in a new temporary directory and starts it.
    /// `durable: false` turns fsync off (tests: the server is never
    /// killed, only the sink is); the benchmark keeps PostgreSQL's defaults.
    pub fn start(durable: bool) -> Result<Postgres, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("scf-pg-")
            .tempdir()
            .map_err(|error| format!("a temporary directory: {error}"))?;
        let data = dir.path().join("data");
        let socket = dir.path().join("socket");
        for path in [&data, &socket] {
            std::fs::create_dir(path).map_err(|error| format!("{}: {error}", path.display()))?;
        }
        if is_root() {
            // The temporary directory is root's (mode 0700): the server's
            // user must reach the directories it owns inside it.
            run(
                Command::new("chmod").arg("0755").arg(dir.path()),
                "chmod of the temporary directory",
            )?;
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .arg(&socket),
                "chown to the postgres user (is Debian's postgresql package installed?)",
            )?;
        }
        run(
            as_server_user(&bin.join("initdb"))
                .args(["--no-sync", "--auth=trust", "--encoding=UTF8", "--locale=C"])
                .args(["--username", SUPERUSER, "--pgdata"])
                .arg(&data),
            "initdb",
        )?;
        let port = node::localnet::free_port().map_err(|error| format!("a free port: {error}"))?;
        let log = std::fs::File::create(dir.path().join("postgres.log"))
            .map_err(|error| format!("the server's log: {error}"))?;
        let mut command = as_server_user(&bin.join("postgres"));
        command
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", socket.display()))
            .args(["-c", "max_connections=50", "-c", "shared_buffers=128MB"]);
        if !durable {
            command.args(["-c", "fsync=off", "-c", "synchronous_commit=off"]);
        }
        let server = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|error| error.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|error| format!("starting postgres: {error}"))?;
        let mut postgres = Postgres {
            dir: Some(dir),
            server: Some(server),
            port,
        };
        postgres.wait_ready()?;
        Ok(postgres)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(server) = &mut self.server
                && let Ok(Some(status)) = server.try_wait()
            {
                return Err(format!("postgres exited ({status}): {}", self.log()));
            }
            if postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "postgres did not accept connections within {START_TIMEOUT:?}: {}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database`, over TCP on 127.0.0.1.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let mut client = self.connect("postgres")?;
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|error| format!("CREATE DATABASE {name}: {error}"))?;
        Ok(self.url(name))
    }

    pub fn connect(&self, database: &str) -> Result<postgres::Client, String> {
        postgres::Client::connect(&self.url(database), postgres::NoTls)
            .map_err(|error| format!("connecting to {database}: {error}"))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.dir
            .as_ref()
            .and_then(|dir| std::fs::read_to_string(dir.path().join("postgres.log")).ok())
            .unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SIGQUIT: PostgreSQL's immediate shutdown (`pg_ctl stop -m
            // immediate`); the data is thrown away with the directory.
            let _ = Command::new("kill")
                .args(["-QUIT", &server.id().to_string()])
                .status();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while server.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.kill();
            let _ = server.wait();
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "postgres harness: kept {} (server log in postgres.log)",
                dir.keep().display()
            );
        }
    }
}
