//! End-to-end tests of `scf testnet` and `scf demo` as a user runs them.

mod support;

use std::time::{Duration, Instant};

use support::{Testnet, scf};

/// Writes its file, stops with Ctrl-C, and resumed on the same directory
/// keeps the chain, its state, and goes on committing.
#[test]
fn testnet_writes_its_file_and_resumes_the_same_chain() {
    let dir = tempfile::Builder::new()
        .prefix("scf-resume-")
        .tempdir()
        .unwrap();
    let mut net = Testnet::start_in(dir.path(), 4, None);
    let file = net.file();
    assert!(support::is_hex(&file["chain_id"], 64), "{file}");
    let validators = file["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 4);
    for (index, validator) in validators.iter().enumerate() {
        assert_eq!(validator["name"], format!("validator-{index}"));
        assert!(
            validator["api"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
        assert!(std::path::Path::new(validator["home"].as_str().unwrap()).is_dir());
    }
    for name in [
        "operator",
        "bank",
        "core",
        "supplier1",
        "supplier2",
        "supplier3",
        "auditor",
    ] {
        assert!(
            dir.path()
                .join("keys")
                .join(format!("{name}.key"))
                .is_file(),
            "{name}"
        );
    }

    // Commit something, stop, start again on the same directory.
    let api = net.api(0);
    let core = net.public_key("core");
    let granted = scf(&[
        "--json",
        "--node",
        &api,
        "credit",
        "grant",
        "--core",
        &core,
        "--limit",
        "123.45",
        "--key",
        &net.key("bank"),
    ])
    .ok_json();
    let height = granted["height"].as_u64().unwrap();
    net.stop();
    assert_ne!(
        scf(&["--node", &api, "status"]).code,
        0,
        "the validators stop with the testnet"
    );

    let net = Testnet::start_in(dir.path(), 4, None);
    assert_eq!(
        net.file()["chain_id"],
        file["chain_id"],
        "the same chain resumes"
    );
    let api = net.api(0);
    let status = scf(&["--json", "--node", &api, "status"]).ok_json();
    assert_eq!(status["chain_id"], file["chain_id"]);
    assert!(status["height"].as_u64().unwrap() >= height);
    let core_view = scf(&["--json", "--node", &api, "participant", "show", &core]).ok_json();
    assert_eq!(core_view["credit_line"]["limit"], "123.45");
    let again = scf(&[
        "--json",
        "--node",
        &net.api(1),
        "credit",
        "grant",
        "--core",
        &core,
        "--limit",
        "200.00",
        "--key",
        &net.key("bank"),
    ])
    .ok_json();
    assert!(again["height"].as_u64().unwrap() > height);
}

#[test]
fn demo_runs_the_whole_lifecycle_and_exits_zero() {
    let dir = tempfile::Builder::new()
        .prefix("scf-demo-e2e-")
        .tempdir()
        .unwrap();
    let outcome = scf(&[
        "demo",
        "--dir",
        dir.path().to_str().unwrap(),
        "--maturity-seconds",
        "15",
    ]);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    for part in [
        "bank grants core a credit line",
        "core confirms invoice",
        "supplier1 splits it",
        "supplier2 pays supplier3",
        "supplier3 asks bank to finance",
        "bank accepts",
        "refused",
        "core settles",
        "auditor verifies",
        "lineage",
        "└─",
        "demo finished",
    ] {
        assert!(
            outcome.stdout.contains(part),
            "demo output lacks {part:?}:\n{}",
            outcome.stdout
        );
    }
    // The testnet it started is stopped again.
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("testnet.json")).unwrap())
            .unwrap();
    let api = file["validators"][0]["api"].as_str().unwrap();
    assert_eq!(scf(&["--node", api, "status"]).code, 3);
}

/// A validator started by the test, as an operator restarts one by hand;
/// killed on drop. Its standard input is held here and `--stop-on-stdin-eof`
/// is added to the printed command, so it dies with the test even if the
/// test process is killed.
struct HandStarted {
    child: std::process::Child,
    _stdin: Option<std::process::ChildStdin>,
}

impl HandStarted {
    /// Runs the command `scf testnet` printed (`scf` or a path, then its
    /// arguments) with the test's `scf` binary, logging to `log`.
    fn run(printed: &str, log: &std::path::Path) -> HandStarted {
        let words: Vec<&str> = printed.split_whitespace().collect();
        let log = std::fs::File::create(log).expect("a log file");
        let mut child = std::process::Command::new(support::scf_path())
            .args(&words[1..])
            .arg("--stop-on-stdin-eof")
            .stdin(std::process::Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("the printed command starts");
        let stdin = child.stdin.take();
        HandStarted {
            child,
            _stdin: stdin,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reaped (a zombie would still look alive to the testnet).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HandStarted {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `done` every 300 ms for up to `seconds`; panics with the
/// testnet's output if it never holds.
fn wait_until(net: &Testnet, seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {seconds} s; testnet output:\n{}",
            net.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn height(api: &str) -> Option<u64> {
    let status = scf(&["--json", "--node", api, "status"]);
    (status.code == 0).then(|| status.json()["height"].as_u64().expect("height"))
}

/// A credit grant through `api`; returns the height it was committed at.
fn grant(net: &Testnet, api: &str, limit: &str) -> u64 {
    let granted = scf(&[
        "--json",
        "--node",
        api,
        "credit",
        "grant",
        "--core",
        &net.public_key("core"),
        "--limit",
        limit,
        "--key",
        &net.key("bank"),
    ])
    .ok_json();
    granted["height"].as_u64().expect("height")
}

/// How often `part` occurs in the testnet's output.
fn occurrences(net: &Testnet, part: &str) -> usize {
    net.log().matches(part).count()
}

/// Kill -9 one validator of four: the testnet names it and how to restart
/// it, the other three go on committing; restarted with the printed
/// command, it is reported back and catches up; killed again, it is
/// reported again; and Ctrl-C on the testnet stops it too.
#[test]
fn a_killed_validator_is_reported_and_the_others_go_on() {
    let mut net = Testnet::start(4);
    // A validator that exits before the testnet has seen every one answer is
    // a failed start; the supervision begins once it says it is running.
    wait_until(&net, 60, "the testnet saying it runs", || {
        net.log().contains("is running: 4 validators")
    });
    let file = net.file();
    let home = file["validators"][1]["home"].as_str().unwrap().to_string();
    let log = file["validators"][1]["log"].as_str().unwrap().to_string();
    let home_path = std::path::Path::new(&home);
    let pid_file = home_path.join("node.pid");
    let mut pid = String::new();
    wait_until(&net, 20, "validator-1 writing node.pid", || {
        pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_string();
        !pid.is_empty()
    });

    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let exited = format!("validator-1 (pid {pid}) exited: signal: 9");
    wait_until(&net, 30, "the testnet reporting the kill", || {
        net.log().contains(&exited)
    });
    assert!(net.is_running(), "the testnet goes on: {}", net.log());
    let output = net.log();
    for part in [
        "the other validators go on",
        &format!("home: {home}"),
        &format!("log:  {log}"),
        "3 of 4 validators run: enough to commit blocks",
    ] {
        assert!(output.contains(part), "output lacks {part:?}:\n{output}");
    }
    let restart = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("restart it with: "))
        .expect("a restart command")
        .to_string();
    assert!(
        restart.ends_with(&format!(" node start --home {home}")),
        "{restart}"
    );

    // The other three commit, and each sees the new height.
    let others = [net.api(0), net.api(2), net.api(3)];
    let before = height(&others[0]).expect("validator-0 answers");
    let committed = grant(&net, &others[2], "300.00");
    assert!(committed > before);
    for api in &others {
        wait_until(
            &net,
            30,
            "a running validator reaching the new height",
            || height(api).is_some_and(|h| h >= committed),
        );
    }
    assert_eq!(height(&net.api(1)), None, "validator-1 is down");

    // Restarted by hand with the printed command: reported back, catches up.
    let mut restarted = HandStarted::run(&restart, &net.dir.join("restarted-1.log"));
    let back = format!("validator-1 is running again (pid {}", restarted.pid());
    wait_until(&net, 60, "the testnet noticing validator-1 back", || {
        net.log().contains(&back)
    });
    assert!(net.log().contains("4 of 4 validators run"), "{}", net.log());
    wait_until(&net, 60, "validator-1 catching up", || {
        height(&net.api(1)).is_some_and(|h| h >= committed)
    });
    let through_it = grant(&net, &net.api(1), "400.00");
    assert!(through_it > committed);

    // Killed again: reported again, with its new pid.
    restarted.kill();
    let exited_again = format!("validator-1 (pid {}) exited: unknown", restarted.pid());
    wait_until(&net, 30, "the testnet reporting the second exit", || {
        net.log().contains(&exited_again)
    });
    assert!(net.is_running(), "{}", net.log());
    assert_eq!(occurrences(&net, "restart it with: "), 2, "{}", net.log());

    // Once more by hand; Ctrl-C on the testnet stops it too (SIGTERM: a
    // clean exit, which removes its pid file).
    let mut again = HandStarted::run(&restart, &net.dir.join("restarted-2.log"));
    let back_again = format!("validator-1 is running again (pid {}", again.pid());
    wait_until(
        &net,
        60,
        "the testnet noticing validator-1 back again",
        || net.log().contains(&back_again),
    );
    net.ask_to_stop();
    let mut status = None;
    wait_until(&net, 40, "the testnet stopping validator-1", || {
        status = again.child.try_wait().expect("waiting");
        status.is_some()
    });
    assert!(
        status.is_some_and(|status| status.success()),
        "stopped cleanly: {status:?}"
    );
    net.stop();
    let output = net.log();
    assert!(output.contains("testnet stopped"), "{output}");
    for index in 0..4 {
        let home = file["validators"][index]["home"].as_str().unwrap();
        assert!(
            !std::path::Path::new(home).join("node.pid").exists(),
            "validator-{index} removed its pid file at its clean stop"
        );
    }
}

/// With nothing left to watch the testnet stops, with an error that says
/// how to resume.
#[test]
fn the_testnet_stops_when_its_last_validator_does() {
    let mut net = Testnet::start(1);
    wait_until(&net, 60, "the testnet saying it runs", || {
        net.log().contains("is running: 1 validators")
    });
    let home = net.file()["validators"][0]["home"]
        .as_str()
        .unwrap()
        .to_string();
    let pid_file = std::path::Path::new(&home).join("node.pid");
    let mut pid = String::new();
    wait_until(&net, 20, "validator-0 writing node.pid", || {
        pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_string();
        !pid.is_empty()
    });
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while net.is_running() {
        assert!(
            Instant::now() < deadline,
            "the testnet still runs with no validator:\n{}",
            net.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let output = net.log();
    for part in [
        &format!("validator-0 (pid {pid}) exited: signal: 9"),
        "no validator runs any more",
        "0 of 1 validators run",
        "error: every validator has stopped",
        "resume the chain",
    ] {
        assert!(output.contains(part), "output lacks {part:?}:\n{output}");
    }
}
