//! Participants' keys: rotation by the participant, recovery of a lost key
//! by an operator's request and an auditor's approval. One row per rule;
//! then what a rotation carries over (holdings, credit lines, pending
//! financing, nonces), that it writes two entries whatever the participant
//! holds, and a property: across random transfers, rotations and
//! recoveries, value is conserved, every token's lineage reaches its root,
//! and only each participant's current key signs.

mod common;

use common::{DAY, World, created, key};
use crypto::{Hash, PublicKey};
use ledger::{
    Amount, Changes, EventKind, Origin, Role, StateValue, StateView, Timestamp, TokenId,
    TokenStatus, TxBody, TxError, signing_participant,
};
use proptest::prelude::*;

type Outcome = Result<Changes, TxError>;

/// A world with validators (for the validator-account rows) and the fresh
/// keys, a credit line and a receivable of 100,000.00 held by "supplier1".
fn funded() -> (World, TokenId) {
    let mut world = World::with_validators(&[1, 1, 1, 1]);
    world.ok(
        "bank",
        TxBody::GrantCreditLine {
            core: key("core"),
            limit: Amount(100_000_000),
        },
    );
    let root = world.confirm("INV-1", 10_000_000);
    (world, root)
}

fn rotate(world: &mut World, who: &str, to: &str) -> Outcome {
    world.run(who, TxBody::RotateParticipantKey { new_key: key(to) })
}

fn request(world: &mut World, by: &str, participant: &str, to: &str) -> Outcome {
    let body = TxBody::RequestKeyRecovery {
        participant: key(participant),
        new_key: key(to),
    };
    world.run(by, body)
}

fn approve(world: &mut World, by: &str, participant: &str, to: &str) -> Outcome {
    let body = TxBody::ApproveKeyRecovery {
        participant: key(participant),
        new_key: key(to),
    };
    world.run(by, body)
}

fn pay(world: &mut World, from: &str, token: TokenId, to: &str, amount: u64) -> Outcome {
    let body = TxBody::Transfer {
        token,
        outputs: vec![ledger::Output {
            recipient: key(to),
            amount: Amount(amount),
        }],
    };
    world.run(from, body)
}

struct Rule {
    name: &'static str,
    holds: fn(&mut World, TokenId) -> Outcome,
    broken: fn(&mut World, TokenId) -> (Outcome, TxError),
}

fn rules() -> Vec<Rule> {
    vec![
        Rule {
            name: "a participant rotates to a key nobody used",
            holds: |w, _| rotate(w, "supplier1", "fresh0"),
            broken: |w, _| {
                (
                    rotate(w, "supplier1", "bank"),
                    TxError::KeyInUse { key: key("bank") },
                )
            },
        },
        Rule {
            name: "a key used once stays used",
            holds: |w, _| rotate(w, "supplier1", "fresh0"),
            broken: |w, _| {
                rotate(w, "supplier1", "fresh0").unwrap();
                (
                    rotate(w, "supplier2", "fresh0"),
                    TxError::KeyInUse { key: key("fresh0") },
                )
            },
        },
        Rule {
            name: "a new key is a usable ed25519 key",
            holds: |w, _| rotate(w, "supplier1", "fresh0"),
            broken: |w, _| {
                let mut weak = [0u8; 32];
                weak[0] = 1;
                let body = TxBody::RotateParticipantKey {
                    new_key: PublicKey(weak),
                };
                (
                    w.run("supplier1", body),
                    TxError::InvalidKey {
                        what: "new key",
                        key: PublicKey(weak),
                        reason: "a small-order (weak) ed25519 point",
                    },
                )
            },
        },
        Rule {
            name: "a validator's account rotates only by governance",
            holds: |w, _| rotate(w, "bank", "fresh0"),
            broken: |w, _| {
                (
                    rotate(w, "v0", "fresh0"),
                    TxError::ManagedByGovernance { key: key("v0") },
                )
            },
        },
        Rule {
            name: "a replaced key signs nothing",
            holds: |w, root| {
                rotate(w, "supplier1", "fresh0")?;
                pay(w, "fresh0", root, "supplier2", 10_000_000)
            },
            broken: |w, root| {
                rotate(w, "supplier1", "fresh0").unwrap();
                (
                    pay(w, "supplier1", root, "supplier2", 10_000_000),
                    TxError::KeyReplaced {
                        key: key("supplier1"),
                        participant: key("supplier1"),
                    },
                )
            },
        },
        Rule {
            name: "a participant is named by its identity, not its new key",
            holds: |w, root| {
                rotate(w, "supplier2", "fresh0")?;
                pay(w, "supplier1", root, "supplier2", 10_000_000)
            },
            broken: |w, root| {
                rotate(w, "supplier2", "fresh0").unwrap();
                (
                    pay(w, "supplier1", root, "fresh0", 10_000_000),
                    TxError::NotAnIdentity {
                        key: key("fresh0"),
                        participant: key("supplier2"),
                    },
                )
            },
        },
        Rule {
            name: "an operator requests a recovery",
            holds: |w, _| request(w, "operator", "supplier1", "fresh0"),
            broken: |w, _| {
                (
                    request(w, "bank", "supplier1", "fresh0"),
                    TxError::MissingRole {
                        key: key("bank"),
                        needed: Role::Operator,
                    },
                )
            },
        },
        Rule {
            name: "an auditor approves a recovery",
            holds: |w, _| {
                request(w, "operator", "supplier1", "fresh0")?;
                approve(w, "auditor", "supplier1", "fresh0")
            },
            broken: |w, _| {
                request(w, "operator", "supplier1", "fresh0").unwrap();
                (
                    approve(w, "operator", "supplier1", "fresh0"),
                    TxError::MissingRole {
                        key: key("operator"),
                        needed: Role::Auditor,
                    },
                )
            },
        },
        Rule {
            name: "an approval follows a request",
            holds: |w, _| {
                request(w, "operator", "supplier1", "fresh0")?;
                approve(w, "auditor", "supplier1", "fresh0")
            },
            broken: |w, _| {
                (
                    approve(w, "auditor", "supplier1", "fresh0"),
                    TxError::NoRecoveryRequested {
                        participant: key("supplier1"),
                    },
                )
            },
        },
        Rule {
            name: "an approval names the requested key",
            holds: |w, _| {
                request(w, "operator", "supplier1", "fresh0")?;
                approve(w, "auditor", "supplier1", "fresh0")
            },
            broken: |w, _| {
                request(w, "operator", "supplier1", "fresh0").unwrap();
                (
                    approve(w, "auditor", "supplier1", "fresh1"),
                    TxError::RecoveryKeyMismatch {
                        participant: key("supplier1"),
                        requested: key("fresh0"),
                        approved: key("fresh1"),
                    },
                )
            },
        },
        Rule {
            name: "the participant that requested does not approve",
            holds: |w, _| {
                let admin = TxBody::RegisterParticipant {
                    key: key("fresh9"),
                    name: "admin".into(),
                    roles: vec![Role::Operator, Role::Auditor],
                };
                w.run("operator", admin)?;
                request(w, "fresh9", "supplier1", "fresh0")?;
                approve(w, "auditor", "supplier1", "fresh0")
            },
            broken: |w, _| {
                let admin = TxBody::RegisterParticipant {
                    key: key("fresh9"),
                    name: "admin".into(),
                    roles: vec![Role::Operator, Role::Auditor],
                };
                w.run("operator", admin).unwrap();
                request(w, "fresh9", "supplier1", "fresh0").unwrap();
                (
                    approve(w, "fresh9", "supplier1", "fresh0"),
                    TxError::RecoveryNeedsSecondParticipant { key: key("fresh9") },
                )
            },
        },
        Rule {
            name: "an approval is used once",
            holds: |w, _| {
                request(w, "operator", "supplier1", "fresh0")?;
                approve(w, "auditor", "supplier1", "fresh0")
            },
            broken: |w, _| {
                request(w, "operator", "supplier1", "fresh0").unwrap();
                let height = w.height;
                approve(w, "auditor", "supplier1", "fresh0").unwrap();
                (
                    approve(w, "auditor", "supplier1", "fresh0"),
                    TxError::RecoveryAlreadyApproved {
                        participant: key("supplier1"),
                        height,
                    },
                )
            },
        },
        Rule {
            name: "a recovery moves to a key nobody used",
            holds: |w, _| request(w, "operator", "supplier1", "fresh0"),
            broken: |w, _| {
                (
                    request(w, "operator", "supplier1", "supplier2"),
                    TxError::KeyInUse {
                        key: key("supplier2"),
                    },
                )
            },
        },
        Rule {
            name: "a recovery is of an active participant",
            holds: |w, _| request(w, "operator", "supplier3", "fresh0"),
            broken: |w, _| {
                let deactivate = TxBody::DeactivateParticipant {
                    key: key("supplier3"),
                };
                w.run("operator", deactivate).unwrap();
                (
                    request(w, "operator", "supplier3", "fresh0"),
                    TxError::ParticipantInactive {
                        key: key("supplier3"),
                    },
                )
            },
        },
        Rule {
            name: "a validator's account is not recovered",
            holds: |w, _| request(w, "operator", "supplier3", "fresh0"),
            broken: |w, _| {
                (
                    request(w, "operator", "v1", "fresh0"),
                    TxError::ManagedByGovernance { key: key("v1") },
                )
            },
        },
    ]
}

#[test]
fn each_key_rule_holds_and_breaks() {
    for rule in rules() {
        let (mut world, root) = funded();
        if let Err(error) = (rule.holds)(&mut world, root) {
            panic!("{}: refused where it holds: {error}", rule.name);
        }
        let (mut world, root) = funded();
        let (outcome, expected) = (rule.broken)(&mut world, root);
        assert_eq!(outcome.err(), Some(expected), "{}", rule.name);
    }
}

fn holdings(world: &World, holder: &PublicKey) -> Vec<ledger::Token> {
    world
        .state
        .entries()
        .filter_map(|(_, value)| match value {
            StateValue::Token(token) if token.holder == *holder && token.is_unspent() => {
                Some(token.clone())
            }
            _ => None,
        })
        .collect()
}

/// Parent by parent up to the root: every ancestor is there, all of one root.
fn lineage(world: &World, token: &ledger::Token) -> Vec<TokenId> {
    let mut chain = vec![token.id];
    let mut current = token.clone();
    while let Some(parent) = current.parent_id {
        current = world.token(&parent);
        assert_eq!(current.root_id, token.root_id);
        chain.push(current.id);
    }
    assert_eq!(current.id, token.root_id);
    chain
}

#[test]
fn a_rotation_writes_two_entries_whatever_the_participant_holds() {
    let (mut world, root) = funded();
    // 64 tokens for supplier1.
    let outputs = vec![
        ledger::Output {
            recipient: key("supplier1"),
            amount: Amount(10_000_000 / 64),
        };
        64
    ];
    world.ok(
        "supplier1",
        TxBody::Transfer {
            token: root,
            outputs,
        },
    );
    assert_eq!(holdings(&world, &key("supplier1")).len(), 64);
    let changes = rotate(&mut world, "supplier1", "fresh0").unwrap();
    assert_eq!(changes.len(), 2, "the participant and the key's binding");
    assert_eq!(holdings(&world, &key("supplier1")).len(), 64);
}

#[test]
fn a_rotation_carries_holdings_credit_lines_and_pending_financing_over() {
    let (mut w, root) = funded();
    let parts = w
        .transfer(
            "supplier1",
            root,
            &[("supplier2", 4_000_000), ("supplier1", 6_000_000)],
        )
        .unwrap();
    let offered = parts[1];
    w.ok(
        "supplier1",
        TxBody::RequestFinancing {
            token: offered,
            bank: key("bank"),
            rate_bps: 400,
        },
    );
    let nonce = w.next_nonce(&key("supplier1"));
    for (who, to) in [
        ("supplier1", "fresh0"),
        ("bank", "fresh1"),
        ("core", "fresh2"),
    ] {
        rotate(&mut w, who, to).unwrap();
    }
    // The participant signs with its new key and the nonce goes on.
    assert_eq!(w.next_nonce(&key("fresh0")), nonce + 1);
    let participant = signing_participant(&w.state, &key("fresh0")).unwrap();
    assert_eq!(participant.key, key("supplier1"));
    assert_eq!(participant.signing_key, key("fresh0"));

    // The bank accepts, with its new key, what was offered to its old one.
    let changes = w.ok("fresh1", TxBody::AcceptFinancing { token: offered });
    let bought = w.token(&created(&changes)[0]);
    assert_eq!(bought.holder, key("bank"));
    assert!(matches!(bought.origin, Origin::Financed { seller, .. } if seller == key("supplier1")));
    assert_eq!(lineage(&w, &bought), vec![bought.id, offered, root]);

    // The core confirms against its credit line with its new key.
    w.now = Timestamp(w.now.0 + DAY);
    let before = w
        .state
        .credit_line(&key("core"))
        .unwrap()
        .unwrap()
        .outstanding;
    let body = TxBody::ConfirmReceivable {
        supplier: key("supplier2"),
        amount: Amount(1_000),
        maturity: Timestamp(w.now.0 + 30 * DAY),
        invoice_ref: Hash::digest(b"INV-2"),
    };
    let second = created(&w.ok("fresh2", body))[0];
    assert_eq!(w.token(&second).issuer, key("core"));
    let after = w
        .state
        .credit_line(&key("core"))
        .unwrap()
        .unwrap()
        .outstanding;
    assert_eq!(after, Amount(before.0 + 1_000));

    // The supplier's holdings are its identity's; its old key is refused.
    assert_eq!(holdings(&w, &key("supplier2")).len(), 2);
    let old = pay(&mut w, "supplier2", parts[0], "supplier3", 4_000_000);
    assert!(old.is_ok(), "supplier2 never rotated");
    let refused = w.run("supplier1", TxBody::RejectFinancing { token: offered });
    assert_eq!(
        refused.err(),
        Some(TxError::KeyReplaced {
            key: key("supplier1"),
            participant: key("supplier1"),
        })
    );
    // Settlement still pays the identities.
    w.now = Timestamp(w.now.0 + 120 * DAY);
    w.ok(
        "fresh2",
        TxBody::Settle {
            root,
            payment_ref: "PAY-1".into(),
        },
    );
    assert!(
        w.state
            .receivable(&root)
            .unwrap()
            .unwrap()
            .settlement
            .is_some()
    );
}

#[test]
fn a_lost_key_is_replaced_by_an_operator_and_an_auditor_and_refused_after() {
    let (mut w, root) = funded();
    request(&mut w, "operator", "supplier1", "fresh0").unwrap();
    // Until the auditor approves, the old key still signs.
    let part = w
        .transfer("supplier1", root, &[("supplier1", 10_000_000)])
        .unwrap()[0];
    approve(&mut w, "auditor", "supplier1", "fresh0").unwrap();
    let refused = pay(&mut w, "supplier1", part, "supplier2", 10_000_000);
    assert_eq!(
        refused.err(),
        Some(TxError::KeyReplaced {
            key: key("supplier1"),
            participant: key("supplier1"),
        })
    );
    let paid = pay(&mut w, "fresh0", part, "supplier2", 10_000_000).unwrap();
    let token = w.token(&created(&paid)[0]);
    assert_eq!(lineage(&w, &token), vec![token.id, part, root]);
    // A thief who rotated the stolen key first loses to the recovery.
    rotate(&mut w, "supplier2", "fresh5").unwrap();
    request(&mut w, "operator", "supplier2", "fresh6").unwrap();
    approve(&mut w, "auditor", "supplier2", "fresh6").unwrap();
    for gone in ["supplier2", "fresh5"] {
        assert!(matches!(
            signing_participant(&w.state, &key(gone)),
            Err(ledger::ExecError::Refused(TxError::KeyReplaced { .. }))
        ));
    }
    assert_eq!(
        signing_participant(&w.state, &key("fresh6")).unwrap().key,
        key("supplier2")
    );
}

#[test]
fn rotation_and_recovery_yield_events_naming_the_identity() {
    let (mut w, _) = funded();
    // One block: a rotation, and a recovery requested and approved.
    let txs = vec![
        w.sign(
            "supplier1",
            TxBody::RotateParticipantKey {
                new_key: key("fresh0"),
            },
        ),
        w.sign(
            "operator",
            TxBody::RequestKeyRecovery {
                participant: key("supplier2"),
                new_key: key("fresh1"),
            },
        ),
        w.sign(
            "auditor",
            TxBody::ApproveKeyRecovery {
                participant: key("supplier2"),
                new_key: key("fresh1"),
            },
        ),
    ];
    let events = w.block_events(txs);
    let kinds: Vec<EventKind> = events.iter().map(|event| event.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::ParticipantKeyRotated {
                participant: key("supplier1"),
                new_key: key("fresh0"),
            },
            EventKind::KeyRecoveryRequested {
                participant: key("supplier2"),
                new_key: key("fresh1"),
            },
            EventKind::ParticipantKeyRecovered {
                participant: key("supplier2"),
                new_key: key("fresh1"),
            },
        ]
    );
    assert!(events[0].involves(&key("supplier1")));
    assert!(events[2].involves(&key("supplier2")));
}

// ---- a property ----------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// The first token `from` holds: to `to`, whole or split in two.
    Transfer {
        from: usize,
        to: usize,
        split: bool,
    },
    Rotate {
        who: usize,
    },
    Recover {
        who: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..3, 0usize..3, any::<bool>()).prop_map(|(from, to, split)| Op::Transfer { from, to, split }),
        1 => (0usize..3).prop_map(|who| Op::Rotate { who }),
        1 => (0usize..3).prop_map(|who| Op::Recover { who }),
    ]
}

const SUPPLIERS: [&str; 3] = ["supplier1", "supplier2", "supplier3"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Across random transfers, rotations and recoveries: the unspent
    /// tokens always sum to the receivable, every token's lineage reaches
    /// its root, tokens are held by identities, and each supplier signs
    /// with exactly its current key.
    #[test]
    fn value_and_lineage_survive_rotations_and_only_current_keys_sign(
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let (mut w, root) = funded();
        let mut current: Vec<&'static str> = SUPPLIERS.to_vec();
        let mut retired: Vec<&'static str> = Vec::new();
        let mut fresh = common::FRESH.iter();
        for op in ops {
            match op {
                Op::Transfer { from, to, split } => {
                    let Some(token) = holdings(&w, &key(SUPPLIERS[from]))
                        .into_iter()
                        .find(|token| token.status == TokenStatus::Active && token.amount.0 >= 2)
                    else {
                        continue;
                    };
                    let mut outputs = vec![(SUPPLIERS[to], token.amount.0)];
                    if split {
                        outputs = vec![(SUPPLIERS[to], token.amount.0 / 2), (SUPPLIERS[from], token.amount.0 - token.amount.0 / 2)];
                    }
                    w.transfer(current[from], token.id, &outputs).unwrap();
                }
                Op::Rotate { who } => {
                    let Some(next) = fresh.next() else { continue };
                    rotate(&mut w, current[who], next).unwrap();
                    retired.push(std::mem::replace(&mut current[who], next));
                }
                Op::Recover { who } => {
                    let Some(next) = fresh.next() else { continue };
                    request(&mut w, "operator", SUPPLIERS[who], next).unwrap();
                    approve(&mut w, "auditor", SUPPLIERS[who], next).unwrap();
                    retired.push(std::mem::replace(&mut current[who], next));
                }
            }
            let tokens: Vec<ledger::Token> = w.state.entries().filter_map(|(_, value)| match value {
                StateValue::Token(token) => Some(token.clone()),
                _ => None,
            }).collect();
            let unspent: u64 = tokens.iter().filter(|t| t.is_unspent()).map(|t| t.amount.0).sum();
            prop_assert_eq!(unspent, 10_000_000);
            for token in &tokens {
                prop_assert_eq!(*lineage(&w, token).last().unwrap(), root);
                prop_assert!(SUPPLIERS.iter().any(|name| key(name) == token.holder));
            }
            for (index, name) in current.iter().enumerate() {
                let signer = signing_participant(&w.state, &key(name));
                prop_assert_eq!(signer.map(|p| p.key).ok(), Some(key(SUPPLIERS[index])));
            }
            for name in &retired {
                let refused = signing_participant(&w.state, &key(name));
                let replaced = matches!(refused, Err(ledger::ExecError::Refused(TxError::KeyReplaced { .. })));
                prop_assert!(replaced, "{} still signs", name);
            }
        }
    }
}
