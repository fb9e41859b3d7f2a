//! A node's home directory and its `config.toml`.
//!
//! ```text
//! HOME/config.toml      listen and API addresses, data directory, log level, mempool limits
//! HOME/genesis.json     the consortium's genesis file (the same on every node)
//! HOME/node.key         the libp2p identity (a genesis key file; its peer id is in genesis)
//! HOME/validator.key    the consensus signing key; absent on an observer
//! HOME/data/ledger/     the RocksDB store
//! HOME/data/safety.json the last signed consensus step (see `safety_file`)
//! ```
//!
//! Configuration precedence: the file, then flags ([`Overrides`]); the result
//! is validated once into [`NodeConfig`]. This module reads and writes files;
//! it does not start anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crypto::Keypair;
use genesis::Genesis;
use serde::{Deserialize, Serialize};

use crate::mempool::MempoolConfig;

pub const CONFIG_FILE: &str = "config.toml";
pub const GENESIS_FILE: &str = "genesis.json";
pub const NODE_KEY_FILE: &str = "node.key";
pub const VALIDATOR_KEY_FILE: &str = "validator.key";

/// The contents of `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// A name for logs and `/v1/status`; usually the genesis name of the node.
    #[serde(default)]
    pub name: String,
    /// libp2p listen multiaddr, e.g. "/ip4/0.0.0.0/tcp/26656".
    pub listen: String,
    /// HTTP API address; loopback by default.
    #[serde(default = "default_api")]
    pub api: SocketAddr,
    /// Relative paths are relative to the home directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// A tracing filter, e.g. "info" or "node=debug,info".
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Logs as JSON lines instead of text.
    #[serde(default)]
    pub log_json: bool,
    #[serde(default)]
    pub mempool: MempoolConfig,
}

fn default_api() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8700))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_log_level() -> String {
    "info".to_string()
}

impl ConfigFile {
    pub fn new(name: &str, listen: &str, api: SocketAddr) -> ConfigFile {
        ConfigFile {
            name: name.to_string(),
            listen: listen.to_string(),
            api,
            data_dir: default_data_dir(),
            log_level: default_log_level(),
            log_json: false,
            mempool: MempoolConfig::default(),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }
}

/// Command-line flags that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub api: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
}

/// Why a home directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot read {}: {error}; is {} a node home (made by `scf genesis new` or `scf testnet`)?", path.display(), home.display())]
    Read {
        path: PathBuf,
        home: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not a valid config: {error}", path.display())]
    Config { path: PathBuf, error: String },
    #[error("genesis: {0}")]
    Genesis(#[from] genesis::GenesisError),
    #[error("key file: {0}")]
    Key(#[from] genesis::KeyFileError),
    #[error(
        "{} holds validator key {key}, which is not a validator in genesis; remove the file to run as an observer, or fix genesis",
        path.display()
    )]
    NotAValidator {
        path: PathBuf,
        key: crypto::PublicKey,
    },
}

/// Everything a node needs to start, read from its home and validated.
#[derive(Debug)]
pub struct NodeConfig {
    pub home: PathBuf,
    pub config: ConfigFile,
    pub genesis: Genesis,
    pub node_key: Keypair,
    /// `None` for an observer.
    pub validator_key: Option<Keypair>,
    /// Absolute.
    pub data_dir: PathBuf,
}

impl NodeConfig {
    /// Reads the home directory and applies the flags.
    pub fn load(home: &Path, overrides: &Overrides) -> Result<NodeConfig, HomeError> {
        let config_path = home.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config_path).map_err(|error| HomeError::Read {
            path: config_path.clone(),
            home: home.to_path_buf(),
            error,
        })?;
        let mut config: ConfigFile = toml::from_str(&text).map_err(|error| HomeError::Config {
            path: config_path.clone(),
            error: error.to_string(),
        })?;
        if let Some(listen) = &overrides.listen {
            config.listen = listen.clone();
        }
        if let Some(api) = overrides.api {
            config.api = api;
        }
        if let Some(data_dir) = &overrides.data_dir {
            config.data_dir = data_dir.clone();
        }
        if let Some(level) = &overrides.log_level {
            config.log_level = level.clone();
        }
        let genesis = Genesis::load(home.join(GENESIS_FILE))?;
        let node_key = genesis::read_key_file(home.join(NODE_KEY_FILE))?;
        let validator_path = home.join(VALIDATOR_KEY_FILE);
        let validator_key = if validator_path.exists() {
            let key = genesis::read_key_file(&validator_path)?;
            if !genesis
                .validators
                .iter()
                .any(|validator| validator.public_key == key.public())
            {
                return Err(HomeError::NotAValidator {
                    path: validator_path,
                    key: key.public(),
                });
            }
            Some(key)
        } else {
            None
        };
        let data_dir = if config.data_dir.is_absolute() {
            config.data_dir.clone()
        } else {
            home.join(&config.data_dir)
        };
        Ok(NodeConfig {
            home: home.to_path_buf(),
            config,
            genesis,
            node_key,
            validator_key,
            data_dir,
        })
    }

    pub fn ledger_dir(&self) -> PathBuf {
        self.data_dir.join("ledger")
    }

    pub fn safety_file(&self) -> PathBuf {
        self.data_dir.join("safety.json")
    }
}

/// Writes a new home: config, genesis, node key and (for a validator) the
/// validator key. Refuses to overwrite existing key files.
pub fn write_home(
    home: &Path,
    config: &ConfigFile,
    genesis: &Genesis,
    node_key: &Keypair,
    validator_key: Option<&Keypair>,
) -> Result<(), HomeError> {
    std::fs::create_dir_all(home).map_err(|error| HomeError::Write {
        path: home.to_path_buf(),
        error,
    })?;
    let config_path = home.join(CONFIG_FILE);
    std::fs::write(&config_path, config.to_toml()).map_err(|error| HomeError::Write {
        path: config_path,
        error,
    })?;
    genesis.save(home.join(GENESIS_FILE))?;
    genesis::write_key_file(
        home.join(NODE_KEY_FILE),
        node_key,
        genesis::Overwrite::Refuse,
    )?;
    if let Some(key) = validator_key {
        genesis::write_key_file(
            home.join(VALIDATOR_KEY_FILE),
            key,
            genesis::Overwrite::Refuse,
        )?;
    }
    Ok(())
}
