//! Equivocation evidence: two different messages a validator signed for one
//! step, kept so the consortium can act on it.
//!
//! The engine reports evidence only for messages whose signatures it
//! verified, so every record is proof by itself (both signed messages are
//! in it). Records are appended as JSON lines to a file in the data
//! directory, counted in `/metrics` (`scf_equivocations_total`) and listed by
//! `GET /v1/evidence`. At most one record per (offender, height, round,
//! step) and [`MAX_EVIDENCE`] in all are kept: a validator that equivocates
//! endlessly cannot fill the disk.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;

use consensus::Equivocation;
use crypto::PublicKey;
use tracing::warn;

use crate::shared::Shared;

/// Most evidence records kept (in the file and in memory).
pub const MAX_EVIDENCE: usize = 10_000;

type EvidenceKey = (PublicKey, u64, u32, u8);

fn key_of(evidence: &Equivocation) -> EvidenceKey {
    (
        evidence.offender(),
        evidence.height().0,
        evidence.round().0,
        evidence.step() as u8,
    )
}

pub struct EvidenceLog {
    path: PathBuf,
    shared: Arc<Shared>,
    seen: BTreeSet<EvidenceKey>,
}

impl EvidenceLog {
    /// Opens the log, loading what earlier runs recorded (unreadable lines
    /// are skipped with a warning: evidence is a report, not state).
    pub fn open(path: PathBuf, shared: Arc<Shared>) -> EvidenceLog {
        let mut seen = BTreeSet::new();
        let mut loaded = Vec::new();
        if let Ok(file) = std::fs::File::open(&path) {
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                match serde_json::from_str::<Equivocation>(&line) {
                    Ok(evidence) if loaded.len() < MAX_EVIDENCE => {
                        if seen.insert(key_of(&evidence)) {
                            loaded.push(evidence);
                        }
                    }
                    Ok(_) => break,
                    Err(error) => {
                        warn!(path = %path.display(), %error, "skipping an unreadable evidence record");
                    }
                }
            }
        }
        shared.metrics.equivocations(loaded.len());
        shared.evidence.lock().extend(loaded);
        EvidenceLog { path, shared, seen }
    }

    /// Records new evidence (a repeat of a known step is ignored).
    pub fn record(&mut self, evidence: Equivocation) {
        if self.seen.len() >= MAX_EVIDENCE || !self.seen.insert(key_of(&evidence)) {
            return;
        }
        let line = serde_json::to_string(&evidence).expect("evidence serialises");
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(error) = written {
            warn!(path = %self.path.display(), %error, "cannot write equivocation evidence");
        }
        self.shared.metrics.equivocations(1);
        self.shared.evidence.lock().push(evidence);
    }
}
