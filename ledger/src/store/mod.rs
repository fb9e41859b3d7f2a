//! The RocksDB store: committed blocks with their certificates, the state,
//! and the indexes the API queries. The only module that touches the disk.
//!
//! A block commits as one `WriteBatch` written with `sync`: the block, its
//! certificate and the chain metadata. RocksDB applies a batch atomically
//! and, with the write-ahead log synced, durably; so after a crash at any
//! instant the store holds exactly the blocks whose commit returned, never
//! part of one.
//!
//! The block is its own record of what it changed: execution is a pure
//! function of the state before it, its context and its transactions, and
//! the store commits only what execution produced (a [`BlockExecution`]
//! cannot be made otherwise) for that block's context. Each changed value is
//! written under its own key, with the holder and transaction indexes, by a
//! thread of the store's own while the node goes on (`materialize`): three
//! synced records per block instead of tens of thousands. Opening the store
//! executes again any committed block a crash left unmaterialized, checks
//! that it gives the app hash its header claims, and materializes it, so
//! what a reader sees never depends on where a crash fell.
//!
//! The state tree (see `state_tree`) is held in memory and rebuilt from the
//! state column families on open, then checked against the committed app
//! hash: a store whose data does not match its own app hash refuses to open.
//!
//! Recently committed values are also kept decoded in memory (`cache`), so
//! executing a block rarely reads RocksDB; the values of blocks not yet
//! materialized stay there until they are.
//!
//! The store checks what a block claims about itself (height, parent, chain,
//! app hash, transaction count); whether the block was agreed by the
//! validators is consensus's business, and the certificate is kept as bytes.

mod archive;
mod cache;
pub mod events;
mod materialize;
mod queries;
#[cfg(test)]
mod read_failures;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{ChainId, Hash};
use rayon::prelude::*;
use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};

use crate::block::{Block, BlockError, BlockExecution};
use crate::execute::BlockContext;
use crate::governance::GenesisState;
use crate::participant::Participant;
use crate::state::{StateKey, StateValue};
use crate::state_tree::StateTree;
use crate::transaction::TxHash;
use cache::StateCache;
use materialize::{Materializer, StoredWrites};

pub use archive::BlockArchive;
pub use events::{EventFilter, EventLog, EventPage, EventsError};
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
    #[error(
        "block {height} (time {time}) was executed as block {executed_height} at time {executed_time}: execute a block in its own header's context"
    )]
    ExecutedInOtherContext {
        height: u64,
        time: crate::amount::Timestamp,
        executed_height: u64,
        executed_time: crate::amount::Timestamp,
    },
    #[error("stored data is corrupt: {what}")]
    Corrupt { what: String },
    /// Executing block `height` needed state the store could not read: the
    /// disk failed or the value is corrupt. Not a verdict on the block.
    #[error("executing block {height} failed to read the state: {source}")]
    StateReadFailed {
        height: u64,
        source: crate::error::StateError,
    },
    #[error(
        "deriving events in the store at {path} failed ({reason}); the blocks are safe: fix the cause and restart, which derives them again"
    )]
    EventsFailed { path: PathBuf, reason: String },
    #[error(
        "writing committed blocks into the store at {path} failed ({reason}); they are safe in its log: fix the cause (a full disk?) and restart, which replays them"
    )]
    MaterializationFailed { path: PathBuf, reason: String },
}

/// The ledger's database. Single writer: one `Store` per directory (RocksDB
/// locks it).
pub struct Store {
    db: Arc<DB>,
    path: PathBuf,
    tree: StateTree,
    cache: StateCache,
    materializer: Materializer,
    /// Derives events after materialization (`events`); started once the
    /// store is open.
    deriver: Option<events::Deriver>,
    event_log: Option<EventLog>,
    meta: Option<ChainMeta>,
    /// The ticket of the prepared block whose writes the tree holds
    /// uncommitted, if any.
    pending: Option<u64>,
    next_ticket: u64,
    /// How many committed blocks opening the store executed again.
    replayed: u64,
}

/// A block's execution applied to the state tree but not yet committed.
/// See [`Store::prepare`].
#[derive(Debug)]
pub struct PreparedBlock {
    /// Every value the block writes, each key once, in execution order
    /// (shared with the cache and the materializing thread).
    writes: Arc<Vec<StateValue>>,
    tx_hashes: Vec<TxHash>,
    context: BlockContext,
    /// Each write's location and stored bytes, in the same order:
    /// encoded once, hashed for the tree and written as they are (shared
    /// with the materializing thread).
    stored: Arc<StoredWrites>,
    /// Each write's (tree key, value hash), in the same order.
    hashes: Vec<(Hash, Hash)>,
    app_hash: Hash,
    ticket: u64,
}

impl PreparedBlock {
    /// The state tree's root once this block is committed.
    pub fn app_hash(&self) -> Hash {
        self.app_hash
    }

    /// The hashes of the block's transactions, in block order.
    pub fn tx_hashes(&self) -> &[TxHash] {
        &self.tx_hashes
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

const MIB: usize = 1024 * 1024;

/// RocksDB's settings. Memory is bounded: memtables of all column families
/// together flush at 48 MiB (a column family's at 32 MiB), and the block
/// cache holds 16 MiB. With the state tree and the value cache in memory, a
/// node under full load stays under 300 MiB (see the README's figures).
fn db_options() -> Options {
    let mut table = rocksdb::BlockBasedOptions::default();
    // Bloom filters make a lookup of an absent key (a new token, an unused
    // invoice reference) skip the files that cannot hold it.
    table.set_bloom_filter(10.0, false);
    table.set_block_cache(&rocksdb::Cache::new_lru_cache(16 * MIB));
    let mut options = Options::default();
    options.set_block_based_table_factory(&table);
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    // A block of thousands of transfers is tens of thousands of small
    // writes: memtables large enough to take a few blocks between flushes.
    options.set_write_buffer_size(32 * MIB);
    options.set_max_write_buffer_number(3);
    options.set_db_write_buffer_size(48 * MIB);
    // Materialization skips the write-ahead log (see `materialize`): every
    // column family must reach the disk up to the same write.
    options.set_atomic_flush(true);
    // Bounds the log, and so what a restart replays.
    options.set_max_total_wal_size(256 * MIB as u64);
    options.increase_parallelism(2);
    options
}

impl Store {
    /// Opens (or creates) the store at `path`. An initialised store rebuilds
    /// its state tree and checks it against the committed app hash.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let options = db_options();
        // RocksDB opens a database only with every column family it has: a
        // store written by an older version may hold one this version no
        // longer uses (the children index); it is opened and left alone.
        let mut names: Vec<String> = schema::ALL.iter().map(|name| name.to_string()).collect();
        if let Ok(existing) = DB::list_cf(&options, &path) {
            for name in existing {
                if name != rocksdb::DEFAULT_COLUMN_FAMILY_NAME && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let descriptors = names
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, options.clone()));
        let db = DB::open_cf_descriptors(&options, &path, descriptors).map_err(|source| {
            StoreError::Rocks {
                doing: "opening the database",
                path: path.clone(),
                source,
            }
        })?;
        let db = Arc::new(db);
        let meta = read_meta(&db, &path)?;
        // A store written before materialization moved off the commit path
        // materialized every block as it committed it.
        let materialized = match read_materialized(&db, &path)? {
            Some(height) => height,
            None => meta.as_ref().map_or(0, |meta| meta.height),
        };
        let mut store = Store {
            materializer: Materializer::start(Arc::clone(&db), path.clone(), materialized),
            db,
            path,
            deriver: None,
            event_log: None,
            tree: StateTree::new(),
            cache: StateCache::new(cache::DEFAULT_CAPACITY),
            meta,
            pending: None,
            next_ticket: 0,
            replayed: 0,
        };
        if let Some(meta) = store.meta.clone() {
            store.tree = store.rebuild_tree()?;
            store.replay_unmaterialized(materialized, meta.height)?;
            store.materializer.replayed(meta.height);
            store.replayed = meta.height - materialized;
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
        let (deriver, event_log) = events::Deriver::start(
            Arc::clone(&store.db),
            store.path.clone(),
            store.materializer.watch(store.path.clone()),
        )?;
        store.deriver = Some(deriver);
        store.event_log = Some(event_log);
        Ok(store)
    }

    /// The event feed (see `events`).
    pub fn events(&self) -> EventLog {
        self.event_log
            .clone()
            .expect("the event log starts when the store opens")
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
        column_family(&self.db, name)
    }

    /// Executes again, in order, the committed blocks a crash left
    /// unmaterialized, checks each against its header's app hash, and
    /// materializes it before the next one reads the state.
    fn replay_unmaterialized(
        &mut self,
        materialized: u64,
        committed: u64,
    ) -> Result<(), StoreError> {
        for height in materialized + 1..=committed {
            let block = self.block(height)?.ok_or_else(|| StoreError::Corrupt {
                what: format!(
                    "block {height} is committed but missing from the blocks column family"
                ),
            })?;
            let corrupt = |what: String| StoreError::Corrupt {
                what: format!("committed block {height}, executed again on open: {what}"),
            };
            let mut verified = Vec::with_capacity(block.txs.len());
            for (index, result) in crate::execute::verify_batch(&block.txs)
                .into_iter()
                .enumerate()
            {
                verified.push(
                    result.map_err(|error| corrupt(format!("transaction {index}: {error}")))?,
                );
            }
            let execution =
                crate::block::execute_verified_block(&block.header.context(), &*self, &verified)
                    .map_err(|error| match error {
                        BlockError::StateReadFailed { error, .. } => StoreError::StateReadFailed {
                            height,
                            source: *error,
                        },
                        invalid @ (BlockError::InvalidTransaction { .. }
                        | BlockError::TooMuchWork { .. }) => corrupt(invalid.to_string()),
                    })?;
            let prepared = self.prepare(execution);
            if prepared.app_hash != block.header.app_hash {
                self.discard_prepared();
                return Err(corrupt(format!(
                    "its state hashes to {}, its header claims {}",
                    prepared.app_hash, block.header.app_hash
                )));
            }
            self.tree.commit();
            self.pending = None;
            materialize::materialize(
                &self.db,
                &self.path,
                height,
                &prepared.stored,
                &prepared.writes,
                &prepared.tx_hashes,
            )?;
        }
        Ok(())
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
                let tree_key =
                    schema::tree_key(tag, &key, &value).map_err(|error| StoreError::Corrupt {
                        what: format!("{name} entry {}: {error}", hex::encode(&key)),
                    })?;
                entries.push((tree_key, schema::value_hash(tag, &value)));
            }
        }
        entries.sort_unstable_by_key(|entry| entry.0);
        Ok(StateTree::from_sorted(&entries))
    }

    /// How many committed blocks opening the store found unmaterialized (a
    /// crash left them so) and executed again.
    pub fn replayed_on_open(&self) -> u64 {
        self.replayed
    }

    /// The last committed block's metadata, or `None` before genesis.
    pub fn meta(&self) -> Option<&ChainMeta> {
        self.meta.as_ref()
    }

    /// The last committed height (0: genesis only), or `None` before genesis.
    pub fn height(&self) -> Option<u64> {
        self.meta.as_ref().map(|meta| meta.height)
    }

    /// Writes a genesis state of participants only (height 0): a chain
    /// without a recorded validator set, on which governance transactions
    /// are refused. See [`Store::init_genesis_state`].
    pub fn init_genesis(
        &mut self,
        chain_id: ChainId,
        participants: &[Participant],
    ) -> Result<&ChainMeta, StoreError> {
        let writes = participants
            .iter()
            .cloned()
            .map(StateValue::Participant)
            .collect();
        self.write_genesis(chain_id, writes)
    }

    /// Writes the genesis state (height 0): participants, and the validator
    /// set with its accounts ([`GenesisState::values`], which an auditor
    /// replaying the chain applies too). Calling it again with the same
    /// chain does nothing, so a node can always call it on start.
    pub fn init_genesis_state(
        &mut self,
        chain_id: ChainId,
        genesis: &GenesisState,
    ) -> Result<&ChainMeta, StoreError> {
        self.write_genesis(chain_id, genesis.values())
    }

    fn write_genesis(
        &mut self,
        chain_id: ChainId,
        writes: Vec<StateValue>,
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
            self.put_state(&mut batch, value);
        }
        batch.put_cf(
            self.cf(schema::METADATA),
            schema::META_KEY,
            borsh::to_vec(&meta).expect("encoding to a Vec"),
        );
        batch.put_cf(
            self.cf(schema::METADATA),
            schema::MATERIALIZED_KEY,
            0u64.to_be_bytes(),
        );
        if let Err(error) = write_synced(&self.db, &self.path, batch, "writing the genesis state") {
            self.tree.rollback();
            return Err(error);
        }
        self.tree.commit();
        self.cache.insert_block(0, Arc::new(writes));
        self.meta = Some(meta);
        Ok(self.meta.as_ref().expect("just set"))
    }

    /// Applies a block's writes to the state tree without committing them
    /// and returns them with the resulting app hash: what a proposer puts in
    /// its header, and what a validator compares with the proposed header.
    /// Only one prepared block is held at a time: preparing another undoes
    /// this one, and committing it then applies it again.
    pub fn prepare(&mut self, execution: BlockExecution) -> PreparedBlock {
        // Encoding and hashing each value is independent of the others:
        // spread it over the cores.
        let context = *execution.context();
        let tx_hashes = execution.tx_hashes;
        let writes = execution.writes;
        let (stored, hashes): (StoredWrites, Vec<(Hash, Hash)>) = writes
            .par_iter()
            .with_min_len(256)
            .map(|value| {
                let (_, tag, raw_key) = schema::state_location(&value.key());
                let bytes = encode_stored(value);
                let hashes = (value.tree_key(), schema::value_hash(tag, &bytes));
                ((tag, raw_key, bytes), hashes)
            })
            .unzip();
        self.tree.rollback();
        self.tree.begin();
        let app_hash = self.tree.apply(hashes.iter().copied());
        self.next_ticket += 1;
        self.pending = Some(self.next_ticket);
        PreparedBlock {
            writes: Arc::new(writes),
            tx_hashes,
            context,
            stored: Arc::new(stored),
            hashes,
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
                .map(|value| (value.tree_key(), value.value_hash())),
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
        if prepared.tx_hashes.len() != block.txs.len() {
            return Err(StoreError::ExecutionMismatch {
                height: header.height,
                txs: block.txs.len(),
                executed: prepared.tx_hashes.len(),
            });
        }
        // Opening the store after a crash executes the block again in its
        // header's context: it must be the context it was executed in.
        if prepared.context != header.context() {
            return Err(StoreError::ExecutedInOtherContext {
                height: header.height,
                time: header.time,
                executed_height: prepared.context.height,
                executed_time: prepared.context.time,
            });
        }
        if self.pending != Some(prepared.ticket) {
            // Another block was prepared since: put this one back in the tree.
            self.tree.rollback();
            self.tree.begin();
            self.tree.apply(prepared.hashes.iter().copied());
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
        if let Err(error) = self.materializer.failure(&self.path) {
            self.discard_prepared();
            return Err(error);
        }
        // Encoding the block and the synced write (which mostly waits for
        // the disk) run on a thread of their own. Meanwhile the cache lets
        // go of the oldest materialized blocks and takes this block's
        // values, pinned until materialized so that reads see them at once;
        // a failed write takes them out again (what was evicted is in
        // RocksDB).
        let (written, undo) = std::thread::scope(|scope| {
            let db = &self.db;
            let path = &self.path;
            let meta = &new_meta;
            let writer = scope.spawn(move || {
                let batch = block_batch(db, block, certificate, meta);
                write_synced(db, path, batch, "committing a block")
            });
            self.cache.evict(self.materializer.materialized());
            let undo = self
                .cache
                .insert_block(header.height, Arc::clone(&prepared.writes));
            let written = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (written, undo)
        });
        if let Err(error) = written {
            self.cache.undo(undo);
            self.discard_prepared();
            return Err(error);
        }
        self.tree.commit();
        self.pending = None;
        self.meta = Some(new_meta);
        self.materializer.submit(
            header.height,
            Arc::clone(&prepared.stored),
            Arc::clone(&prepared.writes),
            prepared.tx_hashes.clone(),
        );
        Ok(())
    }

    /// Waits until every committed block is written under its own keys:
    /// what index queries need.
    pub(crate) fn settle(&self) -> Result<(), StoreError> {
        let height = self.meta.as_ref().map_or(0, |meta| meta.height);
        self.materializer.wait_for(height, &self.path)
    }

    /// Adds one state value, and its holder index entry, to `batch`.
    fn put_state(&self, batch: &mut WriteBatch, value: &StateValue) {
        let (name, _, raw_key) = schema::state_location(&value.key());
        batch.put_cf(self.cf(name), raw_key, encode_stored(value));
        if let StateValue::Token(token) = value {
            materialize::put_holder_entries(
                batch,
                self.cf(schema::HOLDER_INDEX),
                &[materialize::holder_entry(token)],
            );
        }
    }

    /// The state tree, for proofs.
    pub(crate) fn tree(&self) -> &StateTree {
        &self.tree
    }

    /// A committed value if it was written recently (see `cache`).
    pub(crate) fn cached(&self, key: &StateKey) -> Option<&StateValue> {
        self.cache.get(key)
    }

    /// A state entry's bytes as RocksDB holds them: current for every key
    /// the cache does not hold (see `cache`).
    pub(crate) fn state_bytes(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError> {
        let (name, _, raw_key) = schema::state_location(key);
        self.db
            .get_cf(self.cf(name), raw_key)
            .map_err(self.rocks("reading state"))
    }
}

/// One of the column families every store is opened with (`schema::ALL`).
fn column_family<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name)
        .expect("every column family is created on open")
}

/// The one batch a block commits as: the block, its certificate and the
/// chain metadata.
fn block_batch(db: &DB, block: &Block, certificate: &[u8], meta: &ChainMeta) -> WriteBatch {
    let cf = |name| column_family(db, name);
    let mut batch = WriteBatch::default();
    let height_key = schema::height_key(block.header.height);
    batch.put_cf(cf(schema::BLOCKS), height_key, block.to_bytes());
    batch.put_cf(cf(schema::CERTIFICATES), height_key, certificate);
    batch.put_cf(
        cf(schema::METADATA),
        schema::META_KEY,
        borsh::to_vec(meta).expect("encoding to a Vec"),
    );
    batch
}

/// Writes `batch` durably: it is on disk once this returns (fsync of the
/// write-ahead log).
fn write_synced(
    db: &DB,
    path: &Path,
    batch: WriteBatch,
    doing: &'static str,
) -> Result<(), StoreError> {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.write_opt(batch, &options)
        .map_err(|source| StoreError::Rocks {
            doing,
            path: path.to_path_buf(),
            source,
        })
}

/// The bytes a state value is stored as: the borsh encoding of the inner
/// record (see `schema`).
fn encode_stored(value: &StateValue) -> Vec<u8> {
    match value {
        StateValue::Participant(participant) => borsh::to_vec(participant),
        StateValue::Token(token) => borsh::to_vec(token),
        StateValue::CreditLine(line) => borsh::to_vec(line),
        StateValue::Invoice(record) => borsh::to_vec(record),
        StateValue::Receivable(receivable) => borsh::to_vec(receivable),
        StateValue::KeyBinding(binding) => borsh::to_vec(binding),
        StateValue::KeyRecovery(recovery) => borsh::to_vec(recovery),
        StateValue::ValidatorEpoch(epoch) => borsh::to_vec(epoch),
        StateValue::ValidatorProposal(proposal) => borsh::to_vec(proposal),
        StateValue::GovernanceSummary(summary) => borsh::to_vec(summary),
    }
    .expect("encoding to a Vec")
}

impl Drop for Store {
    /// Finishes materializing and flushes, so that a clean stop leaves
    /// nothing to replay (a crash only costs the replay).
    fn drop(&mut self) {
        if let Some(deriver) = &mut self.deriver {
            deriver.stop();
        }
        self.materializer.stop();
        let handles: Vec<&rocksdb::ColumnFamily> = schema::ALL
            .iter()
            .filter_map(|name| self.db.cf_handle(name))
            .collect();
        let _ = self
            .db
            .flush_cfs_opt(&handles, &rocksdb::FlushOptions::default());
    }
}

fn read_meta(db: &DB, path: &Path) -> Result<Option<ChainMeta>, StoreError> {
    let rocks = |source| StoreError::Rocks {
        doing: "reading metadata",
        path: path.to_path_buf(),
        source,
    };
    let metadata = db
        .cf_handle(schema::METADATA)
        .expect("every column family is created on open");
    let bytes = db.get_cf(metadata, schema::META_KEY).map_err(rocks)?;
    bytes
        .map(|bytes| {
            borsh::from_slice(&bytes).map_err(|error| StoreError::Corrupt {
                what: format!("chain metadata: {error}"),
            })
        })
        .transpose()
}

fn read_materialized(db: &DB, path: &Path) -> Result<Option<u64>, StoreError> {
    let metadata = db
        .cf_handle(schema::METADATA)
        .expect("every column family is created on open");
    let bytes = db
        .get_cf(metadata, schema::MATERIALIZED_KEY)
        .map_err(|source| StoreError::Rocks {
            doing: "reading the materialized height",
            path: path.to_path_buf(),
            source,
        })?;
    bytes
        .map(|bytes| {
            <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    what: format!("materialized height of {} bytes", bytes.len()),
                })
        })
        .transpose()
}
