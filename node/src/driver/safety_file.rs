//! The validator's safety record on disk: the last consensus message it
//! signed. It is written and synced before the message it allows leaves the
//! node (aptos safety-rules' "persist before you vote"), so that a crash and
//! restart can never make the validator sign two different values at the
//! same step.
//!
//! Write path: a temporary file beside the target, `fsync`, rename over the
//! target, `fsync` the directory: after a crash the file holds the old record
//! or the new one, never a torn mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use consensus::SafetyRecord;

#[derive(Debug, thiserror::Error)]
pub enum SafetyFileError {
    #[error("cannot write the safety record {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot read the safety record {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "the safety record {} is corrupt ({reason}); refusing to start a validator that might sign twice — restore it from a backup, or remove it only if this validator has never voted on this chain",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },
}

/// Reads the record; `None` when the validator has never signed.
pub fn load(path: &Path) -> Result<Option<SafetyRecord>, SafetyFileError> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| SafetyFileError::Corrupt {
                    path: path.to_path_buf(),
                    reason: error.to_string(),
                })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(SafetyFileError::Read {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Writes and syncs the record; returns only once it is durable.
pub fn store(path: &Path, record: &SafetyRecord) -> Result<(), SafetyFileError> {
    let fail = |error: std::io::Error| SafetyFileError::Write {
        path: path.to_path_buf(),
        error,
    };
    let temporary = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(record).expect("a safety record always serialises");
    {
        let mut file = File::create(&temporary).map_err(fail)?;
        file.write_all(&bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
    }
    fs::rename(&temporary, path).map_err(fail)?;
    if let Some(directory) = path.parent() {
        File::open(directory)
            .and_then(|dir| dir.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use consensus::{Height, Round, Step};

    #[test]
    fn a_stored_record_reads_back_and_a_torn_one_is_refused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("safety.json");
        assert_eq!(load(&path).expect("absent is fine"), None);
        let record = SafetyRecord {
            height: Height(7),
            round: Round(2),
            step: Step::Precommit,
            value: None,
            pol_round: None,
            locked: None,
        };
        store(&path, &record).expect("write");
        assert_eq!(load(&path).expect("read"), Some(record));
        fs::write(&path, b"{\"height\":").expect("tear the file");
        assert!(matches!(load(&path), Err(SafetyFileError::Corrupt { .. })));
    }
}
