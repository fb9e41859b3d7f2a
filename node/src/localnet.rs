//! A local network on 127.0.0.1: a genesis and one home directory per node,
//! with free ports, for tests, the load generator and `scf testnet`.
//!
//! It only writes files; starting the nodes is the caller's business (in
//! process with [`crate::start`], or as child processes).

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use crypto::Keypair;
use genesis::{ConsensusParams, Genesis, InitialParticipant, Observer, Validator};
use ledger::Role;

use crate::home::{ConfigFile, HomeError, NewNode, init_home, write_home};
use crate::network::identity::peer_id_of;

/// What to create.
#[derive(Clone, Debug)]
pub struct LocalNetSpec {
    pub chain_name: String,
    pub validators: usize,
    pub observers: usize,
    /// Participants registered in genesis: name and roles. Their keys are
    /// generated and returned.
    pub participants: Vec<(String, Vec<Role>)>,
    pub consensus: ConsensusParams,
}

/// One node of a local network.
#[derive(Clone, Debug)]
pub struct LocalNode {
    pub name: String,
    pub home: PathBuf,
    pub api: SocketAddr,
    pub validator: bool,
}

/// The files of a created local network.
#[derive(Debug)]
pub struct LocalNet {
    pub genesis: Genesis,
    /// Validators first, then observers.
    pub nodes: Vec<LocalNode>,
    pub participant_keys: BTreeMap<String, Keypair>,
}

/// The lowest port [`free_port`] picks.
const LOWEST_PICKED_PORT: u16 = 10_000;

/// The first port of the range the system hands out to outgoing
/// connections (`ip_local_port_range`), if it can be read and leaves room
/// above [`LOWEST_PICKED_PORT`] to pick from.
fn outgoing_ports_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .filter(|first| *first > LOWEST_PICKED_PORT + 1_000)
}

/// A port on 127.0.0.1 that was free a moment ago and that this process has
/// not handed out before.
///
/// Chosen at random below the range the system hands out to outgoing
/// connections (32768 and up by default): a port the system picked (`bind`
/// to port 0) is in that range, and between this call and the node binding
/// it, any outgoing connection on the machine (another test's HTTP client or
/// peer dial) may be given it. Falls back to the system's pick where no such
/// range can be read or nothing below it is free.
///
/// A port is free until something binds it, so two calls before the first
/// port is bound could otherwise both return it (a node's p2p and API ports
/// once collided that way); every port returned is remembered and never
/// returned again by this process.
pub fn free_port() -> std::io::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let usable =
        |port: u16| !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok();
    let mut picked = None;
    if let Some(end) = outgoing_ports_start() {
        let state = std::collections::hash_map::RandomState::new();
        picked = (0..256u32)
            .map(|attempt| {
                let offset = state.hash_one(attempt) % u64::from(end - LOWEST_PICKED_PORT);
                LOWEST_PICKED_PORT + u16::try_from(offset).expect("below the range's start")
            })
            .find(|port| usable(*port));
    }
    if picked.is_none() {
        for _ in 0..256 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            if usable(port) {
                picked = Some(port);
                break;
            }
        }
    }
    let port = picked.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free port on 127.0.0.1 after 512 tries",
        )
    })?;
    handed_out.insert(port);
    Ok(port)
}

/// Consensus timing for a network on one machine: short timeouts so a lost
/// round costs little.
pub fn local_consensus() -> ConsensusParams {
    ConsensusParams {
        timeout_propose_ms: 1_000,
        timeout_prevote_ms: 300,
        timeout_precommit_ms: 300,
        timeout_delta_ms: 250,
        max_block_txs: 5_000,
        max_block_bytes: 8 << 20,
        heartbeat_interval_ms: None,
    }
}

/// Writes a genesis and every node's home under `dir`
/// (`dir/validator-0`, …, `dir/observer-0`, …).
pub fn create(dir: &Path, spec: &LocalNetSpec) -> Result<LocalNet, HomeError> {
    let io = |error: std::io::Error| HomeError::Write {
        path: dir.to_path_buf(),
        error,
    };
    struct Planned {
        name: String,
        node_key: Keypair,
        validator_key: Option<Keypair>,
        listen: String,
        api: SocketAddr,
    }
    let mut planned = Vec::new();
    for index in 0..spec.validators + spec.observers {
        let validator = index < spec.validators;
        let name = if validator {
            format!("validator-{index}")
        } else {
            format!("observer-{}", index - spec.validators)
        };
        planned.push(Planned {
            name,
            node_key: Keypair::generate(),
            validator_key: validator.then(Keypair::generate),
            listen: format!("/ip4/127.0.0.1/tcp/{}", free_port().map_err(io)?),
            api: SocketAddr::from(([127, 0, 0, 1], free_port().map_err(io)?)),
        });
    }
    let mut participant_keys = BTreeMap::new();
    let participants = spec
        .participants
        .iter()
        .map(|(name, roles)| {
            let key = Keypair::generate();
            let entry = InitialParticipant {
                name: name.clone(),
                public_key: key.public(),
                roles: roles.iter().map(|role| role.name().to_string()).collect(),
            };
            participant_keys.insert(name.clone(), key);
            entry
        })
        .collect();
    let genesis = Genesis {
        chain_name: spec.chain_name.clone(),
        currency_code: "CNY".to_string(),
        currency_decimals: 2,
        genesis_time_ms: 1_767_225_600_000,
        validators: planned
            .iter()
            .filter_map(|node| {
                node.validator_key.as_ref().map(|key| Validator {
                    name: node.name.clone(),
                    public_key: key.public(),
                    peer_id: peer_id_of(&node.node_key).to_string(),
                    address: node.listen.clone(),
                    voting_power: 1,
                })
            })
            .collect(),
        observers: planned
            .iter()
            .filter(|node| node.validator_key.is_none())
            .map(|node| Observer {
                name: node.name.clone(),
                peer_id: peer_id_of(&node.node_key).to_string(),
                address: node.listen.clone(),
            })
            .collect(),
        participants,
        consensus: spec.consensus,
    };
    genesis.validate().map_err(|error| HomeError::Config {
        path: dir.to_path_buf(),
        error: error.to_string(),
    })?;
    let mut nodes = Vec::new();
    for node in &planned {
        let home = dir.join(&node.name);
        let config = ConfigFile::new(&node.name, &node.listen, node.api);
        write_home(
            &home,
            &config,
            &genesis,
            &node.node_key,
            node.validator_key.as_ref(),
        )?;
        nodes.push(LocalNode {
            name: node.name.clone(),
            home,
            api: node.api,
            validator: node.validator_key.is_some(),
        });
    }
    Ok(LocalNet {
        genesis,
        nodes,
        participant_keys,
    })
}

/// A node made for a running chain, not listed in its genesis: what the
/// consortium needs to propose it as a validator, and where its home is.
#[derive(Debug, Clone)]
pub struct JoiningNode {
    pub node: LocalNode,
    pub consensus_key: crypto::PublicKey,
    pub peer_id: libp2p::PeerId,
    /// The multiaddr it listens on.
    pub listen: String,
}

/// Writes the home of a new node `name` under `dir/name` for the chain of
/// `genesis`, on free ports, with [`init_home`] (what `scf node init`
/// runs): a fresh node key and validator key (its consensus key). It starts
/// as an observer (a validator-in-waiting) and votes from the height at
/// which governance adds its consensus key.
pub fn joining_node(dir: &Path, genesis: &Genesis, name: &str) -> Result<JoiningNode, HomeError> {
    let io = |error: std::io::Error| HomeError::Write {
        path: dir.to_path_buf(),
        error,
    };
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port().map_err(io)?);
    let api = SocketAddr::from(([127, 0, 0, 1], free_port().map_err(io)?));
    let home = init_home(
        &dir.join(name),
        genesis,
        &NewNode {
            name: name.to_string(),
            listen: listen.clone(),
            address: None,
            api,
        },
    )?;
    Ok(JoiningNode {
        node: LocalNode {
            name: name.to_string(),
            home: home.home,
            api,
            validator: true,
        },
        consensus_key: home.consensus_key,
        peer_id: home.peer_id,
        listen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_free_and_outside_the_outgoing_range() {
        let outgoing_start = outgoing_ports_start();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let port = free_port().expect("a free port");
            TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
            if let Some(start) = outgoing_start {
                assert!(
                    port < start,
                    "port {port} is in the outgoing range from {start}"
                );
            }
            seen.insert(port);
        }
        // Random, not one port handed out again and again.
        assert!(seen.len() > 10, "{seen:?}");
    }

    /// A node's p2p and API ports are picked one after the other before
    /// either is bound; they must differ even though both are still free.
    #[test]
    fn a_port_is_never_handed_out_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let port = free_port().expect("a free port");
            assert!(seen.insert(port), "port {port} was handed out twice");
        }
    }
}
