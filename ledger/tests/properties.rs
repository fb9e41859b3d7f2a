//! Property tests over random histories: random grants, confirmations,
//! splits, transfers, financing, settlements and freezes among random
//! participants, packed into blocks, executed as a proposer would (leaving
//! out what fails) and committed to a real store.
//!
//! After every block: per root, unspent plus settled amounts equal the
//! confirmed amount; no token was spent twice; every unspent token's lineage
//! reaches its root; the refused transactions changed nothing; and a fresh
//! store replaying the same blocks reaches the same app hash at every height.

mod common;

use std::collections::BTreeMap;

use common::{DAY, World};
use crypto::{Hash, Keypair};
use ledger::block::select_transactions;
use ledger::store::Store;
use ledger::{
    Amount, Block, BlockContext, BlockHeader, MemoryState, Origin, Output, SignedTransaction,
    StateTree, StateValue, StateView, Timestamp, Token, TokenStatus, Transaction, TxBody,
    execute_block, tx_root, verify_batch,
};
use proptest::prelude::*;

const NAMES: [&str; 8] = [
    "operator",
    "bank",
    "bank2",
    "core",
    "supplier1",
    "supplier2",
    "supplier3",
    "auditor",
];

/// One random step: a kind and some numbers it interprets.
type Op = (u8, u32, u32, u8);

fn tokens(state: &MemoryState) -> Vec<Token> {
    state
        .entries()
        .filter_map(|(_, value)| match value {
            StateValue::Token(token) => Some(token.clone()),
            _ => None,
        })
        .collect()
}

/// Builds the transaction an op describes against the committed state, or
/// `None` when the op has nothing to act on.
fn build(
    world: &World,
    nonces: &mut BTreeMap<&'static str, u64>,
    (kind, a, b, c): Op,
) -> Option<SignedTransaction> {
    let all = tokens(&world.state);
    let pick =
        |n: u32| -> Option<&Token> { (!all.is_empty()).then(|| &all[n as usize % all.len()]) };
    let name_of =
        |key: &crypto::PublicKey| NAMES.iter().copied().find(|name| world.key(name) == *key);
    let (signer, body): (&'static str, TxBody) = match kind % 9 {
        0 => {
            let bank = if c % 2 == 0 { "bank" } else { "bank2" };
            (
                bank,
                TxBody::GrantCreditLine {
                    core: world.key("core"),
                    limit: Amount(u64::from(a) * 100),
                },
            )
        }
        1 => {
            let supplier = ["supplier1", "supplier2", "supplier3"][usize::from(c % 3)];
            let body = TxBody::ConfirmReceivable {
                supplier: world.key(supplier),
                amount: Amount(1 + u64::from(a % 10_000_000)),
                maturity: Timestamp(world.now.0 + (1 + u64::from(b % 60)) * DAY),
                invoice_ref: Hash::digest(&(b % 40).to_le_bytes()),
            };
            ("core", body)
        }
        2 => {
            let token = pick(a)?;
            let holder = name_of(&token.holder)?;
            // Sometimes the wrong signer, to exercise refusals.
            let signer = if c == 7 { "supplier3" } else { holder };
            let parts = 1 + u64::from(c % 3);
            let mut outputs = Vec::new();
            let mut left = token.amount.0;
            for index in 0..parts {
                let amount = if index + 1 == parts {
                    left
                } else {
                    left * u64::from(b % 90 + 5) / 100
                };
                left -= amount;
                let recipient = NAMES[(b as usize + index as usize) % NAMES.len()];
                outputs.push(Output {
                    recipient: world.key(recipient),
                    amount: Amount(amount),
                });
            }
            (
                signer,
                TxBody::Transfer {
                    token: token.id,
                    outputs,
                },
            )
        }
        3 => {
            let token = pick(a)?;
            let bank = if c % 2 == 0 { "bank" } else { "bank2" };
            (
                name_of(&token.holder)?,
                TxBody::RequestFinancing {
                    token: token.id,
                    bank: world.key(bank),
                    rate_bps: b % 2_000,
                },
            )
        }
        4 | 5 => {
            let token = pick(a)?;
            let bank = match token.status {
                TokenStatus::Pending { bank, .. } if c != 7 => name_of(&bank)?,
                _ => "bank2",
            };
            let body = if kind % 9 == 4 {
                TxBody::AcceptFinancing { token: token.id }
            } else {
                TxBody::RejectFinancing { token: token.id }
            };
            (bank, body)
        }
        6 => {
            let token = pick(a)?;
            (
                "core",
                TxBody::Settle {
                    root: token.root_id,
                    payment_ref: format!("PAY-{b}"),
                },
            )
        }
        7 => (
            "auditor",
            TxBody::Freeze {
                token: pick(a)?.id,
                reason: "dispute".into(),
            },
        ),
        _ => ("auditor", TxBody::Unfreeze { token: pick(a)?.id }),
    };
    let key: &Keypair = &world.keys[signer];
    let nonce = nonces.entry(signer).or_insert_with(|| {
        world
            .state
            .participant(&key.public())
            .expect("a memory state reads without failing")
            .map_or(0, |p| p.next_nonce)
    });
    let tx = Transaction {
        chain_id: world.chain,
        signer: key.public(),
        nonce: *nonce,
        body,
    }
    .sign(key);
    *nonce += 1;
    Some(tx)
}

fn check_invariants(state: &MemoryState) -> Result<(), TestCaseError> {
    let all = tokens(state);
    let by_id: BTreeMap<_, _> = all.iter().map(|token| (token.id, token)).collect();
    let mut held_per_root: BTreeMap<_, u64> = BTreeMap::new();
    let mut frozen_per_root: BTreeMap<_, u32> = BTreeMap::new();
    for token in &all {
        if token.frozen {
            prop_assert!(token.is_unspent(), "frozen token {} was spent", token.id);
            *frozen_per_root.entry(token.root_id).or_default() += 1;
        }
        if token.is_unspent() || matches!(token.status, TokenStatus::Settled { .. }) {
            *held_per_root.entry(token.root_id).or_default() += token.amount.0;
            // The lineage reaches the root through existing tokens.
            let mut current: &Token = token;
            let mut steps = 0;
            while let Some(parent) = current.parent_id {
                current = by_id
                    .get(&parent)
                    .ok_or_else(|| TestCaseError::fail(format!("missing ancestor {parent}")))?;
                steps += 1;
                prop_assert!(steps <= all.len(), "lineage loops");
            }
            prop_assert_eq!(current.id, token.root_id);
            prop_assert_eq!(&current.origin, &Origin::Confirmed);
        }
        if let TokenStatus::Spent { .. } = token.status {
            let children: Vec<_> = state
                .children(&token.id)
                .expect("a memory state reads without failing")
                .iter()
                .map(|id| by_id[id].amount.0)
                .collect();
            prop_assert!(
                !children.is_empty(),
                "spent token {} has no children",
                token.id
            );
            prop_assert_eq!(
                children.iter().sum::<u64>(),
                token.amount.0,
                "children of {} do not add up",
                token.id
            );
        }
    }
    for (root, held) in held_per_root {
        let receivable = state
            .receivable(&root)
            .expect("a memory state reads without failing")
            .expect("every root has its receivable");
        prop_assert_eq!(held, receivable.amount.0, "root {} is not conserved", root);
        // Settlement waits on this count instead of walking the tokens.
        prop_assert_eq!(
            receivable.frozen_tokens,
            frozen_per_root.get(&root).copied().unwrap_or(0),
            "frozen count of root {}",
            root
        );
    }
    Ok(())
}

fn run_history(ops: Vec<Op>, block_size: usize) -> Result<(), TestCaseError> {
    let mut world = World::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path()).expect("open store");
    let genesis: Vec<_> = world
        .state
        .entries()
        .filter_map(|(_, value)| match value {
            StateValue::Participant(participant) => Some(participant.clone()),
            _ => None,
        })
        .collect();
    store.init_genesis(world.chain, &genesis).expect("genesis");
    let mut tree = StateTree::new();
    for participant in &genesis {
        let value = StateValue::Participant(participant.clone());
        tree.update(value.tree_key(), value.value_hash());
    }
    prop_assert_eq!(
        tree.root_hash(),
        store.meta().expect("initialised").app_hash
    );

    let proposer = Keypair::from_seed([99; 32]).public();
    let mut parent_hash = Hash::ZERO;
    let mut blocks = Vec::new();
    for (height, chunk) in (1u64..).zip(ops.chunks(block_size)) {
        world.height = height;
        world.now = Timestamp(world.now.0 + DAY * u64::from(chunk[0].3 % 4) + 1_000);
        let mut nonces = BTreeMap::new();
        let candidates: Vec<SignedTransaction> = chunk
            .iter()
            .filter_map(|op| build(&world, &mut nonces, *op))
            .collect();
        let verified: Vec<_> = verify_batch(&candidates)
            .into_iter()
            .map(|r| r.expect("honestly signed"))
            .collect();
        let context = BlockContext {
            chain_id: world.chain,
            height,
            time: world.now,
        };
        let (kept, selected, _refused) = select_transactions(&context, &world.state, &verified)
            .expect("a memory state reads without failing");
        let txs: Vec<SignedTransaction> = kept.iter().map(|tx| tx.tx().clone()).collect();

        // The refused transactions changed nothing: the kept ones alone,
        // executed strictly, write exactly the same values.
        let strict =
            execute_block(&context, &world.state, &txs).expect("kept transactions are all valid");
        prop_assert_eq!(&strict.writes, &selected.writes);

        for value in strict.writes.iter() {
            if let StateValue::Token(token) = value
                && let TokenStatus::Spent { .. } = token.status
                && world
                    .state
                    .token(&token.id)
                    .expect("a memory state reads without failing")
                    .is_some_and(|before| matches!(before.status, TokenStatus::Spent { .. }))
            {
                return Err(TestCaseError::fail(format!(
                    "token {} spent twice",
                    token.id
                )));
            }
        }

        for value in strict.writes.iter() {
            tree.update(value.tree_key(), value.value_hash());
        }
        let app_hash = tree.root_hash();
        let header = BlockHeader {
            chain_id: world.chain,
            height,
            time: world.now,
            parent_hash,
            proposer,
            tx_root: tx_root(&txs),
            app_hash,
        };
        parent_hash = header.hash();
        let block = Block { header, txs };
        world.state.apply(strict.writes.iter().cloned());
        // Every entry keeps one place in the tree (a token's height never
        // changes): the tree has exactly one leaf per state entry.
        prop_assert_eq!(tree.len(), world.state.len());
        store
            .commit_execution(&block, b"certificate", strict)
            .expect("commit");
        check_invariants(&world.state)?;
        blocks.push(block);
    }

    // A fresh store replaying the same blocks reaches the same app hashes.
    let replay_dir = tempfile::tempdir().expect("temporary directory");
    let mut replay = Store::open(replay_dir.path()).expect("open replay store");
    replay.init_genesis(world.chain, &genesis).expect("genesis");
    for block in &blocks {
        let execution = execute_block(&block.header.context(), &replay, &block.txs)
            .expect("replayed block is valid");
        replay
            .commit_execution(block, b"certificate", execution)
            .expect("replayed block commits");
        prop_assert_eq!(
            replay.meta().expect("initialised").app_hash,
            block.header.app_hash
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_conserve_value_and_replay_to_the_same_app_hash(
        ops in prop::collection::vec((0u8..9, any::<u32>(), any::<u32>(), 0u8..8), 1..80),
        block_size in 1usize..8,
    ) {
        run_history(ops, block_size)?;
    }
}
