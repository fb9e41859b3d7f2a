//! Making the home of a node that joins a running chain (`scf node init`),
//! and giving a validator the key it will rotate to (`scf validator
//! next-key`).
//!
//! A new home holds fresh keys only this function has seen: a node key (its
//! libp2p identity) and a validator key (its consensus key). Genesis does
//! not list either, so the node starts as an observer, a validator-in-waiting
//! that votes from the height at which governance adds its consensus key
//! (see `NodeConfig::load` and the driver). What the consortium needs to
//! propose it comes back as the [`ValidatorChange`] to propose, checked
//! against the ledger's own stateless rules, so a printed proposal is one
//! the chain accepts in shape.
//!
//! Nothing here overwrites a file: a key once overwritten is lost, and a
//! second home with the same validator key is a second signer. Every check
//! runs before the first file is written. Not here: reading or validating
//! the genesis file (the caller loads it, `Genesis::load`), and starting
//! the node.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crypto::{Keypair, PublicKey};
use genesis::Genesis;
use ledger::governance::{PeerId as LedgerPeerId, ValidatorChange};

use super::{
    CONFIG_FILE, ConfigFile, GENESIS_FILE, HomeError, NEXT_VALIDATOR_KEY_FILE, NODE_KEY_FILE,
    SAFETY_FILE, VALIDATOR_KEY_FILE, write_home,
};
use crate::network::PeerId;
use crate::network::identity::{parse_address, peer_id_of};

/// The listen multiaddr of a new node when none is given: every interface,
/// the port consortium nodes conventionally use.
pub const DEFAULT_LISTEN: &str = "/ip4/0.0.0.0/tcp/26656";

/// Files and directories whose presence means a directory is a node home
/// already (or was one): any of them makes [`init_home`] refuse.
const HOME_MARKERS: [&str; 7] = [
    CONFIG_FILE,
    GENESIS_FILE,
    NODE_KEY_FILE,
    VALIDATOR_KEY_FILE,
    NEXT_VALIDATOR_KEY_FILE,
    SAFETY_FILE,
    "data",
];

/// How the new node is reached and named.
#[derive(Clone, Debug)]
pub struct NewNode {
    /// For logs, `/v1/status` and the validator record.
    pub name: String,
    /// The libp2p multiaddr it listens on.
    pub listen: String,
    /// The multiaddr other nodes dial, recorded for it on the chain.
    /// `None`: the listen address, which must then name a host.
    pub address: Option<String>,
    /// Its HTTP API.
    pub api: SocketAddr,
}

/// A home [`init_home`] wrote.
#[derive(Clone, Debug)]
pub struct InitializedHome {
    pub home: PathBuf,
    pub config: ConfigFile,
    pub peer_id: PeerId,
    pub consensus_key: PublicKey,
    /// The multiaddr other nodes dial.
    pub address: String,
    /// What a validator proposes to make this node a validator, with
    /// power 1.
    pub proposal: ValidatorChange,
}

/// The key [`write_next_validator_key`] wrote, and the key it replaces.
#[derive(Clone, Debug)]
pub struct NextValidatorKey {
    pub path: PathBuf,
    /// The key in `validator.key`.
    pub current: PublicKey,
    pub next: PublicKey,
    /// What a validator proposes to rotate to it.
    pub proposal: ValidatorChange,
}

/// Writes the home of a new node for the chain of `genesis` under `home`
/// (created if missing): config, genesis, a fresh node key and a fresh
/// validator key, laid out as [`write_home`] does for every node. Refuses,
/// before writing anything, a directory that already holds a node's
/// files, and addresses or a name the chain would not record.
pub fn init_home(
    home: &Path,
    genesis: &Genesis,
    node: &NewNode,
) -> Result<InitializedHome, HomeError> {
    if let Some(found) = HOME_MARKERS
        .iter()
        .map(|marker| home.join(marker))
        .find(|path| path.exists())
    {
        return Err(HomeError::AlreadyAHome {
            home: home.to_path_buf(),
            found,
        });
    }
    let address = dialable_address(node)?;
    let node_key = Keypair::generate();
    let validator_key = Keypair::generate();
    let peer_id = peer_id_of(&node_key);
    let proposal = ValidatorChange::Add {
        name: node.name.clone(),
        consensus_key: validator_key.public(),
        peer_id: LedgerPeerId::from_bytes(peer_id.to_bytes())
            .expect("a peer id libp2p made is a valid multihash"),
        address: address.clone(),
        power: 1,
    };
    proposal
        .check_stateless()
        .map_err(|error| HomeError::NotProposable {
            reason: error.to_string(),
        })?;
    let config = ConfigFile::new(&node.name, &node.listen, node.api);
    let home_existed = home.exists();
    if let Err(error) = write_home(home, &config, genesis, &node_key, Some(&validator_key)) {
        remove_partial_home(home, home_existed);
        return Err(error);
    }
    Ok(InitializedHome {
        home: home.to_path_buf(),
        config,
        peer_id,
        consensus_key: validator_key.public(),
        address,
        proposal,
    })
}

/// Undoes a [`write_home`] that failed part-way (a full disk, most often):
/// removes every home file it may have written, which were all new (no
/// marker existed when [`init_home`] checked) and whose keys nobody has
/// seen, and the directory if this call created it and it is empty, so
/// that running `scf node init` again once there is room succeeds instead
/// of finding a home that is half there. Best effort: what cannot be
/// removed stays, and the next run names it.
fn remove_partial_home(home: &Path, home_existed: bool) {
    for marker in HOME_MARKERS {
        let path = home.join(marker);
        if path.is_file() {
            let _ = std::fs::remove_file(&path);
        }
    }
    if !home_existed {
        let _ = std::fs::remove_dir(home);
    }
}

/// The address the chain records for the node: `--address`, or the listen
/// address when it names a host. Both must be multiaddrs libp2p parses.
fn dialable_address(node: &NewNode) -> Result<String, HomeError> {
    let bad = |flag: &'static str, address: &str, reason: String| HomeError::BadAddress {
        flag,
        address: address.to_string(),
        reason,
    };
    let listen = parse_address(&node.listen)
        .map_err(|error| bad("listen", &node.listen, error.to_string()))?;
    if let Some(address) = &node.address {
        let parsed =
            parse_address(address).map_err(|error| bad("address", address, error.to_string()))?;
        if names_no_host(&parsed) {
            return Err(bad(
                "address",
                address,
                "it names no host, so no other node could dial it".to_string(),
            ));
        }
        return Ok(address.trim().to_string());
    }
    if names_no_host(&listen) {
        return Err(bad(
            "listen",
            &node.listen,
            format!(
                "it listens on every interface, which other nodes cannot dial; also pass --address with the address they reach this machine at, e.g. /ip4/10.0.0.5/tcp/{}",
                tcp_port(&listen).unwrap_or(26656)
            ),
        ));
    }
    Ok(node.listen.trim().to_string())
}

/// Whether a multiaddr's IP is the unspecified one (0.0.0.0 or ::).
fn names_no_host(address: &libp2p::Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    address.iter().any(|protocol| match protocol {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

fn tcp_port(address: &libp2p::Multiaddr) -> Option<u16> {
    address.iter().find_map(|protocol| match protocol {
        libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}

/// Generates the consensus key the validator of `home` will rotate to and
/// writes it as `validator.next.key` (mode 0600), where the driver looks
/// for it once the set has rotated. Refuses a home with no `validator.key`
/// (an observer has no key to rotate) or with a next key already.
pub fn write_next_validator_key(home: &Path) -> Result<NextValidatorKey, HomeError> {
    let current_path = home.join(VALIDATOR_KEY_FILE);
    if !current_path.exists() {
        return Err(HomeError::NoValidatorKey {
            home: home.to_path_buf(),
            path: current_path,
        });
    }
    let current = genesis::read_key_file(&current_path)?.public();
    let path = home.join(NEXT_VALIDATOR_KEY_FILE);
    let exists = || -> Result<NextValidatorKey, HomeError> {
        let waiting = genesis::read_key_file(&path)?.public();
        Err(HomeError::NextKeyExists(Box::new(NextKeyExists {
            home: home.to_path_buf(),
            path: path.clone(),
            current,
            waiting,
        })))
    };
    if path.exists() {
        return exists();
    }
    let next = Keypair::generate();
    match genesis::write_key_file(&path, &next, genesis::Overwrite::Refuse) {
        Ok(()) => {}
        // Written by someone else since the check above: theirs stays.
        Err(genesis::KeyFileError::AlreadyExists { .. }) => return exists(),
        Err(error) => return Err(error.into()),
    }
    Ok(NextValidatorKey {
        path,
        current,
        next: next.public(),
        proposal: ValidatorChange::RotateKey {
            old_key: current,
            new_key: next.public(),
        },
    })
}

/// A home that already holds the key a rotation would go to.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} already holds a next consensus key ({waiting}); refusing to replace it, because the node signs with it once the validator set rotates to it. If its rotation was never proposed, propose it: `scf validator propose rotate --old-key {current} --new-key {waiting} --home {}`. If that rotation is in force, stop the node, move {} over {}, start it, and run this again",
    path.display(), home.display(), path.display(), home.join(VALIDATOR_KEY_FILE).display()
)]
pub struct NextKeyExists {
    pub home: PathBuf,
    pub path: PathBuf,
    /// The key in `validator.key`.
    pub current: PublicKey,
    /// The key in `validator.next.key`.
    pub waiting: PublicKey,
}
