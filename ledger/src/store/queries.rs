//! Reading the store: state entries (the `StateView` the rules execute
//! against), holdings, lineage, blocks, certificates, transaction locations
//! and proofs of single entries against the app hash.

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::PublicKey;

use super::{Store, StoreError, schema};
use crate::block::Block;
use crate::error::StateError;
use crate::state::{StateKey, StateValue, StateView};
use crate::state_tree::StateProof;
use crate::token::{Token, TokenId, TokenStatus};
use crate::transaction::{MAX_TRANSFER_OUTPUTS, TxHash};

/// Where a committed transaction is.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct TxLocation {
    pub height: u64,
    pub index: u32,
}

/// A token with its whole family: ancestors up to the root and every
/// descendant.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Lineage {
    /// Parent first, root last; empty for a root.
    pub ancestors: Vec<Token>,
    pub token: Token,
    /// Breadth-first from the token's children.
    pub descendants: Vec<Token>,
}

pub(super) fn decode_state(key: &StateKey, bytes: &[u8]) -> Result<StateValue, StoreError> {
    let corrupt = |error: std::io::Error| StoreError::Corrupt {
        what: format!("state entry {key:?}: {error}"),
    };
    Ok(match key {
        StateKey::Participant(_) => {
            StateValue::Participant(borsh::from_slice(bytes).map_err(corrupt)?)
        }
        StateKey::Token(_) => StateValue::Token(borsh::from_slice(bytes).map_err(corrupt)?),
        StateKey::CreditLine(_) => {
            StateValue::CreditLine(borsh::from_slice(bytes).map_err(corrupt)?)
        }
        StateKey::Invoice(_) => StateValue::Invoice(borsh::from_slice(bytes).map_err(corrupt)?),
        StateKey::Receivable(_) => {
            StateValue::Receivable(borsh::from_slice(bytes).map_err(corrupt)?)
        }
        StateKey::KeyBinding(_) => {
            StateValue::KeyBinding(borsh::from_slice(bytes).map_err(corrupt)?)
        }
        StateKey::KeyRecovery(_) => {
            StateValue::KeyRecovery(borsh::from_slice(bytes).map_err(corrupt)?)
        }
        StateKey::ValidatorEpoch(_) => {
            StateValue::ValidatorEpoch(borsh::from_slice(bytes).map_err(corrupt)?)
        }
        StateKey::ValidatorProposal(_) => {
            StateValue::ValidatorProposal(borsh::from_slice(bytes).map_err(corrupt)?)
        }
        StateKey::GovernanceSummary(_) => {
            StateValue::GovernanceSummary(borsh::from_slice(bytes).map_err(corrupt)?)
        }
    })
}

impl Store {
    /// One committed state entry.
    pub fn state(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
        if let Some(value) = self.cached(key) {
            return Ok(Some(value.clone()));
        }
        self.state_bytes(key)?
            .map(|bytes| decode_state(key, &bytes))
            .transpose()
    }

    /// A committed token, settled if its root is (see
    /// [`TokenStatus::Settled`]).
    pub fn token_by_id(&self, id: &TokenId) -> Result<Option<Token>, StoreError> {
        match self.state(&StateKey::Token(*id))? {
            Some(StateValue::Token(token)) => Ok(Some(self.as_settled(token)?)),
            _ => Ok(None),
        }
    }

    /// `token` with the status its root's settlement gives it: the record
    /// of an unspent token is not rewritten when its root is settled.
    fn as_settled(&self, token: Token) -> Result<Token, StoreError> {
        if !token.is_unspent() {
            return Ok(token);
        }
        match self.state(&StateKey::Receivable(token.root_id))? {
            Some(StateValue::Receivable(receivable)) => Ok(token.settled_by(&receivable)),
            _ => Err(StoreError::Corrupt {
                what: format!(
                    "token {} names root {} which has no receivable",
                    token.id, token.root_id
                ),
            }),
        }
    }

    /// Every unspent (active or pending) token `holder` holds, by token id.
    /// Tokens of settled roots are paid, not held, and are left out.
    pub fn tokens_by_holder(&self, holder: &PublicKey) -> Result<Vec<Token>, StoreError> {
        // The holder index is written when a block is materialized.
        self.settle()?;
        let ids = self.prefix_second_halves(schema::HOLDER_INDEX, &holder.0, None, usize::MAX)?;
        let mut held = self.tokens(&ids)?;
        held.retain(Token::is_unspent);
        Ok(held)
    }

    /// One page of [`Store::tokens_by_holder`]: of the next `limit` entries
    /// of the holder's index after `after`, by id, the tokens still held,
    /// and the cursor to resume from if the index goes on. Its work is
    /// bounded by `limit`, not by what the holder has, so a reader can page
    /// through a holder of millions of tokens without holding anything for
    /// long. The index keeps the tokens of settled roots (settling does not
    /// rewrite them), so a page may hold fewer than `limit` tokens, or none,
    /// and still have a next cursor.
    pub fn tokens_by_holder_page(
        &self,
        holder: &PublicKey,
        after: Option<&TokenId>,
        limit: usize,
    ) -> Result<(Vec<Token>, Option<TokenId>), StoreError> {
        self.settle()?;
        let mut ids = self.prefix_second_halves(
            schema::HOLDER_INDEX,
            &holder.0,
            after,
            limit.saturating_add(1),
        )?;
        let next = if ids.len() > limit {
            ids.truncate(limit);
            ids.last().copied()
        } else {
            None
        };
        let mut held = self.tokens(&ids)?;
        held.retain(Token::is_unspent);
        Ok((held, next))
    }

    /// The tokens created by spending `parent`, by id: the outputs of the
    /// transaction that spent it (see `StateView::children`).
    pub fn children_of(&self, parent: &Token) -> Result<Vec<Token>, StoreError> {
        let TokenStatus::Spent { by } = parent.status else {
            return Ok(Vec::new());
        };
        let mut children = Vec::new();
        for index in 0..MAX_TRANSFER_OUTPUTS as u32 {
            match self.token_by_id(&TokenId::derive(&by, index))? {
                Some(child) => children.push(child),
                None => break,
            }
        }
        children.sort_unstable_by_key(|child| child.id);
        Ok(children)
    }

    /// The ids after `prefix` in index `cf`, from the first after `after`
    /// (or the first), at most `limit`.
    fn prefix_second_halves(
        &self,
        cf: &str,
        prefix: &[u8; 32],
        after: Option<&TokenId>,
        limit: usize,
    ) -> Result<Vec<TokenId>, StoreError> {
        let mut ids = Vec::new();
        let mut start = prefix.to_vec();
        if let Some(after) = after {
            start.extend_from_slice(after.0.as_bytes());
        }
        let iterator = self.db.iterator_cf(
            self.cf(cf),
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        );
        for item in iterator {
            if ids.len() >= limit {
                break;
            }
            let (key, _) = item.map_err(self.rocks("scanning an index"))?;
            if !key.starts_with(prefix) {
                break;
            }
            if after.is_some() && *key == *start {
                continue;
            }
            let id: [u8; 32] = key[32..].try_into().map_err(|_| StoreError::Corrupt {
                what: format!("{cf} key of {} bytes", key.len()),
            })?;
            ids.push(TokenId(crypto::Hash(id)));
        }
        Ok(ids)
    }

    fn tokens(&self, ids: &[TokenId]) -> Result<Vec<Token>, StoreError> {
        let cf = self.cf(schema::TOKENS);
        let results = self.db.multi_get_cf(ids.iter().map(|id| (cf, id.0.0)));
        let mut tokens = Vec::with_capacity(ids.len());
        for (id, result) in ids.iter().zip(results) {
            let bytes = result
                .map_err(self.rocks("reading tokens"))?
                .ok_or_else(|| StoreError::Corrupt {
                    what: format!("index names token {id} which is not stored"),
                })?;
            match decode_state(&StateKey::Token(*id), &bytes)? {
                StateValue::Token(token) => tokens.push(self.as_settled(token)?),
                _ => unreachable!("decode_state of a token key gives a token"),
            }
        }
        Ok(tokens)
    }

    /// The token with its ancestors and descendants, or `None` if unknown.
    pub fn lineage(&self, id: &TokenId) -> Result<Option<Lineage>, StoreError> {
        let Some(token) = self.token_by_id(id)? else {
            return Ok(None);
        };
        let mut ancestors = Vec::new();
        let mut next = token.parent_id;
        while let Some(parent_id) = next {
            let parent = self
                .token_by_id(&parent_id)?
                .ok_or_else(|| StoreError::Corrupt {
                    what: format!("token {id} has missing ancestor {parent_id}"),
                })?;
            next = parent.parent_id;
            ancestors.push(parent);
        }
        let mut descendants = Vec::new();
        let mut frontier = vec![token.clone()];
        while !frontier.is_empty() {
            let mut next_frontier = Vec::new();
            for parent in &frontier {
                next_frontier.extend(self.children_of(parent)?);
            }
            descendants.extend(next_frontier.iter().cloned());
            frontier = next_frontier;
        }
        Ok(Some(Lineage {
            ancestors,
            token,
            descendants,
        }))
    }

    /// The committed block at `height` (1 and up).
    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.block_bytes(height)?
            .map(|bytes| {
                Block::from_bytes(&bytes).map_err(|error| StoreError::Corrupt {
                    what: format!("block {height}: {error}"),
                })
            })
            .transpose()
    }

    /// The committed block at `height` as stored (borsh), undecoded.
    pub fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(self.cf(schema::BLOCKS), schema::height_key(height))
            .map_err(self.rocks("reading a block"))
    }

    /// The certificate stored with the block at `height`.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(self.cf(schema::CERTIFICATES), schema::height_key(height))
            .map_err(self.rocks("reading a certificate"))
    }

    /// Where a committed transaction sits.
    pub fn tx_location(&self, hash: &TxHash) -> Result<Option<TxLocation>, StoreError> {
        // The transaction index is written when a block is materialized.
        self.settle()?;
        let bytes = self
            .db
            .get_cf(self.cf(schema::TX_INDEX), hash.0.as_bytes())
            .map_err(self.rocks("reading the tx index"))?;
        bytes
            .map(|bytes| {
                borsh::from_slice(&bytes).map_err(|error| StoreError::Corrupt {
                    what: format!("tx index entry {hash}: {error}"),
                })
            })
            .transpose()
    }

    /// A committed entry with a proof of it against the current app hash.
    pub fn prove(&self, key: &StateKey) -> Result<Option<(StateValue, StateProof)>, StoreError> {
        let Some(value) = self.state(key)? else {
            return Ok(None);
        };
        let proof = self
            .tree()
            .prove(&value.tree_key())
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("{key:?} is stored but not in the state tree"),
            })?;
        Ok(Some((value, proof)))
    }
}

/// The rules read committed state through this. A read that fails here
/// (RocksDB's error, or bytes that do not decode) is a fault of the node's
/// own disk, not of any input: it is returned as a [`StateError`], which
/// execution passes up instead of judging a transaction without the data.
impl StateView for Store {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        self.state(key).map_err(|error| StateError {
            key: key.clone(),
            reason: error.to_string(),
        })
    }
}
