//! The node's peer-to-peer network: libp2p over TCP with Noise and Yamux.
//!
//! Only the peers listed in genesis (validators and observers) may connect:
//! any other peer id is refused right after the Noise handshake, before any
//! protocol runs. The node dials every known peer and re-dials lost ones with
//! exponential backoff. On top run:
//!
//! - gossipsub, one topic per message kind and chain ([`Topic`]), with signed
//!   messages and a size limit per topic;
//! - a request-response protocol for block sync ([`SyncRequest`],
//!   [`SyncResponse`]), length-prefixed borsh with a limit per direction.
//!
//! [`start`] spawns one task that owns the libp2p swarm. The node talks to it
//! through the cloneable [`Network`] handle and receives [`NetworkEvent`]s
//! from a channel, fed from a bounded, per-peer fair inbox (see `inbox`).
//! What one peer may cost — connections, handshakes, sync streams, sync
//! requests and bytes per second, queued messages — is bounded by
//! [`P2pLimits`] (`[p2p]` in `config.toml`); what is dropped for it is
//! counted in `scf_dropped_total`. This module moves bytes and enforces sizes and the
//! allow-list; it never decodes transactions, blocks or consensus messages:
//! that, and deduplicating what consensus rebroadcasts, is the node's job.

mod behaviour;
mod error;
pub mod identity;
mod inbox;
mod limits;
mod redial;
mod swarm_task;
mod sync_protocol;
mod topic;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::metrics::Drops;

pub use behaviour::SYNC_REQUEST_TIMEOUT;
pub use error::NetworkError;
pub use libp2p::{Multiaddr, PeerId};
pub use limits::{P2pLimits, TokenBucket};
pub use redial::{MAX_BACKOFF, MIN_BACKOFF};
pub use sync_protocol::{
    MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES, SyncCodec, SyncRequest, SyncResponse,
    SyncedBlock, encoded_len, protocol_name as sync_protocol_name,
};
pub use topic::{
    MAX_BLOCKS_MESSAGE_BYTES, MAX_CONSENSUS_MESSAGE_BYTES, MAX_TRANSACTIONS_MESSAGE_BYTES, Topic,
};

use behaviour::Behaviour;
use swarm_task::{Command, SwarmTask};

/// Messages waiting for the swarm task (publishes and requests).
pub const COMMAND_QUEUE_CAPACITY: usize = 1024;
/// Events handed to the node and not yet taken. Behind it, the inbox holds
/// more, bounded per peer and lane ([`P2pLimits`]); when a peer's share is
/// full its further events are dropped (counted) rather than stalling the
/// swarm: see [`NetworkEvent`].
pub const EVENT_QUEUE_CAPACITY: usize = 64;
/// How long [`start`] waits for the listener to come up.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Validators may have nothing to say for a long time; their connections
/// must stay open (gossipsub keeps only mesh connections alive by itself).
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// A node listed in genesis, other than this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPeer {
    /// Its name in genesis, for logs.
    pub name: String,
    pub peer_id: PeerId,
    /// Where to dial it.
    pub address: Multiaddr,
}

/// What [`start`] needs.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// This node's identity (see [`identity::libp2p_keypair`]).
    pub keypair: libp2p::identity::Keypair,
    /// Where to listen; port 0 picks a free port.
    pub listen: Multiaddr,
    /// Names the gossip topics and the sync protocol.
    pub chain_id: crypto::ChainId,
    /// Every genesis validator and observer except this node: the only peers
    /// allowed to connect, and the ones dialled.
    pub peers: Vec<KnownPeer>,
}

/// What the network tells the node.
///
/// Events go through a bounded inbox, fair between peers, and a channel of
/// [`EVENT_QUEUE_CAPACITY`]; a node that stops draining them loses events
/// (counted in `scf_dropped_total{queue="network"}`) rather than stalling
/// every connection.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossip message from an allowed peer, within its topic's limit, its
    /// author's signature checked. `from` is the author.
    ///
    /// It is not forwarded to other peers until the node reports its verdict
    /// with [`Network::report`].
    Gossip {
        topic: Topic,
        from: PeerId,
        bytes: Vec<u8>,
        message: GossipMessageRef,
    },
    /// A peer asks for sync data. Answer through `reply`; dropping it makes
    /// the request fail on the peer's side.
    SyncRequest {
        from: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<SyncResponse>,
    },
    /// The first connection to an allowed peer opened.
    PeerConnected(PeerId),
    /// The last connection to a peer closed (it will be re-dialled).
    PeerDisconnected(PeerId),
}

/// Names one received gossip message, for [`Network::report`].
#[derive(Debug, Clone)]
pub struct GossipMessageRef {
    pub(crate) id: libp2p::gossipsub::MessageId,
    pub(crate) propagation_source: PeerId,
}

/// The node's verdict on a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Valid and new: forward it to the other peers.
    Accept,
    /// Not harmful but not worth forwarding (a duplicate, a past height, a
    /// message the node could not judge for lack of capacity).
    Ignore,
    /// Invalid (malformed, badly signed, breaking a rule no honest peer
    /// breaks): dropped, and counted against the peer that sent it.
    Reject,
}

/// State the swarm task keeps up to date for the handles to read.
#[derive(Debug, Default)]
pub(crate) struct SharedState {
    pub(crate) connected: RwLock<BTreeSet<PeerId>>,
    pub(crate) listen_addrs: RwLock<Vec<Multiaddr>>,
}

/// A handle on the running network; cheap to clone. When every clone is
/// dropped the network stops.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

struct Inner {
    local_peer_id: PeerId,
    /// Replaced by [`Network::set_peers`].
    allowed: RwLock<BTreeSet<PeerId>>,
    commands: mpsc::Sender<Command>,
    state: Arc<SharedState>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("local_peer_id", &self.inner.local_peer_id)
            .field("connected", &self.connected_peers().len())
            .finish()
    }
}

/// Starts the network with the default [`P2pLimits`] and drop counters of
/// its own (tests and tools).
pub async fn start(
    config: NetworkConfig,
) -> Result<(Network, mpsc::Receiver<NetworkEvent>), NetworkError> {
    start_with(config, P2pLimits::default(), Drops::default()).await
}

/// Starts the network: builds the swarm, listens, and spawns the task that
/// runs it and dials the known peers. Returns once the listener is up.
pub async fn start_with(
    config: NetworkConfig,
    limits: P2pLimits,
    drops: Drops,
) -> Result<(Network, mpsc::Receiver<NetworkEvent>), NetworkError> {
    limits.check().map_err(NetworkError::Limits)?;
    let local_peer_id = config.keypair.public().to_peer_id();
    let peers: Vec<KnownPeer> = config
        .peers
        .into_iter()
        .filter(|peer| peer.peer_id != local_peer_id)
        .collect();
    let allowed: BTreeSet<PeerId> = peers.iter().map(|peer| peer.peer_id).collect();
    let behaviour = Behaviour::new(
        &config.keypair,
        &config.chain_id,
        allowed.iter().copied(),
        &limits,
    )?;

    let transport_error = |error: String| NetworkError::Transport(error);
    let Ok(builder) = libp2p::SwarmBuilder::with_existing_identity(config.keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|error| transport_error(error.to_string()))?
        .with_behaviour(|_| behaviour);
    let mut swarm = builder
        .with_swarm_config(|swarm_config| {
            swarm_config
                .with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
                .with_max_negotiating_inbound_streams(limits.max_negotiating_streams_per_connection)
        })
        .build();

    swarm
        .listen_on(config.listen.clone())
        .map_err(|error| NetworkError::Listen {
            address: config.listen.clone(),
            reason: error.to_string(),
        })?;
    let first_address = tokio::time::timeout(LISTEN_TIMEOUT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    let reason = match reason {
                        Ok(()) => "the listener closed".to_owned(),
                        Err(error) => error.to_string(),
                    };
                    return Err(reason);
                }
                SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                other => debug!(event = ?other, "network event before listening"),
            }
        }
    })
    .await
    .map_err(|_| NetworkError::ListenTimeout {
        address: config.listen.clone(),
        waited: LISTEN_TIMEOUT,
    })?
    .map_err(|reason| NetworkError::Listen {
        address: config.listen.clone(),
        reason,
    })?;
    info!(peer_id = %local_peer_id, address = %first_address, "network listening");

    let state = Arc::new(SharedState::default());
    state
        .listen_addrs
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push(first_address);
    let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
    let (events, events_rx) = mpsc::channel(EVENT_QUEUE_CAPACITY);
    let task = SwarmTask::new(
        swarm,
        &config.chain_id,
        &peers,
        commands_rx,
        events,
        Arc::clone(&state),
        limits,
        drops,
    );
    let task = tokio::spawn(task.run());
    let network = Network {
        inner: Arc::new(Inner {
            local_peer_id,
            allowed: RwLock::new(allowed),
            commands,
            state,
            task: Mutex::new(Some(task)),
        }),
    };
    Ok((network, events_rx))
}

impl Network {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer_id
    }

    /// The addresses the node actually listens on (with the real port when
    /// it was asked for port 0).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.inner
            .state
            .listen_addrs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The allowed peers with at least one open connection.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.inner
            .state
            .connected
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Queues a gossip message without waiting. Fails if it is over the
    /// topic's limit, if the queue is full, or if no peer is connected; the
    /// last two are benign (the message is simply not sent) and callers such
    /// as a lone validator may ignore them.
    pub fn publish(&self, topic: Topic, bytes: Vec<u8>) -> Result<(), NetworkError> {
        let limit = topic.max_bytes();
        if bytes.len() > limit {
            return Err(NetworkError::MessageTooLarge {
                topic,
                size: bytes.len(),
                limit,
            });
        }
        let nobody = self
            .inner
            .state
            .connected
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if nobody {
            return Err(NetworkError::NoConnectedPeers { topic });
        }
        self.inner
            .commands
            .try_send(Command::Publish { topic, bytes })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => NetworkError::QueueFull {
                    capacity: COMMAND_QUEUE_CAPACITY,
                },
                mpsc::error::TrySendError::Closed(_) => NetworkError::Stopped,
            })
    }

    /// Replaces the allow-list (and the peers dialled) with `peers`: as the
    /// validator set in force changes, a newly added validator's node may
    /// connect and is dialled, and a removed one's connections are closed.
    /// This node itself is left out. Waits for room in the command queue.
    pub async fn set_peers(&self, peers: Vec<KnownPeer>) {
        let local = self.inner.local_peer_id;
        let peers: Vec<KnownPeer> = peers
            .into_iter()
            .filter(|peer| peer.peer_id != local)
            .collect();
        {
            let mut allowed = self
                .inner
                .allowed
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            *allowed = peers.iter().map(|peer| peer.peer_id).collect();
        }
        let _ = self.inner.commands.send(Command::SetPeers { peers }).await;
    }

    /// Reports the node's verdict on a gossip message: only accepted
    /// messages are forwarded. Never waits; with the command queue full the
    /// verdict is dropped and the message expires unforwarded.
    pub fn report(&self, message: GossipMessageRef, verdict: GossipVerdict) {
        let _ = self
            .inner
            .commands
            .try_send(Command::Report { message, verdict });
    }

    /// Asks a connected peer for sync data; fails after
    /// [`SYNC_REQUEST_TIMEOUT`] without an answer.
    pub async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, NetworkError> {
        let allowed = self
            .inner
            .allowed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&peer);
        if !allowed {
            return Err(NetworkError::UnknownPeer { peer });
        }
        // The swarm task also times the request out; this bound covers a
        // swarm task that is gone or stuck.
        let waited = SYNC_REQUEST_TIMEOUT + Duration::from_secs(5);
        let exchange = async {
            let (reply, answer) = oneshot::channel();
            self.inner
                .commands
                .send(Command::Request {
                    peer,
                    request,
                    reply,
                })
                .await
                .map_err(|_| NetworkError::Stopped)?;
            answer.await.map_err(|_| NetworkError::Stopped)?
        };
        tokio::time::timeout(waited, exchange)
            .await
            .map_err(|_| NetworkError::RequestTimeout { peer, waited })?
    }

    /// Stops the swarm task and waits for it: every connection and the
    /// listener close. Later calls on any clone fail with
    /// [`NetworkError::Stopped`].
    pub async fn shutdown(&self) {
        // Fails only if the task has already stopped.
        let _ = self.inner.commands.send(Command::Shutdown).await;
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::warn!(%error, "the network task ended abnormally");
        }
    }
}
