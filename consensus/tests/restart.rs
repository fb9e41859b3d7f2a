//! Restarts: a validator that crashes at any point (even between persisting
//! its safety record and sending the message) and restarts from the reloaded
//! record never signs two different messages at one (height, round, step),
//! and keeps its lock.

mod common;
mod sim;

use common::{answer_validity, chain, keys, my_votes, proposal, proposer, set, value, vote};
use consensus::{
    Engine, EngineConfig, Height, Input, Output, Round, SafetyRecord, Step, TimeoutKind, VoteKind,
};
use sim::seeds::run_seeds;
use sim::{RandomRestarts, Scenario};

fn restarting(seed: u64, n: usize) -> RandomRestarts {
    RandomRestarts {
        node: (seed % n as u64) as usize,
        per_mille_per_output: 40,
        min_down_ms: 10,
        max_down_ms: 1_500,
        max_restarts: 8,
    }
}

#[test]
fn a_validator_restarted_from_its_safety_record_never_double_signs() {
    let mut restarts = 0;
    let summary = run_seeds("restart_n4", 0..300, |seed| {
        let mut scenario = Scenario::new(seed, 4);
        scenario.target_height = 4;
        scenario.random_restarts = Some(restarting(seed, 4));
        let report = scenario.run();
        report.safe_and_finished()?;
        restarts += report.restarts;
        Ok(report)
    });
    assert!(
        u64::from(restarts) >= summary.seeds,
        "only {restarts} restarts in {} runs",
        summary.seeds
    );
}

#[test]
fn restarts_next_to_equivocators_keep_agreement() {
    run_seeds("restart_n7_with_equivocators", 0..150, |seed| {
        let mut scenario = Scenario::new(seed, 7).with_byzantine(&[sim::Behaviour::Equivocate; 2]);
        scenario.target_height = 2;
        let honest: Vec<usize> = (0..7)
            .filter(|i| scenario.behaviour(*i).is_none())
            .collect();
        let mut plan = restarting(seed, 7);
        plan.node = honest[(seed as usize) % honest.len()];
        scenario.random_restarts = Some(plan);
        let report = scenario.run();
        report.safe_and_finished()?;
        Ok(report)
    });
}

/// Drives validator `me` at height 1 until it has locked on the round-0
/// proposal and precommitted it; returns its last persisted record.
fn locked_validator() -> (Vec<crypto::Keypair>, crypto::Keypair, SafetyRecord) {
    let keys = keys();
    let leader = proposer(&keys, 1, 0).clone();
    let me = keys
        .iter()
        .find(|k| k.public() != leader.public())
        .unwrap()
        .clone();
    let mut engine = Engine::validator(chain(), EngineConfig::default(), me.clone(), None);
    engine.handle(Input::StartHeight {
        height: Height(1),
        validators: set(&keys),
    });
    let block = value("block");
    let out = engine.handle(Input::Proposal(proposal(&leader, 1, 0, block, None)));
    answer_validity(&mut engine, &out, true);
    for key in keys.iter().filter(|k| k.public() != me.public()) {
        engine.handle(Input::Vote(vote(key, VoteKind::Prevote, 1, 0, Some(block))));
    }
    let record = engine.safety_record().unwrap();
    assert_eq!(
        (record.round, record.step, record.value),
        (Round(0), Step::Precommit, Some(block))
    );
    (keys, me, record)
}

#[test]
fn a_restarted_validator_resumes_its_round_step_and_lock() {
    let (keys, me, record) = locked_validator();
    let mut engine = Engine::validator(chain(), EngineConfig::default(), me.clone(), Some(record));
    let out = engine.handle(Input::StartHeight {
        height: Height(1),
        validators: set(&keys),
    });
    assert_eq!(engine.round(), Some(Round(0)));
    assert_eq!(engine.step(), Some(Step::Precommit));
    assert_eq!(engine.locked(), record.locked);
    // It re-sends exactly the precommit it had signed, after persisting.
    let votes = my_votes(&out, me.public());
    assert_eq!(votes.len(), 1);
    assert_eq!(
        (votes[0].kind, votes[0].value),
        (VoteKind::Precommit, record.value)
    );
    let persist = out
        .iter()
        .position(|o| matches!(o, Output::PersistSafetyRecord(_)))
        .unwrap();
    let send = out
        .iter()
        .position(|o| matches!(o, Output::Broadcast(_)))
        .unwrap();
    assert!(
        persist < send,
        "the record must be persisted before the message leaves"
    );
    // Stale timers of the lost incarnation change nothing.
    for kind in [TimeoutKind::Propose, TimeoutKind::Prevote] {
        let out = engine.handle(Input::TimeoutFired {
            kind,
            height: Height(1),
            round: Round(0),
        });
        assert!(
            my_votes(&out, me.public()).is_empty(),
            "{kind:?} made it sign again: {out:?}"
        );
    }
}

#[test]
fn the_restored_lock_refuses_a_conflicting_proposal_in_a_later_round() {
    let (keys, me, record) = locked_validator();
    let mut engine = Engine::validator(chain(), EngineConfig::default(), me.clone(), Some(record));
    engine.handle(Input::StartHeight {
        height: Height(1),
        validators: set(&keys),
    });
    // 2f+1 precommits for nil in round 0 → timeout → round 1.
    for key in keys.iter().filter(|k| k.public() != me.public()) {
        engine.handle(Input::Vote(vote(key, VoteKind::Precommit, 1, 0, None)));
    }
    engine.handle(Input::TimeoutFired {
        kind: TimeoutKind::Precommit,
        height: Height(1),
        round: Round(0),
    });
    assert_eq!(engine.round(), Some(Round(1)));
    let leader = proposer(&keys, 1, 1);
    if leader.public() == me.public() {
        return; // it would re-propose its own locked value: nothing to refuse
    }
    let out = engine.handle(Input::Proposal(proposal(
        leader,
        1,
        1,
        value("other"),
        None,
    )));
    let out = answer_validity(&mut engine, &out, true);
    let votes = my_votes(&out, me.public());
    assert_eq!(votes.len(), 1);
    assert_eq!(
        (votes[0].kind, votes[0].value),
        (VoteKind::Prevote, None),
        "line 23: locked on another value"
    );
}
