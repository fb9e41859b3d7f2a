//! Signing safety: the [`Signer`] trait through which the engine gets
//! signatures, and the [`SafetyRecord`] consulted before every one of them.
//!
//! The rule (named, and tested on its own, as in aptos' safety-rules): a
//! validator signs a message at (height, round, step) only if that position is
//! strictly later than the last one it signed, or it is the same position and
//! the same body (re-sending an identical message is harmless: ed25519
//! signatures are deterministic). Honest consensus only ever moves forward
//! through (height, round, step), so the rule never blocks correct behaviour;
//! it blocks signing twice at one step, which is equivocation.
//!
//! The record also carries the lock (`lockedValue`/`lockedRound`, lines 36-41
//! of the paper): forgetting the lock across a restart would let an honest
//! validator prevote against a value that may already be decided.
//!
//! Persisting the record is the node's job: the engine emits
//! `Output::PersistSafetyRecord` *before* the message it allows, and the node
//! must make it durable before sending anything that follows it.
//! This module holds no key material and does no I/O.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{ChainId, Domain, Hash, Keypair, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::messages::{Proposal, SignedProposal, SignedVote, Vote};
use crate::types::{Height, Round, Step};

/// A value together with the round it refers to: the lock
/// (`lockedValue`, `lockedRound`) or the valid value (`validValue`, `validRound`).
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct RoundValue {
    pub round: Round,
    pub value: Hash,
}

/// The last message this validator signed, and its lock at that moment.
/// Persisted by the node before the message leaves; reloaded on restart.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SafetyRecord {
    pub height: Height,
    pub round: Round,
    pub step: Step,
    /// The value signed: the proposed value, or the vote's value (`None` = nil).
    pub value: Option<Hash>,
    /// The proof-of-lock round of a signed proposal; `None` for votes.
    pub pol_round: Option<Round>,
    /// The lock held at `height` when this was signed.
    pub locked: Option<RoundValue>,
}

impl SafetyRecord {
    /// Whether a message at (`height`, `round`, `step`) with this body may be
    /// signed after the one this record describes.
    pub fn allows(
        &self,
        height: Height,
        round: Round,
        step: Step,
        value: Option<Hash>,
        pol_round: Option<Round>,
    ) -> bool {
        let next = (height, round, step);
        let last = (self.height, self.round, self.step);
        next > last || (next == last && value == self.value && pol_round == self.pol_round)
    }
}

/// Holds the validator's key and signs for the engine. The node may keep the
/// key anywhere (a file, a hardware module); the engine only asks for
/// signatures, after its safety record allowed them.
pub trait Signer {
    fn public_key(&self) -> PublicKey;

    /// Signs the borsh-encoded `body` for `domain` on `chain_id`. The signed
    /// bytes must be those of `crypto::signing_bytes(domain, chain_id, body)`.
    fn sign(&self, domain: Domain, chain_id: &ChainId, body: &[u8]) -> Signature;
}

/// Already-encoded bytes that borsh writes as they are (no length prefix), so
/// `signing_bytes(.., &EncodedBody(borsh(x)))` equals `signing_bytes(.., &x)`.
struct EncodedBody<'a>(&'a [u8]);

impl BorshSerialize for EncodedBody<'_> {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(self.0)
    }
}

impl Signer for Keypair {
    fn public_key(&self) -> PublicKey {
        self.public()
    }

    fn sign(&self, domain: Domain, chain_id: &ChainId, body: &[u8]) -> Signature {
        Keypair::sign(self, domain, chain_id, &EncodedBody(body))
    }
}

/// A signing request refused by the safety record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub last: SafetyRecord,
}

/// The signer behind the safety rule: the engine's only way to sign.
pub(crate) struct GuardedSigner {
    signer: Option<Box<dyn Signer + Send>>,
    record: Option<SafetyRecord>,
}

impl fmt::Debug for GuardedSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedSigner")
            .field("key", &self.public_key())
            .field("record", &self.record)
            .finish()
    }
}

impl GuardedSigner {
    pub(crate) fn new(
        signer: Option<Box<dyn Signer + Send>>,
        record: Option<SafetyRecord>,
    ) -> GuardedSigner {
        GuardedSigner { signer, record }
    }

    pub(crate) fn public_key(&self) -> Option<PublicKey> {
        self.signer.as_ref().map(|s| s.public_key())
    }

    pub(crate) fn record(&self) -> Option<&SafetyRecord> {
        self.record.as_ref()
    }

    fn check(&self, next: &SafetyRecord) -> Result<(), Refused> {
        match &self.record {
            Some(last)
                if !last.allows(
                    next.height,
                    next.round,
                    next.step,
                    next.value,
                    next.pol_round,
                ) =>
            {
                Err(Refused { last: *last })
            }
            _ => Ok(()),
        }
    }

    /// Signs `proposal` if the record allows it, returning the record to
    /// persist first. `None` signer (observer) returns `Ok(None)`.
    pub(crate) fn sign_proposal(
        &mut self,
        chain_id: &ChainId,
        proposal: Proposal,
        locked: Option<RoundValue>,
    ) -> Result<Option<(SafetyRecord, SignedProposal)>, Refused> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let next = SafetyRecord {
            height: proposal.height,
            round: proposal.round,
            step: Step::Propose,
            value: Some(proposal.value),
            pol_round: proposal.pol_round,
            locked,
        };
        self.check(&next)?;
        let body = borsh::to_vec(&proposal).expect("encoding into a Vec cannot fail");
        let signature = signer.sign(Domain::Proposal, chain_id, &body);
        self.record = Some(next);
        Ok(Some((
            next,
            SignedProposal {
                chain_id: *chain_id,
                proposal,
                signature,
            },
        )))
    }

    /// Signs `vote` if the record allows it, returning the record to persist
    /// first. `None` signer (observer) returns `Ok(None)`.
    pub(crate) fn sign_vote(
        &mut self,
        chain_id: &ChainId,
        vote: Vote,
        locked: Option<RoundValue>,
    ) -> Result<Option<(SafetyRecord, SignedVote)>, Refused> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let next = SafetyRecord {
            height: vote.height,
            round: vote.round,
            step: vote.kind.step(),
            value: vote.value,
            pol_round: None,
            locked,
        };
        self.check(&next)?;
        let body = borsh::to_vec(&vote).expect("encoding into a Vec cannot fail");
        let signature = signer.sign(vote.kind.domain(), chain_id, &body);
        self.record = Some(next);
        Ok(Some((
            next,
            SignedVote {
                chain_id: *chain_id,
                vote,
                signature,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::VoteKind;

    fn chain() -> ChainId {
        ChainId(Hash::digest(b"safety"))
    }

    fn guard() -> (Keypair, GuardedSigner) {
        let key = Keypair::from_seed([5; 32]);
        (key.clone(), GuardedSigner::new(Some(Box::new(key)), None))
    }

    fn vote(key: &Keypair, kind: VoteKind, height: u64, round: u32, value: Option<Hash>) -> Vote {
        Vote {
            kind,
            height: Height(height),
            round: Round(round),
            value,
            validator: key.public(),
        }
    }

    #[test]
    fn signer_for_keypair_signs_the_canonical_bytes() {
        let (key, mut guard) = guard();
        let body = vote(&key, VoteKind::Prevote, 1, 0, None);
        let (_, signed) = guard.sign_vote(&chain(), body, None).unwrap().unwrap();
        assert!(signed.verify(&chain()).is_ok());
        assert_eq!(signed.signature, key.sign(Domain::Prevote, &chain(), &body));
    }

    #[test]
    fn conflicting_vote_at_the_same_step_is_refused() {
        let (key, mut guard) = guard();
        let a = Some(Hash::digest(b"a"));
        guard
            .sign_vote(&chain(), vote(&key, VoteKind::Prevote, 3, 1, a), None)
            .unwrap();
        let conflicting = vote(&key, VoteKind::Prevote, 3, 1, None);
        assert!(guard.sign_vote(&chain(), conflicting, None).is_err());
        // The identical vote may be signed again (re-sending is harmless).
        assert!(
            guard
                .sign_vote(&chain(), vote(&key, VoteKind::Prevote, 3, 1, a), None)
                .is_ok()
        );
    }

    #[test]
    fn earlier_positions_are_refused_and_later_ones_allowed() {
        let (key, mut guard) = guard();
        guard
            .sign_vote(&chain(), vote(&key, VoteKind::Precommit, 3, 1, None), None)
            .unwrap();
        for (kind, height, round) in [
            (VoteKind::Prevote, 3, 1),
            (VoteKind::Precommit, 3, 0),
            (VoteKind::Precommit, 2, 9),
        ] {
            assert!(
                guard
                    .sign_vote(&chain(), vote(&key, kind, height, round, None), None)
                    .is_err()
            );
        }
        let proposal = Proposal {
            height: Height(3),
            round: Round(1),
            value: Hash::digest(b"x"),
            pol_round: None,
            proposer: key.public(),
        };
        assert!(
            guard.sign_proposal(&chain(), proposal, None).is_err(),
            "propose step is before precommit"
        );
        let later = Proposal {
            round: Round(2),
            ..proposal
        };
        assert!(guard.sign_proposal(&chain(), later, None).is_ok());
        // Same proposal with another proof-of-lock round is a different message.
        let other_pol = Proposal {
            pol_round: Some(Round(1)),
            ..later
        };
        assert!(guard.sign_proposal(&chain(), other_pol, None).is_err());
        assert!(
            guard
                .sign_vote(&chain(), vote(&key, VoteKind::Prevote, 4, 0, None), None)
                .is_ok()
        );
    }

    #[test]
    fn a_reloaded_record_keeps_refusing() {
        let (key, mut guard) = guard();
        let lock = Some(RoundValue {
            round: Round(1),
            value: Hash::digest(b"a"),
        });
        let (record, _) = guard
            .sign_vote(
                &chain(),
                vote(&key, VoteKind::Precommit, 3, 1, Some(Hash::digest(b"a"))),
                lock,
            )
            .unwrap()
            .unwrap();
        assert_eq!(record.locked, lock);
        let bytes = borsh::to_vec(&record).unwrap();
        let reloaded: SafetyRecord = borsh::from_slice(&bytes).unwrap();
        let mut restarted = GuardedSigner::new(Some(Box::new(key.clone())), Some(reloaded));
        assert!(
            restarted
                .sign_vote(&chain(), vote(&key, VoteKind::Precommit, 3, 1, None), None)
                .is_err()
        );
    }

    #[test]
    fn an_observer_signs_nothing() {
        let mut observer = GuardedSigner::new(None, None);
        let key = Keypair::from_seed([1; 32]);
        assert_eq!(
            observer.sign_vote(&chain(), vote(&key, VoteKind::Prevote, 1, 0, None), None),
            Ok(None)
        );
        assert_eq!(observer.public_key(), None);
    }
}
