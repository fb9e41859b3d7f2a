//! `scf audit verify` and `scf audit export` as a user runs them: the built
//! binary against a real chain in a node-like home (built by
//! `support/audit_chain.rs` without a running node), its exit code, its
//! JSON summary field by field, and its message on a tampered copy.
//! The tampering cases themselves are specified by the audit module's unit
//! tests; these check what reaches the user.

mod support {
    pub mod audit_chain;
}

use std::path::Path;
use std::process::{Command, Output};

use support::audit_chain as fixture;

fn scf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scf"))
        .args(args)
        .output()
        .expect("run the scf binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

#[test]
fn verify_home_passes_and_reports_the_chain_in_json() {
    let chain = fixture::build();
    let output = scf(&["audit", "verify", "--home", path(&chain.home), "--json"]);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints one JSON document");
    assert_eq!(report["verified"], true);
    assert_eq!(report["chain_id"], chain.chain_id.to_string());
    assert_eq!(report["chain_name"], "audit-test");
    assert_eq!(report["heights"], fixture::HEIGHTS);
    assert_eq!(report["transactions"], fixture::TRANSACTIONS);
    assert_eq!(report["participants"], fixture::PARTICIPANTS);
    let last = chain.block(fixture::HEIGHTS);
    assert_eq!(report["block_hash"], last.hash().to_string());
    assert_eq!(report["app_hash"], last.header.app_hash.to_string());
    let outstanding = report["outstanding"].as_array().expect("an array");
    assert_eq!(outstanding.len(), 1);
    assert_eq!(outstanding[0]["name"], "core");
    assert_eq!(outstanding[0]["core"], chain.keys.core.public().to_string());
    assert_eq!(outstanding[0]["outstanding"], "600000.00");
    assert_eq!(outstanding[0]["outstanding_minor"], fixture::OUTSTANDING);
    assert_eq!(outstanding[0]["limit"], "1000000.00");
    assert!(report["transactions_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn export_then_verify_chain_passes_in_human_form() {
    let chain = fixture::build();
    let out = chain.dir.path().join("exported.jsonl");
    let export = scf(&[
        "audit",
        "export",
        "--home",
        path(&chain.home),
        "--out",
        path(&out),
    ]);
    assert!(export.status.success(), "stderr: {}", text(&export.stderr));
    assert!(text(&export.stdout).contains("exported heights 1..7"));

    let verify = scf(&["audit", "verify", "--chain", path(&out)]);
    let stdout = text(&verify.stdout);
    assert!(verify.status.success(), "stderr: {}", text(&verify.stderr));
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(stdout.contains("transactions   9"), "{stdout}");
    assert!(stdout.contains("600000.00 CNY"), "{stdout}");
}

#[test]
fn a_tampered_home_fails_naming_the_height_and_the_reason() {
    let chain = fixture::build();
    let copy = chain.dir.path().join("tampered-home");
    fixture::copy_dir(&chain.home, &copy);
    let height = fixture::TRANSFER_HEIGHT;
    let tampered = fixture::with_amount_changed(chain.block(height));
    fixture::overwrite_in_store(
        &fixture::ledger_dir(&copy),
        height,
        Some(&tampered.to_bytes()),
        None,
    );

    assert_home_fails_at(&copy, 4, &["height 4: tx root mismatch"]);
}

/// `audit verify --home` fails on `home`, its message saying each of `says`,
/// and with `--json` it reports `height` as the first bad one.
fn assert_home_fails_at(home: &Path, height: u64, says: &[&str]) {
    let output = scf(&["audit", "verify", "--home", path(home)]);
    assert!(!output.status.success(), "a tampered chain must fail");
    let stderr = text(&output.stderr);
    for needle in says {
        assert!(stderr.contains(needle), "{stderr}");
    }

    let output = scf(&["audit", "verify", "--home", path(home), "--json"]);
    assert!(!output.status.success());
    let failure: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints the failure");
    assert_eq!(failure["verified"], false);
    assert_eq!(failure["height"], height);
}

#[test]
fn swapped_blocks_in_a_home_fail_naming_the_first_swapped_height() {
    let chain = fixture::build();
    let copy = chain.dir.path().join("swapped-home");
    fixture::copy_dir(&chain.home, &copy);
    let (first, second) = (5u64, 6u64);
    let (block_first, certificate_first) = &chain.blocks[first as usize - 1];
    let (block_second, certificate_second) = &chain.blocks[second as usize - 1];
    let ledger = fixture::ledger_dir(&copy);
    fixture::overwrite_in_store(
        &ledger,
        first,
        Some(&block_second.to_bytes()),
        Some(certificate_second),
    );
    fixture::overwrite_in_store(
        &ledger,
        second,
        Some(&block_first.to_bytes()),
        Some(certificate_first),
    );

    assert_home_fails_at(&copy, 5, &["height 5", "blocks were swapped"]);
}

#[test]
fn a_certificate_short_of_a_quorum_fails_from_a_chain_file() {
    let chain = fixture::build();
    let out = chain.dir.path().join("chain.jsonl");
    let export = scf(&[
        "audit",
        "export",
        "--home",
        path(&chain.home),
        "--out",
        path(&out),
    ]);
    assert!(export.status.success(), "stderr: {}", text(&export.stderr));
    let content = std::fs::read_to_string(&out).unwrap();
    let mut lines: Vec<String> = content.lines().map(str::to_string).collect();
    let mut record: serde_json::Value = serde_json::from_str(&lines[3]).unwrap();
    let bytes = hex::decode(record["certificate"].as_str().unwrap()).unwrap();
    let mut certificate: consensus::CommitCertificate = borsh::from_slice(&bytes).unwrap();
    certificate.signatures.remove(0);
    record["certificate"] = hex::encode(borsh::to_vec(&certificate).unwrap()).into();
    lines[3] = record.to_string();
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();

    let output = scf(&["audit", "verify", "--chain", path(&out)]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("height 3: certificate invalid: signers hold 2 voting power"),
        "{stderr}"
    );
}

#[test]
fn verify_takes_one_source_and_names_an_unreachable_node() {
    let chain = fixture::build();
    let both = scf(&[
        "audit",
        "verify",
        "--home",
        path(&chain.home),
        "--chain",
        "chain.jsonl",
    ]);
    assert_eq!(both.status.code(), Some(2), "a usage error");
    assert!(
        text(&both.stderr).contains("cannot be used with"),
        "{}",
        text(&both.stderr)
    );

    // Without --home or --chain, the global --node is the source (checked
    // against a chain id the auditor knows).
    let chain_id = chain.chain_id.to_string();
    let unreachable = scf(&[
        "audit",
        "verify",
        "--node",
        "http://127.0.0.1:1",
        "--chain-id",
        &chain_id,
    ]);
    assert!(!unreachable.status.success());
    let stderr = text(&unreachable.stderr);
    assert!(stderr.contains("node http://127.0.0.1:1"), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");
}

#[test]
fn a_directory_that_is_not_a_home_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = scf(&["audit", "verify", "--home", path(dir.path())]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("genesis.json"), "{stderr}");
}
