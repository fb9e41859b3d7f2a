//! The task that owns the libp2p swarm: it carries out the handles'
//! commands, turns swarm events into [`NetworkEvent`]s, checks every gossip
//! message's author and size before the node (or any other peer) sees it,
//! and re-dials lost peers.
//!
//! It never waits on the node: events go into the bounded, per-peer fair
//! [`Inbox`] and from there into the node's channel as it makes room, so a
//! slow node cannot stall connections and one flooding peer cannot crowd
//! out the others; a sync answer the node owes is awaited as one future
//! among others. Sync requests are rate-limited per peer (requests and
//! bytes served, [`P2pLimits`]) before the node sees them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::futures::stream::FuturesUnordered;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, ListenError, Swarm, SwarmEvent};
use libp2p::{PeerId, ping};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, trace, warn};

use super::behaviour::{Behaviour, BehaviourEvent, SYNC_REQUEST_TIMEOUT};
use super::inbox::{Inbox, event_kind};
use super::limits::{P2pLimits, TokenBucket};
use super::redial::Redial;
use super::sync_protocol::{MAX_SYNC_RESPONSE_BYTES, SyncRequest, SyncResponse, encoded_len};
use super::topic::{ChainTopics, Topic};
use super::{GossipMessageRef, GossipVerdict, KnownPeer, NetworkError, NetworkEvent, SharedState};
use crate::metrics::Drops;

/// What a peer may still ask of this node's sync service.
struct SyncBudget {
    requests: TokenBucket,
    bytes: TokenBucket,
    /// Requests accepted and not answered yet.
    owed: usize,
}

/// What a [`super::Network`] handle asks of the swarm task.
pub(crate) enum Command {
    Publish {
        topic: Topic,
        bytes: Vec<u8>,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, NetworkError>>,
    },
    /// The node's verdict on a gossip message it was given.
    Report {
        message: GossipMessageRef,
        verdict: GossipVerdict,
    },
    /// The new allow-list (this node left out).
    SetPeers {
        peers: Vec<KnownPeer>,
    },
    Shutdown,
}

/// A sync answer the node owes a peer: resolves when the node replies, drops
/// the reply, or takes longer than the peer will wait.
type OwedAnswer = Pin<
    Box<dyn Future<Output = (PeerId, ResponseChannel<SyncResponse>, Option<SyncResponse>)> + Send>,
>;

pub(crate) struct SwarmTask {
    swarm: Swarm<Behaviour>,
    topics: ChainTopics,
    names: BTreeMap<PeerId, String>,
    redial: Redial,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    state: Arc<SharedState>,
    requests: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, NetworkError>>>,
    answers: FuturesUnordered<OwedAnswer>,
    inbox: Inbox,
    limits: P2pLimits,
    drops: Drops,
    /// Per peer that asked something; only allowed peers connect, so the
    /// map is bounded by the genesis list.
    sync_budgets: BTreeMap<PeerId, SyncBudget>,
    /// Drops since the last warning (a flood must not flood the log too).
    dropped_since_warning: u64,
    /// Graylisted peers disconnected and refused, until when.
    banned: BTreeMap<PeerId, Instant>,
    graylist_threshold: f64,
}

/// How often peer scores are looked at for graylisted peers.
const SCORE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl SwarmTask {
    // Every argument is a distinct part the task owns; a struct built only
    // to pass them would add nothing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        chain_id: &crypto::ChainId,
        peers: &[KnownPeer],
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
        state: Arc<SharedState>,
        limits: P2pLimits,
        drops: Drops,
    ) -> SwarmTask {
        SwarmTask {
            swarm,
            topics: ChainTopics::new(chain_id),
            names: peers
                .iter()
                .map(|peer| (peer.peer_id, peer.name.clone()))
                .collect(),
            redial: Redial::new(
                peers
                    .iter()
                    .map(|peer| (peer.peer_id, peer.address.clone())),
                Instant::now(),
            ),
            commands,
            events,
            state,
            requests: HashMap::new(),
            answers: FuturesUnordered::new(),
            inbox: Inbox::new(&limits),
            limits,
            drops,
            sync_budgets: BTreeMap::new(),
            dropped_since_warning: 0,
            banned: BTreeMap::new(),
            graylist_threshold: gossipsub::PeerScoreThresholds::default().graylist_threshold,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut score_check = tokio::time::interval(SCORE_CHECK_INTERVAL);
        score_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // With no dial pending, sleep "forever" (the branch is re-armed
            // on every iteration).
            let next_dial = self
                .redial
                .next_due()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            // An owned permit: the branch's output must not borrow `self`.
            let room = self.events.clone();
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                Some((peer, channel, answer)) = self.answers.next(), if !self.answers.is_empty() => {
                    self.send_answer(peer, channel, answer);
                }
                Ok(permit) = room.reserve_owned(), if !self.inbox.is_empty() => {
                    if let Some(event) = self.inbox.pop() {
                        permit.send(event);
                    }
                }
                () = tokio::time::sleep_until(next_dial.into()) => self.dial_due(),
                _ = score_check.tick(), if self.limits.graylisted_peer_ban_seconds > 0 => {
                    self.check_scores();
                }
            }
        }
        info!(peer_id = %self.swarm.local_peer_id(), "network stopped");
    }

    fn name(&self, peer: &PeerId) -> &str {
        self.names.get(peer).map_or("?", String::as_str)
    }

    /// Queues an event for the node; `false` if it was dropped because its
    /// peer's share of the inbox is full (counted; a dropped gossip message
    /// is reported `Ignore`, a dropped sync request fails on the peer's
    /// side).
    fn emit(&mut self, event: NetworkEvent) -> bool {
        if self.events.is_closed() {
            trace!("the node no longer takes network events");
            return false;
        }
        // Straight to the node when the inbox is empty and the channel has
        // room: the common case costs no queueing.
        let event = if self.inbox.is_empty() {
            match self.events.try_send(event) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Full(event)) => event,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        } else {
            event
        };
        match self.inbox.push(event) {
            Ok(()) => true,
            Err(event) => {
                let kind = event_kind(&event);
                self.drops.count("network", kind);
                self.dropped_since_warning += 1;
                if self.dropped_since_warning == 1
                    || self.dropped_since_warning.is_multiple_of(10_000)
                {
                    warn!(
                        event = kind,
                        queued = self.inbox.len(),
                        dropped = self.dropped_since_warning,
                        "a peer's share of the network inbox is full; dropping its events (scf_dropped_total)"
                    );
                }
                if let NetworkEvent::Gossip { message, .. } = event {
                    self.report(message, GossipVerdict::Ignore);
                }
                false
            }
        }
    }

    /// Tells gossipsub whether to forward a message (and to score its
    /// sender: a rejected message counts against the peer that sent it).
    fn report(&mut self, message: GossipMessageRef, verdict: GossipVerdict) {
        let acceptance = match verdict {
            GossipVerdict::Accept => MessageAcceptance::Accept,
            GossipVerdict::Ignore => MessageAcceptance::Ignore,
            GossipVerdict::Reject => MessageAcceptance::Reject,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&message.id, &message.propagation_source, acceptance);
    }

    /// Disconnects and refuses graylisted peers for a while; lets banned
    /// peers back once the ban is over and their score has recovered.
    /// Only rejected messages lower a score (see `behaviour::peer_scoring`),
    /// and an honest node relays only messages it accepted, so an honest
    /// peer is never graylisted for what others sent through it.
    fn check_scores(&mut self) {
        let now = Instant::now();
        let ban = Duration::from_secs(self.limits.graylisted_peer_ban_seconds);
        let connected: Vec<PeerId> = self
            .state
            .connected
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        let threshold = self.graylist_threshold;
        let graylisted = |task: &SwarmTask, peer: &PeerId| {
            task.swarm
                .behaviour()
                .gossipsub
                .peer_score(peer)
                .is_some_and(|score| score < threshold)
        };
        for peer in connected {
            if !self.banned.contains_key(&peer) && graylisted(self, &peer) {
                warn!(
                    %peer,
                    name = self.name(&peer),
                    seconds = ban.as_secs(),
                    "peer graylisted for rejected messages; disconnecting and refusing it"
                );
                self.drops.count("network", "graylisted peer");
                self.swarm.behaviour_mut().allowed.disallow_peer(peer);
                self.banned.insert(peer, now + ban);
            }
        }
        let over: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in over {
            if graylisted(self, &peer) {
                self.banned.insert(peer, now + ban);
            } else {
                info!(%peer, name = self.name(&peer), "graylisted peer's ban is over");
                self.banned.remove(&peer);
                // Unless it left the allow-list meanwhile.
                if self.names.contains_key(&peer) {
                    self.swarm.behaviour_mut().allowed.allow_peer(peer);
                }
            }
        }
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        for (peer, address) in self.redial.due(now) {
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![address.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => trace!(%peer, %address, "dialling"),
                Err(DialError::DialPeerConditionFalse(_)) if self.swarm.is_connected(&peer) => {
                    self.redial.connected(&peer, now);
                }
                Err(error) => {
                    debug!(%peer, %address, %error, "cannot dial");
                    self.redial.dial_failed(&peer, now);
                }
            }
        }
    }

    /// Allows and dials peers new to the list; disallows (closing their
    /// connections) and stops dialling those no longer on it. A graylisted
    /// peer stays refused until its ban is over.
    fn set_peers(&mut self, peers: Vec<KnownPeer>) {
        let now = Instant::now();
        let wanted: BTreeMap<PeerId, KnownPeer> =
            peers.into_iter().map(|peer| (peer.peer_id, peer)).collect();
        let gone: Vec<PeerId> = self
            .names
            .keys()
            .filter(|peer| !wanted.contains_key(peer))
            .copied()
            .collect();
        for peer in gone {
            info!(%peer, name = self.name(&peer), "peer no longer on the allow-list; disconnecting it");
            self.swarm.behaviour_mut().allowed.disallow_peer(peer);
            self.redial.remove(&peer);
            self.names.remove(&peer);
            self.sync_budgets.remove(&peer);
        }
        for (peer, known) in wanted {
            if !self.names.contains_key(&peer) {
                info!(%peer, name = %known.name, address = %known.address, "peer added to the allow-list");
                if !self.banned.contains_key(&peer) {
                    self.swarm.behaviour_mut().allowed.allow_peer(peer);
                }
            }
            self.redial.add(peer, known.address, now);
            self.names.insert(peer, known.name);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, bytes } => {
                let hash = self.topics.hash(topic);
                match self.swarm.behaviour_mut().gossipsub.publish(hash, bytes) {
                    Ok(_) => {}
                    Err(PublishError::NoPeersSubscribedToTopic) => {
                        debug!(
                            ?topic,
                            "no connected peer is subscribed yet; message not sent"
                        );
                    }
                    Err(error) => {
                        self.drops.count("network", "publish failed");
                        debug!(?topic, %error, "gossip publish failed");
                    }
                }
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                if !self.swarm.is_connected(&peer) {
                    let _ = reply.send(Err(NetworkError::NotConnected { peer }));
                    return;
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.requests.insert(id, reply);
            }
            Command::Report { message, verdict } => self.report(message, verdict),
            Command::SetPeers { peers } => self.set_peers(peers),
            Command::Shutdown => {}
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => self.on_ping(event),
            SwarmEvent::Behaviour(BehaviourEvent::Allowed(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                if num_established.get() == 1 {
                    info!(
                        peer = %peer_id,
                        name = self.name(&peer_id),
                        address = %endpoint.get_remote_address(),
                        "peer connected"
                    );
                    self.state
                        .connected
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(peer_id);
                    self.redial.connected(&peer_id, Instant::now());
                    self.emit(NetworkEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                if num_established == 0 {
                    let cause = cause.map_or_else(|| "closed".to_owned(), |c| c.to_string());
                    info!(peer = %peer_id, name = self.name(&peer_id), %cause, "peer disconnected");
                    self.state
                        .connected
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&peer_id);
                    self.redial.disconnected(&peer_id, Instant::now());
                    self.emit(NetworkEvent::PeerDisconnected(peer_id));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let Some(peer) = peer_id else { return };
                self.redial.dial_failed(&peer, Instant::now());
                match error {
                    DialError::WrongPeerId { obtained, address } => warn!(
                        %peer,
                        name = self.name(&peer),
                        %address,
                        %obtained,
                        "the address answered with another peer id; check genesis"
                    ),
                    error => debug!(%peer, name = self.name(&peer), %error, "dial failed"),
                }
            }
            SwarmEvent::IncomingConnectionError {
                error,
                peer_id,
                send_back_addr,
                ..
            } => match error {
                ListenError::Denied { cause } => warn!(
                    peer = ?peer_id,
                    address = %send_back_addr,
                    %cause,
                    "refused a connection from a peer outside the allow-list (genesis observers and the validators in force)"
                ),
                error => debug!(address = %send_back_addr, %error, "incoming connection failed"),
            },
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                let mut addresses = self
                    .state
                    .listen_addrs
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                info!(%address, "no longer listening");
                self.state
                    .listen_addrs
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|known| *known != address);
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => warn!(?addresses, ?reason, "listener closed"),
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            other => trace!(event = ?other, "swarm event"),
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let topic = self.topics.topic(&message.topic);
                let verdict = match (topic, message.source) {
                    (None, _) => Err("an unknown topic".to_owned()),
                    (_, None) => Err("no author".to_owned()),
                    // Peers outside genesis cannot connect; a message they
                    // authored can only come from a peer relaying it.
                    (Some(_), Some(author)) if !self.names.contains_key(&author) => {
                        Err(format!("author {author} outside genesis"))
                    }
                    (Some(topic), Some(_)) if message.data.len() > topic.max_bytes() => {
                        Err(format!(
                            "{} bytes over the limit of {}",
                            message.data.len(),
                            topic.max_bytes()
                        ))
                    }
                    (Some(topic), Some(author)) => Ok((topic, author)),
                };
                match verdict {
                    // Relayed only once the node has judged the content
                    // (`Network::report`): nothing unverified is forwarded.
                    Ok((topic, from)) => {
                        let reference = GossipMessageRef {
                            id: message_id,
                            propagation_source,
                        };
                        let event = NetworkEvent::Gossip {
                            topic,
                            from,
                            bytes: message.data,
                            message: reference.clone(),
                        };
                        // A dropped message is reported `Ignore` by `emit`.
                        let _ = self.emit(event);
                    }
                    Err(reason) => {
                        warn!(
                            from = %propagation_source,
                            topic = %message.topic,
                            %reason,
                            "dropped a gossip message"
                        );
                        self.report(
                            GossipMessageRef {
                                id: message_id,
                                propagation_source,
                            },
                            GossipVerdict::Reject,
                        );
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "peer subscribed");
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "peer unsubscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                warn!(peer = %peer_id, "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                warn!(peer = %peer_id, ?failed_messages, "peer is too slow to take gossip");
            }
        }
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_sync_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, %error, "sync request failed");
                if let Some(reply) = self.requests.remove(&request_id) {
                    let error = match error {
                        OutboundFailure::Timeout => NetworkError::RequestTimeout {
                            peer,
                            waited: SYNC_REQUEST_TIMEOUT,
                        },
                        error => NetworkError::RequestFailed {
                            peer,
                            reason: error.to_string(),
                        },
                    };
                    let _ = reply.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "answering a sync request failed");
            }
            request_response::Event::ResponseSent { peer, .. } => {
                trace!(%peer, "sync answer sent");
            }
        }
    }

    /// Admits a peer's sync request if its budget allows: fewer than
    /// `max_owed_sync_answers_per_peer` unanswered, a request token, and no
    /// debt of bytes served. Otherwise it is answered at once with an error
    /// saying why (a few bytes), and counted.
    fn on_sync_request(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let now = Instant::now();
        let limits = &self.limits;
        let budget = self.sync_budgets.entry(peer).or_insert_with(|| SyncBudget {
            requests: TokenBucket::new(
                u64::from(limits.sync_request_burst),
                u64::from(limits.sync_requests_per_second),
                now,
            ),
            bytes: TokenBucket::new(limits.sync_bytes_burst, limits.sync_bytes_per_second, now),
            owed: 0,
        });
        let refusal = if budget.owed >= limits.max_owed_sync_answers_per_peer {
            Some((
                "sync owed",
                "too many unanswered sync requests; wait for the answers",
            ))
        } else if !budget.bytes.ready(now) {
            Some(("sync bytes", "sync bytes rate limit reached; retry later"))
        } else if !budget.requests.take(1, now) {
            Some(("sync rate", "sync request rate limit reached; retry later"))
        } else {
            None
        };
        if let Some((kind, reason)) = refusal {
            self.drops.count("network", kind);
            trace!(%peer, reason, "sync request refused");
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, SyncResponse::Error(reason.to_owned()));
            return;
        }
        budget.owed += 1;
        let (reply, answer) = oneshot::channel();
        self.emit(NetworkEvent::SyncRequest {
            from: peer,
            request,
            reply,
        });
        // If the event was dropped, `answer` resolves at once with an error
        // and the peer's request fails.
        self.answers.push(Box::pin(async move {
            let answer = tokio::time::timeout(SYNC_REQUEST_TIMEOUT, answer)
                .await
                .ok()
                .and_then(Result::ok);
            (peer, channel, answer)
        }));
    }

    fn send_answer(
        &mut self,
        peer: PeerId,
        channel: ResponseChannel<SyncResponse>,
        answer: Option<SyncResponse>,
    ) {
        let size = answer.as_ref().map_or(0, encoded_len);
        if let Some(budget) = self.sync_budgets.get_mut(&peer) {
            budget.owed = budget.owed.saturating_sub(1);
            budget.bytes.charge(size as u64, Instant::now());
        }
        let Some(answer) = answer else {
            debug!(%peer, "no answer to a sync request; the peer gets an error");
            return;
        };
        // The codec would refuse to send it and the peer would see a broken
        // stream; say why instead, so it can ask for less.
        let answer = if size > MAX_SYNC_RESPONSE_BYTES {
            warn!(%peer, size, limit = MAX_SYNC_RESPONSE_BYTES, "sync answer too large; refused");
            SyncResponse::Error(format!(
                "the answer of {size} bytes exceeds the sync limit of {MAX_SYNC_RESPONSE_BYTES} bytes; ask for fewer blocks"
            ))
        } else {
            answer
        };
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, answer)
            .is_err()
        {
            debug!(%peer, "the peer stopped waiting for the sync answer");
        }
    }

    fn on_ping(&mut self, event: ping::Event) {
        match event.result {
            Ok(rtt) => trace!(peer = %event.peer, ?rtt, "ping"),
            // A peer that stops answering pings is gone without having closed
            // the connection (a crashed host, a cut cable): close it, so the
            // peer is reported disconnected and re-dialled.
            Err(ping::Failure::Timeout) => {
                warn!(peer = %event.peer, "ping timed out; closing the connection");
                self.swarm.close_connection(event.connection);
            }
            Err(error) => debug!(peer = %event.peer, %error, "ping failed"),
        }
    }
}
