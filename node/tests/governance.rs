//! Governance with real node processes: the validator set changes on a
//! running chain (a node not in genesis joins and votes; an original
//! validator is removed and no longer counts) and a participant rotates its
//! key, each through signed transactions submitted to the API, with real
//! libp2p on 127.0.0.1 and RocksDB stores in temporary directories.
//!
//! Every wait is bounded, and every child is killed when the `Net` drops.

#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use std::time::Duration;

use common::{Net, confirm_to, grant, serial};
use consensus::{CommitCertificate, Height};
use crypto::{Keypair, PublicKey};
use ledger::governance::ValidatorChange;
use ledger::{Amount, Output, TxBody, TxHash};
use node::api::governance::{ProposalView, ValidatorSetView};
use node::localnet;

const LIMIT: Duration = Duration::from_secs(90);

/// The proposal as node `index` sees it.
fn proposal(net: &Net, index: usize, id: TxHash) -> ProposalView {
    let (code, body) = net.get(index, &format!("/v1/validators/proposals/{id}"));
    assert_eq!(code, 200, "{body}");
    serde_json::from_value(body).expect("a ProposalView")
}

/// The set node `index`'s state records for `height`.
fn validator_set(net: &Net, index: usize, height: Option<u64>) -> ValidatorSetView {
    let path = match height {
        Some(height) => format!("/v1/validators?height={height}"),
        None => "/v1/validators".to_string(),
    };
    let (code, body) = net.get(index, &path);
    assert_eq!(code, 200, "{body}");
    serde_json::from_value(body).expect("a ValidatorSetView")
}

fn signers(net: &Net, index: usize, height: u64) -> Vec<PublicKey> {
    let block = net.block(index, height);
    block
        .certificate
        .expect("a committed block has a certificate")
        .signatures
        .iter()
        .map(|signature| signature.validator)
        .collect()
}

/// Every certificate up to `height` verifies against the set node `index`'s
/// state records for its height, and every node of `nodes` holds the same
/// blocks and app hashes.
fn assert_chain_follows_recorded_sets(net: &Net, nodes: &[usize], height: u64) {
    let chain_id = net.net.genesis.chain_id();
    for &node in nodes {
        net.wait_height(node, height, LIMIT);
    }
    for h in 1..=height {
        let reference = net.block(nodes[0], h);
        for &node in &nodes[1..] {
            let block = net.block(node, h);
            assert_eq!(block.hash, reference.hash, "block hash at {h}, node {node}");
            assert_eq!(
                block.app_hash, reference.app_hash,
                "app hash at {h}, node {node}"
            );
        }
        let set = validator_set(net, nodes[0], Some(h));
        let validators = consensus::ValidatorSet::new(set.validators.iter().map(|validator| {
            consensus::Validator {
                public_key: validator.consensus_key,
                power: validator.power,
            }
        }))
        .expect("a recorded set is a valid consensus set");
        let bytes = hex::decode(reference.certificate_hex.expect("a certificate")).expect("hex");
        let certificate: CommitCertificate = borsh::from_slice(&bytes).expect("borsh");
        certificate
            .verify_for(&validators, &chain_id, Height(h), reference.hash)
            .unwrap_or_else(|error| panic!("certificate at height {h}: {error}"));
    }
}

/// Proposes `change` with validator `proposer`'s key, has `approvers`
/// approve, and returns the proposal once adopted.
fn adopt(
    net: &Net,
    keys: &[Keypair],
    nonces: &mut [u64],
    proposer: usize,
    approvers: &[usize],
    change: ValidatorChange,
) -> ProposalView {
    let height = net.status(proposer).height;
    let propose = net.sign_with(
        &keys[proposer],
        nonces[proposer],
        TxBody::ProposeValidatorChange {
            change,
            expires_at: height + 1_000,
        },
    );
    nonces[proposer] += 1;
    net.commit(proposer, &propose);
    let id = propose.hash();
    for &approver in approvers {
        assert_eq!(proposal(net, approver, id).status, "open");
        let approve = net.sign_with(
            &keys[approver],
            nonces[approver],
            TxBody::ApproveValidatorChange { proposal: id },
        );
        nonces[approver] += 1;
        net.commit(approver, &approve);
    }
    // The last approval committed on its node; the proposer's may lag.
    net.wait_for(LIMIT, "the proposal's adoption", || {
        proposal(net, proposer, id).status == "adopted"
    });
    let adopted = proposal(net, proposer, id);
    assert_eq!(adopted.status, "adopted", "{adopted:?}");
    let (at, from) = (
        adopted.adopted_at.expect("adopted"),
        adopted.effective_from.expect("adopted"),
    );
    assert_eq!(
        from,
        at + 2,
        "a change takes effect two blocks after it is adopted"
    );
    adopted
}

/// Commits a fresh confirmation through node `index`; returns its height.
fn commit_one(net: &mut Net, index: usize, invoice: &str) -> u64 {
    let tx = confirm_to(net, "supplier1", 10_00, invoice);
    match net.commit(index, &tx).status {
        node::api::types::TxState::Committed { height, .. } => height,
        other => panic!("not committed: {other:?}"),
    }
}

#[test]
fn a_node_added_by_governance_votes_from_its_activation_height_and_a_removed_validator_stops_counting()
 {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let tx = grant(&mut net);
    net.commit(0, &tx);
    let keys: Vec<Keypair> = (0..4).map(|index| net.validator_key(index)).collect();
    let mut nonces = vec![0u64; 5];

    // A node outside genesis: no one lets it connect until the chain adds it.
    let joining = localnet::joining_node(net.dir.path(), &net.net.genesis, "validator-4")
        .expect("the joining node's home");
    let new = net.add_node(joining.node.clone());
    net.start(new);
    let add = ValidatorChange::Add {
        name: "validator-4".into(),
        consensus_key: joining.consensus_key,
        peer_id: joining.peer_id.to_string().parse().expect("a peer id"),
        address: joining.listen.clone(),
        power: 1,
    };
    // Validator 0 proposes (its approval), 1 and 2 approve: 3 of 4 > 2/3.
    let added = adopt(&net, &keys, &mut nonces, 0, &[1, 2], add);
    let active_from = added.effective_from.expect("adopted");
    eprintln!("validator-4 votes from height {active_from}");
    let set = validator_set(&net, 0, Some(active_from));
    assert!(set.is_final);
    assert_eq!(set.validators.len(), 5);
    assert_eq!(set.quorum_power, 4);
    let before = validator_set(&net, 0, Some(active_from - 1));
    assert_eq!(before.validators.len(), 4);

    // The chain grows only with work to do: reach the activation height.
    let mut invoice = 0;
    while net.status(0).height < active_from {
        invoice += 1;
        commit_one(&mut net, 0, &format!("towards the join, {invoice}"));
    }
    // The new node syncs and takes part: with validator 3 down, the
    // quorum of 4 out of 5 needs its vote.
    net.wait_height(new, active_from - 1, LIMIT);
    net.kill(3);
    let height = commit_one(&mut net, 0, "after the join");
    assert!(height >= active_from);
    assert!(
        signers(&net, 0, height).contains(&joining.consensus_key),
        "the new validator signed the certificate of block {height}"
    );
    net.wait_height(new, height, LIMIT);
    net.start(3);

    // Remove validator 3: 0 proposes, 1, 2 and the new one approve (4 of 5).
    let mut all_keys = keys.clone();
    all_keys.push(net.validator_key(new));
    let removed_key = keys[3].public();
    let removed = adopt(
        &net,
        &all_keys,
        &mut nonces,
        0,
        &[1, 2, 4],
        ValidatorChange::Remove {
            consensus_key: removed_key,
        },
    );
    let removed_from = removed.effective_from.expect("adopted");
    let set = validator_set(&net, 0, Some(removed_from));
    assert_eq!(set.validators.len(), 4);
    assert!(
        set.validators
            .iter()
            .all(|v| v.consensus_key != removed_key)
    );

    // Validator 2 down as well: 0, 1 and the new one are 3 of the 4 in
    // force, a quorum; validator 3 still runs but no longer counts.
    while net.status(0).height < removed_from {
        invoice += 1;
        commit_one(&mut net, 0, &format!("towards the removal, {invoice}"));
    }
    net.kill(2);
    let mut last = 0;
    for round in 0..3 {
        last = commit_one(&mut net, 1, &format!("with three, {round}"));
    }
    assert!(last >= removed_from);
    for h in removed_from..=last {
        assert!(
            !signers(&net, 0, h).contains(&removed_key),
            "the removed validator's precommit counted at height {h}"
        );
    }
    assert_chain_follows_recorded_sets(&net, &[0, 1, new], last);
}

#[test]
fn a_participant_rotates_its_key_then_the_new_key_commits_and_the_old_one_is_refused() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let tx = grant(&mut net);
    net.commit(0, &tx);
    let tx = confirm_to(&mut net, "supplier1", 100_00, "to rotate");
    let token = match net.commit(0, &tx).status {
        node::api::types::TxState::Committed { tokens, .. } => tokens[0],
        other => panic!("not committed: {other:?}"),
    };
    let old = net.key("supplier1").clone();
    let new = Keypair::generate();
    let rotate = net.sign(
        "supplier1",
        TxBody::RotateParticipantKey {
            new_key: new.public(),
        },
    );
    net.commit(1, &rotate);

    // The participant is found by its new key, which is now its signing key.
    let (code, body) = net.get(2, &format!("/v1/participants/{}", new.public()));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["key"], serde_json::json!(old.public()));
    assert_eq!(body["signing_key"], serde_json::json!(new.public()));
    let nonce = body["next_nonce"].as_u64().expect("a nonce");

    // The old key is refused at the door, with the rule named.
    let supplier2 = net.key("supplier2").public();
    let transfer = |key: &Keypair, nonce: u64| {
        net.sign_with(
            key,
            nonce,
            TxBody::Transfer {
                token,
                outputs: vec![Output {
                    recipient: supplier2,
                    amount: Amount(100_00),
                }],
            },
        )
    };
    let with_old = transfer(&old, nonce);
    let (code, body) = net.submit(3, &with_old, false);
    assert!((400..500).contains(&code), "{code} {body}");
    assert!(
        body.to_string().contains("no longer the signing key"),
        "the refusal names the replaced key: {body}"
    );

    // The new key, with the participant's next nonce, commits.
    let with_new = transfer(&new, nonce);
    let committed = net.commit(3, &with_new);
    assert!(matches!(
        committed.status,
        node::api::types::TxState::Committed { .. }
    ));
    let (code, body) = net.get(0, &format!("/v1/tokens/{token}"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "spent", "{body}");
}

#[test]
fn a_validator_whose_consensus_key_is_rotated_signs_with_the_new_key_from_the_activation_height() {
    let _serial = serial();
    let mut net = Net::create(4, 0);
    net.start_all();
    let tx = grant(&mut net);
    net.commit(0, &tx);
    let keys: Vec<Keypair> = (0..4).map(|index| net.validator_key(index)).collect();
    let mut nonces = vec![0u64; 4];

    // The running node of validator 3 is given its next key; nothing else.
    let new_key = Keypair::generate();
    genesis::write_key_file(
        net.home(3).join(node::home::NEXT_VALIDATOR_KEY_FILE),
        &new_key,
        genesis::Overwrite::Refuse,
    )
    .expect("the next key file");
    let old_key = keys[3].public();
    let rotated = adopt(
        &net,
        &keys,
        &mut nonces,
        0,
        &[1, 2],
        ValidatorChange::RotateKey {
            old_key,
            new_key: new_key.public(),
        },
    );
    let from = rotated.effective_from.expect("adopted");
    let mut invoice = 0;
    while net.status(0).height < from {
        invoice += 1;
        commit_one(&mut net, 0, &format!("towards the rotation, {invoice}"));
    }

    // Validator 0 down: 1, 2 and 3 (signing with its new key) are the
    // quorum of 3 out of 4.
    net.kill(0);
    let height = commit_one(&mut net, 1, "after the rotation");
    assert!(height >= from);
    let signed = signers(&net, 1, height);
    assert!(signed.contains(&new_key.public()), "{signed:?}");
    for h in from..=height {
        assert!(
            !signers(&net, 1, h).contains(&old_key),
            "the rotated-away key's precommit counted at height {h}"
        );
    }
    assert_chain_follows_recorded_sets(&net, &[1, 2, 3], height);
}
