//! Why a transaction was refused, and why executing one could not finish.
//!
//! A refusal ([`TxError`]) names the broken rule and carries the numbers
//! involved, so a client can say exactly what to fix. A failed read of the
//! state ([`StateError`]) is no verdict on the transaction at all: it is the
//! node's own storage failing, and [`ExecError`] keeps the two apart so that
//! no caller can mistake one for the other.

use crypto::{ChainId, Hash, PublicKey};

use crate::amount::{Amount, Timestamp};
use crate::participant::Role;
use crate::state::StateKey;
use crate::token::TokenId;

/// A state entry could not be read: the storage under a [`StateView`]
/// failed (a disk error) or held bytes that do not decode (corruption).
///
/// [`StateView`]: crate::state::StateView
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read state entry {key:?}: {reason}")]
pub struct StateError {
    /// The entry being read.
    pub key: StateKey,
    /// What the storage reported, as text (the store's own error type is
    /// not `Clone` or comparable, and the rules never look inside it).
    pub reason: String,
}

/// Why executing a transaction produced no changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The transaction breaks a rule: a verdict, the same on every node.
    #[error(transparent)]
    Refused(#[from] TxError),
    /// The state could not be read, so there is no verdict: the caller must
    /// not treat the transaction (or its block) as invalid.
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum TxError {
    #[error("transaction is for chain {got}, this chain is {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("signature does not verify for signer {signer}")]
    BadSignature { signer: PublicKey },
    #[error("nonce {got} was already used by {signer}; the next nonce is {expected}")]
    Replay {
        signer: PublicKey,
        expected: u64,
        got: u64,
    },
    #[error(
        "nonce {got} is ahead of {signer}'s next nonce {expected}; submit nonce {expected} first"
    )]
    NonceTooHigh {
        signer: PublicKey,
        expected: u64,
        got: u64,
    },
    #[error("the transaction is {len} bytes encoded; the limit is {limit}")]
    TxTooLarge { len: usize, limit: usize },
    #[error("{key} is not a registered participant")]
    UnknownParticipant { key: PublicKey },
    #[error("participant {key} has been deactivated")]
    ParticipantInactive { key: PublicKey },
    #[error("{key} lacks the {needed} role")]
    MissingRole { key: PublicKey, needed: Role },
    #[error("{key} is already registered")]
    ParticipantExists { key: PublicKey },
    #[error("a participant needs at least one role")]
    NoRoles,
    #[error("{what} is {len} bytes; the limit is {limit}")]
    TextTooLong {
        what: &'static str,
        len: usize,
        limit: usize,
    },
    #[error("{what} must not be empty")]
    EmptyText { what: &'static str },
    #[error("amount must be greater than zero")]
    ZeroAmount,
    #[error("amounts overflow the 64-bit range")]
    AmountOverflow,
    #[error(
        "the credit line of {core} is {limit}, {outstanding} is outstanding, {requested} more was requested"
    )]
    CreditLineExceeded {
        core: PublicKey,
        limit: Amount,
        outstanding: Amount,
        requested: Amount,
    },
    #[error("maturity {maturity} is not after the block time {now}")]
    MaturityNotInFuture { maturity: Timestamp, now: Timestamp },
    #[error("invoice {invoice_ref} was already confirmed as token {token}")]
    InvoiceAlreadyConfirmed { invoice_ref: Hash, token: TokenId },
    #[error("token {token} does not exist")]
    UnknownToken { token: TokenId },
    #[error("token {token} is held by {holder}, not by {signer}")]
    NotHolder {
        token: TokenId,
        holder: PublicKey,
        signer: PublicKey,
    },
    #[error("token {token} matured at {maturity}; the block time is {now}")]
    Matured {
        token: TokenId,
        maturity: Timestamp,
        now: Timestamp,
    },
    #[error("token {token} is frozen by an auditor")]
    TokenFrozen { token: TokenId },
    #[error("token {token} is waiting for a financing decision")]
    TokenPending { token: TokenId },
    #[error("token {token} was already spent")]
    TokenSpent { token: TokenId },
    #[error("token {token} was already settled")]
    TokenSettled { token: TokenId },
    #[error("a transfer needs between 1 and {limit} outputs, got {got}")]
    OutputCount { got: usize, limit: usize },
    #[error("outputs sum to {outputs} but the token holds {input}")]
    AmountsNotConserved { input: Amount, outputs: Amount },
    #[error("token {token} is not offered for financing")]
    NotPending { token: TokenId },
    #[error("token {token} was offered to bank {bank}, not to {signer}")]
    NotTheFinancingBank {
        token: TokenId,
        bank: PublicKey,
        signer: PublicKey,
    },
    #[error(
        "a discount of {rate_bps} basis points over {days} days leaves nothing to pay (price would be zero or less)"
    )]
    DiscountTooLarge { rate_bps: u32, days: u64 },
    #[error("token {token} is not a root confirmation; settle its root {root}")]
    NotRoot { token: TokenId, root: TokenId },
    #[error("only the issuer {issuer} may settle, not {signer}")]
    NotIssuer {
        issuer: PublicKey,
        signer: PublicKey,
    },
    #[error("the receivable matures at {maturity}; the block time is {now}")]
    NotMatured { maturity: Timestamp, now: Timestamp },
    #[error("receivable {root} was already settled")]
    AlreadySettled { root: TokenId },
    #[error("receivable {root} has {frozen} token(s) frozen by an auditor")]
    DisputedTokens { root: TokenId, frozen: u32 },
    #[error("token {token} is already frozen")]
    AlreadyFrozen { token: TokenId },
    #[error("token {token} is not frozen")]
    NotFrozen { token: TokenId },
}
