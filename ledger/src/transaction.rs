//! Transactions: what each kind says, how it is signed, hashed and decoded.
//!
//! The signature covers [`crypto::signing_bytes`] of the [`Transaction`]
//! (domain `Transaction`, the transaction's chain id, its borsh body). The
//! transaction hash is the hash of the unsigned transaction, so a transaction
//! has one identity whatever bytes its signature has; the nonce makes it
//! unique. The rules each kind must satisfy live in `execute`.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{
    ChainId, CryptoError, Domain, Hash, Keypair, ParseHexError, PublicKey, Signature, SignedMessage,
};

use crate::amount::{Amount, Timestamp};
use crate::error::TxError;
use crate::governance::ValidatorChange;
use crate::participant::Role;
use crate::token::TokenId;

/// Largest encoded signed transaction accepted anywhere.
pub const MAX_TX_BYTES: usize = 16 * 1024;
/// Most outputs one transfer may create.
pub const MAX_TRANSFER_OUTPUTS: usize = 64;
/// Longest participant name, payment reference or freeze reason, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;

/// The hash of an unsigned [`Transaction`].
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
pub struct TxHash(pub Hash);

impl fmt::Display for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxHash({})", &self.0.to_hex()[..16])
    }
}

impl FromStr for TxHash {
    type Err = ParseHexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(TxHash)
    }
}

/// One output of a transfer.
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
pub struct Output {
    pub recipient: PublicKey,
    pub amount: Amount,
}

/// What a transaction does. See DESIGN.md's table for who may sign each.
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
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TxBody {
    /// Operator: adds a participant with roles.
    RegisterParticipant {
        key: PublicKey,
        name: String,
        roles: Vec<Role>,
    },
    /// Operator: a deactivated participant can no longer sign or receive.
    DeactivateParticipant { key: PublicKey },
    /// Bank: sets its grant in `core`'s credit line.
    GrantCreditLine { core: PublicKey, limit: Amount },
    /// Core enterprise: issues a root token to a supplier.
    ConfirmReceivable {
        supplier: PublicKey,
        amount: Amount,
        maturity: Timestamp,
        invoice_ref: Hash,
    },
    /// Holder: spends `token` into `outputs` (a split when there are several).
    Transfer {
        token: TokenId,
        outputs: Vec<Output>,
    },
    /// Holder: offers `token` to `bank` at `rate_bps` (basis points a year).
    RequestFinancing {
        token: TokenId,
        bank: PublicKey,
        rate_bps: u32,
    },
    /// The bank offered the token: buys it at the discounted price.
    AcceptFinancing { token: TokenId },
    /// The bank offered the token: declines; the token is active again.
    RejectFinancing { token: TokenId },
    /// Issuer: pays every current holder of `root`'s tokens at maturity.
    Settle { root: TokenId, payment_ref: String },
    /// Auditor: blocks a disputed token.
    Freeze { token: TokenId, reason: String },
    /// Auditor: releases a frozen token.
    Unfreeze { token: TokenId },
    /// Any participant but a validator's account: from now on signs with
    /// `new_key`; its identity, and everything that names it, stays.
    RotateParticipantKey { new_key: PublicKey },
    /// Operator: asks to replace the lost key of `participant` (its
    /// identity) with `new_key`; takes effect when an auditor approves.
    RequestKeyRecovery {
        participant: PublicKey,
        new_key: PublicKey,
    },
    /// Auditor: approves the pending recovery of `participant` to
    /// `new_key` (both must match the request).
    ApproveKeyRecovery {
        participant: PublicKey,
        new_key: PublicKey,
    },
    /// Validator (its consensus key): proposes a change of the validator
    /// set, open for approval until height `expires_at`; counts as the
    /// proposer's approval. See `governance` for the rules.
    ProposeValidatorChange {
        change: ValidatorChange,
        expires_at: u64,
    },
    /// Validator (its consensus key): approves an open proposal, named by
    /// the hash of the transaction that proposed it.
    ApproveValidatorChange { proposal: TxHash },
}

impl TxBody {
    /// A short name for logs, errors and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::RegisterParticipant { .. } => "register_participant",
            TxBody::DeactivateParticipant { .. } => "deactivate_participant",
            TxBody::GrantCreditLine { .. } => "grant_credit_line",
            TxBody::ConfirmReceivable { .. } => "confirm_receivable",
            TxBody::Transfer { .. } => "transfer",
            TxBody::RequestFinancing { .. } => "request_financing",
            TxBody::AcceptFinancing { .. } => "accept_financing",
            TxBody::RejectFinancing { .. } => "reject_financing",
            TxBody::Settle { .. } => "settle",
            TxBody::Freeze { .. } => "freeze",
            TxBody::Unfreeze { .. } => "unfreeze",
            TxBody::RotateParticipantKey { .. } => "rotate_participant_key",
            TxBody::RequestKeyRecovery { .. } => "request_key_recovery",
            TxBody::ApproveKeyRecovery { .. } => "approve_key_recovery",
            TxBody::ProposeValidatorChange { .. } => "propose_validator_change",
            TxBody::ApproveValidatorChange { .. } => "approve_validator_change",
        }
    }
}

/// The signed content of a transaction.
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
pub struct Transaction {
    pub chain_id: ChainId,
    pub signer: PublicKey,
    /// Must equal the signer's `next_nonce`: each transaction applies once.
    pub nonce: u64,
    pub body: TxBody,
}

impl Transaction {
    pub fn hash(&self) -> TxHash {
        TxHash(Hash::of(self))
    }

    /// Signs with `key`, which must be the key named as `signer`.
    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        debug_assert_eq!(
            key.public(),
            self.signer,
            "signing with a key other than the signer's"
        );
        let signature = key.sign(Domain::Transaction, &self.chain_id, &self);
        SignedTransaction {
            tx: self,
            signature,
        }
    }

    /// The exact bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        crypto::signing_bytes(Domain::Transaction, &self.chain_id, self)
    }
}

/// A transaction with its signature: what clients submit and blocks carry.
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
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl SignedTransaction {
    pub fn hash(&self) -> TxHash {
        self.tx.hash()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("writing into a Vec cannot fail")
    }

    /// Decodes untrusted bytes. Refuses more than [`MAX_TX_BYTES`] before
    /// decoding anything, and trailing bytes after the transaction.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedTransaction, DecodeError> {
        decode_limited(bytes, MAX_TX_BYTES)
    }

    /// Checks the signature alone (chain id and rules are `execute`'s job).
    pub fn verify_signature(&self) -> Result<(), TxError> {
        self.tx
            .signer
            .verify_bytes(&self.tx.signing_bytes(), &self.signature)
            .map_err(|_| TxError::BadSignature {
                signer: self.tx.signer,
            })
    }
}

/// Verifies the signatures of many transactions at once (batched, across
/// cores) and returns one result per transaction, in order.
pub fn verify_signatures(txs: &[SignedTransaction]) -> Vec<Result<(), TxError>> {
    let bytes: Vec<Vec<u8>> = txs.iter().map(|signed| signed.tx.signing_bytes()).collect();
    let messages: Vec<SignedMessage<'_>> = txs
        .iter()
        .zip(&bytes)
        .map(|(signed, message)| SignedMessage {
            key: &signed.tx.signer,
            signature: &signed.signature,
            message,
        })
        .collect();
    crypto::verify_many(&messages)
        .into_iter()
        .map(|result| {
            result.map_err(|error| match error {
                CryptoError::InvalidPublicKey { key } | CryptoError::BadSignature { key } => {
                    TxError::BadSignature { signer: key }
                }
            })
        })
        .collect()
}

/// Bytes that are not a valid encoding of the expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what} is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        what: &'static str,
        len: usize,
        limit: usize,
    },
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
}

/// Decodes `bytes` as a `T` after checking the overall size; borsh itself
/// caps what it preallocates for a length prefix, and the size check bounds
/// what any decode can allocate in total.
pub(crate) fn decode_limited<T: BorshDeserialize>(
    bytes: &[u8],
    limit: usize,
) -> Result<T, DecodeError> {
    let what = std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("value");
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            limit,
        });
    }
    borsh::from_slice(bytes).map_err(|error| DecodeError::Malformed {
        what,
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignedTransaction {
        let key = Keypair::from_seed([3; 32]);
        Transaction {
            chain_id: ChainId(Hash([9; 32])),
            signer: key.public(),
            nonce: 7,
            body: TxBody::Transfer {
                token: TokenId(Hash([1; 32])),
                outputs: vec![Output {
                    recipient: PublicKey([2; 32]),
                    amount: Amount(500),
                }],
            },
        }
        .sign(&key)
    }

    #[test]
    fn encoding_round_trips_and_signature_verifies() {
        let signed = sample();
        let decoded = SignedTransaction::from_bytes(&signed.to_bytes()).unwrap();
        assert_eq!(decoded, signed);
        assert_eq!(decoded.verify_signature(), Ok(()));
    }

    /// Golden vector: the transaction hash pins the whole signed layout.
    #[test]
    fn transaction_hash_is_pinned() {
        let signed = sample();
        let bytes = borsh::to_vec(&signed.tx).unwrap();
        assert_eq!(
            hex::encode(&bytes),
            concat!(
                "0909090909090909090909090909090909090909090909090909090909090909", // chain id
                "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1", // signer
                "0700000000000000",                                                 // nonce
                "04",                                                               // Transfer
                "0101010101010101010101010101010101010101010101010101010101010101", // token
                "01000000",                                                         // one output
                "0202020202020202020202020202020202020202020202020202020202020202", // recipient
                "f401000000000000"                                                  // 500
            )
        );
        assert_eq!(signed.hash(), TxHash(Hash::digest(&bytes)));
    }

    /// Golden vector: a governance transaction's layout, including the
    /// change's variant tag and a peer id's bytes.
    #[test]
    fn a_validator_change_proposal_layout_is_pinned() {
        let key = Keypair::from_seed([3; 32]);
        let mut peer = vec![0x00, 36, 0x08, 0x01, 0x12, 0x20];
        peer.extend_from_slice(&[1; 32]);
        let tx = Transaction {
            chain_id: ChainId(Hash([9; 32])),
            signer: key.public(),
            nonce: 1,
            body: TxBody::ProposeValidatorChange {
                change: ValidatorChange::Add {
                    name: "bank-e".into(),
                    consensus_key: PublicKey([2; 32]),
                    peer_id: crate::governance::PeerId::from_bytes(peer).unwrap(),
                    address: "/ip4/10.0.0.5/tcp/1".into(),
                    power: 5,
                },
                expires_at: 100,
            },
        };
        assert_eq!(
            hex::encode(borsh::to_vec(&tx).unwrap()),
            concat!(
                "0909090909090909090909090909090909090909090909090909090909090909", // chain id
                "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1", // signer
                "0100000000000000",                                                 // nonce
                "0e", // ProposeValidatorChange
                "00", // Add
                "06000000",
                "62616e6b2d65", // "bank-e"
                "0202020202020202020202020202020202020202020202020202020202020202", // consensus key
                "26000000",
                "0024080112200101010101010101010101010101010101010101010101010101010101010101", // peer id
                "13000000",
                "2f6970342f31302e302e302e352f7463702f31", // address
                "0500000000000000",                       // power
                "6400000000000000"                        // expires at
            )
        );
        let approve = TxBody::ApproveValidatorChange {
            proposal: TxHash(Hash([4; 32])),
        };
        assert_eq!(borsh::to_vec(&approve).unwrap()[0], 0x0f);
        assert_eq!(
            borsh::to_vec(&TxBody::RotateParticipantKey {
                new_key: PublicKey([5; 32])
            })
            .unwrap()[0],
            0x0b
        );
    }

    #[test]
    fn truncated_and_trailing_bytes_are_errors() {
        let bytes = sample().to_bytes();
        for len in 0..bytes.len() {
            assert!(
                SignedTransaction::from_bytes(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SignedTransaction::from_bytes(&longer).is_err());
    }

    #[test]
    fn oversize_input_is_refused_before_decoding() {
        let bytes = vec![0u8; MAX_TX_BYTES + 1];
        assert_eq!(
            SignedTransaction::from_bytes(&bytes),
            Err(DecodeError::TooLarge {
                what: "SignedTransaction",
                len: MAX_TX_BYTES + 1,
                limit: MAX_TX_BYTES
            })
        );
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // A transfer claiming u32::MAX outputs, followed by almost nothing.
        let mut bytes = borsh::to_vec(&sample().tx).unwrap();
        let outputs_at = 32 + 32 + 8 + 1 + 32;
        bytes.truncate(outputs_at);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 64]);
        assert!(matches!(
            SignedTransaction::from_bytes(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn batch_verification_names_the_bad_signature() {
        let good = sample();
        let mut bad = sample();
        bad.signature.0[1] ^= 0xff;
        let txs: Vec<SignedTransaction> = (0..100)
            .map(|i| if i == 42 { bad.clone() } else { good.clone() })
            .collect();
        let results = verify_signatures(&txs);
        assert_eq!(
            results[42],
            Err(TxError::BadSignature {
                signer: bad.tx.signer
            })
        );
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 99);
    }
}
