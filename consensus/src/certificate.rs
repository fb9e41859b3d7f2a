//! Commit certificates: the precommit signatures of more than two thirds of
//! the voting power for one value at one height and round.
//!
//! A certificate is what makes a decision checkable by anyone holding the
//! validator set and the chain id: the ledger stores it with each block and
//! auditors verify it offline. Verification re-creates each signer's
//! precommit body and checks all signatures in one batch (`crypto::verify_many`).
//!
//! It does not check that the value is a valid block; only that the
//! validators committed to it.

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{
    ChainId, Domain, Hash, PublicKey, Signature, SignedMessage, signing_bytes, verify_many,
};
use serde::{Deserialize, Serialize};

use crate::messages::Vote;
use crate::types::{Height, Round};
use crate::validator_set::ValidatorSet;

/// One validator's precommit signature inside a certificate.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct CommitSignature {
    pub validator: PublicKey,
    pub signature: Signature,
}

/// Proof that `value` was decided at `height`: precommits for it in `round`
/// from more than two thirds of the voting power, sorted by validator key.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitCertificate {
    pub height: Height,
    pub round: Round,
    pub value: Hash,
    pub signatures: Vec<CommitSignature>,
}

/// Why a certificate is refused. Each variant names the broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate is for height {found}, expected height {expected}")]
    WrongHeight { expected: Height, found: Height },
    #[error("certificate is for value {found}, expected value {expected}")]
    WrongValue { expected: Hash, found: Hash },
    #[error("signer {validator} is not in the validator set")]
    UnknownSigner { validator: PublicKey },
    #[error("signer {validator} appears more than once")]
    DuplicateSigner { validator: PublicKey },
    #[error("signers hold {have} voting power, more than two thirds needs {need}")]
    InsufficientPower { have: u64, need: u64 },
    /// A forged signature, or one made for another chain, height, round or
    /// value than the certificate states: they cannot be told apart.
    #[error("signature of {validator} does not verify for this chain, height, round and value")]
    BadSignature { validator: PublicKey },
}

impl CommitCertificate {
    /// Checks signers, power and every signature against `validators` (the
    /// set of the certificate's height) and `chain_id`.
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        chain_id: &ChainId,
    ) -> Result<(), CertificateError> {
        let mut seen = BTreeSet::new();
        let mut power: u64 = 0;
        for entry in &self.signatures {
            let validator_power =
                validators
                    .power_of(&entry.validator)
                    .ok_or(CertificateError::UnknownSigner {
                        validator: entry.validator,
                    })?;
            if !seen.insert(entry.validator) {
                return Err(CertificateError::DuplicateSigner {
                    validator: entry.validator,
                });
            }
            // Cannot overflow: distinct validators of one set sum to its total.
            power += validator_power;
        }
        let need = validators.quorum_power();
        if power < need {
            return Err(CertificateError::InsufficientPower { have: power, need });
        }
        // Checked last: it is by far the most expensive step.
        let bodies: Vec<Vec<u8>> = self
            .signatures
            .iter()
            .map(|entry| {
                let vote = Vote::precommit(self.height, self.round, self.value, entry.validator);
                signing_bytes(Domain::Precommit, chain_id, &vote)
            })
            .collect();
        let messages: Vec<SignedMessage<'_>> = self
            .signatures
            .iter()
            .zip(&bodies)
            .map(|(entry, body)| SignedMessage {
                key: &entry.validator,
                signature: &entry.signature,
                message: body,
            })
            .collect();
        for (entry, result) in self.signatures.iter().zip(verify_many(&messages)) {
            if result.is_err() {
                return Err(CertificateError::BadSignature {
                    validator: entry.validator,
                });
            }
        }
        Ok(())
    }

    /// [`verify`](Self::verify), after checking that the certificate is for
    /// the block the caller is looking at: `height` and `value` (block hash).
    /// A certificate whose round was altered fails as `BadSignature`.
    pub fn verify_for(
        &self,
        validators: &ValidatorSet,
        chain_id: &ChainId,
        height: Height,
        value: Hash,
    ) -> Result<(), CertificateError> {
        if self.height != height {
            return Err(CertificateError::WrongHeight {
                expected: height,
                found: self.height,
            });
        }
        if self.value != value {
            return Err(CertificateError::WrongValue {
                expected: value,
                found: self.value,
            });
        }
        self.verify(validators, chain_id)
    }

    /// Total power of the distinct known signers, without checking signatures.
    pub fn signed_power(&self, validators: &ValidatorSet) -> u64 {
        let signers: BTreeSet<PublicKey> = self.signatures.iter().map(|s| s.validator).collect();
        signers.iter().filter_map(|k| validators.power_of(k)).sum()
    }
}
