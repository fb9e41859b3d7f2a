//! Processes the testnet did not start: is one alive, stop it, and the
//! command an operator types to start a validator again.
//!
//! Signals go through the system's `kill` utility, as the node's own tests
//! send them: the workspace forbids `unsafe` (so no `libc::kill`), and a
//! signal crate would be a dependency for two calls. A zombie (exited, not
//! yet reaped by its parent) still counts as alive; a shell reaps its
//! children at once, so this matters only to a parent that never waits.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

/// Whether process `pid` exists (`kill -0`).
pub async fn alive(pid: u32) -> bool {
    signal(pid, "0").await
}

/// False only if `pid` is known not to be an `scf node start`: its command
/// line (`/proc/PID/cmdline`, where there is one) lacks `node start`. A pid
/// file left by a killed node may name a process that has since taken its
/// number; this keeps the testnet from adopting, and later signalling, it.
pub fn may_be_a_node(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline.windows(11).any(|window| window == b"node\0start\0"),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Sends `signal` ("TERM", "KILL", or "0" to test) to `pid`; true if sent.
pub async fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// `scf node start --home HOME`, as the operator would type it: `scf` if
/// that name on `PATH` is this executable, else this executable's path (a
/// `target/debug/scf` not on `PATH`).
pub fn restart_command(home: &Path) -> String {
    format!(
        "{} node start --home {}",
        program(),
        shell_word(&home.display().to_string())
    )
}

fn program() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "scf".to_string();
    };
    let this = exe.canonicalize().unwrap_or_else(|_| exe.clone());
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            dir.join("scf")
                .canonicalize()
                .is_ok_and(|found| found == this)
        })
    });
    if on_path {
        "scf".to_string()
    } else {
        shell_word(&exe.display().to_string())
    }
}

/// `text` quoted for a POSIX shell if it holds anything but plain path
/// characters.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&byte));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_stay_as_they_are_and_others_are_quoted() {
        assert_eq!(shell_word("/tmp/scf/validator-1"), "/tmp/scf/validator-1");
        assert_eq!(shell_word("/tmp/my scf/v"), "'/tmp/my scf/v'");
        assert_eq!(shell_word("/tmp/it's"), r"'/tmp/it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn the_restart_command_starts_the_node_of_that_home() {
        let command = restart_command(Path::new("/tmp/scf/validator-2"));
        assert!(
            command.ends_with(" node start --home /tmp/scf/validator-2"),
            "{command}"
        );
    }

    #[tokio::test]
    async fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(alive(std::process::id()).await);
        let mut child = Command::new("true").spawn().expect("true runs");
        let pid = child.id().expect("a pid before it is reaped");
        child.wait().await.expect("reaped");
        assert!(!alive(pid).await);
    }

    #[test]
    fn a_process_that_is_not_a_node_is_not_taken_for_one() {
        if Path::new("/proc/self").exists() {
            assert!(!may_be_a_node(std::process::id()));
        }
    }
}
