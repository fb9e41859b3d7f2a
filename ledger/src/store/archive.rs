//! Read-only access to the committed blocks and certificates of a store,
//! for auditors: safe to use while the node that owns the store is running.
//!
//! [`BlockArchive`] opens the RocksDB directory as a *secondary instance*
//! (RocksDB's "Read-only and Secondary instances"): it takes no lock, never
//! writes to the primary's files, and reads a consistent view made of the
//! primary's MANIFEST, its table files and the tail of its write-ahead log.
//! Blocks commit with a synced WAL write (see the store's module doc), so
//! every block whose commit had returned when the archive opened (or last
//! called [`BlockArchive::catch_up`]) is visible, and none in part: a batch is
//! replayed from the WAL whole or not at all.
//!
//! Why not `DB::open_for_read_only`: a read-only instance assumes nobody
//! writes; when the running node flushes or compacts it deletes files the
//! read-only instance may still need. A secondary instance keeps every table
//! file it uses open (`max_open_files = -1`, which RocksDB requires of it),
//! and on Linux an open file stays readable after the primary unlinks it.
//!
//! The archive reads only `blocks`, `certificates` and `metadata`. It does not
//! rebuild the state tree or check anything: verifying is the auditor's job.

use std::path::{Path, PathBuf};

use rocksdb::{DB, Options};

use super::schema;
use super::{ChainMeta, StoreError};
use crate::block::Block;

/// Committed blocks and certificates, read without taking the store's lock.
pub struct BlockArchive {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for BlockArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockArchive")
            .field("path", &self.path)
            .finish()
    }
}

const COLUMN_FAMILIES: [&str; 3] = [schema::BLOCKS, schema::CERTIFICATES, schema::METADATA];

impl BlockArchive {
    /// Opens the store at `path` (a node's `data/ledger`) for reading.
    /// `scratch` is a directory the secondary instance may write its own
    /// info log to: pass an empty temporary directory that outlives the
    /// archive. Nothing is ever written under `path`.
    pub fn open(path: impl AsRef<Path>, scratch: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        // RocksDB would report a missing directory as an obscure I/O error
        // about `CURRENT`; say what it means instead.
        if !path.join("CURRENT").is_file() {
            return Err(StoreError::NotInitialized { path });
        }
        let mut options = Options::default();
        options.set_max_open_files(-1);
        options.create_if_missing(false);
        let db =
            DB::open_cf_as_secondary(&options, path.as_path(), scratch.as_ref(), COLUMN_FAMILIES)
                .map_err(|source| StoreError::Rocks {
                doing: "opening the store as a read-only secondary instance",
                path: path.clone(),
                source,
            })?;
        Ok(BlockArchive { db, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Brings in what the primary has committed since the archive opened
    /// (or last caught up).
    pub fn catch_up(&self) -> Result<(), StoreError> {
        self.db
            .try_catch_up_with_primary()
            .map_err(self.rocks("catching up with the running node"))
    }

    fn rocks(&self, doing: &'static str) -> impl FnOnce(rocksdb::Error) -> StoreError + '_ {
        move |source| StoreError::Rocks {
            doing,
            path: self.path.clone(),
            source,
        }
    }

    fn get(&self, family: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let handle = self
            .db
            .cf_handle(family)
            .ok_or_else(|| StoreError::Corrupt {
                what: format!(
                    "column family {family} is missing from {}",
                    self.path.display()
                ),
            })?;
        self.db
            .get_cf(handle, key)
            .map_err(self.rocks("reading the archive"))
    }

    /// The committed chain (height 0: genesis only), or `None` if the store
    /// was never initialised.
    pub fn meta(&self) -> Result<Option<ChainMeta>, StoreError> {
        self.get(schema::METADATA, schema::META_KEY)?
            .map(|bytes| {
                borsh::from_slice(&bytes).map_err(|error| StoreError::Corrupt {
                    what: format!("chain metadata: {error}"),
                })
            })
            .transpose()
    }

    /// The raw (borsh) block committed at `height`, undecoded: an auditor
    /// wants to report an undecodable block as a finding at its height.
    pub fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(schema::BLOCKS, &schema::height_key(height))
    }

    /// The block committed at `height`, decoded.
    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.block_bytes(height)?
            .map(|bytes| {
                Block::from_bytes(&bytes).map_err(|error| StoreError::Corrupt {
                    what: format!("block {height}: {error}"),
                })
            })
            .transpose()
    }

    /// The certificate (borsh `consensus::CommitCertificate`) stored with
    /// the block at `height`.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(schema::CERTIFICATES, &schema::height_key(height))
    }
}

#[cfg(test)]
mod tests {
    use crypto::{ChainId, Hash, Keypair};

    use super::*;
    use crate::amount::Timestamp;
    use crate::block::{BlockHeader, execute_block, tx_root};
    use crate::participant::{Participant, Role};
    use crate::state::MemoryState;
    use crate::store::Store;

    fn empty_block(store: &mut Store, parent: Hash, height: u64) -> Block {
        let meta = store.meta().expect("initialised").clone();
        let mut header = BlockHeader {
            chain_id: meta.chain_id,
            height,
            time: Timestamp(1_000 * height),
            parent_hash: parent,
            proposer: Keypair::from_seed([7; 32]).public(),
            tx_root: tx_root(&[]),
            app_hash: Hash::ZERO,
        };
        let execution =
            execute_block(&header.context(), &MemoryState::new(), &[]).expect("no transactions");
        let prepared = store.prepare(execution);
        header.app_hash = prepared.app_hash();
        let block = Block {
            header,
            txs: vec![],
        };
        store
            .commit(&block, &[height as u8], &prepared)
            .expect("commit");
        block
    }

    #[test]
    fn reads_blocks_while_the_store_is_open_and_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let operator = Participant::new(
            Keypair::from_seed([1; 32]).public(),
            "operator",
            [Role::Operator],
        );
        store
            .init_genesis(ChainId(Hash::digest(b"archive")), &[operator])
            .unwrap();
        let first = empty_block(&mut store, Hash::ZERO, 1);

        // The store stays open (as in a running node) while the archive reads.
        let archive = BlockArchive::open(dir.path(), scratch.path()).unwrap();
        assert_eq!(archive.meta().unwrap().unwrap().height, 1);
        assert_eq!(archive.block(1).unwrap().unwrap(), first);
        assert_eq!(archive.certificate(1).unwrap().unwrap(), vec![1]);
        assert_eq!(archive.block(2).unwrap(), None);

        let second = empty_block(&mut store, first.hash(), 2);
        archive.catch_up().unwrap();
        assert_eq!(archive.meta().unwrap().unwrap().height, 2);
        assert_eq!(archive.block(2).unwrap().unwrap(), second);
    }

    #[test]
    fn a_directory_without_a_store_is_not_initialised() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let error = BlockArchive::open(dir.path().join("absent"), scratch.path()).unwrap_err();
        assert!(
            matches!(error, StoreError::NotInitialized { .. }),
            "{error}"
        );
    }
}
