//! Byzantine tolerance of the whole node (issue 16): with validator 3
//! hostile (f = 1 of 4), every attack of `scf_tests::attacks` must leave the
//! honest validators committing within 10 s, alive, agreeing on every
//! block, with no invalid signature committed and bounded memory.
//!
//! One test runs every scenario in turn on a fresh network (networks of
//! real processes, one at a time) and prints a table of the results; it
//! fails listing every scenario that broke a check. `BYZ_ONLY=name,name`
//! runs only the named scenarios.

use std::time::Instant;

use scf_tests::attacks::scenarios;
use scf_tests::checks;
use scf_tests::runner;

#[test]
fn no_single_byzantine_validator_halts_crashes_or_forges() {
    let only: Option<Vec<String>> = std::env::var("BYZ_ONLY").ok().map(|names| {
        names
            .split(',')
            .map(|name| name.trim().to_string())
            .collect()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the hostile peer");
    let started = Instant::now();
    let mut verdicts = Vec::new();
    for scenario in scenarios() {
        if only
            .as_ref()
            .is_some_and(|only| !only.iter().any(|name| name == scenario.name))
        {
            continue;
        }
        verdicts.push(runner::run(&runtime, &scenario));
    }
    let table = checks::table(&verdicts);
    eprintln!(
        "\nByzantine harness: {} scenarios in {:.0} s\n{table}",
        verdicts.len(),
        started.elapsed().as_secs_f64()
    );
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|verdict| !verdict.passed())
        .map(|verdict| verdict.scenario.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "attacks that broke a check: {}\n{table}",
        failed.join(", ")
    );
}
