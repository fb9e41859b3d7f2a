//! `scf-chaos`: runs the chaos scenario of issue 18 against real `scf`
//! processes and prints its verdict (see `scf_tests::chaos`).
//!
//! Exits 0 when every check held, 1 on any violation (printing the seed
//! and the command that replays it), 2 when the run could not be staged.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use scf_tests::chaos::{self, Config, FaultKind};

/// Crash, pause, partition and quorum-loss faults under business traffic,
/// checked end to end.
#[derive(Parser, Debug)]
#[command(name = "scf-chaos")]
struct Args {
    /// Validators (one observer is added).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Length of the traffic and the fault schedule.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Transactions released per second.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Fault kinds, comma-separated: kill, pause, restart, isolate, quorum.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill,pause,restart,isolate,quorum"
    )]
    faults: Vec<String>,
    /// The seed of the schedule and the traffic's choices (default: from
    /// the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the summary as JSON only.
    #[arg(long)]
    json: bool,
    /// Where to write the history (JSON lines).
    #[arg(long)]
    history: Option<PathBuf>,
    /// Keep the run's directory (homes, logs, history) even when it passed.
    #[arg(long)]
    keep: bool,
    /// The `scf` binary (default: beside this one, or $SCF_BIN).
    #[arg(long)]
    scf: Option<PathBuf>,
    /// Receivables mature this many seconds after confirmation: LOW,HIGH.
    #[arg(long, value_delimiter = ',', default_values_t = [25, 60])]
    maturity: Vec<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("scf-chaos: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let faults = args
        .faults
        .iter()
        .filter(|name| !name.is_empty())
        .map(|name| FaultKind::parse(name))
        .collect::<Result<Vec<_>, _>>()?;
    if args.validators < 4 {
        return Err(format!(
            "--validators {} leaves no fault tolerance; use 4 or more",
            args.validators
        ));
    }
    let [low, high] = args.maturity[..] else {
        return Err("--maturity takes LOW,HIGH seconds".into());
    };
    if low == 0 || high < low {
        return Err(format!("--maturity {low},{high}: need 0 < LOW ≤ HIGH"));
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_nanos() as u64)
    });
    let binary = match args.scf {
        Some(binary) => binary,
        None => chaos::sibling_scf_binary()?,
    };
    let config = Config {
        validators: args.validators,
        seconds: args.seconds,
        rate: args.rate,
        faults,
        seed,
        binary,
        history: args.history,
        keep: args.keep,
        maturity_s: (low, high),
    };
    let summary = chaos::run(&config)?;
    let json = serde_json::to_string_pretty(&summary).expect("the summary serialises");
    println!("{json}");
    if summary.violations.is_empty() {
        if !args.json {
            eprintln!("scf-chaos: passed (seed {seed})");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "scf-chaos: FAILED with seed {seed}: {} violations; replay with: {}",
            summary.violations.len(),
            summary.replay
        );
        Ok(ExitCode::FAILURE)
    }
}
