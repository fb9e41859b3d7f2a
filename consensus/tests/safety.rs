//! Safety under Byzantine validators: for n = 4, 7 and 10 with f = (n-1)/3
//! Byzantine validators, over 1,000 seeds each, no two
//! honest validators decide different values at a height, only valid values
//! are decided, every certificate verifies, no honest validator double-signs
//! or is accused (all checked by the simulator on every event). The network
//! is hostile: delays beyond the first rounds' timeouts, drops, duplicates,
//! and for one seed in four a partition that heals. Each run must also reach
//! its target height (liveness despite f Byzantine).
//!
//! n = 4 runs 1,000 seeds for each behaviour. n = 7 and 10 run 1,000 seeds
//! each in which Byzantine validator j of seed s behaves as
//! `ALL[(s + j) % 4]`, so every behaviour is present in at least 500 (n = 7)
//! or 750 (n = 10) of them, alone or mixed: signature checks make larger n
//! costly, and this keeps the suite within minutes. Heights per seed shrink
//! with n for the same reason. Replay a failing seed with `SIM_SEED=<n>`.

mod sim;

use sim::Scenario;
use sim::byzantine::{ALL, Behaviour};
use sim::seeds::run_seeds;

const SEEDS: u64 = 1_000;

fn byzantine_never_break_agreement(
    name: &str,
    n: usize,
    behaviours: impl Fn(u64) -> Vec<Behaviour>,
    heights: u64,
    seeds: u64,
) {
    let mut with_evidence = 0;
    let mut equivocating = false;
    let summary = run_seeds(name, 0..seeds, |seed| {
        let behaviours = behaviours(seed);
        equivocating |= behaviours.contains(&Behaviour::Equivocate);
        let mut scenario = Scenario::new(seed, n).with_byzantine(&behaviours);
        scenario.target_height = heights;
        if seed % 4 == 0 {
            scenario = scenario.with_random_partition((0, 1_500), 300, 2_000);
        }
        let report = scenario.run();
        report.safe_and_finished()?;
        with_evidence += u64::from(!report.evidence_against.is_empty());
        Ok(report)
    });
    assert!(summary.heights_decided >= summary.seeds * heights);
    // Equivocation is often invisible (each peer gets one version) and runs
    // end once decided; it must still be caught in a fair share of runs.
    if equivocating && summary.seeds > 100 {
        assert!(
            with_evidence * 10 > summary.seeds,
            "equivocation evidence in only {with_evidence} runs"
        );
    }
}

fn f_of(n: usize) -> usize {
    (n - 1) / 3
}

macro_rules! safety_test {
    ($name:ident, $behaviour:expr) => {
        #[test]
        fn $name() {
            byzantine_never_break_agreement(stringify!($name), 4, |_| vec![$behaviour], 2, SEEDS);
        }
    };
}

safety_test!(
    n4_equivocating_validator_cannot_split_decisions,
    Behaviour::Equivocate
);
safety_test!(
    n4_invalid_value_validator_cannot_split_decisions,
    Behaviour::InvalidValue
);
safety_test!(
    n4_replaying_validator_cannot_split_decisions,
    Behaviour::Replay
);
safety_test!(
    n4_silent_validator_cannot_split_decisions,
    Behaviour::Silent
);

/// Byzantine validator j of seed s behaves as `ALL[(s + j) % 4]`.
fn rotating(n: usize) -> impl Fn(u64) -> Vec<Behaviour> {
    move |seed| {
        (0..f_of(n))
            .map(|j| ALL[(seed as usize + j) % ALL.len()])
            .collect()
    }
}

#[test]
fn n7_byzantine_validators_of_every_behaviour_cannot_split_decisions() {
    byzantine_never_break_agreement(
        "n7_byzantine_validators_of_every_behaviour_cannot_split_decisions",
        7,
        rotating(7),
        1,
        SEEDS,
    );
}

#[test]
fn n10_byzantine_validators_of_every_behaviour_cannot_split_decisions() {
    byzantine_never_break_agreement(
        "n10_byzantine_validators_of_every_behaviour_cannot_split_decisions",
        10,
        rotating(10),
        1,
        SEEDS,
    );
}
