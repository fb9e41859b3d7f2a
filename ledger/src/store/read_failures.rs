//! Execution over a store whose disk holds a value that does not decode:
//! the store returns a state error through every path that executes (one
//! transaction, a proposer's selection, a block), never panics, and never
//! lets the failure pass for a refused transaction or an invalid block.
//!
//! In the store's module because it writes garbage through the store's own
//! RocksDB handle while the store is open, as a failing disk would leave it.

use crypto::{ChainId, Hash, Keypair};

use super::{Store, schema};
use crate::amount::{Amount, Timestamp};
use crate::block::{BlockError, execute_block, select_transactions};
use crate::error::ExecError;
use crate::execute::{BlockContext, execute, verify};
use crate::participant::{Participant, Role};
use crate::state::StateKey;
use crate::transaction::{SignedTransaction, Transaction, TxBody};

const CHAIN: ChainId = ChainId(Hash([7; 32]));

fn core() -> Keypair {
    Keypair::from_seed([1; 32])
}

fn supplier() -> Keypair {
    Keypair::from_seed([2; 32])
}

fn context() -> BlockContext {
    BlockContext {
        chain_id: CHAIN,
        height: 1,
        time: Timestamp(1_000),
    }
}

/// The core enterprise confirms a receivable to the supplier: it reads the
/// core, the supplier, the invoice record (absent) and the credit line.
fn confirmation() -> SignedTransaction {
    Transaction {
        chain_id: CHAIN,
        signer: core().public(),
        nonce: 0,
        body: TxBody::ConfirmReceivable {
            supplier: supplier().public(),
            amount: Amount(1),
            // Already due at the block time (1,000): refused, but only by a
            // rule checked after the reads (a zero amount, which this test
            // used before, is now a stateless rule checked before any).
            maturity: Timestamp(500),
            invoice_ref: Hash::digest(b"INV-1"),
        },
    }
    .sign(&core())
}

/// A store holding the genesis participants, reopened so that nothing is
/// in its cache: every read goes to RocksDB.
fn reopened_store(dir: &std::path::Path) -> Store {
    let participants = [
        Participant::new(core().public(), "core", [Role::CoreEnterprise]),
        Participant::new(supplier().public(), "supplier", [Role::Supplier]),
    ];
    let mut store = Store::open(dir).expect("open store");
    store.init_genesis(CHAIN, &participants).expect("genesis");
    drop(store);
    Store::open(dir).expect("reopen store")
}

fn write_garbage(store: &Store, key: &StateKey) {
    let (name, _, raw_key) = schema::state_location(key);
    store
        .db
        .put_cf(store.cf(name), raw_key, b"\xff\xff not a borsh value")
        .expect("write garbage");
}

#[test]
fn a_corrupt_value_on_disk_makes_execution_fail_with_a_state_error() {
    // The confirmation is refused (maturity not ahead) on a healthy store: a rule
    // checked after every read but the invoice's and the credit line's, so
    // the rows below show a failed read winning over a refusal.
    let rows = [
        (
            "a stored participant",
            StateKey::Participant(core().public()),
        ),
        ("the supplier", StateKey::Participant(supplier().public())),
    ];
    for (what, key) in rows {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = reopened_store(dir.path());
        let tx = confirmation();
        assert!(
            matches!(
                execute(&context(), &store, &tx),
                Err(ExecError::Refused(
                    crate::TxError::MaturityNotInFuture { .. }
                ))
            ),
            "{what}: refused for its maturity on a healthy store"
        );
        write_garbage(&store, &key);

        let error = match execute(&context(), &store, &tx) {
            Err(ExecError::State(error)) => error,
            other => panic!("{what}: expected a state error, got {other:?}"),
        };
        assert_eq!(error.key, key, "{what}");
        assert!(error.reason.contains("corrupt"), "{what}: {error}");

        let verified = [verify(&tx).expect("signed")];
        assert_eq!(
            select_transactions(&context(), &store, &verified).map(|_| ()),
            Err(error.clone()),
            "{what}: the proposer refuses nothing"
        );
        match execute_block(&context(), &store, std::slice::from_ref(&tx)) {
            Err(BlockError::StateReadFailed {
                index: 0,
                error: got,
                ..
            }) => {
                assert_eq!(*got, error, "{what}")
            }
            other => panic!("{what}: expected StateReadFailed, got {other:?}"),
        }
    }
}

#[test]
fn garbage_where_no_value_was_is_a_state_error_not_an_absent_entry() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = reopened_store(dir.path());
    let invoice = StateKey::Invoice(Hash::digest(b"INV-1"));
    write_garbage(&store, &invoice);
    let tx = Transaction {
        chain_id: CHAIN,
        signer: core().public(),
        nonce: 0,
        body: TxBody::ConfirmReceivable {
            supplier: supplier().public(),
            amount: Amount(1),
            maturity: Timestamp(2_000),
            invoice_ref: Hash::digest(b"INV-1"),
        },
    }
    .sign(&core());
    match execute_block(&context(), &store, std::slice::from_ref(&tx)) {
        Err(BlockError::StateReadFailed {
            index: 0, error, ..
        }) => assert_eq!(error.key, invoice),
        other => panic!("expected StateReadFailed, got {other:?}"),
    }
}
