//! Blocks: the header every validator signs off on, the transactions, the
//! Merkle root over them, and executing a whole block against a state.
//!
//! A block is valid only if every transaction in it is: the proposer leaves
//! out what fails ([`select_transactions`]), validators refuse a block with
//! any failing transaction ([`execute_block`]). A state read that fails is
//! kept apart from both: it is no verdict on a transaction or a block, so
//! it leaves nothing out and refuses nothing; it stops execution.

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{ChainId, Hash, PublicKey};

use crate::amount::Timestamp;
use crate::error::{ExecError, StateError, TxError};
use crate::execute::{BlockContext, VerifiedTx, execute_verified, verify_batch};
use crate::state::{Overlay, StateValue, StateView};
use crate::transaction::{DecodeError, SignedTransaction, TxHash, decode_limited};

/// Largest encoded block accepted when decoding untrusted bytes.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024 * 1024;

/// The most state entries one block may write, counted per transaction
/// (a transfer writes its input, each output and its signer's nonce; a
/// settlement writes its receivable, the credit line and the nonce). Work
/// per block follows writes: the rules execute in time proportional to them
/// and the app hash updates one tree path per write. 65,536 writes execute
/// in about 0.3 s on a 2-core machine (`cargo bench --bench settle`), so no
/// valid block, whatever its transactions, takes longer; 5,000 two-output
/// transfers (20,000 writes) fit well within it. A proposer stops adding
/// transactions at the budget ([`select_transactions`]); a block over it is
/// invalid ([`BlockError::TooMuchWork`]) on every node alike.
pub const MAX_BLOCK_WRITES: usize = 65_536;

/// What validators agree on. Its hash is the block hash.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    pub height: u64,
    pub time: Timestamp,
    /// Hash of the previous block's header; zero for height 1.
    pub parent_hash: Hash,
    pub proposer: PublicKey,
    /// [`tx_root`] of the transactions.
    pub tx_root: Hash,
    /// The state tree's root after executing this block.
    pub app_hash: Hash,
}

impl BlockHeader {
    pub fn hash(&self) -> Hash {
        Hash::of(self)
    }

    pub fn context(&self) -> BlockContext {
        BlockContext {
            chain_id: self.chain_id,
            height: self.height,
            time: self.time,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("writing into a Vec cannot fail")
    }

    /// Decodes untrusted bytes, refusing more than [`MAX_BLOCK_BYTES`]
    /// before decoding anything.
    pub fn from_bytes(bytes: &[u8]) -> Result<Block, DecodeError> {
        decode_limited(bytes, MAX_BLOCK_BYTES)
    }
}

/// Merkle root over the transactions, committing to each transaction and
/// its signature. Leaf = SHA-256(`0x00` ‖ tx hash ‖ signature), node =
/// SHA-256(`0x01` ‖ left ‖ right); an odd node at the end of a level moves up
/// unchanged; no transactions give 32 zero bytes.
pub fn tx_root(txs: &[SignedTransaction]) -> Hash {
    let hashes: Vec<TxHash> = txs.iter().map(SignedTransaction::hash).collect();
    tx_root_with_hashes(txs, &hashes)
}

/// [`tx_root`] for a caller that already has the transaction hashes.
pub fn tx_root_with_hashes(txs: &[SignedTransaction], hashes: &[TxHash]) -> Hash {
    let mut level: Vec<Hash> = txs
        .iter()
        .zip(hashes)
        .map(|(tx, hash)| Hash::digest_parts(&[&[0x00], hash.0.as_bytes(), &tx.signature.0]))
        .collect();
    if level.is_empty() {
        return Hash::ZERO;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => Hash::digest_parts(&[&[0x01], left.as_bytes(), right.as_bytes()]),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    level[0]
}

/// Why a block cannot be executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The block is invalid: a verdict, the same on every node.
    #[error("transaction {index} ({hash}) is invalid: {error}")]
    InvalidTransaction {
        index: usize,
        hash: TxHash,
        /// Boxed: a rule error carries keys and amounts, and blocks are
        /// usually valid.
        error: Box<TxError>,
    },
    /// Executing the block could not read the state it needed: no verdict
    /// on the block, but a fault of this node's storage.
    #[error("executing transaction {index} ({hash}) could not read the state: {error}")]
    StateReadFailed {
        index: usize,
        hash: TxHash,
        /// Boxed, as above: a failure is rare.
        error: Box<StateError>,
    },
    /// The block writes more entries than [`MAX_BLOCK_WRITES`]: a verdict,
    /// the same on every node.
    #[error(
        "transaction {index} ({hash}) takes the block to {writes} writes; a block may write {limit}"
    )]
    TooMuchWork {
        index: usize,
        hash: TxHash,
        writes: usize,
        limit: usize,
    },
}

/// The outcome of executing a block: every value it writes (each key once,
/// in the order the keys were first written), and each transaction's hash
/// in block order. Only execution makes one (the context is private), so a
/// store can count on committing what executing a block's transactions
/// gave, and on getting it again by executing them.
#[derive(Debug, Clone)]
pub struct BlockExecution {
    pub writes: Vec<StateValue>,
    pub tx_hashes: Vec<TxHash>,
    context: BlockContext,
}

impl BlockExecution {
    /// The block context the transactions were executed in.
    pub fn context(&self) -> &BlockContext {
        &self.context
    }
}

/// Verifies every signature (batched) and executes every transaction in
/// order; any invalid transaction makes the whole block invalid.
pub fn execute_block(
    context: &BlockContext,
    state: &impl StateView,
    txs: &[SignedTransaction],
) -> Result<BlockExecution, BlockError> {
    let mut verified = Vec::with_capacity(txs.len());
    for (index, result) in verify_batch(txs).into_iter().enumerate() {
        match result {
            Ok(tx) => verified.push(tx),
            Err(error) => {
                return Err(BlockError::InvalidTransaction {
                    index,
                    hash: txs[index].hash(),
                    error: Box::new(error),
                });
            }
        }
    }
    execute_verified_block(context, state, &verified)
}

/// Executes transactions whose signatures were already checked.
pub fn execute_verified_block(
    context: &BlockContext,
    state: &impl StateView,
    txs: &[VerifiedTx<'_>],
) -> Result<BlockExecution, BlockError> {
    let mut overlay = Overlay::new(state);
    let mut writes = 0usize;
    for (index, tx) in txs.iter().enumerate() {
        let changes = execute_verified(context, &overlay, *tx).map_err(|error| match error {
            ExecError::Refused(error) => BlockError::InvalidTransaction {
                index,
                hash: tx.hash(),
                error: Box::new(error),
            },
            ExecError::State(error) => BlockError::StateReadFailed {
                index,
                hash: tx.hash(),
                error: Box::new(error),
            },
        })?;
        writes += changes.len();
        if writes > MAX_BLOCK_WRITES {
            return Err(BlockError::TooMuchWork {
                index,
                hash: tx.hash(),
                writes,
                limit: MAX_BLOCK_WRITES,
            });
        }
        overlay.apply(changes);
    }
    Ok(BlockExecution {
        writes: overlay.into_writes(),
        tx_hashes: txs.iter().map(VerifiedTx::hash).collect(),
        context: *context,
    })
}

/// What [`select_transactions`] chose: the transactions kept, in order,
/// their execution, and each refused candidate with the rule it breaks.
pub type Selection<'a> = (Vec<VerifiedTx<'a>>, BlockExecution, Vec<(TxHash, TxError)>);

/// For a proposer: executes candidates in order, keeping those that succeed
/// and reporting those refused with their reason. A candidate that would
/// take the block past [`MAX_BLOCK_WRITES`] ends the selection: it and the
/// candidates after it wait for a later block.
///
/// A failed state read ends the selection with that error, refusing no
/// candidate: a transaction is refused only for a rule it breaks, never
/// because this node could not read its disk.
pub fn select_transactions<'a>(
    context: &BlockContext,
    state: &impl StateView,
    candidates: &[VerifiedTx<'a>],
) -> Result<Selection<'a>, StateError> {
    let mut overlay = Overlay::new(state);
    let mut kept = Vec::with_capacity(candidates.len());
    let mut refused = Vec::new();
    let mut writes = 0usize;
    for tx in candidates {
        match execute_verified(context, &overlay, *tx) {
            // The block is full. Stopping here, rather than trying the
            // candidates after it, refuses none of its sender's later
            // transactions for a nonce gap this block would have made.
            Ok(changes) if writes + changes.len() > MAX_BLOCK_WRITES => break,
            Ok(changes) => {
                writes += changes.len();
                overlay.apply(changes);
                kept.push(*tx);
            }
            Err(ExecError::Refused(error)) => refused.push((tx.hash(), error)),
            Err(ExecError::State(error)) => return Err(error),
        }
    }
    let tx_hashes = kept.iter().map(VerifiedTx::hash).collect();
    Ok((
        kept,
        BlockExecution {
            writes: overlay.into_writes(),
            tx_hashes,
            context: *context,
        },
        refused,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::{Transaction, TxBody};
    use crypto::Keypair;

    fn tx(nonce: u64) -> SignedTransaction {
        let key = Keypair::from_seed([4; 32]);
        Transaction {
            chain_id: ChainId(Hash::ZERO),
            signer: key.public(),
            nonce,
            body: TxBody::DeactivateParticipant { key: key.public() },
        }
        .sign(&key)
    }

    #[test]
    fn tx_root_commits_to_order_and_signatures() {
        let txs: Vec<SignedTransaction> = (0..5).map(tx).collect();
        let root = tx_root(&txs);
        let mut swapped = txs.clone();
        swapped.swap(1, 2);
        assert_ne!(tx_root(&swapped), root);
        let mut resigned = txs.clone();
        resigned[4].signature.0[0] ^= 1;
        assert_ne!(tx_root(&resigned), root);
        assert_ne!(tx_root(&txs[..4]), root);
        assert_eq!(tx_root(&[]), Hash::ZERO);
    }

    #[test]
    fn block_decoding_rejects_garbage_without_panicking() {
        let block = Block {
            header: BlockHeader {
                chain_id: ChainId(Hash::ZERO),
                height: 1,
                time: Timestamp(5),
                parent_hash: Hash::ZERO,
                proposer: Keypair::from_seed([1; 32]).public(),
                tx_root: Hash::ZERO,
                app_hash: Hash::ZERO,
            },
            txs: (0..3).map(tx).collect(),
        };
        let bytes = block.to_bytes();
        assert_eq!(Block::from_bytes(&bytes).unwrap(), block);
        for len in (0..bytes.len()).step_by(7) {
            assert!(Block::from_bytes(&bytes[..len]).is_err());
        }
    }
}
