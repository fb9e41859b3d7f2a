//! A local network on 127.0.0.1: a genesis and one home directory per node,
//! with free ports, for tests, the load generator and `scf testnet`.
//!
//! It only writes files; starting the nodes is the caller's business (in
//! process with [`crate::start`], or as child processes).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use crypto::Keypair;
use genesis::{ConsensusParams, Genesis, InitialParticipant, Observer, Validator};
use ledger::Role;

use crate::home::{ConfigFile, HomeError, write_home};
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

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
