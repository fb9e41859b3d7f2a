//! The JSON shapes of the HTTP API, shared by the server (`node::api`) and its
//! clients (the `scf` CLI), so both sides agree by construction.
//!
//! Conventions: keys, hashes and token ids are lowercase hex; amounts are
//! decimal strings in the chain's currency ("400000.00") next to their
//! integer minor units; times are RFC 3339 UTC next to Unix milliseconds.
//! Only `Serialize`/`Deserialize` views live here: no I/O, no store access.

use crypto::{Hash, PublicKey};
use ledger::{Amount, Participant, Timestamp, Token, TokenId, TokenStatus, TxBody, TxHash};
use serde::{Deserialize, Serialize};

/// Body of `POST /v1/txs`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitTx {
    /// Hex of the borsh-encoded `SignedTransaction`.
    pub tx: String,
}

/// Body of `POST /v1/txs/batch`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitBatch {
    /// Hex of each borsh-encoded `SignedTransaction`.
    pub txs: Vec<String>,
}

/// The answer per transaction of `POST /v1/txs/batch`, in request order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum BatchResult {
    Accepted { tx_hash: TxHash },
    Refused { error: String, detail: String },
}

/// Every error answer: `{ "error": "<short code>", "detail": "<what went wrong and what to do>" }`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: String,
    pub detail: String,
}

/// Where a transaction is: the answer of `POST /v1/txs` and `GET /v1/txs/{hash}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TxStatusView {
    pub tx_hash: TxHash,
    #[serde(flatten)]
    pub status: TxState,
}

/// `pending` (in the mempool), `committed` (with its place and the tokens it
/// created), or `rejected` (with the broken rule).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxState {
    Pending,
    Committed {
        height: u64,
        index: u32,
        /// Ids of the tokens this transaction created, in output order.
        tokens: Vec<TokenId>,
    },
    Rejected {
        /// The rule's short name, e.g. `not_holder`.
        error: String,
        detail: String,
    },
}

/// The ids of the tokens a transaction creates when it commits: a
/// confirmation's root, a transfer's outputs, the bank's token on accepting
/// financing. Mirrors the ledger's `TokenId::derive(tx hash, output index)`.
pub fn created_token_ids(hash: &TxHash, body: &TxBody) -> Vec<TokenId> {
    let count = match body {
        TxBody::ConfirmReceivable { .. } | TxBody::AcceptFinancing { .. } => 1,
        TxBody::Transfer { outputs, .. } => outputs.len(),
        _ => 0,
    };
    (0..count as u32)
        .map(|index| TokenId::derive(hash, index))
        .collect()
}

/// A token as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenView {
    pub id: TokenId,
    pub root_id: TokenId,
    pub parent_id: Option<TokenId>,
    pub issuer: PublicKey,
    pub holder: PublicKey,
    /// Decimal, e.g. "400000.00".
    pub amount: String,
    pub amount_minor: u64,
    /// RFC 3339 UTC.
    pub maturity: String,
    pub maturity_ms: u64,
    pub invoice_ref: Hash,
    /// `active`, `pending`, `spent` or `settled`.
    pub status: String,
    /// The full status: the bank and rate of a pending token, the spending
    /// transaction, the payment reference.
    pub status_detail: TokenStatus,
    pub frozen: bool,
    pub origin: ledger::Origin,
    /// Height of the block that created it.
    pub created_at: u64,
}

impl TokenView {
    pub fn new(token: &Token, decimals: u8) -> TokenView {
        TokenView {
            id: token.id,
            root_id: token.root_id,
            parent_id: token.parent_id,
            issuer: token.issuer,
            holder: token.holder,
            amount: token.amount.to_decimal_string(decimals),
            amount_minor: token.amount.0,
            maturity: format_time(token.maturity),
            maturity_ms: token.maturity.0,
            invoice_ref: token.invoice_ref,
            status: status_name(&token.status).to_string(),
            status_detail: token.status.clone(),
            frozen: token.frozen,
            origin: token.origin.clone(),
            created_at: token.created_at,
        }
    }
}

/// The one-word status of a token.
pub fn status_name(status: &TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => "active",
        TokenStatus::Pending { .. } => "pending",
        TokenStatus::Spent { .. } => "spent",
        TokenStatus::Settled { .. } => "settled",
    }
}

/// `GET /v1/tokens/{id}/lineage`, one page: ancestors (parent first, root
/// last) and the token on every page, then a page of descendants in
/// depth-first pre-order, children by id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LineageView {
    pub ancestors: Vec<TokenView>,
    pub token: TokenView,
    pub descendants: Vec<TokenView>,
    /// `?after=` for the next page of descendants; `null` on the last page.
    #[serde(default)]
    pub next: Option<TokenId>,
}

/// `GET /v1/participants/{key}/tokens`, one page: unspent tokens by id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenPage {
    pub tokens: Vec<TokenView>,
    /// `?after=` for the next page; `null` on the last page.
    #[serde(default)]
    pub next: Option<TokenId>,
}

/// `GET /v1/participants/{key}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ParticipantView {
    /// Its identity: the key it was registered with, the same across key
    /// rotations.
    pub key: PublicKey,
    /// The key its transactions must be signed with now (`key` until its
    /// first rotation).
    pub signing_key: PublicKey,
    pub name: String,
    pub roles: Vec<String>,
    pub active: bool,
    /// The nonce its next transaction must carry.
    pub next_nonce: u64,
    /// The credit line, when the participant is a core enterprise that has one.
    pub credit_line: Option<CreditLineView>,
}

impl ParticipantView {
    pub fn new(participant: &Participant, credit_line: Option<CreditLineView>) -> Self {
        ParticipantView {
            key: participant.key,
            signing_key: participant.signing_key,
            name: participant.name.clone(),
            roles: participant
                .roles
                .iter()
                .map(|role| role.name().to_string())
                .collect(),
            active: participant.active,
            next_nonce: participant.next_nonce,
            credit_line,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreditLineView {
    /// Sum of every bank's grant, decimal.
    pub limit: String,
    pub outstanding: String,
    /// (bank, grant) per bank, decimal.
    pub grants: Vec<(PublicKey, String)>,
}

impl CreditLineView {
    pub fn new(line: &ledger::CreditLine, decimals: u8) -> Self {
        CreditLineView {
            limit: line.limit().to_decimal_string(decimals),
            outstanding: line.outstanding.to_decimal_string(decimals),
            grants: line
                .grants
                .iter()
                .map(|(bank, amount)| (*bank, amount.to_decimal_string(decimals)))
                .collect(),
        }
    }
}

/// `GET /v1/blocks/{height}` and `/v1/blocks/latest`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockView {
    pub height: u64,
    pub hash: Hash,
    pub parent_hash: Hash,
    pub time: String,
    pub time_ms: u64,
    pub proposer: PublicKey,
    pub tx_root: Hash,
    pub app_hash: Hash,
    pub txs: Vec<BlockTxView>,
    /// Hex of the borsh block, for auditors who verify it themselves.
    pub block_hex: String,
    /// The commit certificate (absent for height 0); its borsh as hex too.
    pub certificate: Option<consensus::CommitCertificate>,
    pub certificate_hex: Option<String>,
}

/// `GET /v1/blocks/{height}/raw` (`application/octet-stream`, this struct
/// borsh-encoded): the block and its commit certificate as the node stores
/// them, for programs that verify blocks themselves (`scf audit verify
/// --node`, `scf sink postgres`). Nothing in it is decoded or re-encoded by
/// the node, so nothing of the node's reading stands between the stored
/// bytes and the verifier.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct RawBlockAnswer {
    pub height: u64,
    /// Borsh `ledger::Block`.
    pub block: Vec<u8>,
    /// Borsh `consensus::CommitCertificate`; `None` if none is stored.
    pub certificate: Option<Vec<u8>>,
}

/// `GET /v1/blocks/{height}/txs`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockTxsView {
    pub height: u64,
    pub hash: Hash,
    pub txs: Vec<BlockTxView>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockTxView {
    pub hash: TxHash,
    pub signer: PublicKey,
    pub nonce: u64,
    pub kind: String,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusView {
    pub chain_id: crypto::ChainId,
    pub chain_name: String,
    pub node_name: String,
    /// `validator` or `observer`.
    pub role: String,
    pub height: u64,
    pub block_hash: Hash,
    pub app_hash: Hash,
    pub latest_block_time: String,
    /// Connected peers (their libp2p peer ids).
    pub peers: Vec<String>,
    pub peer_count: usize,
    /// True while the node fetches blocks it is missing from peers.
    pub syncing: bool,
    pub consensus_round: u32,
    pub mempool_txs: usize,
    pub mempool_bytes: usize,
    pub currency_code: String,
    pub currency_decimals: u8,
}

/// RFC 3339 UTC with milliseconds, e.g. "2027-03-31T00:00:00.000Z".
pub fn format_time(time: Timestamp) -> String {
    let nanos = i128::from(time.0) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(moment) => moment
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| format!("{} ms", time.0)),
        Err(_) => format!("{} ms", time.0),
    }
}

/// Formats minor units as the chain's decimal string.
pub fn format_amount(amount: Amount, decimals: u8) -> String {
    amount.to_decimal_string(decimals)
}
