//! Liveness: deciding resumes after partitions heal and crashed validators
//! return, within a bounded number of rounds; with f validators crashed
//! heights keep being decided; with f+1 crashed nothing new is decided and
//! nothing unsafe happens. Also: a validator set that changes every height,
//! and the simulator's throughput.

mod sim;

use consensus::Height;
use sim::seeds::run_seeds;
use sim::{Crash, NetworkConfig, Partition, Scenario};

/// Rounds a decision may take after a heal, beyond the highest round reached
/// before it: one to finish the round in progress, one fresh round, slack one.
const ROUNDS_AFTER_HEAL: u32 = 3;

#[test]
fn all_validators_decide_within_bounded_rounds_after_a_partition_heals() {
    for n in [4, 7] {
        let name = format!("partition_heals_n{n}");
        run_seeds(&name, 0..200, |seed| {
            let mut scenario = Scenario::new(seed, n).with_random_partition((0, 400), 1_000, 6_000);
            scenario.network = NetworkConfig::reliable();
            scenario.target_height = 8;
            let partition = scenario.partitions[0].clone();
            let report = scenario.run();
            report.safe_and_finished()?;
            let heal = &report.heals.first().ok_or("the partition never healed")?;
            for decision in report
                .decisions
                .iter()
                .filter(|d| d.at_ms >= heal.at_ms && !d.via_sync)
            {
                if decision.round.0 > heal.max_round.0 + ROUNDS_AFTER_HEAL {
                    return Err(format!(
                        "after the heal at {} ms (max round {:?}) validator {} decided height {:?} only in {:?}; partition {partition:?}",
                        heal.at_ms, heal.max_round, decision.node, decision.height, decision.round
                    ));
                }
            }
            // Within bounded simulated time, too: a few rounds of timeouts.
            let last = report.decisions.iter().map(|d| d.at_ms).max().unwrap_or(0);
            if last > heal.at_ms + 10_000 {
                return Err(format!(
                    "deciding took until {last} ms after a heal at {} ms",
                    heal.at_ms
                ));
            }
            Ok(report)
        });
    }
}

#[test]
fn heights_keep_being_decided_with_f_validators_crashed() {
    for n in [4, 7, 10] {
        let f = (n - 1) / 3;
        let name = format!("f_crashed_n{n}");
        run_seeds(&name, 0..100, |seed| {
            let mut scenario = Scenario::new(seed, n);
            scenario.target_height = 4;
            let mut rng = sim::rng::Rng::new(seed);
            for node in rng.pick_distinct(n, f) {
                scenario.crashes.push(Crash {
                    node,
                    at_ms: rng.between(0, 1_500),
                    restart_at_ms: None,
                });
            }
            let report = scenario.run();
            report.safe_and_finished()?;
            Ok(report)
        });
    }
}

#[test]
fn with_f_plus_one_crashed_nothing_is_decided_until_they_return() {
    for n in [4, 7] {
        let f = (n - 1) / 3;
        let name = format!("f_plus_one_crashed_n{n}");
        run_seeds(&name, 0..100, |seed| {
            let mut scenario = Scenario::new(seed, n);
            scenario.network = NetworkConfig::reliable();
            scenario.target_height = 10;
            let mut rng = sim::rng::Rng::new(seed);
            let crash_at = rng.between(100, 500);
            let back_at = crash_at + 8_000;
            for node in rng.pick_distinct(n, f + 1) {
                scenario.crashes.push(Crash {
                    node,
                    at_ms: crash_at,
                    restart_at_ms: Some(back_at),
                });
            }
            let report = scenario.run();
            report.safe_and_finished()?;
            let before: Vec<Height> = report
                .decisions
                .iter()
                .filter(|d| d.at_ms < crash_at)
                .map(|d| d.height)
                .collect();
            let highest_before = before.iter().max().copied().unwrap_or_default();
            for d in report
                .decisions
                .iter()
                .filter(|d| d.at_ms >= crash_at && d.at_ms < back_at)
            {
                // Only the height in progress at the crash can still complete,
                // from votes the crashed validators had already sent.
                if d.height > highest_before.next() {
                    return Err(format!(
                        "height {:?} decided at {} ms while f+1 were down",
                        d.height, d.at_ms
                    ));
                }
                let new_height = !before.contains(&d.height);
                if new_height && d.at_ms > crash_at + 2_000 {
                    return Err(format!(
                        "new height {:?} decided at {} ms while f+1 were down",
                        d.height, d.at_ms
                    ));
                }
            }
            if !report
                .decisions
                .iter()
                .any(|d| d.at_ms >= back_at && !d.via_sync)
            {
                return Err("deciding did not resume after the crashed validators returned".into());
            }
            Ok(report)
        });
    }
}

#[test]
fn a_validator_set_that_changes_every_height_needs_no_engine_change() {
    run_seeds("changing_validator_set", 0..50, |seed| {
        let mut scenario = Scenario::new(seed, 4);
        scenario.powers_change_per_height = true;
        scenario.target_height = 6;
        let report = scenario.run();
        report.safe_and_finished()?;
        Ok(report)
    });
}

#[test]
fn simulated_messages_per_second() {
    for n in [4, 7, 10] {
        let name = format!("throughput_n{n}_honest_reliable");
        let summary = run_seeds(&name, 0..20, |seed| {
            let mut scenario = Scenario::new(seed, n);
            scenario.network = NetworkConfig::reliable();
            scenario.target_height = 5;
            let report = scenario.run();
            report.safe_and_finished()?;
            Ok(report)
        });
        assert!(summary.messages_delivered > 0);
    }
    // A partition with a quorum side: the minority catches up by block sync.
    run_seeds("minority_partition_catches_up", 0..50, |seed| {
        let mut scenario = Scenario::new(seed, 4);
        scenario.target_height = 8;
        scenario.partitions.push(Partition {
            from_ms: 100,
            until_ms: 5_000,
            groups: vec![vec![0, 1, 2], vec![3]],
        });
        let report = scenario.run();
        report.safe_and_finished()?;
        Ok(report)
    });
}
