//! Writing a new network to disk: keys, a genesis file and one home directory
//! per validator, all on 127.0.0.1 with free ports. Used by `scf genesis new`
//! and `scf testnet`, on top of `node::localnet` (which writes the homes).
//!
//! ```text
//! DIR/genesis.json
//! DIR/keys/NAME.key          one per participant registered in genesis (0600)
//! DIR/validator-0/ ...       node homes: config.toml, genesis.json, node.key, validator.key
//! ```
//!
//! This module writes files only; starting nodes is `testnet.rs`'s job.
//! Currency: CNY with 2 decimals (what `node::localnet` writes).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use genesis::{ConsensusParams, Genesis};
use ledger::Role;
use node::localnet::{self, LocalNetSpec};

pub const GENESIS_FILE: &str = "genesis.json";
pub const KEYS_DIR: &str = "keys";

/// What to put in a new network.
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    pub chain_name: String,
    pub validators: usize,
    /// (name, roles), registered in genesis, each with a key file.
    pub participants: Vec<(&'static str, Vec<Role>)>,
    pub consensus: ConsensusParams,
}

/// One validator as written.
#[derive(Clone, Debug)]
pub struct ValidatorHome {
    pub name: String,
    pub home: PathBuf,
    pub api: SocketAddr,
}

/// What was written.
#[derive(Debug)]
pub struct Network {
    pub genesis: Genesis,
    pub validators: Vec<ValidatorHome>,
    /// (name, key file).
    pub key_files: Vec<(String, PathBuf)>,
}

pub fn validator_name(index: usize) -> String {
    format!("validator-{index}")
}

pub fn key_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(KEYS_DIR).join(format!("{name}.key"))
}

/// Writes a new network into `dir`, which must not hold a genesis yet.
pub fn write_network(dir: &Path, spec: &NetworkSpec) -> anyhow::Result<Network> {
    if spec.validators == 0 {
        bail!("a network needs at least one validator (--validators 1 or more)");
    }
    let genesis_path = dir.join(GENESIS_FILE);
    if genesis_path.exists() {
        bail!(
            "{} already exists; choose another directory or remove it to start a new chain",
            genesis_path.display()
        );
    }
    let keys_dir = dir.join(KEYS_DIR);
    std::fs::create_dir_all(&keys_dir)
        .with_context(|| format!("creating {}", keys_dir.display()))?;
    let participants = spec
        .participants
        .iter()
        .map(|(name, roles)| (name.to_string(), roles.clone()))
        .collect();
    let net = localnet::create(
        dir,
        &LocalNetSpec {
            chain_name: spec.chain_name.clone(),
            validators: spec.validators,
            observers: 0,
            participants,
            consensus: spec.consensus,
        },
    )?;
    net.genesis.save(&genesis_path)?;
    let mut key_files = Vec::new();
    for (name, key) in &net.participant_keys {
        let path = key_file(dir, name);
        genesis::write_key_file(&path, key, genesis::Overwrite::Refuse)?;
        key_files.push((name.clone(), path));
    }
    Ok(Network {
        genesis: net.genesis,
        validators: net
            .nodes
            .into_iter()
            .map(|node| ValidatorHome {
                name: node.name,
                home: node.home,
                api: node.api,
            })
            .collect(),
        key_files,
    })
}

/// Reads back a network written by [`write_network`] (to resume it).
pub fn read_network(dir: &Path) -> anyhow::Result<Network> {
    let genesis = Genesis::load(dir.join(GENESIS_FILE))?;
    let mut validators = Vec::new();
    for index in 0..genesis.validators.len() {
        let name = validator_name(index);
        let home = dir.join(&name);
        let config = node::home::NodeConfig::load(&home, &node::home::Overrides::default())
            .with_context(|| format!("reading the home of {name}"))?;
        if let Some(migration) = &config.safety_migration {
            eprintln!("note: {name}: {migration}");
        }
        if config.genesis.chain_id() != genesis.chain_id() {
            bail!(
                "{} has a different genesis than {}; the directory mixes two chains",
                home.display(),
                dir.join(GENESIS_FILE).display()
            );
        }
        validators.push(ValidatorHome {
            name,
            home,
            api: config.config.api,
        });
    }
    let key_files = genesis
        .participants
        .iter()
        .map(|participant| (participant.name.clone(), key_file(dir, &participant.name)))
        .filter(|(_, path)| path.exists())
        .collect();
    Ok(Network {
        genesis,
        validators,
        key_files,
    })
}
