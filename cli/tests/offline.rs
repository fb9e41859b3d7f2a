//! End-to-end tests of the commands that need no running node: keys, genesis,
//! and the errors a user meets before any node answers.

mod support;

use support::{dead_node_url, scf};

#[test]
fn keys_new_writes_a_private_key_file_and_show_prints_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.key");
    let path = path.to_str().unwrap();
    let created = scf(&["--json", "keys", "new", "--out", path]).ok_json();
    assert!(support::is_hex(&created["public_key"], 64), "{created}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let shown = scf(&["--json", "keys", "show", path]).ok_json();
    assert_eq!(shown["public_key"], created["public_key"]);
    let human = scf(&["keys", "show", path]);
    assert_eq!(human.stdout.trim(), created["public_key"].as_str().unwrap());
}

#[test]
fn keys_new_refuses_to_overwrite_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.key");
    let path = path.to_str().unwrap();
    assert_eq!(scf(&["keys", "new", "--out", path]).code, 0);
    scf(&["keys", "new", "--out", path]).fails(1, &["already exists", "refusing to overwrite"]);
}

#[test]
fn a_missing_key_file_is_named_with_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.key");
    let path = path.to_str().unwrap();
    scf(&["keys", "show", path]).fails(1, &[path, "does not exist", "scf keys new --out"]);
    // Transactions read the key before they talk to any node.
    scf(&[
        "--node",
        &dead_node_url(),
        "credit",
        "grant",
        "--core",
        &"ab".repeat(32),
        "--limit",
        "10.00",
        "--key",
        path,
    ])
    .fails(1, &["does not exist", "scf keys new"]);
}

#[cfg(unix)]
#[test]
fn a_key_file_others_may_read_is_refused_with_the_chmod_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.key");
    let path_text = path.to_str().unwrap();
    assert_eq!(scf(&["keys", "new", "--out", path_text]).code, 0);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    scf(&["keys", "show", path_text]).fails(
        1,
        &[path_text, "mode 0644", &format!("chmod 600 {path_text}")],
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(scf(&["keys", "show", path_text]).code, 0);
}

#[test]
fn a_malformed_key_file_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.key");
    std::fs::write(
        &path,
        "{\"public_key\": \"00\", \"secret_key\": \"zz-secret\"}",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let outcome = scf(&["keys", "show", path.to_str().unwrap()]);
    outcome.fails(1, &["malformed"]);
    assert!(!outcome.stderr.contains("zz-secret"));
}

#[test]
fn an_unreachable_node_says_how_to_start_one() {
    let url = dead_node_url();
    let outcome = scf(&["--node", &url, "status"]);
    outcome.fails(
        3,
        &[
            &url,
            "unreachable",
            "connection refused",
            "scf node start --home DIR",
            "scf testnet",
        ],
    );
    let json = scf(&["--json", "--node", &url, "token", "show", &"00".repeat(32)]);
    assert_eq!(json.code, 3);
    let error: serde_json::Value = serde_json::from_str(json.stderr.trim()).unwrap();
    assert_eq!(error["error"], "unreachable");
}

#[test]
fn genesis_new_writes_a_valid_genesis_homes_and_an_operator_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let out_text = out.to_str().unwrap();
    let summary = scf(&[
        "--json",
        "genesis",
        "new",
        "--chain",
        "acme",
        "--validators",
        "3",
        "--out",
        out_text,
    ])
    .ok_json();
    assert_eq!(summary["chain_name"], "acme");
    assert!(support::is_hex(&summary["chain_id"], 64));
    assert_eq!(summary["validators"].as_array().unwrap().len(), 3);
    assert_eq!(summary["participants"][0]["name"], "operator");
    assert_eq!(summary["participants"][0]["roles"][0], "operator");
    for index in 0..3 {
        let home = out.join(format!("validator-{index}"));
        for file in ["config.toml", "genesis.json", "node.key", "validator.key"] {
            assert!(home.join(file).is_file(), "{} lacks {file}", home.display());
        }
    }
    let operator = out.join("keys").join("operator.key");
    let operator_key = scf(&["--json", "keys", "show", operator.to_str().unwrap()]).ok_json();
    assert_eq!(
        operator_key["public_key"],
        summary["participants"][0]["public_key"]
    );

    let genesis_file = out.join("genesis.json");
    let validated = scf(&[
        "--json",
        "genesis",
        "validate",
        genesis_file.to_str().unwrap(),
    ])
    .ok_json();
    assert_eq!(validated["chain_id"], summary["chain_id"]);

    // A second `genesis new` into the same directory is refused.
    scf(&[
        "genesis",
        "new",
        "--chain",
        "acme",
        "--validators",
        "1",
        "--out",
        out_text,
    ])
    .fails(1, &["already exists"]);
}

#[test]
fn genesis_add_participant_registers_it_in_the_file_and_every_home() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    scf(&[
        "genesis",
        "new",
        "--chain",
        "acme",
        "--validators",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let key_path = dir.path().join("bank.key");
    let key = scf(&["--json", "keys", "new", "--out", key_path.to_str().unwrap()]).ok_json();
    let genesis_file = out.join("genesis.json");
    let before = scf(&[
        "--json",
        "genesis",
        "validate",
        genesis_file.to_str().unwrap(),
    ])
    .ok_json();
    let after = scf(&[
        "--json",
        "genesis",
        "add-participant",
        "--genesis",
        genesis_file.to_str().unwrap(),
        "--name",
        "bank-a",
        "--role",
        "bank",
        "--key",
        key["public_key"].as_str().unwrap(),
    ])
    .ok_json();
    assert_ne!(
        after["chain_id"], before["chain_id"],
        "the chain id covers participants"
    );
    let bank = &after["participants"][1];
    assert_eq!(bank["name"], "bank-a");
    assert_eq!(bank["roles"][0], "bank");
    assert_eq!(bank["public_key"], key["public_key"]);
    for index in 0..2 {
        let home_genesis = out.join(format!("validator-{index}")).join("genesis.json");
        let home = scf(&[
            "--json",
            "genesis",
            "validate",
            home_genesis.to_str().unwrap(),
        ])
        .ok_json();
        assert_eq!(home["chain_id"], after["chain_id"]);
    }
    scf(&[
        "genesis",
        "add-participant",
        "--genesis",
        genesis_file.to_str().unwrap(),
        "--name",
        "x",
        "--role",
        "treasurer",
        "--key",
        key["public_key"].as_str().unwrap(),
    ])
    .fails(1, &["unknown role \"treasurer\""]);
}

#[test]
fn genesis_validate_names_the_broken_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genesis.json");
    std::fs::write(
        &path,
        r#"{ "chain_name": "x", "currency_code": "cny", "currency_decimals": 2,
             "genesis_time_ms": 0, "validators": [], "participants": [] }"#,
    )
    .unwrap();
    scf(&["genesis", "validate", path.to_str().unwrap()]).fails(1, &["currency code \"cny\""]);
}

#[test]
fn bad_arguments_are_usage_errors() {
    assert_eq!(scf(&["token", "show"]).code, 2);
    scf(&["--node", &dead_node_url(), "token", "show", "xyz"]).fails(1, &["not a token id"]);
}
