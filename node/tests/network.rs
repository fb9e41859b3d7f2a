//! The node's libp2p network, end to end on 127.0.0.1: gossip on every topic,
//! block sync requests, the genesis allow-list, re-dialling, size limits.
//!
//! Every node listens on port 0. A node started before its peer cannot know
//! the peer's port, so it is given an unreachable placeholder address
//! (127.0.0.1 port 1, refused at once) and the later node dials it instead;
//! a test that needs a particular node to do the dialling arranges the start
//! order for it. Each test is bounded by [`TEST_TIMEOUT`]; gossip is
//! published again until it arrives, because a freshly connected peer is not
//! subscribed yet.

use std::collections::BTreeSet;
use std::time::Duration;

use crypto::{ChainId, Hash};
use libp2p::futures::StreamExt;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, Swarm, SwarmEvent};
use libp2p::{StreamProtocol, noise, tcp, yamux};
use node::network::{
    self, KnownPeer, MAX_SYNC_RESPONSE_BYTES, Multiaddr, Network, NetworkConfig, NetworkError,
    NetworkEvent, PeerId, SyncRequest, SyncResponse, SyncedBlock, Topic,
};
use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, timeout, timeout_at};

/// The bound on each test: generous, for a loaded 2-core machine.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one publish waits for delivery before it is published again,
/// plus [`DELIVERY_ROUND_PER_MIB`] for large messages (signing, sending and
/// checking 16 MiB takes a while in a debug build).
const DELIVERY_ROUND: Duration = Duration::from_millis(500);
const DELIVERY_ROUND_PER_MIB: Duration = Duration::from_millis(300);

fn chain_id() -> ChainId {
    ChainId(Hash([0x5c; 32]))
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn any_port() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("valid address")
}

/// Nothing listens on port 1: a dial there is refused at once.
fn unreachable_address() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/1".parse().expect("valid address")
}

struct TestNode {
    key: crypto::Keypair,
    network: Network,
    events: Receiver<NetworkEvent>,
}

impl TestNode {
    fn peer_id(&self) -> PeerId {
        self.network.local_peer_id()
    }

    fn address(&self) -> Multiaddr {
        self.network
            .listen_addrs()
            .first()
            .cloned()
            .expect("a listening node has an address")
    }

    fn known(&self) -> KnownPeer {
        KnownPeer {
            name: self.peer_id().to_string(),
            peer_id: self.peer_id(),
            address: self.address(),
        }
    }
}

fn known_at(key: &crypto::Keypair, address: Multiaddr) -> KnownPeer {
    let peer_id = network::identity::peer_id_of(key);
    KnownPeer {
        name: peer_id.to_string(),
        peer_id,
        address,
    }
}

async fn start_node(key: crypto::Keypair, listen: Multiaddr, peers: Vec<KnownPeer>) -> TestNode {
    let (network, events) = network::start(NetworkConfig {
        keypair: network::identity::libp2p_keypair(&key),
        listen,
        chain_id: chain_id(),
        peers,
    })
    .await
    .expect("the network starts");
    TestNode {
        key,
        network,
        events,
    }
}

/// Starts `count` nodes that all allow each other; each dials the ones
/// started before it.
async fn start_cluster(count: usize) -> Vec<TestNode> {
    let keys: Vec<crypto::Keypair> = (0..count).map(|_| crypto::Keypair::generate()).collect();
    let mut nodes: Vec<TestNode> = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let peers = keys
            .iter()
            .enumerate()
            .filter(|&(other, _)| other != index)
            .map(|(other, other_key)| match nodes.get(other) {
                Some(started) => started.known(),
                None => known_at(other_key, unreachable_address()),
            })
            .collect();
        nodes.push(start_node(key.clone(), any_port(), peers).await);
    }
    nodes
}

async fn wait_until_connected(network: &Network, peers: &[PeerId]) {
    loop {
        let connected: BTreeSet<PeerId> = network.connected_peers().into_iter().collect();
        if peers.iter().all(|peer| connected.contains(peer)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_event(
    events: &mut Receiver<NetworkEvent>,
    wanted: impl Fn(&NetworkEvent) -> bool,
) -> NetworkEvent {
    loop {
        let event = events.recv().await.expect("the network is running");
        if wanted(&event) {
            return event;
        }
    }
}

/// Publishes `bytes` from `sender` until every receiver got it, checking the
/// author it reports.
async fn deliver(sender: &Network, topic: Topic, bytes: &[u8], receivers: &mut [&mut TestNode]) {
    let mut pending: Vec<usize> = (0..receivers.len()).collect();
    while !pending.is_empty() {
        // Ignored: before the first connection there is nobody to send to.
        let _ = sender.publish(topic, bytes.to_vec());
        let mebibytes = u32::try_from(bytes.len() >> 20).expect("a gossip message is small");
        let round_end = Instant::now() + DELIVERY_ROUND + DELIVERY_ROUND_PER_MIB * mebibytes;
        let mut still_pending = Vec::new();
        for index in pending {
            let receiver = &mut *receivers[index];
            let mut delivered = false;
            while let Ok(event) = timeout_at(round_end, receiver.events.recv()).await {
                match event.expect("the network is running") {
                    NetworkEvent::Gossip {
                        topic: got,
                        from,
                        bytes: received,
                        ..
                    } if got == topic && received == bytes => {
                        assert_eq!(from, sender.local_peer_id(), "the author is reported");
                        delivered = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !delivered {
                still_pending.push(index);
            }
        }
        pending = still_pending;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_gossip_every_topic_to_each_other() {
    init_logs();
    timeout(TEST_TIMEOUT, async {
        let mut nodes = start_cluster(3).await;
        let ids: Vec<PeerId> = nodes.iter().map(TestNode::peer_id).collect();
        for node in &nodes {
            let others: Vec<PeerId> = ids
                .iter()
                .copied()
                .filter(|id| *id != node.peer_id())
                .collect();
            wait_until_connected(&node.network, &others).await;
        }

        for topic in Topic::ALL {
            for sender in 0..nodes.len() {
                let bytes = format!("{topic:?} from node {sender}").into_bytes();
                let network = nodes[sender].network.clone();
                let mut receivers: Vec<&mut TestNode> = nodes
                    .iter_mut()
                    .enumerate()
                    .filter(|&(index, _)| index != sender)
                    .map(|(_, node)| node)
                    .collect();
                deliver(&network, topic, &bytes, &mut receivers).await;
            }
        }

        // A message exactly at its topic's limit goes through.
        for topic in Topic::ALL {
            let mut bytes = vec![0xa5; topic.max_bytes()];
            bytes[0] = topic as u8;
            let network = nodes[0].network.clone();
            let (_, rest) = nodes.split_at_mut(1);
            let mut receivers: Vec<&mut TestNode> = rest.iter_mut().collect();
            deliver(&network, topic, &bytes, &mut receivers).await;
        }

        for node in &nodes {
            node.network.shutdown().await;
        }
    })
    .await
    .expect("test finished in time");
}

/// Answers sync requests like a node would, with recognisable data:
/// `Blocks` ranges starting at 1000 answer too much, at 2000 not at all.
fn spawn_responder(mut node: TestNode, asker: PeerId, known: Hash) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = node.events.recv().await {
            let NetworkEvent::SyncRequest {
                from,
                request,
                reply,
            } = event
            else {
                continue;
            };
            assert_eq!(from, asker, "the asker is reported");
            let answer = match request {
                SyncRequest::Status => SyncResponse::Status { height: 12 },
                SyncRequest::Blocks { from: 2000, .. } => {
                    drop(reply);
                    continue;
                }
                SyncRequest::Blocks { from: 1000, .. } => SyncResponse::Blocks(vec![SyncedBlock {
                    block: vec![0; MAX_SYNC_RESPONSE_BYTES],
                    certificate: Vec::new(),
                }]),
                SyncRequest::Blocks { from, to } => SyncResponse::Blocks(
                    (from..=to)
                        .map(|height| SyncedBlock {
                            block: height.to_le_bytes().to_vec(),
                            certificate: vec![height as u8; 3],
                        })
                        .collect(),
                ),
                SyncRequest::BlockByHash(hash) if hash == known => {
                    SyncResponse::Block(Some(b"the known block".to_vec()))
                }
                SyncRequest::BlockByHash(_) => SyncResponse::Block(None),
            };
            let _ = reply.send(answer);
        }
        node.network.shutdown().await;
    })
}

/// Two connected nodes: the asker and the other one, answering.
async fn asker_and_responder() -> (TestNode, PeerId, tokio::task::JoinHandle<()>, Hash) {
    let mut nodes = start_cluster(2).await;
    let responder = nodes.pop().expect("two nodes");
    let asker = nodes.pop().expect("two nodes");
    wait_until_connected(&asker.network, &[responder.peer_id()]).await;
    let responder_id = responder.peer_id();
    let known = Hash([0x11; 32]);
    let task = spawn_responder(responder, asker.peer_id(), known);
    (asker, responder_id, task, known)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_requests_get_their_answers() {
    init_logs();
    timeout(TEST_TIMEOUT, async {
        let (asker, responder, _task, known) = asker_and_responder().await;
        let network = &asker.network;

        let status = network.request(responder, SyncRequest::Status).await;
        assert_eq!(
            status.expect("answered"),
            SyncResponse::Status { height: 12 }
        );

        let blocks = network
            .request(responder, SyncRequest::Blocks { from: 3, to: 5 })
            .await
            .expect("answered");
        let SyncResponse::Blocks(blocks) = blocks else {
            panic!("expected blocks, got {blocks:?}");
        };
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0].block, 3u64.to_le_bytes());
        assert_eq!(blocks[2].certificate, [5, 5, 5]);

        let block = network
            .request(responder, SyncRequest::BlockByHash(known))
            .await;
        assert_eq!(
            block.expect("answered"),
            SyncResponse::Block(Some(b"the known block".to_vec()))
        );
        let missing = network
            .request(responder, SyncRequest::BlockByHash(Hash([0x22; 32])))
            .await;
        assert_eq!(missing.expect("answered"), SyncResponse::Block(None));

        network.shutdown().await;
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_sync_answer_is_refused_and_the_asker_told_why() {
    init_logs();
    timeout(TEST_TIMEOUT, async {
        let (asker, responder, _task, _) = asker_and_responder().await;
        let network = &asker.network;

        let answer = network
            .request(
                responder,
                SyncRequest::Blocks {
                    from: 1000,
                    to: 1000,
                },
            )
            .await
            .expect("answered");
        let SyncResponse::Error(reason) = answer else {
            panic!("expected a refusal, got {answer:?}");
        };
        assert!(reason.contains("exceeds the sync limit"), "{reason}");

        // The connection is still good.
        let status = network.request(responder, SyncRequest::Status).await;
        assert_eq!(
            status.expect("answered"),
            SyncResponse::Status { height: 12 }
        );
        network.shutdown().await;
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_sync_request_fails_and_unknown_or_absent_peers_fail_at_once() {
    init_logs();
    timeout(TEST_TIMEOUT, async {
        let (asker, responder, _task, _) = asker_and_responder().await;
        let network = &asker.network;

        let dropped = network
            .request(
                responder,
                SyncRequest::Blocks {
                    from: 2000,
                    to: 2001,
                },
            )
            .await;
        assert!(
            matches!(dropped, Err(NetworkError::RequestFailed { peer, .. }) if peer == responder),
            "{dropped:?}"
        );

        let stranger = network::identity::peer_id_of(&crypto::Keypair::generate());
        let unknown = network.request(stranger, SyncRequest::Status).await;
        assert!(
            matches!(unknown, Err(NetworkError::UnknownPeer { peer }) if peer == stranger),
            "{unknown:?}"
        );
        network.shutdown().await;

        // Allowed but never started.
        let absent_key = crypto::Keypair::generate();
        let lonely = start_node(
            crypto::Keypair::generate(),
            any_port(),
            vec![known_at(&absent_key, unreachable_address())],
        )
        .await;
        let absent = network::identity::peer_id_of(&absent_key);
        let answer = lonely.network.request(absent, SyncRequest::Status).await;
        assert!(
            matches!(answer, Err(NetworkError::NotConnected { peer }) if peer == absent),
            "{answer:?}"
        );
        let published = lonely.network.publish(Topic::Consensus, vec![1, 2, 3]);
        assert!(
            matches!(published, Err(NetworkError::NoConnectedPeers { .. })),
            "{published:?}"
        );
        lonely.network.shutdown().await;
        let stopped = lonely.network.publish(Topic::Consensus, vec![1]);
        assert!(
            matches!(
                stopped,
                Err(NetworkError::Stopped | NetworkError::NoConnectedPeers { .. })
            ),
            "{stopped:?}"
        );
        let stopped = lonely.network.request(absent, SyncRequest::Status).await;
        assert!(matches!(stopped, Err(NetworkError::Stopped)), "{stopped:?}");
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_outside_the_allow_list_can_neither_stay_connected_nor_deliver_gossip() {
    init_logs();
    timeout(TEST_TIMEOUT, async {
        let mut nodes = start_cluster(2).await;
        let mut second = nodes.pop().expect("two nodes");
        let mut first = nodes.pop().expect("two nodes");
        wait_until_connected(&first.network, &[second.peer_id()]).await;

        // The intruder knows both nodes and dials them; neither lists it.
        let intruder = start_node(
            crypto::Keypair::generate(),
            any_port(),
            vec![first.known(), second.known()],
        )
        .await;
        let intruder_id = intruder.peer_id();

        let refused = |event: &NetworkEvent| match event {
            NetworkEvent::PeerConnected(peer) | NetworkEvent::PeerDisconnected(peer) => {
                *peer == intruder_id
            }
            NetworkEvent::Gossip { from, .. } | NetworkEvent::SyncRequest { from, .. } => {
                *from == intruder_id
            }
        };
        let watch_until = Instant::now() + Duration::from_secs(6);
        let mut round = 0u32;
        while Instant::now() < watch_until {
            round += 1;
            for topic in Topic::ALL {
                let _ = intruder
                    .network
                    .publish(topic, format!("intrusion {round}").into_bytes());
            }
            let _ = second
                .network
                .publish(Topic::Transactions, format!("allowed {round}").into_bytes());
            let round_end = Instant::now() + Duration::from_millis(300);
            for node in [&mut first, &mut second] {
                while let Ok(event) = timeout_at(round_end, node.events.recv()).await {
                    let event = event.expect("the network is running");
                    assert!(!refused(&event), "the intruder got through: {event:?}");
                }
                assert!(!node.network.connected_peers().contains(&intruder_id));
            }
        }
        let request = intruder
            .network
            .request(first.peer_id(), SyncRequest::Status)
            .await;
        assert!(request.is_err(), "{request:?}");

        // Meanwhile the allowed nodes still talk to each other.
        assert_eq!(first.network.connected_peers(), [second.peer_id()]);
        let network = second.network.clone();
        deliver(&network, Topic::Consensus, b"still fine", &mut [&mut first]).await;

        for node in [&first, &second, &intruder] {
            node.network.shutdown().await;
        }
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_is_redialled_and_reconnects() {
    init_logs();
    timeout(TEST_TIMEOUT, async {
        // `restarting` starts first, so `dialler` knows its real address.
        let restarting_key = crypto::Keypair::generate();
        let dialler_key = crypto::Keypair::generate();
        let restarting = start_node(
            restarting_key.clone(),
            any_port(),
            vec![known_at(&dialler_key, unreachable_address())],
        )
        .await;
        let restarting_id = restarting.peer_id();
        let address = restarting.address();
        let mut dialler = start_node(dialler_key, any_port(), vec![restarting.known()]).await;
        wait_for_event(
            &mut dialler.events,
            |event| matches!(event, NetworkEvent::PeerConnected(peer) if *peer == restarting_id),
        )
        .await;

        restarting.network.shutdown().await;
        wait_for_event(
            &mut dialler.events,
            |event| matches!(event, NetworkEvent::PeerDisconnected(peer) if *peer == restarting_id),
        )
        .await;
        assert!(dialler.network.connected_peers().is_empty());
        // Let a few re-dials fail while it is down.
        tokio::time::sleep(Duration::from_secs(1)).await;

        // Back on the same address; it cannot dial out (the placeholder), so
        // only the other node's re-dial can bring them together.
        let restarted = start_node(
            restarting.key.clone(),
            address.clone(),
            vec![known_at(&dialler.key, unreachable_address())],
        )
        .await;
        assert_eq!(restarted.address(), address);
        wait_for_event(
            &mut dialler.events,
            |event| matches!(event, NetworkEvent::PeerConnected(peer) if *peer == restarting_id),
        )
        .await;
        wait_until_connected(&restarted.network, &[dialler.peer_id()]).await;

        let mut restarted = restarted;
        let network = dialler.network.clone();
        deliver(
            &network,
            Topic::Blocks,
            b"welcome back",
            &mut [&mut restarted],
        )
        .await;

        dialler.network.shutdown().await;
        restarted.network.shutdown().await;
    })
    .await
    .expect("test finished in time");
}

// --- A hand-built peer that sends what a well-behaved node never would. ---

/// Writes and reads raw frames in the sync protocol's format (4-byte length,
/// body), with no limit of its own.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response).await
    }
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> std::io::Result<Vec<u8>> {
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let mut body = vec![0; u32::from_be_bytes(prefix) as usize];
    io.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, body: &[u8]) -> std::io::Result<()> {
    let length = u32::try_from(body.len()).expect("a test frame fits");
    io.write_all(&length.to_be_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await
}

#[derive(NetworkBehaviour)]
struct RawBehaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<RawCodec>,
}

/// A peer with an allowed key but none of the node's limits.
fn raw_peer(key: &crypto::Keypair) -> Swarm<RawBehaviour> {
    let keypair = network::identity::libp2p_keypair(key);
    let config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(1024 * 1024)
        .heartbeat_interval(Duration::from_millis(200))
        .build()
        .expect("gossipsub config");
    let mut gossipsub =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair.clone()), config)
            .expect("gossipsub");
    gossipsub
        .subscribe(&IdentTopic::new(Topic::Consensus.name(&chain_id())))
        .expect("subscribe");
    let sync = request_response::Behaviour::with_codec(
        RawCodec,
        [(
            network::sync_protocol_name(&chain_id()),
            ProtocolSupport::Full,
        )],
        request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
    );
    let Ok(builder) = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("transport")
        .with_behaviour(|_| RawBehaviour { gossipsub, sync });
    builder
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(600)))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_gossip_is_refused_by_publish_and_never_delivered() {
    init_logs();
    timeout(TEST_TIMEOUT, async {
        let raw_key = crypto::Keypair::generate();
        let mut node = start_node(
            crypto::Keypair::generate(),
            any_port(),
            vec![known_at(&raw_key, unreachable_address())],
        )
        .await;

        for topic in Topic::ALL {
            let refused = node.network.publish(topic, vec![0; topic.max_bytes() + 1]);
            assert!(
                matches!(
                    refused,
                    Err(NetworkError::MessageTooLarge { size, limit, .. })
                        if size == topic.max_bytes() + 1 && limit == topic.max_bytes()
                ),
                "{topic:?}: {refused:?}"
            );
        }

        // A peer without the limit sends, in order: just over the topic's
        // limit (within gossipsub's own envelope allowance), far over it, and
        // a small marker. Only the marker may arrive.
        let mut raw = raw_peer(&raw_key);
        raw.dial(node.address()).expect("dial");
        let topic = IdentTopic::new(Topic::Consensus.name(&chain_id()));
        let limit = Topic::Consensus.max_bytes();
        let mut tick = tokio::time::interval(Duration::from_millis(300));
        let mut round = 0u32;
        loop {
            tokio::select! {
                _ = raw.select_next_some() => {}
                _ = tick.tick() => {
                    round += 1;
                    let gossip = &mut raw.behaviour_mut().gossipsub;
                    let _ = gossip.publish(topic.clone(), vec![1; limit + 1]);
                    let _ = gossip.publish(topic.clone(), vec![2; 64 * 1024]);
                    let _ = gossip.publish(topic.clone(), format!("marker {round}").into_bytes());
                }
                event = node.events.recv() => {
                    if let NetworkEvent::Gossip { bytes, .. } = event.expect("the network is running") {
                        assert!(bytes.len() <= limit, "an oversize message of {} bytes arrived", bytes.len());
                        if bytes.starts_with(b"marker") {
                            break;
                        }
                    }
                }
            }
        }
        node.network.shutdown().await;
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_sync_request_is_refused() {
    init_logs();
    timeout(TEST_TIMEOUT, async {
        let raw_key = crypto::Keypair::generate();
        let mut node = start_node(
            crypto::Keypair::generate(),
            any_port(),
            vec![known_at(&raw_key, unreachable_address())],
        )
        .await;
        let node_id = node.peer_id();
        let mut raw = raw_peer(&raw_key);
        raw.dial(node.address()).expect("dial");
        loop {
            if let SwarmEvent::ConnectionEstablished { peer_id, .. } = raw.select_next_some().await
                && peer_id == node_id
            {
                break;
            }
        }

        // A well-formed request through the raw codec is answered...
        let status = borsh::to_vec(&SyncRequest::Status).expect("encode");
        let ok = raw.behaviour_mut().sync.send_request(&node_id, status);
        // ...one over the request limit is not.
        let oversize = raw
            .behaviour_mut()
            .sync
            .send_request(&node_id, vec![0; network::MAX_SYNC_REQUEST_BYTES + 1]);
        let (mut answered, mut refused) = (false, false);
        while !(answered && refused) {
            tokio::select! {
                event = raw.select_next_some() => match event {
                    SwarmEvent::Behaviour(RawBehaviourEvent::Sync(request_response::Event::Message {
                        message: request_response::Message::Response { request_id, response },
                        ..
                    })) => {
                        assert_eq!(request_id, ok, "only the small request is answered");
                        let expected = borsh::to_vec(&SyncResponse::Status { height: 5 }).expect("encode");
                        assert_eq!(response, expected);
                        answered = true;
                    }
                    SwarmEvent::Behaviour(RawBehaviourEvent::Sync(request_response::Event::OutboundFailure {
                        request_id, ..
                    })) => {
                        assert_eq!(request_id, oversize, "only the oversize request fails");
                        refused = true;
                    }
                    _ => {}
                },
                event = node.events.recv() => {
                    if let NetworkEvent::SyncRequest { request, reply, .. } = event.expect("running") {
                        assert_eq!(request, SyncRequest::Status, "only the small request reaches the node");
                        let _ = reply.send(SyncResponse::Status { height: 5 });
                    }
                }
            }
        }
        node.network.shutdown().await;
    })
    .await
    .expect("test finished in time");
}
