//! `HOME/node.pid`: the process id of the node running from a home, so that
//! a supervisor that did not start it (`scf testnet`, after an operator
//! restarted a validator by hand) can tell whether it runs and stop it.
//!
//! [`run`](crate::run) writes it once the node has started, and removes it
//! when the node stops cleanly. Written after the start, because by then the
//! node holds the store's lock: a second node started on the same home fails
//! to open the store before it could overwrite the first one's file. A node
//! killed with SIGKILL leaves its file behind, so a reader must check that the
//! process is alive; the file says who ran last, not who runs.
//!
//! This module does not check processes or send signals.

use std::path::{Path, PathBuf};

pub const PID_FILE: &str = "node.pid";

/// The pid file of the running process; removed on drop if it still names
/// this process.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes this process's id to `HOME/node.pid`, replacing what is there.
    /// Written beside and renamed into place, so a reader never sees half a
    /// number.
    pub fn write(home: &Path) -> std::io::Result<PidFile> {
        let path = home.join(PID_FILE);
        let pid = std::process::id();
        let partial = home.join(format!("{PID_FILE}.partial"));
        std::fs::write(&partial, format!("{pid}\n"))?;
        std::fs::rename(&partial, &path)?;
        Ok(PidFile { path, pid })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Another process may have taken the home since (after this one's
        // store was closed); its file is not ours to remove.
        if read(self.path.parent().unwrap_or(Path::new("."))) == Some(self.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The process id in `HOME/node.pid`, if the file is there and holds one.
pub fn read(home: &Path) -> Option<u32> {
    std::fs::read_to_string(home.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_names_this_process_until_dropped() {
        let home = tempfile::tempdir().expect("temporary directory");
        assert_eq!(read(home.path()), None);
        let file = PidFile::write(home.path()).expect("written");
        assert_eq!(file.path(), home.path().join(PID_FILE));
        assert_eq!(read(home.path()), Some(std::process::id()));
        assert!(!home.path().join("node.pid.partial").exists());
        drop(file);
        assert!(!home.path().join(PID_FILE).exists(), "removed on drop");
    }

    #[test]
    fn a_pid_file_another_process_wrote_since_is_left_in_place() {
        let home = tempfile::tempdir().expect("temporary directory");
        let file = PidFile::write(home.path()).expect("written");
        let other = std::process::id().wrapping_add(1);
        std::fs::write(home.path().join(PID_FILE), format!("{other}\n")).expect("overwrite");
        drop(file);
        assert_eq!(read(home.path()), Some(other));
    }

    #[test]
    fn a_file_without_a_number_reads_as_none() {
        let home = tempfile::tempdir().expect("temporary directory");
        std::fs::write(home.path().join(PID_FILE), "not a pid").expect("write");
        assert_eq!(read(home.path()), None);
    }
}
