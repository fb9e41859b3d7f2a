//! Byzantine strategies: what a faulty validator sends instead of what its
//! (honest) engine asked it to broadcast.
//!
//! Each Byzantine validator runs an ordinary engine to keep pace with the
//! protocol, and one strategy rewrites its outgoing messages, signing with the
//! validator's key directly, past any safety record.

use consensus::{ConsensusMessage, Height, Proposal, Round, SignedProposal, SignedVote, Vote};
use crypto::{ChainId, Domain, Hash, Keypair};

use super::rng::Rng;

/// How a Byzantine validator misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends nothing at all (crashed from the start).
    Silent,
    /// Sends different proposals and votes to different peers.
    Equivocate,
    /// Proposes, prevotes and precommits values every honest node finds invalid.
    InvalidValue,
    /// Behaves, but also re-sends old messages (its own and others') from
    /// earlier rounds and heights to random peers.
    Replay,
}

pub const ALL: [Behaviour; 4] = [
    Behaviour::Silent,
    Behaviour::Equivocate,
    Behaviour::InvalidValue,
    Behaviour::Replay,
];

/// The value an equivocating proposer sends to some peers instead.
pub fn equivocation_value(height: Height, round: Round, node: usize) -> Hash {
    Hash::of(&("equivocation", height.0, round.0, node as u64))
}

/// The value an invalid-value validator pushes; never valid.
pub fn invalid_value(height: Height, round: Round, node: usize) -> Hash {
    Hash::of(&("invalid", height.0, round.0, node as u64))
}

pub fn sign_proposal(key: &Keypair, chain: &ChainId, proposal: Proposal) -> ConsensusMessage {
    let signature = key.sign(Domain::Proposal, chain, &proposal);
    ConsensusMessage::Proposal(SignedProposal {
        chain_id: *chain,
        proposal,
        signature,
    })
}

pub fn sign_vote(key: &Keypair, chain: &ChainId, vote: Vote) -> ConsensusMessage {
    let signature = key.sign(vote.kind.domain(), chain, &vote);
    ConsensusMessage::Vote(SignedVote {
        chain_id: *chain,
        vote,
        signature,
    })
}

/// What a Byzantine validator needs to forge its messages.
pub struct Forger<'a> {
    pub node: usize,
    pub key: &'a Keypair,
    pub chain: &'a ChainId,
    /// Values proposed at the message's height and round, as seen by the simulator.
    pub proposed_here: &'a [Hash],
    /// Old messages this validator has received, for replay.
    pub history: &'a [ConsensusMessage],
}

/// For one outgoing broadcast, the message each peer gets (`None`: nothing).
/// `peers` lists the recipients; values to register as valid or invalid are
/// pushed to `new_values`.
pub fn rewrite(
    behaviour: Behaviour,
    forger: &Forger<'_>,
    original: ConsensusMessage,
    peers: &[usize],
    rng: &mut Rng,
    new_values: &mut Vec<(Hash, Height, bool)>,
) -> Vec<(usize, ConsensusMessage)> {
    let mut sends = Vec::new();
    if original.signer() != forger.key.public() {
        // Relaying someone else's message: it cannot be rewritten.
        if behaviour != Behaviour::Silent {
            sends.extend(peers.iter().map(|&peer| (peer, original)));
        }
        return sends;
    }
    match behaviour {
        Behaviour::Silent => {}
        Behaviour::Equivocate => match original {
            ConsensusMessage::Proposal(p) => {
                let value = equivocation_value(p.proposal.height, p.proposal.round, forger.node);
                new_values.push((value, p.proposal.height, true));
                let other = sign_proposal(
                    forger.key,
                    forger.chain,
                    Proposal {
                        value,
                        ..p.proposal
                    },
                );
                for &peer in peers {
                    sends.push((peer, if rng.chance(500) { original } else { other }));
                }
            }
            ConsensusMessage::Vote(v) => {
                let mut choices: Vec<Option<Hash>> = vec![v.vote.value, None];
                choices.extend(forger.proposed_here.iter().copied().map(Some));
                for &peer in peers {
                    let value = choices[rng.index(choices.len())];
                    sends.push((
                        peer,
                        sign_vote(forger.key, forger.chain, Vote { value, ..v.vote }),
                    ));
                }
            }
        },
        Behaviour::InvalidValue => {
            let message = match original {
                ConsensusMessage::Proposal(p) => {
                    let value = invalid_value(p.proposal.height, p.proposal.round, forger.node);
                    new_values.push((value, p.proposal.height, false));
                    sign_proposal(
                        forger.key,
                        forger.chain,
                        Proposal {
                            value,
                            pol_round: None,
                            ..p.proposal
                        },
                    )
                }
                ConsensusMessage::Vote(v) => {
                    let value = invalid_value(v.vote.height, v.vote.round, forger.node);
                    new_values.push((value, v.vote.height, false));
                    sign_vote(
                        forger.key,
                        forger.chain,
                        Vote {
                            value: Some(value),
                            ..v.vote
                        },
                    )
                }
            };
            sends.extend(peers.iter().map(|&peer| (peer, message)));
        }
        Behaviour::Replay => {
            sends.extend(peers.iter().map(|&peer| (peer, original)));
            let here = (original.height(), original.round());
            let old: Vec<&ConsensusMessage> = forger
                .history
                .iter()
                .filter(|m| (m.height(), m.round()) < here)
                .collect();
            if !old.is_empty() {
                for _ in 0..2 {
                    let message = *old[rng.index(old.len())];
                    sends.push((peers[rng.index(peers.len())], message));
                }
            }
        }
    }
    sends
}
