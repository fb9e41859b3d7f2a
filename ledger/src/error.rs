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
use crate::transaction::TxHash;

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

    // Participants' keys.
    #[error(
        "key {key} is no longer the signing key of participant {participant}: it was rotated or recovered; sign with the participant's current key"
    )]
    KeyReplaced {
        key: PublicKey,
        participant: PublicKey,
    },
    #[error(
        "{key} is a signing key of participant {participant}; name a participant by its identity (the key it was registered with), {participant}"
    )]
    NotAnIdentity {
        key: PublicKey,
        participant: PublicKey,
    },
    #[error(
        "key {key} already belongs (or belonged) to a participant or a validator; generate a fresh key"
    )]
    KeyInUse { key: PublicKey },
    #[error("{what} {key} is not a usable ed25519 public key: {reason}")]
    InvalidKey {
        what: &'static str,
        key: PublicKey,
        reason: &'static str,
    },
    #[error("the new key {key} is the key it would replace")]
    SameKey { key: PublicKey },
    #[error(
        "{key} is a validator's account: it changes only through validator-set proposals (remove, rotate_key)"
    )]
    ManagedByGovernance { key: PublicKey },
    #[error("the {role} role is granted by adopting a validator-set change, not by registration")]
    RoleGrantedByGovernance { role: Role },
    #[error(
        "no key recovery is waiting for participant {participant}; an operator must request one first"
    )]
    NoRecoveryRequested { participant: PublicKey },
    #[error(
        "the recovery of participant {participant} was approved at height {height} already; request a new one to change its key again"
    )]
    RecoveryAlreadyApproved { participant: PublicKey, height: u64 },
    #[error(
        "the recovery of participant {participant} asks for key {requested}, not {approved}; approve exactly what the operator requested"
    )]
    RecoveryKeyMismatch {
        participant: PublicKey,
        requested: PublicKey,
        approved: PublicKey,
    },
    #[error(
        "{key} requested this key recovery and may not approve it too; another participant with the auditor role must"
    )]
    RecoveryNeedsSecondParticipant { key: PublicKey },

    // The validator set.
    #[error(
        "this chain's state records no validator set (its genesis state has none), so transactions cannot change it"
    )]
    NoValidatorSetRecorded,
    #[error(
        "{key} is not a validator of the set in force at height {height}; only its validators may propose or approve validator-set changes"
    )]
    NotAValidator { key: PublicKey, height: u64 },
    #[error(
        "a proposal made at height {height} must expire after it and at most at height {max}, not at {expires_at}"
    )]
    ExpiryOutOfRange {
        expires_at: u64,
        height: u64,
        max: u64,
    },
    #[error(
        "validator {validator} already has {open} open proposals, the most allowed is {limit}; wait until one is adopted or expires"
    )]
    TooManyOpenProposals {
        validator: PublicKey,
        open: usize,
        limit: usize,
    },
    #[error("{limit} proposals are open, the most allowed; wait until one is adopted or expires")]
    OpenProposalsFull { limit: usize },
    #[error("there is no validator-set proposal {proposal}")]
    UnknownProposal { proposal: TxHash },
    #[error("proposal {proposal} was adopted at height {at} already")]
    ProposalAlreadyAdopted { proposal: TxHash, at: u64 },
    #[error(
        "proposal {proposal} expired at height {expires_at} (this block is {height}); propose it again"
    )]
    ProposalExpired {
        proposal: TxHash,
        expires_at: u64,
        height: u64,
    },
    #[error("validator {validator} has already approved proposal {proposal}")]
    AlreadyApproved {
        proposal: TxHash,
        validator: PublicKey,
    },
    #[error("a validator set may have at most {limit} validators")]
    TooManyValidators { limit: usize },
    #[error("{key} is already the consensus key of validator {name:?}")]
    AlreadyValidator { key: PublicKey, name: String },
    #[error("peer id {peer_id} is already validator {validator:?}'s")]
    DuplicatePeerId { peer_id: String, validator: String },
    #[error("a validator is already named {name:?}")]
    DuplicateValidatorName { name: String },
    #[error("{key} is not the consensus key of any validator of the newest validator set")]
    UnknownValidator { key: PublicKey },
    #[error(
        "the change would leave {remaining} validators; at least {min} are needed to tolerate a faulty one (n = 3f + 1)"
    )]
    TooFewValidators { remaining: usize, min: usize },
    #[error(
        "the change takes {removed} of the total voting power {total} away at once; less than a third may go in one change (lower the power in steps first)"
    )]
    TooMuchPowerRemoved { removed: u64, total: u64 },
    #[error("validator {key} already has voting power {power}")]
    PowerUnchanged { key: PublicKey, power: u64 },
    #[error("the total voting power would be {total}, more than the maximum {max}")]
    VotingPowerOverflow { total: u128, max: u64 },
    #[error("a validator's voting power must be at least 1")]
    ZeroVotingPower,
    #[error(
        "address {address:?} is not a multiaddr like \"/ip4/10.0.0.5/tcp/26656\" (starts with /, no spaces, at most 256 bytes)"
    )]
    InvalidAddress { address: String },
}
