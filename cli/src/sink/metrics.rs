//! The sink's Prometheus metrics (`scf_sink_*`) and the small HTTP server
//! that serves them on `GET /metrics` when `--metrics ADDR` is given.
//!
//! Only what the sink wrote (events, blocks, batches, height) and what it
//! last heard of the node's tip (a claim, shown for the lag): nothing here
//! is read back by the sink.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub struct SinkMetrics {
    registry: Registry,
    pub events: Counter,
    pub blocks: Counter,
    pub batches: Counter,
    pub height: Gauge,
    pub tip: Gauge,
    pub lag: Gauge,
}

impl std::fmt::Debug for SinkMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkMetrics").finish_non_exhaustive()
    }
}

impl SinkMetrics {
    pub fn new() -> SinkMetrics {
        let mut registry = Registry::with_prefix("scf_sink");
        let events = Counter::default();
        registry.register(
            "events",
            "Events written to the database by this process",
            events.clone(),
        );
        let blocks = Counter::default();
        registry.register(
            "blocks",
            "Blocks written to the database by this process",
            blocks.clone(),
        );
        let batches = Counter::default();
        registry.register(
            "batches",
            "Database transactions committed by this process (one per batch of blocks)",
            batches.clone(),
        );
        let height = Gauge::default();
        registry.register(
            "height",
            "The last height in the database (sink_cursor.height)",
            height.clone(),
        );
        let tip = Gauge::default();
        registry.register(
            "node_height",
            "The node's committed height, as it last said",
            tip.clone(),
        );
        let lag = Gauge::default();
        registry.register(
            "lag_blocks",
            "Blocks the database is behind the node's height",
            lag.clone(),
        );
        SinkMetrics {
            registry,
            events,
            blocks,
            batches,
            height,
            tip,
            lag,
        }
    }

    /// Notes the database's height and the node's.
    pub fn heights(&self, height: u64, tip: u64) {
        self.height.set(gauge(height));
        self.tip.set(gauge(tip.max(height)));
        self.lag.set(gauge(tip.saturating_sub(height)));
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Serves `GET /metrics` on `addr` until the process ends; returns the
/// address bound (for `:0`).
pub async fn serve(addr: SocketAddr, metrics: Arc<SinkMetrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics server stopped");
        }
    });
    Ok(bound)
}
