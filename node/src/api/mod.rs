//! The HTTP JSON API (axum) and `/metrics`.
//!
//! Routes (all JSON; errors are `{ "error", "detail" }` with 4xx for the
//! client's mistakes, 503 when the node cannot take more, 500 for the
//! node's own failures):
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /v1/txs` `{ "tx": hex }`, `?wait=commit&timeout_ms=N` | [`types::TxStatusView`] |
//! | `POST /v1/txs/batch` `{ "txs": [hex, …] }` | one [`types::BatchResult`] per transaction |
//! | `GET /v1/txs/{hash}` | [`types::TxStatusView`] |
//! | `GET /v1/tokens/{id}` | [`types::TokenView`] |
//! | `GET /v1/tokens/{id}/lineage?after=&limit=` | a page of [`types::LineageView`] |
//! | `GET /v1/participants/{key}` | [`types::ParticipantView`] |
//! | `GET /v1/participants/{key}/tokens?after=&limit=` | a [`types::TokenPage`] of unspent tokens |
//! | `GET /v1/blocks/{height}`, `/v1/blocks/latest` | [`types::BlockView`] with certificate |
//! | `GET /v1/blocks/{height}/txs` | [`types::BlockTxsView`]: the transactions only |
//! | `GET /v1/blocks/{height}/raw` | a borsh [`types::RawBlockAnswer`]: the stored block and certificate bytes |
//! | `GET /v1/status` | [`types::StatusView`] |
//! | `GET /v1/genesis` | the genesis file |
//! | `GET /v1/events?after=&limit=&wait_ms=&kinds=&party=&format=` | an [`event_views::EventPageView`], or with `format=borsh` an [`event_views::RawEventPage`] (see [`feed`]) |
//! | `GET /v1/evidence` | equivocation evidence (at most `driver::evidence`'s cap) |
//! | `GET /metrics` | Prometheus text |
//!
//! Limits ([`limits::ApiLimits`], `[api_limits]` in `config.toml`): the
//! connection-level ones are [`server`]'s; here each request gets a timeout
//! (tower-http), every route but `POST /v1/txs` shares a concurrency limit
//! (tower), each submission route its own body limit (`DefaultBodyLimit`,
//! 413 beyond it), `?wait=commit` a cap on waiters, list routes a page size
//! ([`pages`]).
//!
//! Reads take the store's read lock inside `spawn_blocking`, for work
//! bounded by the request, never by the size of the ledger. The API never
//! writes the store: submissions go to the mempool.

pub mod errors;
pub mod event_views;
pub mod feed;
pub mod governance;
pub mod limits;
pub mod metrics;
pub mod pages;
pub mod server;
pub mod types;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRef, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state, map_response_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crypto::{Hash, PublicKey};
use ledger::transaction::MAX_TX_BYTES;
use ledger::{SignedTransaction, StateKey, StateValue, TokenId, TxHash};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::shared::Shared;
use errors::{ApiError, ApiQuery};
use limits::ApiLimits;
use metrics::ApiMetrics;
use types::{
    BlockTxView, BlockTxsView, BlockView, CreditLineView, ParticipantView, StatusView, SubmitTx,
    TokenView, TxState, TxStatusView, format_time,
};

/// How long `?wait=commit` waits when `timeout_ms` is not given.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// What every handler may use: the node's shared state and the API's own
/// limits, counters and waiter slots.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub shared: Arc<Shared>,
    pub limits: Arc<ApiLimits>,
    pub metrics: Arc<ApiMetrics>,
    /// One permit per `?wait=commit` submission waiting.
    waiters: Arc<Semaphore>,
    /// One permit per `GET /v1/events` long-poll waiting.
    event_waiters: Arc<Semaphore>,
}

impl FromRef<ApiState> for Arc<Shared> {
    fn from_ref(state: &ApiState) -> Arc<Shared> {
        Arc::clone(&state.shared)
    }
}

impl ApiState {
    pub fn new(shared: Arc<Shared>, limits: ApiLimits) -> ApiState {
        ApiState {
            shared,
            waiters: Arc::new(Semaphore::new(limits.max_commit_waiters)),
            event_waiters: Arc::new(Semaphore::new(limits.max_event_waiters)),
            limits: Arc::new(limits),
            metrics: Arc::new(ApiMetrics::new()),
        }
    }
}

/// Serves the API on `listener` until `shutdown` resolves (see [`server`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    limits: ApiLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let state = ApiState::new(shared, limits);
    let app = router(state.clone());
    server::serve(
        listener,
        app,
        &state.limits,
        Arc::clone(&state.metrics),
        shutdown,
    )
    .await;
}

pub fn router(state: ApiState) -> Router {
    let limits = Arc::clone(&state.limits);
    // Everything but the single submission: one request timeout each, one
    // concurrency limit shared by all (a global semaphore: `Router::layer`
    // wraps each route on its own).
    let reads = Router::new()
        .route(
            "/v1/txs/batch",
            post(submit_batch).layer(DefaultBodyLimit::max(limits.max_batch_body_bytes)),
        )
        .route("/v1/txs/{hash}", get(tx_status))
        .route("/v1/tokens/{id}", get(token))
        .route("/v1/tokens/{id}/lineage", get(pages::lineage))
        .route("/v1/participants/{key}", get(participant))
        .route("/v1/participants/{key}/tokens", get(pages::holdings))
        .route("/v1/blocks/latest", get(latest_block))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/blocks/{height}/txs", get(block_txs))
        .route("/v1/blocks/{height}/raw", get(raw_block))
        .route("/v1/status", get(status))
        .route("/v1/genesis", get(genesis))
        .route("/v1/evidence", get(evidence))
        .route("/v1/validators", get(governance::validators))
        .route("/v1/validators/proposals", get(governance::proposals))
        .route("/v1/validators/proposals/{id}", get(governance::proposal))
        .route("/v1/events", get(feed::events))
        .route("/metrics", get(metrics))
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout(),
        ));
    // The single submission may wait for its commit: outside the shared
    // concurrency limit (its waiters have their own cap), with a timeout
    // that grows by the wait it asked for.
    let submissions = Router::new()
        .route(
            "/v1/txs",
            post(submit).layer(DefaultBodyLimit::max(limits.max_tx_body_bytes)),
        )
        .layer(from_fn_with_state(state.clone(), submission_timeout));
    Router::new()
        .merge(reads)
        .merge(submissions)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(map_response_with_state(
            Arc::clone(&state.metrics),
            errors::json_errors,
        ))
        .with_state(state)
}

/// The request timeout of `POST /v1/txs`: the configured one, plus the
/// longest wait when the query asks to wait for the commit.
async fn submission_timeout(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let waits = request
        .uri()
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair == "wait=commit"));
    let mut timeout = state.limits.request_timeout();
    if waits {
        timeout += state.limits.max_commit_wait();
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics.request_timeouts.inc();
            ApiError::busy(
                "request_timeout",
                format!(
                    "the submission did not finish within {} ms ([api_limits] request_timeout_ms, plus max_commit_wait_ms when waiting); retry later",
                    timeout.as_millis()
                ),
                1,
            )
            .into_response()
        }
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see the API table in the README (routes start with /v1/)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; the Allow header lists the ones it takes (see the API table in the README)",
    )
}

/// Runs a blocking read against the shared state.
pub(crate) async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&Shared) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || work(&shared))
        .await
        .map_err(ApiError::internal)?
}

pub(crate) fn parse_hash(text: &str, what: &str) -> Result<Hash, ApiError> {
    text.parse::<Hash>().map_err(|_| {
        ApiError::bad_request(
            &format!("bad_{what}"),
            format!("{what} {text:?} is not 64 hex digits"),
        )
    })
}

pub(crate) fn parse_key(text: &str) -> Result<PublicKey, ApiError> {
    text.parse::<PublicKey>().map_err(|_| {
        ApiError::bad_request(
            "bad_key",
            format!("public key {text:?} is not 64 hex digits"),
        )
    })
}

#[derive(Debug, Deserialize)]
struct SubmitQuery {
    wait: Option<String>,
    timeout_ms: Option<u64>,
}

async fn submit(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<SubmitQuery>,
    body: Result<Json<SubmitTx>, JsonRejection>,
) -> Result<(StatusCode, Json<TxStatusView>), ApiError> {
    let Json(body) = body.map_err(|rejection| {
        body_rejection(
            rejection,
            state.limits.max_tx_body_bytes,
            "max_tx_body_bytes",
            "send {\"tx\": \"<hex of the borsh-encoded signed transaction>\"}",
        )
    })?;
    let wait = match query.wait.as_deref() {
        None | Some("none") => false,
        Some("commit") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_wait",
                format!("wait={other:?} is not understood; use wait=commit or leave it out"),
            ));
        }
    };
    let hex_digits = body.tx.trim().len();
    if hex_digits > 2 * MAX_TX_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "transaction_too_large",
            format!(
                "the transaction is {} bytes; the ledger takes at most {MAX_TX_BYTES}",
                hex_digits.div_ceil(2)
            ),
        ));
    }
    let bytes = hex::decode(body.tx.trim())
        .map_err(|error| ApiError::bad_request("bad_hex", format!("tx is not hex: {error}")))?;
    let tx = SignedTransaction::from_bytes(&bytes).map_err(|error| {
        ApiError::bad_request(
            "malformed_transaction",
            format!("tx does not decode as a signed transaction: {error}"),
        )
    })?;
    // A waiter's slot is taken before the transaction is admitted, so a
    // client told "too many waiters" can submit the same transaction again.
    let waiter = if wait {
        match Arc::clone(&state.waiters).try_acquire_owned() {
            Ok(permit) => Some(Waiter::new(permit, &state.metrics)),
            Err(_) => {
                state.metrics.commit_waiters_refused.inc();
                return Err(ApiError::busy(
                    "too_many_waiters",
                    format!(
                        "{} submissions are already waiting for their commit ([api_limits] max_commit_waiters); submit without wait=commit and poll GET /v1/txs/{{hash}}, or retry",
                        state.limits.max_commit_waiters
                    ),
                    1,
                ));
            }
        }
    } else {
        None
    };
    let shared = &state.shared;
    let hash = tx.hash();
    let result = blocking(shared, move |shared| {
        Ok(shared
            .admit(vec![tx], true)
            .pop()
            .expect("one result per transaction"))
    })
    .await?;
    if let Err(error) = result {
        if error.is_temporary() {
            return Err(ApiError::busy(&error.code(), error.to_string(), 1));
        }
        let status = if matches!(error, crate::mempool::MempoolError::Duplicate { .. }) {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return Err(ApiError::new(status, &error.code(), error.to_string()));
    }
    let Some(_waiter) = waiter else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(TxStatusView {
                tx_hash: hash,
                status: TxState::Pending,
            }),
        ));
    };
    let timeout = query
        .timeout_ms
        .map_or(DEFAULT_WAIT, Duration::from_millis)
        .min(state.limits.max_commit_wait());
    let status = shared
        .wait_for(hash, timeout)
        .await
        .unwrap_or(TxState::Pending);
    let code = match status {
        TxState::Committed { .. } => StatusCode::OK,
        TxState::Pending => StatusCode::ACCEPTED,
        TxState::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Ok((
        code,
        Json(TxStatusView {
            tx_hash: hash,
            status,
        }),
    ))
}

/// A `?wait=commit` submission's slot, counted in `/metrics` while held.
struct Waiter {
    _permit: tokio::sync::OwnedSemaphorePermit,
    metrics: Arc<ApiMetrics>,
}

impl Waiter {
    fn new(permit: tokio::sync::OwnedSemaphorePermit, metrics: &Arc<ApiMetrics>) -> Waiter {
        metrics.commit_waiters.inc();
        Waiter {
            _permit: permit,
            metrics: Arc::clone(metrics),
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.metrics.commit_waiters.dec();
    }
}

/// A body that did not make a request: 413 when it was too large, 400 or
/// 415 otherwise, each saying what to send.
fn body_rejection(rejection: JsonRejection, limit: usize, key: &str, expected: &str) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            status,
            "body_too_large",
            format!("the body is larger than this route's {limit} bytes ([api_limits] {key})"),
        );
    }
    let code = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        "unsupported_media_type"
    } else {
        "bad_request"
    };
    ApiError::new(
        status,
        code,
        format!("{}; {expected}", rejection.body_text()),
    )
}

/// Many transactions at once: decoded, then checked with one batch
/// signature verification. Never waits for commits.
async fn submit_batch(
    State(state): State<ApiState>,
    body: Result<Json<types::SubmitBatch>, JsonRejection>,
) -> ApiResult<Vec<types::BatchResult>> {
    let Json(body) = body.map_err(|rejection| {
        body_rejection(
            rejection,
            state.limits.max_batch_body_bytes,
            "max_batch_body_bytes",
            "send {\"txs\": [\"<hex of a borsh-encoded signed transaction>\", ...]}",
        )
    })?;
    let max_batch = state.limits.max_batch_txs;
    if body.txs.len() > max_batch {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "{} transactions in one batch; the limit is {max_batch} ([api_limits] max_batch_txs)",
                body.txs.len()
            ),
        ));
    }
    let mut answers: Vec<Option<types::BatchResult>> = vec![None; body.txs.len()];
    let mut decoded = Vec::with_capacity(body.txs.len());
    let mut positions = Vec::with_capacity(body.txs.len());
    for (index, text) in body.txs.iter().enumerate() {
        let parsed = hex::decode(text.trim())
            .map_err(|error| format!("not hex: {error}"))
            .and_then(|bytes| {
                SignedTransaction::from_bytes(&bytes)
                    .map_err(|error| format!("not a signed transaction: {error}"))
            });
        match parsed {
            Ok(tx) => {
                decoded.push(tx);
                positions.push(index);
            }
            Err(detail) => {
                answers[index] = Some(types::BatchResult::Refused {
                    error: "malformed_transaction".into(),
                    detail,
                });
            }
        }
    }
    let results = blocking(&state.shared, move |shared| Ok(shared.admit(decoded, true))).await?;
    for (index, result) in positions.into_iter().zip(results) {
        answers[index] = Some(match result {
            Ok(tx_hash) => types::BatchResult::Accepted { tx_hash },
            Err(error) => types::BatchResult::Refused {
                error: error.code(),
                detail: error.to_string(),
            },
        });
    }
    Ok(Json(answers.into_iter().flatten().collect()))
}

async fn tx_status(
    State(shared): State<Arc<Shared>>,
    Path(hash): Path<String>,
) -> ApiResult<TxStatusView> {
    let hash = TxHash(parse_hash(&hash, "tx_hash")?);
    let state = blocking(&shared, move |shared| {
        shared.tx_state(&hash).map_err(ApiError::internal)
    })
    .await?;
    match state {
        Some(status) => Ok(Json(TxStatusView {
            tx_hash: hash,
            status,
        })),
        None => Err(ApiError::not_found(format!(
            "transaction {hash} is unknown to this node: not committed, not pending, not recently rejected"
        ))),
    }
}

async fn token(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult<TokenView> {
    let id = TokenId(parse_hash(&id, "token_id")?);
    blocking(&shared, move |shared| {
        let token = shared
            .store
            .read()
            .token_by_id(&id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("token {id} does not exist")))?;
        Ok(Json(TokenView::new(&token, shared.decimals())))
    })
    .await
}

async fn participant(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
) -> ApiResult<ParticipantView> {
    let key = parse_key(&key)?;
    blocking(&shared, move |shared| {
        let store = shared.store.read();
        // By identity, or by a key a rotation bound to one (the participant
        // a transaction signed with `key` is for).
        let participant = match crate::shared::signer_account_in(&store, &key)
            .map_err(ApiError::internal)?
        {
            Some(participant) => participant,
            None => {
                return Err(ApiError::not_found(format!(
                    "{key} is not a registered participant; the operator registers it with `scf participant register`"
                )));
            }
        };
        let credit_line = match store
            .state(&StateKey::CreditLine(participant.key))
            .map_err(ApiError::internal)?
        {
            Some(StateValue::CreditLine(line)) => {
                Some(CreditLineView::new(&line, shared.decimals()))
            }
            _ => None,
        };
        Ok(Json(ParticipantView::new(&participant, credit_line)))
    })
    .await
}

async fn latest_block(State(shared): State<Arc<Shared>>) -> ApiResult<BlockView> {
    let height = shared.status.borrow().height;
    block_at(shared, height).await
}

async fn block(
    State(shared): State<Arc<Shared>>,
    Path(height): Path<String>,
) -> ApiResult<BlockView> {
    let height = parse_height(&height)?;
    block_at(shared, height).await
}

/// The transactions of a block without the block's hex and certificate: what
/// a client that follows commits (an indexer, `scf-bench`) reads per block.
async fn block_txs(
    State(shared): State<Arc<Shared>>,
    Path(height): Path<String>,
) -> ApiResult<BlockTxsView> {
    let height = parse_height(&height)?;
    blocking(&shared, move |shared| {
        let block = committed_block(shared, height)?;
        Ok(Json(BlockTxsView {
            height,
            hash: block.hash(),
            txs: block.txs.iter().map(tx_view).collect(),
        }))
    })
    .await
}

/// The block and certificate as stored, borsh, nothing decoded: what a
/// verifier reads per block (see [`types::RawBlockAnswer`]).
async fn raw_block(
    State(shared): State<Arc<Shared>>,
    Path(height): Path<String>,
) -> Result<Response, ApiError> {
    let height = parse_height(&height)?;
    blocking(&shared, move |shared| {
        let store = shared.store.read();
        let Some(block) = store.block_bytes(height).map_err(ApiError::internal)? else {
            drop(store);
            return Err(committed_block(shared, height)
                .err()
                .unwrap_or_else(|| ApiError::not_found(format!("no block at height {height}"))));
        };
        let certificate = store.certificate(height).map_err(ApiError::internal)?;
        drop(store);
        let answer = types::RawBlockAnswer {
            height,
            block,
            certificate,
        };
        Ok((
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            borsh::to_vec(&answer).expect("encoding to a Vec"),
        )
            .into_response())
    })
    .await
}

fn parse_height(height: &str) -> Result<u64, ApiError> {
    height.parse().map_err(|_| {
        ApiError::bad_request(
            "bad_height",
            format!("height {height:?} is not a number (or use /v1/blocks/latest)"),
        )
    })
}

fn tx_view(tx: &SignedTransaction) -> BlockTxView {
    BlockTxView {
        hash: tx.hash(),
        signer: tx.tx.signer,
        nonce: tx.tx.nonce,
        kind: tx.tx.body.kind().to_string(),
    }
}

/// The committed block at `height`, or a 404 that says what exists.
fn committed_block(shared: &Shared, height: u64) -> Result<ledger::Block, ApiError> {
    let store = shared.store.read();
    match store.block(height).map_err(ApiError::internal)? {
        Some(block) => Ok(block),
        None => {
            let last = store.height().unwrap_or(0);
            Err(ApiError::not_found(if height == 0 {
                "height 0 is the genesis state, which has no block; blocks start at 1".to_string()
            } else {
                format!("no block at height {height}; the last committed height is {last}")
            }))
        }
    }
}

async fn block_at(shared: Arc<Shared>, height: u64) -> ApiResult<BlockView> {
    blocking(&shared, move |shared| {
        let block = committed_block(shared, height)?;
        let store = shared.store.read();
        let certificate_bytes = store.certificate(height).map_err(ApiError::internal)?;
        drop(store);
        let certificate = certificate_bytes
            .as_deref()
            .and_then(|bytes| borsh::from_slice::<consensus::CommitCertificate>(bytes).ok());
        let header = &block.header;
        Ok(Json(BlockView {
            height,
            hash: block.hash(),
            parent_hash: header.parent_hash,
            time: format_time(header.time),
            time_ms: header.time.0,
            proposer: header.proposer,
            tx_root: header.tx_root,
            app_hash: header.app_hash,
            txs: block.txs.iter().map(tx_view).collect(),
            block_hex: hex::encode(block.to_bytes()),
            certificate,
            certificate_hex: certificate_bytes.map(hex::encode),
        }))
    })
    .await
}

async fn status(State(shared): State<Arc<Shared>>) -> Json<StatusView> {
    let live = shared.status.borrow().clone();
    let (mempool_txs, mempool_bytes) = shared.mempool.size();
    Json(StatusView {
        chain_id: shared.chain_id,
        chain_name: shared.genesis.chain_name.clone(),
        node_name: shared.node_name.clone(),
        role: if shared.is_validator {
            "validator"
        } else {
            "observer"
        }
        .to_string(),
        height: live.height,
        block_hash: live.block_hash,
        app_hash: live.app_hash,
        latest_block_time: format_time(ledger::Timestamp(live.block_time_ms)),
        peer_count: live.peers.len(),
        peers: live.peers,
        syncing: live.syncing,
        consensus_round: live.round,
        mempool_txs,
        mempool_bytes,
        currency_code: shared.genesis.currency_code.clone(),
        currency_decimals: shared.genesis.currency_decimals,
    })
}

async fn genesis(State(shared): State<Arc<Shared>>) -> Json<genesis::Genesis> {
    Json(shared.genesis.clone())
}

/// Equivocation evidence this node has seen, oldest first: each record holds
/// both signed messages, so anyone can check it.
async fn evidence(State(shared): State<Arc<Shared>>) -> Json<Vec<consensus::Equivocation>> {
    Json(shared.evidence.lock().clone())
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render_after(state.shared.metrics.render()),
    )
}
