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
//! Updating k entries touches at most k root-to-leaf paths (about log₂ n
//! nodes each for n entries) and rehashes each touched node once, so a
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

#[derive(Clone, Debug)]
struct Leaf {
    key: Hash,
    hash: Hash,
}

#[derive(Clone, Debug)]
struct Internal {
    hash: Hash,
    children: [NodeRef; 2],
    bit: u8,
    /// A leaf below changed since `hash` was computed.
    dirty: bool,
}

/// The tree. See the module documentation for the hashing rules.
#[derive(Clone, Debug, Default)]
pub struct StateTree {
    leaves: Vec<Leaf>,
    internals: Vec<Internal>,
    root: Option<NodeRef>,
    /// Present between [`StateTree::begin`] and commit or rollback.
    undo: Option<UndoLog>,
}

/// What it takes to put the tree back as it was at [`StateTree::begin`]:
/// the arenas only grow, so their old lengths plus the overwritten leaf
/// hashes and child pointers are enough.
#[derive(Clone, Debug, Default)]
struct UndoLog {
    leaves_len: usize,
    internals_len: usize,
    root: Option<NodeRef>,
    leaf_hashes: Vec<(usize, Hash)>,
    pointers: Vec<(usize, usize, NodeRef)>,
    touched: Vec<Hash>,
}

/// The siblings on the path from the root to one leaf: enough for anyone
/// holding only the app hash to check one entry's value.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize, serde::Serialize, serde::Deserialize)]
pub struct StateProof {
    /// (bit, sibling hash) from the root down.
    pub siblings: Vec<(u8, Hash)>,
}

fn bit_of(key: &Hash, bit: u8) -> usize {
    usize::from((key.0[usize::from(bit / 8)] >> (7 - bit % 8)) & 1)
}

/// The first bit on which two different keys differ.
fn first_difference(a: &Hash, b: &Hash) -> u8 {
    for (index, (x, y)) in a.0.iter().zip(b.0.iter()).enumerate() {
        let diff = x ^ y;
        if diff != 0 {
            return u8::try_from(index * 8 + diff.leading_zeros() as usize).expect("bit index below 256");
        }
    }
    unreachable!("first_difference called with equal keys")
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

    /// Builds the tree from entries sorted by key, without duplicates, in
    /// one pass (each node is hashed once).
    pub fn from_sorted(entries: &[(Hash, Hash)]) -> StateTree {
        debug_assert!(entries.windows(2).all(|pair| pair[0].0 < pair[1].0), "entries must be sorted and unique");
        let mut tree = StateTree {
            leaves: Vec::with_capacity(entries.len()),
            internals: Vec::with_capacity(entries.len().saturating_sub(1)),
            root: None,
            undo: None,
        };
        if !entries.is_empty() {
            tree.root = Some(tree.build(entries).0);
        }
        tree
    }

    fn build(&mut self, entries: &[(Hash, Hash)]) -> (NodeRef, Hash) {
        if let [(key, value_hash)] = entries {
            let hash = leaf_hash(key, value_hash);
            self.leaves.push(Leaf { key: *key, hash });
            return (NodeRef::leaf(self.leaves.len() - 1), hash);
        }
        let first = &entries[0].0;
        let bit = first_difference(first, &entries[entries.len() - 1].0);
        // Sorted keys sharing the first `bit` bits: the ones with `bit` set
        // form the suffix.
        let split = entries.partition_point(|(key, _)| bit_of(key, bit) == 0);
        let (left, left_hash) = self.build(&entries[..split]);
        let (right, right_hash) = self.build(&entries[split..]);
        let hash = internal_hash(bit, &left_hash, &right_hash);
        self.internals.push(Internal { hash, children: [left, right], bit, dirty: false });
        (NodeRef::internal(self.internals.len() - 1), hash)
    }

    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Sets `key`'s value hash, inserting the key if it is new. The root is
    /// recomputed lazily by [`StateTree::root_hash`].
    pub fn update(&mut self, key: Hash, value_hash: Hash) {
        let hash = leaf_hash(&key, &value_hash);
        if let Some(undo) = &mut self.undo {
            undo.touched.push(key);
        }
        let Some(root) = self.root else {
            self.leaves.push(Leaf { key, hash });
            self.root = Some(NodeRef::leaf(self.leaves.len() - 1));
            return;
        };
        // Find the leaf the key leads to.
        let mut node = root;
        while node.as_leaf().is_none() {
            let internal = &self.internals[node.0 as usize];
            node = internal.children[bit_of(&key, internal.bit)];
        }
        let found = node.as_leaf().expect("loop ends on a leaf");
        if self.leaves[found].key == key {
            if let Some(undo) = &mut self.undo {
                undo.leaf_hashes.push((found, self.leaves[found].hash));
            }
            self.leaves[found].hash = hash;
            self.mark_path_dirty(&key, u8::MAX, true);
            return;
        }
        // New key: it branches off where it first differs from that leaf.
        let bit = first_difference(&key, &self.leaves[found].key);
        self.leaves.push(Leaf { key, hash });
        let new_leaf = NodeRef::leaf(self.leaves.len() - 1);
        let (parent, displaced) = self.mark_path_dirty(&key, bit, false);
        let mut children = [displaced, displaced];
        children[bit_of(&key, bit)] = new_leaf;
        self.internals.push(Internal { hash: Hash::ZERO, children, bit, dirty: true });
        let inserted = NodeRef::internal(self.internals.len() - 1);
        match parent {
            None => self.root = Some(inserted),
            Some((index, side)) => {
                if let Some(undo) = &mut self.undo {
                    undo.pointers.push((index, side, displaced));
                }
                self.internals[index].children[side] = inserted;
            }
        }
    }

    /// Starts recording changes so that [`StateTree::rollback`] can undo
    /// them: a block's writes are hashed before the block is known to be
    /// committed.
    pub fn begin(&mut self) {
        self.undo = Some(UndoLog {
            leaves_len: self.leaves.len(),
            internals_len: self.internals.len(),
            root: self.root,
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
        for (leaf, hash) in undo.leaf_hashes.into_iter().rev() {
            self.leaves[leaf].hash = hash;
        }
        for (index, side, node) in undo.pointers.into_iter().rev() {
            self.internals[index].children[side] = node;
        }
        self.leaves.truncate(undo.leaves_len);
        self.internals.truncate(undo.internals_len);
        self.root = undo.root;
        // Internal hashes along every touched path may hold the undone
        // values: recompute them on the next `root_hash`.
        if self.root.is_some() {
            for key in &undo.touched {
                self.mark_path_dirty(key, u8::MAX, true);
            }
        }
    }

    /// Walks from the root along `key` through internal nodes whose bit is
    /// below `stop_bit` (all of them when `to_leaf`), marking them dirty.
    /// Returns the last node passed (index and side taken) and the node where
    /// the walk stopped.
    fn mark_path_dirty(&mut self, key: &Hash, stop_bit: u8, to_leaf: bool) -> (Option<(usize, usize)>, NodeRef) {
        let mut parent = None;
        let mut node = self.root.expect("called on a non-empty tree");
        while node.as_leaf().is_none() {
            let index = node.0 as usize;
            let internal = &mut self.internals[index];
            if !to_leaf && internal.bit >= stop_bit {
                break;
            }
            internal.dirty = true;
            let side = bit_of(key, internal.bit);
            parent = Some((index, side));
            node = internal.children[side];
        }
        (parent, node)
    }

    /// The root hash (the app hash), rehashing each node changed since the
    /// last call exactly once.
    pub fn root_hash(&mut self) -> Hash {
        match self.root {
            None => Hash::ZERO,
            Some(root) => self.rehash(root),
        }
    }

    fn rehash(&mut self, node: NodeRef) -> Hash {
        if let Some(leaf) = node.as_leaf() {
            return self.leaves[leaf].hash;
        }
        let index = node.0 as usize;
        if !self.internals[index].dirty {
            return self.internals[index].hash;
        }
        let [left, right] = self.internals[index].children;
        let left_hash = self.rehash(left);
        let right_hash = self.rehash(right);
        let internal = &mut self.internals[index];
        internal.hash = internal_hash(internal.bit, &left_hash, &right_hash);
        internal.dirty = false;
        internal.hash
    }

    /// A proof that `key` is in the tree, or `None` if it is not. Call after
    /// [`StateTree::root_hash`] so the hashes are current.
    pub fn prove(&self, key: &Hash) -> Option<StateProof> {
        let mut node = self.root?;
        let mut siblings = Vec::new();
        while node.as_leaf().is_none() {
            let internal = &self.internals[node.0 as usize];
            debug_assert!(!internal.dirty, "prove called with unhashed changes");
            let side = bit_of(key, internal.bit);
            siblings.push((internal.bit, self.hash_of(internal.children[1 - side])));
            node = internal.children[side];
        }
        let leaf = &self.leaves[node.as_leaf().expect("loop ends on a leaf")];
        (leaf.key == *key).then_some(StateProof { siblings })
    }

    fn hash_of(&self, node: NodeRef) -> Hash {
        match node.as_leaf() {
            Some(leaf) => self.leaves[leaf].hash,
            None => self.internals[node.0 as usize].hash,
        }
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
        assert_eq!(tree.root_hash().to_hex(), "053e155d7ae5b0f6fa0734b48479fe71e5e86108a015a4358a421f8284e69b02");
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
        /// Incremental updates, in any order and batching, give the same root
        /// as building from scratch.
        #[test]
        fn incremental_root_equals_rebuilt_root(
            ops in prop::collection::vec((0u64..300, 0u64..5), 1..400),
            batch in 1usize..50,
        ) {
            let mut tree = StateTree::new();
            let mut model = BTreeMap::new();
            for (i, (k, v)) in ops.iter().enumerate() {
                tree.update(key(*k), key(*v));
                model.insert(key(*k), key(*v));
                if i % batch == 0 {
                    tree.root_hash();
                }
            }
            let entries: Vec<(Hash, Hash)> = model.into_iter().collect();
            prop_assert_eq!(tree.root_hash(), StateTree::from_sorted(&entries).root_hash());
            prop_assert_eq!(tree.len(), entries.len());
        }
    }
}
