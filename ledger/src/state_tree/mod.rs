//! The authenticated state tree behind the app hash: a binary Patricia
//! Merkle trie over 256-bit keys (`StateValue::tree_key`), each leaf
//! committing to one state entry's value hash.
//!
//! # How the app hash is computed
//!
//! - an entry's key in the tree is SHA-256 of its state key's borsh encoding
//!   (variant tag ‖ 32 bytes), except a token's: the first byte of that
//!   hash, the height that created the token (8 bytes, big-endian), then the
//!   hash's next 23 bytes (`state::token_tree_key`);
//! - leaf = SHA-256(`0x00` ‖ key (32 bytes) ‖ value hash (32 bytes)), where the
//!   value hash is SHA-256 of the entry's borsh encoding;
//! - internal node = SHA-256(`0x01` ‖ bit (1 byte) ‖ left ‖ right), where
//!   `bit` is the index (0 = most significant) of the first key bit on which
//!   its two subtrees differ; keys with that bit 0 are on the left;
//! - the app hash is the root; the empty tree's root is 32 zero bytes.
//!
//! The shape of a Patricia trie depends only on its set of keys, so every
//! node that holds the same entries computes the same root, whatever order
//! they were written in.
//!
//! # Cost
//!
//! A block's updates are applied as one sorted batch ([`StateTree::apply`]):
//! a single descent visits each node on the k changed root-to-leaf paths
//! (about log₂ n nodes each for n entries) once and hashes it once, so a
//! block's cost grows with what it changes, not with the size of the state.
//! Entries are never deleted (the ledger keeps spent tokens), so the tree
//! only supports insert and update.
//!
//! Why tokens are placed by height: a block creates thousands of tokens, and
//! with hashed keys each would be a path through old nodes of a tree of
//! millions, each node a cache miss. Placed by height, a block's new tokens
//! share a prefix and form new subtrees built in one pass, and the tokens a
//! block spends are most often recent ones, near paths the last blocks
//! touched. The leading hash byte still spreads them over the top of the
//! tree, and over its parts.
//!
//! # Parts, for both cores
//!
//! The tree is kept as [`PARTS`] separate tries, one per value of a key's
//! top [`PART_BITS`] bits (`trie`), updated in parallel; the nodes above them
//! are recomputed from the parts' roots by the same rules (an internal node
//! at bit b < [`PART_BITS`] exactly where keys exist on both sides). This is
//! only how the work is laid out: the root, and every proof, is the one the
//! single trie over all the keys gives (tested). Most of a batch's time is
//! spent waiting for memory, not hashing, and two cores wait in parallel.
//!
//! # What it deliberately is not
//!
//! The internal nodes live in memory only (about 110 bytes per entry) and are
//! rebuilt from the stored entries when the store opens, which checks them
//! against the committed app hash. Keeping them out of RocksDB avoids writing
//! and reading tens of thousands of tree nodes per block; the price is start-up
//! time and memory proportional to the state.

mod trie;

use crypto::Hash;
use rayon::prelude::*;

use crate::state::StateValue;

use trie::{Entry, Trie};

const LEAF_TAG: u8 = 0x00;
const INTERNAL_TAG: u8 = 0x01;

/// A key's top bits choose its part.
pub const PART_BITS: u8 = 4;
pub const PARTS: usize = 1 << PART_BITS;

/// Below this many updates a batch is applied on one core (handing work to
/// other threads costs more than it saves).
const PARALLEL_MIN: usize = 1024;

/// The siblings on the path from the root to one leaf: enough for anyone
/// holding only the app hash to check one entry's value.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct StateProof {
    /// (bit, sibling hash) from the root down.
    pub siblings: Vec<(u8, Hash)>,
}

fn bit_of(key: &Hash, bit: u8) -> usize {
    usize::from((key.0[usize::from(bit / 8)] >> (7 - bit % 8)) & 1)
}

/// The first bit on which two keys differ, if it is below `limit`.
fn difference_below(a: &Hash, b: &Hash, limit: u16) -> Option<u8> {
    for (index, (x, y)) in a.0.iter().zip(b.0.iter()).enumerate() {
        if (index * 8) as u16 >= limit {
            return None;
        }
        let diff = x ^ y;
        if diff != 0 {
            let bit = (index * 8 + diff.leading_zeros() as usize) as u16;
            return (bit < limit).then(|| u8::try_from(bit).expect("bit index below 256"));
        }
    }
    None
}

/// The first bit on which two different keys differ.
fn first_difference(a: &Hash, b: &Hash) -> u8 {
    difference_below(a, b, 256).expect("first_difference called with equal keys")
}

fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    Hash::digest_parts(&[&[LEAF_TAG], key.as_bytes(), value_hash.as_bytes()])
}

fn internal_hash(bit: u8, left: &Hash, right: &Hash) -> Hash {
    Hash::digest_parts(&[&[INTERNAL_TAG, bit], left.as_bytes(), right.as_bytes()])
}

fn part_of(key: &Hash) -> usize {
    usize::from(key.0[0] >> (8 - PART_BITS))
}

/// The tree. See the module documentation for the hashing rules.
#[derive(Clone, Debug)]
pub struct StateTree {
    parts: Vec<Trie>,
    root_hash: Hash,
    /// The root at [`StateTree::begin`], while changes are recorded.
    undo_root: Option<Hash>,
}

impl Default for StateTree {
    fn default() -> StateTree {
        StateTree {
            parts: vec![Trie::default(); PARTS],
            root_hash: Hash::ZERO,
            undo_root: None,
        }
    }
}

impl StateTree {
    pub fn new() -> StateTree {
        StateTree::default()
    }

    /// Builds the tree from (key, value hash) entries sorted by key, without
    /// duplicates, in one pass (each node is hashed once).
    pub fn from_sorted(entries: &[(Hash, Hash)]) -> StateTree {
        debug_assert!(
            entries.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "entries must be sorted and unique"
        );
        let entries = leaf_entries(entries);
        let ranges = part_ranges(&entries);
        let parts: Vec<Trie> = ranges
            .into_par_iter()
            .map(|range| Trie::from_entries(&entries[range]))
            .collect();
        let mut tree = StateTree {
            parts,
            ..StateTree::default()
        };
        tree.root_hash = tree.top_hash();
        tree
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(Trie::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root hash (the app hash); zero for the empty tree.
    pub fn root_hash(&self) -> Hash {
        self.root_hash
    }

    /// Sets one key's value hash. Prefer [`StateTree::apply`] for many.
    pub fn update(&mut self, key: Hash, value_hash: Hash) -> Hash {
        self.apply([(key, value_hash)])
    }

    /// Sets the value hash of every (key, value hash) pair, inserting keys
    /// that are new, and returns the new root. When a key appears twice the
    /// last pair wins. Each node on the changed paths is visited and hashed
    /// once, however many of the updates pass through it.
    pub fn apply(&mut self, updates: impl IntoIterator<Item = (Hash, Hash)>) -> Hash {
        let updates: Vec<(Hash, Hash)> = updates.into_iter().collect();
        if updates.is_empty() {
            return self.root_hash;
        }
        let mut entries = leaf_entries(&updates);
        // Stable sort, then keep the last of equal keys.
        entries.sort_by_key(|entry| *entry.key());
        let mut unique: Vec<Entry> = Vec::with_capacity(entries.len());
        for entry in entries {
            match unique.last_mut() {
                Some(last) if last.key() == entry.key() => *last = entry,
                _ => unique.push(entry),
            }
        }
        let ranges = part_ranges(&unique);
        if unique.len() >= PARALLEL_MIN {
            self.parts
                .par_iter_mut()
                .zip(ranges)
                .for_each(|(part, range)| part.apply_sorted(&unique[range]));
        } else {
            for (part, range) in self.parts.iter_mut().zip(ranges) {
                part.apply_sorted(&unique[range]);
            }
        }
        self.root_hash = self.top_hash();
        self.root_hash
    }

    /// The root over the parts' roots: the top of the single trie over all
    /// keys, whose internal nodes split at the bits that choose a part.
    fn top_hash(&self) -> Hash {
        self.top(0, PARTS, 0).unwrap_or(Hash::ZERO)
    }

    /// The root of the trie over the parts `first..end`, which share their
    /// top `bit` bits; `None` if they are all empty.
    fn top(&self, first: usize, end: usize, bit: u8) -> Option<Hash> {
        if bit == PART_BITS {
            return self.parts[first].root_hash();
        }
        let middle = first + (end - first) / 2;
        match (
            self.top(first, middle, bit + 1),
            self.top(middle, end, bit + 1),
        ) {
            (Some(left), Some(right)) => Some(internal_hash(bit, &left, &right)),
            (one, None) | (None, one) => one,
        }
    }

    /// Starts recording changes so that [`StateTree::rollback`] can undo
    /// them: a block's writes are hashed before the block is known to be
    /// committed.
    pub fn begin(&mut self) {
        for part in &mut self.parts {
            part.begin();
        }
        self.undo_root = Some(self.root_hash);
    }

    /// Keeps every change since [`StateTree::begin`].
    pub fn commit(&mut self) {
        for part in &mut self.parts {
            part.commit();
        }
        self.undo_root = None;
    }

    /// Puts the tree back as it was at [`StateTree::begin`].
    pub fn rollback(&mut self) {
        let Some(root) = self.undo_root.take() else {
            return;
        };
        for part in &mut self.parts {
            part.rollback();
        }
        self.root_hash = root;
    }

    /// A proof that `key` is in the tree, or `None` if it is not.
    pub fn prove(&self, key: &Hash) -> Option<StateProof> {
        let part = part_of(key);
        let below = self.parts[part].siblings(key)?;
        // The siblings above the part: at each bit where keys exist on
        // both sides, the other side's root.
        let mut siblings = Vec::new();
        let (mut first, mut end) = (0, PARTS);
        for bit in 0..PART_BITS {
            let middle = first + (end - first) / 2;
            let (ours, other) = if part < middle {
                ((first, middle), (middle, end))
            } else {
                ((middle, end), (first, middle))
            };
            if let Some(hash) = self.top(other.0, other.1, bit + 1) {
                siblings.push((bit, hash));
            }
            (first, end) = ours;
        }
        siblings.extend(below);
        Some(StateProof { siblings })
    }
}

/// Each (key, value hash) with its leaf hash, computed across the cores.
fn leaf_entries(entries: &[(Hash, Hash)]) -> Vec<Entry> {
    entries
        .par_iter()
        .with_min_len(PARALLEL_MIN)
        .map(|(key, value_hash)| Entry::new(*key, leaf_hash(key, value_hash)))
        .collect()
}

/// The range of sorted `entries` that falls in each part.
fn part_ranges(entries: &[Entry]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::with_capacity(PARTS);
    let mut start = 0;
    for part in 0..PARTS {
        let end = start + entries[start..].partition_point(|entry| part_of(entry.key()) <= part);
        ranges.push(start..end);
        start = end;
    }
    ranges
}

impl StateProof {
    /// Checks that `value` is a committed entry of the state whose app hash
    /// is `root` (at its own place, [`StateValue::tree_key`]).
    pub fn verify_value(&self, root: &Hash, value: &StateValue) -> bool {
        self.verify(root, &value.tree_key(), &value.value_hash())
    }

    /// Checks that `key` has value hash `value_hash` in the tree whose root
    /// is `root`.
    pub fn verify(&self, root: &Hash, key: &Hash, value_hash: &Hash) -> bool {
        let increasing = self.siblings.windows(2).all(|pair| pair[0].0 < pair[1].0);
        if !increasing {
            return false;
        }
        let mut hash = leaf_hash(key, value_hash);
        for (bit, sibling) in self.siblings.iter().rev() {
            hash = if bit_of(key, *bit) == 0 {
                internal_hash(*bit, &hash, sibling)
            } else {
                internal_hash(*bit, sibling, &hash)
            };
        }
        hash == *root
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn key(n: u64) -> Hash {
        Hash::digest(&n.to_le_bytes())
    }

    #[test]
    fn empty_tree_root_is_zero() {
        assert_eq!(StateTree::new().root_hash(), Hash::ZERO);
    }

    #[test]
    fn single_leaf_root_is_its_leaf_hash() {
        let mut tree = StateTree::new();
        tree.update(key(1), key(2));
        assert_eq!(tree.root_hash(), leaf_hash(&key(1), &key(2)));
    }

    /// Golden vector: changing the hashing rules must fail here.
    #[test]
    fn root_of_three_entries_is_pinned() {
        let mut tree = StateTree::new();
        for n in 0..3 {
            tree.update(key(n), key(n + 100));
        }
        assert_eq!(
            tree.root_hash().to_hex(),
            "053e155d7ae5b0f6fa0734b48479fe71e5e86108a015a4358a421f8284e69b02"
        );
    }

    #[test]
    fn proofs_verify_and_fail_for_other_values() {
        let mut tree = StateTree::new();
        for n in 0..200 {
            tree.update(key(n), key(n + 1000));
        }
        let root = tree.root_hash();
        for n in 0..200 {
            let proof = tree.prove(&key(n)).expect("present");
            assert!(proof.verify(&root, &key(n), &key(n + 1000)));
            assert!(!proof.verify(&root, &key(n), &key(n + 1001)));
        }
        assert!(tree.prove(&key(999)).is_none());
    }

    #[test]
    fn rollback_restores_the_previous_root() {
        let mut tree = StateTree::new();
        for n in 0..100 {
            tree.update(key(n), key(n));
        }
        let before = tree.root_hash();
        tree.begin();
        for n in 50..180 {
            tree.update(key(n), key(n + 7));
        }
        assert_ne!(tree.root_hash(), before);
        tree.rollback();
        assert_eq!(tree.root_hash(), before);
        assert_eq!(tree.len(), 100);
        tree.begin();
        tree.update(key(5), key(6));
        tree.commit();
        tree.rollback();
        assert_ne!(tree.root_hash(), before);
    }

    #[test]
    fn rollback_of_a_first_insert_empties_the_tree() {
        let mut tree = StateTree::new();
        tree.begin();
        tree.update(key(1), key(1));
        tree.update(key(2), key(1));
        tree.rollback();
        assert_eq!(tree.root_hash(), Hash::ZERO);
        assert!(tree.is_empty());
    }

    proptest! {
        /// The parts are only a layout: the root and every proof are those
        /// of the single Patricia trie over all the keys, for any set of
        /// keys, including sets that leave parts empty or with one key.
        #[test]
        fn parts_give_the_single_trie_root_and_proofs(
            keys in prop::collection::btree_set(0u64..5_000, 0..300),
        ) {
            let mut entries: Vec<(Hash, Hash)> = keys.iter().map(|k| (key(*k), key(k + 1))).collect();
            entries.sort_unstable();
            let single = Trie::from_entries(
                &entries.iter().map(|(k, v)| Entry::new(*k, leaf_hash(k, v))).collect::<Vec<_>>(),
            );
            let tree = StateTree::from_sorted(&entries);
            prop_assert_eq!(tree.root_hash(), single.root_hash().unwrap_or(Hash::ZERO));
            for (k, v) in &entries {
                let proof = tree.prove(k).expect("present");
                let expected = single.siblings(k);
                prop_assert_eq!(Some(&proof.siblings), expected.as_ref());
                prop_assert!(proof.verify(&tree.root_hash(), k, v));
            }
        }
    }

    proptest! {
        /// Batches that are rolled back leave the tree exactly as before:
        /// later batches give the same root as a tree that never saw them.
        #[test]
        fn rolled_back_batches_leave_no_trace(
            batches in prop::collection::vec((prop::collection::vec((0u64..200, 0u64..5), 1..40), any::<bool>()), 1..20),
        ) {
            let mut tree = StateTree::new();
            let mut reference = StateTree::new();
            for (batch, keep) in &batches {
                let updates: Vec<(Hash, Hash)> = batch.iter().map(|(k, v)| (key(*k), key(*v))).collect();
                tree.begin();
                tree.apply(updates.clone());
                if *keep {
                    tree.commit();
                    reference.apply(updates);
                } else {
                    tree.rollback();
                }
                prop_assert_eq!(tree.root_hash(), reference.root_hash());
                prop_assert_eq!(tree.len(), reference.len());
            }
            for n in 0..200 {
                prop_assert_eq!(tree.prove(&key(n)).is_some(), reference.prove(&key(n)).is_some());
            }
        }
    }

    proptest! {
        /// Incremental updates, one by one or in batches of any size, give
        /// the same root as building from scratch, and rolled-back batches
        /// leave no trace.
        #[test]
        fn incremental_root_equals_rebuilt_root(
            ops in prop::collection::vec((0u64..300, 0u64..5), 1..400),
            batch in 1usize..50,
        ) {
            let mut tree = StateTree::new();
            let mut model = BTreeMap::new();
            let mut single = StateTree::new();
            for (k, v) in &ops {
                single.update(key(*k), key(*v));
            }
            for chunk in ops.chunks(batch) {
                tree.apply(chunk.iter().map(|(k, v)| (key(*k), key(*v))));
                for (k, v) in chunk {
                    model.insert(key(*k), key(*v));
                }
            }
            let entries: Vec<(Hash, Hash)> = model.into_iter().collect();
            prop_assert_eq!(tree.root_hash(), StateTree::from_sorted(&entries).root_hash());
            prop_assert_eq!(tree.len(), entries.len());
            prop_assert_eq!(single.root_hash(), tree.root_hash());
        }
    }
}
