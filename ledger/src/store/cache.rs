//! Recently committed state values, kept decoded in memory.
//!
//! Execution reads what the last blocks wrote far more often than anything
//! else: the signer's participant record (its nonce), the token it spends
//! (usually created a few blocks ago), the recipient. Serving those from
//! memory instead of a RocksDB point read and a decode is most of the cost of
//! executing against the store.
//!
//! A reader only ever finds committed values here: [`super::Store`] fills
//! it with every value a block wrote while the block's synced write runs
//! (nothing reads the store during a commit) and takes them out again if the
//! write fails, so a hit is exactly what RocksDB would return once the block
//! is materialized. It is also what makes reads right *before* that: values
//! of blocks not yet materialized (see `materialize`) are pinned here, never
//! evicted, so a read that misses the cache finds the same value in RocksDB
//! that it would have found after the materialization. Beyond the pinned
//! values it is bounded in entries, evicting the oldest blocks first. It
//! never decides anything, so it cannot make two nodes differ.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::state::{KeyMap, StateKey, StateValue};

/// How many values the store keeps by default beyond the pinned ones:
/// about 13 MB, the writes of the last one or two blocks of 5,000 transfers
/// (what the next block reads: the tokens they created, the signers).
pub const DEFAULT_CAPACITY: usize = 32_768;

/// The values are kept as each block wrote them, one shared list per block
/// (the store hands over the list it committed, so filling the cache copies
/// no value), with an index from key to the newest block that wrote it.
/// Blocks leave whole, oldest first.
#[derive(Debug)]
pub struct StateCache {
    index: KeyMap<Slot>,
    /// Oldest first; `blocks[i]` has sequence number `first + i`.
    blocks: VecDeque<CachedBlock>,
    first: u64,
    /// Values in `blocks`, counting overwritten ones.
    held: usize,
    capacity: usize,
}

#[derive(Debug)]
struct CachedBlock {
    height: u64,
    values: Arc<Vec<StateValue>>,
}

/// Where a key's newest cached value is: a block's sequence number and the
/// value's position in its list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    block: u64,
    position: u32,
}

/// What a [`StateCache::insert_block`] replaced, for [`StateCache::undo`].
#[derive(Debug)]
pub struct Undo(Vec<(StateKey, Option<Slot>)>);

impl StateCache {
    pub fn new(capacity: usize) -> StateCache {
        StateCache {
            index: KeyMap::with_capacity_and_hasher(2 * capacity, Default::default()),
            blocks: VecDeque::new(),
            first: 0,
            held: 0,
            capacity,
        }
    }

    pub fn get(&self, key: &StateKey) -> Option<&StateValue> {
        let slot = self.index.get(key)?;
        let block = &self.blocks[(slot.block - self.first) as usize];
        Some(&block.values[slot.position as usize])
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Records every value the block committed at `height` wrote (each key
    /// once). Heights never go down from one block to the next. Returns
    /// what it replaced, for [`StateCache::undo`].
    pub fn insert_block(&mut self, height: u64, values: Arc<Vec<StateValue>>) -> Undo {
        let block = self.first + self.blocks.len() as u64;
        let mut replaced = Vec::with_capacity(values.len());
        for (position, value) in values.iter().enumerate() {
            let key = value.key();
            let slot = Slot {
                block,
                position: u32::try_from(position).expect("fewer than 2^32 writes in a block"),
            };
            let old = self.index.insert(key.clone(), slot);
            replaced.push((key, old));
        }
        self.held += values.len();
        self.blocks.push_back(CachedBlock { height, values });
        Undo(replaced)
    }

    /// Takes back the last [`StateCache::insert_block`], whose block did not
    /// commit: every key holds what it held before.
    pub fn undo(&mut self, undo: Undo) {
        for (key, old) in undo.0.into_iter().rev() {
            match old {
                Some(slot) => self.index.insert(key, slot),
                None => self.index.remove(&key),
            };
        }
        if let Some(block) = self.blocks.pop_back() {
            self.held -= block.values.len();
        }
    }

    /// Evicts the oldest blocks while the rest hold at least the capacity,
    /// but none written above `materialized` (RocksDB's column families do
    /// not hold those yet).
    pub fn evict(&mut self, materialized: u64) {
        while let Some(oldest) = self.blocks.front() {
            if oldest.height > materialized || self.held - oldest.values.len() < self.capacity {
                // Blocks are in height order: the rest are pinned too.
                break;
            }
            let oldest = self.blocks.pop_front().expect("just looked at it");
            for value in oldest.values.iter() {
                let key = value.key();
                if self
                    .index
                    .get(&key)
                    .is_some_and(|slot| slot.block == self.first)
                {
                    self.index.remove(&key);
                }
            }
            self.held -= oldest.values.len();
            self.first += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::participant::{Participant, Role};
    use crypto::PublicKey;

    fn participant(n: u8, nonce: u64) -> StateValue {
        let mut participant =
            Participant::new(PublicKey([n; 32]), format!("p{n}"), [Role::Supplier]);
        participant.next_nonce = nonce;
        StateValue::Participant(participant)
    }

    fn block(values: &[(u8, u64)]) -> Arc<Vec<StateValue>> {
        Arc::new(
            values
                .iter()
                .map(|(n, nonce)| participant(*n, *nonce))
                .collect(),
        )
    }

    fn nonce(cache: &StateCache, n: u8) -> Option<u64> {
        match cache.get(&StateKey::Participant(PublicKey([n; 32]))) {
            Some(StateValue::Participant(participant)) => Some(participant.next_nonce),
            _ => None,
        }
    }

    #[test]
    fn keeps_the_latest_value_and_evicts_the_oldest_blocks() {
        let mut cache = StateCache::new(2);
        cache.insert_block(1, block(&[(0, 0), (1, 0), (2, 0)]));
        cache.insert_block(2, block(&[(0, 7)]));
        assert_eq!(nonce(&cache, 0), Some(7));
        assert_eq!(nonce(&cache, 1), Some(0));
        cache.insert_block(3, block(&[(3, 0)]));
        cache.evict(3);
        // Block 1 went (blocks 2 and 3 hold the capacity); key 0 stays, as
        // block 2 wrote it again.
        assert_eq!(cache.len(), 2);
        assert_eq!(nonce(&cache, 1), None);
        assert_eq!(nonce(&cache, 2), None);
        assert_eq!(nonce(&cache, 0), Some(7));
        assert_eq!(nonce(&cache, 3), Some(0));
    }

    #[test]
    fn rewriting_the_same_keys_stays_bounded() {
        let mut cache = StateCache::new(4);
        for round in 0..1_000 {
            cache.insert_block(
                round,
                block(&[(0, round), (1, round), (2, round), (3, round)]),
            );
            cache.evict(round);
        }
        assert_eq!(cache.len(), 4);
        assert_eq!(cache.blocks.len(), 1);
        assert_eq!(nonce(&cache, 2), Some(999));
    }

    #[test]
    fn values_not_yet_materialized_are_never_evicted() {
        let mut cache = StateCache::new(1);
        cache.insert_block(1, block(&[(1, 1)]));
        cache.insert_block(2, block(&[(2, 1), (3, 1)]));
        cache.evict(0);
        assert_eq!(cache.len(), 3, "nothing is materialized: all pinned");
        cache.evict(1);
        assert_eq!(nonce(&cache, 1), None, "height 1 is materialized: evicted");
        assert_eq!(cache.len(), 2, "height 2 is still pinned");
        cache.evict(2);
        assert_eq!(cache.len(), 2, "the newest block holds the capacity");
        assert_eq!(nonce(&cache, 3), Some(1));
    }

    #[test]
    fn zero_capacity_keeps_only_what_is_pinned() {
        let mut cache = StateCache::new(0);
        cache.insert_block(5, block(&[(1, 1)]));
        cache.evict(4);
        assert_eq!(nonce(&cache, 1), Some(1));
        cache.evict(5);
        assert_eq!(cache.len(), 0);
        assert_eq!(nonce(&cache, 1), None);
    }

    #[test]
    fn undo_puts_back_what_a_block_replaced() {
        let mut cache = StateCache::new(10);
        cache.insert_block(1, block(&[(1, 1), (2, 1)]));
        let undo = cache.insert_block(2, block(&[(2, 2), (3, 2)]));
        assert_eq!(nonce(&cache, 2), Some(2));
        cache.undo(undo);
        assert_eq!(nonce(&cache, 1), Some(1));
        assert_eq!(nonce(&cache, 2), Some(1), "block 1's value again");
        assert_eq!(nonce(&cache, 3), None, "only block 2 wrote it");
        assert_eq!(cache.len(), 2);
        // The next block takes the undone one's place.
        cache.insert_block(2, block(&[(3, 3)]));
        assert_eq!(nonce(&cache, 3), Some(3));
        assert_eq!(nonce(&cache, 2), Some(1));
    }
}
