//! Byzantine tolerance of the whole node (issue 16): with validator 3
//! hostile (f = 1 of 4), every attack of `scf_tests::attacks` must leave the
//! honest validators committing within 10 s, alive, agreeing on every
//! block, with no invalid signature committed and bounded memory.
//!
//! One test runs every scenario, each on a fresh network of real
//! processes, and prints a table of the results; it fails listing every
//! scenario that broke a check. `BYZ_ONLY=name,name` runs only the named
//! scenarios.
//!
//! Two networks run at a time (`BYZ_PARALLEL=N` sets how many): a scenario
//! waits most of its time for rounds and its 12 s attack window, with the
//! machine's cores mostly idle (about a fifth busy on 2 cores with one
//! network), and each network has its own ports and directories. A second
//! network only adds load to what each one's checks must withstand.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    let parallel: usize = std::env::var("BYZ_PARALLEL")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(2);
    let started = Instant::now();
    let selected: Vec<_> = scenarios()
        .into_iter()
        .filter(|scenario| {
            only.as_ref()
                .is_none_or(|only| only.iter().any(|name| name == scenario.name))
        })
        .collect();
    // Each worker takes the next scenario not yet taken; the table keeps
    // the scenarios' order.
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..parallel.min(selected.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(scenario) = selected.get(index) else {
                        break;
                    };
                    let verdict = runner::run(&runtime, scenario);
                    results.lock().expect("the verdicts").push((index, verdict));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("the verdicts");
    results.sort_by_key(|(index, _)| *index);
    let verdicts: Vec<_> = results.into_iter().map(|(_, verdict)| verdict).collect();
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
