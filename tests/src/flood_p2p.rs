//! Flooding peers for the p2p limits of issue 17: a 4-validator network
//! whose validators 0–2 are real `scf node start` processes ([`Cluster`])
//! under the background load, and validator 3's identity used by a flooder
//! instead of a validator:
//!
//! - [`flood_bad_votes`]: distinct consensus votes, signed by nobody, for
//!   the next height (inside the window the node checks signatures for);
//! - [`flood_connections`]: raw TCP connections that never finish a
//!   handshake, libp2p connections with validator 3's identity, and many
//!   sync requests on them (each asking for every block).
//!
//! Each flood runs on the caller's tokio runtime, bounded in count and
//! time, and reports what it achieved; judging the nodes is the test's job
//! (with [`crate::checks`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use consensus::{ConsensusMessage, Height, Round, SignedVote, Vote, VoteKind};
use crypto::{ChainId, Hash, Keypair};
use libp2p::futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, noise, tcp, yamux};
use node::metrics::Drops;
use node::network::{
    self, KnownPeer, Network, NetworkConfig, NetworkError, P2pLimits, SyncCodec, SyncRequest,
    SyncResponse, Topic,
};

use crate::cluster::{Cluster, HONEST, HOSTILE};
use crate::hostile::forge;

/// Validator 3's node key and validator key.
fn impostor_keys(cluster: &Cluster) -> (Keypair, Keypair) {
    let home = cluster.home(HOSTILE);
    let node_key = genesis::read_key_file(home.join(node::home::NODE_KEY_FILE))
        .expect("validator 3's node key");
    let key = genesis::read_key_file(home.join(node::home::VALIDATOR_KEY_FILE))
        .expect("validator 3's validator key");
    (node_key, key)
}

/// The honest validators' peer ids and p2p addresses.
pub fn honest_peers(cluster: &Cluster) -> Vec<KnownPeer> {
    HONEST
        .iter()
        .map(|&index| {
            let validator = &cluster.net.genesis.validators[index];
            KnownPeer {
                name: validator.name.clone(),
                peer_id: validator.peer_id.parse().expect("genesis peer ids parse"),
                address: network::identity::parse_address(&validator.address)
                    .expect("genesis addresses parse"),
            }
        })
        .collect()
}

/// Rewrites a node's `[p2p]` limits in its `config.toml` (the node must be
/// stopped; it reads them when it starts).
pub fn set_p2p_limits(cluster: &Cluster, index: usize, limits: P2pLimits) {
    let home = cluster.home(index);
    let mut config = node::NodeConfig::load(home, &node::Overrides::default())
        .expect("the node's home loads")
        .config;
    config.p2p = limits;
    std::fs::write(home.join(node::home::CONFIG_FILE), config.to_toml())
        .expect("writing config.toml");
}

/// What a vote flood achieved.
#[derive(Debug, Default)]
pub struct VoteFlood {
    /// Votes handed to the flooder's network (each a distinct message).
    pub published: AtomicU64,
    /// Of those, how many its gossipsub could not queue for any peer (its
    /// queues to the nodes were full): not sent.
    pub publish_failed: AtomicU64,
    pub done: AtomicBool,
}

impl VoteFlood {
    /// Votes that went out to the nodes.
    pub fn sent(&self) -> u64 {
        self.published.load(Ordering::Relaxed) - self.publish_failed.load(Ordering::Relaxed)
    }
}

/// Publishes `count` distinct votes by validator 3 with garbage
/// signatures, for the next height of the honest chain and rounds inside
/// the engine's lookahead, as fast as the flooder's network takes them
/// (its gossipsub drops those its queues to the nodes have no room for:
/// see [`VoteFlood::sent`]); stops early at `deadline`.
pub async fn flood_bad_votes(
    cluster_heights: Arc<AtomicU64>,
    (network, drops): (Network, Drops),
    chain_id: ChainId,
    validator: crypto::PublicKey,
    count: u64,
    deadline: Instant,
    report: Arc<VoteFlood>,
) {
    let mut salt = 0u64;
    while report.published.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        salt += 1;
        if salt.is_multiple_of(256) {
            report
                .publish_failed
                .store(drops.get("network", "publish failed"), Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
        let kind = if salt.is_multiple_of(2) {
            VoteKind::Prevote
        } else {
            VoteKind::Precommit
        };
        let vote = Vote {
            kind,
            height: Height(cluster_heights.load(Ordering::Relaxed) + 1),
            round: Round((salt % 20) as u32),
            value: Some(Hash::digest(&salt.to_le_bytes())),
            validator,
        };
        let bytes = ConsensusMessage::Vote(SignedVote {
            chain_id,
            vote,
            signature: forge::garbage_signature(salt),
        })
        .to_bytes();
        loop {
            match network.publish(Topic::Consensus, bytes.clone()) {
                Ok(()) => {
                    report.published.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(NetworkError::QueueFull { .. }) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
    }
    // Let the last ones through the command queue before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    report
        .publish_failed
        .store(drops.get("network", "publish failed"), Ordering::Relaxed);
    report.done.store(true, Ordering::Relaxed);
}

/// Starts validator 3's network (no consensus behind it) with the given
/// limits, and waits (bounded) until it is connected to every honest
/// validator.
pub async fn start_impostor(cluster: &Cluster) -> (Network, Drops, Keypair) {
    let (node_key, key) = impostor_keys(cluster);
    let genesis = &cluster.net.genesis;
    let drops = Drops::default();
    let (network, mut events) = network::start_with(
        NetworkConfig {
            keypair: network::identity::libp2p_keypair(&node_key),
            listen: network::identity::parse_address(&genesis.validators[HOSTILE].address)
                .expect("validator 3's address"),
            chain_id: genesis.chain_id(),
            peers: honest_peers(cluster),
        },
        P2pLimits::default(),
        drops.clone(),
    )
    .await
    .expect("the impostor's network starts");
    // Nobody reads its events: drain them so its inbox stays empty.
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let deadline = Instant::now() + Duration::from_secs(20);
    while network.connected_peers().len() < HONEST.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (network, drops, key)
}

/// What a connection flood achieved.
#[derive(Debug, Default, Clone)]
pub struct ConnectionFlood {
    pub tcp_opened: usize,
    pub dials: usize,
    /// Connections whose handshake completed (the target closes those over
    /// its limits right after).
    pub established: usize,
    /// Connections still open 2 s after the dials, and at the end.
    pub open_after_dials: usize,
    pub open_at_end: usize,
    pub requests_sent: usize,
    pub answered_with_blocks: usize,
    pub blocks_received: usize,
    pub refused_with_error: usize,
    pub failed: usize,
}

/// The honest node a connection flood aims at, and the identity it uses.
#[derive(Clone)]
pub struct FloodTarget {
    pub peer: PeerId,
    pub address: Multiaddr,
    pub chain_id: ChainId,
    /// Validator 3's node key.
    pub node_key: Keypair,
}

impl FloodTarget {
    pub fn of(cluster: &Cluster, target: usize) -> FloodTarget {
        let genesis = &cluster.net.genesis;
        let validator = &genesis.validators[target];
        FloodTarget {
            peer: validator.peer_id.parse().expect("peer id"),
            address: network::identity::parse_address(&validator.address).expect("address"),
            chain_id: genesis.chain_id(),
            node_key: impostor_keys(cluster).0,
        }
    }
}

/// Floods one honest node: opens `tcp` raw TCP connections that never
/// speak (and holds them for 2 s), dials it `dials` times with validator 3's identity, and sends
/// `requests` sync requests for every block over those connections, in
/// waves; runs until every request is settled or `limit` has passed.
pub async fn flood_connections(
    target: FloodTarget,
    tcp: usize,
    dials: usize,
    requests: usize,
    limit: Duration,
) -> ConnectionFlood {
    let deadline = Instant::now() + limit;
    let FloodTarget {
        peer,
        address,
        chain_id,
        node_key,
    } = target;
    let socket = tcp_socket(&address);

    let mut report = ConnectionFlood::default();
    // Handshakes that never finish: held open until the flood ends.
    let mut idle = Vec::new();
    for _ in 0..tcp {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(socket),
        )
        .await
        {
            idle.push(stream);
        }
    }
    report.tcp_opened = idle.len();
    // Held for a while (the node accepts `max_pending_incoming` of them into
    // a handshake and refuses the rest), then closed: while they are held,
    // new handshakes are refused, which would only fail the dials below.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(idle);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let protocol = network::sync_protocol_name(&chain_id);
    let mut swarm =
        libp2p::SwarmBuilder::with_existing_identity(network::identity::libp2p_keypair(&node_key))
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("a TCP transport")
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    SyncCodec::default(),
                    [(protocol, ProtocolSupport::Outbound)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(10))
                        .with_max_concurrent_streams(10_000),
                )
            })
            .expect("the sync behaviour")
            .with_swarm_config(|config| {
                config.with_idle_connection_timeout(Duration::from_secs(60))
            })
            .build();

    for _ in 0..dials {
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![address.clone()])
            .condition(PeerCondition::Always)
            .build();
        if swarm.dial(opts).is_ok() {
            report.dials += 1;
        }
    }
    let dialled = Instant::now();
    let mut sampled = false;
    let mut open = 0usize;
    let mut outstanding = 0usize;
    let wave = 200;
    while Instant::now() < deadline {
        // A new wave of requests whenever the last one has settled.
        if outstanding == 0 && report.requests_sent < requests && open > 0 {
            for _ in 0..wave.min(requests - report.requests_sent) {
                swarm.behaviour_mut().send_request(
                    &peer,
                    SyncRequest::Blocks {
                        from: 1,
                        to: u64::MAX,
                    },
                );
                report.requests_sent += 1;
                outstanding += 1;
            }
        }
        if !sampled && dialled.elapsed() >= Duration::from_secs(2) {
            sampled = true;
            report.open_after_dials =
                swarm.network_info().connection_counters().num_established() as usize;
        }
        if report.requests_sent >= requests && outstanding == 0 && sampled {
            break;
        }
        let event =
            tokio::time::timeout(Duration::from_millis(200), swarm.select_next_some()).await;
        let Ok(event) = event else { continue };
        match event {
            SwarmEvent::ConnectionEstablished { .. } => {
                report.established += 1;
                open += 1;
            }
            SwarmEvent::ConnectionClosed { .. } => open = open.saturating_sub(1),
            SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            }) => {
                outstanding = outstanding.saturating_sub(1);
                match response {
                    SyncResponse::Blocks(blocks) => {
                        report.answered_with_blocks += 1;
                        report.blocks_received += blocks.len();
                    }
                    _ => report.refused_with_error += 1,
                }
            }
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure { .. }) => {
                outstanding = outstanding.saturating_sub(1);
                report.failed += 1;
            }
            _ => {}
        }
    }
    report.open_at_end = swarm.network_info().connection_counters().num_established() as usize;
    drop(swarm);
    report
}

fn tcp_socket(address: &Multiaddr) -> std::net::SocketAddr {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for part in address.iter() {
        match part {
            Protocol::Ip4(found) => ip = Some(std::net::IpAddr::V4(found)),
            Protocol::Tcp(found) => port = Some(found),
            _ => {}
        }
    }
    std::net::SocketAddr::new(ip.expect("an /ip4 address"), port.expect("a /tcp port"))
}

/// The honest validators' APIs and every validator's peer id, for
/// [`honest_peers_connected`] (owned: it runs beside the cluster's user).
pub fn peer_check(cluster: &Cluster) -> (Vec<(usize, String)>, Vec<String>) {
    (
        HONEST
            .iter()
            .map(|&index| (index, cluster.api(index)))
            .collect(),
        cluster
            .net
            .genesis
            .validators
            .iter()
            .map(|validator| validator.peer_id.clone())
            .collect(),
    )
}

/// Each honest node's connected peers include the other honest validators.
pub fn honest_peers_connected(
    apis: &[(usize, String)],
    peer_ids: &[String],
) -> Vec<Result<(), String>> {
    apis.iter()
        .map(|(index, api)| {
            let index = *index;
            let status = crate::client::status(api)?;
            let missing: Vec<usize> = HONEST
                .iter()
                .copied()
                .filter(|&other| other != index)
                .filter(|&other| !status.peers.contains(&peer_ids[other]))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "validator-{index} is not connected to validators {missing:?} (peers: {:?})",
                    status.peers
                ))
            }
        })
        .collect()
}
