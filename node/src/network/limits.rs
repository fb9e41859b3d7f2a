//! What one peer may cost this node, and the per-peer rate limiter that
//! enforces the sync part of it.
//!
//! [`P2pLimits`] is the `[p2p]` section of `config.toml`: connection limits
//! (enforced by libp2p's `connection_limits` behaviour), the cap on
//! concurrent sync streams per connection, the per-peer rate of sync
//! requests and of bytes served, the size of a sync answer, and the bounds
//! of every queue between the network and the node. Defaults suit a
//! consortium of a few dozen nodes on one machine each.
//!
//! [`TokenBucket`] is a plain token bucket that may go into debt: a sync
//! answer's size is known only once it is built, so it is charged after the
//! fact, and the peer's next request waits until the debt is repaid. It
//! takes the time as an argument (no clock inside), so it is tested without
//! sleeping.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Limits on what peers can make the node hold or do. Every field has a
/// default; `config.toml` may set any of them under `[p2p]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pLimits {
    /// Established connections per peer. Two lets both sides dial each
    /// other at once; a third is refused.
    pub max_connections_per_peer: u32,
    /// Established connections in all (genesis peers only reach this).
    pub max_connections: u32,
    /// Incoming connections still in their handshake (any address may open
    /// one; the genesis allow-list is checked once the handshake is done).
    pub max_pending_incoming: u32,
    /// Concurrent sync streams (requests in and out) per connection.
    pub max_sync_streams_per_connection: usize,
    /// Inbound streams of any protocol negotiating at once per connection.
    pub max_negotiating_streams_per_connection: usize,
    /// Sync requests a peer may make per second, on average…
    pub sync_requests_per_second: u32,
    /// …and in a burst.
    pub sync_request_burst: u32,
    /// Bytes of sync answers served to one peer per second, on average…
    pub sync_bytes_per_second: u64,
    /// …and in a burst (at least one full answer).
    pub sync_bytes_burst: u64,
    /// Sync requests of one peer waiting for an answer; more are refused.
    pub max_owed_sync_answers_per_peer: usize,
    /// Sync answers built at once (each reads the store on a blocking
    /// thread).
    pub sync_serving_concurrency: usize,
    /// Most bytes of blocks and certificates in one `Blocks` answer (one
    /// block is always sent, whatever its size, under the protocol limit).
    pub max_sync_answer_bytes: usize,
    /// Most blocks in one `Blocks` answer.
    pub max_sync_answer_blocks: u64,
    /// Consensus messages and block announcements from one peer waiting
    /// for the node; more from that peer are dropped (counted).
    pub inbox_consensus_per_peer: usize,
    /// …and bytes of them from all peers together (announcements carry
    /// a header and the block's transaction hashes).
    pub inbox_consensus_bytes: usize,
    /// Transaction batches from one peer waiting for the node…
    pub inbox_transaction_batches_per_peer: usize,
    /// …and bytes of transaction batches from all peers together.
    pub inbox_transaction_bytes: usize,
    /// Sync requests from one peer waiting for the node.
    pub inbox_sync_per_peer: usize,
    /// Events waiting for the consensus driver. When full, consensus
    /// messages and announcements from peers are dropped (counted; consensus
    /// rebroadcasts); the node's own timers and sync results wait instead.
    pub driver_queue: usize,
    /// Transaction batches from gossip being verified at once.
    pub gossip_verification_concurrency: usize,
    /// Transaction batches from gossip waiting for verification; more are
    /// dropped (counted, not relayed).
    pub gossip_verification_queue: usize,
    /// A peer gossipsub graylisted (it sent messages the node rejected:
    /// malformed, badly signed) is disconnected and refused for this long,
    /// and again until its score has recovered: gossipsub ignores its
    /// messages, but only after checking each one's signature. 0 keeps it
    /// connected.
    pub graylisted_peer_ban_seconds: u64,
}

impl Default for P2pLimits {
    fn default() -> Self {
        P2pLimits {
            max_connections_per_peer: 2,
            max_connections: 128,
            max_pending_incoming: 16,
            max_sync_streams_per_connection: 8,
            max_negotiating_streams_per_connection: 16,
            sync_requests_per_second: 50,
            sync_request_burst: 100,
            sync_bytes_per_second: 32 * 1024 * 1024,
            sync_bytes_burst: 64 * 1024 * 1024,
            max_owed_sync_answers_per_peer: 8,
            sync_serving_concurrency: 2,
            max_sync_answer_bytes: 8 * 1024 * 1024,
            max_sync_answer_blocks: 64,
            inbox_consensus_per_peer: 1024,
            inbox_consensus_bytes: 64 * 1024 * 1024,
            inbox_transaction_batches_per_peer: 32,
            inbox_transaction_bytes: 32 * 1024 * 1024,
            inbox_sync_per_peer: 16,
            driver_queue: 4096,
            gossip_verification_concurrency: 2,
            gossip_verification_queue: 32,
            graylisted_peer_ban_seconds: 30,
        }
    }
}

impl P2pLimits {
    /// Zero would stop the node from doing its job (no connection, no
    /// sync, a channel of capacity 0 panics): the first such field is named.
    pub fn check(&self) -> Result<(), String> {
        let fields: [(&str, u64); 18] = [
            (
                "max_connections_per_peer",
                u64::from(self.max_connections_per_peer),
            ),
            ("max_connections", u64::from(self.max_connections)),
            ("max_pending_incoming", u64::from(self.max_pending_incoming)),
            (
                "max_sync_streams_per_connection",
                self.max_sync_streams_per_connection as u64,
            ),
            (
                "max_negotiating_streams_per_connection",
                self.max_negotiating_streams_per_connection as u64,
            ),
            (
                "sync_requests_per_second",
                u64::from(self.sync_requests_per_second),
            ),
            ("sync_request_burst", u64::from(self.sync_request_burst)),
            ("sync_bytes_per_second", self.sync_bytes_per_second),
            ("sync_bytes_burst", self.sync_bytes_burst),
            (
                "max_owed_sync_answers_per_peer",
                self.max_owed_sync_answers_per_peer as u64,
            ),
            (
                "sync_serving_concurrency",
                self.sync_serving_concurrency as u64,
            ),
            ("max_sync_answer_bytes", self.max_sync_answer_bytes as u64),
            ("max_sync_answer_blocks", self.max_sync_answer_blocks),
            (
                "inbox_consensus_per_peer",
                self.inbox_consensus_per_peer as u64,
            ),
            (
                "inbox_transaction_batches_per_peer",
                self.inbox_transaction_batches_per_peer as u64,
            ),
            ("inbox_sync_per_peer", self.inbox_sync_per_peer as u64),
            ("driver_queue", self.driver_queue as u64),
            (
                "gossip_verification_concurrency",
                self.gossip_verification_concurrency as u64,
            ),
        ];
        match fields.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(format!(
                "[p2p] {name} is 0; it must be at least 1 (remove the line for the default)"
            )),
            None if self.gossip_verification_queue == 0
                || self.inbox_transaction_bytes == 0
                || self.inbox_consensus_bytes == 0 =>
            {
                Err("[p2p] gossip_verification_queue, inbox_transaction_bytes and inbox_consensus_bytes must be at least 1".into())
            }
            None => Ok(()),
        }
    }
}

/// A token bucket of `capacity` tokens refilled at `rate` per second.
/// [`TokenBucket::take`] takes tokens that are there; [`TokenBucket::charge`]
/// takes a cost known only afterwards and may overdraw the bucket, and
/// [`TokenBucket::ready`] is false until such a debt is repaid.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    rate: f64,
    balance: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u64, rate_per_second: u64, now: Instant) -> TokenBucket {
        TokenBucket {
            capacity: capacity as f64,
            rate: rate_per_second as f64,
            balance: capacity as f64,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.balance = (self.balance + elapsed * self.rate).min(self.capacity);
        self.updated = now;
    }

    /// Whether anything may be taken now (the balance is positive).
    pub fn ready(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.balance > 0.0
    }

    /// Takes `amount` if the bucket holds that many; `false`, taking
    /// nothing, otherwise.
    pub fn take(&mut self, amount: u64, now: Instant) -> bool {
        self.refill(now);
        if self.balance < amount as f64 {
            return false;
        }
        self.balance -= amount as f64;
        true
    }

    /// Charges `amount` unconditionally (a cost known after the fact).
    pub fn charge(&mut self, amount: u64, now: Instant) {
        self.refill(now);
        self.balance -= amount as f64;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_defaults_pass_the_check_and_a_zero_is_named() {
        assert_eq!(P2pLimits::default().check(), Ok(()));
        let limits = P2pLimits {
            max_sync_streams_per_connection: 0,
            ..P2pLimits::default()
        };
        let error = limits.check().expect_err("zero streams");
        assert!(error.contains("max_sync_streams_per_connection"), "{error}");
    }

    #[test]
    fn a_burst_is_allowed_then_the_rate_applies() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5, start);
        for taken in 0..10 {
            assert!(bucket.take(1, start), "request {taken} of the burst");
        }
        assert!(!bucket.take(1, start), "the burst is spent");
        // 5 per second: one more every 200 ms.
        assert!(!bucket.take(1, start + Duration::from_millis(100)));
        assert!(bucket.take(1, start + Duration::from_millis(210)));
        assert!(!bucket.take(1, start + Duration::from_millis(220)));
        // A long pause refills to the capacity, not beyond.
        let later = start + Duration::from_secs(3600);
        for _ in 0..10 {
            assert!(bucket.take(1, later));
        }
        assert!(!bucket.take(1, later));
    }

    #[test]
    fn an_overdraft_is_repaid_before_the_next_request() {
        let start = Instant::now();
        // 1 MiB burst, 1 MiB/s.
        let mut bytes = TokenBucket::new(1 << 20, 1 << 20, start);
        assert!(bytes.ready(start));
        // A 4 MiB answer leaves a 3 MiB debt.
        bytes.charge(4 << 20, start);
        assert!(!bytes.ready(start + Duration::from_secs(2)));
        assert!(!bytes.ready(start + Duration::from_millis(2990)));
        assert!(bytes.ready(start + Duration::from_millis(3010)));
    }

    #[test]
    fn limits_read_from_toml_keep_the_defaults_of_missing_fields() {
        let limits: P2pLimits =
            toml::from_str("max_connections_per_peer = 3\nsync_requests_per_second = 7\n")
                .expect("a partial section");
        assert_eq!(limits.max_connections_per_peer, 3);
        assert_eq!(limits.sync_requests_per_second, 7);
        assert_eq!(limits.driver_queue, P2pLimits::default().driver_queue);
        assert!(toml::from_str::<P2pLimits>("no_such_limit = 1\n").is_err());
    }
}
