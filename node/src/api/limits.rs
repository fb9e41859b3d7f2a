//! The API's limits: the `[api_limits]` section of `config.toml`.
//!
//! Every number a client could otherwise push without bound has a limit
//! here: how long a connection may take to send its request headers, how
//! long a request may run, how many connections and requests run at once,
//! how many submissions wait for their commit, how large a body is, how
//! many items a page holds. The defaults suit a node serving its own
//! institution's clients; README's API section lists them. This module only
//! holds and checks the numbers; `server.rs` and the router apply them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[api_limits]` in `config.toml`; every key is optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiLimits {
    /// A connection that has not sent a request's complete headers this
    /// long after it opened (or after its previous answer) is closed.
    pub header_read_timeout_ms: u64,
    /// Longest a request may run, reading its body included, before it is
    /// answered 503 `request_timeout`. A `?wait=commit` submission gets
    /// this plus its wait.
    pub request_timeout_ms: u64,
    /// Open connections at most; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// Requests handled at once (other than `POST /v1/txs`); more wait
    /// for a slot, within their request timeout.
    pub max_concurrent_requests: usize,
    /// Submissions waiting for their commit (`?wait=commit`) at once; more
    /// are answered 503 `too_many_waiters` with `Retry-After`.
    pub max_commit_waiters: usize,
    /// Longest `?wait=commit` wait, whatever `timeout_ms` asks.
    pub max_commit_wait_ms: u64,
    /// Largest body of `POST /v1/txs`; the default fits the ledger's
    /// largest transaction (`ledger::transaction::MAX_TX_BYTES`) as hex in its JSON.
    pub max_tx_body_bytes: usize,
    /// Largest body of `POST /v1/txs/batch`.
    pub max_batch_body_bytes: usize,
    /// Most transactions in one batch.
    pub max_batch_txs: usize,
    /// Most items in one page of a list route (`?limit=` is capped to it,
    /// and is it when absent).
    pub max_page_size: usize,
    /// Events in a page of `GET /v1/events` when `limit` is absent.
    pub event_page_size: usize,
    /// Most events one answer of `GET /v1/events` looks at (kept or
    /// filtered out by `kinds`/`party`); `next` says where to go on.
    pub max_event_scan: usize,
    /// Longest `GET /v1/events?wait_ms=` wait, whatever it asks; see
    /// [`ApiLimits::max_event_wait`] for how the request timeout bounds it.
    pub max_event_wait_ms: u64,
    /// `GET /v1/events` requests waiting for events at once; more are
    /// answered 503 `too_many_waiters`. Each holds one of
    /// `max_concurrent_requests` while it waits, so keep it well below.
    pub max_event_waiters: usize,
}

/// Hex doubles the transaction's bytes; 1 KiB covers `{"tx": ""}` and
/// whitespace.
pub const DEFAULT_MAX_TX_BODY_BYTES: usize = 2 * ledger::transaction::MAX_TX_BYTES + 1024;

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connections: 1_024,
            max_concurrent_requests: 256,
            max_commit_waiters: 1_024,
            max_commit_wait_ms: 120_000,
            max_tx_body_bytes: DEFAULT_MAX_TX_BODY_BYTES,
            max_batch_body_bytes: 16 * 1024 * 1024,
            max_batch_txs: 5_000,
            max_page_size: 1_000,
            event_page_size: 100,
            max_event_scan: 10_000,
            max_event_wait_ms: 25_000,
            max_event_waiters: 64,
        }
    }
}

impl ApiLimits {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn max_commit_wait(&self) -> Duration {
        Duration::from_millis(self.max_commit_wait_ms)
    }

    /// The longest event long-poll: `max_event_wait_ms`, but never so long
    /// that the request timeout (which covers it) cuts the answer off: at
    /// most a second less than the timeout, or half of a timeout under 2 s.
    pub fn max_event_wait(&self) -> Duration {
        let room = self
            .request_timeout_ms
            .saturating_sub(1_000)
            .max(self.request_timeout_ms / 2);
        Duration::from_millis(self.max_event_wait_ms.min(room))
    }

    /// Every limit must let something through: a zero would refuse every
    /// client, which is never what an operator meant.
    pub fn validate(&self) -> Result<(), String> {
        let counts = [
            (
                "header_read_timeout_ms",
                self.header_read_timeout_ms as usize,
            ),
            ("request_timeout_ms", self.request_timeout_ms as usize),
            ("max_connections", self.max_connections),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("max_commit_waiters", self.max_commit_waiters),
            ("max_commit_wait_ms", self.max_commit_wait_ms as usize),
            ("max_tx_body_bytes", self.max_tx_body_bytes),
            ("max_batch_body_bytes", self.max_batch_body_bytes),
            ("max_batch_txs", self.max_batch_txs),
            ("max_page_size", self.max_page_size),
            ("event_page_size", self.event_page_size),
            ("max_event_scan", self.max_event_scan),
            ("max_event_waiters", self.max_event_waiters),
        ];
        for (name, value) in counts {
            if value == 0 {
                return Err(format!(
                    "[api_limits] {name} is 0, which would refuse every client; leave it out for the default"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_transaction_body_fits_the_largest_transaction_as_hex() {
        let body = serde_json::to_vec(&crate::api::types::SubmitTx {
            tx: hex::encode(vec![0xab; ledger::transaction::MAX_TX_BYTES]),
        })
        .expect("serialises");
        assert!(body.len() <= DEFAULT_MAX_TX_BODY_BYTES);
    }

    #[test]
    fn a_zero_limit_is_refused_and_absent_keys_take_defaults() {
        let limits: ApiLimits = toml::from_str("max_page_size = 10").expect("parses");
        assert_eq!(limits.max_page_size, 10);
        assert_eq!(limits.max_connections, ApiLimits::default().max_connections);
        assert!(limits.validate().is_ok());
        let zero: ApiLimits = toml::from_str("max_connections = 0").expect("parses");
        assert!(zero.validate().unwrap_err().contains("max_connections"));
    }

    #[test]
    fn an_event_long_poll_always_ends_before_the_request_timeout() {
        let defaults = ApiLimits::default();
        assert_eq!(defaults.max_event_wait(), Duration::from_millis(25_000));
        for (timeout, wait, expected) in [(30_000, 60_000, 29_000), (1_500, 25_000, 750), (1, 5, 0)]
        {
            let limits = ApiLimits {
                request_timeout_ms: timeout,
                max_event_wait_ms: wait,
                ..ApiLimits::default()
            };
            assert_eq!(limits.max_event_wait(), Duration::from_millis(expected));
            assert!(limits.max_event_wait() < limits.request_timeout());
        }
    }
}
