//! A state read that fails is not a refusal: for every kind of transaction
//! and each entry its rules read, a view that cannot read that entry makes
//! execution return the [`StateError`], never a [`TxError`]; a proposer's
//! selection stops with it instead of leaving candidates out, and a block
//! executed over it fails with `BlockError::StateReadFailed`, not as invalid.

mod common;

use common::{DAY, World};
use crypto::Hash;
use ledger::block::select_transactions;
use ledger::{
    Amount, BlockError, ExecError, MemoryState, Output, Role, SignedTransaction, StateError,
    StateKey, StateValue, StateView, Timestamp, TokenId, TxBody, execute, execute_block,
    verify_batch,
};

/// The world's state, except that reading `broken` fails as a disk would.
struct FailingState<'a> {
    state: &'a MemoryState,
    broken: StateKey,
}

impl StateView for FailingState<'_> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        if *key == self.broken {
            return Err(injected(key));
        }
        self.state.get(key)
    }
}

fn injected(key: &StateKey) -> StateError {
    StateError {
        key: key.clone(),
        reason: "injected read failure".into(),
    }
}

/// One row: a transaction valid on the healthy state, and an entry its
/// execution reads.
struct Row {
    what: &'static str,
    setup: fn(&mut World, TokenId) -> (SignedTransaction, StateKey),
}

fn transfer_to_supplier2(world: &World, token: TokenId) -> SignedTransaction {
    world.sign(
        "supplier1",
        TxBody::Transfer {
            token,
            outputs: vec![
                Output {
                    recipient: world.key("supplier2"),
                    amount: Amount(4_000_000),
                },
                Output {
                    recipient: world.key("supplier1"),
                    amount: Amount(6_000_000),
                },
            ],
        },
    )
}

fn request_financing(world: &World, token: TokenId) -> SignedTransaction {
    world.sign(
        "supplier1",
        TxBody::RequestFinancing {
            token,
            bank: world.key("bank"),
            rate_bps: 400,
        },
    )
}

fn freeze(world: &World, token: TokenId) -> SignedTransaction {
    world.sign(
        "auditor",
        TxBody::Freeze {
            token,
            reason: "disputed delivery".into(),
        },
    )
}

fn settle(world: &mut World, root: TokenId) -> SignedTransaction {
    world.now = Timestamp(world.now.0 + 91 * DAY);
    world.sign(
        "core",
        TxBody::Settle {
            root,
            payment_ref: "PAY-1".into(),
        },
    )
}

fn new_confirmation(world: &World) -> SignedTransaction {
    world.sign(
        "core",
        TxBody::ConfirmReceivable {
            supplier: world.key("supplier1"),
            amount: Amount(1_000),
            maturity: Timestamp(world.now.0 + 30 * DAY),
            invoice_ref: Hash::digest(b"INV-2"),
        },
    )
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            what: "any kind reads its signer",
            setup: |w, root| {
                let key = StateKey::Participant(w.key("supplier1"));
                (transfer_to_supplier2(w, root), key)
            },
        },
        Row {
            what: "register reads the new participant",
            setup: |w, _| {
                let body = TxBody::RegisterParticipant {
                    key: w.key("outsider"),
                    name: "newcomer".into(),
                    roles: vec![Role::Supplier],
                };
                let key = StateKey::Participant(w.key("outsider"));
                (w.sign("operator", body), key)
            },
        },
        Row {
            what: "deactivate reads the participant",
            setup: |w, _| {
                let body = TxBody::DeactivateParticipant {
                    key: w.key("supplier2"),
                };
                let key = StateKey::Participant(w.key("supplier2"));
                (w.sign("operator", body), key)
            },
        },
        Row {
            what: "grant credit line reads the line",
            setup: |w, _| {
                let body = TxBody::GrantCreditLine {
                    core: w.key("core"),
                    limit: Amount(5),
                };
                let key = StateKey::CreditLine(w.key("core"));
                (w.sign("bank", body), key)
            },
        },
        Row {
            what: "confirm reads the invoice record",
            setup: |w, _| {
                let key = StateKey::Invoice(Hash::digest(b"INV-2"));
                (new_confirmation(w), key)
            },
        },
        Row {
            what: "confirm reads the credit line",
            setup: |w, _| {
                let key = StateKey::CreditLine(w.key("core"));
                (new_confirmation(w), key)
            },
        },
        Row {
            what: "confirm reads the supplier",
            setup: |w, _| {
                let key = StateKey::Participant(w.key("supplier1"));
                (new_confirmation(w), key)
            },
        },
        Row {
            what: "transfer reads the token",
            setup: |w, root| (transfer_to_supplier2(w, root), StateKey::Token(root)),
        },
        Row {
            what: "transfer reads each recipient",
            setup: |w, root| {
                let key = StateKey::Participant(w.key("supplier2"));
                (transfer_to_supplier2(w, root), key)
            },
        },
        Row {
            what: "request financing reads the bank",
            setup: |w, root| {
                let key = StateKey::Participant(w.key("bank"));
                (request_financing(w, root), key)
            },
        },
        Row {
            what: "accept financing reads the token",
            setup: |w, root| {
                let tx = request_financing(w, root);
                w.submit(&tx).expect("request is valid");
                let body = TxBody::AcceptFinancing { token: root };
                (w.sign("bank", body), StateKey::Token(root))
            },
        },
        Row {
            what: "reject financing reads the token",
            setup: |w, root| {
                let tx = request_financing(w, root);
                w.submit(&tx).expect("request is valid");
                let body = TxBody::RejectFinancing { token: root };
                (w.sign("bank", body), StateKey::Token(root))
            },
        },
        Row {
            what: "freeze reads the token",
            setup: |w, root| (freeze(w, root), StateKey::Token(root)),
        },
        Row {
            what: "unfreeze reads the token",
            setup: |w, root| {
                let tx = freeze(w, root);
                w.submit(&tx).expect("freeze is valid");
                let body = TxBody::Unfreeze { token: root };
                (w.sign("auditor", body), StateKey::Token(root))
            },
        },
        Row {
            what: "settle reads the receivable",
            setup: |w, root| (settle(w, root), StateKey::Receivable(root)),
        },
        Row {
            what: "settle reads the credit line",
            setup: |w, root| {
                let core = w.key("core");
                (settle(w, root), StateKey::CreditLine(core))
            },
        },
        Row {
            what: "freeze reads the root's receivable (its frozen count)",
            setup: |w, root| {
                let parts = w
                    .transfer(
                        "supplier1",
                        root,
                        &[("supplier2", 4_000_000), ("supplier1", 6_000_000)],
                    )
                    .expect("split is valid");
                (freeze(w, parts[1]), StateKey::Receivable(root))
            },
        },
        Row {
            what: "unfreeze reads the root's receivable (its frozen count)",
            setup: |w, root| {
                let tx = freeze(w, root);
                w.submit(&tx).expect("freeze is valid");
                let body = TxBody::Unfreeze { token: root };
                (w.sign("auditor", body), StateKey::Receivable(root))
            },
        },
    ]
}

#[test]
fn failed_state_read_is_not_a_refusal() {
    for row in rows() {
        let (mut world, root) = World::funded();
        let (tx, broken) = (row.setup)(&mut world, root);
        assert!(
            world.check(&tx).is_ok(),
            "{}: the transaction is valid on the healthy state",
            row.what
        );
        let failing = FailingState {
            state: &world.state,
            broken: broken.clone(),
        };
        assert_eq!(
            execute(&world.context(), &failing, &tx),
            Err(ExecError::State(injected(&broken))),
            "{}",
            row.what
        );
    }
}

/// A funded world, a valid candidate that reads the root token, and the
/// candidates around it: a valid one before it and a refused one after.
fn candidates() -> (World, TokenId, Vec<SignedTransaction>) {
    let (world, root) = World::funded();
    let first = world.sign(
        "bank",
        TxBody::GrantCreditLine {
            core: world.key("core"),
            limit: Amount(200_000_000),
        },
    );
    let reads_root = transfer_to_supplier2(&world, root);
    let refused = world.sign("outsider", TxBody::Unfreeze { token: root });
    (world, root, vec![first, reads_root, refused])
}

#[test]
fn selecting_over_a_failed_read_refuses_no_candidate() {
    let (world, root, txs) = candidates();
    let verified: Vec<_> = verify_batch(&txs)
        .into_iter()
        .map(|result| result.expect("honestly signed"))
        .collect();
    let (kept, _, refused) = select_transactions(&world.context(), &world.state, &verified)
        .expect("the healthy state reads");
    assert_eq!(kept.len(), 2);
    assert_eq!(refused.len(), 1, "the outsider's transaction is refused");

    let failing = FailingState {
        state: &world.state,
        broken: StateKey::Token(root),
    };
    assert_eq!(
        select_transactions(&world.context(), &failing, &verified).map(|_| ()),
        Err(injected(&StateKey::Token(root)))
    );
}

#[test]
fn a_block_whose_execution_cannot_read_the_state_is_not_invalid() {
    let (world, root, mut txs) = candidates();
    txs.truncate(2);
    execute_block(&world.context(), &world.state, &txs).expect("the block is valid");

    let failing = FailingState {
        state: &world.state,
        broken: StateKey::Token(root),
    };
    let verified: Vec<_> = verify_batch(&txs)
        .into_iter()
        .map(|result| result.expect("honestly signed"))
        .collect();
    let expected = BlockError::StateReadFailed {
        index: 1,
        hash: txs[1].hash(),
        error: Box::new(injected(&StateKey::Token(root))),
    };
    assert_eq!(
        ledger::block::execute_verified_block(&world.context(), &failing, &verified).map(|_| ()),
        Err(expected.clone())
    );
    assert_eq!(
        execute_block(&world.context(), &failing, &txs).map(|_| ()),
        Err(expected)
    );
}
