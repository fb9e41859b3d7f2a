//! End-to-end tests of the commands that prepare a node to join a running
//! chain, through the real `scf` binary: `scf node init` (a new node's
//! home) and `scf validator next-key` (the key a validator rotates to).
//! Neither needs a running node.
//!
//! The genesis files they are given come from outside the consortium's
//! machines, so the attack-minded tests hand over broken, oversized and
//! invalid ones and check that nothing at all is written.

mod support;

use std::path::{Path, PathBuf};

use support::{Outcome, scf};

/// A valid genesis of a 4-validator chain, made by `scf genesis new`.
fn genesis_file(dir: &Path) -> PathBuf {
    let out = dir.join("net");
    let made = scf(&[
        "genesis",
        "new",
        "--chain",
        "acme",
        "--validators",
        "4",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(made.code, 0, "{made:?}");
    out.join("genesis.json")
}

fn init(home: &Path, genesis: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec![
        "--json",
        "node",
        "init",
        "--home",
        home.to_str().expect("utf-8"),
        "--genesis",
        genesis.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    scf(&args)
}

const LISTEN: &[&str] = &["--listen", "/ip4/127.0.0.1/tcp/27001"];

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("the file")
        .permissions()
        .mode()
        & 0o777
}

fn public_key(key_file: &Path) -> String {
    genesis::read_key_file(key_file)
        .expect("a key file")
        .public()
        .to_hex()
}

#[test]
fn node_init_writes_a_startable_home_with_private_keys_and_prints_what_to_propose() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path());
    let home = dir.path().join("bank-b-node");
    let printed = init(&home, &genesis, LISTEN).ok_json();

    for file in ["config.toml", "genesis.json", "node.key", "validator.key"] {
        assert!(home.join(file).is_file(), "{file} missing");
    }
    #[cfg(unix)]
    for key in ["node.key", "validator.key"] {
        assert_eq!(mode(&home.join(key)), 0o600, "{key}");
    }
    let node_key = genesis::read_key_file(home.join("node.key")).expect("node.key");
    let peer_id = node::network::identity::peer_id_of(&node_key).to_string();
    assert_eq!(printed["peer_id"], peer_id.as_str(), "{printed}");
    let consensus_key = public_key(&home.join("validator.key"));
    assert_eq!(printed["consensus_key"], consensus_key.as_str());
    assert_eq!(printed["listen"], "/ip4/127.0.0.1/tcp/27001");
    assert_eq!(printed["address"], "/ip4/127.0.0.1/tcp/27001");
    assert_eq!(
        printed["name"], "bank-b-node",
        "the directory names the node"
    );
    assert_eq!(printed["api"], "127.0.0.1:8700");
    let command = printed["propose_command"].as_str().expect("a command");
    for part in [
        "scf validator propose add".to_string(),
        "--name bank-b-node".to_string(),
        format!("--consensus-key {consensus_key}"),
        format!("--peer-id {peer_id}"),
        "--address /ip4/127.0.0.1/tcp/27001".to_string(),
    ] {
        assert!(command.contains(&part), "{part:?} missing: {command}");
    }

    // The home is what `scf node start` loads: same chain, a validator key
    // genesis does not list (a validator-in-waiting).
    let config = node::home::NodeConfig::load(&home, &node::home::Overrides::default())
        .expect("the home loads");
    let chain = genesis::Genesis::load(&genesis).expect("the genesis");
    assert_eq!(config.genesis.chain_id(), chain.chain_id());
    assert_eq!(printed["chain_id"], chain.chain_id().to_string().as_str());
    let validator_key = config.validator_key.expect("a validator key").public();
    assert!(
        chain
            .validators
            .iter()
            .all(|listed| listed.public_key != validator_key)
    );

    // The human form prints the same values.
    let other = dir.path().join("other");
    let human = scf(&[
        "node",
        "init",
        "--home",
        other.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--listen",
        "/ip4/0.0.0.0/tcp/26656",
        "--address",
        "/dns4/node.bank-b.example/tcp/26656",
        "--name",
        "Bank B",
    ]);
    assert_eq!(human.code, 0, "{human:?}");
    for part in [
        "peer_id",
        "consensus_key",
        "--address /dns4/node.bank-b.example/tcp/26656",
        "--name 'Bank B'",
        "scf node start --home",
    ] {
        assert!(human.stdout.contains(part), "{part:?}: {}", human.stdout);
    }
}

#[test]
fn node_init_refuses_a_directory_that_is_a_home_already_and_keeps_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path());
    let home = dir.path().join("node");
    init(&home, &genesis, LISTEN).ok_json();
    let node_key = std::fs::read(home.join("node.key")).unwrap();
    let validator_key = std::fs::read(home.join("validator.key")).unwrap();

    init(&home, &genesis, LISTEN).fails(1, &["is a node home already", "scf node start --home"]);
    assert_eq!(std::fs::read(home.join("node.key")).unwrap(), node_key);
    assert_eq!(
        std::fs::read(home.join("validator.key")).unwrap(),
        validator_key
    );

    // A directory holding only a key (copied there, say) is refused too.
    let copied = dir.path().join("copied");
    std::fs::create_dir(&copied).unwrap();
    std::fs::copy(home.join("validator.key"), copied.join("validator.key")).unwrap();
    init(&copied, &genesis, LISTEN).fails(1, &["validator.key", "is a node home already"]);
    assert!(!copied.join("config.toml").exists());
    assert_eq!(
        std::fs::read(copied.join("validator.key")).unwrap(),
        validator_key
    );
}

/// Runs `scf node init` with every file it writes limited to `max_kib`
/// KiB (`ulimit -f`, with SIGXFSZ ignored so a write past it fails with
/// EFBIG as on a full disk, instead of killing the process).
#[cfg(unix)]
fn init_on_a_full_disk(home: &Path, genesis: &Path, max_kib: u32) -> Outcome {
    let config = tempfile::tempdir().expect("a temporary config directory");
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {max_kib}; exec \"$@\""))
        .arg("bash")
        .arg(support::scf_path())
        .args(["--json", "node", "init", "--home"])
        .arg(home)
        .arg("--genesis")
        .arg(genesis)
        .args(LISTEN)
        .env("XDG_CONFIG_HOME", config.path())
        .output()
        .expect("bash runs scf");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[cfg(unix)]
#[test]
fn node_init_on_a_full_disk_leaves_no_half_home_and_succeeds_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path());
    // 1 KiB: config.toml (over 1 KiB) is cut short, the first file of the
    // home half written.
    let limit_kib = 1;
    let home = dir.path().join("new-home");
    let full = init_on_a_full_disk(&home, &genesis, limit_kib);
    full.fails(1, &["config.toml", "File too large"]);
    assert!(
        !home.exists(),
        "a failed init left {:?} behind: {full:?}",
        std::fs::read_dir(&home)
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );

    // Into a directory that existed: it stays, empty.
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    init_on_a_full_disk(&existing, &genesis, limit_kib).fails(1, &["File too large"]);
    assert_eq!(std::fs::read_dir(&existing).unwrap().count(), 0);

    // With room, the same command writes the whole home.
    init(&home, &genesis, LISTEN).ok_json();
    init(&existing, &genesis, LISTEN).ok_json();
    for file in ["config.toml", "genesis.json", "node.key", "validator.key"] {
        assert!(home.join(file).is_file(), "{file} missing");
        assert!(existing.join(file).is_file(), "{file} missing");
    }
}

/// Runs `scf node init` into a fresh directory with `genesis` and returns
/// the outcome after checking that no file was written.
fn init_writes_nothing(dir: &Path, genesis: &Path, extra: &[&str]) -> Outcome {
    let home = dir.join("refused-home");
    let outcome = init(&home, genesis, extra);
    assert!(
        !home.exists(),
        "{} was created although init failed: {outcome:?}",
        home.display()
    );
    outcome
}

#[test]
fn node_init_refuses_a_missing_or_malformed_genesis_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.json");
    init_writes_nothing(dir.path(), &missing, LISTEN)
        .fails(1, &[missing.to_str().unwrap(), "cannot read genesis file"]);

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ \"chain_name\": \"acme\", ").unwrap();
    init_writes_nothing(dir.path(), &broken, LISTEN)
        .fails(1, &[broken.to_str().unwrap(), "malformed genesis JSON"]);

    let binary = dir.path().join("binary.json");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x7b, 0x80]).unwrap();
    init_writes_nothing(dir.path(), &binary, LISTEN).fails(1, &[binary.to_str().unwrap()]);

    // Without --genesis there is no chain to make a home for.
    let home = dir.path().join("no-genesis");
    scf(&["node", "init", "--home", home.to_str().unwrap()]).fails(2, &["--genesis FILE"]);
    assert!(!home.exists());
}

#[test]
fn node_init_refuses_an_oversized_genesis_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.json");
    let file = std::fs::File::create(&huge).unwrap();
    // Sparse: 17 MiB on paper, nothing on disk.
    file.set_len(genesis::MAX_GENESIS_FILE_BYTES + (1 << 20))
        .unwrap();
    drop(file);
    init_writes_nothing(dir.path(), &huge, LISTEN).fails(
        1,
        &[
            huge.to_str().unwrap(),
            &format!("at most {} bytes", genesis::MAX_GENESIS_FILE_BYTES),
        ],
    );
}

#[test]
fn node_init_refuses_a_genesis_with_an_invalid_validator_set() {
    let dir = tempfile::tempdir().unwrap();
    let valid = genesis_file(dir.path());
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&valid).unwrap()).unwrap();
    let write = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut edited = document.clone();
        edit(&mut edited);
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_string(&edited).unwrap()).unwrap();
        path
    };

    let no_validators = write("no-validators.json", &|g| {
        g["validators"] = serde_json::json!([])
    });
    init_writes_nothing(dir.path(), &no_validators, LISTEN)
        .fails(1, &[no_validators.to_str().unwrap(), "no validators"]);

    let duplicate = write("duplicate.json", &|g| {
        let first = g["validators"][0].clone();
        let mut twin = first.clone();
        twin["name"] = "twin".into();
        g["validators"].as_array_mut().unwrap().push(twin);
    });
    init_writes_nothing(dir.path(), &duplicate, LISTEN)
        .fails(1, &[duplicate.to_str().unwrap(), "same public key"]);

    let powerless = write("powerless.json", &|g| {
        g["validators"][1]["voting_power"] = 0.into()
    });
    init_writes_nothing(dir.path(), &powerless, LISTEN)
        .fails(1, &[powerless.to_str().unwrap(), "voting power 0"]);
}

#[test]
fn node_init_refuses_an_address_no_peer_could_dial() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path());
    init_writes_nothing(dir.path(), &genesis, &[])
        .fails(1, &["0.0.0.0", "every interface", "--address"]);
    init_writes_nothing(dir.path(), &genesis, &["--listen", "not-a-multiaddr"])
        .fails(1, &["--listen", "not-a-multiaddr"]);
    init_writes_nothing(
        dir.path(),
        &genesis,
        &["--address", "/ip4/0.0.0.0/tcp/26656"],
    )
    .fails(1, &["--address", "no other node could dial"]);
}

#[test]
fn validator_next_key_writes_a_private_next_key_once_and_prints_the_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path());
    let home = dir.path().join("validator-home");
    init(&home, &genesis, LISTEN).ok_json();
    let home_text = home.to_str().unwrap();
    let current = public_key(&home.join("validator.key"));

    let printed = scf(&["--json", "validator", "next-key", "--home", home_text]).ok_json();
    let next_file = home.join("validator.next.key");
    #[cfg(unix)]
    assert_eq!(mode(&next_file), 0o600);
    let next = public_key(&next_file);
    assert_ne!(next, current);
    assert_eq!(printed["next_key"], next.as_str(), "{printed}");
    assert_eq!(printed["current_key"], current.as_str());
    let command = printed["propose_command"].as_str().expect("a command");
    assert!(
        command.starts_with(&format!(
            "scf validator propose rotate --old-key {current} --new-key {next} --home "
        )),
        "{command}"
    );

    // A second run keeps the waiting key and says what to do with it.
    let written = std::fs::read(&next_file).unwrap();
    scf(&["validator", "next-key", "--home", home_text]).fails(
        1,
        &[
            "already holds a next consensus key",
            &next,
            "refusing to replace it",
            "scf validator propose rotate",
        ],
    );
    assert_eq!(std::fs::read(&next_file).unwrap(), written);
}

#[test]
fn validator_next_key_refuses_a_home_without_a_validator_key() {
    let dir = tempfile::tempdir().unwrap();
    let observer = dir.path().join("observer");
    std::fs::create_dir(&observer).unwrap();
    scf(&[
        "validator",
        "next-key",
        "--home",
        observer.to_str().unwrap(),
    ])
    .fails(1, &["no validator key", "validator.key"]);
    assert!(!observer.join("validator.next.key").exists());
}
