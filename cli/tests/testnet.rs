//! End-to-end tests of `scf testnet` and `scf demo` as a user runs them.

mod support;

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
