//! The signed consensus messages (proposal, prevote, precommit), their bodies,
//! and the gossip envelope the node encodes with borsh.
//!
//! A body ([`Proposal`], [`Vote`]) is what a signature covers, through
//! `crypto::signing_bytes` with the message kind's domain and the chain id. The
//! signed forms also carry the chain id in clear so a message from another
//! chain can be told apart from a forgery; the engine still verifies against
//! its *own* chain id, never the one in the envelope.
//!
//! This module checks signatures and decodes bytes; it does not judge whether
//! a message is relevant (right height, known validator): that is the engine's.

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{ChainId, CryptoError, Domain, Hash, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::types::{Height, Round, Step, VoteKind};

/// Upper bound on an encoded [`ConsensusMessage`]; the largest is under 200
/// bytes. Anything longer is refused before decoding.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// The signed body of a proposal: "at `height`, `round`, I propose the block
/// whose hash is `value`". `pol_round` is the round of the proof of lock
/// (`validRound` in the paper) when re-proposing a value, `None` for -1.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: Hash,
    pub pol_round: Option<Round>,
    pub proposer: PublicKey,
}

/// The signed body of a vote. `value: None` is a vote for nil.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Vote {
    pub kind: VoteKind,
    pub height: Height,
    pub round: Round,
    pub value: Option<Hash>,
    pub validator: PublicKey,
}

/// A proposal with its signature, as gossiped.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SignedProposal {
    pub chain_id: ChainId,
    pub proposal: Proposal,
    pub signature: Signature,
}

/// A vote with its signature, as gossiped.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SignedVote {
    pub chain_id: ChainId,
    pub vote: Vote,
    pub signature: Signature,
}

impl Proposal {
    pub fn step(&self) -> Step {
        Step::Propose
    }
}

impl Vote {
    /// A precommit body, as re-created to check certificate signatures.
    pub fn precommit(height: Height, round: Round, value: Hash, validator: PublicKey) -> Vote {
        Vote {
            kind: VoteKind::Precommit,
            height,
            round,
            value: Some(value),
            validator,
        }
    }
}

impl SignedProposal {
    /// Checks the signature against `chain_id` (the verifier's own chain).
    pub fn verify(&self, chain_id: &ChainId) -> Result<(), CryptoError> {
        self.proposal
            .proposer
            .verify(Domain::Proposal, chain_id, &self.proposal, &self.signature)
    }
}

impl SignedVote {
    /// Checks the signature against `chain_id` (the verifier's own chain).
    pub fn verify(&self, chain_id: &ChainId) -> Result<(), CryptoError> {
        self.vote.validator.verify(
            self.vote.kind.domain(),
            chain_id,
            &self.vote,
            &self.signature,
        )
    }
}

/// Everything validators gossip to each other about consensus.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub enum ConsensusMessage {
    Proposal(SignedProposal),
    Vote(SignedVote),
}

/// Why received bytes are not a consensus message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("malformed consensus message: {reason}")]
    Malformed { reason: String },
}

impl ConsensusMessage {
    /// The canonical borsh encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("encoding into a Vec cannot fail")
    }

    /// Decodes untrusted bytes: checks the length first, refuses trailing
    /// bytes, and never panics.
    pub fn decode(bytes: &[u8]) -> Result<ConsensusMessage, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        borsh::from_slice(bytes).map_err(|e| DecodeError::Malformed {
            reason: e.to_string(),
        })
    }

    pub fn height(&self) -> Height {
        match self {
            ConsensusMessage::Proposal(p) => p.proposal.height,
            ConsensusMessage::Vote(v) => v.vote.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            ConsensusMessage::Proposal(p) => p.proposal.round,
            ConsensusMessage::Vote(v) => v.vote.round,
        }
    }

    /// The validator who signed it.
    pub fn signer(&self) -> PublicKey {
        match self {
            ConsensusMessage::Proposal(p) => p.proposal.proposer,
            ConsensusMessage::Vote(v) => v.vote.validator,
        }
    }

    pub fn chain_id(&self) -> ChainId {
        match self {
            ConsensusMessage::Proposal(p) => p.chain_id,
            ConsensusMessage::Vote(v) => v.chain_id,
        }
    }

    pub fn verify(&self, chain_id: &ChainId) -> Result<(), CryptoError> {
        match self {
            ConsensusMessage::Proposal(p) => p.verify(chain_id),
            ConsensusMessage::Vote(v) => v.verify(chain_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto::Keypair;
    use proptest::prelude::*;

    fn vote_body() -> Vote {
        Vote {
            kind: VoteKind::Precommit,
            height: Height(7),
            round: Round(2),
            value: Some(Hash([0x11; 32])),
            validator: PublicKey([0x22; 32]),
        }
    }

    fn proposal_body() -> Proposal {
        Proposal {
            height: Height(7),
            round: Round(2),
            value: Hash([0x11; 32]),
            pol_round: Some(Round(1)),
            proposer: PublicKey([0x22; 32]),
        }
    }

    /// Golden vector: the signed bytes of a vote must never change silently.
    #[test]
    fn vote_body_encoding_is_pinned() {
        assert_eq!(
            hex_of(&vote_body()),
            concat!(
                "01",                                                               // kind: precommit
                "0700000000000000", // height 7, u64 LE
                "02000000",         // round 2, u32 LE
                "01",               // Some(value)
                "1111111111111111111111111111111111111111111111111111111111111111", // value
                "2222222222222222222222222222222222222222222222222222222222222222", // validator
            )
        );
        let nil = Vote {
            kind: VoteKind::Prevote,
            value: None,
            ..vote_body()
        };
        assert_eq!(
            hex_of(&nil),
            concat!(
                "00",
                "0700000000000000",
                "02000000",
                "00", // None: nil
                "2222222222222222222222222222222222222222222222222222222222222222",
            )
        );
    }

    /// Golden vector: the signed bytes of a proposal must never change silently.
    #[test]
    fn proposal_body_encoding_is_pinned() {
        assert_eq!(
            hex_of(&proposal_body()),
            concat!(
                "0700000000000000",                                                 // height 7
                "02000000",                                                         // round 2
                "1111111111111111111111111111111111111111111111111111111111111111", // value
                "01",       // Some(pol round)
                "01000000", // pol round 1
                "2222222222222222222222222222222222222222222222222222222222222222", // proposer
            )
        );
    }

    fn hex_of<T: BorshSerialize>(value: &T) -> String {
        borsh::to_vec(value)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn signatures_verify_only_on_their_chain_and_kind() {
        let key = Keypair::from_seed([3; 32]);
        let chain = ChainId(Hash::digest(b"chain"));
        let other = ChainId(Hash::digest(b"other"));
        let vote = Vote {
            validator: key.public(),
            ..vote_body()
        };
        let signed = SignedVote {
            chain_id: chain,
            vote,
            signature: key.sign(Domain::Precommit, &chain, &vote),
        };
        assert!(signed.verify(&chain).is_ok());
        assert!(signed.verify(&other).is_err());
        // The same body signed as a prevote does not pass as a precommit.
        let as_prevote = SignedVote {
            signature: key.sign(Domain::Prevote, &chain, &vote),
            ..signed
        };
        assert!(as_prevote.verify(&chain).is_err());
    }

    #[test]
    fn encoding_round_trips_and_refuses_junk() {
        let key = Keypair::from_seed([3; 32]);
        let chain = ChainId(Hash::digest(b"chain"));
        let proposal = Proposal {
            proposer: key.public(),
            ..proposal_body()
        };
        let message = ConsensusMessage::Proposal(SignedProposal {
            chain_id: chain,
            proposal,
            signature: key.sign(Domain::Proposal, &chain, &proposal),
        });
        let bytes = message.to_bytes();
        assert!(bytes.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(ConsensusMessage::decode(&bytes), Ok(message));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            ConsensusMessage::decode(&trailing),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            ConsensusMessage::decode(&bytes[..10]),
            Err(DecodeError::Malformed { .. })
        ));
        assert_eq!(
            ConsensusMessage::decode(&[0; 600]),
            Err(DecodeError::TooLarge {
                len: 600,
                max: MAX_MESSAGE_BYTES
            })
        );
        assert!(ConsensusMessage::decode(&[7]).is_err()); // unknown enum tag
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..700)) {
            let _ = ConsensusMessage::decode(&bytes);
        }
    }
}
