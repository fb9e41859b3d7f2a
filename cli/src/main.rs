//! The `scf` command-line tool. Its commands arrive with the CLI issue; until
//! then it only answers `--help` and `--version`.

use clap::Parser;

/// scfledger: a permissioned ledger for tokenized receivables.
#[derive(Parser, Debug)]
#[command(name = "scf", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
