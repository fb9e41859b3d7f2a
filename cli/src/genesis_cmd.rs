//! `scf genesis new | add-participant | validate`: defining a consortium
//! chain before its first start.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use genesis::{Genesis, InitialParticipant};
use ledger::Role;
use serde::Serialize;

use crate::explain;
use crate::output::emit;
use crate::parse;
use crate::setup::{self, NetworkSpec};

#[derive(Subcommand, Debug)]
pub enum GenesisCommand {
    /// Write a genesis for N validators on 127.0.0.1 (free ports), one home
    /// directory per validator (DIR/validator-0, ...) and an operator key
    /// (DIR/keys/operator.key).
    New {
        /// The chain's name, e.g. acme-supply-chain.
        #[arg(long)]
        chain: String,
        /// How many validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// The directory to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Register a participant in a genesis file before the chain starts
    /// (this changes the chain id). Node homes next to the file are updated too.
    /// The genesis file to edit is the global `--genesis FILE`.
    AddParticipant {
        #[arg(long)]
        name: String,
        /// operator, bank, core_enterprise (or core), supplier, auditor; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The participant's public key (hex) or key file.
        #[arg(long)]
        key: String,
    },
    /// Check a genesis file and print its chain id.
    Validate {
        /// The genesis file.
        file: PathBuf,
    },
}

#[derive(Serialize)]
struct GenesisSummary {
    file: PathBuf,
    chain_id: String,
    chain_name: String,
    currency_code: String,
    currency_decimals: u8,
    validators: Vec<String>,
    participants: Vec<ParticipantSummary>,
    /// Node homes written or updated.
    homes: Vec<PathBuf>,
}

#[derive(Serialize)]
struct ParticipantSummary {
    name: String,
    public_key: String,
    roles: Vec<String>,
}

impl GenesisSummary {
    fn new(file: &Path, genesis: &Genesis, homes: Vec<PathBuf>) -> GenesisSummary {
        GenesisSummary {
            file: file.to_path_buf(),
            chain_id: genesis.chain_id().to_string(),
            chain_name: genesis.chain_name.clone(),
            currency_code: genesis.currency_code.clone(),
            currency_decimals: genesis.currency_decimals,
            validators: genesis.validators.iter().map(|v| v.name.clone()).collect(),
            participants: genesis
                .participants
                .iter()
                .map(|p| ParticipantSummary {
                    name: p.name.clone(),
                    public_key: p.public_key.to_hex(),
                    roles: p.roles.clone(),
                })
                .collect(),
            homes,
        }
    }

    fn print(&self) {
        println!("genesis   {}", self.file.display());
        println!("chain     {} ({})", self.chain_name, self.chain_id);
        println!(
            "currency  {} with {} decimals",
            self.currency_code, self.currency_decimals
        );
        println!("validators {}", self.validators.join(", "));
        for participant in &self.participants {
            println!(
                "participant {:<12} {}  {}",
                participant.name,
                participant.public_key,
                participant.roles.join(",")
            );
        }
        for home in &self.homes {
            println!("home      {}", home.display());
        }
    }
}

/// `genesis_file` is the global `--genesis FILE` (or `SCF_GENESIS`), the
/// file `add-participant` edits.
pub fn run(command: GenesisCommand, genesis_file: Option<&Path>, json: bool) -> anyhow::Result<()> {
    match command {
        GenesisCommand::New {
            chain,
            validators,
            out,
        } => {
            let spec = NetworkSpec {
                chain_name: chain,
                validators,
                participants: vec![("operator", vec![Role::Operator])],
                consensus: genesis::ConsensusParams::default(),
            };
            let network = setup::write_network(&out, &spec)?;
            let homes = network.validators.iter().map(|v| v.home.clone()).collect();
            let summary =
                GenesisSummary::new(&out.join(setup::GENESIS_FILE), &network.genesis, homes);
            emit(json, &summary, |summary| {
                summary.print();
                println!(
                    "operator key {}",
                    setup::key_file(&out, "operator").display()
                );
                println!("start each validator with `scf node start --home DIR/validator-N`");
            });
        }
        GenesisCommand::AddParticipant { name, roles, key } => {
            let path = genesis_file
                .ok_or_else(|| {
                    explain::usage(
                        "`scf genesis add-participant` edits the genesis file given with --genesis FILE; pass it",
                    )
                })?
                .to_path_buf();
            let mut genesis = Genesis::load(&path)?;
            let public_key = parse::public_key(&key)?;
            let roles = roles
                .iter()
                .map(|role| {
                    Role::parse(role)
                        .map(|role| role.name().to_string())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "unknown role {role:?}; roles are {}",
                                genesis::ROLE_NAMES.join(", ")
                            )
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let homes = sibling_homes(&path)?;
            genesis.participants.push(InitialParticipant {
                name,
                public_key,
                roles,
            });
            genesis.save(&path)?;
            for home in &homes {
                genesis.save(home.join(node::home::GENESIS_FILE))?;
            }
            emit(json, &GenesisSummary::new(&path, &genesis, homes), |s| {
                s.print();
                println!(
                    "the chain id changed: give this genesis.json to every node before its first start"
                );
            });
        }
        GenesisCommand::Validate { file } => {
            let genesis = Genesis::load(&file)?;
            emit(
                json,
                &GenesisSummary::new(&file, &genesis, Vec::new()),
                |s| {
                    s.print();
                    println!("valid");
                },
            );
        }
    }
    Ok(())
}

/// Node homes beside a genesis file (as `scf genesis new` lays them out),
/// which must get the edited genesis too. Refuses once a node has started:
/// its chain id is fixed from then on.
fn sibling_homes(genesis_path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = match genesis_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut homes = Vec::new();
    let entries = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries.flatten() {
        let home = entry.path();
        if home.join(node::home::CONFIG_FILE).is_file()
            && home.join(node::home::GENESIS_FILE).is_file()
        {
            // A safety record without data: a node that voted, then had its data wiped.
            if home.join("data").exists() || home.join(node::home::SAFETY_FILE).exists() {
                bail!(
                    "node {} has already started on this genesis; a running chain's participants are registered with `scf participant register`",
                    home.display()
                );
            }
            homes.push(home);
        }
    }
    homes.sort();
    Ok(homes)
}
