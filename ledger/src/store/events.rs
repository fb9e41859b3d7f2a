//! The event feed's storage: events derived from committed blocks on a
//! thread of the store's own, kept in the `events` column family under
//! their cursor, and read back a page at a time.
//!
//! The deriving thread follows materialization: once block `h` is
//! materialized, the token records its events read are in the column
//! families, and it writes block `h`'s events together with "events derived
//! up to `h`" in one batch. A block's events are written whole or not at
//! all, and deriving a block again writes the same keys and values
//! ([`crate::event`] explains why derivation is deterministic), so a crash
//! at any instant loses nothing and doubles nothing: on open the thread
//! starts after the recorded height and derives what is missing, which for
//! a store written before events existed is every block (a backfill).
//! Commits never wait for it, and a settlement's walk over its root's tokens
//! happens here, not in execution.
//!
//! Retention: with [`EventLog::set_retention`] of `n` blocks, the events of
//! blocks more than `n` below the newest derived one are deleted, and
//! a cursor older than what is kept is refused ([`EventsError::CursorExpired`])
//! rather than answered with a silent gap.
//!
//! Not here: the events' JSON form and the HTTP route (the node's API).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crypto::PublicKey;
use rocksdb::{DB, WriteBatch};

use super::materialize::MaterializedWatch;
use super::{StoreError, column_family, schema};
use crate::block::Block;
use crate::event::{Cursor, Event, derive_block_events};
use crate::state::{StateKey, StateValue};

/// A feed request the store cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(
        "cursor {cursor} is older than the events this node keeps: they start at height {retained_from}; start again from a snapshot or from the oldest kept event (no `after`)"
    )]
    CursorExpired { cursor: Cursor, retained_from: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which events a page keeps; every event when both are `None`.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Kind names (see [`crate::event::EventKind::NAMES`]).
    pub kinds: Option<Vec<&'static str>>,
    pub party: Option<PublicKey>,
}

impl EventFilter {
    fn keeps(&self, event: &Event) -> bool {
        self.kinds
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&event.kind.name()))
            && self.party.is_none_or(|party| event.involves(&party))
    }
}

/// One page of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Where the next page starts: the last event looked at (kept or
    /// filtered out), or the request's cursor if there was none.
    pub next: Cursor,
    /// Events of every block up to this height are in the feed.
    pub derived: u64,
    /// Events below this height have been deleted (0: none).
    pub retained_from: u64,
    /// Every stored event after the cursor was looked at: there is nothing
    /// more to read until a new block's events are derived.
    pub at_end: bool,
}

#[derive(Debug)]
struct Progress {
    derived: u64,
    pruned_below: u64,
    failure: Option<String>,
}

type Listener = Box<dyn Fn(u64) + Send + Sync>;

struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
    /// Blocks of events kept; 0 keeps everything.
    retention: AtomicU64,
    stop: AtomicBool,
    listeners: Mutex<Vec<Listener>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("progress", &self.progress)
            .finish()
    }
}

/// A handle on the event feed: cheap to clone, readable without the store's
/// lock (RocksDB reads are thread-safe). It does not keep the database open:
/// once the store is dropped its reads fail.
#[derive(Clone, Debug)]
pub struct EventLog {
    db: Weak<DB>,
    path: PathBuf,
    shared: Arc<Shared>,
}

/// The deriving thread (see the module documentation).
#[derive(Debug)]
pub(super) struct Deriver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Deriver {
    /// Starts deriving after the height recorded in `db`.
    pub fn start(
        db: Arc<DB>,
        path: PathBuf,
        materialized: MaterializedWatch,
    ) -> Result<(Deriver, EventLog), StoreError> {
        let derived = read_height(&db, &path, schema::EVENTS_DERIVED_KEY)?.unwrap_or(0);
        let pruned_below = read_height(&db, &path, schema::EVENTS_PRUNED_KEY)?.unwrap_or(0);
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress {
                derived,
                pruned_below,
                failure: None,
            }),
            changed: Condvar::new(),
            retention: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            listeners: Mutex::new(Vec::new()),
        });
        let log = EventLog {
            db: Arc::downgrade(&db),
            path: path.clone(),
            shared: Arc::clone(&shared),
        };
        let thread_log = log.clone();
        // The thread keeps the database open until the store stops it.
        let thread = std::thread::Builder::new()
            .name("store-events".into())
            .spawn(move || run(&thread_log, &db, &materialized))
            .expect("spawning the store's event thread");
        Ok((
            Deriver {
                shared,
                thread: Some(thread),
            },
            log,
        ))
    }

    /// Stops after the block being derived (the rest is derived on open).
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Deriver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long the thread sleeps at most before looking at its stop flag.
const POLL: Duration = Duration::from_millis(50);

fn run(log: &EventLog, db: &DB, materialized: &MaterializedWatch) {
    let shared = &log.shared;
    while !shared.stop.load(Ordering::SeqCst) {
        let derived = log.lock().derived;
        let target = match materialized.wait_beyond(derived, POLL) {
            Ok(target) => target,
            // Materialization failed: the store reports it to the driver;
            // nothing more can be derived until a restart.
            Err(error) => {
                log.fail(error.to_string());
                return;
            }
        };
        for height in derived + 1..=target {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            if let Err(error) = log.derive(db, height) {
                log.fail(error.to_string());
                return;
            }
        }
    }
}

impl EventLog {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.shared
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn rocks(&self, doing: &'static str) -> impl FnOnce(rocksdb::Error) -> StoreError + '_ {
        move |source| StoreError::Rocks {
            doing,
            path: self.path.clone(),
            source,
        }
    }

    /// The database, unless the store was dropped.
    fn db(&self) -> Result<Arc<DB>, StoreError> {
        self.db
            .upgrade()
            .ok_or_else(|| self.failed("the store is closed"))
    }

    fn fail(&self, reason: String) {
        self.lock().failure = Some(reason);
        self.shared.changed.notify_all();
    }

    /// Derives and writes block `height`'s events (its tokens are
    /// materialized), then prunes what retention no longer keeps.
    fn derive(&self, db: &DB, height: u64) -> Result<(), StoreError> {
        let bytes = db
            .get_cf(
                column_family(db, schema::BLOCKS),
                schema::height_key(height),
            )
            .map_err(self.rocks("reading a block to derive its events"))?
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("block {height} is materialized but not stored"),
            })?;
        let block = Block::from_bytes(&bytes).map_err(|error| StoreError::Corrupt {
            what: format!("block {height}: {error}"),
        })?;
        let events = derive_block_events(&block, |key| self.entry(db, key)).map_err(|error| {
            StoreError::Corrupt {
                what: format!("deriving the events of block {height}: {error}"),
            }
        })?;
        let mut batch = WriteBatch::default();
        let events_cf = column_family(db, schema::EVENTS);
        for event in &events {
            batch.put_cf(
                events_cf,
                event.cursor.to_key(),
                borsh::to_vec(event).expect("encoding to a Vec"),
            );
        }
        let metadata = column_family(db, schema::METADATA);
        batch.put_cf(metadata, schema::EVENTS_DERIVED_KEY, height.to_be_bytes());
        let retention = self.shared.retention.load(Ordering::SeqCst);
        let old_pruned = self.lock().pruned_below;
        let pruned_below = if retention == 0 {
            old_pruned
        } else {
            old_pruned.max((height + 1).saturating_sub(retention))
        };
        if pruned_below > old_pruned {
            batch.delete_range_cf(
                events_cf,
                Cursor::START.to_key(),
                first_of(pruned_below).to_key(),
            );
            batch.put_cf(
                metadata,
                schema::EVENTS_PRUNED_KEY,
                pruned_below.to_be_bytes(),
            );
            // Announced before the deletion is written: a reader that may
            // have seen the deletion then sees the new bound (see `page`).
            self.lock().pruned_below = pruned_below;
        }
        // Not synced: a crash loses at most a tail of it, with its height,
        // and the thread derives that again (the block is durable).
        db.write(batch)
            .map_err(self.rocks("writing a block's events"))?;
        self.lock().derived = height;
        self.shared.changed.notify_all();
        let listeners = self
            .shared
            .listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for listener in listeners.iter() {
            listener(height);
        }
        Ok(())
    }

    /// A materialized state entry (events read only entries that never
    /// change once written, so any later state gives the same answer).
    fn entry(&self, db: &DB, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
        let (name, _, raw_key) = schema::state_location(key);
        let bytes = db
            .get_cf(column_family(db, name), raw_key)
            .map_err(self.rocks("reading the state to derive events"))?;
        bytes
            .map(|bytes| super::queries::decode_state(key, &bytes))
            .transpose()
    }

    /// Heights up to which events are derived.
    pub fn derived(&self) -> u64 {
        self.lock().derived
    }

    /// Events below this height were deleted by retention (0: none).
    pub fn retained_from(&self) -> u64 {
        self.lock().pruned_below
    }

    /// Keeps the events of the newest `blocks` blocks (`None`: all). Applied
    /// as the next block's events are written.
    pub fn set_retention(&self, blocks: Option<u64>) {
        self.shared
            .retention
            .store(blocks.unwrap_or(0), Ordering::SeqCst);
    }

    /// Calls `listener` with the height each time a block's events are
    /// written (on the deriving thread: it must not block).
    pub fn on_derived(&self, listener: impl Fn(u64) + Send + Sync + 'static) {
        self.shared
            .listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Box::new(listener));
    }

    /// Waits up to `timeout` for the events of block `height`; whether they
    /// are there. Fails if deriving failed.
    pub fn wait_for(&self, height: u64, timeout: Duration) -> Result<bool, StoreError> {
        let deadline = Instant::now() + timeout;
        let mut progress = self.lock();
        loop {
            if let Some(failure) = &progress.failure {
                return Err(self.failed(failure));
            }
            if progress.derived >= height {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            progress = self
                .shared
                .changed
                .wait_timeout(progress, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    fn failed(&self, failure: &str) -> StoreError {
        StoreError::EventsFailed {
            path: self.path.clone(),
            reason: failure.to_string(),
        }
    }

    /// The events after `after` (from the oldest kept when `None`) that
    /// `filter` keeps, at most `limit` of them, looking at no more than
    /// `max_scan` events: a filter that matches little still costs a bounded
    /// read, and `next` says where to go on.
    pub fn page(
        &self,
        after: Option<Cursor>,
        limit: usize,
        max_scan: usize,
        filter: &EventFilter,
    ) -> Result<EventPage, EventsError> {
        let (derived, failure) = {
            let progress = self.lock();
            (progress.derived, progress.failure.clone())
        };
        if let Some(failure) = failure {
            return Err(self.failed(&failure).into());
        }
        let start = after.unwrap_or(Cursor::START);
        self.check_kept(after)?;
        let mut events = Vec::new();
        let mut next = start;
        let mut scanned = 0;
        let mut at_end = true;
        let from = start.to_key();
        let db = self.db()?;
        let iterator = db.iterator_cf(
            column_family(&db, schema::EVENTS),
            rocksdb::IteratorMode::From(&from, rocksdb::Direction::Forward),
        );
        for item in iterator {
            if events.len() >= limit || scanned >= max_scan {
                at_end = false;
                break;
            }
            let (key, value) = item.map_err(self.rocks("reading events"))?;
            if *key == from {
                continue;
            }
            let event: Event = borsh::from_slice(&value).map_err(|error| StoreError::Corrupt {
                what: format!("event {}: {error}", hex::encode(&key)),
            })?;
            scanned += 1;
            next = event.cursor;
            if filter.keeps(&event) {
                events.push(event);
            }
        }
        // Pruning announces its bound before deleting: if the scan could
        // have missed deleted events, this sees it.
        self.check_kept(after)?;
        Ok(EventPage {
            events,
            next,
            derived,
            retained_from: self.retained_from(),
            at_end,
        })
    }

    fn check_kept(&self, after: Option<Cursor>) -> Result<(), EventsError> {
        let retained_from = self.retained_from();
        match after {
            Some(cursor) if cursor != Cursor::START && cursor.height < retained_from => {
                Err(EventsError::CursorExpired {
                    cursor,
                    retained_from,
                })
            }
            _ => Ok(()),
        }
    }
}

/// The first cursor of block `height`.
fn first_of(height: u64) -> Cursor {
    Cursor {
        height,
        tx_index: 0,
        event_index: 0,
    }
}

fn read_height(db: &DB, path: &Path, key: &[u8]) -> Result<Option<u64>, StoreError> {
    let bytes = db
        .get_cf(column_family(db, schema::METADATA), key)
        .map_err(|source| StoreError::Rocks {
            doing: "reading the events' metadata",
            path: path.to_path_buf(),
            source,
        })?;
    bytes
        .map(|bytes| {
            <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    what: format!("events height of {} bytes", bytes.len()),
                })
        })
        .transpose()
}
