//! Governance through the `scf` binary on a real 4-validator testnet:
//! `scf participant rotate-key` (the new key signs, the old one is refused
//! with a sentence that says why), a lost key replaced by `scf participant
//! request-recovery` (operator) and `approve-recovery` (auditor), and `scf validator list | propose |
//! proposals | approve` changing a validator's power by the validators'
//! own keys (their node homes), in force two blocks after adoption.
//!
//! One testnet for the file, used by one test at a time; it stops when the
//! test process ends.

mod support;

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Testnet, rfc3339_in, scf, unique};

fn testnet() -> MutexGuard<'static, Testnet> {
    static TESTNET: OnceLock<Mutex<Testnet>> = OnceLock::new();
    TESTNET
        .get_or_init(|| Mutex::new(Testnet::start(4)))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run(net: &Testnet, node: usize, args: &[&str]) -> support::Outcome {
    let api = net.api(node);
    let mut all = vec!["--json", "--node", &api];
    all.extend_from_slice(args);
    scf(&all)
}

fn home(net: &Testnet, index: usize) -> String {
    net.dir
        .join(format!("validator-{index}"))
        .display()
        .to_string()
}

#[test]
fn a_participant_rotates_its_key_with_scf_and_only_the_new_key_signs() {
    let net = testnet();
    let dir = tempfile::tempdir().unwrap();
    let new_file = dir.path().join("supplier2-new.key");
    let new_key = scf(&["--json", "keys", "new", "--out", new_file.to_str().unwrap()]).ok_json()
        ["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let old_file = net.key("supplier2");
    let old_key = net.public_key("supplier2");

    // A token to move afterwards.
    let core = net.public_key("core");
    run(
        &net,
        0,
        &[
            "credit",
            "grant",
            "--core",
            &core,
            "--limit",
            "1000000.00",
            "--key",
            &net.key("bank"),
        ],
    )
    .ok_json();
    let confirmed = run(
        &net,
        0,
        &[
            "receivable",
            "confirm",
            "--to",
            &old_key,
            "--amount",
            "50.00",
            "--maturity",
            &rfc3339_in(3600),
            "--invoice",
            &unique("rotation"),
            "--key",
            &net.key("core"),
        ],
    )
    .ok_json();
    let token = confirmed["tokens"][0].as_str().unwrap().to_string();

    let rotated = run(
        &net,
        1,
        &[
            "participant",
            "rotate-key",
            "--new-key",
            &new_key,
            "--key",
            &old_file,
        ],
    )
    .ok_json();
    assert!(rotated["height"].as_u64().unwrap() >= 1, "{rotated}");

    // Shown by either key, with the new signing key.
    let shown = run(&net, 2, &["participant", "show", &new_key]).ok_json();
    assert_eq!(shown["key"], old_key.as_str());
    assert_eq!(shown["signing_key"], new_key.as_str());

    let supplier1 = net.public_key("supplier1");
    let transfer = |key: &str| {
        run(
            &net,
            0,
            &[
                "token", "transfer", &token, "--to", &supplier1, "--amount", "50.00", "--key", key,
            ],
        )
    };
    transfer(&old_file).fails(4, &["no longer the signing key", "rotated"]);
    transfer(new_file.to_str().unwrap()).ok_json();
}

#[test]
fn a_lost_key_is_replaced_by_an_operator_request_and_an_auditor_approval_with_scf() {
    let net = testnet();
    let dir = tempfile::tempdir().unwrap();
    let new_key_of = |name: &str| {
        let file = dir.path().join(format!("{name}.key"));
        let key = scf(&["--json", "keys", "new", "--out", file.to_str().unwrap()]).ok_json()
            ["public_key"]
            .as_str()
            .unwrap()
            .to_string();
        (file, key)
    };
    let (new_file, new_key) = new_key_of("supplier3-recovered");
    let (_, other_key) = new_key_of("not-requested");
    let identity = net.public_key("supplier3");
    let lost_file = net.key("supplier3");
    let approve = |key: &str| {
        run(
            &net,
            2,
            &[
                "participant",
                "approve-recovery",
                "--participant",
                &identity,
                "--new-key",
                key,
                "--key",
                &net.key("auditor"),
            ],
        )
    };

    // Nothing to approve before the operator asks.
    approve(&new_key).fails(4, &["request-recovery"]);
    // Only an operator may ask.
    let request = |signer: &str| {
        run(
            &net,
            0,
            &[
                "participant",
                "request-recovery",
                "--participant",
                &identity,
                "--new-key",
                &new_key,
                "--key",
                &net.key(signer),
            ],
        )
    };
    request("supplier1").fails(4, &["operator"]);
    let requested = request("operator").ok_json();
    assert!(requested["height"].as_u64().unwrap() >= 1, "{requested}");
    // The request alone moves nothing: the lost key still names the participant.
    let shown = run(&net, 1, &["participant", "show", &identity]).ok_json();
    assert_eq!(shown["signing_key"], identity.as_str(), "{shown}");

    // The auditor approves exactly the requested key, nothing else.
    approve(&other_key).fails(4, &["approve exactly the new key"]);
    approve(&new_key).ok_json();

    let shown = run(&net, 3, &["participant", "show", &new_key]).ok_json();
    assert_eq!(shown["key"], identity.as_str());
    assert_eq!(shown["signing_key"], new_key.as_str());

    // The lost key is refused; the recovered one signs.
    let (_, later_key) = new_key_of("supplier3-later");
    let rotate = |file: &str| {
        run(
            &net,
            1,
            &[
                "participant",
                "rotate-key",
                "--new-key",
                &later_key,
                "--key",
                file,
            ],
        )
    };
    rotate(&lost_file).fails(4, &["no longer the signing key", "recovered"]);
    rotate(new_file.to_str().unwrap()).ok_json();
}

fn wait_height(net: &Testnet, height: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let status = run(net, 0, &["status"]).ok_json();
        if status["height"].as_u64().unwrap_or(0) >= height {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("height {height} not reached in 60 s");
}

#[test]
fn validators_change_a_power_with_scf_validator_propose_and_approve() {
    let net = testnet();
    let list = run(&net, 0, &["validator", "list"]).ok_json();
    let validators = list["validators"].as_array().unwrap().clone();
    assert_eq!(validators.len(), 4, "{list}");
    assert_eq!(list["total_power"], 4);
    let target = validators[3]["consensus_key"].as_str().unwrap().to_string();

    let proposed = run(
        &net,
        0,
        &[
            "validator",
            "propose",
            "power",
            "--consensus-key",
            &target,
            "--power",
            "2",
            "--home",
            &home(&net, 0),
        ],
    )
    .ok_json();
    let id = proposed["tx_hash"].as_str().unwrap().to_string();
    let open = run(&net, 0, &["validator", "proposals"]).ok_json();
    let listed: Vec<&Value> = open["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|proposal| proposal["id"] == id.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{open}");
    assert_eq!(listed[0]["approved_power"], 1);
    assert_eq!(listed[0]["needed_power"], 3);

    // Approving twice with one key is refused; a second validator counts.
    run(
        &net,
        0,
        &["validator", "approve", &id, "--home", &home(&net, 0)],
    )
    .fails(4, &["already approved"]);
    run(
        &net,
        1,
        &["validator", "approve", &id, "--home", &home(&net, 1)],
    )
    .ok_json();
    let adopted = run(
        &net,
        2,
        &["validator", "approve", &id, "--home", &home(&net, 2)],
    )
    .ok_json();
    let height = adopted["height"].as_u64().unwrap();

    // In force from the adopting height + 2.
    let at = |h: u64| run(&net, 0, &["validator", "list", "--height", &h.to_string()]).ok_json();
    wait_height(&net, height);
    assert_eq!(at(height + 1)["total_power"], 4);
    assert_eq!(at(height + 2)["total_power"], 5);

    // Blocks past the change, then the audit from genesis checks each
    // certificate against the set the chain recorded for its height.
    let core = net.public_key("core");
    let bank = net.key("bank");
    while run(&net, 0, &["status"]).ok_json()["height"]
        .as_u64()
        .unwrap()
        < height + 3
    {
        run(
            &net,
            0,
            &[
                "credit",
                "grant",
                "--core",
                &core,
                "--limit",
                "2000000.00",
                "--key",
                &bank,
            ],
        )
        .ok_json();
    }
    let genesis = net.dir.join("genesis.json");
    let audit = run(
        &net,
        0,
        &["--genesis", genesis.to_str().unwrap(), "audit", "verify"],
    )
    .ok_json();
    assert_eq!(audit["verified"], true, "{audit}");
    assert!(audit["heights"].as_u64().unwrap() >= height + 3, "{audit}");
}
