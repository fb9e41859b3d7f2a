//! The bounded, fair buffer between the swarm and the node.
//!
//! The swarm task must never wait on the node, and one peer flooding must
//! not crowd out the others. So what arrives is sorted into lanes —
//! consensus (votes, proposals and block announcements), sync requests,
//! transaction batches, and connection notices — and within a lane into one
//! queue per peer that delivered it (the gossip propagation source, the
//! requester). Each queue has a cap, the gossip lanes a byte budget too; an
//! event over a cap is handed back to the caller, which drops and counts it.
//! The node takes events round-robin over the lanes and, within a lane,
//! over the peers: a peer sending a million messages gets one turn in
//! `peers` like everyone else, and its backlog is bounded by its own caps.
//!
//! The number of queues is bounded by the genesis allow-list (only listed
//! peers connect); nothing here decodes or judges a message.

use std::collections::{BTreeMap, VecDeque};

use libp2p::PeerId;

use super::{NetworkEvent, P2pLimits, Topic};

/// Lanes, in the order the round-robin visits them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Consensus = 0,
    Sync = 1,
    Transactions = 2,
    Control = 3,
}

const LANES: usize = 4;
/// Connection notices per peer (the node only logs them).
const CONTROL_PER_PEER: usize = 8;

impl Lane {
    fn of(event: &NetworkEvent) -> (Lane, PeerId, usize) {
        match event {
            NetworkEvent::Gossip {
                topic,
                bytes,
                message,
                ..
            } => {
                let lane = match topic {
                    Topic::Transactions => Lane::Transactions,
                    Topic::Consensus | Topic::Blocks => Lane::Consensus,
                };
                (lane, message.propagation_source, bytes.len())
            }
            NetworkEvent::SyncRequest { from, .. } => (Lane::Sync, *from, 0),
            NetworkEvent::PeerConnected(peer) | NetworkEvent::PeerDisconnected(peer) => {
                (Lane::Control, *peer, 0)
            }
        }
    }
}

/// The metric label of what an event carries.
pub(crate) fn event_kind(event: &NetworkEvent) -> &'static str {
    match event {
        NetworkEvent::Gossip {
            topic: Topic::Consensus,
            ..
        } => "consensus",
        NetworkEvent::Gossip {
            topic: Topic::Blocks,
            ..
        } => "announcement",
        NetworkEvent::Gossip {
            topic: Topic::Transactions,
            ..
        } => "transactions",
        NetworkEvent::SyncRequest { .. } => "sync request",
        NetworkEvent::PeerConnected(_) => "peer connected",
        NetworkEvent::PeerDisconnected(_) => "peer disconnected",
    }
}

#[derive(Default)]
struct PeerQueue {
    events: VecDeque<(NetworkEvent, usize)>,
    bytes: usize,
}

#[derive(Default)]
struct LaneQueue {
    per_peer: BTreeMap<PeerId, PeerQueue>,
    /// Peers with something queued, in turn order.
    turns: VecDeque<PeerId>,
    bytes: usize,
}

pub(crate) struct Inbox {
    per_peer: [usize; LANES],
    max_bytes: [usize; LANES],
    lanes: [LaneQueue; LANES],
    next_lane: usize,
    len: usize,
}

impl Inbox {
    pub(crate) fn new(limits: &P2pLimits) -> Inbox {
        Inbox {
            per_peer: [
                limits.inbox_consensus_per_peer,
                limits.inbox_sync_per_peer,
                limits.inbox_transaction_batches_per_peer,
                CONTROL_PER_PEER,
            ],
            max_bytes: [
                limits.inbox_consensus_bytes,
                usize::MAX,
                limits.inbox_transaction_bytes,
                usize::MAX,
            ],
            lanes: Default::default(),
            next_lane: 0,
            len: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Queues `event`, or hands it back if its peer's queue in its lane is
    /// full, or the lane's byte budget would be exceeded, or the peer would
    /// hold more than half of that budget (so one peer cannot take it all).
    // The refused event goes back by value: the caller reports or drops it;
    // boxing it would cost an allocation per event on the common path.
    #[allow(clippy::result_large_err)]
    pub(crate) fn push(&mut self, event: NetworkEvent) -> Result<(), NetworkEvent> {
        let (lane, peer, bytes) = Lane::of(&event);
        let index = lane as usize;
        let cap = self.per_peer[index];
        let max_bytes = self.max_bytes[index];
        let queue = &mut self.lanes[index];
        if queue.bytes.saturating_add(bytes) > max_bytes {
            return Err(event);
        }
        let entry = queue.per_peer.entry(peer).or_default();
        if entry.events.len() >= cap || entry.bytes.saturating_add(bytes) > max_bytes / 2 {
            if entry.events.is_empty() {
                queue.per_peer.remove(&peer);
            }
            return Err(event);
        }
        if entry.events.is_empty() {
            queue.turns.push_back(peer);
        }
        entry.events.push_back((event, bytes));
        entry.bytes += bytes;
        queue.bytes += bytes;
        self.len += 1;
        Ok(())
    }

    /// The next event: the next lane with something queued, and in it the
    /// next peer's oldest event.
    pub(crate) fn pop(&mut self) -> Option<NetworkEvent> {
        if self.len == 0 {
            return None;
        }
        for offset in 0..LANES {
            let index = (self.next_lane + offset) % LANES;
            let queue = &mut self.lanes[index];
            let Some(peer) = queue.turns.pop_front() else {
                continue;
            };
            let entry = queue
                .per_peer
                .get_mut(&peer)
                .expect("a peer with a turn has a queue");
            let (event, bytes) = entry
                .events
                .pop_front()
                .expect("a peer with a turn has an event");
            entry.bytes -= bytes;
            if entry.events.is_empty() {
                // Keep the (empty) queue's allocation only while the peer
                // is busy.
                queue.per_peer.remove(&peer);
            } else {
                queue.turns.push_back(peer);
            }
            queue.bytes -= bytes;
            self.len -= 1;
            self.next_lane = (index + 1) % LANES;
            return Some(event);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use libp2p::gossipsub::MessageId;
    use tokio::sync::oneshot;

    use super::*;
    use crate::network::{GossipMessageRef, SyncRequest};

    fn gossip(topic: Topic, source: PeerId, tag: u8, size: usize) -> NetworkEvent {
        let mut bytes = vec![0; size.max(1)];
        bytes[0] = tag;
        NetworkEvent::Gossip {
            topic,
            from: source,
            bytes,
            message: GossipMessageRef {
                id: MessageId::new(&[tag]),
                propagation_source: source,
            },
        }
    }

    fn tag(event: &NetworkEvent) -> (PeerId, u8) {
        match event {
            NetworkEvent::Gossip { from, bytes, .. } => (*from, bytes[0]),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn limits() -> P2pLimits {
        P2pLimits {
            inbox_consensus_per_peer: 3,
            inbox_transaction_batches_per_peer: 2,
            inbox_transaction_bytes: 1000,
            inbox_sync_per_peer: 1,
            ..P2pLimits::default()
        }
    }

    #[test]
    fn a_flooding_peer_fills_only_its_own_queue() {
        let mut inbox = Inbox::new(&limits());
        let flooder = PeerId::random();
        let honest = PeerId::random();
        let mut refused = 0;
        for tag in 0..100u8 {
            if inbox
                .push(gossip(Topic::Consensus, flooder, tag, 10))
                .is_err()
            {
                refused += 1;
            }
        }
        assert_eq!(refused, 97, "the flooder keeps 3 queued");
        inbox
            .push(gossip(Topic::Consensus, honest, 200, 10))
            .expect("the honest peer's queue is empty");
        // The honest message is delivered second, not after the backlog.
        let order: Vec<(PeerId, u8)> = std::iter::from_fn(|| inbox.pop())
            .map(|e| tag(&e))
            .collect();
        assert_eq!(
            order,
            vec![(flooder, 0), (honest, 200), (flooder, 1), (flooder, 2)]
        );
        assert!(inbox.is_empty());
    }

    #[test]
    fn transaction_batches_are_bounded_by_bytes_across_peers() {
        let mut inbox = Inbox::new(&limits());
        let peers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        for (index, peer) in peers.iter().enumerate() {
            let accepted = inbox.push(gossip(Topic::Transactions, *peer, index as u8, 300));
            assert_eq!(
                accepted.is_ok(),
                index < 3,
                "batch {index}: 300 bytes each, 1000 in all"
            );
        }
        // One peer holds at most half of the budget.
        let mut inbox = Inbox::new(&limits());
        assert!(
            inbox
                .push(gossip(Topic::Transactions, peers[0], 1, 400))
                .is_ok()
        );
        assert!(
            inbox
                .push(gossip(Topic::Transactions, peers[0], 2, 400))
                .is_err()
        );
        assert!(
            inbox
                .push(gossip(Topic::Transactions, peers[1], 3, 400))
                .is_ok()
        );
        // Per-peer count: a peer with room in bytes but two batches queued.
        let mut inbox = Inbox::new(&limits());
        assert!(
            inbox
                .push(gossip(Topic::Transactions, peers[0], 1, 10))
                .is_ok()
        );
        assert!(
            inbox
                .push(gossip(Topic::Transactions, peers[0], 2, 10))
                .is_ok()
        );
        assert!(
            inbox
                .push(gossip(Topic::Transactions, peers[0], 3, 10))
                .is_err()
        );
        // Popping frees the budget.
        assert!(inbox.pop().is_some());
        assert!(
            inbox
                .push(gossip(Topic::Transactions, peers[0], 4, 10))
                .is_ok()
        );
    }

    #[test]
    fn a_transaction_flood_does_not_delay_consensus() {
        let mut inbox = Inbox::new(&P2pLimits::default());
        let flooder = PeerId::random();
        for tag in 0..32u8 {
            inbox
                .push(gossip(Topic::Transactions, flooder, tag, 100))
                .expect("within the default caps");
        }
        let honest = PeerId::random();
        inbox
            .push(gossip(Topic::Consensus, honest, 99, 100))
            .expect("room");
        let first_two: Vec<u8> = (0..2)
            .map(|_| tag(&inbox.pop().expect("queued")).1)
            .collect();
        assert!(first_two.contains(&99), "{first_two:?}");
    }

    #[test]
    fn sync_requests_are_capped_per_peer_and_handed_back() {
        let mut inbox = Inbox::new(&limits());
        let peer = PeerId::random();
        let request = || {
            let (reply, _answer) = oneshot::channel();
            NetworkEvent::SyncRequest {
                from: peer,
                request: SyncRequest::Status,
                reply,
            }
        };
        assert!(inbox.push(request()).is_ok());
        let refused = inbox.push(request()).expect_err("one per peer");
        assert_eq!(event_kind(&refused), "sync request");
        assert_eq!(inbox.len(), 1);
    }
}
