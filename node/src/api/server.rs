//! Serving the API: the accept loop, one hyper HTTP/1 connection per
//! client, and the connection-level limits.
//!
//! - **Header-read timeout.** hyper's HTTP/1 connection runs with tokio's
//!   timer and `header_read_timeout`: a client that has not sent a request's
//!   complete headers that long after its connection opened (or after its
//!   previous answer, on a kept-alive connection) is disconnected. HTTP/1
//!   only, on purpose: hyper-util's auto (HTTP/1 or 2) server reads the
//!   first bytes to pick a protocol with no timeout at all, so a client that
//!   sends nothing would hold its connection for ever.
//! - **Connection cap.** At most `max_connections` are open; the next is
//!   accepted, answered 503 JSON and closed, so the kernel's backlog never
//!   fills with clients that wait unanswered. A refusal holds its socket
//!   for at most a second (to read the request, so the client sees the
//!   answer rather than a reset), and at most 64 refusals do so at once;
//!   beyond that a refused connection is written to once and closed.
//! - **Graceful shutdown.** When `shutdown` resolves the listener closes,
//!   every connection finishes its request in flight and closes, for at most
//!   the request timeout; then the rest are dropped. The connections are
//!   tasks of this future's own `JoinSet`, so aborting it ends them too and
//!   nothing keeps the node's state alive after the node stopped.
//!
//! Request-level limits (timeouts, body sizes, concurrency, waiters) are the
//! router's (`super::router`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::limits::ApiLimits;
use super::metrics::ApiMetrics;

/// Pause after a failed `accept` (out of file descriptors, most often) so
/// the loop does not spin while connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Refusals that wait for the client's request before closing, at most.
const LINGERING_REFUSALS: usize = 64;
/// How long a refusal waits for the client's request, at most.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// How much of the client's request a refusal reads, at most.
const REFUSAL_READ_BYTES: usize = 64 * 1024;

/// The body a connection over the cap reads before it is closed.
const OVER_CAPACITY_BODY: &str = "{\"error\":\"too_many_connections\",\"detail\":\"the node has [api_limits] max_connections connections open; retry in a second\"}";

/// The whole answer to a connection over the cap.
static OVER_CAPACITY: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{OVER_CAPACITY_BODY}",
        OVER_CAPACITY_BODY.len()
    )
    .into_bytes()
});

/// Serves `app` on `listener` under `limits` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ApiLimits,
    metrics: Arc<ApiMetrics>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let lingering = Arc::new(Semaphore::new(LINGERING_REFUSALS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    warn!(%error, "the API could not accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            metrics.connections_refused.inc();
            refuse(stream, &lingering, &mut tasks);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let metrics = Arc::clone(&metrics);
        metrics.connections.inc();
        tasks.spawn(async move {
            if let Err(error) = connection.await {
                if error.is_timeout() {
                    metrics.header_timeouts.inc();
                }
                debug!(%error, "API connection ended");
            }
            metrics.connections.dec();
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.request_timeout(), graceful.shutdown())
        .await
        .is_err()
    {
        debug!(
            open = tasks.len(),
            "API connections still open after the grace period; dropping them"
        );
    }
    tasks.shutdown().await;
}

/// Answers a connection over the cap: a fixed 503, then close. While fewer
/// than [`LINGERING_REFUSALS`] are in progress, the refusal half-closes and
/// reads what the client sent for up to [`REFUSAL_LINGER`], so the client
/// reads the answer rather than a reset (closing a socket with unread input
/// resets it); beyond that, one non-blocking write and close.
fn refuse(stream: TcpStream, lingering: &Arc<Semaphore>, tasks: &mut JoinSet<()>) {
    let Ok(permit) = Arc::clone(lingering).try_acquire_owned() else {
        let _ = stream.try_write(&OVER_CAPACITY);
        return;
    };
    tasks.spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_LINGER, async move {
            let mut stream = stream;
            stream.write_all(&OVER_CAPACITY).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut read = 0;
            while read < REFUSAL_READ_BYTES {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => read += n,
                }
            }
            std::io::Result::Ok(())
        })
        .await;
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_capacity_answer_has_a_right_content_length_and_json_body() {
        let text = std::str::from_utf8(&OVER_CAPACITY).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .expect("a content length")
            .parse()
            .expect("a number");
        assert_eq!(body.len(), length);
        let parsed: crate::api::types::ErrorBody = serde_json::from_str(body).expect("JSON");
        assert_eq!(parsed.error, "too_many_connections");
    }
}
