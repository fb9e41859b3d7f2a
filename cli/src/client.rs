//! A blocking client for a node's HTTP JSON API (issue 5), typed with the
//! views of `node::api::types`.
//!
//! Every failure becomes a [`NodeError`] that says what to do: an unreachable
//! node names the URL and how to start one; a `{ "error", "detail" }` answer
//! keeps the code so callers can explain the broken rule. This module knows
//! the routes, not what the answers mean for a user (that is `explain.rs`).

use std::io;
use std::time::Duration;

use crypto::PublicKey;
use ledger::{SignedTransaction, TokenId, TxHash};
use node::api::types::{
    BlockView, ErrorBody, LineageView, ParticipantView, StatusView, SubmitTx, TokenPage, TokenView,
    TxStatusView,
};
use serde::de::DeserializeOwned;

/// The largest answer read (a block view carries its transactions and its
/// borsh encoding as hex).
const MAX_ANSWER_BYTES: u64 = 256 * 1024 * 1024;

/// What went wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(
        "node {url} is unreachable ({reason}): is it running? start it with `scf node start --home DIR` or `scf testnet --dir DIR`, or point --node (or SCF_NODE) at a running node"
    )]
    Unreachable { url: String, reason: String },
    /// The node answered with an error body (4xx/5xx).
    #[error("the node answered {status} {code}: {detail}")]
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
}

/// One node's API.
#[derive(Clone)]
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient")
            .field("base", &self.base)
            .finish()
    }
}

impl NodeClient {
    /// `url` such as `http://127.0.0.1:8700` (a bare `host:port` gets `http://`).
    pub fn new(url: &str) -> NodeClient {
        let trimmed = url.trim().trim_end_matches('/');
        let base = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            // Submissions wait for their commit; the node bounds that wait.
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        NodeClient { base, agent }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    pub fn status(&self) -> Result<StatusView, NodeError> {
        self.get("/v1/status")
    }

    pub fn genesis(&self) -> Result<genesis::Genesis, NodeError> {
        self.get("/v1/genesis")
    }

    pub fn token(&self, id: &TokenId) -> Result<TokenView, NodeError> {
        self.get(&format!("/v1/tokens/{id}"))
    }

    /// The whole lineage: every page of descendants, following `next`.
    pub fn lineage(&self, id: &TokenId) -> Result<LineageView, NodeError> {
        let path = format!("/v1/tokens/{id}/lineage");
        let mut lineage: LineageView = self.get(&path)?;
        let mut cursor = lineage.next.take();
        while let Some(after) = cursor {
            let page: LineageView = self.get(&format!("{path}?after={after}"))?;
            cursor = self.advanced(&path, after, page.next)?;
            lineage.descendants.extend(page.descendants);
        }
        Ok(lineage)
    }

    pub fn participant(&self, key: &PublicKey) -> Result<ParticipantView, NodeError> {
        self.get(&format!("/v1/participants/{key}"))
    }

    /// Every unspent token `key` holds: every page, following `next`.
    pub fn holdings(&self, key: &PublicKey) -> Result<Vec<TokenView>, NodeError> {
        let path = format!("/v1/participants/{key}/tokens");
        let first: TokenPage = self.get(&path)?;
        let mut tokens = first.tokens;
        let mut cursor = first.next;
        while let Some(after) = cursor {
            let page: TokenPage = self.get(&format!("{path}?after={after}"))?;
            cursor = self.advanced(&path, after, page.next)?;
            tokens.extend(page.tokens);
        }
        Ok(tokens)
    }

    /// The next cursor of a paged route, refusing one that does not move
    /// forward (a node that did so would keep a client paging for ever).
    fn advanced(
        &self,
        path: &str,
        after: TokenId,
        next: Option<TokenId>,
    ) -> Result<Option<TokenId>, NodeError> {
        match next {
            Some(next) if next == after => Err(NodeError::BadAnswer {
                url: format!("{}{path}?after={after}", self.base),
                reason: "the page's next cursor is the one asked for".into(),
            }),
            next => Ok(next),
        }
    }

    /// `None` for the latest block.
    pub fn block(&self, height: Option<u64>) -> Result<BlockView, NodeError> {
        match height {
            Some(height) => self.get(&format!("/v1/blocks/{height}")),
            None => self.get("/v1/blocks/latest"),
        }
    }

    pub fn tx(&self, hash: &TxHash) -> Result<TxStatusView, NodeError> {
        self.get(&format!("/v1/txs/{hash}"))
    }

    /// Submits a signed transaction; with `wait` the node answers once it is
    /// committed or rejected, or still pending after `wait`.
    pub fn submit(
        &self,
        tx: &SignedTransaction,
        wait: Option<Duration>,
    ) -> Result<TxStatusView, NodeError> {
        let path = match wait {
            Some(timeout) => format!("/v1/txs?wait=commit&timeout_ms={}", timeout.as_millis()),
            None => "/v1/txs".to_string(),
        };
        let body = serde_json::to_string(&SubmitTx {
            tx: hex::encode(tx.to_bytes()),
        })
        .expect("a string always serialises");
        let url = format!("{}{path}", self.base);
        let answer = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.as_str());
        let (status, text) = self.read(&url, answer)?;
        // A rejection after waiting is a 422 that still carries the status view.
        if let Ok(view) = serde_json::from_str::<TxStatusView>(&text) {
            return Ok(view);
        }
        if status >= 400 {
            return Err(refusal(status, &text));
        }
        self.parse(&url, &text)
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, NodeError> {
        let url = format!("{}{path}", self.base);
        let (status, text) = self.read(&url, self.agent.get(&url).call())?;
        if status >= 400 {
            return Err(refusal(status, &text));
        }
        self.parse(&url, &text)
    }

    fn read(
        &self,
        url: &str,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, String), NodeError> {
        let mut response = answer.map_err(|error| self.transport_error(error))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|error| NodeError::BadAnswer {
                url: url.to_string(),
                reason: error.to_string(),
            })?;
        Ok((status, text))
    }

    fn parse<T: DeserializeOwned>(&self, url: &str, text: &str) -> Result<T, NodeError> {
        serde_json::from_str(text).map_err(|error| NodeError::BadAnswer {
            url: url.to_string(),
            reason: format!("{error} (is {} an scfledger node?)", self.base),
        })
    }

    fn transport_error(&self, error: ureq::Error) -> NodeError {
        let reason = match &error {
            ureq::Error::Io(io) => match io.kind() {
                io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                io::ErrorKind::ConnectionReset => "connection reset".to_string(),
                _ => io.to_string(),
            },
            ureq::Error::Timeout(_) => "timed out".to_string(),
            ureq::Error::HostNotFound => "host not found".to_string(),
            ureq::Error::BadUri(uri) => format!("{uri:?} is not a URL like http://127.0.0.1:8700"),
            other => other.to_string(),
        };
        NodeError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }
}

/// An error answer: `{ "error", "detail" }`, or whatever text came instead.
fn refusal(status: u16, text: &str) -> NodeError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => NodeError::Refused {
            status,
            code: body.error,
            detail: body.detail,
        },
        Err(_) => NodeError::Refused {
            status,
            code: format!("http_{status}"),
            detail: text.chars().take(300).collect(),
        },
    }
}
