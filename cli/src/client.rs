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
use node::api::event_views::EventPageView;
use node::api::types::{
    BlockView, ErrorBody, LineageView, ParticipantView, RawBlockAnswer, StatusView, SubmitTx,
    TokenPage, TokenView, TxStatusView,
};
use serde::de::DeserializeOwned;

/// The largest answer read (a block view carries its transactions and its
/// borsh encoding as hex).
pub(crate) const MAX_ANSWER_BYTES: u64 = 256 * 1024 * 1024;

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
        // Submissions wait for their commit; the node bounds that wait.
        NodeClient::with_timeout(url, Duration::from_secs(300))
    }

    /// A client whose every request gives up after `timeout` (for probes
    /// that must not hang on a stuck node).
    pub fn with_timeout(url: &str, timeout: Duration) -> NodeClient {
        let trimmed = url.trim().trim_end_matches('/');
        let base = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5).min(timeout)))
            .timeout_global(Some(timeout))
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

    /// The validator set in force at `height` (default: the next height).
    pub fn validators(
        &self,
        height: Option<u64>,
    ) -> Result<node::api::governance::ValidatorSetView, NodeError> {
        match height {
            Some(height) => self.get(&format!("/v1/validators?height={height}")),
            None => self.get("/v1/validators"),
        }
    }

    pub fn validator_proposals(&self) -> Result<node::api::governance::ProposalsView, NodeError> {
        self.get("/v1/validators/proposals")
    }

    pub fn validator_proposal(
        &self,
        id: &TxHash,
    ) -> Result<node::api::governance::ProposalView, NodeError> {
        self.get(&format!("/v1/validators/proposals/{id}"))
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

    /// One page of the event feed after `after` (from the oldest kept event
    /// when `None`), waiting up to `wait_ms` for new events.
    pub fn events(
        &self,
        after: Option<&str>,
        wait_ms: u64,
        kinds: Option<&str>,
        party: Option<&PublicKey>,
    ) -> Result<EventPageView, NodeError> {
        let mut query = format!("/v1/events?wait_ms={wait_ms}");
        if let Some(after) = after {
            query.push_str(&format!("&after={after}"));
        }
        if let Some(kinds) = kinds {
            query.push_str(&format!("&kinds={kinds}"));
        }
        if let Some(party) = party {
            query.push_str(&format!("&party={party}"));
        }
        self.get(&query)
    }

    /// `None` for the latest block.
    pub fn block(&self, height: Option<u64>) -> Result<BlockView, NodeError> {
        match height {
            Some(height) => self.get(&format!("/v1/blocks/{height}")),
            None => self.get("/v1/blocks/latest"),
        }
    }

    /// The block and certificate stored at `height`, as the node stores
    /// them (`GET /v1/blocks/{height}/raw`), reading no more than
    /// `max_bytes`; `None` if the node has no block there. An answer for
    /// another height is refused.
    pub fn raw_block(
        &self,
        height: u64,
        max_bytes: u64,
    ) -> Result<Option<RawBlockAnswer>, NodeError> {
        let path = format!("/v1/blocks/{height}/raw");
        match self.get_borsh_bounded::<RawBlockAnswer>(&path, max_bytes) {
            Ok(answer) if answer.height == height => Ok(Some(answer)),
            Ok(answer) => Err(NodeError::BadAnswer {
                url: format!("{}{path}", self.base),
                reason: format!(
                    "asked for height {height}, it answered height {}",
                    answer.height
                ),
            }),
            Err(NodeError::Refused { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
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
        self.get_bounded(path, MAX_ANSWER_BYTES)
    }

    /// GET `path`, refusing an answer longer than `max_bytes` (read no
    /// further than that): for callers that know how large an honest
    /// answer can be.
    pub fn get_bounded<T: DeserializeOwned>(
        &self,
        path: &str,
        max_bytes: u64,
    ) -> Result<T, NodeError> {
        let url = format!("{}{path}", self.base);
        let (status, text) = self.read_bounded(&url, self.agent.get(&url).call(), max_bytes)?;
        if status >= 400 {
            return Err(refusal(status, &text));
        }
        self.parse(&url, &text)
    }

    /// GET `path` as borsh (for the routes that answer it, such as
    /// `/v1/events?format=borsh`), refusing an answer longer than
    /// `max_bytes` (read no further than that) or with bytes after the
    /// value. An error answer is still JSON.
    pub fn get_borsh_bounded<T: borsh::BorshDeserialize>(
        &self,
        path: &str,
        max_bytes: u64,
    ) -> Result<T, NodeError> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|error| self.transport_error(error))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(max_bytes)
            .read_to_vec()
            .map_err(|error| NodeError::BadAnswer {
                url: url.clone(),
                reason: error.to_string(),
            })?;
        if status >= 400 {
            return Err(refusal(status, &String::from_utf8_lossy(&bytes)));
        }
        borsh::from_slice(&bytes).map_err(|error| NodeError::BadAnswer {
            url,
            reason: format!(
                "not a borsh answer of this route: {error} (is {} an scfledger node?)",
                self.base
            ),
        })
    }

    fn read(
        &self,
        url: &str,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, String), NodeError> {
        self.read_bounded(url, answer, MAX_ANSWER_BYTES)
    }

    fn read_bounded(
        &self,
        url: &str,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        max_bytes: u64,
    ) -> Result<(u16, String), NodeError> {
        let mut response = answer.map_err(|error| self.transport_error(error))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(max_bytes)
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

#[cfg(test)]
mod tests {
    //! The paged routes against a stand-in node on 127.0.0.1 that answers
    //! canned pages, so the client's following of `next` is seen without
    //! thousands of tokens on a real chain.

    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use crypto::Hash;
    use ledger::{Amount, Origin, Timestamp, Token, TokenStatus};

    use super::*;

    fn token(seed: u8, parent: Option<TokenId>) -> TokenView {
        let id = TokenId(Hash::digest(&[seed]));
        TokenView::new(
            &Token {
                id,
                root_id: TokenId(Hash::digest(b"root")),
                parent_id: parent,
                issuer: crypto::Keypair::from_seed([1; 32]).public(),
                holder: crypto::Keypair::from_seed([2; 32]).public(),
                amount: Amount(100),
                maturity: Timestamp(4_102_444_800_000),
                invoice_ref: Hash::digest(b"invoice"),
                status: TokenStatus::Active,
                frozen: false,
                origin: Origin::Transferred,
                created_at: 1,
            },
            2,
        )
    }

    /// Serves `answers` (path and query → JSON), one request per
    /// connection and as many requests as answers; returns the base URL
    /// and, when joined, the paths asked for.
    fn stand_in(answers: Vec<(String, String)>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let server = std::thread::spawn(move || {
            let mut asked = Vec::new();
            for _ in 0..answers.len() {
                let (stream, _) = listener.accept().expect("a request");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                reader.read_line(&mut line).expect("request line");
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let body = answers
                    .iter()
                    .find(|(path, _)| *path == target)
                    .map(|(_, body)| body.clone())
                    .unwrap_or_else(|| {
                        format!("{{\"error\":\"not_found\",\"detail\":\"{target}\"}}")
                    });
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                asked.push(target);
            }
            asked
        });
        (base, server)
    }

    #[test]
    fn holdings_follow_next_until_the_last_page() {
        let key = crypto::Keypair::from_seed([2; 32]).public();
        let (a, b, c) = (token(1, None), token(2, None), token(3, None));
        let path = format!("/v1/participants/{key}/tokens");
        let page = |tokens: Vec<TokenView>, next: Option<TokenId>| {
            serde_json::to_string(&TokenPage { tokens, next }).expect("JSON")
        };
        let (base, server) = stand_in(vec![
            (path.clone(), page(vec![a.clone(), b.clone()], Some(b.id))),
            (
                format!("{path}?after={}", b.id),
                page(vec![c.clone()], None),
            ),
        ]);
        let tokens = NodeClient::new(&base).holdings(&key).expect("every page");
        assert_eq!(tokens, vec![a, b.clone(), c]);
        assert_eq!(
            server.join().expect("stand-in"),
            vec![path.clone(), format!("{path}?after={}", b.id)]
        );
    }

    #[test]
    fn lineage_joins_the_descendants_of_every_page() {
        let root = token(9, None);
        let (a, b) = (token(1, Some(root.id)), token(2, Some(root.id)));
        let path = format!("/v1/tokens/{}/lineage", root.id);
        let page = |descendants: Vec<TokenView>, next: Option<TokenId>| {
            serde_json::to_string(&LineageView {
                ancestors: Vec::new(),
                token: root.clone(),
                descendants,
                next,
            })
            .expect("JSON")
        };
        let (base, server) = stand_in(vec![
            (path.clone(), page(vec![a.clone()], Some(a.id))),
            (
                format!("{path}?after={}", a.id),
                page(vec![b.clone()], None),
            ),
        ]);
        let lineage = NodeClient::new(&base)
            .lineage(&root.id)
            .expect("every page");
        assert_eq!(lineage.descendants, vec![a, b]);
        assert_eq!(lineage.next, None);
        server.join().expect("stand-in");
    }

    #[test]
    fn a_page_whose_next_does_not_move_is_refused() {
        let key = crypto::Keypair::from_seed([2; 32]).public();
        let a = token(1, None);
        let path = format!("/v1/participants/{key}/tokens");
        let stuck = serde_json::to_string(&TokenPage {
            tokens: vec![a.clone()],
            next: Some(a.id),
        })
        .expect("JSON");
        let (base, server) = stand_in(vec![
            (path.clone(), stuck.clone()),
            (format!("{path}?after={}", a.id), stuck),
        ]);
        let error = NodeClient::new(&base).holdings(&key).unwrap_err();
        assert!(matches!(error, NodeError::BadAnswer { .. }), "{error}");
        server.join().expect("stand-in");
    }
}
