//! One row per ledger rule: a case where the rule holds (the transaction is
//! accepted) and a case where it is broken (refused with exactly this error).

mod common;

use common::{DAY, World};
use crypto::{ChainId, Hash};
use ledger::{Amount, Changes, Role, Timestamp, TokenId, TxBody, TxError};

type Outcome = Result<Changes, TxError>;

struct Rule {
    name: &'static str,
    holds: fn(&mut World, TokenId) -> Outcome,
    broken: fn(&mut World, TokenId) -> (Outcome, TxError),
}

fn transfer_body(world: &World, token: TokenId, outputs: &[(&str, u64)]) -> TxBody {
    TxBody::Transfer {
        token,
        outputs: outputs
            .iter()
            .map(|(to, amount)| ledger::Output {
                recipient: world.key(to),
                amount: Amount(*amount),
            })
            .collect(),
    }
}

fn pay_all(world: &mut World, token: TokenId) -> Outcome {
    let body = transfer_body(world, token, &[("supplier2", 10_000_000)]);
    world.run("supplier1", body)
}

fn request(world: &mut World, token: TokenId, bank: &str, rate_bps: u32) -> Outcome {
    let body = TxBody::RequestFinancing {
        token,
        bank: world.key(bank),
        rate_bps,
    };
    world.run("supplier1", body)
}

fn freeze(world: &mut World, token: TokenId) -> Outcome {
    world.run(
        "auditor",
        TxBody::Freeze {
            token,
            reason: "disputed delivery".into(),
        },
    )
}

fn settle(world: &mut World, root: TokenId) -> Outcome {
    world.run(
        "core",
        TxBody::Settle {
            root,
            payment_ref: "PAY-1".into(),
        },
    )
}

fn mature(world: &mut World) {
    world.now = Timestamp(world.now.0 + 91 * DAY);
}

fn register(world: &mut World, name: &str, roles: Vec<Role>) -> Outcome {
    let key = world.key("outsider");
    world.run(
        "operator",
        TxBody::RegisterParticipant {
            key,
            name: name.into(),
            roles,
        },
    )
}

const RULES: &[Rule] = &[
    Rule {
        name: "the transaction names this chain",
        holds: pay_all,
        broken: |w, token| {
            let mut tx = w.sign(
                "supplier1",
                transfer_body(w, token, &[("supplier2", 10_000_000)]),
            );
            let other = ChainId(Hash::digest(b"other chain"));
            tx.tx.chain_id = other;
            let tx = tx.tx.sign(&w.keys["supplier1"]);
            (
                w.submit(&tx),
                TxError::WrongChain {
                    expected: w.chain,
                    got: other,
                },
            )
        },
    },
    Rule {
        name: "the signature verifies",
        holds: pay_all,
        broken: |w, token| {
            let mut tx = w.sign(
                "supplier1",
                transfer_body(w, token, &[("supplier2", 10_000_000)]),
            );
            tx.signature.0[3] ^= 0x40;
            (
                w.submit(&tx),
                TxError::BadSignature {
                    signer: w.key("supplier1"),
                },
            )
        },
    },
    Rule {
        name: "a transaction applies once (replay)",
        holds: pay_all,
        broken: |w, _| {
            let body = TxBody::GrantCreditLine {
                core: w.key("core"),
                limit: Amount(5),
            };
            let tx = w.sign("bank", body);
            w.submit(&tx).expect("first time accepted");
            (
                w.submit(&tx),
                TxError::Replay {
                    signer: w.key("bank"),
                    expected: 2,
                    got: 1,
                },
            )
        },
    },
    Rule {
        name: "nonces have no gaps",
        holds: pay_all,
        broken: |w, token| {
            let mut tx = w.sign(
                "supplier1",
                transfer_body(w, token, &[("supplier2", 10_000_000)]),
            );
            tx.tx.nonce += 1;
            let tx = tx.tx.sign(&w.keys["supplier1"]);
            (
                w.submit(&tx),
                TxError::NonceTooHigh {
                    signer: w.key("supplier1"),
                    expected: 0,
                    got: 1,
                },
            )
        },
    },
    Rule {
        name: "the signer is registered",
        holds: |w, _| register(w, "new supplier", vec![Role::Supplier]),
        broken: |w, _| {
            let body = TxBody::GrantCreditLine {
                core: w.key("core"),
                limit: Amount(5),
            };
            (
                w.run("outsider", body),
                TxError::UnknownParticipant {
                    key: w.key("outsider"),
                },
            )
        },
    },
    Rule {
        name: "the signer is active",
        holds: |w, _| {
            w.run(
                "operator",
                TxBody::DeactivateParticipant {
                    key: w.key("supplier3"),
                },
            )
        },
        broken: |w, token| {
            w.ok(
                "operator",
                TxBody::DeactivateParticipant {
                    key: w.key("supplier1"),
                },
            );
            (
                pay_all(w, token),
                TxError::ParticipantInactive {
                    key: w.key("supplier1"),
                },
            )
        },
    },
    Rule {
        name: "the signer has the kind's role",
        holds: |w, _| {
            w.run(
                "bank",
                TxBody::GrantCreditLine {
                    core: w.key("core"),
                    limit: Amount(1),
                },
            )
        },
        broken: |w, _| {
            let body = TxBody::GrantCreditLine {
                core: w.key("core"),
                limit: Amount(1),
            };
            (
                w.run("supplier1", body),
                TxError::MissingRole {
                    key: w.key("supplier1"),
                    needed: Role::Bank,
                },
            )
        },
    },
    Rule {
        name: "a confirmation goes to a supplier",
        holds: |w, _| {
            let body = TxBody::ConfirmReceivable {
                supplier: w.key("supplier2"),
                amount: Amount(1),
                maturity: Timestamp(w.now.0 + DAY),
                invoice_ref: Hash::digest(b"INV-2"),
            };
            w.run("core", body)
        },
        broken: |w, _| {
            let body = TxBody::ConfirmReceivable {
                supplier: w.key("bank"),
                amount: Amount(1),
                maturity: Timestamp(w.now.0 + DAY),
                invoice_ref: Hash::digest(b"INV-2"),
            };
            (
                w.run("core", body),
                TxError::MissingRole {
                    key: w.key("bank"),
                    needed: Role::Supplier,
                },
            )
        },
    },
    Rule {
        name: "a key registers once",
        holds: |w, _| register(w, "new", vec![Role::Supplier]),
        broken: |w, _| {
            let key = w.key("supplier1");
            (
                w.run(
                    "operator",
                    TxBody::RegisterParticipant {
                        key,
                        name: "again".into(),
                        roles: vec![Role::Supplier],
                    },
                ),
                TxError::ParticipantExists { key },
            )
        },
    },
    Rule {
        name: "a participant has a role",
        holds: |w, _| register(w, "new", vec![Role::Bank, Role::Supplier]),
        broken: |w, _| (register(w, "new", vec![]), TxError::NoRoles),
    },
    Rule {
        name: "a name is not empty",
        holds: |w, _| register(w, "n", vec![Role::Supplier]),
        broken: |w, _| {
            (
                register(w, "  ", vec![Role::Supplier]),
                TxError::EmptyText {
                    what: "participant name",
                },
            )
        },
    },
    Rule {
        name: "a name is not too long",
        holds: |w, _| register(w, &"n".repeat(256), vec![Role::Supplier]),
        broken: |w, _| {
            (
                register(w, &"n".repeat(257), vec![Role::Supplier]),
                TxError::TextTooLong {
                    what: "participant name",
                    len: 257,
                    limit: 256,
                },
            )
        },
    },
    Rule {
        name: "amounts are positive",
        holds: |w, token| {
            w.transfer(
                "supplier1",
                token,
                &[("supplier2", 1), ("supplier3", 9_999_999)],
            )
            .map(|_| vec![])
        },
        broken: |w, token| {
            let body = transfer_body(w, token, &[("supplier2", 0), ("supplier3", 10_000_000)]);
            (w.run("supplier1", body), TxError::ZeroAmount)
        },
    },
    Rule {
        name: "output sums do not overflow",
        holds: pay_all,
        broken: |w, token| {
            let body = transfer_body(w, token, &[("supplier2", u64::MAX), ("supplier3", 2)]);
            (w.run("supplier1", body), TxError::AmountOverflow)
        },
    },
    Rule {
        name: "a confirmation fits the credit line",
        holds: |w, _| {
            w.confirm("INV-2", 90_000_000);
            Ok(vec![])
        },
        broken: |w, _| {
            let body = TxBody::ConfirmReceivable {
                supplier: w.key("supplier1"),
                amount: Amount(90_000_001),
                maturity: Timestamp(w.now.0 + DAY),
                invoice_ref: Hash::digest(b"INV-2"),
            };
            let error = TxError::CreditLineExceeded {
                core: w.key("core"),
                limit: Amount(100_000_000),
                outstanding: Amount(10_000_000),
                requested: Amount(90_000_001),
            };
            (w.run("core", body), error)
        },
    },
    Rule {
        name: "credit lines from several banks add up",
        holds: |w, _| {
            w.ok(
                "bank2",
                TxBody::GrantCreditLine {
                    core: w.key("core"),
                    limit: Amount(50),
                },
            );
            w.confirm("INV-2", 90_000_050);
            Ok(vec![])
        },
        broken: |w, _| {
            w.ok(
                "bank2",
                TxBody::GrantCreditLine {
                    core: w.key("core"),
                    limit: Amount(50),
                },
            );
            let body = TxBody::ConfirmReceivable {
                supplier: w.key("supplier1"),
                amount: Amount(90_000_051),
                maturity: Timestamp(w.now.0 + DAY),
                invoice_ref: Hash::digest(b"INV-2"),
            };
            let error = TxError::CreditLineExceeded {
                core: w.key("core"),
                limit: Amount(100_000_050),
                outstanding: Amount(10_000_000),
                requested: Amount(90_000_051),
            };
            (w.run("core", body), error)
        },
    },
    Rule {
        name: "maturity is in the future",
        holds: |w, _| {
            let body = TxBody::ConfirmReceivable {
                supplier: w.key("supplier1"),
                amount: Amount(1),
                maturity: Timestamp(w.now.0 + 1),
                invoice_ref: Hash::digest(b"INV-2"),
            };
            w.run("core", body)
        },
        broken: |w, _| {
            let body = TxBody::ConfirmReceivable {
                supplier: w.key("supplier1"),
                amount: Amount(1),
                maturity: w.now,
                invoice_ref: Hash::digest(b"INV-2"),
            };
            (
                w.run("core", body),
                TxError::MaturityNotInFuture {
                    maturity: w.now,
                    now: w.now,
                },
            )
        },
    },
    Rule {
        name: "an invoice is confirmed once",
        holds: |w, _| {
            w.confirm("INV-2", 1);
            Ok(vec![])
        },
        broken: |w, root| {
            let body = TxBody::ConfirmReceivable {
                supplier: w.key("supplier2"),
                amount: Amount(1),
                maturity: Timestamp(w.now.0 + DAY),
                invoice_ref: Hash::digest(b"INV-1"),
            };
            (
                w.run("core", body),
                TxError::InvoiceAlreadyConfirmed {
                    invoice_ref: Hash::digest(b"INV-1"),
                    token: root,
                },
            )
        },
    },
    Rule {
        name: "the token exists",
        holds: pay_all,
        broken: |w, _| {
            let missing = TokenId(Hash::digest(b"nothing"));
            (
                pay_all(w, missing),
                TxError::UnknownToken { token: missing },
            )
        },
    },
    Rule {
        name: "only the holder transfers",
        holds: pay_all,
        broken: |w, token| {
            let body = transfer_body(w, token, &[("supplier2", 10_000_000)]);
            (
                w.run("supplier2", body),
                TxError::NotHolder {
                    token,
                    holder: w.key("supplier1"),
                    signer: w.key("supplier2"),
                },
            )
        },
    },
    Rule {
        name: "no transfer at or after maturity",
        holds: |w, token| {
            w.now = Timestamp(w.now.0 + 90 * DAY - 1);
            pay_all(w, token)
        },
        broken: |w, token| {
            let maturity = w.token(&token).maturity;
            w.now = maturity;
            (
                pay_all(w, token),
                TxError::Matured {
                    token,
                    maturity,
                    now: maturity,
                },
            )
        },
    },
    Rule {
        name: "no transfer of a frozen token",
        holds: |w, token| {
            freeze(w, token)?;
            w.ok("auditor", TxBody::Unfreeze { token });
            pay_all(w, token)
        },
        broken: |w, token| {
            freeze(w, token).expect("freeze");
            (pay_all(w, token), TxError::TokenFrozen { token })
        },
    },
    Rule {
        name: "no transfer of a token pending financing",
        holds: |w, token| {
            request(w, token, "bank", 435)?;
            w.ok("bank", TxBody::RejectFinancing { token });
            pay_all(w, token)
        },
        broken: |w, token| {
            request(w, token, "bank", 435).expect("request");
            (pay_all(w, token), TxError::TokenPending { token })
        },
    },
    Rule {
        name: "a token is spent once (no double spend)",
        holds: pay_all,
        broken: |w, token| {
            pay_all(w, token).expect("first spend");
            let body = transfer_body(w, token, &[("supplier3", 10_000_000)]);
            (w.run("supplier1", body), TxError::TokenSpent { token })
        },
    },
    Rule {
        name: "a settled token cannot move",
        holds: |w, root| {
            mature(w);
            settle(w, root)
        },
        broken: |w, root| {
            mature(w);
            settle(w, root).expect("settle");
            (freeze(w, root), TxError::TokenSettled { token: root })
        },
    },
    Rule {
        name: "a transfer has 1 to 64 outputs",
        holds: |w, token| {
            let outputs: Vec<(&str, u64)> =
                std::iter::repeat_n(("supplier2", 156_250), 64).collect();
            w.transfer("supplier1", token, &outputs).map(|_| vec![])
        },
        broken: |w, token| {
            let outputs: Vec<(&str, u64)> = std::iter::repeat_n(("supplier2", 1), 65).collect();
            let body = transfer_body(w, token, &outputs);
            (
                w.run("supplier1", body),
                TxError::OutputCount { got: 65, limit: 64 },
            )
        },
    },
    Rule {
        name: "outputs sum exactly to the input",
        holds: |w, token| {
            w.transfer(
                "supplier1",
                token,
                &[("supplier2", 4_000_000), ("supplier1", 6_000_000)],
            )
            .map(|_| vec![])
        },
        broken: |w, token| {
            let body = transfer_body(
                w,
                token,
                &[("supplier2", 4_000_000), ("supplier1", 5_999_999)],
            );
            (
                w.run("supplier1", body),
                TxError::AmountsNotConserved {
                    input: Amount(10_000_000),
                    outputs: Amount(9_999_999),
                },
            )
        },
    },
    Rule {
        name: "outputs go to registered participants",
        holds: pay_all,
        broken: |w, token| {
            let body = transfer_body(w, token, &[("outsider", 10_000_000)]);
            (
                w.run("supplier1", body),
                TxError::UnknownParticipant {
                    key: w.key("outsider"),
                },
            )
        },
    },
    Rule {
        name: "financing is requested from a bank",
        holds: |w, token| request(w, token, "bank", 435),
        broken: |w, token| {
            (
                request(w, token, "supplier2", 435),
                TxError::MissingRole {
                    key: w.key("supplier2"),
                    needed: Role::Bank,
                },
            )
        },
    },
    Rule {
        name: "a bank answers only a pending offer",
        holds: |w, token| {
            request(w, token, "bank", 435)?;
            w.run("bank", TxBody::AcceptFinancing { token })
        },
        broken: |w, token| {
            (
                w.run("bank", TxBody::AcceptFinancing { token }),
                TxError::NotPending { token },
            )
        },
    },
    Rule {
        name: "only the bank offered the token answers",
        holds: |w, token| {
            request(w, token, "bank", 435)?;
            w.run("bank", TxBody::RejectFinancing { token })
        },
        broken: |w, token| {
            request(w, token, "bank", 435).expect("request");
            (
                w.run("bank2", TxBody::AcceptFinancing { token }),
                TxError::NotTheFinancingBank {
                    token,
                    bank: w.key("bank"),
                    signer: w.key("bank2"),
                },
            )
        },
    },
    Rule {
        name: "the discount leaves a positive price",
        holds: |w, token| request(w, token, "bank", 39_999),
        broken: |w, token| {
            (
                request(w, token, "bank", 40_000),
                TxError::DiscountTooLarge {
                    rate_bps: 40_000,
                    days: 90,
                },
            )
        },
    },
    Rule {
        name: "a financing offer is not accepted after maturity",
        holds: |w, token| {
            request(w, token, "bank", 435)?;
            w.now = Timestamp(w.now.0 + 89 * DAY);
            w.run("bank", TxBody::AcceptFinancing { token })
        },
        broken: |w, token| {
            request(w, token, "bank", 435).expect("request");
            let maturity = w.token(&token).maturity;
            w.now = maturity;
            (
                w.run("bank", TxBody::AcceptFinancing { token }),
                TxError::Matured {
                    token,
                    maturity,
                    now: maturity,
                },
            )
        },
    },
    Rule {
        name: "settlement names the root",
        holds: |w, root| {
            mature(w);
            settle(w, root)
        },
        broken: |w, root| {
            let child = w
                .transfer("supplier1", root, &[("supplier2", 10_000_000)])
                .expect("transfer")[0];
            mature(w);
            (settle(w, child), TxError::NotRoot { token: child, root })
        },
    },
    Rule {
        name: "only the issuer settles",
        holds: |w, root| {
            mature(w);
            settle(w, root)
        },
        broken: |w, root| {
            let other_core = w.key("outsider");
            w.ok(
                "operator",
                TxBody::RegisterParticipant {
                    key: other_core,
                    name: "core2".into(),
                    roles: vec![Role::CoreEnterprise],
                },
            );
            mature(w);
            (
                w.run(
                    "outsider",
                    TxBody::Settle {
                        root,
                        payment_ref: "PAY".into(),
                    },
                ),
                TxError::NotIssuer {
                    issuer: w.key("core"),
                    signer: other_core,
                },
            )
        },
    },
    Rule {
        name: "settlement waits for maturity",
        holds: |w, root| {
            w.now = w.token(&root).maturity;
            settle(w, root)
        },
        broken: |w, root| {
            let maturity = w.token(&root).maturity;
            w.now = Timestamp(maturity.0 - 1);
            (
                settle(w, root),
                TxError::NotMatured {
                    maturity,
                    now: Timestamp(maturity.0 - 1),
                },
            )
        },
    },
    Rule {
        name: "a receivable settles once",
        holds: |w, root| {
            mature(w);
            settle(w, root)
        },
        broken: |w, root| {
            mature(w);
            settle(w, root).expect("first settlement");
            (settle(w, root), TxError::AlreadySettled { root })
        },
    },
    Rule {
        name: "settlement waits for disputes to be resolved",
        holds: |w, root| {
            let parts = w
                .transfer(
                    "supplier1",
                    root,
                    &[("supplier2", 1), ("supplier3", 9_999_999)],
                )
                .expect("split");
            freeze(w, parts[0])?;
            w.ok("auditor", TxBody::Unfreeze { token: parts[0] });
            mature(w);
            settle(w, root)
        },
        broken: |w, root| {
            let parts = w
                .transfer(
                    "supplier1",
                    root,
                    &[("supplier2", 1), ("supplier3", 9_999_999)],
                )
                .expect("split");
            freeze(w, parts[1]).expect("freeze");
            mature(w);
            (settle(w, root), TxError::DisputedTokens { root, frozen: 1 })
        },
    },
    Rule {
        name: "a token is frozen once",
        holds: freeze,
        broken: |w, token| {
            freeze(w, token).expect("first freeze");
            (freeze(w, token), TxError::AlreadyFrozen { token })
        },
    },
    Rule {
        name: "only a frozen token is unfrozen",
        holds: |w, token| {
            freeze(w, token)?;
            w.run("auditor", TxBody::Unfreeze { token })
        },
        broken: |w, token| {
            (
                w.run("auditor", TxBody::Unfreeze { token }),
                TxError::NotFrozen { token },
            )
        },
    },
    Rule {
        name: "credit goes to a core enterprise",
        holds: |w, _| {
            w.run(
                "bank",
                TxBody::GrantCreditLine {
                    core: w.key("core"),
                    limit: Amount(1),
                },
            )
        },
        broken: |w, _| {
            let body = TxBody::GrantCreditLine {
                core: w.key("supplier1"),
                limit: Amount(1),
            };
            (
                w.run("bank", body),
                TxError::MissingRole {
                    key: w.key("supplier1"),
                    needed: Role::CoreEnterprise,
                },
            )
        },
    },
];

#[test]
fn every_rule_holds_and_breaks_with_its_exact_error() {
    for rule in RULES {
        let (mut world, root) = World::funded();
        if let Err(error) = (rule.holds)(&mut world, root) {
            panic!(
                "rule {:?}: the holding case was refused: {error}",
                rule.name
            );
        }
        let (mut world, root) = World::funded();
        let (outcome, expected) = (rule.broken)(&mut world, root);
        match outcome {
            Ok(_) => panic!("rule {:?}: the breaking case was accepted", rule.name),
            Err(error) => assert_eq!(error, expected, "rule {:?}", rule.name),
        }
    }
}

#[test]
fn a_refused_transaction_changes_nothing() {
    let (mut world, root) = World::funded();
    let snapshot: Vec<_> = world
        .state
        .entries()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let body = transfer_body(&world, root, &[("supplier2", 1)]);
    assert!(world.run("supplier1", body).is_err());
    let after: Vec<_> = world
        .state
        .entries()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(snapshot, after);
}
