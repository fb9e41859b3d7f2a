//! Negative controls: the simulator's checker does find a fork when the
//! fault assumption is broken, so the safety tests passing means something.
//!
//! With f + 1 faulty keys of n = 3f + 1 two quorums can meet only in faulty
//! validators, and Tendermint promises nothing. Each test here runs a bounded
//! number of seeds and passes only if at least one seed ends with agreement
//! broken (honest validators deciding different values at one height); it
//! fails if the checker sees none. Within f faulty keys the same set-up must
//! stay safe, which is checked alongside.
//!
//! A single key run twice cannot fork n = 4: two quorums of 3 share 2
//! validators, so at least one honest one, which votes only once. Twins
//! therefore duplicate f + 1 = 2 keys to show a fork, and 1 key to show none.
//! `SIM_SEED=<n>` runs one seed (a found fork is printed with its seed).

mod sim;

use sim::byzantine::Behaviour;
use sim::rng::Rng;
use sim::seeds::{assert_some_fork, run_seeds, seeds_with_a_fork};
use sim::{NetworkConfig, Scenario};

#[test]
fn checker_finds_a_fork_with_f_plus_one_byzantine() {
    let name = "checker_finds_a_fork_with_f_plus_one_byzantine";
    let forks = seeds_with_a_fork(name, 100, |seed| {
        let mut scenario =
            Scenario::new(seed, 4).with_byzantine(&[Behaviour::Collude, Behaviour::Collude]);
        scenario.network = NetworkConfig::reliable();
        scenario.target_height = 3;
        scenario.max_time_ms = 30_000;
        scenario
    });
    assert_some_fork(&forks, "2 colluders of 4");
}

/// Twins: `twinned` keys chosen by the seed each run twice, the instances
/// split by a partition that heals after a few seconds.
fn twins(seed: u64, twinned: usize) -> Scenario {
    let keys = Rng::new(seed ^ 0x7A15).pick_distinct(4, twinned);
    let mut scenario = Scenario::new(seed, 4).with_twins(&keys, (2_000, 6_000));
    scenario.network = NetworkConfig::reliable();
    scenario.target_height = 3;
    scenario.max_time_ms = 30_000;
    scenario
}

#[test]
fn twins_with_f_plus_one_duplicated_keys_can_fork() {
    let name = "twins_with_f_plus_one_duplicated_keys_can_fork";
    let forks = seeds_with_a_fork(name, 100, |seed| twins(seed, 2));
    assert_some_fork(&forks, "2 of 4 keys run twice");
}

#[test]
fn twins_with_f_duplicated_keys_never_fork() {
    run_seeds("twins_with_f_duplicated_keys_never_fork", 0..300, |seed| {
        let report = twins(seed, 1).run();
        report.safe_and_finished()?;
        Ok(report)
    });
}

#[test]
fn a_single_colluder_cannot_fork() {
    run_seeds("a_single_colluder_cannot_fork", 0..300, |seed| {
        let mut scenario = Scenario::new(seed, 4).with_byzantine(&[Behaviour::Collude]);
        scenario.network = NetworkConfig::reliable();
        scenario.target_height = 3;
        let report = scenario.run();
        report.safe_and_finished()?;
        Ok(report)
    });
}
