//! The API's own Prometheus metrics (`scf_api_*`): open connections, those
//! refused at the connection cap, those closed for not sending their
//! headers in time, and `?wait=commit` waiters, current and refused.
//!
//! Kept apart from the node's registry (`crate::metrics`) so the API's
//! limits are counted where they are enforced; `/metrics` serves both.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub struct ApiMetrics {
    registry: Registry,
    pub connections: Gauge,
    pub connections_refused: Counter,
    pub header_timeouts: Counter,
    pub commit_waiters: Gauge,
    pub commit_waiters_refused: Counter,
    pub event_waiters: Gauge,
    pub event_waiters_refused: Counter,
    pub request_timeouts: Counter,
}

impl std::fmt::Debug for ApiMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiMetrics").finish_non_exhaustive()
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics::new()
    }
}

impl ApiMetrics {
    pub fn new() -> ApiMetrics {
        let mut registry = Registry::with_prefix("scf_api");
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Open HTTP connections to the API",
            connections.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections answered 503 and closed because max_connections were open",
            connections_refused.clone(),
        );
        let header_timeouts = Counter::default();
        registry.register(
            "header_read_timeouts",
            "Connections closed for not sending a request's headers within header_read_timeout_ms",
            header_timeouts.clone(),
        );
        let commit_waiters = Gauge::default();
        registry.register(
            "commit_waiters",
            "Submissions waiting for their commit (?wait=commit)",
            commit_waiters.clone(),
        );
        let commit_waiters_refused = Counter::default();
        registry.register(
            "commit_waiters_refused",
            "?wait=commit submissions answered 503 because max_commit_waiters were waiting",
            commit_waiters_refused.clone(),
        );
        let event_waiters = Gauge::default();
        registry.register(
            "event_waiters",
            "GET /v1/events requests waiting for new events (wait_ms)",
            event_waiters.clone(),
        );
        let event_waiters_refused = Counter::default();
        registry.register(
            "event_waiters_refused",
            "GET /v1/events long-polls answered 503 because max_event_waiters were waiting",
            event_waiters_refused.clone(),
        );
        let request_timeouts = Counter::default();
        registry.register(
            "request_timeouts",
            "Requests answered 503 request_timeout after request_timeout_ms",
            request_timeouts.clone(),
        );
        ApiMetrics {
            registry,
            connections,
            connections_refused,
            header_timeouts,
            commit_waiters,
            commit_waiters_refused,
            event_waiters,
            event_waiters_refused,
            request_timeouts,
        }
    }

    /// The OpenMetrics text of these metrics, after `node` (the node's own
    /// exposition): one document, with the single `# EOF` at its end.
    pub fn render_after(&self, node: String) -> String {
        let mut text = match node.strip_suffix("# EOF\n") {
            Some(body) => body.to_string(),
            None => node,
        };
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_one_eof_at_its_end() {
        let metrics = ApiMetrics::new();
        metrics.connections_refused.inc();
        let text = metrics.render_after(crate::metrics::Metrics::new().render());
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"));
        assert!(
            text.contains("scf_api_connections_refused_total 1"),
            "{text}"
        );
        assert!(text.contains("scf_height"), "{text}");
    }
}
