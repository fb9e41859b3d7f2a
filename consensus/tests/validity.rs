//! Per-validator validity: honest validators judge a proposed block only once
//! they hold its true body, so for a while they disagree. Some first answer
//! "invalid" (they got a tampered body) and "valid" once the true body
//! arrives; some answer only late; with a Byzantine proposer that withholds a
//! body from everyone, some never answer or stay on "invalid". Honest
//! validators that hold the true body always agree.
//!
//! Over every seed: agreement, only valid values decided, and by consensus
//! only after the deciding validator was told the value is valid (all checked
//! on every event by the simulator), and every honest validator reaches the
//! target height: with f Byzantine of n = 3f+1 and eventual delivery of
//! bodies held by honest validators, deciding goes on.
//! Replay a failing seed with `SIM_SEED=<n>`.

mod sim;

use sim::Scenario;
use sim::byzantine::{ALL, BODY, Behaviour};
use sim::seeds::run_seeds;
use sim::validity::ValidityModel;

/// Runs `n` validators, `behaviours(seed)` Byzantine, honest bodies late as
/// in `ValidityModel::disagreeing`, a hostile network and, one seed in four,
/// a partition that heals; returns how many verdicts were late and how many
/// said "invalid" of a valid value.
fn disagreeing_validators_stay_safe_and_live(
    name: &str,
    n: usize,
    behaviours: impl Fn(u64) -> Vec<Behaviour>,
    heights: u64,
    seeds: u64,
) -> (u64, u64) {
    let (mut late, mut misjudged) = (0, 0);
    let summary = run_seeds(name, 0..seeds, |seed| {
        let mut scenario = Scenario::new(seed, n).with_byzantine(&behaviours(seed));
        scenario.validity = ValidityModel::disagreeing();
        scenario.target_height = heights;
        if seed % 4 == 0 {
            scenario = scenario.with_random_partition((0, 1_500), 300, 2_000);
        }
        let report = scenario.run();
        report.safe_and_finished()?;
        late += report.late_verdicts;
        misjudged += report.misjudged;
        Ok(report)
    });
    assert!(summary.heights_decided >= summary.seeds * heights);
    println!("{name}: {late} late verdicts, {misjudged} valid values judged invalid for a while");
    (late, misjudged)
}

/// Seed s: the body strategies and the signature strategies in turn.
fn one_of_every_behaviour(seed: u64) -> Vec<Behaviour> {
    let every: Vec<Behaviour> = BODY.iter().chain(ALL.iter()).copied().collect();
    vec![every[seed as usize % every.len()]]
}

#[test]
fn per_node_validity_keeps_safety_and_liveness_over_1000_seeds() {
    let name = "per_node_validity_keeps_safety_and_liveness_over_1000_seeds";
    let (late, misjudged) =
        disagreeing_validators_stay_safe_and_live(name, 4, one_of_every_behaviour, 2, 1_000);
    // The scenario must really make honest validators disagree.
    assert!(late > 1_000, "only {late} late verdicts");
    assert!(misjudged > 500, "only {misjudged} misjudged values");
}

#[test]
fn a_proposer_sending_tampered_bodies_cannot_split_or_stall_decisions() {
    let name = "a_proposer_sending_tampered_bodies_cannot_split_or_stall_decisions";
    let (_, misjudged) =
        disagreeing_validators_stay_safe_and_live(name, 4, |_| vec![Behaviour::SplitBody], 2, 300);
    assert!(misjudged > 100, "only {misjudged} misjudged values");
}

#[test]
fn a_proposer_withholding_bodies_cannot_split_or_stall_decisions() {
    let name = "a_proposer_withholding_bodies_cannot_split_or_stall_decisions";
    disagreeing_validators_stay_safe_and_live(name, 4, |_| vec![Behaviour::WithholdBody], 2, 300);
}

#[test]
fn n7_two_body_strategies_together_cannot_split_or_stall_decisions() {
    let name = "n7_two_body_strategies_together_cannot_split_or_stall_decisions";
    disagreeing_validators_stay_safe_and_live(name, 7, |_| BODY.to_vec(), 1, 200);
}
