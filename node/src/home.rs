//! A node's home directory and its `config.toml`.
//!
//! ```text
//! HOME/config.toml      listen and API addresses, data directory, log level, mempool limits
//! HOME/genesis.json     the consortium's genesis file (the same on every node)
//! HOME/node.key         the libp2p identity (a genesis key file; its peer id is in genesis)
//! HOME/validator.key    the consensus signing key; absent on an observer
//! HOME/safety.json      the last signed consensus step (see `driver::safety_file`)
//! HOME/node.pid         the running node's process id (see `crate::pid_file`)
//! HOME/data/ledger/     the RocksDB store
//! ```
//!
//! Configuration precedence: the file, then flags ([`Overrides`]); the result
//! is validated once into [`NodeConfig`]. This module reads and writes files;
//! it does not start anything.
//!
//! Two checks here keep a validator from becoming a second signer:
//!
//! - its `node.key` must be the one whose peer id genesis lists for its
//!   validator key. Running a validator key from a copy of its home with
//!   another node key (a "standby" machine) is how one validator ends up
//!   signing twice; the listed peer id ties the key to one home.
//! - the safety record lives beside `validator.key`, not under the data
//!   directory, so wiping `data/` to resync keeps the double-sign guard.
//!   A record left at the old place, `DATA_DIR/safety.json`, is moved on
//!   load ([`SafetyFileMigration`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crypto::Keypair;
use genesis::Genesis;
use serde::{Deserialize, Serialize};

use crate::mempool::MempoolConfig;
use crate::network::identity::peer_id_of;

mod init;

pub use init::{
    DEFAULT_LISTEN, InitializedHome, NewNode, NextKeyExists, NextValidatorKey, init_home,
    write_next_validator_key,
};

pub const CONFIG_FILE: &str = "config.toml";
pub const GENESIS_FILE: &str = "genesis.json";
pub const NODE_KEY_FILE: &str = "node.key";
pub const VALIDATOR_KEY_FILE: &str = "validator.key";
/// The consensus key a validator rotates to: put in the home before the
/// rotation is proposed, it signs from the height the rotation takes
/// effect at (see `driver`).
pub const NEXT_VALIDATOR_KEY_FILE: &str = "validator.next.key";
pub const SAFETY_FILE: &str = "safety.json";

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
    /// `[api_limits]`: timeouts, connection and request caps, body and page sizes.
    #[serde(default)]
    pub api_limits: crate::api::limits::ApiLimits,
    /// What peers may cost this node (connections, sync rate, queues).
    #[serde(default)]
    pub p2p: crate::network::P2pLimits,
    /// `[events]`: how much of the event feed the node keeps.
    #[serde(default)]
    pub events: EventsConfig,
}

/// `[events]` in `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Keep the events of the newest this many blocks; older ones are
    /// deleted and their cursors answered 410 `cursor_expired`. Absent:
    /// keep every event.
    pub retain_blocks: Option<u64>,
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
            api_limits: crate::api::limits::ApiLimits::default(),
            p2p: crate::network::P2pLimits::default(),
            events: EventsConfig::default(),
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
    #[error("cannot read {}: {error}; is {} a node home (made by `scf node init`, `scf genesis new` or `scf testnet`)?", path.display(), home.display())]
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
    /// Boxed: the paths and peer ids would make every `HomeError` large.
    #[error(transparent)]
    WrongNodeKey(Box<NodeKeyMismatch>),
    #[error(
        "{} is a node home already (it holds {}); refusing to write into it, because a key once overwritten is lost. Give --home a new directory, or run the node that is there with `scf node start --home {}`",
        home.display(), found.display(), home.display()
    )]
    AlreadyAHome { home: PathBuf, found: PathBuf },
    #[error("--{flag} {address:?} is not usable: {reason}")]
    BadAddress {
        flag: &'static str,
        address: String,
        reason: String,
    },
    #[error("the chain would refuse to add this node as a validator: {reason}")]
    NotProposable { reason: String },
    #[error(
        "{} has no validator key ({} is missing): an observer has no consensus key to rotate. Pass the home of a validator node",
        home.display(), path.display()
    )]
    NoValidatorKey { home: PathBuf, path: PathBuf },
    #[error(transparent)]
    NextKeyExists(Box<NextKeyExists>),
    #[error(
        "this home has two safety records, {} and {} (the old place, under the data directory), and they differ; refusing to start because the wrong one could let this validator sign twice. Keep the one with the higher height/round/step (they are JSON) at {} and remove the other",
        home_record.display(), data_record.display(), home_record.display()
    )]
    TwoSafetyRecords {
        home_record: PathBuf,
        data_record: PathBuf,
    },
    #[error(
        "cannot move the safety record from {} to {}: {error}; move it by hand before starting the node",
        from.display(), to.display()
    )]
    SafetyMigration {
        from: PathBuf,
        to: PathBuf,
        error: std::io::Error,
    },
}

/// A validator home whose `node.key` is not the peer genesis lists for
/// its validator key.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} has peer id {actual}, but {} lists peer id {listed} for validator {validator} (the key in {}); refusing to start. A validator key must run from one home only, the one whose node.key genesis lists: a second home with the same validator.key is a second signer, and the two can sign conflicting votes. Start this validator from its own home, or if this is that home, put its original node.key back",
    node_key_path.display(), genesis_path.display(), validator_key_path.display()
)]
pub struct NodeKeyMismatch {
    pub validator: String,
    pub validator_key_path: PathBuf,
    pub node_key_path: PathBuf,
    pub genesis_path: PathBuf,
    pub listed: String,
    pub actual: String,
}

/// What loading a home did about a safety record left under the data
/// directory by an earlier version (the record now lives in the home).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SafetyFileMigration {
    /// `from` was moved to `to`.
    Moved { from: PathBuf, to: PathBuf },
    /// `from` was identical to the record at `to`, and was removed.
    RemovedDuplicate { from: PathBuf, to: PathBuf },
}

impl std::fmt::Display for SafetyFileMigration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SafetyFileMigration::Moved { from, to } => write!(
                f,
                "moved the safety record from {} to {} (it now lives outside the data directory, so wiping data/ keeps it)",
                from.display(),
                to.display()
            ),
            SafetyFileMigration::RemovedDuplicate { from, to } => write!(
                f,
                "removed {}, an old copy identical to the safety record {}",
                from.display(),
                to.display()
            ),
        }
    }
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
    /// Set when loading moved an old safety record; the caller logs it.
    pub safety_migration: Option<SafetyFileMigration>,
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
        if config.events.retain_blocks == Some(0) {
            return Err(HomeError::Config {
                path: config_path.clone(),
                error: "[events] retain_blocks = 0 would keep no event; leave it out to keep every event".into(),
            });
        }
        config
            .api_limits
            .validate()
            .map_err(|error| HomeError::Config {
                path: config_path.clone(),
                error,
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
        let genesis_path = home.join(GENESIS_FILE);
        let genesis = Genesis::load(&genesis_path)?;
        let node_key_path = home.join(NODE_KEY_FILE);
        let node_key = genesis::read_key_file(&node_key_path)?;
        let validator_path = home.join(VALIDATOR_KEY_FILE);
        let validator_key = if validator_path.exists() {
            let key = genesis::read_key_file(&validator_path)?;
            // A key genesis does not list is a validator-in-waiting: the
            // node follows the chain as an observer and votes from the
            // height at which governance adds (or rotates to) that key.
            if let Some(listed) = genesis
                .validators
                .iter()
                .find(|validator| validator.public_key == key.public())
            {
                let actual = peer_id_of(&node_key);
                let matches = match listed.peer_id.parse::<libp2p::PeerId>() {
                    Ok(peer_id) => peer_id == actual,
                    Err(_) => listed.peer_id == actual.to_string(),
                };
                if !matches {
                    return Err(HomeError::WrongNodeKey(Box::new(NodeKeyMismatch {
                        validator: listed.name.clone(),
                        validator_key_path: validator_path,
                        node_key_path,
                        genesis_path,
                        listed: listed.peer_id.clone(),
                        actual: actual.to_string(),
                    })));
                }
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
        let safety_migration =
            migrate_safety_file(&data_dir.join(SAFETY_FILE), &home.join(SAFETY_FILE))?;
        Ok(NodeConfig {
            home: home.to_path_buf(),
            config,
            genesis,
            node_key,
            validator_key,
            data_dir,
            safety_migration,
        })
    }

    pub fn ledger_dir(&self) -> PathBuf {
        self.data_dir.join("ledger")
    }

    /// `HOME/safety.json`, beside `validator.key`: outside the data
    /// directory, so that wiping the data to resync keeps the record.
    pub fn safety_file(&self) -> PathBuf {
        self.home.join(SAFETY_FILE)
    }
}

/// Moves a safety record from the data directory (`old`, where earlier
/// versions kept it) to the home (`new`). Refuses when both exist and
/// differ: which one is newer cannot be told safely here.
fn migrate_safety_file(old: &Path, new: &Path) -> Result<Option<SafetyFileMigration>, HomeError> {
    if !old.exists() {
        return Ok(None);
    }
    let failed = |error| HomeError::SafetyMigration {
        from: old.to_path_buf(),
        to: new.to_path_buf(),
        error,
    };
    if new.exists() {
        // A data directory configured as the home itself: one file.
        if std::fs::canonicalize(old).map_err(failed)?
            == std::fs::canonicalize(new).map_err(failed)?
        {
            return Ok(None);
        }
        let old_bytes = std::fs::read(old).map_err(failed)?;
        let new_bytes = std::fs::read(new).map_err(failed)?;
        if old_bytes != new_bytes {
            return Err(HomeError::TwoSafetyRecords {
                home_record: new.to_path_buf(),
                data_record: old.to_path_buf(),
            });
        }
        std::fs::remove_file(old).map_err(failed)?;
        return Ok(Some(SafetyFileMigration::RemovedDuplicate {
            from: old.to_path_buf(),
            to: new.to_path_buf(),
        }));
    }
    move_durably(old, new).map_err(failed)?;
    Ok(Some(SafetyFileMigration::Moved {
        from: old.to_path_buf(),
        to: new.to_path_buf(),
    }))
}

/// Renames `from` to `to`; across file systems (a data directory on another
/// disk), copies to a temporary file beside `to`, syncs it, renames it into
/// place and only then removes `from`. Either way the directories are synced,
/// so after a crash the record is at one place or both, never lost (and
/// "both, identical" is resolved on the next load).
fn move_durably(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Err(error) = std::fs::rename(from, to) {
        if error.kind() != std::io::ErrorKind::CrossesDevices {
            return Err(error);
        }
        let temporary = to.with_extension("json.migrating");
        std::fs::copy(from, &temporary)?;
        std::fs::File::open(&temporary)?.sync_all()?;
        std::fs::rename(&temporary, to)?;
        sync_directory(to)?;
        std::fs::remove_file(from)?;
    }
    sync_directory(to)?;
    sync_directory(from)
}

fn sync_directory(file: &Path) -> std::io::Result<()> {
    match file.parent() {
        Some(directory) if !directory.as_os_str().is_empty() => {
            std::fs::File::open(directory)?.sync_all()
        }
        _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::localnet::{self, LocalNetSpec};

    /// One validator and one observer, written into a temporary directory.
    fn local_net() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let net = localnet::create(
            dir.path(),
            &LocalNetSpec {
                chain_name: "home-test".to_string(),
                validators: 1,
                observers: 1,
                participants: vec![("operator".to_string(), vec![ledger::Role::Operator])],
                consensus: localnet::local_consensus(),
            },
        )
        .expect("local net");
        let validator = net.nodes[0].home.clone();
        let observer = net.nodes[1].home.clone();
        (dir, validator, observer)
    }

    fn load(home: &Path) -> Result<NodeConfig, HomeError> {
        NodeConfig::load(home, &Overrides::default())
    }

    fn replace_node_key(home: &Path) -> Keypair {
        let key = Keypair::generate();
        genesis::write_key_file(home.join(NODE_KEY_FILE), &key, genesis::Overwrite::Replace)
            .expect("replace node.key");
        key
    }

    #[test]
    fn a_validator_home_with_the_listed_node_key_loads() {
        let (_dir, validator, _observer) = local_net();
        let config = load(&validator).expect("loads");
        assert!(config.validator_key.is_some());
        assert_eq!(config.safety_migration, None);
    }

    #[test]
    fn a_validator_whose_node_key_is_not_the_listed_peer_refuses_to_start() {
        let (_dir, validator, _observer) = local_net();
        let listed = peer_id_of(&load(&validator).expect("loads").node_key).to_string();
        let stranger = peer_id_of(&replace_node_key(&validator)).to_string();
        let error = load(&validator).expect_err("another node key is refused");
        let HomeError::WrongNodeKey(mismatch) = &error else {
            panic!("expected WrongNodeKey, got {error}");
        };
        assert_eq!(mismatch.listed, listed);
        assert_eq!(mismatch.actual, stranger);
        assert_eq!(mismatch.validator, "validator-0");
        let message = error.to_string();
        for part in [
            listed.as_str(),
            stranger.as_str(),
            "node.key",
            "genesis.json",
            "validator.key",
            "one home only",
            "second signer",
        ] {
            assert!(message.contains(part), "{part:?} missing: {message}");
        }
    }

    #[test]
    fn an_observer_with_an_unlisted_node_key_still_loads() {
        // The network's allow-list keeps it out; nothing here can sign twice.
        let (_dir, _validator, observer) = local_net();
        replace_node_key(&observer);
        let config = load(&observer).expect("loads");
        assert!(config.validator_key.is_none());
    }

    #[test]
    fn the_safety_record_lives_in_the_home_and_survives_wiping_the_data() {
        let (_dir, validator, _observer) = local_net();
        let config = load(&validator).expect("loads");
        assert_eq!(config.safety_file(), validator.join(SAFETY_FILE));
        assert!(!config.safety_file().starts_with(&config.data_dir));
        std::fs::create_dir_all(config.ledger_dir()).expect("data dir");
        std::fs::write(config.safety_file(), b"{\"height\":7}").expect("record");
        std::fs::remove_dir_all(&config.data_dir).expect("wipe data/");
        let again = load(&validator).expect("loads after the wipe");
        assert_eq!(
            std::fs::read(again.safety_file()).expect("the record is still there"),
            b"{\"height\":7}"
        );
    }

    #[test]
    fn a_safety_record_under_the_data_directory_is_moved_into_the_home() {
        let (_dir, validator, _observer) = local_net();
        let old = validator.join("data").join(SAFETY_FILE);
        std::fs::create_dir_all(old.parent().expect("parent")).expect("data dir");
        std::fs::write(&old, b"{\"height\":3}").expect("old record");
        let config = load(&validator).expect("loads");
        assert_eq!(
            config.safety_migration,
            Some(SafetyFileMigration::Moved {
                from: old.clone(),
                to: validator.join(SAFETY_FILE),
            })
        );
        assert!(!old.exists(), "the old record is gone");
        assert_eq!(
            std::fs::read(config.safety_file()).expect("moved"),
            b"{\"height\":3}"
        );
        // Loading again finds nothing left to move.
        assert_eq!(load(&validator).expect("loads").safety_migration, None);
    }

    #[test]
    fn two_different_safety_records_refuse_to_start_and_identical_ones_merge() {
        let (_dir, validator, _observer) = local_net();
        let old = validator.join("data").join(SAFETY_FILE);
        let new = validator.join(SAFETY_FILE);
        std::fs::create_dir_all(old.parent().expect("parent")).expect("data dir");
        std::fs::write(&old, b"{\"height\":3}").expect("old record");
        std::fs::write(&new, b"{\"height\":4}").expect("new record");
        let error = load(&validator).expect_err("ambiguous");
        assert!(
            matches!(&error, HomeError::TwoSafetyRecords { home_record, data_record }
                if *home_record == new && *data_record == old),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains(&old.display().to_string()), "{message}");
        assert!(message.contains(&new.display().to_string()), "{message}");
        assert!(old.exists() && new.exists(), "nothing was touched");

        std::fs::write(&old, b"{\"height\":4}").expect("same record");
        let config = load(&validator).expect("identical records are one");
        assert_eq!(
            config.safety_migration,
            Some(SafetyFileMigration::RemovedDuplicate {
                from: old.clone(),
                to: new.clone(),
            })
        );
        assert!(!old.exists());
        assert_eq!(std::fs::read(&new).expect("kept"), b"{\"height\":4}");
    }

    #[test]
    fn a_data_directory_that_is_the_home_keeps_its_one_record() {
        let (_dir, validator, _observer) = local_net();
        std::fs::write(validator.join(SAFETY_FILE), b"{\"height\":5}").expect("record");
        let overrides = Overrides {
            data_dir: Some(PathBuf::from(".")),
            ..Overrides::default()
        };
        let config = NodeConfig::load(&validator, &overrides).expect("loads");
        assert_eq!(config.safety_migration, None);
        assert!(validator.join(SAFETY_FILE).exists());
    }
}
