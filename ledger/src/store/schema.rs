//! How the ledger is laid out in RocksDB: one column family per kind of
//! record, and the byte encoding of their keys.
//!
//! Heights are big-endian so RocksDB's bytewise order is height order.
//! Holder index keys concatenate holder ‖ token so a prefix scan finds all
//! of a holder's tokens. A token's children need no index: they are the
//! outputs of the transaction that spent it (`StateView::children`).
//!
//! State values are stored as the borsh encoding of the inner record; the
//! state tree's value hash is SHA-256 of `variant tag ‖ stored bytes`, which
//! equals `StateValue::value_hash` (checked by a test), so the tree can be
//! rebuilt from raw bytes without decoding anything.

use crypto::{Hash, PublicKey};

use crate::state::{StateKey, token_tree_key};
use crate::token::{Token, TokenId};
use crate::transaction::TxHash;

pub const BLOCKS: &str = "blocks";
pub const CERTIFICATES: &str = "certificates";
pub const TX_INDEX: &str = "tx_index";
pub const TOKENS: &str = "tokens";
pub const HOLDER_INDEX: &str = "holder_index";
pub const PARTICIPANTS: &str = "participants";
pub const CREDIT_LINES: &str = "credit_lines";
pub const INVOICES: &str = "invoices";
pub const RECEIVABLES: &str = "receivables";
pub const METADATA: &str = "metadata";
/// Derived events by cursor (`event::Cursor::to_key`); see `store::events`.
pub const EVENTS: &str = "events";
/// Keys participants rotated to (`participant::KeyBinding`).
pub const KEY_BINDINGS: &str = "key_bindings";
/// Lost-key recoveries by participant.
pub const KEY_RECOVERIES: &str = "key_recoveries";
/// Validator sets by epoch number (big-endian in the key's last 8 bytes).
pub const VALIDATOR_EPOCHS: &str = "validator_epochs";
/// Validator-set proposals by the hash of the proposing transaction.
pub const VALIDATOR_PROPOSALS: &str = "validator_proposals";
/// The one governance summary (key: 32 zero bytes).
pub const GOVERNANCE: &str = "governance";

/// Every column family this version uses. A store written by an older one
/// may also hold `children` (a token's children, now derived) and `deltas`
/// (each block's changes until materialized, now executed again from the
/// block); they are opened and left alone.
pub const ALL: [&str; 16] = [
    BLOCKS,
    CERTIFICATES,
    TX_INDEX,
    TOKENS,
    HOLDER_INDEX,
    PARTICIPANTS,
    CREDIT_LINES,
    INVOICES,
    RECEIVABLES,
    METADATA,
    EVENTS,
    KEY_BINDINGS,
    KEY_RECOVERIES,
    VALIDATOR_EPOCHS,
    VALIDATOR_PROPOSALS,
    GOVERNANCE,
];

/// The state column families with their `StateKey`/`StateValue` variant tag.
pub const STATE: [(&str, u8); 10] = [
    (PARTICIPANTS, 0),
    (TOKENS, TOKEN_TAG),
    (CREDIT_LINES, 2),
    (INVOICES, 3),
    (RECEIVABLES, 4),
    (KEY_BINDINGS, 5),
    (KEY_RECOVERIES, 6),
    (VALIDATOR_EPOCHS, 7),
    (VALIDATOR_PROPOSALS, 8),
    (GOVERNANCE, 9),
];

/// The metadata key under which [`super::ChainMeta`] is stored.
pub const META_KEY: &[u8] = b"chain";
/// The metadata key of the height the column families hold (big-endian
/// u64), written by each materialization.
pub const MATERIALIZED_KEY: &[u8] = b"materialized";

/// The metadata key of the height up to which events are derived.
pub const EVENTS_DERIVED_KEY: &[u8] = b"events_derived";
/// The metadata key of the height below which events were pruned.
pub const EVENTS_PRUNED_KEY: &[u8] = b"events_pruned_below";

/// The state column family of a `StateValue` variant tag.
pub fn state_name(tag: u8) -> Option<&'static str> {
    STATE
        .iter()
        .find(|(_, known)| *known == tag)
        .map(|(name, _)| *name)
}

pub fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

/// Column family, variant tag and raw key of a state entry.
pub fn state_location(key: &StateKey) -> (&'static str, u8, [u8; 32]) {
    match key {
        StateKey::Participant(PublicKey(bytes)) => (PARTICIPANTS, 0, *bytes),
        StateKey::Token(TokenId(Hash(bytes))) => (TOKENS, 1, *bytes),
        StateKey::CreditLine(PublicKey(bytes)) => (CREDIT_LINES, 2, *bytes),
        StateKey::Invoice(Hash(bytes)) => (INVOICES, 3, *bytes),
        StateKey::Receivable(TokenId(Hash(bytes))) => (RECEIVABLES, 4, *bytes),
        StateKey::KeyBinding(PublicKey(bytes)) => (KEY_BINDINGS, 5, *bytes),
        StateKey::KeyRecovery(PublicKey(bytes)) => (KEY_RECOVERIES, 6, *bytes),
        StateKey::ValidatorEpoch(number) => (VALIDATOR_EPOCHS, 7, number.to_key_bytes()),
        StateKey::ValidatorProposal(TxHash(Hash(bytes))) => (VALIDATOR_PROPOSALS, 8, *bytes),
        StateKey::GovernanceSummary(_) => (GOVERNANCE, 9, [0; 32]),
    }
}

/// The variant tag of tokens in [`STATE`].
pub const TOKEN_TAG: u8 = 1;

/// Tree key of a state entry from its tag, raw key and stored bytes (equals
/// `StateValue::tree_key`: a token's place depends on its height, read from
/// its record). Fails only if a token's record does not decode.
pub fn tree_key(tag: u8, raw_key: &[u8], stored: &[u8]) -> Result<Hash, borsh::io::Error> {
    let hashed = Hash::digest_parts(&[&[tag], raw_key]);
    if tag != TOKEN_TAG {
        return Ok(hashed);
    }
    let token: Token = borsh::from_slice(stored)?;
    Ok(token_tree_key(&hashed, token.created_at))
}

/// Value hash of a state entry from its tag and stored bytes (equals
/// `StateValue::value_hash`).
pub fn value_hash(tag: u8, stored: &[u8]) -> Hash {
    Hash::digest_parts(&[&[tag], stored])
}

pub fn pair_key(first: &[u8; 32], second: &[u8; 32]) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(first);
    key[32..].copy_from_slice(second);
    key
}
