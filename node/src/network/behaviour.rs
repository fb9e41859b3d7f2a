//! The libp2p behaviours the node runs on every connection, and their tuning.
//!
//! - the allow-list (first, so a connection from a peer outside genesis is
//!   closed right after the Noise handshake, before any other protocol sees it);
//! - connection limits: handshakes in progress (any address can start one),
//!   connections per peer and in all ([`P2pLimits`]);
//! - gossipsub for the three topics;
//! - request-response for block sync;
//! - ping, to notice a connection whose peer vanished without closing it.
//!
//! What is done with the events is the swarm task's business.

use std::time::Duration;

use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::gossipsub::{self, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{PeerId, identity, ping};

use super::sync_protocol::{SyncCodec, protocol_name};
use super::topic::{GOSSIP_ENVELOPE_BYTES, Topic, max_gossip_frame_bytes};
use super::{NetworkError, P2pLimits};

/// How long a sync request may take, on both sides, before it fails.
pub const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A validator set is small and fully connected, so gossip is tuned for
/// latency: a fast heartbeat, every peer in the mesh, flood publishing.
const HEARTBEAT: Duration = Duration::from_millis(150);

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) allowed: allow_block_list::Behaviour<AllowedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
    pub(crate) ping: ping::Behaviour,
}

impl Behaviour {
    pub(crate) fn new(
        keypair: &identity::Keypair,
        chain_id: &crypto::ChainId,
        allowed_peers: impl IntoIterator<Item = PeerId>,
        limits: &P2pLimits,
    ) -> Result<Behaviour, NetworkError> {
        let mut allowed = allow_block_list::Behaviour::<AllowedPeers>::default();
        for peer in allowed_peers {
            allowed.allow_peer(peer);
        }

        let mut gossipsub = gossipsub::Behaviour::new(
            MessageAuthenticity::Signed(keypair.clone()),
            gossipsub_config(chain_id)?,
        )
        .map_err(|error| NetworkError::Gossipsub(error.to_owned()))?;
        let (params, thresholds) = peer_scoring(chain_id);
        gossipsub
            .with_peer_score(params, thresholds)
            .map_err(|error| NetworkError::Gossipsub(format!("peer scoring: {error}")))?;
        for topic in Topic::ALL {
            gossipsub
                .subscribe(&topic.gossipsub_topic(chain_id))
                .map_err(|error| NetworkError::Gossipsub(format!("subscribing: {error}")))?;
        }

        let sync = request_response::Behaviour::with_codec(
            SyncCodec::default(),
            [(protocol_name(chain_id), ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(SYNC_REQUEST_TIMEOUT)
                // The library's default is 100 per connection, each holding
                // a request and its answer.
                .with_max_concurrent_streams(limits.max_sync_streams_per_connection),
        );

        // A missed ping on a loaded machine is not a dead peer: wait long.
        let ping = ping::Behaviour::new(
            ping::Config::new()
                .with_interval(Duration::from_secs(10))
                .with_timeout(Duration::from_secs(30)),
        );

        Ok(Behaviour {
            allowed,
            limits: connection_limits::Behaviour::new(connection_limits(limits)),
            gossipsub,
            sync,
            ping,
        })
    }
}

/// Pending outgoing connections are not limited: the node dials only the
/// genesis peers, one dial each at a time.
fn connection_limits(limits: &P2pLimits) -> ConnectionLimits {
    ConnectionLimits::default()
        .with_max_pending_incoming(Some(limits.max_pending_incoming))
        .with_max_established_per_peer(Some(limits.max_connections_per_peer))
        .with_max_established(Some(limits.max_connections))
}

fn gossipsub_config(chain_id: &crypto::ChainId) -> Result<gossipsub::Config, NetworkError> {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        // Every message is signed by its author and checked; unsigned or
        // mis-signed messages are dropped by gossipsub itself.
        .validation_mode(ValidationMode::Strict)
        // Nothing is forwarded before the swarm task has checked its author
        // and size (see `report_message_validation_result`).
        .validate_messages()
        .heartbeat_interval(HEARTBEAT)
        .heartbeat_initial_delay(Duration::from_millis(100))
        // 4 to 10 peers: the mesh holds most of them, so a message a peer
        // missed is still forwarded to it by others.
        .mesh_n_low(3)
        .mesh_n(5)
        .mesh_n_high(10)
        .mesh_outbound_min(2)
        .gossip_lazy(3)
        // About 3 s of messages stay available to IWANT requests.
        .history_length(20)
        .history_gossip(3)
        // The author sends to every subscribed peer directly: one hop.
        .flood_publish(true)
        .max_transmit_size(max_gossip_frame_bytes());
    // The default message id (author + sequence number) is kept on purpose:
    // consensus rebroadcasts identical bytes, which must not be dropped as
    // duplicates; the node deduplicates what it receives itself.
    for topic in Topic::ALL {
        builder.max_transmit_size_for_topic(
            topic.max_bytes() + GOSSIP_ENVELOPE_BYTES,
            topic.gossipsub_topic(chain_id).hash(),
        );
    }
    builder
        .build()
        .map_err(|error| NetworkError::Gossipsub(error.to_string()))
}

/// Peer scoring counts only what a peer cannot do by accident: messages
/// the node rejected (malformed, badly signed, from a non-validator). The
/// other score components (time in mesh, delivery rates, IP colocation) are
/// off: every validator is expected, several may share a host, and a quiet
/// validator is not a bad one. Three rejected messages in a short while
/// graylist the sender (its gossip is ignored) until the penalty decays.
fn peer_scoring(
    chain_id: &crypto::ChainId,
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        // Per decay interval (1 s): a burst is forgotten in about a minute.
        invalid_message_deliveries_decay: 0.95,
        ..gossipsub::TopicScoreParams::default()
    };
    let params = gossipsub::PeerScoreParams {
        topics: Topic::ALL
            .iter()
            .map(|topic_kind| (topic_kind.gossipsub_topic(chain_id).hash(), topic.clone()))
            .collect(),
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        slow_peer_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    };
    (params, gossipsub::PeerScoreThresholds::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gossipsub_tuning_is_accepted() {
        let chain_id = crypto::ChainId(crypto::Hash([2; 32]));
        let config = gossipsub_config(&chain_id).expect("valid tuning");
        assert!(config.flood_publish());
        assert_eq!(config.heartbeat_interval(), HEARTBEAT);
        assert!(matches!(config.validation_mode(), ValidationMode::Strict));
        let blocks = Topic::Blocks.gossipsub_topic(&chain_id).hash();
        assert_eq!(
            config.max_transmit_size_for_topic(&blocks),
            Topic::Blocks.max_bytes() + GOSSIP_ENVELOPE_BYTES
        );
    }

    #[test]
    fn peer_scoring_is_accepted_and_three_rejections_graylist() {
        let chain_id = crypto::ChainId(crypto::Hash([2; 32]));
        let (params, thresholds) = peer_scoring(&chain_id);
        params.validate().expect("valid score parameters");
        thresholds.validate().expect("valid thresholds");
        let topic = params.topics.values().next().expect("a topic");
        let after = |rejected: f64| {
            topic.topic_weight * topic.invalid_message_deliveries_weight * rejected * rejected
        };
        assert!(after(2.0) > thresholds.graylist_threshold);
        assert!(after(3.0) < thresholds.graylist_threshold);
    }
}
