//! Prometheus metrics of a node, in the OpenMetrics text format served at
//! `/metrics`: height, committed transactions, mempool size (and its refusals
//! per reason, evictions and expiries), consensus round,
//! peers, and a histogram of commit latency (submission to commit, for
//! transactions submitted to this node's API).
//!
//! The driver and the API update them; nothing here reads a store or a clock.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Events dropped because a bounded queue was full, by queue and kind
/// (`scf_dropped_total{queue, kind}`); cheap to clone into the network and
/// the intake.
#[derive(Clone, Debug, Default)]
pub struct Drops(Family<[(&'static str, &'static str); 2], Counter>);

impl Drops {
    pub fn count(&self, queue: &'static str, kind: &'static str) {
        self.0
            .get_or_create(&[("queue", queue), ("kind", kind)])
            .inc();
    }

    /// How many were counted so far (tests).
    pub fn get(&self, queue: &'static str, kind: &'static str) -> u64 {
        self.0
            .get_or_create(&[("queue", queue), ("kind", kind)])
            .get()
    }
}

pub struct Metrics {
    registry: Registry,
    drops: Drops,
    height: Gauge,
    events_height: Gauge,
    committed_txs: Counter,
    mempool_txs: Gauge,
    mempool_bytes: Gauge,
    round: Gauge,
    peers: Gauge,
    commit_latency: Histogram,
    block_commit_seconds: Histogram,
    rejected_txs: Counter,
    block_txs: Histogram,
    equivocations: Counter,
    mempool: MempoolMetrics,
}

/// The mempool's refusals per reason, evictions and expiries (see
/// `mempool`'s module doc for the policy they count).
struct MempoolMetrics {
    refused: Family<Vec<(String, String)>, Counter>,
    evicted: Counter,
    expired: Counter,
}

impl MempoolMetrics {
    fn register(registry: &mut Registry) -> MempoolMetrics {
        let metrics = MempoolMetrics {
            refused: Family::default(),
            evicted: Counter::default(),
            expired: Counter::default(),
        };
        registry.register(
            "mempool_refused_txs",
            "Transactions the mempool refused on entry, by reason (the API's error code)",
            metrics.refused.clone(),
        );
        registry.register(
            "mempool_evicted_txs",
            "Pending transactions evicted to make room for another signer's ready transaction",
            metrics.evicted.clone(),
        );
        registry.register(
            "mempool_expired_txs",
            "Pending transactions dropped after waiting too many blocks behind a nonce gap",
            metrics.expired.clone(),
        );
        metrics
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("scf");
        let height = Gauge::default();
        registry.register(
            "height",
            "Height of the last committed block",
            height.clone(),
        );
        let events_height = Gauge::default();
        registry.register(
            "events_height",
            "Height up to which the event feed is derived",
            events_height.clone(),
        );
        let committed_txs = Counter::default();
        registry.register(
            "committed_txs",
            "Transactions committed since the node started",
            committed_txs.clone(),
        );
        let mempool_txs = Gauge::default();
        registry.register(
            "mempool_txs",
            "Transactions in the mempool",
            mempool_txs.clone(),
        );
        let mempool_bytes = Gauge::default();
        registry.register(
            "mempool_bytes",
            "Encoded size of the mempool's transactions",
            mempool_bytes.clone(),
        );
        let round = Gauge::default();
        registry.register("consensus_round", "Current consensus round", round.clone());
        let peers = Gauge::default();
        registry.register("peers", "Connected peers", peers.clone());
        // 5 ms .. ~41 s
        let commit_latency = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 14),
        );
        registry.register(
            "commit_latency_seconds",
            "From submission to this node's API until the transaction committed",
            commit_latency.clone(),
        );
        let block_commit_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 14),
        );
        registry.register(
            "block_commit_seconds",
            "Time to write one decided block to the store (synced)",
            block_commit_seconds.clone(),
        );
        let rejected_txs = Counter::default();
        registry.register(
            "rejected_txs",
            "Transactions dropped from the mempool as invalid",
            rejected_txs.clone(),
        );
        let block_txs = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            1.0, 2.0, 16,
        ));
        registry.register(
            "block_txs",
            "Transactions per committed block",
            block_txs.clone(),
        );
        let equivocations = Counter::default();
        registry.register(
            "equivocations",
            "Equivocations seen: two different messages a validator signed for one step",
            equivocations.clone(),
        );
        let mempool = MempoolMetrics::register(&mut registry);
        let drops = Drops::default();
        registry.register(
            "dropped",
            "Events dropped because a bounded queue was full (queue: network inbox, driver, gossip verification, sync serving)",
            drops.0.clone(),
        );
        Metrics {
            mempool,
            drops,
            equivocations,
            registry,
            height,
            events_height,
            committed_txs,
            mempool_txs,
            mempool_bytes,
            round,
            peers,
            commit_latency,
            block_commit_seconds,
            rejected_txs,
            block_txs,
        }
    }

    /// The drop counters, to hand to the parts that drop.
    pub fn drops(&self) -> Drops {
        self.drops.clone()
    }

    /// The gauge of the height up to which events are derived (set on the
    /// store's event thread).
    pub fn events_height(&self) -> Gauge {
        self.events_height.clone()
    }

    pub fn set_height(&self, height: u64) {
        self.height.set(height as i64);
    }

    pub fn block_committed(&self, txs: usize, write_time: Duration) {
        self.committed_txs.inc_by(txs as u64);
        self.block_txs.observe(txs as f64);
        self.block_commit_seconds.observe(write_time.as_secs_f64());
    }

    pub fn set_mempool(&self, txs: usize, bytes: usize) {
        self.mempool_txs.set(txs as i64);
        self.mempool_bytes.set(bytes as i64);
    }

    pub fn set_round(&self, round: u32) {
        self.round.set(i64::from(round));
    }

    pub fn set_peers(&self, peers: usize) {
        self.peers.set(peers as i64);
    }

    pub fn observe_commit_latency(&self, latency: Duration) {
        self.commit_latency.observe(latency.as_secs_f64());
    }

    pub fn rejected(&self, count: usize) {
        self.rejected_txs.inc_by(count as u64);
    }

    pub fn equivocations(&self, count: usize) {
        self.equivocations.inc_by(count as u64);
    }

    pub fn mempool_refused(&self, reason: &str, count: u64) {
        self.mempool
            .refused
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc_by(count);
    }

    pub fn mempool_departed(&self, evicted: u64, expired: u64) {
        self.mempool.evicted.inc_by(evicted);
        self.mempool.expired.inc_by(expired);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
