//! What the driver, the API and the gossip handlers share: the store (the
//! driver is its only writer; everyone else reads), the mempool, the live
//! status, commit notifications and recent rejections.
//!
//! Locking: the store sits behind a read-write lock that the driver holds for
//! writing only while it executes, prepares or commits a block; readers take
//! it inside `spawn_blocking` (RocksDB reads block). Nothing here starts a
//! task or touches the network: submitted transactions are handed to the
//! gossip task through [`Shared::outbox`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crypto::{ChainId, Hash, PublicKey};
use genesis::Genesis;
use ledger::store::{EventLog, Store};
use ledger::{Participant, SignedTransaction, StateError, TxError, TxHash};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, mpsc, watch};

use crate::api::types::{TxState, created_token_ids};
use crate::mempool::{Mempool, MempoolError};
use crate::metrics::Metrics;
use crate::validators::ValidatorSchedule;

/// How many rejected transactions are remembered for `GET /v1/txs/{hash}`.
const REMEMBERED_REJECTIONS: usize = 100_000;
/// How many recent blocks are kept for peers that ask for one by hash.
const RECENT_BLOCKS: usize = 16;
/// How many API submissions' arrival times are kept for the latency histogram.
const REMEMBERED_SUBMISSIONS: usize = 400_000;

/// The node's live state, published by the driver after every change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveStatus {
    pub height: u64,
    pub block_hash: Hash,
    pub app_hash: Hash,
    pub block_time_ms: u64,
    pub round: u32,
    pub syncing: bool,
    pub peers: Vec<String>,
}

/// One committed block, as announced to waiters.
#[derive(Clone, Debug)]
pub struct CommitNotice {
    pub height: u64,
    /// Transaction hashes in block order.
    pub tx_hashes: Arc<Vec<TxHash>>,
}

/// A rejection, as announced to waiters.
#[derive(Clone, Debug)]
pub struct RejectNotice {
    pub hash: TxHash,
    pub error: TxError,
}

pub struct Shared {
    pub genesis: Genesis,
    pub chain_id: ChainId,
    pub node_name: String,
    pub is_validator: bool,
    pub store: RwLock<Store>,
    /// The validator sets from the next height on, as committed state
    /// records them; the driver replaces it after every commit.
    pub validators: RwLock<Arc<ValidatorSchedule>>,
    /// The event feed, read without the store's lock.
    pub events: EventLog,
    /// The height up to which events are derived, for long-polls to wait on.
    pub events_derived: Arc<watch::Sender<u64>>,
    pub mempool: Mempool,
    pub metrics: Metrics,
    pub status: watch::Sender<LiveStatus>,
    pub commits: broadcast::Sender<CommitNotice>,
    pub rejections: broadcast::Sender<RejectNotice>,
    /// Transactions admitted from the API, for the gossip task to publish.
    pub outbox: mpsc::UnboundedSender<Arc<SignedTransaction>>,
    rejected: Mutex<Remembered<TxHash, TxError>>,
    /// Blocks proposed or received lately (encoded), for peers that ask by hash.
    recent_blocks: Mutex<VecDeque<(Hash, Arc<Vec<u8>>)>>,
    submitted: Mutex<Remembered<TxHash, Instant>>,
    /// Equivocation evidence seen (see `driver::evidence`).
    pub evidence: Mutex<Vec<consensus::Equivocation>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        genesis: Genesis,
        node_name: String,
        is_validator: bool,
        store: Store,
        mempool: Mempool,
        outbox: mpsc::UnboundedSender<Arc<SignedTransaction>>,
    ) -> Shared {
        let chain_id = genesis.chain_id();
        let status = match store.meta() {
            Some(meta) => LiveStatus {
                height: meta.height,
                block_hash: meta.block_hash,
                app_hash: meta.app_hash,
                block_time_ms: match store.block(meta.height) {
                    Ok(Some(block)) => block.header.time.0,
                    _ => genesis.genesis_time_ms,
                },
                ..LiveStatus::default()
            },
            None => LiveStatus::default(),
        };
        let metrics = Metrics::new();
        let events = store.events();
        let events_derived = Arc::new(watch::Sender::new(events.derived()));
        {
            let events_derived = Arc::clone(&events_derived);
            let gauge = metrics.events_height();
            gauge.set(events.derived() as i64);
            events.on_derived(move |height| {
                gauge.set(height as i64);
                events_derived.send_replace(height);
            });
        }
        // Expiry counts blocks from here, not from height 0.
        mempool.observe_height(status.height);
        let validators = ValidatorSchedule::read(&store, &genesis).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read the validator set from the store; using genesis's until the next commit");
            ValidatorSchedule::from_genesis(&genesis, status.height)
        });
        Shared {
            genesis,
            chain_id,
            node_name,
            is_validator,
            store: RwLock::new(store),
            validators: RwLock::new(Arc::new(validators)),
            events,
            events_derived,
            mempool,
            metrics,
            status: watch::Sender::new(status),
            commits: broadcast::channel(1024).0,
            rejections: broadcast::channel(4096).0,
            outbox,
            rejected: Mutex::new(Remembered::new(REMEMBERED_REJECTIONS)),
            recent_blocks: Mutex::new(VecDeque::new()),
            submitted: Mutex::new(Remembered::new(REMEMBERED_SUBMISSIONS)),
            evidence: Mutex::new(Vec::new()),
        }
    }

    /// The validator schedule as last published.
    pub fn validator_schedule(&self) -> Arc<ValidatorSchedule> {
        Arc::clone(&self.validators.read())
    }

    /// Reads the schedule after the last commit and publishes it.
    pub fn refresh_validators(&self) -> Result<Arc<ValidatorSchedule>, StateError> {
        let schedule = Arc::new(ValidatorSchedule::read(&self.store.read(), &self.genesis)?);
        *self.validators.write() = Arc::clone(&schedule);
        Ok(schedule)
    }

    pub fn decimals(&self) -> u8 {
        self.genesis.currency_decimals
    }

    /// A participant in the committed state.
    pub fn participant(&self, key: &PublicKey) -> Result<Option<Participant>, StateError> {
        participant_in(&self.store.read(), key)
    }

    /// Checks and admits transactions (signatures in one batch) and queues
    /// the admitted ones for gossip. Blocking: call from `spawn_blocking`.
    pub fn admit(
        &self,
        txs: Vec<SignedTransaction>,
        from_api: bool,
    ) -> Vec<Result<TxHash, MempoolError>> {
        let copies: Vec<Arc<SignedTransaction>> = if from_api {
            txs.iter().cloned().map(Arc::new).collect()
        } else {
            Vec::new()
        };
        // Signatures are checked before the store is locked: a batch takes
        // milliseconds, and the driver must not wait for it to commit.
        let screened = self.mempool.screen(txs);
        let results = {
            let store = self.store.read();
            let status = self.status.borrow().clone();
            // The rules as the next block would see them, give or take
            // its exact time.
            let context = ledger::BlockContext {
                chain_id: self.chain_id,
                height: status.height + 1,
                time: ledger::Timestamp(now_ms().max(status.block_time_ms + 1)),
            };
            self.mempool.insert_screened(
                screened,
                &|key| signer_account_in(&store, key),
                // A failed read comes back as `ExecError::State`, which the
                // mempool answers as a temporary refusal: no verdict.
                &|tx, hash| {
                    ledger::execute_verified(
                        &context,
                        &*store,
                        ledger::VerifiedTx::assume_verified(tx, hash),
                    )
                    .map(|_| ())
                },
            )
        };
        if from_api {
            let now = Instant::now();
            let mut submitted = self.submitted.lock();
            for (result, tx) in results.iter().zip(copies) {
                if let Ok(hash) = result {
                    submitted.insert(*hash, now);
                    // A closed outbox means the node is stopping.
                    let _ = self.outbox.send(tx);
                }
            }
        }
        self.count_refusals(&results);
        self.publish_mempool_metrics();
        results
    }

    /// Counts refused submissions per reason for `/metrics`.
    fn count_refusals(&self, results: &[Result<TxHash, MempoolError>]) {
        let mut per_reason: std::collections::BTreeMap<String, u64> = Default::default();
        for error in results.iter().filter_map(|result| result.as_ref().err()) {
            *per_reason.entry(error.code()).or_default() += 1;
        }
        for (reason, count) in per_reason {
            self.metrics.mempool_refused(&reason, count);
        }
    }

    /// The mempool's size and its eviction and expiry counters, for `/metrics`.
    pub fn publish_mempool_metrics(&self) {
        let (count, bytes) = self.mempool.size();
        self.metrics.set_mempool(count, bytes);
        let new = self.mempool.take_new_counts();
        self.metrics.mempool_departed(new.evicted, new.expired);
    }

    /// Keeps a candidate block for peers that fetch it by hash.
    pub fn remember_block(&self, block: &ledger::Block) {
        let hash = block.hash();
        let mut recent = self.recent_blocks.lock();
        if recent.iter().any(|(known, _)| *known == hash) {
            return;
        }
        recent.push_back((hash, Arc::new(block.to_bytes())));
        while recent.len() > RECENT_BLOCKS {
            recent.pop_front();
        }
    }

    pub fn recent_block(&self, hash: &Hash) -> Option<Arc<Vec<u8>>> {
        self.recent_blocks
            .lock()
            .iter()
            .find(|(known, _)| known == hash)
            .map(|(_, bytes)| Arc::clone(bytes))
    }

    /// Records rejections (from the proposer's execution or the mempool's
    /// recheck) and tells waiters.
    pub fn record_rejections(&self, rejected: Vec<(TxHash, TxError)>) {
        if rejected.is_empty() {
            return;
        }
        self.metrics.rejected(rejected.len());
        let mut remembered = self.rejected.lock();
        for (hash, error) in rejected {
            remembered.insert(hash, error.clone());
            let _ = self.rejections.send(RejectNotice { hash, error });
        }
    }

    /// Observes the submission-to-commit latency of API-submitted
    /// transactions in a committed block.
    pub fn record_commit_latency(&self, hashes: &[TxHash]) {
        let now = Instant::now();
        let mut submitted = self.submitted.lock();
        for hash in hashes {
            if let Some(at) = submitted.remove(hash) {
                self.metrics.observe_commit_latency(now - at);
            }
        }
    }

    /// Where a transaction is. `None`: never seen (or forgotten). Blocking.
    pub fn tx_state(&self, hash: &TxHash) -> Result<Option<TxState>, ledger::store::StoreError> {
        {
            let store = self.store.read();
            if let Some(location) = store.tx_location(hash)? {
                let tokens = store
                    .block(location.height)?
                    .and_then(|block| {
                        block
                            .txs
                            .get(location.index as usize)
                            .map(|tx| created_token_ids(hash, &tx.tx.body))
                    })
                    .unwrap_or_default();
                return Ok(Some(TxState::Committed {
                    height: location.height,
                    index: location.index,
                    tokens,
                }));
            }
        }
        if self.mempool.contains(hash) {
            return Ok(Some(TxState::Pending));
        }
        if let Some(error) = self.rejected.lock().get(hash) {
            return Ok(Some(rejected_state(error)));
        }
        Ok(None)
    }

    /// Waits until `hash` commits or is rejected, or `timeout` passes; then
    /// returns its state. Async: subscribes before looking so no commit can
    /// slip between the look and the wait.
    pub async fn wait_for(self: &Arc<Self>, hash: TxHash, timeout: Duration) -> Option<TxState> {
        let mut commits = self.commits.subscribe();
        let mut rejections = self.rejections.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let shared = Arc::clone(self);
            let state = tokio::task::spawn_blocking(move || shared.tx_state(&hash))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            match &state {
                Some(TxState::Pending) => {}
                _ => return state,
            }
            // Wait for the next relevant event (or a lag, or the deadline)
            // and look again.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => return Some(TxState::Pending),
                    notice = commits.recv() => match notice {
                        Ok(notice) if !notice.tx_hashes.contains(&hash) => continue,
                        _ => break,
                    },
                    notice = rejections.recv() => match notice {
                        Ok(notice) if notice.hash != hash => continue,
                        _ => break,
                    },
                }
            }
        }
    }
}

/// The `rejected` answer for a ledger rule.
pub fn rejected_state(error: &TxError) -> TxState {
    TxState::Rejected {
        error: crate::mempool::rule_code(error),
        detail: error.to_string(),
    }
}

/// A participant in the committed state. A failed read is an error, never
/// "unknown": the mempool answers it as a temporary refusal and the driver
/// stops on it (its own disk failing), so no transaction is judged on it.
pub fn participant_in(store: &Store, key: &PublicKey) -> Result<Option<Participant>, StateError> {
    ledger::StateView::participant(store, key)
}

/// The participant a transaction signed with `key` is for: the one whose
/// identity is `key`, or the one a rotation or recovery bound `key` to
/// (`ledger::signing_participant`'s indirection). Its `signing_key` may be
/// another key (`key` was replaced): the mempool refuses that signer.
pub fn signer_account_in(
    store: &Store,
    key: &PublicKey,
) -> Result<Option<Participant>, StateError> {
    use ledger::StateView;
    if let Some(participant) = store.participant(key)? {
        return Ok(Some(participant));
    }
    match store.key_binding(key)? {
        Some(binding) => store.participant(&binding.participant),
        None => Ok(None),
    }
}

/// The local clock in Unix milliseconds: used for block times and the
/// mempool's dry run, never by the ledger's rules themselves.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// A bounded map that forgets its oldest entries. Each insertion is stamped,
/// so a key removed and inserted again is not forgotten early by its older
/// place in the queue.
struct Remembered<K, V> {
    map: HashMap<K, (V, u64)>,
    order: VecDeque<(K, u64)>,
    capacity: usize,
    stamp: u64,
}

impl<K: std::hash::Hash + Eq + Copy, V> Remembered<K, V> {
    fn new(capacity: usize) -> Self {
        Remembered {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            stamp: 0,
        }
    }

    fn insert(&mut self, key: K, value: V) {
        match self.map.get_mut(&key) {
            Some(entry) => entry.0 = value,
            None => {
                self.stamp += 1;
                self.map.insert(key, (value, self.stamp));
                self.order.push_back((key, self.stamp));
            }
        }
        while self.order.len() > self.capacity {
            let Some((old, stamp)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|entry| entry.1 == stamp) {
                self.map.remove(&old);
            }
        }
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|entry| &entry.0)
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        // Its place in `order` stays until it ages out, and then is skipped.
        self.map.remove(key).map(|entry| entry.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Remembered;

    #[test]
    fn remembered_forgets_the_oldest_and_keeps_a_key_inserted_again() {
        let mut remembered = Remembered::new(2);
        remembered.insert(1, "a");
        remembered.insert(2, "b");
        remembered.insert(3, "c");
        assert_eq!(remembered.get(&1), None, "the oldest goes");
        assert_eq!(remembered.get(&2), Some(&"b"));

        // 2 removed and inserted again is now the newest: 3 goes first.
        assert_eq!(remembered.remove(&2), Some("b"));
        remembered.insert(2, "B");
        remembered.insert(4, "d");
        assert_eq!(remembered.get(&2), Some(&"B"));
        assert_eq!(remembered.get(&4), Some(&"d"));
        assert_eq!(remembered.get(&3), None);
        remembered.insert(5, "e");
        assert_eq!(remembered.get(&2), None);
        assert_eq!(remembered.get(&4), Some(&"d"));
    }
}
