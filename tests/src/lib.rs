//! Multi-node and end-to-end tests that start real nodes and the real `scf`
//! binary (the tests themselves are under `tests/`), and the harness they
//! share.
//!
//! The Byzantine harness (issue 16): a 4-validator network whose validators
//! 0–2 are honest `scf` processes ([`cluster`]) under a background load
//! ([`client`]), and an in-process hostile peer with validator 3's genesis
//! identity ([`hostile`]) running one of the [`attacks`]; [`runner`] stages
//! each scenario and [`checks`] judges it.
//!
//! The chaos runner (issue 18): [`chaos`], real validator processes under
//! business traffic and a seeded fault schedule, judged by a history
//! checker; run by the `scf-chaos` binary and `tests/tests/chaos.rs`.
//!
//! Governance without a halt (issue 19): [`governance`], validator set
//! changes made through a loaded network's API, the commit timeline across
//! them, and votes signed by a rotated-away key; the scenario is
//! `tests/tests/governance.rs`.
//!
//! The PostgreSQL sink (issue 20): [`postgres`], a throwaway server for
//! tests, and [`sink`], the sink driven as a process (with a lying node in
//! front of a real one, and a long history for the `scf-sink-bench`
//! benchmark); the tests are `tests/tests/sink.rs`.

pub mod attacks;
pub mod chaos;
pub mod checks;
pub mod client;
pub mod cluster;
pub mod flood_p2p;
pub mod governance;
pub mod hostile;
pub mod postgres;
pub mod runner;
pub mod sink;

/// The directory of the package whose tests are running, as cargo gives it
/// to the test process. `env!("CARGO_MANIFEST_DIR")` is where this crate
/// was compiled, which is stale when a shared target directory (CI's, under
/// `~/.cache`) is reused from a checkout at another path: cargo then runs
/// the old test binary without recompiling it.
pub fn package_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
