//! The ledger state as the rules see it: typed keys and values, a read-only
//! view, the changes a transaction makes, and an overlay that stacks a
//! block's changes on top of a committed state.
//!
//! Everything the app hash commits to is a [`StateValue`]. What can be
//! derived from the values is not committed: a spent token's children are
//! the outputs of the transaction that spent it ([`StateView::children`]),
//! and the store keeps a tokens-by-holder index for queries.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{Hash, PublicKey};

use crate::participant::Participant;
use crate::token::{CreditLine, InvoiceRecord, Receivable, Token, TokenId, TokenStatus};
use crate::transaction::MAX_TRANSFER_OUTPUTS;

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

    /// Tokens created by spending `token`, sorted by id (every view gives
    /// the same order, or execution could differ between nodes).
    ///
    /// Derived, not indexed: the transaction that spends a token creates its
    /// children as outputs 0, 1, … (`TokenId::derive(spender, index)`), all
    /// of them, so they are found by looking those ids up until one is
    /// missing. A token that is not spent has none.
    fn children(&self, token: &TokenId) -> Vec<TokenId> {
        let Some(Token {
            status: TokenStatus::Spent { by },
            ..
        }) = self.token(token)
        else {
            return Vec::new();
        };
        let mut children: Vec<TokenId> = (0..MAX_TRANSFER_OUTPUTS as u32)
            .map(|index| TokenId::derive(&by, index))
            .take_while(|id| self.token(id).is_some())
            .collect();
        children.sort_unstable();
        children
    }

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
///
/// The sorted index holds only each key and where its value is: values are
/// hundreds of bytes, and a sorted map moves its entries around as it grows.
#[derive(Debug)]
pub struct Overlay<'a, S: StateView + ?Sized> {
    base: &'a S,
    /// Each written key and the position of its newest value in `values`.
    index: BTreeMap<StateKey, usize>,
    /// Every position holds a value until [`Overlay::into_writes`].
    values: Vec<Option<StateValue>>,
}

impl<'a, S: StateView + ?Sized> Overlay<'a, S> {
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            index: BTreeMap::new(),
            values: Vec::new(),
        }
    }

    /// Applies a transaction's changes on top of what the block wrote so far.
    pub fn apply(&mut self, changes: Changes) {
        for value in changes {
            match self.index.entry(value.key()) {
                Entry::Occupied(entry) => {
                    self.values[*entry.get()] = Some(value);
                }
                Entry::Vacant(entry) => {
                    entry.insert(self.values.len());
                    self.values.push(Some(value));
                }
            }
        }
    }

    /// Everything the block wrote, each key once, sorted by key
    /// (deterministic).
    pub fn into_writes(self) -> Vec<StateValue> {
        let mut values = self.values;
        self.index
            .into_values()
            .map(|position| {
                values[position]
                    .take()
                    .expect("each position is indexed once")
            })
            .collect()
    }
}

impl<S: StateView + ?Sized> StateView for Overlay<'_, S> {
    fn get(&self, key: &StateKey) -> Option<StateValue> {
        match self.index.get(key) {
            Some(position) => self.values[*position].clone(),
            None => self.base.get(key),
        }
    }
}

/// A whole state held in memory: for tests, benchmarks and replaying a chain
/// without a database.
#[derive(Debug, Default, Clone)]
pub struct MemoryState {
    entries: BTreeMap<StateKey, StateValue>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply<I: IntoIterator<Item = StateValue>>(&mut self, values: I) {
        for value in values {
            self.entries.insert(value.key(), value);
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
}
