//! The ledger state as the rules see it: typed keys and values, a read-only
//! view, the changes a transaction makes, and an overlay that stacks a
//! block's changes on top of a committed state.
//!
//! Everything the app hash commits to is a [`StateValue`]. Indexes that can be
//! derived from the values (children of a token, tokens by holder) are not
//! committed; the store keeps them, and the overlay tracks the block's own.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{Hash, PublicKey};

use crate::participant::Participant;
use crate::token::{CreditLine, InvoiceRecord, Receivable, Token, TokenId};

/// The key of one committed state entry.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, BorshSerialize, BorshDeserialize)]
pub enum StateKey {
    Participant(PublicKey),
    Token(TokenId),
    CreditLine(PublicKey),
    Invoice(Hash),
    Receivable(TokenId),
}

impl StateKey {
    /// Where this entry sits in the authenticated state tree.
    pub fn tree_key(&self) -> Hash {
        Hash::of(self)
    }
}

/// One committed state entry; each value knows its own key.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum StateValue {
    Participant(Participant),
    Token(Token),
    CreditLine(CreditLine),
    Invoice(InvoiceRecord),
    Receivable(Receivable),
}

impl StateValue {
    pub fn key(&self) -> StateKey {
        match self {
            StateValue::Participant(participant) => StateKey::Participant(participant.key),
            StateValue::Token(token) => StateKey::Token(token.id),
            StateValue::CreditLine(line) => StateKey::CreditLine(line.core),
            StateValue::Invoice(record) => StateKey::Invoice(record.invoice_ref),
            StateValue::Receivable(receivable) => StateKey::Receivable(receivable.root_id),
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
pub trait StateView {
    fn get(&self, key: &StateKey) -> Option<StateValue>;

    /// Tokens created by spending `token`, sorted by id (every view must
    /// give the same order, or execution could differ between nodes).
    fn children(&self, token: &TokenId) -> Vec<TokenId>;

    fn participant(&self, key: &PublicKey) -> Option<Participant> {
        match self.get(&StateKey::Participant(*key)) {
            Some(StateValue::Participant(participant)) => Some(participant),
            _ => None,
        }
    }

    fn token(&self, id: &TokenId) -> Option<Token> {
        match self.get(&StateKey::Token(*id)) {
            Some(StateValue::Token(token)) => Some(token),
            _ => None,
        }
    }

    fn credit_line(&self, core: &PublicKey) -> Option<CreditLine> {
        match self.get(&StateKey::CreditLine(*core)) {
            Some(StateValue::CreditLine(line)) => Some(line),
            _ => None,
        }
    }

    fn invoice(&self, invoice_ref: &Hash) -> Option<InvoiceRecord> {
        match self.get(&StateKey::Invoice(*invoice_ref)) {
            Some(StateValue::Invoice(record)) => Some(record),
            _ => None,
        }
    }

    fn receivable(&self, root: &TokenId) -> Option<Receivable> {
        match self.get(&StateKey::Receivable(*root)) {
            Some(StateValue::Receivable(receivable)) => Some(receivable),
            _ => None,
        }
    }
}

/// A block's working state: its writes so far, over a committed base.
#[derive(Debug)]
pub struct Overlay<'a, S: StateView + ?Sized> {
    base: &'a S,
    writes: BTreeMap<StateKey, StateValue>,
    new_children: BTreeMap<TokenId, Vec<TokenId>>,
}

impl<'a, S: StateView + ?Sized> Overlay<'a, S> {
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            writes: BTreeMap::new(),
            new_children: BTreeMap::new(),
        }
    }

    /// Applies a transaction's changes on top of what the block wrote so far.
    pub fn apply(&mut self, changes: Changes) {
        for value in changes {
            if let StateValue::Token(token) = &value {
                let is_new = !self.writes.contains_key(&StateKey::Token(token.id))
                    && self.base.token(&token.id).is_none();
                if let (true, Some(parent)) = (is_new, token.parent_id) {
                    self.new_children.entry(parent).or_default().push(token.id);
                }
            }
            self.writes.insert(value.key(), value);
        }
    }

    /// Everything the block wrote, sorted by key (deterministic).
    pub fn into_writes(self) -> BTreeMap<StateKey, StateValue> {
        self.writes
    }

    pub fn writes(&self) -> &BTreeMap<StateKey, StateValue> {
        &self.writes
    }
}

impl<S: StateView + ?Sized> StateView for Overlay<'_, S> {
    fn get(&self, key: &StateKey) -> Option<StateValue> {
        match self.writes.get(key) {
            Some(value) => Some(value.clone()),
            None => self.base.get(key),
        }
    }

    fn children(&self, token: &TokenId) -> Vec<TokenId> {
        let mut children = self.base.children(token);
        if let Some(new) = self.new_children.get(token) {
            children.extend_from_slice(new);
            children.sort_unstable();
            children.dedup();
        }
        children
    }
}

/// A whole state held in memory: for tests, benchmarks and replaying a chain
/// without a database.
#[derive(Debug, Default, Clone)]
pub struct MemoryState {
    entries: BTreeMap<StateKey, StateValue>,
    children: BTreeMap<TokenId, BTreeSet<TokenId>>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes values, keeping the children index in step.
    pub fn apply<I: IntoIterator<Item = StateValue>>(&mut self, values: I) {
        for value in values {
            let key = value.key();
            if let (StateValue::Token(token), false) = (&value, self.entries.contains_key(&key))
                && let Some(parent) = token.parent_id
            {
                self.children.entry(parent).or_default().insert(token.id);
            }
            self.entries.insert(key, value);
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = (&StateKey, &StateValue)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl StateView for MemoryState {
    fn get(&self, key: &StateKey) -> Option<StateValue> {
        self.entries.get(key).cloned()
    }

    fn children(&self, token: &TokenId) -> Vec<TokenId> {
        self.children
            .get(token)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }
}
