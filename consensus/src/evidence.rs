//! Evidence of equivocation: two different messages signed by one validator
//! for the same height, round and step.
//!
//! The engine produces evidence and keeps counting only the first message; it
//! does not punish anyone. What to do with evidence (report it, put it in a
//! block, slash) is for the node and the ledger.

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{ChainId, PublicKey};
use serde::{Deserialize, Serialize};

use crate::messages::{SignedProposal, SignedVote};
use crate::types::{Height, Round, Step};

/// Two conflicting signed messages from one validator.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub enum Equivocation {
    /// Two different votes of one kind in one round.
    Votes {
        first: SignedVote,
        second: SignedVote,
    },
    /// Two different proposals for one round.
    Proposals {
        first: SignedProposal,
        second: SignedProposal,
    },
}

impl Equivocation {
    /// The validator who signed both messages.
    pub fn offender(&self) -> PublicKey {
        match self {
            Equivocation::Votes { first, .. } => first.vote.validator,
            Equivocation::Proposals { first, .. } => first.proposal.proposer,
        }
    }

    pub fn height(&self) -> Height {
        match self {
            Equivocation::Votes { first, .. } => first.vote.height,
            Equivocation::Proposals { first, .. } => first.proposal.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            Equivocation::Votes { first, .. } => first.vote.round,
            Equivocation::Proposals { first, .. } => first.proposal.round,
        }
    }

    pub fn step(&self) -> Step {
        match self {
            Equivocation::Votes { first, .. } => first.vote.kind.step(),
            Equivocation::Proposals { .. } => Step::Propose,
        }
    }

    /// True when this is genuine proof: same signer, height, round and step,
    /// different bodies, and both signatures valid on `chain_id`. Lets anyone
    /// (a node, an auditor) check evidence it did not produce.
    pub fn is_proof(&self, chain_id: &ChainId) -> bool {
        match self {
            Equivocation::Votes { first, second } => {
                let (a, b) = (&first.vote, &second.vote);
                a.validator == b.validator
                    && (a.kind, a.height, a.round) == (b.kind, b.height, b.round)
                    && a != b
                    && first.verify(chain_id).is_ok()
                    && second.verify(chain_id).is_ok()
            }
            Equivocation::Proposals { first, second } => {
                let (a, b) = (&first.proposal, &second.proposal);
                a.proposer == b.proposer
                    && (a.height, a.round) == (b.height, b.round)
                    && a != b
                    && first.verify(chain_id).is_ok()
                    && second.verify(chain_id).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Vote;
    use crate::types::VoteKind;
    use crypto::{Hash, Keypair};

    fn signed(key: &Keypair, chain: &ChainId, value: Option<Hash>) -> SignedVote {
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: Height(1),
            round: Round(0),
            value,
            validator: key.public(),
        };
        SignedVote {
            chain_id: *chain,
            vote,
            signature: key.sign(VoteKind::Prevote.domain(), chain, &vote),
        }
    }

    #[test]
    fn conflicting_votes_are_proof_and_identical_ones_are_not() {
        let key = Keypair::from_seed([9; 32]);
        let chain = ChainId(Hash::digest(b"c"));
        let a = signed(&key, &chain, Some(Hash::digest(b"a")));
        let b = signed(&key, &chain, None);
        assert!(
            Equivocation::Votes {
                first: a,
                second: b
            }
            .is_proof(&chain)
        );
        assert!(
            !Equivocation::Votes {
                first: a,
                second: a
            }
            .is_proof(&chain)
        );
        let mut forged = b;
        forged.signature.0[0] ^= 1;
        assert!(
            !Equivocation::Votes {
                first: a,
                second: forged
            }
            .is_proof(&chain)
        );
        assert_eq!(
            Equivocation::Votes {
                first: a,
                second: b
            }
            .offender(),
            key.public()
        );
    }
}
