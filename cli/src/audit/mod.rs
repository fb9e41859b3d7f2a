//! `scf audit verify` and `scf audit export`: an auditor checks the whole
//! chain independently of the nodes that made it.
//!
//! - `verify` reads every block and certificate from a running node
//!   (`--node URL`), a node's home on disk (`--home DIR`, read-only, safe
//!   while the node runs) or a chain file (`--chain FILE`), and checks
//!   hashes, certificates against the genesis validators, every transaction
//!   signature, and the app hash at every height by replaying everything from
//!   genesis ([`verify_chain`]; the checks are listed in `verify.rs`). It
//!   prints a summary, or fails naming the first bad height and the reason.
//! - `export` copies the genesis and every block with its certificate into
//!   one self-contained chain file (the format is in `chain_file.rs`), which
//!   `verify --chain` checks offline.
//!
//! The sources are in `source.rs`; this file only parses arguments and
//! prints. It does not repair anything, and it trusts nothing it reads: a
//! chain file or a node is only as good as what `verify` finds.
//!
//! What `verify` checks against is the genesis: a node that makes up its own
//! genesis can serve a whole self-consistent chain on it. So `verify --node`
//! needs a genesis the auditor trusts (`--genesis FILE` from the consortium)
//! or the chain id it knows (`--chain-id HEX`), and never takes the node's
//! word for it. A home's `genesis.json` is the operator's own file and a
//! chain file carries the genesis it was exported with: those are used as
//! they are, and checked against `--genesis` / `--chain-id` when given.

mod chain_file;
mod progress;
mod source;
mod verify;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use chain_file::ChainFileWriter;
pub use progress::{NoProgress, Progress, TerminalProgress};
pub use source::{
    BlockSource, ChainFileSource, HomeSource, NodeSource, RawBlock, SourceError, TrustedGenesis,
    TrustedSource,
};
pub use verify::{AuditFailure, AuditReport, ChainVerifier, VerifiedBlock, verify_chain};

use crate::explain;
use crate::output::emit;

/// `scf audit`: verify the chain, or export it for offline verification.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Check every block from genesis: parent hashes, tx roots, certificates
    /// (a quorum of the genesis validators), every transaction signature, and
    /// the app hash at every height by replaying every transaction. Exits
    /// non-zero naming the first bad height.
    Verify(VerifyArgs),
    /// Write the genesis and every block with its certificate to one file,
    /// which `scf audit verify --chain FILE` checks offline.
    Export(ExportArgs),
}

/// Where `verify` reads the chain: a chain file, a node's home, or else the
/// node of the global `--node URL` (default `http://127.0.0.1:8700`, or
/// `$SCF_NODE`), which needs the global `--genesis FILE` or `--chain-id`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A node's home directory (genesis.json and data/ledger), read without
    /// writing; the node may be running. Instead of --node.
    #[arg(long, value_name = "DIR", group = "source")]
    pub home: Option<PathBuf>,
    /// A chain file made by `scf audit export`. Instead of --node.
    #[arg(long, value_name = "FILE", group = "source")]
    pub chain: Option<PathBuf>,
    /// The chain id you know (64 hex digits): the genesis read from the
    /// source must hash to it. With --node, this or --genesis FILE is required.
    #[arg(long, value_name = "HEX")]
    pub chain_id: Option<String>,
}

/// Where `export` reads the chain (a node's home, or else the node of the
/// global `--node URL`) and where it writes.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A node's home directory, read without writing; the node may be
    /// running. Instead of --node.
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The chain file to write (replaced if it exists, only once complete).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs `scf audit ...`: `node` is the global `--node URL`, used when no
/// `--home` or `--chain` is given; `genesis` the global `--genesis FILE`;
/// `json` prints results as JSON on stdout.
pub fn run(
    args: AuditArgs,
    node: &str,
    genesis: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Verify(args) => run_verify(args, node, genesis, json),
        AuditCommand::Export(args) => run_export(args, node, json),
    }
}

/// What `open_source` will read, for messages about a source it could not open.
fn describe(node: &str, home: Option<&std::path::Path>, chain: Option<&std::path::Path>) -> String {
    match (chain, home) {
        (Some(chain), _) => format!("chain file {}", chain.display()),
        (None, Some(home)) => format!("home {}", home.display()),
        (None, None) => format!("node {node}"),
    }
}

/// Opens `--chain`, else `--home`, else the node.
fn open_source(
    node: &str,
    home: Option<&std::path::Path>,
    chain: Option<&std::path::Path>,
) -> Result<Box<dyn BlockSource>, SourceError> {
    Ok(match (chain, home) {
        (Some(chain), _) => Box::new(ChainFileSource::open(chain)?),
        (None, Some(home)) => Box::new(HomeSource::open(home)?),
        (None, None) => Box::new(NodeSource::new(node)),
    })
}

/// Keeps a node error findable by the caller (`main` picks the exit code of
/// an unreachable node from it) under a line that says what was audited.
fn source_error(error: SourceError, described: &str) -> anyhow::Error {
    let context = format!("cannot audit {described}");
    match error {
        SourceError::Node(node) => anyhow::Error::new(node).context(context),
        other => anyhow::Error::new(other).context(context),
    }
}

/// The JSON printed on stdout when `--json` verification fails.
#[derive(Serialize)]
struct FailureView {
    verified: bool,
    source: String,
    /// The first bad height; absent when the source could not be read.
    height: Option<u64>,
    error: String,
}

/// What `verify` checks the source's genesis against, from `--genesis FILE`
/// and `--chain-id HEX`; `None` when neither was given.
pub fn trusted_genesis(
    genesis: Option<&std::path::Path>,
    chain_id: Option<&str>,
) -> anyhow::Result<Option<TrustedGenesis>> {
    let chain_id = chain_id
        .map(|text| {
            text.trim()
                .parse::<crypto::Hash>()
                .map(crypto::ChainId)
                .map_err(|_| {
                    explain::usage(format!(
                        "--chain-id {text:?} is not a chain id (64 hex digits, as `scf genesis validate FILE` prints)"
                    ))
                })
        })
        .transpose()?;
    let Some(path) = genesis else {
        return Ok(chain_id.map(TrustedGenesis::ChainId));
    };
    let loaded = genesis::Genesis::load(path)
        .with_context(|| format!("reading the trusted genesis --genesis {}", path.display()))?;
    if let Some(expected) = chain_id
        && loaded.chain_id() != expected
    {
        anyhow::bail!(
            "--genesis {} is chain {}, not --chain-id {expected}; give the genesis of that chain, or only one of the two",
            path.display(),
            loaded.chain_id()
        );
    }
    Ok(Some(TrustedGenesis::File {
        path: path.to_path_buf(),
        genesis: loaded,
    }))
}

fn run_verify(
    args: VerifyArgs,
    node: &str,
    genesis: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let (home, chain) = (args.home.as_deref(), args.chain.as_deref());
    let described = describe(node, home, chain);
    let trusted = trusted_genesis(genesis, args.chain_id.as_deref())?;
    if trusted.is_none() && home.is_none() && chain.is_none() {
        return Err(explain::usage(format!(
            "auditing {described} needs a genesis you trust, not the one the node serves (a node can make up a whole self-consistent chain): pass --genesis FILE with your consortium's genesis.json, or --chain-id HEX with the chain id you know; or audit a home (--home DIR) or a chain file (--chain FILE)"
        )));
    }
    let mut opened =
        open_source(node, home, chain).map_err(|error| source_error(error, &described))?;
    let mut trusted_source;
    let source: &mut dyn BlockSource = match trusted {
        Some(trusted) => {
            trusted_source = TrustedSource::new(opened.as_mut(), trusted);
            &mut trusted_source
        }
        None => opened.as_mut(),
    };
    let mut progress = TerminalProgress::on_stderr("verifying");
    let outcome = verify_chain(source, progress.as_mut());
    progress.finish();
    match outcome {
        Ok(report) => {
            emit(json, &VerifiedView::new(report), |view| {
                print_report(&view.report)
            });
            Ok(())
        }
        Err(failure) => {
            if json {
                emit(
                    true,
                    &FailureView {
                        verified: false,
                        source: described.clone(),
                        height: failure.height(),
                        error: failure.to_string(),
                    },
                    |_| {},
                );
            }
            // One line that carries the height, however the caller prints
            // an error chain.
            Err(match failure {
                AuditFailure::Invalid { .. } => {
                    anyhow::anyhow!("the chain from {described} does NOT verify: {failure}")
                }
                AuditFailure::Source(error) => source_error(error, &described),
                other => anyhow::anyhow!("cannot audit {described}: {other}"),
            })
        }
    }
}

/// `--json` output of a passing verification: the report with `verified`.
#[derive(Serialize)]
struct VerifiedView {
    verified: bool,
    #[serde(flatten)]
    report: AuditReport,
}

impl VerifiedView {
    fn new(report: AuditReport) -> VerifiedView {
        VerifiedView {
            verified: true,
            report,
        }
    }
}

fn print_report(report: &AuditReport) {
    println!("chain {} ({}) verified", report.chain_name, report.chain_id);
    println!("  source         {}", report.source);
    println!(
        "  heights        1..{} (last block {})",
        report.heights, report.block_hash
    );
    println!("  app hash       {}", report.app_hash);
    println!(
        "  transactions   {} ({:.0} verified per second, {:.2} s)",
        report.transactions, report.transactions_per_second, report.seconds
    );
    println!(
        "  participants   {} ({} active)",
        report.participants, report.active_participants
    );
    if report.outstanding.is_empty() {
        println!("  outstanding    no core enterprise registered");
    }
    for exposure in &report.outstanding {
        println!(
            "  outstanding    {} {} of {} {} limit: {} ({})",
            exposure.outstanding,
            report.currency_code,
            exposure.limit,
            report.currency_code,
            exposure.name,
            exposure.core
        );
    }
}

/// `scf audit export` result.
#[derive(Serialize)]
struct ExportView {
    out: PathBuf,
    source: String,
    chain_id: crypto::ChainId,
    heights: u64,
    bytes: u64,
}

fn run_export(args: ExportArgs, node: &str, json: bool) -> anyhow::Result<()> {
    let described = describe(node, args.home.as_deref(), None);
    let mut source = open_source(node, args.home.as_deref(), None)
        .map_err(|error| source_error(error, &described))?;
    let mut progress = TerminalProgress::on_stderr("exporting");
    let outcome = export(source.as_mut(), &args.out, progress.as_mut());
    progress.finish();
    let view = outcome.with_context(|| {
        format!(
            "exporting {described} to {} failed; nothing was written there",
            args.out.display()
        )
    })?;
    emit(json, &view, |view| {
        println!(
            "exported heights 1..{} of chain {} from {} to {} ({} bytes); check it with `scf audit verify --chain {}`",
            view.heights,
            view.chain_id,
            view.source,
            view.out.display(),
            view.bytes,
            view.out.display()
        )
    });
    Ok(())
}

/// Copies the chain, as stored, into a chain file. Nothing is checked here:
/// that is `verify`'s job, on the file.
fn export(
    source: &mut dyn BlockSource,
    out: &std::path::Path,
    progress: &mut dyn Progress,
) -> anyhow::Result<ExportView> {
    let described = source.describe();
    let read = |error| source_error(error, &described);
    let genesis = source.genesis().map_err(read)?;
    let tip = source.tip().map_err(read)?;
    let mut writer = ChainFileWriter::create(out, &genesis, tip)?;
    progress.start(tip);
    for height in 1..=tip {
        let raw = source.block(height).map_err(read)?.with_context(|| {
            format!(
                "{described} has no block at height {height}, below its tip {tip}; run `scf audit verify` on it to see what is wrong"
            )
        })?;
        writer.write_block(height, &raw)?;
        progress.verified(height, 0);
    }
    let bytes = writer.finish()?;
    Ok(ExportView {
        out: out.to_path_buf(),
        source: described.clone(),
        chain_id: genesis.chain_id(),
        heights: tip,
        bytes,
    })
}
