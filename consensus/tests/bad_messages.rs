//! Messages that must be dropped, each counted under its reason, and never a
//! panic: from non-validators, with bad signatures, for another chain, for
//! far-future heights or rounds, from a validator that is not the proposer,
//! and arbitrary bytes off the wire.

mod common;

use common::{chain, keys, proposal, proposer, set, started, value, vote};
use consensus::{
    ConsensusMessage, DropReason, Engine, EngineConfig, Height, Input, Output, SignedVote, VoteKind,
};
use crypto::{ChainId, Hash, Keypair};
use proptest::prelude::*;

fn engine_at_height_5() -> (Vec<Keypair>, Engine) {
    let keys = keys();
    let me = keys[0].clone();
    let (engine, _) = started(&keys, &me, 5);
    (keys, engine)
}

fn dropped_for(engine: &mut Engine, input: Input, reason: DropReason) {
    let before = engine.stats().dropped(reason);
    let out = engine.handle(input);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Broadcast(_) | Output::Decide(_))),
        "{out:?}"
    );
    assert_eq!(
        engine.stats().dropped(reason),
        before + 1,
        "expected one more {reason:?}: {:?}",
        engine.stats()
    );
}

#[test]
fn a_vote_from_a_non_validator_is_dropped() {
    let (_, mut engine) = engine_at_height_5();
    let outsider = Keypair::from_seed([77; 32]);
    dropped_for(
        &mut engine,
        Input::Vote(vote(&outsider, VoteKind::Prevote, 5, 0, None)),
        DropReason::NonValidator,
    );
    let p = proposal(&outsider, 5, 0, value("x"), None);
    dropped_for(&mut engine, Input::Proposal(p), DropReason::NonValidator);
}

#[test]
fn a_vote_with_a_bad_signature_is_dropped() {
    let (keys, mut engine) = engine_at_height_5();
    let mut forged = vote(&keys[1], VoteKind::Prevote, 5, 0, Some(value("x")));
    forged.signature.0[3] ^= 1;
    dropped_for(&mut engine, Input::Vote(forged), DropReason::BadSignature);
    // A signature by another validator's key over this validator's vote.
    let mut stolen = vote(&keys[2], VoteKind::Prevote, 5, 0, None);
    stolen.vote.validator = keys[1].public();
    dropped_for(&mut engine, Input::Vote(stolen), DropReason::BadSignature);
    assert_eq!(engine.stats().evidence, 0);
}

#[test]
fn a_message_for_another_chain_is_dropped() {
    let (keys, mut engine) = engine_at_height_5();
    let other = ChainId(Hash::digest(b"another chain"));
    let body = vote(&keys[1], VoteKind::Prevote, 5, 0, None).vote;
    let signature = keys[1].sign(VoteKind::Prevote.domain(), &other, &body);
    let honest_envelope = SignedVote {
        chain_id: other,
        vote: body,
        signature,
    };
    dropped_for(
        &mut engine,
        Input::Vote(honest_envelope),
        DropReason::WrongChain,
    );
    // Signed for another chain but claiming ours: caught by the signature.
    let lying_envelope = SignedVote {
        chain_id: chain(),
        ..honest_envelope
    };
    dropped_for(
        &mut engine,
        Input::Vote(lying_envelope),
        DropReason::BadSignature,
    );
}

#[test]
fn far_future_heights_are_dropped_and_near_ones_buffered_until_started() {
    let (keys, mut engine) = engine_at_height_5();
    let far = EngineConfig::default().future_heights + 6;
    dropped_for(
        &mut engine,
        Input::Vote(vote(&keys[1], VoteKind::Prevote, far, 0, None)),
        DropReason::FarFutureHeight,
    );
    assert_eq!(engine.buffered_messages(), 0);
    // Next height: kept, and counted when that height starts.
    let next = vote(&keys[1], VoteKind::Prevote, 6, 0, None);
    engine.handle(Input::Vote(next));
    assert_eq!(engine.buffered_messages(), 1);
    assert_eq!(engine.stats().dropped_total(), 1);
    engine.handle(Input::StartHeight {
        height: Height(6),
        validators: set(&keys),
    });
    assert_eq!(engine.buffered_messages(), 0);
    // Replayed: the same vote again is now a duplicate of a counted vote.
    dropped_for(&mut engine, Input::Vote(next), DropReason::Duplicate);
}

#[test]
fn past_heights_far_rounds_and_wrong_proposers_are_dropped() {
    let (keys, mut engine) = engine_at_height_5();
    dropped_for(
        &mut engine,
        Input::Vote(vote(&keys[1], VoteKind::Prevote, 4, 0, None)),
        DropReason::PastHeight,
    );
    let far_round = EngineConfig::default().round_lookahead + 1;
    dropped_for(
        &mut engine,
        Input::Vote(vote(&keys[1], VoteKind::Precommit, 5, far_round, None)),
        DropReason::FarFutureRound,
    );
    let rightful = proposer(&keys, 5, 0).public();
    let impostor = keys.iter().find(|k| k.public() != rightful).unwrap();
    dropped_for(
        &mut engine,
        Input::Proposal(proposal(impostor, 5, 0, value("x"), None)),
        DropReason::NotProposer,
    );
    let p = proposer(&keys, 5, 1);
    dropped_for(
        &mut engine,
        Input::Proposal(proposal(p, 5, 1, value("x"), Some(1))),
        DropReason::InvalidPolRound,
    );
}

#[test]
fn messages_before_the_first_height_are_dropped() {
    let keys = keys();
    let mut engine = Engine::observer(chain(), EngineConfig::default());
    dropped_for(
        &mut engine,
        Input::Vote(vote(&keys[1], VoteKind::Prevote, 1, 0, None)),
        DropReason::NotStarted,
    );
}

#[test]
fn one_validator_cannot_fill_the_future_buffer() {
    let (keys, mut engine) = engine_at_height_5();
    let limit = EngineConfig::default().max_buffered_per_signer as u32;
    for round in 0..limit + 5 {
        engine.handle(Input::Vote(vote(
            &keys[1],
            VoteKind::Prevote,
            6,
            round,
            None,
        )));
    }
    assert_eq!(engine.buffered_messages(), limit as usize);
    assert_eq!(engine.stats().dropped(DropReason::BufferFull), 5);
}

#[test]
fn a_byzantine_validator_cannot_make_us_keep_unbounded_votes_per_step() {
    let (keys, mut engine) = engine_at_height_5();
    for i in 0..20 {
        engine.handle(Input::Vote(vote(
            &keys[1],
            VoteKind::Prevote,
            5,
            0,
            Some(value(&i.to_string())),
        )));
    }
    assert_eq!(engine.stats().evidence, 1, "one equivocation reported once");
    assert_eq!(
        engine.stats().dropped(DropReason::Equivocation),
        20 - consensus::MAX_VOTES_PER_STEP as u64
    );
}

fn a_valid_message() -> ConsensusMessage {
    let keys = keys();
    ConsensusMessage::Vote(vote(
        &keys[1],
        VoteKind::Precommit,
        5,
        0,
        Some(value("block")),
    ))
}

proptest! {
    /// Bytes off the wire: decoding never panics, and whatever decodes can be
    /// fed to the engine without a panic.
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder_or_the_engine(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let (_, mut engine) = engine_at_height_5();
        if let Ok(message) = ConsensusMessage::decode(&bytes) {
            engine.handle(Input::from(message));
        }
    }

    /// A valid message with a few bytes changed: dropped or (if the change
    /// kept it valid) accepted, never a panic.
    #[test]
    fn mutated_messages_never_panic(flips in prop::collection::vec((0usize..200, any::<u8>()), 1..6)) {
        let (_, mut engine) = engine_at_height_5();
        let mut bytes = a_valid_message().to_bytes();
        for (at, byte) in flips {
            let len = bytes.len();
            bytes[at % len] ^= byte;
        }
        if let Ok(message) = ConsensusMessage::decode(&bytes) {
            engine.handle(Input::from(message));
        }
    }
}
