//! `scf validator …`: the validator set as the chain records it, and the
//! governance transactions that change it.
//!
//! - `list [--height H]`: the set in force at a height (default: the next).
//! - `proposals`: the open proposals with the power they have and need.
//! - `propose add|remove|power|rotate …`: a validator proposes a change
//!   (which counts as its approval), signed with its consensus key.
//! - `approve ID`: a validator approves an open proposal.
//! - `next-key --home DIR`: writes the consensus key a validator will rotate
//!   to (`validator.next.key`) and prints the `propose rotate` that does it.
//!
//! Signing uses a validator's consensus key: `--home DIR` (the node home's
//! `validator.key`) or `--key FILE`. What a proposal needs and when it takes
//! effect is the ledger's rule (more than 2/3 of the power in force, from
//! the adopting height + 2); the node refuses anything else and the error
//! says why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ledger::governance::{PeerId, ValidatorChange};
use ledger::{TxBody, TxHash};
use node::api::governance::ProposalView;
use serde::Serialize;

use crate::client::NodeError;
use crate::commands::{Target, Wait};
use crate::explain;
use crate::explain::Context;
use crate::node_cmd::shell_word;
use crate::output::emit;
use crate::parse;
use crate::transactions::{Session, TxOutcome};

/// Blocks a proposal stays open when `--expires-in` is not given.
const DEFAULT_LIFETIME: u64 = 1_000;

/// A validator's consensus key: from a node home or a key file.
#[derive(Args, Debug, Clone)]
pub struct ValidatorSigning {
    /// The node home whose validator.key signs.
    #[arg(long, conflicts_with = "key")]
    pub home: Option<PathBuf>,
    /// The validator key file that signs.
    #[arg(long)]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub wait: Wait,
}

impl ValidatorSigning {
    fn key_file(&self) -> anyhow::Result<PathBuf> {
        match (&self.home, &self.key) {
            (Some(home), _) => Ok(home.join(node::home::VALIDATOR_KEY_FILE)),
            (None, Some(key)) => Ok(key.clone()),
            (None, None) => anyhow::bail!(
                "no validator key: pass --home DIR (a validator node's home, whose validator.key signs) or --key FILE"
            ),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ValidatorCommand {
    /// The validator set in force at a height (default: the next one).
    List {
        #[arg(long)]
        height: Option<u64>,
    },
    /// Open proposals to change the set, with their approvals.
    Proposals,
    /// Propose a change of the set (counts as your approval).
    Propose {
        #[command(subcommand)]
        change: ChangeArgs,
        /// Blocks from now after which the proposal can no longer be approved.
        #[arg(long, default_value_t = DEFAULT_LIFETIME, global = true)]
        expires_in: u64,
    },
    /// Approve an open proposal, named by its id (the proposing transaction's hash).
    Approve {
        id: String,
        #[command(flatten)]
        signing: ValidatorSigning,
    },
    /// Write a new consensus key as the home's validator.next.key (the node
    /// signs with it once the set rotates to it) and print the `propose
    /// rotate` command. Needs no node.
    NextKey {
        /// The validator node's home (its validator.key is the key rotated away from).
        #[arg(long)]
        home: PathBuf,
    },
}

/// What `next-key` wrote.
#[derive(Serialize)]
struct NextKeySummary {
    file: PathBuf,
    current_key: String,
    next_key: String,
    propose_command: String,
}

#[derive(Subcommand, Debug)]
pub enum ChangeArgs {
    /// Add a validator: what `scf node init` printed for its node.
    Add {
        #[arg(long)]
        name: String,
        /// Its consensus public key (hex) or key file.
        #[arg(long)]
        consensus_key: String,
        /// Its node's libp2p peer id (12D3KooW…).
        #[arg(long)]
        peer_id: String,
        /// The multiaddr its node listens on, e.g. /ip4/10.0.0.5/tcp/26656.
        #[arg(long)]
        address: String,
        #[arg(long, default_value_t = 1)]
        power: u64,
        #[command(flatten)]
        signing: ValidatorSigning,
    },
    /// Remove a validator, named by its consensus key.
    Remove {
        #[arg(long)]
        consensus_key: String,
        #[command(flatten)]
        signing: ValidatorSigning,
    },
    /// Change a validator's voting power.
    Power {
        #[arg(long)]
        consensus_key: String,
        #[arg(long)]
        power: u64,
        #[command(flatten)]
        signing: ValidatorSigning,
    },
    /// Rotate a validator's consensus key (same validator, new key).
    Rotate {
        #[arg(long)]
        old_key: String,
        #[arg(long)]
        new_key: String,
        #[command(flatten)]
        signing: ValidatorSigning,
    },
}

fn open(target: &Target, signing: &ValidatorSigning) -> anyhow::Result<Session> {
    let key_file = signing.key_file()?;
    Session::open(
        target.client.clone(),
        &target.trust,
        &key_file,
        Duration::from_secs(signing.wait.timeout),
    )
}

pub fn run(command: ValidatorCommand, target: &Target, json: bool) -> anyhow::Result<()> {
    match command {
        ValidatorCommand::NextKey { home } => next_key(&home, json),
        ValidatorCommand::List { height } => list(target, height, json),
        ValidatorCommand::Proposals => proposals(target, json),
        ValidatorCommand::Propose { change, expires_in } => {
            let (change, signing) = parse_change(change)?;
            let session = open(target, &signing)?;
            let height = session.client.status()?.height;
            let expires_at = height.saturating_add(expires_in.max(1));
            let outcome = session.submit(
                TxBody::ProposeValidatorChange { change, expires_at },
                &Context {
                    client: Some(&session.client),
                    signer_name: Some(session.signer.name.clone()),
                    ..Context::default()
                },
            )?;
            emit(json, &outcome, |outcome| {
                outcome.print("validator change proposed");
                println!(
                    "  id     {} (approve with `scf validator approve {} --home DIR`)",
                    outcome.tx_hash, outcome.tx_hash
                );
                println!("  open until height {expires_at}");
            });
            Ok(())
        }
        ValidatorCommand::Approve { id, signing } => {
            let id = TxHash(
                id.trim()
                    .parse()
                    .with_context(|| format!("proposal id {id:?} is not 64 hex digits"))?,
            );
            let session = open(target, &signing)?;
            let outcome: TxOutcome = session.submit(
                TxBody::ApproveValidatorChange { proposal: id },
                &Context {
                    client: Some(&session.client),
                    signer_name: Some(session.signer.name.clone()),
                    ..Context::default()
                },
            )?;
            let standing = session.client.validator_proposal(&id).ok();
            emit(json, &outcome, |outcome| {
                outcome.print("validator change approved");
                if let Some(standing) = &standing {
                    print_standing(standing);
                }
            });
            Ok(())
        }
    }
}

fn next_key(home: &Path, json: bool) -> anyhow::Result<()> {
    let written = node::home::write_next_validator_key(home)?;
    let home_word = shell_word(
        &std::path::absolute(home)
            .unwrap_or(home.to_path_buf())
            .display()
            .to_string(),
    );
    let summary = NextKeySummary {
        file: written.path,
        current_key: written.current.to_hex(),
        next_key: written.next.to_hex(),
        propose_command: format!(
            "scf validator propose rotate --old-key {} --new-key {} --home {home_word}",
            written.current, written.next
        ),
    };
    emit(json, &summary, |summary| {
        println!("next consensus key  {}", summary.next_key);
        println!("written to          {}", summary.file.display());
        println!("replaces            {}", summary.current_key);
        println!(
            "Propose the rotation (the node keeps signing with its current key until the rotation is in force, then with this one):"
        );
        println!("  {}", summary.propose_command);
    });
    Ok(())
}

fn parse_change(change: ChangeArgs) -> anyhow::Result<(ValidatorChange, ValidatorSigning)> {
    Ok(match change {
        ChangeArgs::Add {
            name,
            consensus_key,
            peer_id,
            address,
            power,
            signing,
        } => (
            ValidatorChange::Add {
                name,
                consensus_key: parse::public_key(&consensus_key)?,
                peer_id: peer_id.trim().parse::<PeerId>()?,
                address,
                power,
            },
            signing,
        ),
        ChangeArgs::Remove {
            consensus_key,
            signing,
        } => (
            ValidatorChange::Remove {
                consensus_key: parse::public_key(&consensus_key)?,
            },
            signing,
        ),
        ChangeArgs::Power {
            consensus_key,
            power,
            signing,
        } => (
            ValidatorChange::SetPower {
                consensus_key: parse::public_key(&consensus_key)?,
                power,
            },
            signing,
        ),
        ChangeArgs::Rotate {
            old_key,
            new_key,
            signing,
        } => (
            ValidatorChange::RotateKey {
                old_key: parse::public_key(&old_key)?,
                new_key: parse::public_key(&new_key)?,
            },
            signing,
        ),
    })
}

fn list(target: &Target, height: Option<u64>, json: bool) -> anyhow::Result<()> {
    target.trust.check(&target.client)?;
    let view = match target.client.validators(height) {
        Ok(view) => view,
        Err(NodeError::Refused {
            status: 404 | 400,
            detail,
            ..
        }) => return Err(explain::not_found(detail)),
        Err(error) => return Err(error.into()),
    };
    emit(json, &view, |view| {
        println!(
            "validator set at height {} (epoch {}, from height {}{}): total power {}, quorum {}",
            view.height,
            view.epoch,
            view.from_height,
            if view.is_final {
                ""
            } else {
                ", may still change"
            },
            view.total_power,
            view.quorum_power
        );
        for validator in &view.validators {
            println!(
                "  {:<16} power {:<4} key {}  peer {}  {}",
                validator.name,
                validator.power,
                validator.consensus_key,
                validator.peer_id,
                validator.address
            );
        }
        for later in &view.scheduled {
            println!(
                "scheduled: epoch {} from height {} with {} validators",
                later.epoch,
                later.from_height,
                later.validators.len()
            );
        }
    });
    Ok(())
}

fn proposals(target: &Target, json: bool) -> anyhow::Result<()> {
    target.trust.check(&target.client)?;
    let view = target.client.validator_proposals()?;
    emit(json, &view, |view| {
        if view.proposals.is_empty() {
            println!("no open proposals (at height {})", view.committed);
        }
        for proposal in &view.proposals {
            print_standing(proposal);
        }
    });
    Ok(())
}

fn print_standing(proposal: &ProposalView) {
    println!("proposal {} ({})", proposal.id, proposal.status);
    println!("  change   {:?}", proposal.change);
    println!(
        "  approved {} of the {} power needed, by {} validators",
        proposal.approved_power,
        proposal.needed_power,
        proposal.approvals.len()
    );
    match (proposal.adopted_at, proposal.effective_from) {
        (Some(at), Some(from)) => println!("  adopted at height {at}, in force from height {from}"),
        _ => println!("  open until height {}", proposal.expires_at),
    }
}
