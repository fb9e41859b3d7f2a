//! The ledger state as the rules see it: typed keys and values, a read-only
//! view, the changes a transaction makes, and an overlay that stacks a
//! block's changes on top of a committed state.
//!
//! Everything the app hash commits to is a [`StateValue`]. What can be
//! derived from the values is not committed: a spent token's children are
//! the outputs of the transaction that spent it ([`StateView::children`]),
//! and the store keeps a tokens-by-holder index for queries.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{Hash, PublicKey};

use crate::error::StateError;
use crate::governance::{
    EpochNumber, GovernanceSummary, SummaryKey, ValidatorEpoch, ValidatorProposal,
};
use crate::participant::{KeyBinding, KeyRecovery, Participant};
use crate::token::{CreditLine, InvoiceRecord, Receivable, Token, TokenId, TokenStatus};
use crate::transaction::{MAX_TRANSFER_OUTPUTS, TxHash};

/// The key of one committed state entry. Every variant's payload encodes
/// as 32 bytes (the store's layout relies on it, see `store::schema`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, BorshSerialize, BorshDeserialize)]
pub enum StateKey {
    Participant(PublicKey),
    Token(TokenId),
    CreditLine(PublicKey),
    Invoice(Hash),
    Receivable(TokenId),
    /// A key a participant rotated to.
    KeyBinding(PublicKey),
    /// A participant's pending (or last) lost-key recovery, by identity.
    KeyRecovery(PublicKey),
    ValidatorEpoch(EpochNumber),
    ValidatorProposal(TxHash),
    GovernanceSummary(SummaryKey),
}

impl StateKey {
    /// SHA-256 of the key's borsh encoding (variant tag ‖ 32 bytes): the
    /// place in the state tree of every entry but a token, and the part of
    /// a token's place that spreads tokens over the tree
    /// ([`StateValue::tree_key`]).
    pub fn hashed(&self) -> Hash {
        Hash::of(self)
    }
}

/// A token's place in the state tree: the first byte of its hashed key,
/// then the height that created it (big-endian), then the next 23 bytes of
/// the hashed key.
///
/// The height keeps each block's new tokens together: they form new
/// subtrees at the edge of the tree instead of thousands of paths through
/// old, cold nodes, so a block that creates tokens costs the same in a
/// store of millions as in a new one. The first byte keeps tokens spread
/// over the tree's top (and over the cores that update it). A token's
/// height never changes, so neither does its place.
pub fn token_tree_key(hashed: &Hash, created_at: u64) -> Hash {
    let mut key = [0u8; 32];
    key[0] = hashed.0[0];
    key[1..9].copy_from_slice(&created_at.to_be_bytes());
    key[9..].copy_from_slice(&hashed.0[1..24]);
    Hash(key)
}

/// One committed state entry; each value knows its own key.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum StateValue {
    Participant(Participant),
    Token(Token),
    CreditLine(CreditLine),
    Invoice(InvoiceRecord),
    Receivable(Receivable),
    KeyBinding(KeyBinding),
    KeyRecovery(KeyRecovery),
    ValidatorEpoch(ValidatorEpoch),
    ValidatorProposal(ValidatorProposal),
    GovernanceSummary(GovernanceSummary),
}

impl StateValue {
    pub fn key(&self) -> StateKey {
        match self {
            StateValue::Participant(participant) => StateKey::Participant(participant.key),
            StateValue::Token(token) => StateKey::Token(token.id),
            StateValue::CreditLine(line) => StateKey::CreditLine(line.core),
            StateValue::Invoice(record) => StateKey::Invoice(record.invoice_ref),
            StateValue::Receivable(receivable) => StateKey::Receivable(receivable.root_id),
            StateValue::KeyBinding(binding) => StateKey::KeyBinding(binding.key),
            StateValue::KeyRecovery(recovery) => StateKey::KeyRecovery(recovery.participant),
            StateValue::ValidatorEpoch(epoch) => {
                StateKey::ValidatorEpoch(EpochNumber(epoch.number))
            }
            StateValue::ValidatorProposal(proposal) => StateKey::ValidatorProposal(proposal.id),
            StateValue::GovernanceSummary(_) => StateKey::GovernanceSummary(SummaryKey),
        }
    }

    /// Where this entry sits in the authenticated state tree: its hashed
    /// key, or for a token [`token_tree_key`] of it and its height.
    pub fn tree_key(&self) -> Hash {
        match self {
            StateValue::Token(token) => {
                token_tree_key(&StateKey::Token(token.id).hashed(), token.created_at)
            }
            other => other.key().hashed(),
        }
    }

    /// The leaf value committed in the state tree.
    pub fn value_hash(&self) -> Hash {
        Hash::of(self)
    }
}

/// The new values a transaction writes. Entries are never deleted: spent and
/// settled tokens stay for lineage, deactivated participants stay for audit.
pub type Changes = Vec<StateValue>;

/// Read access to a state. Implemented by the store, by the in-memory state
/// and by [`Overlay`].
///
/// A read can fail ([`StateError`]) when the storage underneath fails; the
/// in-memory views never do. A failed read is not an absent entry: every
/// helper passes it on, so that execution stops with it instead of
/// judging a transaction on state it could not see.
pub trait StateView {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError>;

    /// Tokens created by spending `token`, sorted by id (every view gives
    /// the same order, or execution could differ between nodes).
    ///
    /// Derived, not indexed: the transaction that spends a token creates its
    /// children as outputs 0, 1, … (`TokenId::derive(spender, index)`), all
    /// of them, so they are found by looking those ids up until one is
    /// missing. A token that is not spent has none.
    fn children(&self, token: &TokenId) -> Result<Vec<TokenId>, StateError> {
        let Some(Token {
            status: TokenStatus::Spent { by },
            ..
        }) = self.token(token)?
        else {
            return Ok(Vec::new());
        };
        let mut children = Vec::new();
        for index in 0..MAX_TRANSFER_OUTPUTS as u32 {
            let id = TokenId::derive(&by, index);
            if self.token(&id)?.is_none() {
                break;
            }
            children.push(id);
        }
        children.sort_unstable();
        Ok(children)
    }

    fn participant(&self, key: &PublicKey) -> Result<Option<Participant>, StateError> {
        Ok(match self.get(&StateKey::Participant(*key))? {
            Some(StateValue::Participant(participant)) => Some(participant),
            _ => None,
        })
    }

    fn token(&self, id: &TokenId) -> Result<Option<Token>, StateError> {
        Ok(match self.get(&StateKey::Token(*id))? {
            Some(StateValue::Token(token)) => Some(token),
            _ => None,
        })
    }

    fn credit_line(&self, core: &PublicKey) -> Result<Option<CreditLine>, StateError> {
        Ok(match self.get(&StateKey::CreditLine(*core))? {
            Some(StateValue::CreditLine(line)) => Some(line),
            _ => None,
        })
    }

    fn invoice(&self, invoice_ref: &Hash) -> Result<Option<InvoiceRecord>, StateError> {
        Ok(match self.get(&StateKey::Invoice(*invoice_ref))? {
            Some(StateValue::Invoice(record)) => Some(record),
            _ => None,
        })
    }

    fn receivable(&self, root: &TokenId) -> Result<Option<Receivable>, StateError> {
        Ok(match self.get(&StateKey::Receivable(*root))? {
            Some(StateValue::Receivable(receivable)) => Some(receivable),
            _ => None,
        })
    }

    fn key_binding(&self, key: &PublicKey) -> Result<Option<KeyBinding>, StateError> {
        Ok(match self.get(&StateKey::KeyBinding(*key))? {
            Some(StateValue::KeyBinding(binding)) => Some(binding),
            _ => None,
        })
    }

    fn key_recovery(&self, participant: &PublicKey) -> Result<Option<KeyRecovery>, StateError> {
        Ok(match self.get(&StateKey::KeyRecovery(*participant))? {
            Some(StateValue::KeyRecovery(recovery)) => Some(recovery),
            _ => None,
        })
    }

    fn validator_epoch(&self, number: u64) -> Result<Option<ValidatorEpoch>, StateError> {
        Ok(
            match self.get(&StateKey::ValidatorEpoch(EpochNumber(number)))? {
                Some(StateValue::ValidatorEpoch(epoch)) => Some(epoch),
                _ => None,
            },
        )
    }

    fn validator_proposal(&self, id: &TxHash) -> Result<Option<ValidatorProposal>, StateError> {
        Ok(match self.get(&StateKey::ValidatorProposal(*id))? {
            Some(StateValue::ValidatorProposal(proposal)) => Some(proposal),
            _ => None,
        })
    }

    fn governance_summary(&self) -> Result<Option<GovernanceSummary>, StateError> {
        Ok(match self.get(&StateKey::GovernanceSummary(SummaryKey))? {
            Some(StateValue::GovernanceSummary(summary)) => Some(summary),
            _ => None,
        })
    }
}

/// A block's working state: its writes so far, over a committed base.
///
/// Values are kept in the order their keys were first written, with a hash
/// index from key to position: execution is sequential and deterministic,
/// so that order is the same on every node, and nothing on the block's
/// critical path has to sort (the tree sorts by its own keys; the
/// materializing thread sorts for RocksDB).
#[derive(Debug)]
pub struct Overlay<'a, S: StateView + ?Sized> {
    base: &'a S,
    /// Each written key and the position of its newest value in `values`.
    index: KeyMap<usize>,
    values: Vec<StateValue>,
}

impl<'a, S: StateView + ?Sized> Overlay<'a, S> {
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            index: KeyMap::default(),
            values: Vec::new(),
        }
    }

    /// Applies a transaction's changes on top of what the block wrote so far.
    pub fn apply(&mut self, changes: Changes) {
        for value in changes {
            match self.index.entry(value.key()) {
                Entry::Occupied(entry) => {
                    self.values[*entry.get()] = value;
                }
                Entry::Vacant(entry) => {
                    entry.insert(self.values.len());
                    self.values.push(value);
                }
            }
        }
    }

    /// Everything the block wrote, each key once, in the order the keys
    /// were first written (deterministic: the block's order of execution).
    pub fn into_writes(self) -> Vec<StateValue> {
        self.values
    }
}

impl<S: StateView + ?Sized> StateView for Overlay<'_, S> {
    /// Fails only if the base fails: the block's own writes are in memory.
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        match self.index.get(key) {
            Some(position) => Ok(Some(self.values[*position].clone())),
            None => self.base.get(key),
        }
    }
}

/// A whole state held in memory: for tests, benchmarks and replaying a chain
/// without a database.
///
/// A hash map with std's randomly keyed SipHash, not [`KeyMap`]: the whole
/// state grows with every participant's choices (its keys, its invoice
/// references), and a replay (`scf audit`, the PostgreSQL sink) must not
/// slow down for keys chosen to collide. It reads in one probe where a
/// sorted map searched and, on every insert, shifted its 320-byte values;
/// [`MemoryState::entries`] sorts when an order is wanted. The values are
/// boxed so that growing the table moves 48 bytes an entry, not 360.
#[derive(Debug, Default, Clone)]
pub struct MemoryState {
    entries: HashMap<StateKey, Box<StateValue>>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply<I: IntoIterator<Item = StateValue>>(&mut self, values: I) {
        for value in values {
            match self.entries.entry(value.key()) {
                Entry::Occupied(mut entry) => **entry.get_mut() = value,
                Entry::Vacant(entry) => {
                    entry.insert(Box::new(value));
                }
            }
        }
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&StateKey, &StateValue)> {
        let mut entries: Vec<(&StateKey, &StateValue)> = self
            .entries
            .iter()
            .map(|(key, value)| (key, value.as_ref()))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries.into_iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl StateView for MemoryState {
    /// Never fails: everything is in memory.
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        Ok(self.entries.get(key).map(|value| value.as_ref().clone()))
    }
}

/// State keys are hashes and public keys, evenly spread: the map needs only
/// a quick mix of their bytes, not SipHash's protection against chosen keys.
/// Token ids are SHA-256 outputs; the keys that can be chosen (an invoice
/// reference, a participant's key) are chosen by registered participants in
/// committed transactions, and colliding ones could only slow a lookup.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}

/// A hash map keyed by state key, with [`KeyHasher`].
pub(crate) type KeyMap<V> = HashMap<StateKey, V, BuildHasherDefault<KeyHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::{Amount, Timestamp};
    use crate::token::Origin;

    fn token(id: u8, created_at: u64) -> StateValue {
        StateValue::Token(Token {
            id: TokenId(Hash::digest(&[id])),
            root_id: TokenId(Hash::digest(&[id])),
            parent_id: None,
            issuer: PublicKey([1; 32]),
            holder: PublicKey([2; 32]),
            amount: Amount(10),
            maturity: Timestamp(1_000),
            invoice_ref: Hash::digest(b"invoice"),
            status: TokenStatus::Active,
            frozen: false,
            origin: Origin::Confirmed,
            created_at,
        })
    }

    #[test]
    fn a_token_sits_at_its_hash_byte_then_its_height_then_more_of_its_hash() {
        let value = token(7, 0x0102_0304_0506_0708);
        let hashed = value.key().hashed();
        let key = value.tree_key();
        assert_eq!(key.0[0], hashed.0[0]);
        assert_eq!(key.0[1..9], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(key.0[9..], hashed.0[1..24]);
        // Only the height moves it: its other fields are its value.
        let StateValue::Token(mut spent) = value.clone() else {
            unreachable!()
        };
        spent.status = TokenStatus::Spent {
            by: crate::transaction::TxHash(Hash::digest(b"tx")),
        };
        assert_eq!(StateValue::Token(spent).tree_key(), key);
        assert_ne!(token(7, 0x0102_0304_0506_0709).tree_key(), key);
    }

    #[test]
    fn tokens_of_one_block_share_a_prefix_below_their_first_byte() {
        let (a, b) = (token(1, 42).tree_key(), token(2, 42).tree_key());
        assert_eq!(a.0[1..9], b.0[1..9]);
        assert_ne!(a, b);
    }

    #[test]
    fn other_entries_sit_at_their_hashed_key() {
        let participant = StateValue::Participant(Participant::new(
            PublicKey([3; 32]),
            "supplier",
            [crate::participant::Role::Supplier],
        ));
        assert_eq!(participant.tree_key(), Hash::of(&participant.key()));
    }
}
