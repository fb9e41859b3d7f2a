//! Why a network operation failed.
//!
//! Every variant names what went wrong with the values involved, so a log
//! line or an API answer is enough to act on. Errors about a single message
//! (too large, queue full, nobody connected) are benign: the caller may log
//! and carry on, the network keeps running.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use super::Topic;

/// Why starting the network, publishing, or a sync request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("`{text}` is not a valid multiaddr (expected e.g. /ip4/127.0.0.1/tcp/26656): {reason}")]
    InvalidAddress { text: String, reason: String },
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: Multiaddr, reason: String },
    #[error("no listening address was reported for {address} within {waited:?}")]
    ListenTimeout {
        address: Multiaddr,
        waited: Duration,
    },
    #[error("cannot set up the libp2p transport: {0}")]
    Transport(String),
    #[error("invalid gossipsub setup: {0}")]
    Gossipsub(String),
    #[error("{topic:?} message of {size} bytes exceeds the topic's limit of {limit} bytes")]
    MessageTooLarge {
        topic: Topic,
        size: usize,
        limit: usize,
    },
    #[error("the outgoing message queue is full ({capacity} messages); the message was dropped")]
    QueueFull { capacity: usize },
    #[error("no peer is connected; the {topic:?} message was not sent")]
    NoConnectedPeers { topic: Topic },
    #[error("peer {peer} is not in the genesis allow-list")]
    UnknownPeer { peer: PeerId },
    #[error("peer {peer} is not connected")]
    NotConnected { peer: PeerId },
    #[error("sync request to {peer} got no answer within {waited:?}")]
    RequestTimeout { peer: PeerId, waited: Duration },
    #[error("sync request to {peer} failed: {reason}")]
    RequestFailed { peer: PeerId, reason: String },
    #[error("invalid network limits: {0}")]
    Limits(String),
    #[error("the network has stopped")]
    Stopped,
}
