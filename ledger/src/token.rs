//! Receivable tokens and the records around them: the receivable (one per
//! root confirmation), credit lines and invoice references.
//!
//! Tokens are unspent outputs. A transfer spends one token and creates new
//! ones; spent tokens stay in the state forever, so every token's lineage back
//! to its root confirmation is always on the ledger.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{Hash, ParseHexError, PublicKey};

use crate::amount::{Amount, Timestamp};
use crate::transaction::TxHash;

/// Identifies a token: the hash of the transaction that created it and the
/// output's index (see [`TokenId::derive`]).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct TokenId(pub crypto::Hash);

impl TokenId {
    /// The id of output `index` of transaction `tx`. Unique because a
    /// transaction hash is (nonces make every transaction distinct).
    pub fn derive(tx: &TxHash, index: u32) -> TokenId {
        TokenId(Hash::digest_parts(&[
            b"scfledger/token/v1",
            tx.0.as_bytes(),
            &index.to_le_bytes(),
        ]))
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({})", &self.0.to_hex()[..16])
    }
}

impl FromStr for TokenId {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(TokenId)
    }
}

/// Where a token is in its life.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TokenStatus {
    /// Held and usable: may be transferred, split or offered for financing.
    Active,
    /// Offered to `bank` for financing at `rate_bps`; waits for the bank.
    Pending { bank: PublicKey, rate_bps: u32 },
    /// Spent by the transaction `by`: its value lives on in its children.
    Spent { by: TxHash },
    /// Paid by the issuer at maturity.
    ///
    /// Settling a root writes only its [`Receivable`] (one entry, whatever
    /// the number of tokens): a stored token keeps the status it had (active
    /// or pending) and is read as settled through [`Token::settled_by`].
    /// Nothing can spend a token once its root has matured, so the tokens
    /// unspent at settlement are exactly the tokens unspent at maturity.
    Settled { payment_ref: String },
}

/// How a token came to exist.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// The root: a core enterprise confirmed what it owes.
    Confirmed,
    /// An output of a transfer (split) by the parent's holder.
    Transferred,
    /// Bought by a bank: `price` was paid to `seller` for the parent.
    Financed {
        seller: PublicKey,
        price: Amount,
        rate_bps: u32,
        days: u64,
    },
}

/// A receivable token.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Token {
    pub id: TokenId,
    pub root_id: TokenId,
    pub parent_id: Option<TokenId>,
    /// The core enterprise that confirmed the root and owes the amount.
    pub issuer: PublicKey,
    pub holder: PublicKey,
    pub amount: Amount,
    pub maturity: Timestamp,
    pub invoice_ref: Hash,
    pub status: TokenStatus,
    /// Frozen by an auditor: nothing may happen to it until unfrozen.
    pub frozen: bool,
    pub origin: Origin,
    /// Height of the block that created it.
    pub created_at: u64,
}

impl Token {
    /// Active or pending: the token still carries value of its own.
    pub fn is_unspent(&self) -> bool {
        matches!(
            self.status,
            TokenStatus::Active | TokenStatus::Pending { .. }
        )
    }

    /// The token as its root's `receivable` makes it: an unspent token of a
    /// settled root is settled (see [`TokenStatus::Settled`]).
    pub fn settled_by(mut self, receivable: &Receivable) -> Token {
        if let Some(settlement) = &receivable.settlement
            && receivable.root_id == self.root_id
            && self.is_unspent()
        {
            self.status = TokenStatus::Settled {
                payment_ref: settlement.payment_ref.clone(),
            };
        }
        self
    }
}

/// One root confirmation: what the issuer owes in total and whether it has
/// been settled.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Receivable {
    pub root_id: TokenId,
    pub issuer: PublicKey,
    pub amount: Amount,
    pub maturity: Timestamp,
    pub invoice_ref: Hash,
    /// How many of its unspent tokens an auditor has frozen. Settlement
    /// waits until this is zero: paying around a disputed token would pay the
    /// wrong party.
    pub frozen_tokens: u32,
    pub settlement: Option<Settlement>,
}

#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Settlement {
    pub payment_ref: String,
    pub settled_at: Timestamp,
}

/// The credit a core enterprise may have outstanding, granted by banks.
/// The limit is the sum of the grants; each bank's grant is replaced by its
/// next `GrantCreditLine`.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct CreditLine {
    pub core: PublicKey,
    /// (bank, limit), sorted by bank.
    pub grants: Vec<(PublicKey, Amount)>,
    /// Confirmed and not yet settled.
    pub outstanding: Amount,
}

impl CreditLine {
    pub fn new(core: PublicKey) -> CreditLine {
        CreditLine {
            core,
            grants: Vec::new(),
            outstanding: Amount::ZERO,
        }
    }

    /// The sum of every bank's grant (saturating: a limit cannot overflow
    /// into something smaller).
    pub fn limit(&self) -> Amount {
        Amount(
            self.grants
                .iter()
                .fold(0u64, |sum, (_, limit)| sum.saturating_add(limit.0)),
        )
    }

    /// Replaces `bank`'s grant, keeping the grants sorted by bank.
    pub fn set_grant(&mut self, bank: PublicKey, limit: Amount) {
        match self.grants.binary_search_by(|(key, _)| key.cmp(&bank)) {
            Ok(index) => self.grants[index].1 = limit,
            Err(index) => self.grants.insert(index, (bank, limit)),
        }
    }
}

/// Records that an invoice reference has been confirmed, and as which root.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct InvoiceRecord {
    pub invoice_ref: Hash,
    pub root_id: TokenId,
}
