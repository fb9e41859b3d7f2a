//! Multi-node behaviour with real processes, real libp2p on 127.0.0.1 and
//! real RocksDB stores in temporary directories.

// Amounts are written in minor units grouped as `units_cents` (10_000_00 is
// 10,000.00), which clippy reads as inconsistent grouping.
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use std::time::Duration;

use common::{Net, confirm_to, grant, serial};
use consensus::{CommitCertificate, Height};
use ledger::{Amount, Output, TokenId, TxBody};

const LIMIT: Duration = Duration::from_secs(90);

/// Every node reaches `height` and holds the same block hash and app hash at
/// every height up to it.
fn assert_identical_chains(net: &Net, nodes: &[usize], height: u64) {
    for &node in nodes {
        net.wait_height(node, height, LIMIT);
    }
    for h in 1..=height {
        let reference = net.block(nodes[0], h);
        for &node in &nodes[1..] {
            let block = net.block(node, h);
            assert_eq!(
                block.hash, reference.hash,
                "block hash at height {h}, node {node}"
            );
            assert_eq!(
                block.app_hash, reference.app_hash,
                "app hash at height {h}, node {node}"
            );
        }
    }
}

/// Checks every block's certificate against the genesis validator set.
fn assert_certificates(net: &Net, node: usize, height: u64) {
    let validators = net.net.genesis.validator_set().expect("validator set");
    let chain_id = net.net.genesis.chain_id();
    for h in 1..=height {
        let block = net.block(node, h);
        let bytes = hex::decode(block.certificate_hex.expect("a certificate")).expect("hex");
        let certificate: CommitCertificate = borsh::from_slice(&bytes).expect("borsh");
        certificate
            .verify_for(&validators, &chain_id, Height(h), block.hash)
            .unwrap_or_else(|error| panic!("certificate at height {h}: {error}"));
    }
}

/// Waits up to 30 s for `tx` to be committed as node `index` sees it, and
/// says how long that took.
fn wait_committed(net: &Net, index: usize, tx: &ledger::SignedTransaction, what: &str) {
    let path = format!("/v1/txs/{}", tx.hash());
    let since = std::time::Instant::now();
    net.wait_for(Duration::from_secs(30), what, || {
        net.get(index, &path).1["status"] == "committed"
    });
    eprintln!(
        "committed {:.1} s after the last validator's API answered",
        since.elapsed().as_secs_f64()
    );
}

#[test]
fn four_validators_commit_a_stream_from_several_senders_with_identical_chains() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let grant = grant(&mut net);
    let granted = match net.commit(0, &grant).status {
        node::api::types::TxState::Committed { height, .. } => height,
        other => panic!("the grant was not committed: {other:?}"),
    };
    // Node 1 admits against its own committed state: the confirmations
    // below would be refused (credit_line_exceeded) by a node one block
    // behind node 0.
    net.wait_height(1, granted, LIMIT);

    // Several senders at once, each to a different node: the core confirms
    // receivables, the operator registers participants.
    let mut hashes = Vec::new();
    for index in 0..12 {
        let supplier = ["supplier1", "supplier2", "supplier3"][index % 3];
        let tx = confirm_to(&mut net, supplier, 10_000_00, &format!("INV-{index}"));
        let (code, body) = net.submit(1, &tx, false);
        assert_eq!(code, 202, "{body}");
        hashes.push((tx.hash(), tx.tx.body.clone()));
    }
    for index in 0..8 {
        let key = crypto::Keypair::from_seed([index as u8 + 100; 32]).public();
        let tx = net.sign(
            "operator",
            TxBody::RegisterParticipant {
                key,
                name: format!("new-supplier-{index}"),
                roles: vec![ledger::Role::Supplier],
            },
        );
        let (code, body) = net.submit(2, &tx, false);
        assert_eq!(code, 202, "{body}");
        hashes.push((tx.hash(), tx.tx.body.clone()));
    }
    // Wait for all of them on node 3, which received none.
    for (hash, _) in &hashes {
        net.wait_for(LIMIT, "the stream to commit on node 3", || {
            net.get(3, &format!("/v1/txs/{hash}")).1["status"] == "committed"
        });
    }
    // Each supplier splits its first token in two and pays the next one.
    for (sender, receiver) in [
        ("supplier1", "supplier2"),
        ("supplier2", "supplier3"),
        ("supplier3", "supplier1"),
    ] {
        let sender_key = net.key(sender).public();
        let (_, tokens) = net.get(0, &format!("/v1/participants/{sender_key}/tokens"));
        let confirmed = tokens["tokens"]
            .as_array()
            .expect("a page of tokens")
            .iter()
            .find(|token| token["amount_minor"] == 10_000_00)
            .expect("a confirmed token of 10,000.00");
        let token: TokenId = serde_json::from_value(confirmed["id"].clone()).expect("a token id");
        let recipient = net.key(receiver).public();
        let tx = net.sign(
            sender,
            TxBody::Transfer {
                token,
                outputs: vec![
                    Output {
                        recipient,
                        amount: Amount(4_000_00),
                    },
                    Output {
                        recipient: sender_key,
                        amount: Amount(6_000_00),
                    },
                ],
            },
        );
        let status = net.commit(3, &tx);
        match status.status {
            node::api::types::TxState::Committed { tokens, .. } => assert_eq!(tokens.len(), 2),
            other => panic!("not committed: {other:?}"),
        }
    }
    let height = net.status(0).height;
    assert!(height >= 2, "height {height}");
    assert_identical_chains(&net, &[0, 1, 2, 3], height);
    assert_certificates(&net, 2, height);
}

#[test]
fn a_transaction_submitted_to_one_node_is_committed_and_readable_on_all() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let grant = grant(&mut net);
    net.commit(0, &grant);
    let confirm = confirm_to(&mut net, "supplier1", 1_000_000_00, "INV-ALL");
    let status = net.commit(2, &confirm);
    let token = TokenId::derive(&confirm.hash(), 0);
    let node::api::types::TxState::Committed { height, tokens, .. } = status.status else {
        panic!("not committed");
    };
    assert_eq!(tokens, vec![token]);
    for node in 0..4 {
        net.wait_height(node, height, LIMIT);
        let (code, tx) = net.get(node, &format!("/v1/txs/{}", confirm.hash()));
        assert_eq!(code, 200);
        assert_eq!(tx["status"], "committed");
        assert_eq!(tx["height"], height);
        let (code, view) = net.get(node, &format!("/v1/tokens/{token}"));
        assert_eq!(code, 200, "token on node {node}");
        assert_eq!(view["amount"], "1000000.00");
        assert_eq!(view["status"], "active");
        assert_eq!(view["holder"], net.key("supplier1").public().to_string());
    }
}

#[test]
fn a_killed_validator_is_missed_then_catches_up_and_votes_again() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let grant = grant(&mut net);
    net.commit(0, &grant);
    net.kill(3);
    // Three of four keep committing.
    for index in 0..5 {
        let tx = confirm_to(&mut net, "supplier1", 1_000_00, &format!("INV-K{index}"));
        net.commit(index % 3, &tx);
    }
    let height_while_down = net.status(0).height;
    // Restarted, it syncs what it missed...
    net.start(3);
    net.wait_height(3, height_while_down, LIMIT);
    // ...and votes again: with one of the others down, blocks need its vote.
    net.kill(0);
    let tx = confirm_to(&mut net, "supplier2", 1_000_00, "INV-AFTER");
    let status = net.commit(1, &tx);
    let node::api::types::TxState::Committed { height, .. } = status.status else {
        panic!("not committed");
    };
    let block = net.block(3, height);
    let certificate = block.certificate.expect("certificate");
    let restarted = net.net.genesis.validators[3].public_key;
    assert!(
        certificate
            .signatures
            .iter()
            .any(|signature| signature.validator == restarted),
        "the restarted validator's precommit is in the certificate"
    );
    assert_identical_chains(&net, &[1, 2, 3], height);
}

#[test]
fn a_late_observer_syncs_the_whole_chain_and_verifies_every_certificate() {
    let _serial = serial();
    let mut net = Net::create(4, 1);
    for index in 0..4 {
        net.start(index);
    }
    let grant = grant(&mut net);
    net.commit(0, &grant);
    for index in 0..6 {
        let tx = confirm_to(&mut net, "supplier3", 1_000_00, &format!("INV-O{index}"));
        net.commit(index % 4, &tx);
    }
    let height = net.status(0).height;
    net.start(4);
    assert_eq!(net.status(4).role, "observer");
    net.wait_height(4, height, LIMIT);
    assert_identical_chains(&net, &[0, 4], height);
    assert_certificates(&net, 4, height);
    // And it keeps following.
    let tx = confirm_to(&mut net, "supplier3", 1_000_00, "INV-O-LATE");
    net.commit(1, &tx);
    let later = net.status(1).height;
    net.wait_height(4, later, LIMIT);
}

#[test]
fn a_stopped_and_restarted_network_resumes_its_chain() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let grant = grant(&mut net);
    net.commit(0, &grant);
    let before = net.status(0);
    for index in 0..4 {
        assert!(net.stop(index).success(), "clean exit on SIGTERM");
    }
    net.start_all();
    for index in 0..4 {
        let status = net.status(index);
        assert_eq!(status.height, before.height);
        assert_eq!(status.app_hash, before.app_hash);
    }
    let tx = confirm_to(&mut net, "supplier1", 1_000_00, "INV-RESUME");
    net.commit(3, &tx);
}

#[test]
fn an_idle_chain_does_not_grow() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let grant = grant(&mut net);
    net.commit(0, &grant);
    let height = net.status(0).height;
    std::thread::sleep(Duration::from_secs(4));
    for index in 0..4 {
        assert_eq!(
            net.status(index).height,
            height,
            "node {index} grew while idle"
        );
    }
}

/// Issue 18's second defect: a transaction accepted while quorum was lost
/// stayed pending after quorum returned (the height-start rule waited for
/// something new), and the signer's next attempt was refused as a taken
/// nonce. A node holding an includable transaction must propose it, with
/// nothing else submitted.
#[test]
fn a_transaction_accepted_while_quorum_is_lost_commits_once_quorum_returns() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let grant = grant(&mut net);
    net.commit(0, &grant);
    // Two of four down: no quorum.
    net.kill(2);
    net.kill(3);
    let height_at_loss = net.status(0).height;
    let confirm = confirm_to(&mut net, "supplier1", 1_000_00, "INV-OUTAGE");
    let (code, answer) = net.submit(0, &confirm, false);
    assert!(
        (200..300).contains(&code),
        "accepted into the mempool during the outage: {code} {answer}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        net.status(0).height,
        height_at_loss,
        "nothing commits without quorum"
    );
    let path = format!("/v1/txs/{}", confirm.hash());
    let (_, pending) = net.get(0, &path);
    assert_eq!(pending["status"], "pending", "{pending}");

    // Quorum returns; nothing else is submitted.
    net.start(2);
    net.start(3);
    wait_committed(
        &net,
        0,
        &confirm,
        "the outage's transaction to commit once quorum returned",
    );
    // The signer goes on with its next nonce.
    let next = confirm_to(&mut net, "supplier1", 1_000_00, "INV-AFTER-OUTAGE");
    net.commit(1, &next);
}

/// Found by the chaos runner: RocksDB recovers a truncated write-ahead log
/// to its last intact record without an error, so a validator killed and
/// restarted on a cut log came up below heights it had committed, saying
/// nothing. It must refuse, naming the log, and recover by resyncing once
/// the store is moved aside.
#[test]
fn a_validator_whose_write_ahead_log_lost_committed_blocks_refuses_to_start_naming_it() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let grant = grant(&mut net);
    net.commit(0, &grant);
    for index in 0..4 {
        let tx = confirm_to(&mut net, "supplier1", 1_000_00, &format!("INV-WAL{index}"));
        net.commit(index % 4, &tx);
    }
    let height = net.status(3).height;
    assert!(height >= 4, "several blocks committed: {height}");
    net.kill(3);

    // The newest log holds every block since the store last flushed (a
    // short run never fills a memtable): cut it in half.
    let ledger = net.home(3).join("data").join("ledger");
    let mut logs: Vec<std::path::PathBuf> = std::fs::read_dir(&ledger)
        .expect("the store's directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    logs.sort();
    let newest = logs.pop().expect("a write-ahead log");
    let size = std::fs::metadata(&newest).expect("the log's size").len();
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .expect("opening the log");
    log.set_len(size / 2).expect("truncating the log");
    drop(log);

    // Bounded: a node that does start is killed, and the test fails.
    let refusal = net.home(3).join("refusal.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scf-bench"))
        .args(["node", "--home"])
        .arg(net.home(3))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&refusal).expect("a file for the refusal"))
        .spawn()
        .expect("starting the node");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the node") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&refusal).unwrap_or_default();
    assert!(
        status.is_some_and(|status| !status.success()),
        "the node started on a cut log (still running after 30 s): {stderr}"
    );
    let name = newest
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    assert!(
        stderr.contains("lost from the store") && stderr.contains(&name),
        "the refusal names the damage and the log {name}: {stderr}"
    );
    eprintln!("{}", stderr.lines().next().unwrap_or_default());

    // Moved aside, the store resyncs from the peers and the validator
    // votes again.
    std::fs::rename(&ledger, net.home(3).join("data").join("ledger.damaged"))
        .expect("moving the store aside");
    net.start(3);
    net.wait_height(3, height, LIMIT);
    let after = confirm_to(&mut net, "supplier2", 1_000_00, "INV-WAL-AFTER");
    net.commit(3, &after);
}

/// Copies a directory tree (a stopped node's store, for a snapshot).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("creating the copy's directory");
    for entry in std::fs::read_dir(from).expect("reading the directory") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copying a file");
        }
    }
}

/// Found by the chaos runner (seed 18): two validators killed after they
/// precommitted height H + 1 but before they committed it came back one
/// block behind the other two, which had decided H + 1 with their votes and
/// moved on. Nobody repeats a decided height; a node already in consensus
/// at H + 1 waited for its own decision on a lag of one block, and with two
/// of four stuck there the chain stalled for good. The lag must be fetched
/// once it outlasts a short grace.
#[test]
fn validators_restarted_one_block_behind_a_decision_they_voted_for_fetch_it_and_the_chain_goes_on()
{
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let first_grant = grant(&mut net);
    net.commit(0, &first_grant);
    // Snapshot the stores of validators 2 and 3 at height H.
    let height = net.status(0).height;
    let snapshots = tempfile::tempdir().expect("a directory for the snapshots");
    for index in [2, 3] {
        assert!(net.stop(index).success(), "clean exit on SIGTERM");
        let ledger = net.home(index).join("data").join("ledger");
        copy_dir(&ledger, &snapshots.path().join(index.to_string()));
        net.start(index);
    }
    // H + 1 is decided with everyone's votes.
    let first = confirm_to(&mut net, "supplier1", 1_000_00, "INV-LAG-1");
    net.commit(0, &first);
    for index in 0..4 {
        net.wait_height(index, height + 1, LIMIT);
    }
    // Everyone goes down. Validators 2 and 3 lose H + 1 from their stores,
    // as if killed between their precommit (the safety record, which stays,
    // says they signed at H + 1) and their commit.
    for index in 0..4 {
        net.kill(index);
    }
    for index in [2, 3] {
        let ledger = net.home(index).join("data").join("ledger");
        std::fs::remove_dir_all(&ledger).expect("removing the store");
        copy_dir(&snapshots.path().join(index.to_string()), &ledger);
    }
    // They come back first and start H + 1 again for a new transaction
    // (the bank's, next in nonce order on their stores too), which two of
    // four cannot decide.
    net.start(2);
    net.start(3);
    assert_eq!(net.status(2).height, height, "restarted one block behind");
    let second = grant(&mut net);
    let (code, answer) = net.submit(2, &second, false);
    assert!((200..300).contains(&code), "accepted: {code} {answer}");
    std::thread::sleep(Duration::from_secs(1));
    // The other two return at H + 1 and never repeat it: 2 and 3 must
    // fetch it, or nothing ever commits again.
    net.start(0);
    net.start(1);
    wait_committed(
        &net,
        2,
        &second,
        "the new transaction to commit once the lagging validators fetched H + 1",
    );
    let at = net.status(2).height;
    assert!(at >= height + 2, "the chain went on: {at}");
    assert_identical_chains(&net, &[0, 1, 2, 3], at);
}
