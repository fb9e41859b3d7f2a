//! Materializing committed blocks into the per-record column families, on a
//! thread of the store's own.
//!
//! A block commits durably as one synced `WriteBatch` holding the block, its
//! certificate and the chain metadata (see the module documentation of
//! `store`): the block itself is the record of what it changes, since
//! executing its transactions on the state before it gives exactly its
//! writes. Writing every changed value, holder index entry and transaction
//! index entry under its own key — tens of thousands of memtable inserts for
//! a block of thousands of transfers, the largest single cost of a commit —
//! happens here instead, while the node goes on with the next block.
//!
//! These writes skip the write-ahead log: all they hold can be derived again
//! from the committed blocks. Each block's batch also records the
//! materialized height, and the database flushes its column families
//! atomically (`atomic_flush`), so after any crash the column families hold
//! exactly the state at the recorded height: opening the store executes the
//! committed blocks above it again and materializes them ([`materialize`] is
//! the same function for both).
//!
//! Until a block is materialized, reads of its values are answered by the
//! store's cache, which pins them; queries of the indexes wait for it
//! ([`Materializer::wait_for`]).
//!
//! Not done here: deciding what a block changes (execution) or the state
//! tree.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rocksdb::{DB, WriteBatch, WriteOptions};

use super::{StoreError, TxLocation, schema};
use crate::state::StateValue;
use crate::token::Token;
use crate::transaction::TxHash;

/// A block's state writes as the column families take them: (variant tag,
/// raw key, stored bytes), each key once, in the block's execution order.
pub(super) type StoredWrites = Vec<(u8, [u8; 32], Vec<u8>)>;

/// Writes block `height`'s values into the column families, with the index
/// entries they imply, and records the materialized height: one batch,
/// without the write-ahead log (see the module documentation).
pub(super) fn materialize(
    db: &DB,
    path: &std::path::Path,
    height: u64,
    writes: &StoredWrites,
    values: &[StateValue],
    tx_hashes: &[TxHash],
) -> Result<(), StoreError> {
    let cf = |name| super::column_family(db, name);
    let mut batch = WriteBatch::default();
    // A token's holder entry comes from the value itself, not from
    // decoding the bytes it was encoded to.
    let mut holders: Vec<([u8; 64], bool)> = values
        .iter()
        .filter_map(|value| match value {
            StateValue::Token(token) => Some(holder_entry(token)),
            _ => None,
        })
        .collect();
    // In state-key order, which is column family order then key order:
    // each column family's keys arrive sorted, which RocksDB's memtable
    // inserts markedly faster than random ones. (`writes` is in execution
    // order; sorting here keeps the sort off the block's critical path.)
    let mut sorted: Vec<&(u8, [u8; 32], Vec<u8>)> = writes.iter().collect();
    sorted.sort_unstable_by_key(|(tag, key, _)| (*tag, *key));
    for (tag, key, value) in sorted {
        let name = schema::state_name(*tag).ok_or_else(|| StoreError::Corrupt {
            what: format!("write of block {height}: unknown variant tag {tag}"),
        })?;
        batch.put_cf(cf(name), key, value);
    }
    holders.sort_unstable_by_key(|entry| entry.0);
    put_holder_entries(&mut batch, cf(schema::HOLDER_INDEX), &holders);
    let mut locations: Vec<([u8; 32], TxLocation)> = tx_hashes
        .iter()
        .enumerate()
        .map(|(index, hash)| {
            let index = u32::try_from(index).expect("fewer than 2^32 txs in a block");
            (*hash.0.as_bytes(), TxLocation { height, index })
        })
        .collect();
    locations.sort_unstable_by_key(|entry| entry.0);
    let tx_index = cf(schema::TX_INDEX);
    for (hash, location) in &locations {
        batch.put_cf(
            tx_index,
            hash,
            borsh::to_vec(location).expect("encoding to a Vec"),
        );
    }
    batch.put_cf(
        cf(schema::METADATA),
        schema::MATERIALIZED_KEY,
        height.to_be_bytes(),
    );
    let mut options = WriteOptions::default();
    options.disable_wal(true);
    db.write_opt(batch, &options)
        .map_err(|source| StoreError::Rocks {
            doing: "materializing a committed block",
            path: path.to_path_buf(),
            source,
        })
}

/// A token's holder index key and whether the entry exists. A token's holder
/// never changes (a transfer makes new tokens), so its entry only comes and
/// goes with its status.
pub(super) fn holder_entry(token: &Token) -> ([u8; 64], bool) {
    (
        schema::pair_key(&token.holder.0, &token.id.0.0),
        token.is_unspent(),
    )
}

/// Puts or deletes holder index entries (see [`holder_entry`]).
pub(super) fn put_holder_entries(
    batch: &mut WriteBatch,
    holder_index: &rocksdb::ColumnFamily,
    entries: &[([u8; 64], bool)],
) {
    for (key, unspent) in entries {
        if *unspent {
            batch.put_cf(holder_index, key, []);
        } else {
            batch.delete_cf(holder_index, key);
        }
    }
}

/// How far materialization has got.
#[derive(Debug)]
struct Progress {
    materialized: u64,
    /// Why the thread stopped, if it failed: every later commit and every
    /// query that waits reports it. Reopening the store materializes the
    /// blocks again.
    failure: Option<String>,
}

#[derive(Debug)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

struct Job {
    height: u64,
    writes: Arc<StoredWrites>,
    values: Arc<Vec<StateValue>>,
    tx_hashes: Vec<TxHash>,
}

/// The materializing thread and what it has done.
#[derive(Debug)]
pub(super) struct Materializer {
    jobs: Option<SyncSender<Job>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Waits on materialization's progress from another thread (the events'
/// deriving thread).
#[derive(Debug, Clone)]
pub(super) struct MaterializedWatch {
    shared: Arc<Shared>,
    path: PathBuf,
}

impl MaterializedWatch {
    /// The materialized height once it is above `height`, or after
    /// `timeout` whatever it is.
    pub fn wait_beyond(
        &self,
        height: u64,
        timeout: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let progress = self
            .shared
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (progress, _) = self
            .shared
            .changed
            .wait_timeout_while(progress, timeout, |progress| {
                progress.materialized <= height && progress.failure.is_none()
            })
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &progress.failure {
            Some(failure) => Err(failed(&self.path, failure)),
            None => Ok(progress.materialized),
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("height", &self.height).finish()
    }
}

impl Materializer {
    /// Starts the thread for a store materialized up to `materialized`.
    pub fn start(db: Arc<DB>, path: PathBuf, materialized: u64) -> Materializer {
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress {
                materialized,
                failure: None,
            }),
            changed: Condvar::new(),
        });
        // One block queued behind the one being written: the committer
        // waits rather than letting unmaterialized blocks (pinned in memory)
        // pile up.
        let (jobs, receiver) = sync_channel::<Job>(1);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("store-materialize".into())
            .spawn(move || run(&db, &path, &receiver, &thread_shared))
            .expect("spawning the store's materializing thread");
        Materializer {
            jobs: Some(jobs),
            shared,
            thread: Some(thread),
        }
    }

    /// A handle to wait on progress from another thread.
    pub fn watch(&self, path: PathBuf) -> MaterializedWatch {
        MaterializedWatch {
            shared: Arc::clone(&self.shared),
            path,
        }
    }

    /// The height every column family holds.
    pub fn materialized(&self) -> u64 {
        self.lock().materialized
    }

    /// Records that opening the store materialized up to `height` itself.
    pub fn replayed(&self, height: u64) {
        self.lock().materialized = height;
    }

    /// The failure that stopped materialization, if any.
    pub fn failure(&self, path: &std::path::Path) -> Result<(), StoreError> {
        match &self.lock().failure {
            Some(failure) => Err(failed(path, failure)),
            None => Ok(()),
        }
    }

    /// Queues block `height`'s writes (after its durable commit).
    pub fn submit(
        &self,
        height: u64,
        writes: Arc<StoredWrites>,
        values: Arc<Vec<StateValue>>,
        tx_hashes: Vec<TxHash>,
    ) {
        if let Some(jobs) = &self.jobs {
            // A closed channel means the thread stopped after a failure,
            // which `failure` reports.
            let _ = jobs.send(Job {
                height,
                writes,
                values,
                tx_hashes,
            });
        }
    }

    /// Waits until block `height` is materialized.
    pub fn wait_for(&self, height: u64, path: &std::path::Path) -> Result<(), StoreError> {
        let mut progress = self.lock();
        loop {
            if let Some(failure) = &progress.failure {
                return Err(failed(path, failure));
            }
            if progress.materialized >= height {
                return Ok(());
            }
            progress = self
                .shared
                .changed
                .wait(progress)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Finishes what is queued and stops the thread.
    pub fn stop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        // A panic on the thread holding the lock leaves the numbers intact.
        self.shared
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Materializer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn failed(path: &std::path::Path, failure: &str) -> StoreError {
    StoreError::MaterializationFailed {
        path: path.to_path_buf(),
        reason: failure.to_string(),
    }
}

fn run(db: &DB, path: &std::path::Path, jobs: &Receiver<Job>, shared: &Shared) {
    while let Ok(job) = jobs.recv() {
        let result = materialize(
            db,
            path,
            job.height,
            &job.writes,
            &job.values,
            &job.tx_hashes,
        );
        let mut progress = shared
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match result {
            Ok(()) => progress.materialized = job.height,
            Err(error) => progress.failure = Some(error.to_string()),
        }
        let stop = progress.failure.is_some();
        drop(progress);
        shared.changed.notify_all();
        if stop {
            return;
        }
    }
}
