//! Flooding peers for the p2p limits of issue 17: a 4-validator network
//! whose validators 0–2 are real `scf node start` processes ([`Cluster`])
//! under the background load, and validator 3's identity used by a flooder
//! instead of a validator:
//!
//! - [`flood_bad_votes`]: distinct consensus votes, signed by nobody, for
//!   the next height (inside the window the node checks signatures for),
//!   written straight into each node's gossipsub stream;
//! - [`flood_connections`]: raw TCP connections that never finish a
//!   handshake, libp2p connections with validator 3's identity, and many
//!   sync requests on them (each asking for every block).
//!
//! Each flood runs on the caller's tokio runtime, bounded in count and
//! time, and reports what it achieved; judging the nodes is the test's job
//! (with [`crate::checks`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use consensus::{ConsensusMessage, Height, Round, SignedVote, Vote, VoteKind};
use crypto::{ChainId, Hash, Keypair};
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, noise, ping, tcp, yamux};
use node::network::{self, KnownPeer, P2pLimits, SyncCodec, SyncRequest, SyncResponse, Topic};

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

/// Votes in one gossipsub RPC frame of the vote flood (gossipsub takes up
/// to 500 messages in one RPC).
pub const VOTES_PER_FRAME: u64 = 100;
/// The gossipsub protocol the vote flood speaks (the node speaks 1.0–1.3).
const GOSSIPSUB_PROTOCOL: &str = "/meshsub/1.1.0";

/// What a vote flood achieved.
#[derive(Debug, Default)]
pub struct VoteFlood {
    /// Votes written into each honest node's gossipsub stream, in [`HONEST`]
    /// order. A write finishes only once the node's connection has taken
    /// it (yamux flow control), so at most one stream window is still
    /// unread when a count is taken.
    pub written: [AtomicU64; HONEST.len()],
    /// Connections the flooder had open to the nodes when it finished.
    pub connected_at_end: AtomicU64,
    /// Streams the nodes refused or broke before every vote was written.
    pub stream_failures: AtomicU64,
    /// Milliseconds from the start until every stream ended.
    pub elapsed_ms: AtomicU64,
    pub done: AtomicBool,
}

impl VoteFlood {
    /// The fewest votes any node was sent.
    pub fn least_written(&self) -> u64 {
        self.written
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }
}

/// The votes of a flood, in gossipsub RPC frames of [`VOTES_PER_FRAME`]
/// messages: each frame is built the first time a stream needs it (for the
/// height the chain is at then) and the same bytes go to every node.
///
/// Every message carries a valid gossipsub envelope signed by validator 3's
/// node key (so the node's gossipsub hands it on) around a vote whose
/// consensus signature is garbage: what a validator, or anyone holding its
/// node key, can send.
struct VoteFrames {
    frames: Vec<OnceLock<Arc<Vec<u8>>>>,
    height: Arc<AtomicU64>,
    node_key: libp2p::identity::Keypair,
    author: Vec<u8>,
    topic: String,
    chain_id: ChainId,
    validator: crypto::PublicKey,
    first_seqno: u64,
}

impl VoteFrames {
    fn frame(&self, index: usize) -> Arc<Vec<u8>> {
        Arc::clone(self.frames[index].get_or_init(|| Arc::new(self.build(index as u64))))
    }

    fn build(&self, index: u64) -> Vec<u8> {
        let next_height = self.height.load(Ordering::Relaxed) + 1;
        let mut rpc = Vec::new();
        for offset in 0..VOTES_PER_FRAME {
            let salt = index * VOTES_PER_FRAME + offset;
            let kind = if salt.is_multiple_of(2) {
                VoteKind::Prevote
            } else {
                VoteKind::Precommit
            };
            let vote = ConsensusMessage::Vote(SignedVote {
                chain_id: self.chain_id,
                vote: Vote {
                    kind,
                    height: Height(next_height),
                    round: Round((salt % 20) as u32),
                    value: Some(Hash::digest(&salt.to_le_bytes())),
                    validator: self.validator,
                },
                signature: forge::garbage_signature(salt),
            })
            .to_bytes();
            // gossipsub's `Message`: from = 1, data = 2, seqno = 3, topic = 4
            // (what the author signs), then signature = 5.
            let mut message = Vec::new();
            protobuf_field(&mut message, 1, &self.author);
            protobuf_field(&mut message, 2, &vote);
            protobuf_field(&mut message, 3, &(self.first_seqno + salt).to_be_bytes());
            protobuf_field(&mut message, 4, self.topic.as_bytes());
            let mut signed = b"libp2p-pubsub:".to_vec();
            signed.extend_from_slice(&message);
            let signature = self.node_key.sign(&signed).expect("ed25519 signs");
            protobuf_field(&mut message, 5, &signature);
            // `RPC.publish` = 2.
            protobuf_field(&mut rpc, 2, &message);
        }
        let mut frame = Vec::with_capacity(rpc.len() + 10);
        varint(&mut frame, rpc.len() as u64);
        frame.extend_from_slice(&rpc);
        frame
    }
}

fn protobuf_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One flood stream: every frame of [`VoteFrames`], written to one node
/// until the deadline, counted as it goes.
#[derive(Clone)]
struct FloodStream {
    frames: Arc<VoteFrames>,
    deadline: Instant,
    report: Arc<VoteFlood>,
    target: usize,
}

impl std::fmt::Debug for FloodStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloodStream")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Writes a [`FloodStream`] as gossipsub RPC frames on an outbound gossipsub
/// stream, and reads nothing back: gossipsub never answers on it.
#[derive(Debug, Clone, Default)]
struct FloodCodec;

impl request_response::Codec for FloodCodec {
    type Protocol = StreamProtocol;
    type Request = FloodStream;
    type Response = ();

    /// The node's own gossipsub stream to the flooder: read and thrown
    /// away until it ends, so the node's gossipsub stays enabled on the
    /// connection (a peer that refuses its stream is one it stops talking
    /// to, and whose streams it refuses).
    async fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<FloodStream>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut buffer = vec![0u8; 64 * 1024];
        while io.read(&mut buffer).await? > 0 {}
        Err(std::io::Error::other(
            "the node closed its gossipsub stream",
        ))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, _: &mut T) -> std::io::Result<()>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(())
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        stream: FloodStream,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        for index in 0..stream.frames.frames.len() {
            if Instant::now() >= stream.deadline {
                break;
            }
            let frame = stream.frames.frame(index);
            io.write_all(&frame).await?;
            stream.report.written[stream.target].fetch_add(VOTES_PER_FRAME, Ordering::Relaxed);
        }
        io.flush().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        (): (),
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Ok(())
    }
}

/// Who floods whom: validator 3's keys, the chain, the honest validators.
pub struct VoteFloodSetup {
    node_key: Keypair,
    validator_key: Keypair,
    chain_id: ChainId,
    targets: Vec<KnownPeer>,
}

impl VoteFloodSetup {
    pub fn of(cluster: &Cluster) -> VoteFloodSetup {
        let (node_key, validator_key) = impostor_keys(cluster);
        VoteFloodSetup {
            node_key,
            validator_key,
            chain_id: cluster.net.genesis.chain_id(),
            targets: honest_peers(cluster),
        }
    }
}

/// The flooder's peer: ping, and gossipsub streams of its own both ways
/// (a gossipsub behaviour would open a stream of its own to each node,
/// which replaces the flood stream: a node reads one inbound gossipsub
/// stream per connection).
#[derive(NetworkBehaviour)]
struct FlooderBehaviour {
    ping: ping::Behaviour,
    flood: request_response::Behaviour<FloodCodec>,
}

/// Connects to every honest validator with validator 3's node key and
/// writes `count` distinct votes by validator 3 with garbage consensus
/// signatures (for the next height of the honest chain, rounds inside the
/// engine's lookahead) into each node's gossipsub stream, as fast as each
/// node's connection takes them; stops early at `deadline`.
///
/// The votes go on raw gossipsub frames of [`VOTES_PER_FRAME`] messages
/// rather than through a gossipsub `publish`, whose per-peer queue (5,000
/// messages, sent one per write) overflows long before a node is the
/// limit: the test measures the node, not the flooder's gossipsub.
pub async fn flood_bad_votes(
    setup: VoteFloodSetup,
    height: Arc<AtomicU64>,
    count: u64,
    deadline: Instant,
    report: Arc<VoteFlood>,
) {
    let VoteFloodSetup {
        node_key,
        validator_key: key,
        chain_id,
        targets,
    } = setup;
    let keypair = network::identity::libp2p_keypair(&node_key);
    let frame_count = count.div_ceil(VOTES_PER_FRAME) as usize;
    let frames = Arc::new(VoteFrames {
        frames: (0..frame_count).map(|_| OnceLock::new()).collect(),
        height,
        node_key: keypair.clone(),
        author: keypair.public().to_peer_id().to_bytes(),
        // An `IdentTopic`'s hash is its name.
        topic: Topic::Consensus.name(&chain_id),
        chain_id,
        validator: key.public(),
        first_seqno: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |since| since.as_nanos() as u64),
    });
    let started = Instant::now();
    let protocol = StreamProtocol::new(GOSSIPSUB_PROTOCOL);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("a TCP transport")
        .with_behaviour(|_| FlooderBehaviour {
            ping: ping::Behaviour::default(),
            flood: request_response::Behaviour::with_codec(
                FloodCodec,
                [(protocol, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(deadline.saturating_duration_since(Instant::now())),
            ),
        })
        .expect("the flooder's behaviour")
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();

    for target in &targets {
        let _ = swarm.dial(
            DialOpts::peer_id(target.peer_id)
                .addresses(vec![target.address.clone()])
                .build(),
        );
    }
    let mut outstanding = 0usize;
    let mut streaming = [false; HONEST.len()];
    while Instant::now() < deadline {
        let event =
            tokio::time::timeout(Duration::from_millis(200), swarm.select_next_some()).await;
        match event {
            Ok(SwarmEvent::ConnectionEstablished { peer_id, .. }) => {
                // One stream per node (gossipsub takes only a few inbound
                // streams per connection).
                if let Some(target) = targets.iter().position(|known| known.peer_id == peer_id)
                    && !streaming[target]
                {
                    streaming[target] = true;
                    outstanding += 1;
                    swarm.behaviour_mut().flood.send_request(
                        &peer_id,
                        FloodStream {
                            frames: Arc::clone(&frames),
                            deadline,
                            report: Arc::clone(&report),
                            target,
                        },
                    );
                }
            }
            Ok(SwarmEvent::Behaviour(FlooderBehaviourEvent::Flood(
                request_response::Event::Message { .. },
            ))) => outstanding -= 1,
            Ok(SwarmEvent::Behaviour(FlooderBehaviourEvent::Flood(
                request_response::Event::OutboundFailure { error, .. },
            ))) => {
                tracing::warn!(%error, "a vote flood stream failed");
                report.stream_failures.fetch_add(1, Ordering::Relaxed);
                outstanding -= 1;
            }
            _ => {}
        }
        if streaming.iter().all(|&streaming| streaming) && outstanding == 0 {
            break;
        }
    }
    report.connected_at_end.store(
        u64::from(swarm.network_info().connection_counters().num_established()),
        Ordering::Relaxed,
    );
    report
        .elapsed_ms
        .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    report.done.store(true, Ordering::Relaxed);
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
