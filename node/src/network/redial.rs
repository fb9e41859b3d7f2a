//! When to dial each known peer: at start, and again after a failure or a
//! disconnection, with exponential backoff.
//!
//! A pure schedule over `Instant`s, so it is tested without a network or a
//! clock; the swarm task asks it which peers are due and reports what
//! happened. Backoff starts at [`MIN_BACKOFF`] and doubles up to
//! [`MAX_BACKOFF`]. It is reset only by a connection that lasted
//! [`STABLE_CONNECTION`]: a peer that accepts the handshake and then hangs up
//! (for example because its genesis lacks us) is not re-dialled in a loop.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

/// The first retry delay.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// The longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a connection must last for the backoff to start over.
pub const STABLE_CONNECTION: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing in flight; dial at this instant.
    WaitingUntil(Instant),
    /// A dial is in flight.
    Dialing,
    /// At least one connection is open, since this instant.
    Connected(Instant),
}

#[derive(Debug, Clone)]
struct Peer {
    address: Multiaddr,
    state: State,
    backoff: Duration,
}

/// The dial schedule of every known peer.
#[derive(Debug, Clone, Default)]
pub struct Redial {
    peers: BTreeMap<PeerId, Peer>,
}

impl Redial {
    /// Every peer is due at `now`.
    pub fn new(peers: impl IntoIterator<Item = (PeerId, Multiaddr)>, now: Instant) -> Redial {
        let peers = peers
            .into_iter()
            .map(|(peer_id, address)| {
                let peer = Peer {
                    address,
                    state: State::WaitingUntil(now),
                    backoff: MIN_BACKOFF,
                };
                (peer_id, peer)
            })
            .collect();
        Redial { peers }
    }

    /// Starts dialling a newly known peer (due at `now`), or updates a known
    /// one's address.
    pub fn add(&mut self, peer_id: PeerId, address: Multiaddr, now: Instant) {
        self.peers
            .entry(peer_id)
            .and_modify(|peer| peer.address = address.clone())
            .or_insert(Peer {
                address,
                state: State::WaitingUntil(now),
                backoff: MIN_BACKOFF,
            });
    }

    /// Stops dialling a peer.
    pub fn remove(&mut self, peer_id: &PeerId) {
        self.peers.remove(peer_id);
    }

    /// The peers due for a dial at `now`, now marked as being dialled.
    pub fn due(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        let mut due = Vec::new();
        for (peer_id, peer) in &mut self.peers {
            if matches!(peer.state, State::WaitingUntil(at) if at <= now) {
                peer.state = State::Dialing;
                due.push((*peer_id, peer.address.clone()));
            }
        }
        due
    }

    /// The next instant a peer becomes due, if any is waiting.
    pub fn next_due(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|peer| match peer.state {
                State::WaitingUntil(at) => Some(at),
                State::Dialing | State::Connected(_) => None,
            })
            .min()
    }

    /// The first connection to `peer` is open.
    pub fn connected(&mut self, peer_id: &PeerId, now: Instant) {
        if let Some(peer) = self.peers.get_mut(peer_id) {
            peer.state = State::Connected(now);
        }
    }

    /// The last connection to `peer` closed: dial again after the backoff.
    pub fn disconnected(&mut self, peer_id: &PeerId, now: Instant) {
        if let Some(peer) = self.peers.get_mut(peer_id) {
            if let State::Connected(since) = peer.state
                && now.saturating_duration_since(since) >= STABLE_CONNECTION
            {
                peer.backoff = MIN_BACKOFF;
            }
            peer.schedule_retry(now);
        }
    }

    /// A dial to `peer` failed (or could not start). Ignored if a connection
    /// to it is open anyway.
    pub fn dial_failed(&mut self, peer_id: &PeerId, now: Instant) {
        if let Some(peer) = self.peers.get_mut(peer_id)
            && !matches!(peer.state, State::Connected(_))
        {
            peer.schedule_retry(now);
        }
    }

    /// The delay the next failure of `peer` would wait.
    #[cfg(test)]
    pub fn backoff(&self, peer_id: &PeerId) -> Option<Duration> {
        self.peers.get(peer_id).map(|peer| peer.backoff)
    }
}

impl Peer {
    fn schedule_retry(&mut self, now: Instant) {
        self.state = State::WaitingUntil(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_peer(now: Instant) -> (Redial, PeerId) {
        let peer = PeerId::random();
        let address: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().expect("address");
        (Redial::new([(peer, address)], now), peer)
    }

    #[test]
    fn every_peer_is_dialled_at_start_and_once_while_dialling() {
        let now = Instant::now();
        let (mut redial, peer) = one_peer(now);
        assert_eq!(redial.next_due(), Some(now));
        let due = redial.due(now);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, peer);
        assert!(redial.due(now + MAX_BACKOFF).is_empty(), "dial in flight");
        assert_eq!(redial.next_due(), None);
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_bound() {
        let start = Instant::now();
        let (mut redial, peer) = one_peer(start);
        let mut now = start;
        let mut delays = Vec::new();
        for _ in 0..9 {
            assert_eq!(redial.due(now).len(), 1);
            redial.dial_failed(&peer, now);
            let next = redial.next_due().expect("a retry is scheduled");
            delays.push(next - now);
            assert!(redial.due(next - Duration::from_millis(1)).is_empty());
            now = next;
        }
        let millis: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(
            millis,
            [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]
        );
    }

    #[test]
    fn a_stable_connection_resets_the_backoff() {
        let start = Instant::now();
        let (mut redial, peer) = one_peer(start);
        for _ in 0..7 {
            redial.due(start);
            redial.dial_failed(&peer, start);
            redial.peers.get_mut(&peer).expect("peer").state = State::WaitingUntil(start);
        }
        assert_eq!(redial.backoff(&peer), Some(MAX_BACKOFF));
        redial.connected(&peer, start);
        assert_eq!(redial.next_due(), None, "connected peers are not dialled");
        let later = start + STABLE_CONNECTION;
        redial.disconnected(&peer, later);
        assert_eq!(redial.next_due(), Some(later + MIN_BACKOFF));
    }

    #[test]
    fn a_peer_that_hangs_up_at_once_is_not_redialled_in_a_loop() {
        let start = Instant::now();
        let (mut redial, peer) = one_peer(start);
        let mut now = start;
        for _ in 0..6 {
            redial.due(now);
            redial.connected(&peer, now);
            now += Duration::from_millis(10);
            redial.disconnected(&peer, now);
            now = redial.next_due().expect("retry");
        }
        assert_eq!(redial.backoff(&peer), Some(MAX_BACKOFF));
    }

    #[test]
    fn a_failed_dial_while_connected_changes_nothing() {
        let now = Instant::now();
        let (mut redial, peer) = one_peer(now);
        redial.due(now);
        redial.connected(&peer, now);
        redial.dial_failed(&peer, now);
        assert_eq!(redial.next_due(), None);
        assert_eq!(redial.backoff(&peer), Some(MIN_BACKOFF));
    }
}
