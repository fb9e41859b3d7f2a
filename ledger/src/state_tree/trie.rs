//! One binary Patricia Merkle trie over the keys that share a top-bits
//! prefix: a part of the state tree (see the parent module for the hashing
//! rules and why the tree is split into parts).
//!
//! Nodes live in two arenas that only grow. A batch of updates is applied in
//! one descent along the changed paths: each node on them is reshaped (new
//! leaves and internal nodes, changed children) and hashed on the way back
//! up, so it is read from memory once.

use crypto::Hash;

use super::{bit_of, difference_below, first_difference, internal_hash};

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

/// A part of the state tree.
#[derive(Clone, Debug, Default)]
pub(super) struct Trie {
    leaves: Vec<Leaf>,
    internals: Vec<Internal>,
    root: Option<NodeRef>,
    root_hash: Hash,
    /// Present between [`Trie::begin`] and commit or rollback.
    undo: Option<UndoLog>,
}

/// What it takes to put the trie back as it was at [`Trie::begin`]:
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
pub(super) struct Entry {
    key: Hash,
    hash: Hash,
    existing: Option<usize>,
}

impl Entry {
    /// A key with its new leaf hash.
    pub fn new(key: Hash, leaf_hash: Hash) -> Entry {
        Entry {
            key,
            hash: leaf_hash,
            existing: None,
        }
    }

    pub fn key(&self) -> &Hash {
        &self.key
    }
}

impl Trie {
    /// Builds the trie over sorted, unique entries in one pass.
    pub fn from_entries(entries: &[Entry]) -> Trie {
        let mut trie = Trie {
            leaves: Vec::with_capacity(entries.len()),
            internals: Vec::with_capacity(entries.len().saturating_sub(1)),
            ..Trie::default()
        };
        if !entries.is_empty() {
            let (root, hash) = trie.build(entries);
            trie.root = Some(root);
            trie.root_hash = hash;
        }
        trie
    }

    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// The root hash; `None` for the empty trie.
    pub fn root_hash(&self) -> Option<Hash> {
        self.root.map(|_| self.root_hash)
    }

    /// Sets the leaf hash of every entry (sorted, unique), inserting the keys
    /// that are new. Each node on the changed paths is visited and hashed
    /// once, however many of the updates pass through it.
    pub fn apply_sorted(&mut self, entries: &[Entry]) {
        if entries.is_empty() {
            return;
        }
        let (root, hash) = match self.root {
            None => self.build(entries),
            Some(root) => self.apply_at(root, entries, 0),
        };
        self.root = Some(root);
        self.root_hash = hash;
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

    /// Gives an existing internal node new children and their hash.
    fn set_internal(&mut self, index: usize, children: [NodeRef; 2], hash: Hash) {
        if let Some(undo) = &mut self.undo {
            undo.internals.push((index, self.internals[index]));
        }
        let internal = &mut self.internals[index];
        internal.children = children;
        internal.hash = hash;
    }

    /// Adds an internal node over two hashed children; returns it with its
    /// hash.
    fn push_internal(
        &mut self,
        bit: u8,
        (left, left_hash): (NodeRef, Hash),
        (right, right_hash): (NodeRef, Hash),
    ) -> (NodeRef, Hash) {
        let hash = internal_hash(bit, &left_hash, &right_hash);
        let representative = match left.as_leaf() {
            Some(leaf) => u32::try_from(leaf).expect("fewer than 2^31 leaves"),
            None => self.internals[left.0 as usize].representative,
        };
        self.internals.push(Internal {
            hash,
            children: [left, right],
            bit,
            representative,
        });
        (NodeRef::internal(self.internals.len() - 1), hash)
    }

    /// Applies sorted, unique `entries` to the subtree at `node`; returns
    /// its new root and that root's hash. The entries and the subtree's keys
    /// are known to share their first `shared` bits (those above and at the
    /// parent's split).
    fn apply_at(&mut self, node: NodeRef, entries: &[Entry], shared: u16) -> (NodeRef, Hash) {
        if entries.is_empty() {
            return (node, self.node_hash(node));
        }
        if let Some(leaf) = node.as_leaf() {
            let existing = self.leaves[leaf];
            return match entries.binary_search_by(|entry| entry.key.cmp(&existing.key)) {
                Ok(_) if entries.len() == 1 => {
                    self.set_leaf_hash(leaf, entries[0].hash);
                    (node, entries[0].hash)
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
            return self.apply_below(node, internal, entries);
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
            let kept = self.apply_at(node, with_subtree, u16::from(bit) + 1);
            let fresh = self.build(outside);
            let (left, right) = if subtree_side == 0 {
                (kept, fresh)
            } else {
                (fresh, kept)
            };
            return self.push_internal(bit, left, right);
        }
        self.apply_below(node, internal, entries)
    }

    /// Splits `entries`, which all belong under the internal `node`, between
    /// its two children, and hashes it again.
    fn apply_below(
        &mut self,
        node: NodeRef,
        internal: Internal,
        entries: &[Entry],
    ) -> (NodeRef, Hash) {
        let split = entries.partition_point(|entry| bit_of(&entry.key, internal.bit) == 0);
        let shared = u16::from(internal.bit) + 1;
        let (left, left_hash) = self.apply_at(internal.children[0], &entries[..split], shared);
        let (right, right_hash) = self.apply_at(internal.children[1], &entries[split..], shared);
        let hash = internal_hash(internal.bit, &left_hash, &right_hash);
        self.set_internal(node.0 as usize, [left, right], hash);
        (node, hash)
    }

    /// Builds and hashes a subtree over sorted, unique entries (at least
    /// one); returns its root and that root's hash.
    fn build(&mut self, entries: &[Entry]) -> (NodeRef, Hash) {
        if let [entry] = entries {
            let node = match entry.existing {
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
            return (node, entry.hash);
        }
        let bit = first_difference(&entries[0].key, &entries[entries.len() - 1].key);
        // Sorted keys sharing the first `bit` bits: those with `bit` set are
        // the suffix.
        let split = entries.partition_point(|entry| bit_of(&entry.key, bit) == 0);
        let left = self.build(&entries[..split]);
        let right = self.build(&entries[split..]);
        self.push_internal(bit, left, right)
    }

    /// Starts recording changes so that [`Trie::rollback`] can undo
    /// them: a block's writes are hashed before the block is known to be
    /// committed.
    pub(super) fn begin(&mut self) {
        self.undo = Some(UndoLog {
            leaves_len: self.leaves.len(),
            internals_len: self.internals.len(),
            root: self.root,
            root_hash: self.root_hash,
            ..UndoLog::default()
        });
    }

    /// Keeps every change since [`Trie::begin`].
    pub(super) fn commit(&mut self) {
        self.undo = None;
    }

    /// Puts the trie back as it was at [`Trie::begin`].
    pub(super) fn rollback(&mut self) {
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

    /// The (bit, sibling hash) pairs from this trie's root down to `key`'s
    /// leaf, or `None` if `key` is not in it.
    pub fn siblings(&self, key: &Hash) -> Option<Vec<(u8, Hash)>> {
        let mut node = self.root?;
        let mut siblings = Vec::new();
        while node.as_leaf().is_none() {
            let internal = &self.internals[node.0 as usize];
            let side = bit_of(key, internal.bit);
            siblings.push((internal.bit, self.node_hash(internal.children[1 - side])));
            node = internal.children[side];
        }
        let leaf = &self.leaves[node.as_leaf().expect("loop ends on a leaf")];
        (leaf.key == *key).then_some(siblings)
    }
}
