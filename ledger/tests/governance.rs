//! Governance of the validator set: one row per rule (holds, and broken
//! with exactly this error), adoption past two thirds at H + 2, the set in
//! force at every height across changes (a property), validators' keys,
//! events, and the set in the app hash.

mod common;

use common::{FRESH, VALIDATORS, World, key, peer_id};
use crypto::{Hash, PublicKey};
use ledger::governance::{
    self, ACTIVATION_DISTANCE, Adoption, MAX_OPEN_PROPOSALS_PER_VALIDATOR, MAX_PROPOSAL_LIFETIME,
    MAX_TOTAL_POWER, MIN_VALIDATORS,
};
use ledger::{
    Changes, EventKind, Participant, Role, SignedTransaction, StateKey, StateTree, StateValue,
    StateView, TxBody, TxError, TxHash, ValidatorChange,
};
use proptest::prelude::*;

type Outcome = Result<Changes, TxError>;

/// Expiry far enough for any test.
const EXPIRY: u64 = 1_000;

fn add(fresh: &str, name: &str, power: u64) -> ValidatorChange {
    ValidatorChange::Add {
        name: name.into(),
        consensus_key: key(fresh),
        peer_id: peer_id(key(fresh).0[0]),
        address: "/ip4/10.0.1.1/tcp/26656".into(),
        power,
    }
}

fn remove(validator: &str) -> ValidatorChange {
    ValidatorChange::Remove {
        consensus_key: key(validator),
    }
}

fn set_power(validator: &str, power: u64) -> ValidatorChange {
    ValidatorChange::SetPower {
        consensus_key: key(validator),
        power,
    }
}

fn rotate(validator: &str, fresh: &str) -> ValidatorChange {
    ValidatorChange::RotateKey {
        old_key: key(validator),
        new_key: key(fresh),
    }
}

fn propose_tx(world: &World, by: &str, change: ValidatorChange) -> SignedTransaction {
    world.sign(
        by,
        TxBody::ProposeValidatorChange {
            change,
            expires_at: world.height + EXPIRY,
        },
    )
}

/// Proposes; returns the proposal's id (the transaction's hash).
fn propose(world: &mut World, by: &str, change: ValidatorChange) -> Result<TxHash, TxError> {
    let tx = propose_tx(world, by, change);
    world.submit(&tx)?;
    Ok(tx.hash())
}

fn approve(world: &mut World, by: &str, proposal: TxHash) -> Outcome {
    world.run(by, TxBody::ApproveValidatorChange { proposal })
}

fn proposal(world: &World, id: TxHash) -> ledger::ValidatorProposal {
    governance::proposal(&world.state, &id)
        .unwrap()
        .expect("the proposal is recorded")
}

/// Proposes by "v0" and approves by "v1", "v2"… until adopted; returns the
/// proposal's id and the height that adopted it.
fn adopt(world: &mut World, change: ValidatorChange) -> (TxHash, u64) {
    let id = propose(world, "v0", change).expect("proposed");
    for approver in &VALIDATORS[1..] {
        if let Some(adoption) = proposal(world, id).adopted {
            return (id, adoption.at);
        }
        approve(world, approver, id).expect("approved");
    }
    let adoption = proposal(world, id).adopted.expect("adopted");
    (id, adoption.at)
}

/// Skips to `height` (empty blocks).
fn skip_to(world: &mut World, height: u64) {
    assert!(world.height <= height);
    world.height = height;
}

/// (consensus key, power) of the set in force at `height`.
fn set_at(world: &World, height: u64) -> Vec<(PublicKey, u64)> {
    governance::validator_set_at(&world.state, height)
        .unwrap()
        .expect("a set is recorded")
        .validators()
        .iter()
        .map(|v| (v.public_key, v.power))
        .collect()
}

fn keys_at(world: &World, height: u64) -> Vec<PublicKey> {
    set_at(world, height)
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

// ---- one row per rule -----------------------------------------------------

struct Rule {
    name: &'static str,
    holds: fn(&mut World) -> Outcome,
    broken: fn(&mut World) -> (Outcome, TxError),
}

fn run_propose(world: &mut World, by: &str, change: ValidatorChange) -> Outcome {
    let tx = propose_tx(world, by, change);
    world.submit(&tx)
}

fn rules() -> Vec<Rule> {
    vec![
        Rule {
            name: "only a validator's account may propose",
            holds: |w| run_propose(w, "v0", set_power("v1", 2)),
            broken: |w| {
                let outcome = run_propose(w, "operator", set_power("v1", 2));
                let key = w.key("operator");
                (
                    outcome,
                    TxError::MissingRole {
                        key,
                        needed: Role::Validator,
                    },
                )
            },
        },
        Rule {
            name: "only a validator of the set in force may propose",
            holds: |w| run_propose(w, "v4", set_power("v1", 2)),
            broken: |w| {
                let (_, at) = adopt(w, remove("v4"));
                skip_to(w, at + ACTIVATION_DISTANCE);
                let height = w.height;
                let key = w.key("v4");
                (
                    run_propose(w, "v4", set_power("v1", 2)),
                    TxError::NotAValidator { key, height },
                )
            },
        },
        Rule {
            name: "a validator approves a proposal once",
            holds: |w| {
                let id = propose(w, "v0", set_power("v1", 2))?;
                approve(w, "v1", id)
            },
            broken: |w| {
                let id = propose(w, "v0", set_power("v1", 2)).unwrap();
                approve(w, "v1", id).unwrap();
                let validator = w.key("v1");
                (
                    approve(w, "v1", id),
                    TxError::AlreadyApproved {
                        proposal: id,
                        validator,
                    },
                )
            },
        },
        Rule {
            name: "proposing is the proposer's approval",
            holds: |w| {
                let id = propose(w, "v0", set_power("v1", 2))?;
                approve(w, "v2", id)
            },
            broken: |w| {
                let id = propose(w, "v0", set_power("v1", 2)).unwrap();
                let validator = w.key("v0");
                (
                    approve(w, "v0", id),
                    TxError::AlreadyApproved {
                        proposal: id,
                        validator,
                    },
                )
            },
        },
        Rule {
            name: "an approval names a proposal that exists",
            holds: |w| {
                let id = propose(w, "v0", set_power("v1", 2))?;
                approve(w, "v1", id)
            },
            broken: |w| {
                let id = TxHash(Hash::digest(b"no such proposal"));
                (
                    approve(w, "v1", id),
                    TxError::UnknownProposal { proposal: id },
                )
            },
        },
        Rule {
            name: "an approval comes before the proposal's expiry height",
            holds: |w| {
                let id = propose(w, "v0", set_power("v1", 2))?;
                let expires_at = proposal(w, id).expires_at;
                skip_to(w, expires_at - 1);
                approve(w, "v1", id)
            },
            broken: |w| {
                let id = propose(w, "v0", set_power("v1", 2)).unwrap();
                let expires_at = proposal(w, id).expires_at;
                skip_to(w, expires_at);
                (
                    approve(w, "v1", id),
                    TxError::ProposalExpired {
                        proposal: id,
                        expires_at,
                        height: expires_at,
                    },
                )
            },
        },
        Rule {
            name: "an adopted proposal takes no more approvals",
            holds: |w| {
                let id = propose(w, "v0", set_power("v1", 2))?;
                approve(w, "v1", id)?;
                approve(w, "v2", id)?;
                approve(w, "v3", id)
            },
            broken: |w| {
                let (id, at) = adopt(w, set_power("v1", 2));
                (
                    approve(w, "v4", id),
                    TxError::ProposalAlreadyAdopted { proposal: id, at },
                )
            },
        },
        Rule {
            name: "a proposal expires after its height",
            holds: |w| {
                let body = TxBody::ProposeValidatorChange {
                    change: set_power("v1", 2),
                    expires_at: w.height + 1,
                };
                w.run("v0", body)
            },
            broken: |w| {
                let height = w.height;
                let body = TxBody::ProposeValidatorChange {
                    change: set_power("v1", 2),
                    expires_at: height,
                };
                (
                    w.run("v0", body),
                    TxError::ExpiryOutOfRange {
                        expires_at: height,
                        height,
                        max: height + MAX_PROPOSAL_LIFETIME,
                    },
                )
            },
        },
        Rule {
            name: "a proposal expires at most MAX_PROPOSAL_LIFETIME blocks ahead",
            holds: |w| {
                let body = TxBody::ProposeValidatorChange {
                    change: set_power("v1", 2),
                    expires_at: w.height + MAX_PROPOSAL_LIFETIME,
                };
                w.run("v0", body)
            },
            broken: |w| {
                let height = w.height;
                let max = height + MAX_PROPOSAL_LIFETIME;
                let body = TxBody::ProposeValidatorChange {
                    change: set_power("v1", 2),
                    expires_at: max + 1,
                };
                (
                    w.run("v0", body),
                    TxError::ExpiryOutOfRange {
                        expires_at: max + 1,
                        height,
                        max,
                    },
                )
            },
        },
        Rule {
            name: "a validator has at most MAX_OPEN_PROPOSALS_PER_VALIDATOR open proposals",
            holds: |w| {
                for power in 2..2 + MAX_OPEN_PROPOSALS_PER_VALIDATOR as u64 - 1 {
                    run_propose(w, "v0", set_power("v1", power))?;
                }
                run_propose(w, "v0", set_power("v2", 2))
            },
            broken: |w| {
                for power in 2..2 + MAX_OPEN_PROPOSALS_PER_VALIDATOR as u64 {
                    run_propose(w, "v0", set_power("v1", power)).unwrap();
                }
                let validator = w.key("v0");
                (
                    run_propose(w, "v0", set_power("v2", 2)),
                    TxError::TooManyOpenProposals {
                        validator,
                        open: MAX_OPEN_PROPOSALS_PER_VALIDATOR,
                        limit: MAX_OPEN_PROPOSALS_PER_VALIDATOR,
                    },
                )
            },
        },
        Rule {
            name: "a removal leaves at least MIN_VALIDATORS validators",
            holds: |w| run_propose(w, "v0", remove("v4")),
            broken: |w| {
                *w = World::with_validators(&[1, 1, 1, 1]);
                (
                    run_propose(w, "v0", remove("v3")),
                    TxError::TooFewValidators {
                        remaining: MIN_VALIDATORS - 1,
                        min: MIN_VALIDATORS,
                    },
                )
            },
        },
        Rule {
            name: "a removal keeps more than two thirds of the power",
            holds: |w| {
                *w = World::with_validators(&[3, 2, 2, 2, 2]);
                run_propose(w, "v1", remove("v0"))
            },
            broken: |w| {
                *w = World::with_validators(&[4, 2, 2, 2, 2]);
                (
                    run_propose(w, "v1", remove("v0")),
                    TxError::TooMuchPowerRemoved {
                        removed: 4,
                        total: 12,
                    },
                )
            },
        },
        Rule {
            name: "a power cut keeps more than two thirds of the power",
            holds: |w| {
                *w = World::with_validators(&[6, 2, 2, 2]);
                run_propose(w, "v1", set_power("v0", 3))
            },
            broken: |w| {
                *w = World::with_validators(&[6, 2, 2, 2]);
                (
                    run_propose(w, "v1", set_power("v0", 2)),
                    TxError::TooMuchPowerRemoved {
                        removed: 4,
                        total: 12,
                    },
                )
            },
        },
        Rule {
            name: "a power change changes the power",
            holds: |w| run_propose(w, "v0", set_power("v1", 2)),
            broken: |w| {
                let key = w.key("v1");
                (
                    run_propose(w, "v0", set_power("v1", 1)),
                    TxError::PowerUnchanged { key, power: 1 },
                )
            },
        },
        Rule {
            name: "a power is at least 1",
            holds: |w| run_propose(w, "v0", set_power("v1", 2)),
            broken: |w| {
                (
                    run_propose(w, "v0", set_power("v1", 0)),
                    TxError::ZeroVotingPower,
                )
            },
        },
        Rule {
            name: "an added validator's power keeps the total within MAX_TOTAL_POWER",
            holds: |w| run_propose(w, "v0", add("fresh0", "bank-e", MAX_TOTAL_POWER - 5)),
            broken: |w| {
                (
                    run_propose(w, "v0", add("fresh0", "bank-e", MAX_TOTAL_POWER - 4)),
                    TxError::VotingPowerOverflow {
                        total: u128::from(MAX_TOTAL_POWER) + 1,
                        max: MAX_TOTAL_POWER,
                    },
                )
            },
        },
        Rule {
            name: "a raised power keeps the total within MAX_TOTAL_POWER",
            holds: |w| run_propose(w, "v0", set_power("v1", MAX_TOTAL_POWER - 4)),
            broken: |w| {
                (
                    run_propose(w, "v0", set_power("v1", MAX_TOTAL_POWER - 3)),
                    TxError::VotingPowerOverflow {
                        total: u128::from(MAX_TOTAL_POWER) + 1,
                        max: MAX_TOTAL_POWER,
                    },
                )
            },
        },
        Rule {
            name: "an added consensus key is not in the set",
            holds: |w| run_propose(w, "v0", add("fresh0", "bank-e", 1)),
            broken: |w| {
                let mut change = add("fresh0", "bank-e", 1);
                let key = w.key("v1");
                if let ValidatorChange::Add { consensus_key, .. } = &mut change {
                    *consensus_key = key;
                }
                (
                    run_propose(w, "v0", change),
                    TxError::AlreadyValidator {
                        key,
                        name: "v1".into(),
                    },
                )
            },
        },
        Rule {
            name: "an added peer id is not in the set",
            holds: |w| run_propose(w, "v0", add("fresh0", "bank-e", 1)),
            broken: |w| {
                let mut change = add("fresh0", "bank-e", 1);
                if let ValidatorChange::Add { peer_id: peer, .. } = &mut change {
                    *peer = peer_id(101);
                }
                (
                    run_propose(w, "v0", change),
                    TxError::DuplicatePeerId {
                        peer_id: peer_id(101).to_string(),
                        validator: "v1".into(),
                    },
                )
            },
        },
        Rule {
            name: "an added name is not in the set",
            holds: |w| run_propose(w, "v0", add("fresh0", "bank-e", 1)),
            broken: |w| {
                (
                    run_propose(w, "v0", add("fresh0", "v2", 1)),
                    TxError::DuplicateValidatorName { name: "v2".into() },
                )
            },
        },
        Rule {
            name: "an added key is nobody else's",
            holds: |w| run_propose(w, "v0", add("fresh0", "bank-e", 1)),
            broken: |w| {
                let key = w.key("supplier1");
                (
                    run_propose(w, "v0", add("supplier1", "bank-e", 1)),
                    TxError::KeyInUse { key },
                )
            },
        },
        Rule {
            name: "a consensus key is a usable ed25519 key",
            holds: |w| run_propose(w, "v0", add("fresh0", "bank-e", 1)),
            broken: |w| {
                // The neutral point: of small order, so it proves nothing.
                let mut weak = [0u8; 32];
                weak[0] = 1;
                let mut change = add("fresh0", "bank-e", 1);
                if let ValidatorChange::Add { consensus_key, .. } = &mut change {
                    *consensus_key = PublicKey(weak);
                }
                (
                    run_propose(w, "v0", change),
                    TxError::InvalidKey {
                        what: "consensus key",
                        key: PublicKey(weak),
                        reason: "a small-order (weak) ed25519 point",
                    },
                )
            },
        },
        Rule {
            name: "an address is a multiaddr",
            holds: |w| run_propose(w, "v0", add("fresh0", "bank-e", 1)),
            broken: |w| {
                let mut change = add("fresh0", "bank-e", 1);
                if let ValidatorChange::Add { address, .. } = &mut change {
                    *address = "10.0.1.1:26656".into();
                }
                (
                    run_propose(w, "v0", change),
                    TxError::InvalidAddress {
                        address: "10.0.1.1:26656".into(),
                    },
                )
            },
        },
        Rule {
            name: "a removed or changed validator is in the newest set",
            holds: |w| run_propose(w, "v0", remove("v4")),
            broken: |w| {
                let key = w.key("fresh0");
                (
                    run_propose(w, "v0", remove("fresh0")),
                    TxError::UnknownValidator { key },
                )
            },
        },
        Rule {
            name: "a rotation moves to another key",
            holds: |w| run_propose(w, "v0", rotate("v1", "fresh0")),
            broken: |w| {
                let key = w.key("v1");
                (
                    run_propose(w, "v0", rotate("v1", "v1")),
                    TxError::SameKey { key },
                )
            },
        },
        Rule {
            name: "a rotation moves to a key outside the set",
            holds: |w| run_propose(w, "v0", rotate("v1", "fresh0")),
            broken: |w| {
                let key = w.key("v2");
                (
                    run_propose(w, "v0", rotate("v1", "v2")),
                    TxError::AlreadyValidator {
                        key,
                        name: "v2".into(),
                    },
                )
            },
        },
        Rule {
            name: "a rotation moves to a key nobody used",
            holds: |w| run_propose(w, "v0", rotate("v1", "fresh0")),
            broken: |w| {
                let key = w.key("bank");
                (
                    run_propose(w, "v0", rotate("v1", "bank")),
                    TxError::KeyInUse { key },
                )
            },
        },
        Rule {
            name: "a change still applies when it is adopted",
            holds: |w| {
                let first = propose(w, "v0", remove("v3"))?;
                let second = propose(w, "v0", remove("v4"))?;
                for approver in ["v1", "v2", "v3"] {
                    approve(w, approver, first)?;
                }
                approve(w, "v1", second)
            },
            broken: |w| {
                let first = propose(w, "v0", remove("v3")).unwrap();
                let second = propose(w, "v0", remove("v4")).unwrap();
                for approver in ["v1", "v2", "v3"] {
                    approve(w, approver, first).unwrap();
                }
                // In force from here: v0, v1, v2, v4. v0 and v1 hold half.
                skip_to(w, proposal(w, first).adopted.unwrap().effective_from);
                approve(w, "v1", second).unwrap();
                (
                    approve(w, "v2", second),
                    TxError::TooFewValidators {
                        remaining: 3,
                        min: MIN_VALIDATORS,
                    },
                )
            },
        },
        Rule {
            name: "a chain needs a recorded set to change it",
            holds: |w| run_propose(w, "v0", set_power("v1", 2)),
            broken: |w| {
                // A genesis of participants only, and an account made by hand.
                *w = World::new();
                let key = w.key("outsider");
                w.state.apply([StateValue::Participant(Participant::new(
                    key,
                    "v",
                    [Role::Validator],
                ))]);
                let body = TxBody::ProposeValidatorChange {
                    change: ValidatorChange::Remove { consensus_key: key },
                    expires_at: 10,
                };
                (w.run("outsider", body), TxError::NoValidatorSetRecorded)
            },
        },
        Rule {
            name: "an operator registers no validator role",
            holds: |w| {
                let key = w.key("fresh0");
                let body = TxBody::RegisterParticipant {
                    key,
                    name: "bank-e".into(),
                    roles: vec![Role::Bank],
                };
                w.run("operator", body)
            },
            broken: |w| {
                let key = w.key("fresh0");
                let body = TxBody::RegisterParticipant {
                    key,
                    name: "bank-e".into(),
                    roles: vec![Role::Validator],
                };
                (
                    w.run("operator", body),
                    TxError::RoleGrantedByGovernance {
                        role: Role::Validator,
                    },
                )
            },
        },
        Rule {
            name: "an operator deactivates no validator's account",
            holds: |w| {
                let key = w.key("supplier3");
                w.run("operator", TxBody::DeactivateParticipant { key })
            },
            broken: |w| {
                let key = w.key("v1");
                (
                    w.run("operator", TxBody::DeactivateParticipant { key }),
                    TxError::ManagedByGovernance { key },
                )
            },
        },
    ]
}

#[test]
fn each_governance_rule_holds_and_breaks() {
    for rule in rules() {
        let mut world = World::with_validators(&[1, 1, 1, 1, 1]);
        if let Err(error) = (rule.holds)(&mut world) {
            panic!("{}: refused where it holds: {error}", rule.name);
        }
        let mut world = World::with_validators(&[1, 1, 1, 1, 1]);
        let (outcome, expected) = (rule.broken)(&mut world);
        assert_eq!(outcome.err(), Some(expected), "{}", rule.name);
    }
}

// ---- adoption and activation ---------------------------------------------

fn pending(world: &World) -> Vec<TxHash> {
    governance::pending_proposals(&world.state, world.height)
        .unwrap()
        .into_iter()
        .map(|proposal| proposal.id)
        .collect()
}

#[test]
fn a_change_is_adopted_past_two_thirds_and_takes_effect_two_blocks_later() {
    let mut w = World::with_validators(&[1, 1, 1, 1]);
    let genesis = keys_at(&w, 1);
    let id = propose(&mut w, "v0", add("fresh0", "bank-e", 1)).unwrap();
    approve(&mut w, "v1", id).unwrap();
    // Two of four is not more than two thirds.
    assert_eq!(proposal(&w, id).adopted, None);
    assert_eq!(pending(&w), vec![id]);

    let adopting = w.sign("v2", TxBody::ApproveValidatorChange { proposal: id });
    let at = w.height;
    w.submit(&adopting).unwrap();
    assert_eq!(
        proposal(&w, id).adopted,
        Some(Adoption {
            at,
            by: adopting.hash(),
            effective_from: at + ACTIVATION_DISTANCE,
            epoch: 1,
        })
    );
    assert_eq!(ACTIVATION_DISTANCE, 2);
    for height in 1..=at + 1 {
        assert_eq!(keys_at(&w, height), genesis, "height {height}");
    }
    let new = keys_at(&w, at + 2);
    assert_eq!(new.len(), 5);
    assert!(new.contains(&w.key("fresh0")));
    assert_eq!(keys_at(&w, at + 1_000), new);
    assert!(pending(&w).is_empty());
    // The new validator has an account to sign governance with.
    let account = w.state.participant(&w.key("fresh0")).unwrap().unwrap();
    assert_eq!(account.roles, vec![Role::Validator]);
    assert_eq!(account.name, "bank-e");
}

#[test]
fn exactly_two_thirds_of_the_power_does_not_adopt_a_change_more_does() {
    let mut w = World::with_validators(&[2, 2, 1, 1]);
    let id = propose(&mut w, "v0", set_power("v3", 2)).unwrap();
    approve(&mut w, "v1", id).unwrap();
    // 4 of 6: exactly two thirds.
    assert_eq!(proposal(&w, id).adopted, None);
    approve(&mut w, "v2", id).unwrap();
    assert!(proposal(&w, id).adopted.is_some());
}

#[test]
fn approvals_count_with_the_set_in_force_and_leavers_count_for_nothing() {
    let mut w = World::with_validators(&[1, 1, 1, 1, 1, 1]);
    let id = propose(&mut w, "v5", set_power("v1", 2)).unwrap();
    approve(&mut w, "v4", id).unwrap();
    let (_, at) = adopt(&mut w, remove("v5"));
    skip_to(&mut w, at + ACTIVATION_DISTANCE);
    approve(&mut w, "v0", id).unwrap();
    approve(&mut w, "v1", id).unwrap();
    // v0, v1, v4: 3 of 5, not more than two thirds; v5's approval is gone.
    let open = proposal(&w, id);
    assert_eq!(open.adopted, None);
    let mut expected = vec![w.key("v0"), w.key("v1"), w.key("v4")];
    expected.sort();
    assert_eq!(open.approvals, expected);
    approve(&mut w, "v2", id).unwrap();
    assert!(proposal(&w, id).adopted.is_some());
}

#[test]
fn a_rotated_consensus_key_keeps_its_validator_and_the_old_key_is_refused() {
    let mut w = World::with_validators(&[1, 1, 1, 2]);
    let (old, new) = (w.key("v1"), w.key("fresh0"));
    let id = propose(&mut w, "v0", rotate("v1", "fresh0")).unwrap();
    // The validator approves its own rotation, with the key it replaces.
    approve(&mut w, "v1", id).unwrap();
    approve(&mut w, "v3", id).unwrap();
    let adoption = proposal(&w, id).adopted.expect("adopted");
    let nonce = w.next_nonce(&old);
    assert_eq!(nonce, 1);

    assert!(keys_at(&w, adoption.effective_from - 1).contains(&old));
    let epoch = governance::epoch_in_force(&w.state, adoption.effective_from)
        .unwrap()
        .unwrap();
    let rotated = epoch
        .by_consensus_key(&new)
        .expect("the new key is in force");
    assert_eq!(rotated.identity, old, "same validator");
    assert_eq!((rotated.name.as_str(), rotated.power), ("v1", 1));
    assert!(epoch.by_consensus_key(&old).is_none());

    // The old key signs nothing from the next transaction on.
    let refused = w.run(
        "v1",
        TxBody::ProposeValidatorChange {
            change: set_power("v2", 2),
            expires_at: w.height + 10,
        },
    );
    assert_eq!(
        refused.err(),
        Some(TxError::KeyReplaced {
            key: old,
            participant: old
        })
    );
    // The new one signs at once, with the account's nonce.
    let tx = propose_tx(&w, "fresh0", set_power("v2", 2));
    assert_eq!(tx.tx.nonce, nonce);
    w.submit(&tx).unwrap();
    assert_eq!(proposal(&w, tx.hash()).proposer, old);
}

#[test]
fn an_added_validator_may_approve_from_the_height_its_set_is_in_force() {
    let mut w = World::with_validators(&[1, 1, 1, 1]);
    let id = propose(&mut w, "v3", set_power("v1", 2)).unwrap();
    let (_, at) = adopt(&mut w, add("fresh0", "bank-e", 1));
    assert_eq!(w.height, at + 1);
    let key = w.key("fresh0");
    let early = approve(&mut w, "fresh0", id);
    assert_eq!(
        early.err(),
        Some(TxError::NotAValidator {
            key,
            height: at + 1
        })
    );
    skip_to(&mut w, at + ACTIVATION_DISTANCE);
    approve(&mut w, "fresh0", id).unwrap();
}

#[test]
fn a_removed_validator_comes_back_with_its_account_and_nonce() {
    let mut w = World::with_validators(&[1, 1, 1, 1, 1]);
    let first = propose_tx(&w, "v4", set_power("v1", 2));
    w.submit(&first).unwrap();
    let (_, at) = adopt(&mut w, remove("v4"));
    skip_to(&mut w, at + ACTIVATION_DISTANCE);
    let key = w.key("v4");
    assert!(!keys_at(&w, w.height).contains(&key));
    let back = ValidatorChange::Add {
        name: "v4-again".into(),
        consensus_key: key,
        peer_id: peer_id(104),
        address: "/ip4/10.0.0.4/tcp/26656".into(),
        power: 1,
    };
    let (_, again) = adopt(&mut w, back);
    let epoch = governance::epoch_in_force(&w.state, again + 2)
        .unwrap()
        .unwrap();
    let returned = epoch.by_consensus_key(&key).unwrap();
    assert_eq!(
        (returned.identity, returned.name.as_str()),
        (key, "v4-again")
    );
    // Its nonce went on: what it signed before cannot be replayed.
    skip_to(&mut w, again + 2);
    assert_eq!(
        w.check(&first).err(),
        Some(TxError::Replay {
            signer: key,
            expected: 1,
            got: 0
        })
    );
}

#[test]
fn adoptions_in_one_block_take_effect_together_in_one_epoch() {
    let mut w = World::with_validators(&[1, 1, 1, 1, 1]);
    let first = propose(&mut w, "v0", set_power("v1", 2)).unwrap();
    let second = propose(&mut w, "v0", set_power("v2", 2)).unwrap();
    for id in [first, second] {
        approve(&mut w, "v1", id).unwrap();
        approve(&mut w, "v2", id).unwrap();
    }
    // One block: v3's approvals adopt both.
    let key = &w.keys["v3"];
    let nonce = w.next_nonce(&key.public());
    let txs: Vec<SignedTransaction> = [first, second]
        .iter()
        .enumerate()
        .map(|(index, id)| {
            ledger::Transaction {
                chain_id: w.chain,
                signer: key.public(),
                nonce: nonce + index as u64,
                body: TxBody::ApproveValidatorChange { proposal: *id },
            }
            .sign(key)
        })
        .collect();
    let at = w.height;
    let execution = ledger::execute_block(&w.context(), &w.state, &txs).unwrap();
    w.state.apply(execution.writes);
    w.height += 1;
    let (a, b) = (proposal(&w, first), proposal(&w, second));
    assert_eq!(a.adopted.unwrap().epoch, 1);
    assert_eq!(b.adopted.unwrap().epoch, 1);
    let powers = set_at(&w, at + 2);
    assert_eq!(powers.iter().map(|(_, p)| p).sum::<u64>(), 7);
    assert_eq!(
        governance::summary(&w.state).unwrap().unwrap().latest_epoch,
        1
    );
}

#[test]
fn an_expired_proposal_leaves_the_pending_list() {
    let mut w = World::with_validators(&[1, 1, 1, 1]);
    let tx = w.sign(
        "v0",
        TxBody::ProposeValidatorChange {
            change: set_power("v1", 2),
            expires_at: w.height + 2,
        },
    );
    let expires_at = w.height + 2;
    w.submit(&tx).unwrap();
    assert_eq!(pending(&w), vec![tx.hash()]);
    skip_to(&mut w, expires_at);
    assert!(pending(&w).is_empty());
    // The next write of the summary forgets it.
    propose(&mut w, "v1", set_power("v2", 2)).unwrap();
    let summary = governance::summary(&w.state).unwrap().unwrap();
    assert_eq!(summary.open.len(), 1);
}

// ---- the set in force at every height ------------------------------------

/// One block of a random history.
#[derive(Clone, Debug)]
enum Op {
    Propose {
        by: usize,
        kind: u8,
        target: usize,
        power: u64,
    },
    Approve {
        by: usize,
        which: usize,
    },
    Skip,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..16, 0u8..4, 0usize..16, 1u64..4).prop_map(|(by, kind, target, power)| Op::Propose { by, kind, target, power }),
        6 => (0usize..16, 0usize..8).prop_map(|(by, which)| Op::Approve { by, which }),
        1 => Just(Op::Skip),
    ]
}

/// The name of the key `key` in the world.
fn name_of(world: &World, key: &PublicKey) -> &'static str {
    world
        .keys
        .iter()
        .find(|(_, pair)| pair.public() == *key)
        .map(|(name, _)| *name)
        .expect("every key is the world's")
}

/// A validator of the set in force, by its account's current signing key.
fn signer_in_force(world: &World, index: usize) -> &'static str {
    let epoch = governance::epoch_in_force(&world.state, world.height)
        .unwrap()
        .unwrap();
    let identity = epoch.validators[index % epoch.validators.len()].identity;
    let account = world.state.participant(&identity).unwrap().unwrap();
    name_of(world, &account.signing_key)
}

fn change_for(world: &World, kind: u8, target: usize, power: u64) -> ValidatorChange {
    let latest = governance::latest_epoch(&world.state).unwrap().unwrap();
    let member = latest.validators[target % latest.validators.len()].consensus_key;
    let fresh = world.key(FRESH[target % FRESH.len()]);
    match kind {
        0 => ValidatorChange::Add {
            name: format!("new-{target}"),
            consensus_key: fresh,
            peer_id: peer_id(fresh.0[0]),
            address: "/ip4/10.0.2.1/tcp/26656".into(),
            power,
        },
        1 => ValidatorChange::Remove {
            consensus_key: member,
        },
        2 => ValidatorChange::SetPower {
            consensus_key: member,
            power,
        },
        _ => ValidatorChange::RotateKey {
            old_key: member,
            new_key: fresh,
        },
    }
}

fn newest_set(world: &World) -> Vec<(PublicKey, u64)> {
    let latest = governance::latest_epoch(&world.state).unwrap().unwrap();
    latest
        .consensus_set()
        .validators()
        .iter()
        .map(|v| (v.public_key, v.power))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever is proposed, approved, refused or adopted: the set in force
    /// at height h is the newest scheduled set as it stood after block
    /// h − 2 (ACTIVATION_DISTANCE), for every height; every set is a valid
    /// consensus set of at least MIN_VALIDATORS.
    #[test]
    fn the_set_in_force_at_each_height_is_the_newest_set_two_blocks_earlier(
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut w = World::with_validators(&[1, 1, 2, 1, 1]);
        let mut newest = vec![newest_set(&w)];
        for op in ops {
            let height = w.height;
            let outcome = match op {
                Op::Propose { by, kind, target, power } => {
                    let signer = signer_in_force(&w, by);
                    let change = change_for(&w, kind, target, power);
                    run_propose(&mut w, signer, change)
                }
                Op::Approve { by, which } => {
                    let open = pending(&w);
                    if open.is_empty() {
                        Ok(Vec::new())
                    } else {
                        let signer = signer_in_force(&w, by);
                        approve(&mut w, signer, open[which % open.len()])
                    }
                }
                Op::Skip => Ok(Vec::new()),
            };
            // A refusal is a verdict on the transaction, never a panic.
            let _ = outcome;
            if w.height == height {
                w.height += 1;
            }
            prop_assert_eq!(newest.len() as u64, height);
            newest.push(newest_set(&w));
        }
        for height in 1..w.height + 2 {
            let expected = &newest[height.saturating_sub(ACTIVATION_DISTANCE) as usize];
            prop_assert_eq!(&set_at(&w, height), expected, "height {}", height);
            prop_assert!(set_at(&w, height).len() >= MIN_VALIDATORS);
        }
    }
}

// ---- the set in the app hash ---------------------------------------------

fn app_hash(world: &World) -> StateTree {
    let mut entries: Vec<(Hash, Hash)> = world
        .state
        .entries()
        .map(|(_, value)| (value.tree_key(), value.value_hash()))
        .collect();
    entries.sort_unstable();
    StateTree::from_sorted(&entries)
}

#[test]
fn the_set_in_force_is_in_the_app_hash_and_provable_to_anyone_holding_it() {
    let mut w = World::with_validators(&[1, 1, 1, 1]);
    let before = app_hash(&w).root_hash();
    let (_, at) = adopt(&mut w, set_power("v1", 2));
    let tree = app_hash(&w);
    assert_ne!(tree.root_hash(), before);
    let epoch = governance::epoch_in_force(&w.state, at + 2)
        .unwrap()
        .unwrap();
    let value = StateValue::ValidatorEpoch(epoch.clone());
    let proof = tree
        .prove(&value.tree_key())
        .expect("the epoch is in the tree");
    assert!(proof.verify_value(&tree.root_hash(), &value));
    let mut forged = epoch;
    forged.validators[0].power += 1;
    assert!(!proof.verify_value(&tree.root_hash(), &StateValue::ValidatorEpoch(forged)));

    // Two chains whose genesis sets differ in one power differ in app hash.
    let other = World::with_validators(&[1, 1, 1, 2]);
    let same = World::with_validators(&[1, 1, 1, 1]);
    assert_ne!(app_hash(&other).root_hash(), app_hash(&same).root_hash());
    assert_eq!(app_hash(&same).root_hash(), before);
    let summary = StateKey::GovernanceSummary(governance::SummaryKey);
    assert!(w.state.get(&summary).unwrap().is_some());
}

#[test]
fn a_store_records_the_set_of_every_height_and_reopens_to_the_same_app_hash() {
    use ledger::store::Store;
    use ledger::{Block, BlockHeader, Timestamp, execute_block, tx_root};

    let dir = tempfile::tempdir().unwrap();
    let mut w = World::with_validators(&[1, 1, 1, 1, 1]);
    let genesis = w.genesis.clone().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.init_genesis_state(w.chain, &genesis).unwrap();
    assert_eq!(store.meta().unwrap().app_hash, app_hash(&w).root_hash());

    // A history of changes, each approval its own block, committed both to
    // the store and to the in-memory state an auditor would replay.
    let mut parent = Hash::ZERO;
    let mut commit = |w: &mut World, store: &mut Store, tx: SignedTransaction| {
        w.now = Timestamp(w.now.0 + 1_000);
        let execution = execute_block(&w.context(), &*store, std::slice::from_ref(&tx)).unwrap();
        w.state.apply(execution.writes.iter().cloned());
        let prepared = store.prepare(execution);
        let header = BlockHeader {
            chain_id: w.chain,
            height: w.height,
            time: w.now,
            parent_hash: parent,
            proposer: w.key("v0"),
            tx_root: tx_root(std::slice::from_ref(&tx)),
            app_hash: prepared.app_hash(),
        };
        assert_eq!(
            header.app_hash,
            app_hash(w).root_hash(),
            "memory replay agrees"
        );
        parent = header.hash();
        let block = Block {
            header,
            txs: vec![tx],
        };
        store.commit(&block, b"certificate", &prepared).unwrap();
        w.height += 1;
    };
    let changes = [
        add("fresh0", "bank-e", 1),
        rotate("v1", "fresh1"),
        remove("v2"),
        set_power("v3", 2),
    ];
    for change in changes {
        let tx = propose_tx(&w, "v0", change);
        let id = tx.hash();
        commit(&mut w, &mut store, tx);
        for approver in ["v3", "v4", "fresh0", "fresh1", "v2"] {
            if proposal(&w, id).adopted.is_some() {
                break;
            }
            let signer_in_set = governance::epoch_in_force(&w.state, w.height)
                .unwrap()
                .unwrap()
                .validators
                .iter()
                .any(|v| {
                    w.state
                        .participant(&v.identity)
                        .unwrap()
                        .unwrap()
                        .signing_key
                        == w.key(approver)
                });
            if signer_in_set {
                let tx = w.sign(approver, TxBody::ApproveValidatorChange { proposal: id });
                commit(&mut w, &mut store, tx);
            }
        }
        assert!(proposal(&w, id).adopted.is_some());
    }
    let tip = w.height - 1;
    let epochs = governance::summary(&store).unwrap().unwrap().latest_epoch;
    assert_eq!(epochs, 4);
    let check = |store: &Store| {
        for height in 1..=tip + ACTIVATION_DISTANCE {
            assert_eq!(
                governance::validator_set_at(store, height).unwrap(),
                governance::validator_set_at(&w.state, height).unwrap(),
                "height {height}"
            );
        }
    };
    check(&store);
    let app = store.meta().unwrap().app_hash;
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.meta().unwrap().app_hash, app);
    check(&store);
    assert!(
        governance::pending_proposals(&store, tip)
            .unwrap()
            .is_empty()
    );
}

// ---- events --------------------------------------------------------------

#[test]
fn proposing_approving_and_adopting_yield_events() {
    let mut w = World::with_validators(&[1, 1, 1, 1]);
    let change = set_power("v1", 2);
    let propose = propose_tx(&w, "v0", change.clone());
    let id = propose.hash();
    let approvals: Vec<SignedTransaction> = ["v1", "v2"]
        .iter()
        .map(|name| w.sign(name, TxBody::ApproveValidatorChange { proposal: id }))
        .collect();
    let height = w.height;
    let events = w.block_events(vec![propose, approvals[0].clone(), approvals[1].clone()]);
    let kinds: Vec<(u32, EventKind)> = events
        .into_iter()
        .map(|event| (event.cursor.tx_index, event.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (
                0,
                EventKind::ValidatorChangeProposed {
                    proposal: id,
                    change: change.clone(),
                    expires_at: height + EXPIRY,
                }
            ),
            (1, EventKind::ValidatorChangeApproved { proposal: id }),
            (2, EventKind::ValidatorChangeApproved { proposal: id }),
            (
                2,
                EventKind::ValidatorChangeAdopted {
                    proposal: id,
                    change,
                    effective_from: height + ACTIVATION_DISTANCE,
                    epoch: 1,
                }
            ),
        ]
    );
}
