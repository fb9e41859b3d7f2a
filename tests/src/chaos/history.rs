//! The chaos run's history: one JSON object per line, appended as things
//! happen (a transaction submitted, accepted, committed, refused; a fault
//! started or ended; a node's height changed), each stamped with the
//! seconds since the run started.
//!
//! The file is the evidence the checker judges, and what a person reads
//! after a failed run; the runner never keeps a second, private account.
//! It does not judge anything itself (see [`super::checker`]).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One line of the history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A transaction was sent to `node` (not yet answered).
    Submitted {
        tx: String,
        signer: String,
        nonce: u64,
        kind: String,
        node: usize,
        /// 0 for the first submission, then 1, 2… for the same signed
        /// transaction sent again after it was lost from the mempools.
        attempt: u32,
    },
    /// `node` took it into its mempool (202), or already had it (409).
    Accepted { tx: String, node: usize },
    /// `node` refused it by a rule: at submission (HTTP 422) or, when it
    /// was already pending, at execution (the tx status route).
    Refused {
        tx: String,
        node: usize,
        rule: String,
        detail: String,
    },
    /// `node` did not answer or was too busy (HTTP 0 or 5xx).
    Unreachable { tx: String, node: usize, http: u16 },
    /// `node` served a committed block holding the transaction: the
    /// acknowledgement the checker holds every node to.
    Committed {
        tx: String,
        node: usize,
        height: u64,
        index: u32,
        tokens: Vec<String>,
    },
    /// A fault began.
    FaultStart {
        id: u32,
        kind: String,
        validators: Vec<usize>,
        detail: String,
    },
    /// A fault ended (the nodes were restarted, resumed or reconnected).
    FaultEnd { id: u32, kind: String },
    /// Validators `validators` are down and quorum is lost, or back.
    Quorum { up: bool },
    /// A restarted or resumed validator reached `target` (the height the
    /// others held when it came back), after `seconds`; `None` if it did
    /// not within the bound.
    CaughtUp {
        node: usize,
        target: u64,
        seconds: Option<f64>,
    },
    /// What a node did when its disk was full: stopped (how) or kept
    /// running (refusing writes).
    DiskFull { node: usize, outcome: String },
    /// A node's committed height as seen by the monitor (only changes).
    Height { node: usize, height: u64 },
    /// Something the runner saw that is a violation by itself (a node
    /// exited on its own, a node refused to start).
    Violation { what: String },
}

/// A stamped event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Seconds since the run started.
    pub t: f64,
    #[serde(flatten)]
    pub event: Event,
}

/// The open history file, shared by every thread of the run.
pub struct History {
    path: PathBuf,
    started: Instant,
    out: Mutex<BufWriter<File>>,
}

impl History {
    pub fn create(path: &Path, started: Instant) -> std::io::Result<History> {
        Ok(History {
            path: path.to_path_buf(),
            started,
            out: Mutex::new(BufWriter::new(File::create(path)?)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seconds since the run started.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn record(&self, event: Event) {
        let record = Record {
            t: (self.now() * 1000.0).round() / 1000.0,
            event,
        };
        let line = serde_json::to_string(&record).expect("a history record serialises");
        let mut out = self.out.lock().unwrap_or_else(|poison| poison.into_inner());
        // A history that cannot be written cannot be judged: stop loudly.
        writeln!(out, "{line}").expect("writing the history file");
    }

    pub fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(|poison| poison.into_inner());
        out.flush().expect("flushing the history file");
    }
}

/// Reads a history file back, line by line; a line that does not parse is
/// an error naming its number.
pub fn read(path: &Path) -> Result<Vec<Record>, String> {
    let file = File::open(path).map_err(|error| format!("opening {}: {error}", path.display()))?;
    let mut records = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|error| format!("reading {}: {error}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line)
            .map_err(|error| format!("{} line {}: {error}: {line}", path.display(), number + 1))?;
        records.push(record);
    }
    Ok(records)
}
