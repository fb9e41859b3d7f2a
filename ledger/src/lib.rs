//! The scfledger ledger: receivable tokens, the transactions that move them,
//! the deterministic rules that accept or refuse each transaction, blocks,
//! the authenticated state behind the app hash, and the RocksDB store.
//!
//! The validator set is part of the state too ([`governance`]): the set in
//! force at every height, and the proposals that change it.
//!
//! The rules ([`execute`]) are pure functions of the block context, the state
//! and the transaction. Only [`store`] touches the disk. Consensus lives in
//! its own crate; a stored block carries its commit certificate as bytes.

pub mod amount;
pub mod block;
pub mod error;
pub mod event;
pub mod execute;
pub mod governance;
pub mod participant;
pub mod state;
pub mod state_tree;
pub mod store;
pub mod token;
pub mod transaction;

pub use amount::{Amount, Timestamp};
pub use block::{Block, BlockError, BlockExecution, BlockHeader, execute_block, tx_root};
pub use error::{ExecError, StateError, TxError};
pub use event::{Cursor, Event, EventKind, TransferredOutput, derive_block_events};
pub use execute::{
    BlockContext, VerifiedTx, check_signer_role, check_stateless, execute, execute_verified,
    signing_participant, verify, verify_batch,
};
pub use governance::{
    GenesisState, GenesisValidator, PeerId, ValidatorChange, ValidatorEpoch, ValidatorInfo,
    ValidatorProposal,
};
pub use participant::{KeyBinding, KeyRecovery, Participant, Role};
pub use state::{Changes, MemoryState, StateKey, StateValue, StateView};
pub use state_tree::{StateProof, StateTree};
pub use token::{
    CreditLine, InvoiceRecord, Origin, Receivable, Settlement, Token, TokenId, TokenStatus,
};
pub use transaction::{Output, SignedTransaction, Transaction, TxBody, TxHash};
