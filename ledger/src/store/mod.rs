//! The RocksDB store: committed blocks with their certificates, the state,
//! and the indexes the API queries. The only module that touches the disk.
//!
//! A block commits as one `WriteBatch` written with `sync`: the block, its
//! certificate, the transaction index, every state value it changed, the
//! holder and children indexes and the chain metadata. RocksDB applies a
//! batch atomically and, with the write-ahead log synced, durably; so after a
//! crash at any instant the store holds exactly the blocks whose commit
//! returned, never part of one.
//!
//! The state tree (see `state_tree`) is held in memory and rebuilt from the
//! state column families on open, then checked against the committed app
//! hash: a store whose data does not match its own app hash refuses to open.
//!
//! The store checks what a block claims about itself (height, parent, chain,
//! app hash, transaction count); whether the block was agreed by the
//! validators is consensus's business, and the certificate is kept as bytes.

mod archive;
mod queries;
pub mod schema;

use std::path::{Path, PathBuf};

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{ChainId, Hash};
use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};

use crate::block::{Block, BlockExecution};
use crate::participant::Participant;
use crate::state::{StateKey, StateValue};
use crate::state_tree::StateTree;

pub use archive::BlockArchive;
pub use queries::{Lineage, TxLocation};

/// What the store has committed: the chain and the last block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize)]
pub struct ChainMeta {
    pub chain_id: ChainId,
    /// 0 when only the genesis state is committed.
    pub height: u64,
    /// Hash of the last committed block's header; zero at genesis.
    pub block_hash: Hash,
    /// State tree root after the last committed block.
    pub app_hash: Hash,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB failed while {doing} at {path}: {source}")]
    Rocks {
        doing: &'static str,
        path: PathBuf,
        source: rocksdb::Error,
    },
    #[error("the store at {path} holds no chain yet: initialise it from genesis first")]
    NotInitialized { path: PathBuf },
    #[error("the store already holds chain {existing}, not {requested}")]
    OtherChain {
        existing: ChainId,
        requested: ChainId,
    },
    #[error("block is for chain {got}, the store holds chain {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("expected block at height {expected}, got height {got}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("block {height} names parent {got}, but the last committed block is {expected}")]
    WrongParent {
        height: u64,
        expected: Hash,
        got: Hash,
    },
    #[error("block {height} claims app hash {claimed}, executing it gives {computed}")]
    AppHashMismatch {
        height: u64,
        claimed: Hash,
        computed: Hash,
    },
    #[error("block {height} has {txs} transactions but its execution covers {executed}")]
    ExecutionMismatch {
        height: u64,
        txs: usize,
        executed: usize,
    },
    #[error("stored data is corrupt: {what}")]
    Corrupt { what: String },
}

/// The ledger's database. Single writer: one `Store` per directory (RocksDB
/// locks it).
pub struct Store {
    db: DB,
    path: PathBuf,
    tree: StateTree,
    meta: Option<ChainMeta>,
    /// The ticket of the prepared block whose writes the tree holds
    /// uncommitted, if any.
    pending: Option<u64>,
    next_ticket: u64,
}

/// A block's execution applied to the state tree but not yet committed.
/// See [`Store::prepare`].
#[derive(Debug)]
pub struct PreparedBlock {
    execution: BlockExecution,
    app_hash: Hash,
    ticket: u64,
}

impl PreparedBlock {
    /// The state tree's root once this block is committed.
    pub fn app_hash(&self) -> Hash {
        self.app_hash
    }

    pub fn execution(&self) -> &BlockExecution {
        &self.execution
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .finish()
    }
}

fn db_options() -> Options {
    let mut table = rocksdb::BlockBasedOptions::default();
    // Bloom filters make a lookup of an absent key (a new token, an unused
    // invoice reference) skip the files that cannot hold it.
    table.set_bloom_filter(10.0, false);
    table.set_block_cache(&rocksdb::Cache::new_lru_cache(128 * 1024 * 1024));
    let mut options = Options::default();
    options.set_block_based_table_factory(&table);
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    // Larger memtables: a block of thousands of transfers is tens of
    // thousands of small writes.
    options.set_write_buffer_size(64 * 1024 * 1024);
    options.set_max_write_buffer_number(4);
    options.increase_parallelism(2);
    options
}

impl Store {
    /// Opens (or creates) the store at `path`. An initialised store rebuilds
    /// its state tree and checks it against the committed app hash.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let options = db_options();
        let descriptors = schema::ALL
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, options.clone()));
        let db = DB::open_cf_descriptors(&options, &path, descriptors).map_err(|source| {
            StoreError::Rocks {
                doing: "opening the database",
                path: path.clone(),
                source,
            }
        })?;
        let mut store = Store {
            db,
            path,
            tree: StateTree::new(),
            meta: None,
            pending: None,
            next_ticket: 0,
        };
        store.meta = store.read_meta()?;
        if let Some(meta) = store.meta.clone() {
            store.tree = store.rebuild_tree()?;
            let computed = store.tree.root_hash();
            if computed != meta.app_hash {
                return Err(StoreError::Corrupt {
                    what: format!(
                        "state at height {} hashes to {computed}, committed app hash is {}",
                        meta.height, meta.app_hash
                    ),
                });
            }
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rocks(&self, doing: &'static str) -> impl FnOnce(rocksdb::Error) -> StoreError + '_ {
        move |source| StoreError::Rocks {
            doing,
            path: self.path.clone(),
            source,
        }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is created on open")
    }

    fn read_meta(&self) -> Result<Option<ChainMeta>, StoreError> {
        let bytes = self
            .db
            .get_cf(self.cf(schema::METADATA), schema::META_KEY)
            .map_err(self.rocks("reading metadata"))?;
        bytes
            .map(|bytes| {
                borsh::from_slice(&bytes).map_err(|error| StoreError::Corrupt {
                    what: format!("chain metadata: {error}"),
                })
            })
            .transpose()
    }

    /// Reads every state entry's raw bytes and builds the tree in one pass.
    fn rebuild_tree(&self) -> Result<StateTree, StoreError> {
        let mut entries = Vec::new();
        for (name, tag) in schema::STATE {
            for item in self
                .db
                .iterator_cf(self.cf(name), rocksdb::IteratorMode::Start)
            {
                let (key, value) =
                    item.map_err(self.rocks("reading state to rebuild the state tree"))?;
                entries.push((schema::tree_key(tag, &key), schema::value_hash(tag, &value)));
            }
        }
        entries.sort_unstable_by_key(|entry| entry.0);
        Ok(StateTree::from_sorted(&entries))
    }

    /// The last committed block's metadata, or `None` before genesis.
    pub fn meta(&self) -> Option<&ChainMeta> {
        self.meta.as_ref()
    }

    /// The last committed height (0: genesis only), or `None` before genesis.
    pub fn height(&self) -> Option<u64> {
        self.meta.as_ref().map(|meta| meta.height)
    }

    /// Writes the genesis state (height 0). Calling it again with the same
    /// chain does nothing, so a node can always call it on start.
    pub fn init_genesis(
        &mut self,
        chain_id: ChainId,
        participants: &[Participant],
    ) -> Result<&ChainMeta, StoreError> {
        if let Some(meta) = &self.meta {
            if meta.chain_id != chain_id {
                return Err(StoreError::OtherChain {
                    existing: meta.chain_id,
                    requested: chain_id,
                });
            }
            return Ok(self.meta.as_ref().expect("checked above"));
        }
        let writes: Vec<StateValue> = participants
            .iter()
            .cloned()
            .map(StateValue::Participant)
            .collect();
        self.tree.begin();
        let app_hash = self.apply_to_tree(writes.iter());
        let meta = ChainMeta {
            chain_id,
            height: 0,
            block_hash: Hash::ZERO,
            app_hash,
        };
        let mut batch = WriteBatch::default();
        for value in &writes {
            self.put_state(&mut batch, value, 0);
        }
        batch.put_cf(
            self.cf(schema::METADATA),
            schema::META_KEY,
            borsh::to_vec(&meta).expect("encoding to a Vec"),
        );
        if let Err(error) = self.write_synced(batch, "writing the genesis state") {
            self.tree.rollback();
            return Err(error);
        }
        self.tree.commit();
        self.meta = Some(meta);
        Ok(self.meta.as_ref().expect("just set"))
    }

    /// Applies a block's writes to the state tree without committing them
    /// and returns them with the resulting app hash: what a proposer puts in
    /// its header, and what a validator compares with the proposed header.
    /// Only one prepared block is held at a time: preparing another undoes
    /// this one, and committing it then applies it again.
    pub fn prepare(&mut self, execution: BlockExecution) -> PreparedBlock {
        self.tree.rollback();
        self.tree.begin();
        let app_hash = self.apply_to_tree(execution.writes.values());
        self.next_ticket += 1;
        self.pending = Some(self.next_ticket);
        PreparedBlock {
            execution,
            app_hash,
            ticket: self.next_ticket,
        }
    }

    /// Forgets a prepared block (a proposal that was not decided).
    pub fn discard_prepared(&mut self) {
        self.tree.rollback();
        self.pending = None;
    }

    fn apply_to_tree<'a>(&mut self, writes: impl IntoIterator<Item = &'a StateValue>) -> Hash {
        self.tree.apply(
            writes
                .into_iter()
                .map(|value| (value.key().tree_key(), value.value_hash())),
        )
    }

    /// [`Store::prepare`] then [`Store::commit`].
    pub fn commit_execution(
        &mut self,
        block: &Block,
        certificate: &[u8],
        execution: BlockExecution,
    ) -> Result<(), StoreError> {
        let prepared = self.prepare(execution);
        self.commit(block, certificate, &prepared)
    }

    /// Commits `block`, executed as `prepared` on the current state, with
    /// its `certificate`, atomically and durably. Refuses a block that does
    /// not follow the last one or whose app hash does not match.
    pub fn commit(
        &mut self,
        block: &Block,
        certificate: &[u8],
        prepared: &PreparedBlock,
    ) -> Result<(), StoreError> {
        let meta = self
            .meta
            .clone()
            .ok_or_else(|| StoreError::NotInitialized {
                path: self.path.clone(),
            })?;
        let header = &block.header;
        let execution = &prepared.execution;
        if header.chain_id != meta.chain_id {
            return Err(StoreError::WrongChain {
                expected: meta.chain_id,
                got: header.chain_id,
            });
        }
        if header.height != meta.height + 1 {
            return Err(StoreError::WrongHeight {
                expected: meta.height + 1,
                got: header.height,
            });
        }
        if header.parent_hash != meta.block_hash {
            return Err(StoreError::WrongParent {
                height: header.height,
                expected: meta.block_hash,
                got: header.parent_hash,
            });
        }
        if execution.tx_hashes.len() != block.txs.len() {
            return Err(StoreError::ExecutionMismatch {
                height: header.height,
                txs: block.txs.len(),
                executed: execution.tx_hashes.len(),
            });
        }
        if self.pending != Some(prepared.ticket) {
            // Another block was prepared since: put this one back in the tree.
            self.tree.rollback();
            self.tree.begin();
            self.apply_to_tree(execution.writes.values());
            self.pending = Some(prepared.ticket);
        }
        let computed = self.tree.root_hash();
        if computed != header.app_hash {
            self.discard_prepared();
            return Err(StoreError::AppHashMismatch {
                height: header.height,
                claimed: header.app_hash,
                computed,
            });
        }
        let block_hash = header.hash();
        let new_meta = ChainMeta {
            chain_id: meta.chain_id,
            height: header.height,
            block_hash,
            app_hash: computed,
        };
        let batch = self.block_batch(block, certificate, execution, &new_meta);
        if let Err(error) = self.write_synced(batch, "committing a block") {
            self.discard_prepared();
            return Err(error);
        }
        self.tree.commit();
        self.pending = None;
        self.meta = Some(new_meta);
        Ok(())
    }

    fn block_batch(
        &self,
        block: &Block,
        certificate: &[u8],
        execution: &BlockExecution,
        meta: &ChainMeta,
    ) -> WriteBatch {
        let height = block.header.height;
        let mut batch = WriteBatch::default();
        let height_key = schema::height_key(height);
        batch.put_cf(self.cf(schema::BLOCKS), height_key, block.to_bytes());
        batch.put_cf(self.cf(schema::CERTIFICATES), height_key, certificate);
        let tx_index = self.cf(schema::TX_INDEX);
        for (index, hash) in execution.tx_hashes.iter().enumerate() {
            let location = TxLocation {
                height,
                index: u32::try_from(index).expect("fewer than 2^32 txs in a block"),
            };
            batch.put_cf(
                tx_index,
                hash.0.as_bytes(),
                borsh::to_vec(&location).expect("encoding to a Vec"),
            );
        }
        for value in execution.writes.values() {
            self.put_state(&mut batch, value, height);
        }
        batch.put_cf(
            self.cf(schema::METADATA),
            schema::META_KEY,
            borsh::to_vec(meta).expect("encoding to a Vec"),
        );
        batch
    }

    /// Adds one state value, and the index entries it implies, to `batch`.
    fn put_state(&self, batch: &mut WriteBatch, value: &StateValue, height: u64) {
        let (name, _, raw_key) = schema::state_location(&value.key());
        let bytes = match value {
            StateValue::Participant(participant) => borsh::to_vec(participant),
            StateValue::Token(token) => borsh::to_vec(token),
            StateValue::CreditLine(line) => borsh::to_vec(line),
            StateValue::Invoice(record) => borsh::to_vec(record),
            StateValue::Receivable(receivable) => borsh::to_vec(receivable),
        }
        .expect("encoding to a Vec");
        batch.put_cf(self.cf(name), raw_key, bytes);
        if let StateValue::Token(token) = value {
            // A token's holder never changes (a transfer makes new tokens),
            // so its index entry only comes and goes with its status.
            let holder_key = schema::pair_key(&token.holder.0, &token.id.0.0);
            if token.is_unspent() {
                batch.put_cf(self.cf(schema::HOLDER_INDEX), holder_key, []);
            } else {
                batch.delete_cf(self.cf(schema::HOLDER_INDEX), holder_key);
            }
            if let (Some(parent), true) = (token.parent_id, token.created_at == height) {
                batch.put_cf(
                    self.cf(schema::CHILDREN),
                    schema::pair_key(&parent.0.0, &token.id.0.0),
                    [],
                );
            }
        }
    }

    fn write_synced(&self, batch: WriteBatch, doing: &'static str) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        // The batch is durable once `write` returns: fsync of the WAL.
        options.set_sync(true);
        self.db
            .write_opt(batch, &options)
            .map_err(self.rocks(doing))
    }

    /// The state tree, for proofs.
    pub(crate) fn tree(&self) -> &StateTree {
        &self.tree
    }

    pub(crate) fn state_bytes(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError> {
        let (name, _, raw_key) = schema::state_location(key);
        self.db
            .get_cf(self.cf(name), raw_key)
            .map_err(self.rocks("reading state"))
    }
}
