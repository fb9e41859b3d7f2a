//! The authenticated state tree behind the app hash: a binary Patricia
//! Merkle trie over 256-bit keys (`StateKey::tree_key`), each leaf committing
//! to one state entry's value hash.
//!
//! # How the app hash is computed
//!
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
//! # What it deliberately is not
//!
//! The internal nodes live in memory only (about 110 bytes per entry) and are
//! rebuilt from the stored entries when the store opens, which checks them
//! against the committed app hash. Keeping them out of RocksDB avoids writing
//! and reading tens of thousands of tree nodes per block; the price is start-up
//! time and memory proportional to the state.

use crypto::Hash;
use rayon::prelude::*;

const LEAF_TAG: u8 = 0x00;
const INTERNAL_TAG: u8 = 0x01;
const LEAF_FLAG: u32 = 1 << 31;

/// Index into the leaf or internal arena; the top bit says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NodeRef(u32);

impl NodeRef {
    fn leaf(index: usize) -> NodeRef {
        NodeRef(u32::try_from(index).expect("fewer than 2^31 leaves") | LEAF_FLAG)
    }
    fn internal(index: usize) -> NodeRef {
        NodeRef(u32::try_from(index).expect("fewer than 2^31 internal nodes"))
    }
    fn as_leaf(self) -> Option<usize> {
        (self.0 & LEAF_FLAG != 0).then_some((self.0 & !LEAF_FLAG) as usize)
    }
}

#[derive(Clone, Copy, Debug)]
struct Leaf {
    key: Hash,
    hash: Hash,
}

#[derive(Clone, Copy, Debug)]
struct Internal {
    hash: Hash,
    children: [NodeRef; 2],
    bit: u8,
    /// A leaf below this node: its key gives the bits every key below shares.
    representative: u32,
}

/// The tree. See the module documentation for the hashing rules.
#[derive(Clone, Debug, Default)]
pub struct StateTree {
    leaves: Vec<Leaf>,
    internals: Vec<Internal>,
    root: Option<NodeRef>,
    root_hash: Hash,
    /// Present between [`StateTree::begin`] and commit or rollback.
    undo: Option<UndoLog>,
}

/// What it takes to put the tree back as it was at [`StateTree::begin`]:
/// the arenas only grow, so their old lengths plus every overwritten node
/// are enough.
#[derive(Clone, Debug, Default)]
struct UndoLog {
    leaves_len: usize,
    internals_len: usize,
    root: Option<NodeRef>,
    root_hash: Hash,
    leaves: Vec<(usize, Leaf)>,
    internals: Vec<(usize, Internal)>,
}

/// One entry while building a subtree: a new leaf hash, or a leaf that
/// already exists (and keeps its slot in the arena).
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Hash,
    hash: Hash,
    existing: Option<usize>,
}

/// Below this many changed entries a batch is hashed on one core (handing
/// work to other threads costs more than it saves).
const PARALLEL_MIN: usize = 1024;

/// The internal nodes whose hash must be recomputed: those marked here, and
/// every node added since (their index is at least `existing`).
struct Dirty {
    existing: usize,
    marked: Vec<u64>,
}

impl Dirty {
    /// For a tree that has `existing` internal nodes now.
    fn new(existing: usize) -> Dirty {
        Dirty {
            existing,
            marked: vec![0; existing.div_ceil(64)],
        }
    }

    fn insert(&mut self, index: usize) {
        if index < self.existing {
            self.marked[index / 64] |= 1 << (index % 64);
        }
    }

    fn contains(&self, index: usize) -> bool {
        index >= self.existing || self.marked[index / 64] & (1 << (index % 64)) != 0
    }
}

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
        let mut tree = StateTree {
            leaves: Vec::with_capacity(entries.len()),
            internals: Vec::with_capacity(entries.len().saturating_sub(1)),
            ..StateTree::default()
        };
        let entries: Vec<Entry> = entries
            .par_iter()
            .with_min_len(PARALLEL_MIN)
            .map(|(key, value_hash)| Entry {
                key: *key,
                hash: leaf_hash(key, value_hash),
                existing: None,
            })
            .collect();
        if !entries.is_empty() {
            let root = tree.build(&entries);
            tree.finish(root, &Dirty::new(0), entries.len());
        }
        tree
    }

    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
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
    ///
    /// Two phases: the shape is updated first (sequentially; it is cheap),
    /// then every node on a changed path is hashed, bottom-up, with the
    /// subtrees of the top levels on different cores.
    pub fn apply(&mut self, updates: impl IntoIterator<Item = (Hash, Hash)>) -> Hash {
        let updates: Vec<(Hash, Hash)> = updates.into_iter().collect();
        if updates.is_empty() {
            return self.root_hash;
        }
        // Leaf hashes are independent: spread them over the cores.
        let mut entries: Vec<Entry> = updates
            .par_iter()
            .with_min_len(PARALLEL_MIN)
            .map(|(key, value_hash)| Entry {
                key: *key,
                hash: leaf_hash(key, value_hash),
                existing: None,
            })
            .collect();
        // Stable sort, then keep the last of equal keys.
        entries.sort_by_key(|entry| entry.key);
        let mut unique: Vec<Entry> = Vec::with_capacity(entries.len());
        for entry in entries {
            match unique.last_mut() {
                Some(last) if last.key == entry.key => *last = entry,
                _ => unique.push(entry),
            }
        }
        let mut dirty = Dirty::new(self.internals.len());
        let root = match self.root {
            None => self.build(&unique),
            Some(root) => self.apply_at(root, &unique, 0, &mut dirty),
        };
        self.finish(root, &dirty, unique.len())
    }

    /// Second phase: hashes every changed internal node below `root` (the
    /// ones in `dirty` and every one added since it was made) and sets the
    /// root.
    fn finish(&mut self, root: NodeRef, dirty: &Dirty, changed: usize) -> Hash {
        let parallel_depth = if changed >= PARALLEL_MIN { 4 } else { 0 };
        let mut hashes = Vec::new();
        let hash = self.rehash(root, dirty, parallel_depth, &mut hashes);
        for (index, hash) in hashes {
            self.internals[index as usize].hash = hash;
        }
        self.root = Some(root);
        self.root_hash = hash;
        hash
    }

    /// The hash of `node`, computing (into `out`) that of every changed
    /// internal node below it; the two subtrees of a node are hashed in
    /// parallel while `parallel_depth` is above zero.
    fn rehash(
        &self,
        node: NodeRef,
        dirty: &Dirty,
        parallel_depth: u32,
        out: &mut Vec<(u32, Hash)>,
    ) -> Hash {
        if let Some(leaf) = node.as_leaf() {
            return self.leaves[leaf].hash;
        }
        let index = node.0 as usize;
        let internal = &self.internals[index];
        if !dirty.contains(index) {
            return internal.hash;
        }
        let [left, right] = internal.children;
        let (left, right) = if parallel_depth > 0 {
            let mut right_out = Vec::new();
            let hashes = rayon::join(
                || self.rehash(left, dirty, parallel_depth - 1, out),
                || self.rehash(right, dirty, parallel_depth - 1, &mut right_out),
            );
            out.append(&mut right_out);
            hashes
        } else {
            (
                self.rehash(left, dirty, 0, out),
                self.rehash(right, dirty, 0, out),
            )
        };
        let hash = internal_hash(internal.bit, &left, &right);
        out.push((node.0, hash));
        hash
    }

    fn node_hash(&self, node: NodeRef) -> Hash {
        match node.as_leaf() {
            Some(leaf) => self.leaves[leaf].hash,
            None => self.internals[node.0 as usize].hash,
        }
    }

    fn representative_key(&self, node: NodeRef) -> Hash {
        match node.as_leaf() {
            Some(leaf) => self.leaves[leaf].key,
            None => self.leaves[self.internals[node.0 as usize].representative as usize].key,
        }
    }

    fn set_leaf_hash(&mut self, index: usize, hash: Hash) {
        if let Some(undo) = &mut self.undo {
            undo.leaves.push((index, self.leaves[index]));
        }
        self.leaves[index].hash = hash;
    }

    /// Changes an existing internal node's children; its hash is computed
    /// by [`StateTree::finish`].
    fn set_children(&mut self, index: usize, children: [NodeRef; 2], dirty: &mut Dirty) {
        if let Some(undo) = &mut self.undo {
            undo.internals.push((index, self.internals[index]));
        }
        self.internals[index].children = children;
        dirty.insert(index);
    }

    /// Adds an internal node; its hash is computed by [`StateTree::finish`].
    fn push_internal(&mut self, bit: u8, left: NodeRef, right: NodeRef) -> NodeRef {
        let representative = match left.as_leaf() {
            Some(leaf) => u32::try_from(leaf).expect("fewer than 2^31 leaves"),
            None => self.internals[left.0 as usize].representative,
        };
        self.internals.push(Internal {
            hash: Hash::ZERO,
            children: [left, right],
            bit,
            representative,
        });
        NodeRef::internal(self.internals.len() - 1)
    }

    /// Applies sorted, unique `entries` to the shape of the subtree at
    /// `node`; returns its new root. The entries and the subtree's keys are
    /// known to share their first `shared` bits (those above and at the
    /// parent's split).
    fn apply_at(
        &mut self,
        node: NodeRef,
        entries: &[Entry],
        shared: u16,
        dirty: &mut Dirty,
    ) -> NodeRef {
        if entries.is_empty() {
            return node;
        }
        if let Some(leaf) = node.as_leaf() {
            let existing = self.leaves[leaf];
            return match entries.binary_search_by(|entry| entry.key.cmp(&existing.key)) {
                Ok(_) if entries.len() == 1 => {
                    self.set_leaf_hash(leaf, entries[0].hash);
                    node
                }
                Ok(position) => {
                    let mut merged = entries.to_vec();
                    merged[position].existing = Some(leaf);
                    self.build(&merged)
                }
                Err(position) => {
                    let mut merged = Vec::with_capacity(entries.len() + 1);
                    merged.extend_from_slice(&entries[..position]);
                    merged.push(Entry {
                        key: existing.key,
                        hash: existing.hash,
                        existing: Some(leaf),
                    });
                    merged.extend_from_slice(&entries[position..]);
                    self.build(&merged)
                }
            };
        }
        let index = node.0 as usize;
        let internal = self.internals[index];
        if u16::from(internal.bit) == shared {
            // No bits between the parent's split and this node's: the
            // entries cannot leave the subtree above its split, and the
            // representative leaf (a cache miss in a large tree) need not be
            // read.
            return self.apply_below(node, internal, entries, dirty);
        }
        let prefix = self.representative_key(node);
        // Sorted keys: the one sharing the fewest leading bits with the
        // subtree's prefix is the first or the last.
        let first = difference_below(&entries[0].key, &prefix, u16::from(internal.bit));
        let last = difference_below(
            &entries[entries.len() - 1].key,
            &prefix,
            u16::from(internal.bit),
        );
        let branch = match (first, last) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(bit) = branch {
            // Some keys leave this subtree above its split: a new internal
            // node at `bit` holds this subtree on one side, them on the other.
            let subtree_side = bit_of(&prefix, bit);
            let split = entries.partition_point(|entry| bit_of(&entry.key, bit) == 0);
            let (zeros, ones) = entries.split_at(split);
            let (with_subtree, outside) = if subtree_side == 0 {
                (zeros, ones)
            } else {
                (ones, zeros)
            };
            let kept = self.apply_at(node, with_subtree, u16::from(bit) + 1, dirty);
            let fresh = self.build(outside);
            let (left, right) = if subtree_side == 0 {
                (kept, fresh)
            } else {
                (fresh, kept)
            };
            return self.push_internal(bit, left, right);
        }
        self.apply_below(node, internal, entries, dirty)
    }

    /// Splits `entries`, which all belong under the internal `node`, between
    /// its two children.
    fn apply_below(
        &mut self,
        node: NodeRef,
        internal: Internal,
        entries: &[Entry],
        dirty: &mut Dirty,
    ) -> NodeRef {
        let split = entries.partition_point(|entry| bit_of(&entry.key, internal.bit) == 0);
        let shared = u16::from(internal.bit) + 1;
        let left = self.apply_at(internal.children[0], &entries[..split], shared, dirty);
        let right = self.apply_at(internal.children[1], &entries[split..], shared, dirty);
        self.set_children(node.0 as usize, [left, right], dirty);
        node
    }

    /// Builds the shape of a subtree over sorted, unique entries (at least
    /// one).
    fn build(&mut self, entries: &[Entry]) -> NodeRef {
        if let [entry] = entries {
            return match entry.existing {
                Some(leaf) => {
                    if self.leaves[leaf].hash != entry.hash {
                        self.set_leaf_hash(leaf, entry.hash);
                    }
                    NodeRef::leaf(leaf)
                }
                None => {
                    self.leaves.push(Leaf {
                        key: entry.key,
                        hash: entry.hash,
                    });
                    NodeRef::leaf(self.leaves.len() - 1)
                }
            };
        }
        let bit = first_difference(&entries[0].key, &entries[entries.len() - 1].key);
        // Sorted keys sharing the first `bit` bits: those with `bit` set are
        // the suffix.
        let split = entries.partition_point(|entry| bit_of(&entry.key, bit) == 0);
        let left = self.build(&entries[..split]);
        let right = self.build(&entries[split..]);
        self.push_internal(bit, left, right)
    }

    /// Starts recording changes so that [`StateTree::rollback`] can undo
    /// them: a block's writes are hashed before the block is known to be
    /// committed.
    pub fn begin(&mut self) {
        self.undo = Some(UndoLog {
            leaves_len: self.leaves.len(),
            internals_len: self.internals.len(),
            root: self.root,
            root_hash: self.root_hash,
            ..UndoLog::default()
        });
    }

    /// Keeps every change since [`StateTree::begin`].
    pub fn commit(&mut self) {
        self.undo = None;
    }

    /// Puts the tree back as it was at [`StateTree::begin`].
    pub fn rollback(&mut self) {
        let Some(undo) = self.undo.take() else { return };
        for (index, leaf) in undo.leaves.into_iter().rev() {
            self.leaves[index] = leaf;
        }
        for (index, internal) in undo.internals.into_iter().rev() {
            self.internals[index] = internal;
        }
        self.leaves.truncate(undo.leaves_len);
        self.internals.truncate(undo.internals_len);
        self.root = undo.root;
        self.root_hash = undo.root_hash;
    }

    /// A proof that `key` is in the tree, or `None` if it is not.
    pub fn prove(&self, key: &Hash) -> Option<StateProof> {
        let mut node = self.root?;
        let mut siblings = Vec::new();
        while node.as_leaf().is_none() {
            let internal = &self.internals[node.0 as usize];
            let side = bit_of(key, internal.bit);
            siblings.push((internal.bit, self.node_hash(internal.children[1 - side])));
            node = internal.children[side];
        }
        let leaf = &self.leaves[node.as_leaf().expect("loop ends on a leaf")];
        (leaf.key == *key).then_some(StateProof { siblings })
    }
}

impl StateProof {
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
