//! Bounded work per block: no block may write more than
//! `MAX_BLOCK_WRITES` entries, and a proposer never builds one that does.

use crypto::{ChainId, Hash, Keypair};
use ledger::block::{MAX_BLOCK_WRITES, execute_verified_block, select_transactions};
use ledger::{
    Amount, BlockContext, BlockError, MemoryState, Origin, Output, Participant, Role,
    SignedTransaction, StateValue, Timestamp, Token, TokenId, TokenStatus, Transaction, TxBody,
    VerifiedTx, execute_block,
};

const START: u64 = 1_798_761_600_000;

/// `senders` participants, each holding one token, and a transfer from each
/// splitting it into 64 outputs (66 writes: the input, 64 outputs, the
/// sender's nonce).
fn widest_transfers(senders: usize) -> (MemoryState, Vec<SignedTransaction>, BlockContext) {
    let chain = ChainId(Hash::digest(b"budget"));
    let keys: Vec<Keypair> = (0..senders as u32)
        .map(|i| {
            let mut seed = [9u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            Keypair::from_seed(seed)
        })
        .collect();
    let mut state = MemoryState::new();
    for (i, key) in keys.iter().enumerate() {
        let id = TokenId(Hash::digest(&(i as u64).to_le_bytes()));
        state.apply([
            StateValue::Participant(Participant::new(
                key.public(),
                format!("s{i}"),
                [Role::Supplier],
            )),
            StateValue::Token(Token {
                id,
                root_id: id,
                parent_id: None,
                issuer: keys[0].public(),
                holder: key.public(),
                amount: Amount(64_000),
                maturity: Timestamp(START + 86_400_000),
                invoice_ref: id.0,
                status: TokenStatus::Active,
                frozen: false,
                origin: Origin::Confirmed,
                created_at: 0,
            }),
        ]);
    }
    let txs = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let outputs = (0..64)
                .map(|j| Output {
                    recipient: keys[(i + j) % senders].public(),
                    amount: Amount(1_000),
                })
                .collect();
            Transaction {
                chain_id: chain,
                signer: key.public(),
                nonce: 0,
                body: TxBody::Transfer {
                    token: TokenId(Hash::digest(&(i as u64).to_le_bytes())),
                    outputs,
                },
            }
            .sign(key)
        })
        .collect();
    let context = BlockContext {
        chain_id: chain,
        height: 1,
        time: Timestamp(START),
    };
    (state, txs, context)
}

#[test]
fn a_block_that_writes_more_than_the_budget_is_invalid() {
    let fit = MAX_BLOCK_WRITES / 66;
    let (state, txs, context) = widest_transfers(fit + 1);
    execute_block(&context, &state, &txs[..fit]).expect("a block within the budget is valid");
    match execute_block(&context, &state, &txs) {
        Err(BlockError::TooMuchWork {
            index,
            writes,
            limit,
            ..
        }) => {
            assert_eq!(index, fit);
            assert_eq!(writes, (fit + 1) * 66);
            assert_eq!(limit, MAX_BLOCK_WRITES);
        }
        other => panic!("expected TooMuchWork, got {other:?}"),
    }
}

#[test]
fn a_proposer_stops_at_the_budget_and_refuses_nothing_for_it() {
    let fit = MAX_BLOCK_WRITES / 66;
    let (state, txs, context) = widest_transfers(fit + 10);
    let verified: Vec<VerifiedTx<'_>> = txs
        .iter()
        .map(|tx| VerifiedTx::assume_verified(tx, tx.hash()))
        .collect();
    let (kept, execution, refused) =
        select_transactions(&context, &state, &verified).expect("reads");
    assert_eq!(kept.len(), fit);
    assert!(refused.is_empty(), "{refused:?}");
    assert!(execution.writes.len() <= MAX_BLOCK_WRITES);
    // What it built is a valid block on every node.
    execute_verified_block(&context, &state, &kept).expect("valid");
}
