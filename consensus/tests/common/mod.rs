//! Helpers for tests that drive one engine by hand: a chain, four validator
//! keys, signed messages from any of them, and output filters.

#![allow(dead_code)]

use consensus::{
    ConsensusMessage, Engine, EngineConfig, Height, Input, Output, Proposal, Round, SignedProposal,
    SignedVote, Validator, ValidatorSet, Vote, VoteKind,
};
use crypto::{ChainId, Domain, Hash, Keypair, PublicKey};

pub fn chain() -> ChainId {
    ChainId(Hash::digest(b"scfledger engine tests"))
}

/// Four validators of power 1, sorted by public key like the set.
pub fn keys() -> Vec<Keypair> {
    let mut keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed([i; 32])).collect();
    keys.sort_by_key(|k| k.public());
    keys
}

pub fn set(keys: &[Keypair]) -> ValidatorSet {
    ValidatorSet::new(keys.iter().map(|k| Validator {
        public_key: k.public(),
        power: 1,
    }))
    .unwrap()
}

pub fn value(tag: &str) -> Hash {
    Hash::digest(tag.as_bytes())
}

pub fn vote(
    key: &Keypair,
    kind: VoteKind,
    height: u64,
    round: u32,
    value: Option<Hash>,
) -> SignedVote {
    let vote = Vote {
        kind,
        height: Height(height),
        round: Round(round),
        value,
        validator: key.public(),
    };
    SignedVote {
        chain_id: chain(),
        vote,
        signature: key.sign(kind.domain(), &chain(), &vote),
    }
}

pub fn proposal(
    key: &Keypair,
    height: u64,
    round: u32,
    value: Hash,
    pol_round: Option<u32>,
) -> SignedProposal {
    let proposal = Proposal {
        height: Height(height),
        round: Round(round),
        value,
        pol_round: pol_round.map(Round),
        proposer: key.public(),
    };
    SignedProposal {
        chain_id: chain(),
        proposal,
        signature: key.sign(Domain::Proposal, &chain(), &proposal),
    }
}

/// The key of the proposer of (height, round).
pub fn proposer(keys: &[Keypair], height: u64, round: u32) -> &Keypair {
    let expected = set(keys).proposer(Height(height), Round(round)).public_key;
    keys.iter().find(|k| k.public() == expected).unwrap()
}

/// An engine for `me`, started at `height`.
pub fn started(keys: &[Keypair], me: &Keypair, height: u64) -> (Engine, Vec<Output>) {
    let mut engine = Engine::validator(chain(), EngineConfig::default(), me.clone(), None);
    let out = engine.handle(Input::StartHeight {
        height: Height(height),
        validators: set(keys),
    });
    (engine, out)
}

pub fn broadcast_votes(out: &[Output]) -> Vec<Vote> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(ConsensusMessage::Vote(v)) => Some(v.vote),
            _ => None,
        })
        .collect()
}

pub fn broadcast_proposals(out: &[Output]) -> Vec<Proposal> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(ConsensusMessage::Proposal(p)) => Some(p.proposal),
            _ => None,
        })
        .collect()
}

pub fn my_votes(out: &[Output], me: PublicKey) -> Vec<Vote> {
    broadcast_votes(out)
        .into_iter()
        .filter(|v| v.validator == me)
        .collect()
}

/// Feeds `valid` for every value the engine asks about.
pub fn answer_validity(engine: &mut Engine, out: &[Output], valid: bool) -> Vec<Output> {
    let mut more = Vec::new();
    for o in out {
        if let Output::CheckValidity {
            height,
            round,
            value,
        } = o
        {
            more.extend(engine.handle(Input::ProposalValidity {
                height: *height,
                round: *round,
                value: *value,
                valid,
            }));
        }
    }
    more
}
