//! Byzantine strategies: what a faulty validator sends instead of what its
//! (honest) engine asked it to broadcast.
//!
//! Each Byzantine validator runs an ordinary engine to keep pace with the
//! protocol, and one strategy rewrites its outgoing messages, signing with the
//! validator's key directly, past any safety record.
//!
//! The body strategies (`SplitBody`, `WithholdBody`) sign nothing unusual:
//! they decide which peers get the true body of the block they propose, and
//! so what each honest validator answers when asked whether it is valid
//! (see `validity`).

use consensus::{ConsensusMessage, Height, Proposal, Round, SignedProposal, SignedVote, Vote};
use crypto::{ChainId, Domain, Hash, Keypair};

use super::rng::Rng;
use super::validity::{BodyPlan, Meanwhile};

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
    /// Proposes a valid block, but sends half of its peers (seeded) a
    /// tampered body: they find the block invalid until the true body reaches
    /// them from others, a seeded while later.
    SplitBody,
    /// Proposes a valid block, but sends its body only to a seeded subset of
    /// peers (possibly none). The others cannot answer until the body reaches
    /// them from a holder, a seeded while later; if nobody got it, never
    /// (they stay silent or, having received junk, answer invalid).
    WithholdBody,
    /// Colludes with the other `Collude` validators to fork: they split the
    /// other validators into two fixed sides and show each side its own
    /// value, as proposal, prevotes and precommits. Only with more than f
    /// colluders can this work; it exists for the negative controls.
    Collude,
    /// An honest engine run under a key that another instance also runs
    /// (Twins): each instance behaves, but together they sign twice.
    Twin,
}

pub const ALL: [Behaviour; 4] = [
    Behaviour::Silent,
    Behaviour::Equivocate,
    Behaviour::InvalidValue,
    Behaviour::Replay,
];

/// The strategies about block bodies rather than signatures.
pub const BODY: [Behaviour; 2] = [Behaviour::SplitBody, Behaviour::WithholdBody];

/// How long a late body takes to reach a peer from the validators that hold it.
const LATE_BODY_MS: (u64, u64) = (100, 2_500);

/// What a strategy registers besides the messages it sends: values and
/// whether they are valid, and for its proposals, when each peer holds the
/// true body.
#[derive(Debug, Default)]
pub struct Registrations {
    pub values: Vec<(Hash, Height, bool)>,
    pub bodies: Vec<(usize, Hash, BodyPlan)>,
}

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
    /// Every validator instance that colludes (`Collude`), this one included.
    pub colluders: &'a [usize],
}

impl Forger<'_> {
    /// The side of a fork a colluder shows `peer`: the non-colluders, in
    /// index order, alternate between sides 0 and 1. Colluders are side 0.
    fn side(&self, peer: usize) -> usize {
        if self.colluders.contains(&peer) {
            return 0;
        }
        let rank = (0..peer).filter(|i| !self.colluders.contains(i)).count();
        rank % 2
    }
}

/// For one outgoing broadcast, the message each peer gets (`None`: nothing).
/// `peers` lists the recipients; `now` is the simulated time.
pub fn rewrite(
    behaviour: Behaviour,
    forger: &Forger<'_>,
    original: ConsensusMessage,
    peers: &[usize],
    rng: &mut Rng,
    now: u64,
    registrations: &mut Registrations,
) -> Vec<(usize, ConsensusMessage)> {
    let new_values = &mut registrations.values;
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
        Behaviour::Collude => {
            let mut message = |side: usize| match original {
                ConsensusMessage::Proposal(p) if side == 1 => {
                    let value =
                        equivocation_value(p.proposal.height, p.proposal.round, forger.node);
                    new_values.push((value, p.proposal.height, true));
                    let proposal = Proposal {
                        value,
                        pol_round: None,
                        ..p.proposal
                    };
                    sign_proposal(forger.key, forger.chain, proposal)
                }
                ConsensusMessage::Proposal(_) => original,
                // The round's first proposal to side 0, the second (if the
                // proposer colludes) to side 1.
                ConsensusMessage::Vote(v) => match forger.proposed_here {
                    [] => original,
                    [first] => sign_vote(
                        forger.key,
                        forger.chain,
                        Vote {
                            value: Some(*first),
                            ..v.vote
                        },
                    ),
                    [first, second, ..] => {
                        let value = if side == 0 { *first } else { *second };
                        sign_vote(
                            forger.key,
                            forger.chain,
                            Vote {
                                value: Some(value),
                                ..v.vote
                            },
                        )
                    }
                },
            };
            let forked = [message(0), message(1)];
            sends.extend(peers.iter().map(|&peer| (peer, forked[forger.side(peer)])));
        }
        Behaviour::SplitBody | Behaviour::WithholdBody | Behaviour::Twin => {
            if let ConsensusMessage::Proposal(p) = original
                && behaviour != Behaviour::Twin
            {
                let plans = deliver_body(behaviour, peers, rng, now);
                registrations.bodies.extend(
                    plans
                        .into_iter()
                        .map(|(peer, plan)| (peer, p.proposal.value, plan)),
                );
            }
            sends.extend(peers.iter().map(|&peer| (peer, original)));
        }
    }
    sends
}

/// When each peer holds the true body of a block proposed by a body strategy.
fn deliver_body(
    behaviour: Behaviour,
    peers: &[usize],
    rng: &mut Rng,
    now: u64,
) -> Vec<(usize, BodyPlan)> {
    let late = |rng: &mut Rng, meanwhile| BodyPlan {
        arrives_at_ms: Some(now + rng.between(LATE_BODY_MS.0, LATE_BODY_MS.1)),
        meanwhile,
    };
    let mut plans = Vec::new();
    if behaviour == Behaviour::SplitBody {
        for &peer in peers {
            let tampered = rng.chance(500);
            let plan = if tampered {
                late(rng, Meanwhile::Invalid)
            } else {
                BodyPlan::HELD
            };
            plans.push((peer, plan));
        }
        return plans;
    }
    let holders: Vec<bool> = peers.iter().map(|_| rng.chance(400)).collect();
    let anyone_holds = holders.contains(&true);
    for (&peer, holds) in peers.iter().zip(holders) {
        let meanwhile = if rng.chance(500) {
            Meanwhile::Silent
        } else {
            Meanwhile::Invalid
        };
        let plan = match (holds, anyone_holds) {
            (true, _) => BodyPlan::HELD,
            (false, true) => late(rng, meanwhile),
            (false, false) => BodyPlan {
                arrives_at_ms: None,
                meanwhile,
            },
        };
        plans.push((peer, plan));
    }
    plans
}
