//! Consortium governance without a halt (issue 19), end to end with real
//! `scf node start` processes under a continuous transaction load:
//!
//! 1. a 4-validator network grows to 5 (a node outside genesis joins, syncs
//!    and signs certificates from its activation height), removes an
//!    original validator, and rotates another validator's consensus key
//!    (its node switches to `validator.next.key` at the activation height);
//! 2. no gap between commits during the changes is more than 2 s longer
//!    than the longest gap before them (both measured, and printed);
//! 3. afterwards the old consensus key is refused: its votes, sent by a
//!    listed peer, are rejected by every validator; a certificate carrying
//!    its precommit fails verification; no certificate from the activation
//!    on carries it (nor the removed validator's key);
//! 4. an observer stopped before the first change and started after the
//!    last syncs across all three (graylisting no peer on the way), every
//!    node agrees on every block and app hash, each certificate verifies
//!    against the set recorded for its height, and the real `scf audit
//!    verify` passes from genesis.
//!
//! Every wait is bounded; every child is killed when the cluster drops (its
//! directory is kept on failure, for the logs).

use std::time::{Duration, Instant};

use consensus::{CommitSignature, ConsensusMessage, EngineConfig, Height, VoteKind};
use crypto::{Keypair, PublicKey};
use ledger::Role;
use ledger::governance::ValidatorChange;
use node::localnet;
use node::network::{GossipVerdict, KnownPeer};
use scf_tests::client::Load;
use scf_tests::cluster::{Cluster, LOAD_SIGNER, scf_binary};
use scf_tests::governance::injector::{self, Target};
use scf_tests::governance::timeline::{self, Watcher};
use scf_tests::governance::{
    Governor, assert_chain_follows_recorded_sets, audit_verify, certificate, consensus_set,
    first_signed, height, signers, validator_set, wait_height,
};
use scf_tests::hostile::forge;

/// The observer that is offline during the changes.
const OBSERVER: usize = 4;
/// A second observer, never started: its listed node identity sends the old
/// key's votes.
const SENDER: usize = 5;
/// The validator removed, and the one whose consensus key is rotated.
const REMOVED: usize = 3;
const ROTATED: usize = 2;
/// How much longer than the longest gap under the same load before the
/// changes a gap during them may be.
const STALL_ALLOWANCE_MS: u64 = 2_000;
/// How long the commit timeline is measured before the first change.
const BASELINE: Duration = Duration::from_secs(10);
const WARMUP_HEIGHT: u64 = 20;
const WAIT: Duration = Duration::from_secs(60);

fn participants() -> Vec<(String, Vec<Role>)> {
    vec![
        (LOAD_SIGNER.into(), vec![Role::Operator]),
        ("bank".into(), vec![Role::Bank]),
        ("core".into(), vec![Role::CoreEnterprise]),
        ("supplier1".into(), vec![Role::Supplier]),
        ("auditor".into(), vec![Role::Auditor]),
    ]
}

fn ok<T>(result: Result<T, String>) -> T {
    result.unwrap_or_else(|error| panic!("{error}"))
}

fn read_key(cluster: &Cluster, index: usize, file: &str) -> Keypair {
    genesis::read_key_file(cluster.home(index).join(file)).expect("a key file in the node's home")
}

/// The old key's votes as the consensus layer's gossip check judges them,
/// with the sets `api`'s node records around the rotation's activation.
fn assert_vote_check_refuses(cluster: &Cluster, old: &Keypair, new: &Keypair, from: u64) {
    let chain_id = cluster.net.genesis.chain_id();
    let api = cluster.api(0);
    let before = consensus_set(&ok(validator_set(&api, from - 1)));
    let after = consensus_set(&ok(validator_set(&api, from)));
    let judge = |key: &Keypair, height: u64, set: &consensus::ValidatorSet| {
        let vote = forge::vote(key, chain_id, VoteKind::Precommit, height, 0, None);
        assert!(vote.verify(&chain_id).is_ok(), "a well-signed vote");
        node::intake::judge_consensus(
            &vote,
            &chain_id,
            set,
            &EngineConfig::default(),
            (height - 1, 0),
        )
    };
    assert_eq!(judge(old, from - 1, &before), GossipVerdict::Accept);
    assert_eq!(judge(old, from, &after), GossipVerdict::Reject);
    assert_eq!(judge(new, from, &after), GossipVerdict::Accept);
}

/// A real certificate of a height past the rotation with the old key's
/// precommit added: verification refuses it for that signer.
fn assert_certificate_with_old_key_fails(cluster: &Cluster, old: &Keypair, height: u64) {
    let chain_id = cluster.net.genesis.chain_id();
    let api = cluster.api(0);
    let view = ok(scf_tests::governance::block(&api, height));
    let mut forged = certificate(&view);
    let ConsensusMessage::Vote(vote) = forge::vote(
        old,
        chain_id,
        VoteKind::Precommit,
        height,
        forged.round.0,
        Some(view.hash),
    ) else {
        unreachable!("forge::vote makes a vote");
    };
    forged.signatures.push(CommitSignature {
        validator: old.public(),
        signature: vote.signature,
    });
    let set = consensus_set(&ok(validator_set(&api, height)));
    assert_eq!(
        forged.verify_for(&set, &chain_id, Height(height), view.hash),
        Err(consensus::CertificateError::UnknownSigner {
            validator: old.public()
        })
    );
}

fn no_certificate_carries(api: &str, key: &PublicKey, from: u64, to: u64, what: &str) {
    for height in from..=to {
        assert!(
            !ok(signers(api, height)).contains(key),
            "{what}'s precommit counted at height {height}"
        );
    }
}

fn known_peer(view: &ledger::governance::ValidatorInfo) -> KnownPeer {
    KnownPeer {
        name: view.name.clone(),
        peer_id: view
            .peer_id
            .to_string()
            .parse()
            .expect("a recorded peer id"),
        address: node::network::identity::parse_address(&view.address).expect("an address"),
    }
}

#[test]
fn validators_join_leave_and_rotate_a_key_under_load_without_a_stall_and_an_offline_observer_syncs_across()
 {
    // Built (or found up to date) before the clock starts.
    let binary = scf_binary();
    let started = Instant::now();
    let mut cluster = Cluster::create("gov-e2e", 4, 2, participants());
    for index in 0..=OBSERVER {
        cluster.restart(index);
    }
    let genesis = cluster.net.genesis.clone();
    let chain_id = genesis.chain_id();
    let api0 = cluster.api(0);
    // Only validators that stay (the rotated one keeps its node and peer
    // id) take the load: a removed one is cut off from the others.
    let load = Load::start(
        vec![api0.clone(), cluster.api(1), cluster.api(ROTATED)],
        chain_id,
        cluster.net.participant_keys[LOAD_SIGNER].clone(),
    );
    let watcher = Watcher::start(api0.clone());
    let mut governor = Governor::new(chain_id);
    for index in 0..4 {
        governor.add_member(
            &format!("validator-{index}"),
            read_key(&cluster, index, node::home::VALIDATOR_KEY_FILE),
            cluster.api(index),
        );
    }

    // The timeline under load before any change, from a height past the
    // network's start (its first blocks wait for the peers to connect).
    ok(wait_height(&api0, WARMUP_HEIGHT, WAIT));
    let baseline_from = ok(height(&api0)) + 1;
    std::thread::sleep(BASELINE);
    cluster.stop(OBSERVER);
    let offline_at = ok(height(&api0));
    let changes_from = offline_at + 1;
    eprintln!("observer offline at height {offline_at}");

    // 1. A node outside genesis joins.
    let joining = localnet::joining_node(cluster.dir(), &genesis, "validator-4")
        .expect("the joining node's home");
    let new = cluster.add_node(joining.node.clone());
    cluster.restart(new);
    governor.add_member(
        "validator-4",
        read_key(&cluster, new, node::home::VALIDATOR_KEY_FILE),
        cluster.api(new),
    );
    let added = ok(governor.adopt(
        "validator-0",
        &["validator-1", "validator-2"],
        ValidatorChange::Add {
            name: "validator-4".into(),
            consensus_key: joining.consensus_key,
            peer_id: joining.peer_id.to_string().parse().expect("a peer id"),
            address: joining.listen.clone(),
            power: 1,
        },
    ));
    let added_from = added.effective_from.expect("adopted");
    assert_eq!(ok(validator_set(&api0, added_from)).validators.len(), 5);
    let joined_signed = ok(first_signed(
        &api0,
        &joining.consensus_key,
        added_from,
        WAIT,
    ));
    eprintln!("validator-4 in the set from {added_from}, first signed {joined_signed}");

    // 2. An original validator leaves: 4 of the 5 approve.
    let removed_key = genesis.validators[REMOVED].public_key;
    let removed = ok(governor.adopt(
        "validator-0",
        &["validator-1", "validator-2", "validator-4"],
        ValidatorChange::Remove {
            consensus_key: removed_key,
        },
    ));
    let removed_from = removed.effective_from.expect("adopted");
    ok(wait_height(&api0, removed_from + 1, WAIT));
    // Out of the set and cut off from it: it would only use the CPU.
    cluster.stop(REMOVED);
    eprintln!("validator-3 out of the set from {removed_from}");

    // 3. Validator 2's consensus key is rotated; its running node has the
    // next key in its home and nothing else.
    let old_key = read_key(&cluster, ROTATED, node::home::VALIDATOR_KEY_FILE);
    let new_key = Keypair::generate();
    genesis::write_key_file(
        cluster
            .home(ROTATED)
            .join(node::home::NEXT_VALIDATOR_KEY_FILE),
        &new_key,
        genesis::Overwrite::Refuse,
    )
    .expect("the next key file");
    let rotated = ok(governor.adopt(
        "validator-0",
        &["validator-1", "validator-4"],
        ValidatorChange::RotateKey {
            old_key: old_key.public(),
            new_key: new_key.public(),
        },
    ));
    let rotated_from = rotated.effective_from.expect("adopted");
    let rotated_signed = ok(first_signed(&api0, &new_key.public(), rotated_from, WAIT));
    let changes_to = ok(wait_height(&api0, rotated_signed + 3, WAIT));
    eprintln!(
        "validator-2 signs with its new key from {rotated_from}, first signed {rotated_signed}"
    );

    // The old key is refused: by every validator's gossip check, in a
    // certificate, and by the vote check itself.
    let targets: Vec<Target> = ok(validator_set(&api0, changes_to))
        .validators
        .iter()
        .map(|validator| {
            let index = (0..cluster.net.nodes.len())
                .find(|&index| cluster.net.nodes[index].name == validator.name)
                .expect("a node of the cluster");
            Target {
                name: validator.name.clone(),
                peer: known_peer(validator),
                api: cluster.api(index),
                log: cluster.home(index).join("node.log"),
            }
        })
        .collect();
    let injected = ok(injector::send_old_key_votes(
        &read_key(&cluster, SENDER, node::home::NODE_KEY_FILE),
        chain_id,
        &old_key,
        &targets,
        Duration::from_secs(30),
    ));
    eprintln!(
        "old key's votes: {} sent by {}, refused {:?}",
        injected.votes_sent, injected.sender, injected.refused
    );
    assert_vote_check_refuses(&cluster, &old_key, &new_key, rotated_from);
    assert_certificate_with_old_key_fails(&cluster, &old_key, rotated_signed);

    // The observer comes back and syncs across the three changes.
    let tip = ok(height(&api0));
    let restarted = Instant::now();
    cluster.restart(OBSERVER);
    ok(wait_height(&cluster.api(OBSERVER), tip, WAIT));
    let catch_up = restarted.elapsed();
    eprintln!(
        "observer caught up from {offline_at} to {tip} in {:.1} s",
        catch_up.as_secs_f64()
    );

    // It judged the new set's votes as a hint while behind, never as
    // offences of the peers relaying them.
    let observer_log =
        std::fs::read_to_string(cluster.home(OBSERVER).join("node.log")).unwrap_or_default();
    let graylisted: Vec<&str> = observer_log
        .lines()
        .filter(|line| line.contains("graylisted"))
        .collect();
    assert!(
        graylisted.is_empty(),
        "the observer graylisted honest peers: {graylisted:#?}"
    );

    drop(load);
    let watched = watcher.finish();
    // Let the last transactions settle, then compare at one height.
    std::thread::sleep(Duration::from_secs(2));
    let end = ok(height(&api0));
    let running = [0, 1, ROTATED, new, OBSERVER];
    let apis: Vec<String> = running.iter().map(|&index| cluster.api(index)).collect();
    let checked = assert_chain_follows_recorded_sets(&chain_id, &apis, end);
    no_certificate_carries(
        &api0,
        &removed_key,
        removed_from,
        end,
        "the removed validator",
    );
    no_certificate_carries(&api0, &old_key.public(), rotated_from, end, "the old key");

    // No stall: the chain's own block times, and what a client polling
    // validator 0 saw.
    let times = ok(timeline::block_times(&api0, baseline_from - 1, changes_to));
    let before = timeline::gaps(&times, baseline_from, changes_from - 1).expect("a baseline");
    let during = timeline::gaps(&times, changes_from, changes_to).expect("commits");
    let seen_before = timeline::gaps(&watched, baseline_from, changes_from - 1).expect("polls");
    let seen_during = timeline::gaps(&watched, changes_from, changes_to).expect("polls");
    // Each with the validator whose turn round 0 was.
    let extra_rounds: Vec<(u64, u32, String)> = (changes_from..=changes_to)
        .filter_map(|height| {
            let round = certificate(&ok(scf_tests::governance::block(&api0, height))).round;
            if round.0 == 0 {
                return None;
            }
            let view = ok(validator_set(&api0, height));
            let proposer = consensus_set(&view)
                .proposer(Height(height), consensus::Round(0))
                .public_key;
            let name = view
                .validators
                .iter()
                .find(|validator| validator.consensus_key == proposer)
                .map(|validator| validator.name.clone())
                .unwrap_or_default();
            Some((height, round.0, name))
        })
        .collect();
    eprintln!(
        "commit gaps from block times: before the changes {before}; during {during}\n\
         commit gaps seen polling validator-0 every {} ms: before {seen_before}; during {seen_during}\n\
         heights of the changes decided after round 0 (height, round, round 0's proposer): {extra_rounds:?}",
        timeline::POLL_INTERVAL.as_millis()
    );

    // The whole chain, from genesis, by the real auditor's command.
    let audit = ok(audit_verify(
        binary,
        &cluster.home(0).join(node::home::GENESIS_FILE),
        &api0,
    ));
    assert_eq!(audit["verified"], true, "{audit}");
    assert!(audit["heights"].as_u64().unwrap_or(0) >= end, "{audit}");
    eprintln!(
        "{checked} certificates checked against the recorded sets on {} nodes; scf audit verify: {audit}; \
         the run took {:.0} s",
        apis.len(),
        started.elapsed().as_secs_f64()
    );

    assert!(
        during.max_ms <= before.max_ms + STALL_ALLOWANCE_MS,
        "a stall during the changes: {during}, against {before} before"
    );
    assert!(
        seen_during.max_ms <= seen_before.max_ms + STALL_ALLOWANCE_MS,
        "a stall seen by a client during the changes: {seen_during}, against {seen_before} before"
    );
}
