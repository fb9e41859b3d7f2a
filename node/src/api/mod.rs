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
//! | `GET /v1/tokens/{id}/lineage` | [`types::LineageView`] |
//! | `GET /v1/participants/{key}` | [`types::ParticipantView`] |
//! | `GET /v1/participants/{key}/tokens` | unspent [`types::TokenView`]s |
//! | `GET /v1/blocks/{height}`, `/v1/blocks/latest` | [`types::BlockView`] with certificate |
//! | `GET /v1/blocks/{height}/txs` | [`types::BlockTxsView`]: the transactions only |
//! | `GET /v1/status` | [`types::StatusView`] |
//! | `GET /v1/genesis` | the genesis file |
//! | `GET /metrics` | Prometheus text |
//!
//! Reads take the store's read lock inside `spawn_blocking`. The API never
//! writes the store: submissions go to the mempool.

pub mod types;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crypto::{Hash, PublicKey};
use ledger::{SignedTransaction, StateKey, StateValue, TokenId, TxHash};
use serde::Deserialize;

use crate::shared::Shared;
use types::{
    BlockTxView, BlockTxsView, BlockView, CreditLineView, ErrorBody, LineageView, ParticipantView,
    StatusView, SubmitTx, TokenView, TxState, TxStatusView, format_time,
};

/// Longest a `wait=commit` request may wait.
const MAX_WAIT: Duration = Duration::from_secs(120);
/// Largest request body: up to [`MAX_BATCH`] hex transactions.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Most transactions in one batch submission.
const MAX_BATCH: usize = 5_000;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/txs", post(submit))
        .route("/v1/txs/batch", post(submit_batch))
        .route("/v1/txs/{hash}", get(tx_status))
        .route("/v1/tokens/{id}", get(token))
        .route("/v1/tokens/{id}/lineage", get(lineage))
        .route("/v1/participants/{key}", get(participant))
        .route("/v1/participants/{key}/tokens", get(holdings))
        .route("/v1/blocks/latest", get(latest_block))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/blocks/{height}/txs", get(block_txs))
        .route("/v1/status", get(status))
        .route("/v1/genesis", get(genesis))
        .route("/v1/evidence", get(evidence))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.to_string(),
                detail: detail.into(),
            },
        }
    }

    fn bad_request(error: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error, detail)
    }

    fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    fn internal(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            detail.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see the API table in the README (routes start with /v1/)")
}

/// Runs a blocking read against the shared state.
async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    work: impl FnOnce(&Shared) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || work(&shared))
        .await
        .map_err(ApiError::internal)?
}

fn parse_hash(text: &str, what: &str) -> Result<Hash, ApiError> {
    text.parse::<Hash>().map_err(|_| {
        ApiError::bad_request(
            &format!("bad_{what}"),
            format!("{what} {text:?} is not 64 hex digits"),
        )
    })
}

fn parse_key(text: &str) -> Result<PublicKey, ApiError> {
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
    State(shared): State<Arc<Shared>>,
    Query(query): Query<SubmitQuery>,
    body: Result<Json<SubmitTx>, JsonRejection>,
) -> Result<(StatusCode, Json<TxStatusView>), ApiError> {
    let Json(body) = body.map_err(|rejection| {
        ApiError::bad_request(
            "bad_request",
            format!(
                "{}; send {{\"tx\": \"<hex of the borsh-encoded signed transaction>\"}}",
                rejection.body_text()
            ),
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
    let bytes = hex::decode(body.tx.trim())
        .map_err(|error| ApiError::bad_request("bad_hex", format!("tx is not hex: {error}")))?;
    let tx = SignedTransaction::from_bytes(&bytes).map_err(|error| {
        ApiError::bad_request(
            "malformed_transaction",
            format!("tx does not decode as a signed transaction: {error}"),
        )
    })?;
    let hash = tx.hash();
    let result = blocking(&shared, move |shared| {
        Ok(shared
            .admit(vec![tx], true)
            .pop()
            .expect("one result per transaction"))
    })
    .await?;
    if let Err(error) = result {
        let status = if error.is_temporary() {
            StatusCode::SERVICE_UNAVAILABLE
        } else if matches!(error, crate::mempool::MempoolError::Duplicate { .. }) {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return Err(ApiError::new(status, &error.code(), error.to_string()));
    }
    if !wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(TxStatusView {
                tx_hash: hash,
                status: TxState::Pending,
            }),
        ));
    }
    let timeout = query
        .timeout_ms
        .map_or(Duration::from_secs(30), Duration::from_millis)
        .min(MAX_WAIT);
    let state = shared
        .wait_for(hash, timeout)
        .await
        .unwrap_or(TxState::Pending);
    let code = match state {
        TxState::Committed { .. } => StatusCode::OK,
        TxState::Pending => StatusCode::ACCEPTED,
        TxState::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Ok((
        code,
        Json(TxStatusView {
            tx_hash: hash,
            status: state,
        }),
    ))
}

/// Many transactions at once: decoded, then checked with one batch
/// signature verification. Never waits for commits.
async fn submit_batch(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<types::SubmitBatch>, JsonRejection>,
) -> ApiResult<Vec<types::BatchResult>> {
    let Json(body) = body.map_err(|rejection| {
        ApiError::bad_request(
            "bad_request",
            format!(
                "{}; send {{\"txs\": [\"<hex of a borsh-encoded signed transaction>\", ...]}}",
                rejection.body_text()
            ),
        )
    })?;
    if body.txs.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "{} transactions in one batch; the limit is {MAX_BATCH}",
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
    let results = blocking(&shared, move |shared| Ok(shared.admit(decoded, true))).await?;
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

async fn lineage(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<LineageView> {
    let id = TokenId(parse_hash(&id, "token_id")?);
    blocking(&shared, move |shared| {
        let lineage = shared
            .store
            .read()
            .lineage(&id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("token {id} does not exist")))?;
        let decimals = shared.decimals();
        let view = |tokens: &[ledger::Token]| {
            tokens
                .iter()
                .map(|token| TokenView::new(token, decimals))
                .collect()
        };
        Ok(Json(LineageView {
            ancestors: view(&lineage.ancestors),
            token: TokenView::new(&lineage.token, decimals),
            descendants: view(&lineage.descendants),
        }))
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
        let participant = match store
            .state(&StateKey::Participant(key))
            .map_err(ApiError::internal)?
        {
            Some(StateValue::Participant(participant)) => participant,
            _ => {
                return Err(ApiError::not_found(format!(
                    "{key} is not a registered participant; the operator registers it with `scf participant register`"
                )));
            }
        };
        let credit_line = match store
            .state(&StateKey::CreditLine(key))
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

async fn holdings(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
) -> ApiResult<Vec<TokenView>> {
    let key = parse_key(&key)?;
    blocking(&shared, move |shared| {
        let tokens = shared
            .store
            .read()
            .tokens_by_holder(&key)
            .map_err(ApiError::internal)?;
        let decimals = shared.decimals();
        Ok(Json(
            tokens
                .iter()
                .map(|token| TokenView::new(token, decimals))
                .collect(),
        ))
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

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(),
    )
}
