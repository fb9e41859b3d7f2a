//! Disk faults: a validator's data directory running out of space, and a
//! node started on damaged files.
//!
//! Out of space: with the `disk` fault each validator's data directory is a
//! size-limited tmpfs (`mount -t tmpfs -o size=…`, root only). The fault
//! shrinks the target's tmpfs to what it already holds (`mount -o
//! remount,size=…`; tmpfs refuses nothing it holds, so nothing is lost by
//! the remount itself), so its next write fails with ENOSPC, then grows it
//! back. The node must stop cleanly (an error exit, not a panic or a
//! signal) or refuse writes, and must come back — restarted by the
//! operator if it stopped — with its chain intact (the checker compares
//! every block and audits every home).
//!
//! Damaged files: copies of a home whose node was killed with `kill -9`,
//! each with one file damaged (the safety record truncated, the newest
//! RocksDB WAL truncated, an SST file's middle overwritten), must each
//! make `scf node start` refuse with a message naming the file, never
//! start as if nothing happened.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The tmpfs size of a validator's data directory.
pub const DATA_TMPFS: &str = "1g";
/// Room left when the fault shrinks a tmpfs: a few pages, less than any
/// RocksDB write.
const FULL_SLACK_BYTES: u64 = 16 * 1024;

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|error| format!("{command:?}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Mounts a tmpfs of `size` on `dir` (created if missing).
pub fn mount_tmpfs(dir: &Path, size: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir))
}

fn remount(dir: &Path, size: &str) -> Result<(), String> {
    run(Command::new("mount")
        .args(["-o", &format!("remount,size={size}")])
        .arg(dir))
}

/// Unmounts `dir` (lazily if busy).
pub fn unmount(dir: &Path) {
    if run(Command::new("umount").arg(dir)).is_err() {
        let _ = run(Command::new("umount").arg("-l").arg(dir));
    }
}

/// Bytes in use on the filesystem of `dir`.
fn used_bytes(dir: &Path) -> Result<u64, String> {
    let output = Command::new("df")
        .args(["-B1", "--output=used"])
        .arg(dir)
        .output()
        .map_err(|error| format!("df {}: {error}", dir.display()))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .ok_or_else(|| format!("df {} printed no usage", dir.display()))
}

/// Leaves the tmpfs on `dir` with almost no free space.
pub fn fill(dir: &Path) -> Result<u64, String> {
    let used = used_bytes(dir)?;
    let size = used + FULL_SLACK_BYTES;
    remount(dir, &size.to_string())?;
    Ok(size)
}

/// Gives the tmpfs on `dir` its full size back.
pub fn free(dir: &Path) -> Result<(), String> {
    remount(dir, DATA_TMPFS)
}

/// One damaged-file start and what it showed.
#[derive(Clone, Debug)]
pub struct DamagedStart {
    pub damage: String,
    pub file: PathBuf,
    /// `Ok(message)`: the node refused and named the file; `Err`: what it
    /// did instead.
    pub verdict: Result<String, String>,
}

/// How long a node on a damaged home may take to refuse.
const REFUSE_WITHIN: Duration = Duration::from_secs(30);

/// Copies `home` (its node stopped by `kill -9`) three times into
/// `scratch`, damages one file in each, and starts `scf node start` on
/// each copy.
pub fn damaged_starts(
    binary: &Path,
    home: &Path,
    api: &str,
    committed: u64,
    scratch: &Path,
) -> Vec<DamagedStart> {
    let mut results = Vec::new();
    type Damage = fn(&Path) -> Result<PathBuf, String>;
    let damages: [(&str, Damage); 3] = [
        ("truncated safety record", truncate_safety_record),
        ("truncated WAL", truncate_wal),
        ("corrupted SST", corrupt_sst),
    ];
    for (index, (damage, apply)) in damages.into_iter().enumerate() {
        let copy = scratch.join(format!("damaged-{index}"));
        let copied = run(Command::new("cp").arg("-a").arg(home).arg(&copy));
        let file = match copied.and_then(|()| apply(&copy)) {
            Ok(file) => file,
            Err(error) => {
                results.push(DamagedStart {
                    damage: damage.into(),
                    file: PathBuf::new(),
                    verdict: Err(format!("could not stage it: {error}")),
                });
                continue;
            }
        };
        let verdict = start_expecting_refusal(binary, &copy, api, &file, committed);
        results.push(DamagedStart {
            damage: damage.into(),
            file,
            verdict,
        });
        let _ = std::fs::remove_dir_all(&copy);
    }
    results
}

fn truncate_safety_record(home: &Path) -> Result<PathBuf, String> {
    let path = home.join("safety.json");
    let bytes = std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    std::fs::write(&path, &bytes[..bytes.len() / 2])
        .map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(path)
}

/// The files of the home's RocksDB directory whose names end with `ext`,
/// largest last.
fn rocksdb_files(home: &Path, ext: &str) -> Result<Vec<(u64, PathBuf)>, String> {
    let mut found = Vec::new();
    let mut dirs = vec![home.join("data")];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                found.push((meta.len(), path));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn truncate_wal(home: &Path) -> Result<PathBuf, String> {
    let (size, path) = rocksdb_files(home, "log")?
        .into_iter()
        .filter(|(size, _)| *size > 64)
        .max_by_key(|(_, path)| path.clone())
        .ok_or("no RocksDB WAL with content (the node flushed everything before it died)")?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    file.set_len(size / 2)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(path)
}

fn corrupt_sst(home: &Path) -> Result<PathBuf, String> {
    let (size, path) = rocksdb_files(home, "sst")?
        .pop()
        .ok_or("no SST file in the store")?;
    let mut bytes = std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    let middle = (size / 2) as usize;
    let end = (middle + 4096).min(bytes.len());
    for byte in &mut bytes[middle..end] {
        *byte ^= 0x5a;
    }
    std::fs::write(&path, bytes).map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(path)
}

/// Starts a node on `home`; `Ok` with its message when it exits with an
/// error naming `file` (by its name) within [`REFUSE_WITHIN`].
fn start_expecting_refusal(
    binary: &Path,
    home: &Path,
    api: &str,
    file: &Path,
    committed: u64,
) -> Result<String, String> {
    let log = home.join("damaged-start.log");
    let out = std::fs::File::create(&log).map_err(|error| error.to_string())?;
    let mut child = Command::new(binary)
        .args(["node", "start", "--home"])
        .arg(home)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|error| error.to_string())?)
        .stderr(out)
        .spawn()
        .map_err(|error| format!("starting the node: {error}"))?;
    let started = Instant::now();
    let mut came_up_at = None;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        // Serving its API means it started on the damaged file.
        let serving = super::status(api).ok();
        if started.elapsed() > REFUSE_WITHIN || serving.is_some() {
            came_up_at = serving.map(|status| status.height);
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let last_error = text
        .lines()
        .rev()
        .find(|line| line.contains("ERROR") || line.contains("rror"))
        .unwrap_or("")
        .trim()
        .to_string();
    match status {
        None => Err(match came_up_at {
            Some(height) => format!(
                "the node started anyway, at height {height} (the home's node had committed height {committed} when it was killed)"
            ),
            None => format!(
                "the node ran for {} s without refusing",
                REFUSE_WITHIN.as_secs()
            ),
        }),
        Some(status) if status.success() => Err("the node exited with success".into()),
        Some(status) if status.code().is_none() || status.code() == Some(101) => Err(format!(
            "the node crashed ({status}) instead of refusing: {last_error}"
        )),
        Some(_) if !text.contains(&name) => Err(format!(
            "the node refused without naming {name}: {last_error}"
        )),
        Some(_) => Ok(last_error),
    }
}
