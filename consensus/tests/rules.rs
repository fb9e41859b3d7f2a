//! The rules of Algorithm 1 ("The latest gossip on BFT consensus"), one test
//! each, driving a single engine by hand. Names cite the paper's lines.

mod common;

use common::{
    answer_validity, chain, keys, my_votes, proposal, proposer, set, started, value, vote,
};
use consensus::{
    Engine, EngineConfig, Height, Input, Output, Round, RoundValue, Step, TimeoutKind, Vote,
    VoteKind,
};
use crypto::Keypair;

/// Validator `me` (not the proposer of (1, round 0) nor (1, round 1)) at height 1.
fn follower() -> (Vec<Keypair>, Keypair, Engine) {
    let keys = keys();
    let p0 = proposer(&keys, 1, 0).public();
    let p1 = proposer(&keys, 1, 1).public();
    let me = keys
        .iter()
        .find(|k| k.public() != p0 && k.public() != p1)
        .unwrap()
        .clone();
    let (engine, _) = started(&keys, &me, 1);
    (keys, me, engine)
}

fn others<'a>(keys: &'a [Keypair], me: &Keypair) -> Vec<&'a Keypair> {
    keys.iter().filter(|k| k.public() != me.public()).collect()
}

fn only_vote(out: &[Output], me: &Keypair) -> Vote {
    let votes = my_votes(out, me.public());
    assert_eq!(votes.len(), 1, "{out:?}");
    votes[0]
}

#[test]
fn lines_11_to_21_the_proposer_asks_for_a_value_and_others_wait_with_a_timeout() {
    let keys = keys();
    let leader = proposer(&keys, 1, 0).clone();
    let (_, out) = started(&keys, &leader, 1);
    assert!(out.contains(&Output::GetValue {
        height: Height(1),
        round: Round(0)
    }));
    let follower = keys.iter().find(|k| k.public() != leader.public()).unwrap();
    let (_, out) = started(&keys, follower, 1);
    assert!(!out.iter().any(|o| matches!(o, Output::GetValue { .. })));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::ScheduleTimeout(t) if t.kind == TimeoutKind::Propose))
    );
}

#[test]
fn lines_22_to_27_prevote_a_valid_proposal_and_nil_for_an_invalid_one() {
    for (valid, expected) in [(true, Some(value("b"))), (false, None)] {
        let (keys, me, mut engine) = follower();
        let out = engine.handle(Input::Proposal(proposal(
            proposer(&keys, 1, 0),
            1,
            0,
            value("b"),
            None,
        )));
        assert!(
            my_votes(&out, me.public()).is_empty(),
            "waits for the validity verdict"
        );
        let out = answer_validity(&mut engine, &out, valid);
        assert_eq!(only_vote(&out, &me).value, expected);
        assert_eq!(engine.step(), Some(Step::Prevote));
    }
}

#[test]
fn lines_36_to_43_a_prevote_quorum_locks_and_precommits() {
    let (keys, me, mut engine) = follower();
    let out = engine.handle(Input::Proposal(proposal(
        proposer(&keys, 1, 0),
        1,
        0,
        value("b"),
        None,
    )));
    answer_validity(&mut engine, &out, true);
    let mut out = Vec::new();
    for key in others(&keys, &me) {
        out.extend(engine.handle(Input::Vote(vote(
            key,
            VoteKind::Prevote,
            1,
            0,
            Some(value("b")),
        ))));
    }
    let precommit = only_vote(&out, &me);
    assert_eq!(
        (precommit.kind, precommit.value),
        (VoteKind::Precommit, Some(value("b")))
    );
    assert_eq!(
        engine.locked(),
        Some(RoundValue {
            round: Round(0),
            value: value("b")
        })
    );
    assert_eq!(engine.valid_value(), engine.locked());
}

#[test]
fn lines_44_to_46_a_nil_prevote_quorum_precommits_nil() {
    let (keys, me, mut engine) = follower();
    engine.handle(Input::TimeoutFired {
        kind: TimeoutKind::Propose,
        height: Height(1),
        round: Round(0),
    });
    let mut out = Vec::new();
    for key in others(&keys, &me) {
        out.extend(engine.handle(Input::Vote(vote(key, VoteKind::Prevote, 1, 0, None))));
    }
    let precommit = only_vote(&out, &me);
    assert_eq!(
        (precommit.kind, precommit.value),
        (VoteKind::Precommit, None)
    );
}

#[test]
fn lines_34_35_and_61_to_64_mixed_prevotes_start_the_prevote_timeout_then_precommit_nil() {
    let (keys, me, mut engine) = follower();
    engine.handle(Input::TimeoutFired {
        kind: TimeoutKind::Propose,
        height: Height(1),
        round: Round(0),
    });
    let mut out = Vec::new();
    for (key, v) in others(&keys, &me)
        .into_iter()
        .zip([Some(value("a")), Some(value("b")), None])
    {
        out.extend(engine.handle(Input::Vote(vote(key, VoteKind::Prevote, 1, 0, v))));
    }
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::ScheduleTimeout(t) if t.kind == TimeoutKind::Prevote))
    );
    let out = engine.handle(Input::TimeoutFired {
        kind: TimeoutKind::Prevote,
        height: Height(1),
        round: Round(0),
    });
    let precommit = only_vote(&out, &me);
    assert_eq!(
        (precommit.kind, precommit.value),
        (VoteKind::Precommit, None)
    );
}

#[test]
fn lines_47_48_and_65_a_precommit_quorum_times_out_into_the_next_round() {
    let (keys, me, mut engine) = follower();
    let mut out = Vec::new();
    for key in others(&keys, &me) {
        out.extend(engine.handle(Input::Vote(vote(key, VoteKind::Precommit, 1, 0, None))));
    }
    let timeout = out.iter().find_map(|o| match o {
        Output::ScheduleTimeout(t) if t.kind == TimeoutKind::Precommit => Some(*t),
        _ => None,
    });
    assert!(timeout.is_some());
    engine.handle(Input::TimeoutFired {
        kind: TimeoutKind::Precommit,
        height: Height(1),
        round: Round(0),
    });
    assert_eq!(
        (engine.round(), engine.step()),
        (Some(Round(1)), Some(Step::Propose))
    );
}

#[test]
fn lines_49_to_54_precommits_of_more_than_two_thirds_decide_with_a_certificate() {
    let (keys, me, mut engine) = follower();
    let mut out = Vec::new();
    for key in others(&keys, &me) {
        out.extend(engine.handle(Input::Vote(vote(
            key,
            VoteKind::Precommit,
            1,
            3,
            Some(value("b")),
        ))));
    }
    let out = answer_validity(&mut engine, &out, true);
    let decision = out.iter().find_map(|o| match o {
        Output::Decide(d) => Some(d.clone()),
        _ => None,
    });
    let decision = decision.expect("decided");
    assert_eq!(
        (decision.height, decision.round, decision.value),
        (Height(1), Round(3), value("b"))
    );
    assert_eq!(decision.certificate.verify(&set(&keys), &chain()), Ok(()));
    assert!(engine.is_decided());
}

#[test]
fn lines_55_56_messages_from_more_than_a_third_skip_to_their_round() {
    let (keys, me, mut engine) = follower();
    let senders = others(&keys, &me);
    engine.handle(Input::Vote(vote(senders[0], VoteKind::Prevote, 1, 7, None)));
    assert_eq!(engine.round(), Some(Round(0)), "one validator is not f+1");
    engine.handle(Input::Vote(vote(
        senders[1],
        VoteKind::Precommit,
        1,
        7,
        None,
    )));
    assert_eq!(engine.round(), Some(Round(7)));
}

#[test]
fn lines_28_to_33_a_proof_of_lock_from_a_later_round_unlocks() {
    let (keys, me, mut engine) = follower();
    // Round 0: lock on "a".
    let out = engine.handle(Input::Proposal(proposal(
        proposer(&keys, 1, 0),
        1,
        0,
        value("a"),
        None,
    )));
    answer_validity(&mut engine, &out, true);
    for key in others(&keys, &me) {
        engine.handle(Input::Vote(vote(
            key,
            VoteKind::Prevote,
            1,
            0,
            Some(value("a")),
        )));
    }
    assert_eq!(
        engine.locked(),
        Some(RoundValue {
            round: Round(0),
            value: value("a")
        })
    );
    for key in others(&keys, &me) {
        engine.handle(Input::Vote(vote(key, VoteKind::Precommit, 1, 0, None)));
    }
    engine.handle(Input::TimeoutFired {
        kind: TimeoutKind::Precommit,
        height: Height(1),
        round: Round(0),
    });
    // Round 1: the others prevote "b" (we never saw its proposal), then give up.
    for key in others(&keys, &me) {
        engine.handle(Input::Vote(vote(
            key,
            VoteKind::Prevote,
            1,
            1,
            Some(value("b")),
        )));
        engine.handle(Input::Vote(vote(key, VoteKind::Precommit, 1, 1, None)));
    }
    engine.handle(Input::TimeoutFired {
        kind: TimeoutKind::Precommit,
        height: Height(1),
        round: Round(1),
    });
    assert_eq!(engine.round(), Some(Round(2)));
    let leader = proposer(&keys, 1, 2);
    assert_ne!(leader.public(), me.public());
    // Round 2: "b" re-proposed with its proof of lock from round 1 ≥ our
    // locked round 0: line 29 lets us prevote it although locked on "a".
    let out = engine.handle(Input::Proposal(proposal(leader, 1, 2, value("b"), Some(1))));
    let out = answer_validity(&mut engine, &out, true);
    let prevote = only_vote(&out, &me);
    assert_eq!(
        (prevote.kind, prevote.value),
        (VoteKind::Prevote, Some(value("b")))
    );
}

#[test]
fn line_23_a_locked_validator_prevotes_nil_for_another_fresh_proposal() {
    let (keys, me, mut engine) = follower();
    let out = engine.handle(Input::Proposal(proposal(
        proposer(&keys, 1, 0),
        1,
        0,
        value("a"),
        None,
    )));
    answer_validity(&mut engine, &out, true);
    for key in others(&keys, &me) {
        engine.handle(Input::Vote(vote(
            key,
            VoteKind::Prevote,
            1,
            0,
            Some(value("a")),
        )));
        engine.handle(Input::Vote(vote(key, VoteKind::Precommit, 1, 0, None)));
    }
    engine.handle(Input::TimeoutFired {
        kind: TimeoutKind::Precommit,
        height: Height(1),
        round: Round(0),
    });
    let out = engine.handle(Input::Proposal(proposal(
        proposer(&keys, 1, 1),
        1,
        1,
        value("b"),
        None,
    )));
    let out = answer_validity(&mut engine, &out, true);
    assert_eq!(only_vote(&out, &me).value, None);
}

#[test]
fn the_safety_record_is_persisted_before_every_signed_message() {
    let keys = keys();
    let leader = proposer(&keys, 1, 0).clone();
    let (mut engine, _) = started(&keys, &leader, 1);
    let out = engine.handle(Input::ValueToPropose {
        height: Height(1),
        round: Round(0),
        value: value("b"),
    });
    let mut persisted = false;
    let mut signed = 0;
    for output in &out {
        match output {
            Output::PersistSafetyRecord(_) => persisted = true,
            Output::Broadcast(_) => {
                assert!(persisted, "broadcast before persisting: {out:?}");
                persisted = false;
                signed += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        signed, 2,
        "the proposal and our own prevote for it: {out:?}"
    );
    assert_eq!(engine.safety_record().map(|r| r.step), Some(Step::Prevote));
}

#[test]
fn an_observer_decides_without_signing() {
    let keys = keys();
    let mut observer = Engine::observer(chain(), EngineConfig::default());
    observer.handle(Input::StartHeight {
        height: Height(1),
        validators: set(&keys),
    });
    let mut out = Vec::new();
    for key in &keys[..3] {
        out.extend(observer.handle(Input::Vote(vote(
            key,
            VoteKind::Precommit,
            1,
            0,
            Some(value("b")),
        ))));
    }
    let out = answer_validity(&mut observer, &out, true);
    assert!(out.iter().any(|o| matches!(o, Output::Decide(_))));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Broadcast(_) | Output::PersistSafetyRecord(_)))
    );
}
