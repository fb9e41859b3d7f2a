//! What the CLI trusts about a chain: the genesis it signs against.
//!
//! The chain id every transaction is signed for, and the currency decimals
//! that turn `1000.00` into minor units, come from a genesis the user
//! trusts, never from a node's word: a node's `/v1/status` is a claim, and a
//! node reporting 8 decimals instead of 2 would make the CLI sign an amount
//! 10⁶ times larger. The trusted genesis is, in this order:
//!
//! 1. `--genesis FILE` (or `SCF_GENESIS`): a file the user got from the
//!    consortium. A node that serves another chain is refused.
//! 2. Trust on first use, per node URL, like ssh's `known_hosts`: the first
//!    time the CLI talks to a node it fetches `GET /v1/genesis`, checks that
//!    the file hashes to the chain id the node reports, and pins both:
//!    `CONFIG/scf/genesis/<chain id>.json` and `CONFIG/scf/nodes/<url>.json`
//!    (CONFIG is `$XDG_CONFIG_HOME`, else `~/.config`). It says so with one
//!    line on stderr (a JSON line with `--json`). From then on a node at that
//!    URL must report the pinned chain id.
//!
//! Either way the node's status must agree with the trusted genesis (chain
//! id, name, currency and decimals), or it is refused before anything is
//! signed or sent. A genesis fetched on first use can only describe the chain
//! id it hashes to, and signatures cover the chain id, so a node that lies
//! from the first contact gets signatures valid only on its own chain.
//!
//! This module does not decide what an audit trusts (see `audit`): an audit
//! must not take the genesis from the node it audits, not even on first use.

use std::path::{Path, PathBuf};

use crypto::ChainId;
use genesis::Genesis;
use node::api::types::StatusView;
use serde::{Deserialize, Serialize};

use crate::client::NodeClient;
use crate::explain::refused;

/// Why the CLI refuses a node or cannot establish what to trust.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot use --genesis {}: {error}", path.display())]
    GenesisFile {
        path: PathBuf,
        error: genesis::GenesisError,
    },
    #[error(
        "the node at {url} serves chain {node_chain}, but {trusted_from} is chain {trusted_chain}; {fix}"
    )]
    OtherChain {
        url: String,
        node_chain: ChainId,
        trusted_chain: ChainId,
        /// "your --genesis FILE", "the genesis pinned for it in FILE".
        trusted_from: String,
        fix: String,
    },
    #[error(
        "the node at {url} reports {what} {reported}, but the genesis of its chain {chain_id} ({trusted_from}) says {expected}; refusing a node whose status contradicts its chain's genesis"
    )]
    StatusContradictsGenesis {
        url: String,
        chain_id: ChainId,
        trusted_from: String,
        what: &'static str,
        reported: String,
        expected: String,
    },
    #[error(
        "the node at {url} reports chain {reported}, but the genesis it serves (GET /v1/genesis) hashes to chain {served}; refusing to trust a node that contradicts itself"
    )]
    InconsistentNode {
        url: String,
        reported: ChainId,
        served: ChainId,
    },
    #[error(
        "the pinned file {} is damaged or was edited ({reason}); remove it, and the CLI pins the node's genesis again on next use (or pass --genesis FILE)",
        path.display()
    )]
    DamagedPin { path: PathBuf, reason: String },
    #[error(
        "cannot pin the node's genesis: neither XDG_CONFIG_HOME nor HOME is set; pass the chain's genesis with --genesis FILE (or SCF_GENESIS)"
    )]
    NoConfigDir,
    #[error("cannot write {}: {error}; pass --genesis FILE (or SCF_GENESIS) to use a genesis without pinning", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl TrustError {
    /// The error code printed with `--json` and chosen for the exit code.
    pub fn code(&self) -> &'static str {
        match self {
            TrustError::OtherChain { .. } => "other_chain",
            TrustError::StatusContradictsGenesis { .. } | TrustError::InconsistentNode { .. } => {
                "untrusted_node"
            }
            TrustError::GenesisFile { .. }
            | TrustError::DamagedPin { .. }
            | TrustError::NoConfigDir
            | TrustError::Write { .. } => "trust",
        }
    }
}

/// Where the trusted genesis came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustOrigin {
    /// `--genesis FILE` or `SCF_GENESIS`.
    GenesisFile(PathBuf),
    /// Pinned for this node (the pin file), earlier or just now.
    Pinned { pin: PathBuf },
}

impl TrustOrigin {
    fn describe(&self) -> String {
        match self {
            TrustOrigin::GenesisFile(path) => format!("your --genesis {}", path.display()),
            TrustOrigin::Pinned { pin } => {
                format!("the genesis pinned for it in {}", pin.display())
            }
        }
    }
}

/// A genesis the user trusts, and its chain id.
#[derive(Clone, Debug)]
pub struct TrustedChain {
    pub genesis: Genesis,
    pub chain_id: ChainId,
    pub origin: TrustOrigin,
}

impl TrustedChain {
    /// A genesis file the user vouches for.
    pub fn from_file(path: &Path) -> anyhow::Result<TrustedChain> {
        let genesis = Genesis::load(path).map_err(|error| TrustError::GenesisFile {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(TrustedChain {
            chain_id: genesis.chain_id(),
            genesis,
            origin: TrustOrigin::GenesisFile(path.to_path_buf()),
        })
    }

    pub fn decimals(&self) -> u8 {
        self.genesis.currency_decimals
    }

    pub fn currency_code(&self) -> &str {
        &self.genesis.currency_code
    }
}

/// What the user told the CLI to trust, and where it pins what it learns.
#[derive(Clone, Debug)]
pub struct Trust {
    genesis_file: Option<PathBuf>,
    /// `CONFIG/scf`; `None` when neither XDG_CONFIG_HOME nor HOME is set.
    pins: Option<PathBuf>,
    json: bool,
}

/// `CONFIG/scf/nodes/<url>.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodePin {
    node: String,
    chain_id: ChainId,
}

impl Trust {
    /// `--genesis FILE` if given; otherwise pins under the user's config directory.
    pub fn new(genesis_file: Option<PathBuf>, json: bool) -> Trust {
        Trust {
            genesis_file,
            pins: config_dir(),
            json,
        }
    }

    /// Asks the node for its status and checks it against the trusted
    /// genesis (pinning the node's on first use). Nothing else may be asked
    /// of a node, let alone sent to it, before this succeeded.
    pub fn check(&self, client: &NodeClient) -> anyhow::Result<(TrustedChain, StatusView)> {
        // A bad --genesis is reported before any node is asked anything.
        let from_file = match &self.genesis_file {
            Some(path) => Some(TrustedChain::from_file(path)?),
            None => None,
        };
        let status = client.status()?;
        let chain = match from_file {
            Some(chain) => {
                if status.chain_id != chain.chain_id {
                    return Err(other_chain(client, &status, &chain.chain_id, &chain.origin));
                }
                chain
            }
            None => self.pinned(client, &status)?,
        };
        check_status(client, &status, &chain)?;
        Ok((chain, status))
    }

    /// The genesis pinned for this node, or the node's own pinned now.
    fn pinned(&self, client: &NodeClient, status: &StatusView) -> anyhow::Result<TrustedChain> {
        let dir = self.pins.as_ref().ok_or(TrustError::NoConfigDir)?;
        let pin_path = dir.join("nodes").join(pin_file_name(client.url()));
        match std::fs::read(&pin_path) {
            Ok(bytes) => {
                let pin: NodePin =
                    serde_json::from_slice(&bytes).map_err(|error| TrustError::DamagedPin {
                        path: pin_path.clone(),
                        reason: error.to_string(),
                    })?;
                let genesis_path = genesis_file_path(dir, &pin.chain_id);
                let origin = TrustOrigin::Pinned {
                    pin: pin_path.clone(),
                };
                if status.chain_id != pin.chain_id {
                    return Err(other_chain(client, status, &pin.chain_id, &origin));
                }
                let genesis = match load_pinned_genesis(&genesis_path, &pin.chain_id)? {
                    Some(genesis) => genesis,
                    // The genesis file went missing: any genesis that hashes
                    // to the pinned id is the same chain.
                    None => fetch_genesis(client, &pin.chain_id, &genesis_path)?,
                };
                Ok(TrustedChain {
                    genesis,
                    chain_id: pin.chain_id,
                    origin,
                })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.pin_first_use(client, status, dir, pin_path)
            }
            Err(error) => Err(TrustError::DamagedPin {
                path: pin_path,
                reason: error.to_string(),
            }
            .into()),
        }
    }

    fn pin_first_use(
        &self,
        client: &NodeClient,
        status: &StatusView,
        dir: &Path,
        pin_path: PathBuf,
    ) -> anyhow::Result<TrustedChain> {
        let chain_id = status.chain_id;
        let genesis_path = genesis_file_path(dir, &chain_id);
        let genesis = match load_pinned_genesis(&genesis_path, &chain_id)? {
            Some(genesis) => genesis,
            None => fetch_genesis(client, &chain_id, &genesis_path)?,
        };
        let pin = NodePin {
            node: client.url().to_string(),
            chain_id,
        };
        let mut text = serde_json::to_string_pretty(&pin).expect("plain data serialises");
        text.push('\n');
        write_atomically(&pin_path, text.as_bytes())?;
        self.announce(client, &genesis, &chain_id, &pin_path, &genesis_path);
        Ok(TrustedChain {
            genesis,
            chain_id,
            origin: TrustOrigin::Pinned { pin: pin_path },
        })
    }

    /// The one line that makes trust on first use visible.
    fn announce(
        &self,
        client: &NodeClient,
        genesis: &Genesis,
        chain_id: &ChainId,
        pin: &Path,
        genesis_path: &Path,
    ) {
        if self.json {
            let note = serde_json::json!({
                "note": "pinned_on_first_use",
                "node": client.url(),
                "chain_id": chain_id,
                "chain_name": genesis.chain_name,
                "currency_code": genesis.currency_code,
                "currency_decimals": genesis.currency_decimals,
                "pin": pin,
                "genesis": genesis_path,
            });
            eprintln!("{note}");
        } else {
            eprintln!(
                "note: first use of node {}: trusting its chain {} ({}, {} with {} decimals) and pinning its genesis in {}; a node at this URL on another chain will be refused (pass --genesis FILE to trust your consortium's genesis instead)",
                client.url(),
                genesis.chain_name,
                chain_id,
                genesis.currency_code,
                genesis.currency_decimals,
                genesis_path.display()
            );
        }
    }
}

/// The refusal of a node that serves another chain than the trusted one.
fn other_chain(
    client: &NodeClient,
    status: &StatusView,
    trusted: &ChainId,
    origin: &TrustOrigin,
) -> anyhow::Error {
    let fix = match origin {
        TrustOrigin::GenesisFile(_) => format!(
            "point --node at a node of chain {trusted}, or pass --genesis FILE with the genesis of chain {} if that is the chain you mean",
            status.chain_id
        ),
        TrustOrigin::Pinned { pin } => format!(
            "if that node really moved to another chain, pass --genesis FILE for chain {} or remove {} to pin it again on next use",
            status.chain_id,
            pin.display()
        ),
    };
    refusal(TrustError::OtherChain {
        url: client.url().to_string(),
        node_chain: status.chain_id,
        trusted_chain: *trusted,
        trusted_from: origin.describe(),
        fix,
    })
}

/// The status's other claims must match the genesis of its chain id.
fn check_status(
    client: &NodeClient,
    status: &StatusView,
    chain: &TrustedChain,
) -> anyhow::Result<()> {
    let genesis = &chain.genesis;
    let contradiction = |what: &'static str, reported: String, expected: String| {
        refusal(TrustError::StatusContradictsGenesis {
            url: client.url().to_string(),
            chain_id: chain.chain_id,
            trusted_from: chain.origin.describe(),
            what,
            reported,
            expected,
        })
    };
    if status.currency_decimals != genesis.currency_decimals {
        return Err(contradiction(
            "currency decimals",
            status.currency_decimals.to_string(),
            genesis.currency_decimals.to_string(),
        ));
    }
    if status.currency_code != genesis.currency_code {
        return Err(contradiction(
            "currency",
            status.currency_code.clone(),
            genesis.currency_code.clone(),
        ));
    }
    if status.chain_name != genesis.chain_name {
        return Err(contradiction(
            "chain name",
            status.chain_name.clone(),
            genesis.chain_name.clone(),
        ));
    }
    Ok(())
}

/// A refusal keeps its exit code (4) and its code for `--json`.
fn refusal(error: TrustError) -> anyhow::Error {
    refused(error.code(), error.to_string())
}

/// Fetches the node's genesis, which must hash to `chain_id`, and pins it.
fn fetch_genesis(client: &NodeClient, chain_id: &ChainId, path: &Path) -> anyhow::Result<Genesis> {
    let genesis = client.genesis()?;
    let served = genesis.chain_id();
    if served != *chain_id {
        return Err(refusal(TrustError::InconsistentNode {
            url: client.url().to_string(),
            reported: *chain_id,
            served,
        }));
    }
    write_atomically(path, genesis.to_json_pretty().as_bytes())?;
    Ok(genesis)
}

/// A pinned genesis, checked against the id it is filed under.
fn load_pinned_genesis(path: &Path, chain_id: &ChainId) -> anyhow::Result<Option<Genesis>> {
    if !path.exists() {
        return Ok(None);
    }
    let genesis = Genesis::load(path).map_err(|error| TrustError::DamagedPin {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    let actual = genesis.chain_id();
    if actual != *chain_id {
        return Err(TrustError::DamagedPin {
            path: path.to_path_buf(),
            reason: format!("it is filed as chain {chain_id} but hashes to {actual}"),
        }
        .into());
    }
    Ok(Some(genesis))
}

/// `$XDG_CONFIG_HOME/scf`, else `$HOME/.config/scf`.
fn config_dir() -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_CONFIG_HOME")
        .map(|dir| dir.join("scf"))
        .or_else(|| absolute("HOME").map(|home| home.join(".config").join("scf")))
}

fn genesis_file_path(dir: &Path, chain_id: &ChainId) -> PathBuf {
    dir.join("genesis").join(format!("{chain_id}.json"))
}

/// A readable file name for a node URL, with a short hash of the exact URL
/// so that two URLs never share a pin.
fn pin_file_name(url: &str) -> String {
    let readable: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let hash = crypto::Hash::digest(url.as_bytes()).to_hex();
    format!("{readable}-{}.json", &hash[..12])
}

/// Writes `bytes` to a temporary file beside `path` and renames it over
/// `path`, so a pin is never half written.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let failed = |error| TrustError::Write {
        path: path.to_path_buf(),
        error,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let temporary = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|error| {
            let _ = std::fs::remove_file(&temporary);
            failed(error).into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_file_names_are_readable_and_distinct() {
        let a = pin_file_name("http://127.0.0.1:8700");
        let b = pin_file_name("http://127.0.0.1_8700");
        assert!(a.starts_with("http___127.0.0.1_8700-"), "{a}");
        assert!(a.ends_with(".json"), "{a}");
        assert_ne!(a, b);
    }
}
