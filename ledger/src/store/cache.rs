//! Recently committed state values, kept decoded in memory.
//!
//! Execution reads what the last blocks wrote far more often than anything
//! else: the signer's participant record (its nonce), the token it spends
//! (usually created a few blocks ago), the recipient. Serving those from
//! memory instead of a RocksDB point read and a decode is most of the cost of
//! executing against the store.
//!
//! The cache only ever holds committed values: [`super::Store`] fills it
//! after a block's synced write returns, with every value the block wrote, so
//! a hit is exactly what RocksDB would return once the block is
//! materialized. It is also what makes reads right *before* that: values of
//! blocks not yet materialized (see `materialize`) are pinned here, never
//! evicted, so a read that misses the cache finds the same value in RocksDB
//! that it would have found after the materialization. Beyond the pinned
//! values it is bounded in entries, evicting the oldest insertions first. It
//! never decides anything, so it cannot make two nodes differ.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::state::{StateKey, StateValue};

/// How many values the store keeps by default beyond the pinned ones:
/// about 13 MB, the writes of the last one or two blocks of 5,000 transfers
/// (what the next block reads: the tokens they created, the signers).
pub const DEFAULT_CAPACITY: usize = 32_768;

#[derive(Debug)]
pub struct StateCache {
    /// Value, the height of the block that wrote it, and the stamp of its
    /// latest insertion.
    entries: HashMap<StateKey, Entry, BuildHasherDefault<KeyHasher>>,
    /// Insertions, oldest first; an entry whose stamp is not the key's
    /// latest is stale and skipped.
    order: VecDeque<(StateKey, u64)>,
    capacity: usize,
    next_stamp: u64,
}

#[derive(Debug)]
struct Entry {
    value: StateValue,
    height: u64,
    stamp: u64,
}

impl StateCache {
    pub fn new(capacity: usize) -> StateCache {
        StateCache {
            entries: HashMap::with_capacity_and_hasher(capacity, Default::default()),
            order: VecDeque::with_capacity(2 * capacity),
            capacity,
            next_stamp: 0,
        }
    }

    pub fn get(&self, key: &StateKey) -> Option<&StateValue> {
        self.entries.get(key).map(|entry| &entry.value)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Records a value committed at `height`. Heights never go down from
    /// one insertion to the next.
    pub fn insert(&mut self, value: &StateValue, height: u64) {
        let key = value.key();
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.entries.insert(
            key.clone(),
            Entry {
                value: value.clone(),
                height,
                stamp,
            },
        );
        self.order.push_back((key, stamp));
    }

    /// Evicts the oldest insertions until the capacity is kept, but none
    /// written above `materialized` (RocksDB's column families do not hold
    /// those yet).
    pub fn evict(&mut self, materialized: u64) {
        while self.entries.len() > self.capacity || self.order.len() > 2 * self.capacity {
            let Some((oldest, stamp)) = self.order.front() else {
                break;
            };
            match self.entries.get(oldest) {
                Some(entry) if entry.stamp == *stamp => {
                    if entry.height > materialized {
                        // Insertions are in height order: the rest are
                        // pinned too.
                        break;
                    }
                    self.entries.remove(oldest);
                }
                // Stale: the key was inserted again since.
                _ => {}
            }
            self.order.pop_front();
        }
    }
}

/// State keys are hashes and public keys, evenly spread: the map needs only
/// a quick mix of their bytes, not SipHash's protection against chosen keys.
/// Token ids are SHA-256 outputs; the keys that can be chosen (an invoice
/// reference, a participant's key) are chosen by registered participants in
/// committed transactions, and colliding ones could only slow this cache.
#[derive(Default)]
struct KeyHasher(u64);

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

    fn nonce(cache: &StateCache, n: u8) -> Option<u64> {
        match cache.get(&StateKey::Participant(PublicKey([n; 32]))) {
            Some(StateValue::Participant(participant)) => Some(participant.next_nonce),
            _ => None,
        }
    }

    #[test]
    fn keeps_the_latest_value_and_evicts_the_oldest() {
        let mut cache = StateCache::new(3);
        for n in 0..3 {
            cache.insert(&participant(n, 0), 1);
        }
        cache.insert(&participant(0, 7), 2);
        assert_eq!(nonce(&cache, 0), Some(7));
        // Key 1 is now the oldest insertion: it goes first.
        cache.insert(&participant(3, 0), 3);
        cache.evict(3);
        assert_eq!(cache.len(), 3);
        assert_eq!(nonce(&cache, 1), None);
        assert_eq!(nonce(&cache, 0), Some(7));
        assert_eq!(nonce(&cache, 3), Some(0));
    }

    #[test]
    fn rewriting_the_same_keys_stays_bounded() {
        let mut cache = StateCache::new(4);
        for round in 0..1_000 {
            for n in 0..4 {
                cache.insert(&participant(n, round), round);
            }
            cache.evict(round);
        }
        assert_eq!(cache.len(), 4);
        assert!(cache.order.len() <= 8);
        assert_eq!(nonce(&cache, 2), Some(999));
    }

    #[test]
    fn values_not_yet_materialized_are_never_evicted() {
        let mut cache = StateCache::new(1);
        cache.insert(&participant(1, 1), 1);
        cache.insert(&participant(2, 1), 2);
        cache.insert(&participant(3, 1), 2);
        cache.evict(0);
        assert_eq!(cache.len(), 3, "nothing is materialized: all pinned");
        cache.evict(1);
        assert_eq!(nonce(&cache, 1), None, "height 1 is materialized: evicted");
        assert_eq!(cache.len(), 2, "height 2 is still pinned");
        cache.evict(2);
        assert_eq!(cache.len(), 1);
        assert_eq!(nonce(&cache, 3), Some(1), "the newest stays");
    }

    #[test]
    fn zero_capacity_keeps_only_what_is_pinned() {
        let mut cache = StateCache::new(0);
        cache.insert(&participant(1, 1), 5);
        cache.evict(4);
        assert_eq!(nonce(&cache, 1), Some(1));
        cache.evict(5);
        assert_eq!(cache.len(), 0);
        assert_eq!(nonce(&cache, 1), None);
    }
}
