//! Votes signed by a consensus key the chain has rotated away, sent to the
//! running validators through the node's real network layer.
//!
//! The sender takes the node identity of a listed peer that is not running
//! (an observer's node key from genesis: the validators let it connect and
//! take its gossip), dials the validators in force, and publishes prevotes
//! and precommits for the next height signed by the old key, each for a
//! different value so gossip does not deduplicate them. A validator that
//! judges the signer against the set of that height refuses each one and
//! logs `rejected a consensus message` with the sender's peer id; one that
//! still counted the old key would take them quietly.
//!
//! It only sends and counts log lines: the scenario judges.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use consensus::VoteKind;
use crypto::{ChainId, Hash, Keypair};
use node::network::{self, KnownPeer, NetworkConfig, Topic};

use crate::hostile::forge;

/// Pause between two bursts of votes.
const BURST_PAUSE: Duration = Duration::from_millis(200);
/// The node's log line for a consensus message it refused (node::intake).
pub const REFUSAL: &str = "rejected a consensus message";

/// A validator to send to: where to dial it and the log it writes.
pub struct Target {
    pub name: String,
    pub peer: KnownPeer,
    pub api: String,
    pub log: PathBuf,
}

/// What was sent and what each target refused.
#[derive(Debug)]
pub struct Injected {
    pub sender: String,
    pub votes_sent: u64,
    /// Refusals logged per target name, of messages from the sender.
    pub refused: BTreeMap<String, usize>,
}

/// Lines of `log` that record refusing a consensus message from `sender`.
pub fn refusals(log: &std::path::Path, sender: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(REFUSAL) && line.contains(sender))
        .count()
}

/// Sends `old_key`'s votes as the peer `node_key` until every target logged
/// a refusal of one, or `limit` passed.
pub fn send_old_key_votes(
    node_key: &Keypair,
    chain_id: ChainId,
    old_key: &Keypair,
    targets: &[Target],
    limit: Duration,
) -> Result<Injected, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|error| format!("a runtime for the sender: {error}"))?;
    let keypair = network::identity::libp2p_keypair(node_key);
    let sender = keypair.public().to_peer_id().to_string();
    let port = node::localnet::free_port().map_err(|error| error.to_string())?;
    let listen = network::identity::parse_address(&format!("/ip4/127.0.0.1/tcp/{port}"))
        .map_err(|error| error.to_string())?;
    let (network, _events) = runtime
        .block_on(network::start(NetworkConfig {
            keypair,
            listen,
            chain_id,
            peers: targets.iter().map(|target| target.peer.clone()).collect(),
        }))
        .map_err(|error| format!("the sender's network: {error}"))?;
    let deadline = Instant::now() + limit;
    let mut votes_sent = 0u64;
    let mut salt = 0u64;
    let refused = |targets: &[Target]| -> BTreeMap<String, usize> {
        targets
            .iter()
            .map(|target| (target.name.clone(), refusals(&target.log, &sender)))
            .collect()
    };
    let outcome = loop {
        let counts = refused(targets);
        if counts.values().all(|&count| count > 0) {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(format!(
                "not every validator refused the old key's votes within {limit:?}: {counts:?} \
                 ({votes_sent} sent, connected to {} peers)",
                network.connected_peers().len()
            ));
        }
        if !network.connected_peers().is_empty() {
            // The next height of the slowest target: within every
            // validator's window, so only the signer can be refused.
            let next = targets
                .iter()
                .filter_map(|target| super::height(&target.api).ok())
                .min()
                .unwrap_or(0)
                + 1;
            for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                salt += 1;
                let value = Hash::digest(&salt.to_le_bytes());
                let vote = forge::vote(old_key, chain_id, kind, next, 0, Some(value));
                if network.publish(Topic::Consensus, vote.to_bytes()).is_ok() {
                    votes_sent += 1;
                }
            }
        }
        std::thread::sleep(BURST_PAUSE);
    };
    runtime.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(10), network.shutdown()).await;
    });
    let refused = refused(targets);
    outcome.map(|()| Injected {
        sender,
        votes_sent,
        refused,
    })
}
