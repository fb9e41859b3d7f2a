//! Safety while the validator set changes: validators join, leave, change
//! power and rotate their consensus keys at seeded heights (the schedule
//! the ledger's governance records, see `sim::membership`), with one or two
//! Byzantine validators of every behaviour in the pool, joining and leaving
//! with the rest, on a hostile network (delays past the first timeouts,
//! drops, duplicates, and for one seed in four a partition that heals).
//!
//! Each run checks, on every event: agreement, validity, every certificate
//! against the set in force at its height, no honest double signing (also
//! across a key rotation), persist-before-send, evidence only against
//! Byzantine keys; and that every honest node, member or not, reaches the
//! target height.
//!
//! CI runs 100 seeds. The long run, 1,000 seeds with opt-level 3:
//!
//! ```text
//! SIM_SEEDS=1000 cargo test --workspace \
//!     --config 'profile.dev.package.consensus.opt-level=3' \
//!     --test membership -- --nocapture validators_join
//! ```
//!
//! Replay one seed with `SIM_SEED=<n>`.
//!
//! A negative control shows the checks see a fork when a change breaks the
//! assumption: a schedule that makes two colluders of four (f + 1).

mod sim;

use consensus::Height;
use sim::byzantine::{ALL, Behaviour};
use sim::membership::{Change, Member, Membership};
use sim::seeds::{assert_some_fork, count, run_seeds, seeds_with_a_fork};
use sim::{NetworkConfig, Scenario};

/// Nodes in the pool: the set is 4 to 7 of them at any height.
const POOL: usize = 7;
const HEIGHTS: u64 = 10;

#[test]
fn validators_join_leave_reweigh_and_rotate_keys_among_byzantine_ones_without_splitting_decisions()
{
    let name = "changing_sets_with_byzantine_validators";
    let (mut changes, mut rotations, mut byzantine_members) = ([0u64; 4], 0u64, 0u64);
    let summary = run_seeds(name, 0..count(100), |seed| {
        // One Byzantine validator, or two, of every behaviour by turns.
        let faulty = 1 + (seed % 2) as usize;
        let behaviours: Vec<_> = (0..faulty)
            .map(|j| ALL[(seed as usize / 2 + j) % ALL.len()])
            .collect();
        let mut scenario = Scenario::new(seed, POOL).with_byzantine(&behaviours);
        scenario.target_height = HEIGHTS;
        if seed % 4 == 0 {
            scenario = scenario.with_random_partition((0, 1_500), 300, 2_000);
        }
        let byzantine: Vec<usize> = scenario.byzantine.iter().map(|(node, _)| *node).collect();
        let membership = Membership::random(seed, POOL, &byzantine, HEIGHTS - 1);
        for (_, change) in &membership.changes {
            changes[match change {
                Change::Add { .. } => 0,
                Change::Remove { .. } => 1,
                Change::SetPower { .. } => 2,
                Change::RotateKey { .. } => 3,
            }] += 1;
        }
        byzantine_members += membership
            .schedule
            .iter()
            .filter(|(_, members)| members.iter().any(|m| byzantine.contains(&m.node)))
            .count() as u64;
        scenario.membership = Some(membership);
        let report = scenario.run();
        report.safe_and_finished()?;
        rotations += u64::from(report.rotations);
        Ok(report)
    });
    println!(
        "{name}: changes add/remove/power/rotate {changes:?}, engines rekeyed {rotations}, sets with a Byzantine member {byzantine_members}"
    );
    assert!(summary.heights_decided >= summary.seeds * HEIGHTS);
    // The schedules do change sets, in every way, with Byzantine members.
    if summary.seeds >= 20 {
        assert!(
            changes.iter().all(|count| *count >= summary.seeds / 10),
            "{changes:?}"
        );
        assert!(rotations > 0);
        assert!(byzantine_members >= summary.seeds);
    }
}

/// Node 0 colludes, one of four: within the fault assumption. From height
/// 2, two changes adopted together replace node 2 by node 1; if node 1
/// colludes too, they are two of four (f + 1), and two quorums of three
/// can meet in them alone.
fn replace_node_2_by_node_1_at_height_2(seed: u64, second_colluder_joins: bool) -> Scenario {
    let member = |node| Member {
        node,
        key: node,
        power: 1,
    };
    let mut scenario = Scenario::new(seed, 5);
    scenario.byzantine = vec![(0, Behaviour::Collude)];
    if second_colluder_joins {
        scenario.byzantine.push((1, Behaviour::Collude));
    }
    scenario.membership = Some(Membership::fixed(vec![
        (Height(1), [0, 2, 3, 4].map(member).to_vec()),
        (Height(2), [0, 1, 3, 4].map(member).to_vec()),
    ]));
    scenario.network = NetworkConfig::reliable();
    scenario.target_height = 4;
    scenario.max_time_ms = 30_000;
    scenario
}

#[test]
fn checker_finds_a_fork_when_a_change_makes_the_colluders_f_plus_one() {
    let name = "checker_finds_a_fork_when_a_change_makes_the_colluders_f_plus_one";
    let forks = seeds_with_a_fork(name, 100, |seed| {
        replace_node_2_by_node_1_at_height_2(seed, true)
    });
    assert_some_fork(&forks, "a second colluder joining");
}

#[test]
fn an_honest_node_joining_keeps_a_colluder_harmless() {
    run_seeds(
        "an_honest_node_joining_keeps_a_colluder_harmless",
        0..100,
        |seed| {
            let report = replace_node_2_by_node_1_at_height_2(seed, false).run();
            report.safe_and_finished()?;
            Ok(report)
        },
    );
}
