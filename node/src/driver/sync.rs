//! Block sync: a node that is behind (new, restarted, partitioned, or an
//! observer) fetches committed blocks with their certificates from peers,
//! checks each certificate against the genesis validator set, re-executes
//! the block and commits it, then joins consensus at the next height.
//!
//! The driver asks every connected peer for its height once a second. A
//! peer's height is a claim, not a fact:
//!
//! - claims only choose whom to ask; what is committed is what a valid
//!   certificate backs;
//! - the node stops taking part in consensus to sync (`is_behind`) only for
//!   a height claimed by validators with more than f voting power (so at
//!   least one honest validator is there); a lone liar, validator or
//!   observer, cannot keep it from proposing and voting;
//! - a peer whose answer does not advance sync (an error, nothing, a bad
//!   block) is asked no more for [`PENALTY`], and its claim is forgotten;
//! - requests rotate among the peers that claim to be ahead.
//!
//! Serving requests is not done here (the node answers from the store
//! without the driver: see `crate::serve_sync`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use consensus::{CommitCertificate, Height, ValidatorSet};
use crypto::PublicKey;
use ledger::block::tx_root_with_hashes;
use ledger::{Block, SignedTransaction, TxHash};
use tracing::{debug, info, warn};

use super::{Driver, DriverError, Event};
use crate::network::{PeerId, SyncRequest, SyncResponse, SyncedBlock};

/// Blocks per sync request.
pub const SYNC_BATCH: u64 = 64;
/// A request unanswered for this long is given up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a peer whose answer did not advance sync is not asked.
pub const PENALTY: Duration = Duration::from_secs(10);
/// How long a node in consensus waits for its own decision to close a lag
/// of one block before it fetches the block from a peer that has it.
pub const ONE_BLOCK_LAG_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub struct SyncState {
    /// Claimed heights of peers not under penalty.
    peer_heights: BTreeMap<PeerId, u64>,
    /// Peers not to ask (nor believe) until the instant.
    penalized: BTreeMap<PeerId, Instant>,
    /// When each peer was last asked for blocks (rotation).
    last_asked: BTreeMap<PeerId, Instant>,
    in_flight: Option<(PeerId, Instant)>,
    /// Since when a peer has claimed a height above this node's committed
    /// height, which has not moved (that height, the instant).
    lag_since: Option<(u64, Instant)>,
}

impl SyncState {
    /// Whether a peer has claimed more than `height` for
    /// [`ONE_BLOCK_LAG_GRACE`] while this node stayed at `height`. A block
    /// of lag is normally closed by the node's own decision; when it is not
    /// (the others decided that height, with this node's votes, while it
    /// was down, and moved on: nobody repeats that decision), the block must
    /// be fetched, or the node waits forever, and with it any height that
    /// needs its vote.
    pub fn lag_outlasted(&mut self, height: u64, now: Instant) -> bool {
        if !self.peer_heights.values().any(|claimed| *claimed > height) {
            self.lag_since = None;
            return false;
        }
        match self.lag_since {
            Some((at, since)) if at == height => now.duration_since(since) >= ONE_BLOCK_LAG_GRACE,
            _ => {
                self.lag_since = Some((height, now));
                false
            }
        }
    }

    pub fn peer_height(&mut self, peer: PeerId, height: u64, now: Instant) {
        if self.penalized.get(&peer).is_some_and(|until| *until > now) {
            return;
        }
        self.penalized.remove(&peer);
        self.peer_heights.insert(peer, height);
    }

    /// The peer's answer did not advance sync: forget its claim and leave
    /// it alone for a while.
    pub fn request_failed(&mut self, peer: PeerId, now: Instant) {
        if self.in_flight.is_some_and(|(asked, _)| asked == peer) {
            self.in_flight = None;
        }
        self.peer_heights.remove(&peer);
        self.penalized.insert(peer, now + PENALTY);
    }

    /// The request to `peer` is answered (whatever the answer).
    fn answered(&mut self, peer: PeerId) {
        if self.in_flight.is_some_and(|(asked, _)| asked == peer) {
            self.in_flight = None;
        }
    }

    pub fn forget_disconnected(&mut self, connected: &[PeerId]) {
        self.peer_heights.retain(|peer, _| connected.contains(peer));
    }

    /// The highest height claimed by validators holding more than f voting
    /// power (at least one of them honest); 0 if none.
    pub fn backed_height(
        &self,
        validators: &ValidatorSet,
        validator_of_peer: &BTreeMap<PeerId, PublicKey>,
    ) -> u64 {
        let mut claims: Vec<(u64, u64)> = self
            .peer_heights
            .iter()
            .filter_map(|(peer, height)| {
                let key = validator_of_peer.get(peer)?;
                Some((*height, validators.power_of(key)?))
            })
            .collect();
        claims.sort_unstable_by(|a, b| b.cmp(a));
        let needed = validators.f_plus_one_power();
        let mut power = 0u64;
        for (height, claimant_power) in claims {
            power = power.saturating_add(claimant_power);
            if power >= needed {
                return height;
            }
        }
        0
    }

    /// More than one block behind what peers with more than f voting power
    /// claim: a block or so of lag is normal in consensus and closed by the
    /// decision itself.
    pub fn is_behind(
        &self,
        height: u64,
        validators: &ValidatorSet,
        validator_of_peer: &BTreeMap<PeerId, PublicKey>,
    ) -> bool {
        self.backed_height(validators, validator_of_peer) > height + 1
    }

    /// The peer to ask for blocks after `height`: among those claiming more
    /// than `min_ahead` blocks beyond it, the one asked least recently.
    fn next_source(&self, height: u64, min_ahead: u64) -> Option<(PeerId, u64)> {
        self.peer_heights
            .iter()
            .filter(|(_, claimed)| **claimed > height + min_ahead)
            .min_by_key(|(peer, _)| (self.last_asked.get(peer).copied(), **peer))
            .map(|(peer, claimed)| (*peer, *claimed))
    }
}

impl Driver {
    pub(super) fn poll_peer_heights(&mut self) {
        let connected = self.network.connected_peers();
        self.sync.forget_disconnected(&connected);
        let now = Instant::now();
        for peer in connected {
            if self
                .sync
                .penalized
                .get(&peer)
                .is_some_and(|until| *until > now)
            {
                continue;
            }
            let network = self.network.clone();
            let sender = self.sender.clone();
            self.runtime.spawn(async move {
                let event = match network.request(peer, SyncRequest::Status).await {
                    Ok(SyncResponse::Status { height }) => Event::PeerStatus { peer, height },
                    _ => Event::SyncFailed { peer },
                };
                let _ = sender.send(event).await;
            });
        }
    }

    pub(super) fn is_behind(&self) -> bool {
        self.sync.is_behind(
            self.committed_height(),
            self.schedule.set_at(self.committed_height() + 1),
            &self.validator_of_peer,
        )
    }

    /// Requests the next range from a peer that claims to be ahead, in
    /// rotation. A peer one block ahead may just be faster: we wait for our
    /// own decision, unless we are not in consensus at that height, we
    /// decided it and lack the body, or the lag has outlasted
    /// [`ONE_BLOCK_LAG_GRACE`].
    pub(super) fn maybe_request_blocks(&mut self) {
        if let Some((_, since)) = self.sync.in_flight {
            if since.elapsed() < REQUEST_TIMEOUT {
                return;
            }
            self.sync.in_flight = None;
        }
        let height = self.committed_height();
        let in_consensus = self.started == Some(height + 1) && self.waiting_decision.is_none();
        let lag_outlasted = self.sync.lag_outlasted(height, Instant::now());
        let min_ahead = if in_consensus && !lag_outlasted { 1 } else { 0 };
        let Some((peer, best)) = self.sync.next_source(height, min_ahead) else {
            return;
        };
        let to = best.min(height + SYNC_BATCH);
        let now = Instant::now();
        self.sync.in_flight = Some((peer, now));
        self.sync.last_asked.insert(peer, now);
        debug!(%peer, from = height + 1, to, "requesting blocks");
        let network = self.network.clone();
        let sender = self.sender.clone();
        self.runtime.spawn(async move {
            let event = match network
                .request(
                    peer,
                    SyncRequest::Blocks {
                        from: height + 1,
                        to,
                    },
                )
                .await
            {
                Ok(SyncResponse::Blocks(blocks)) => Event::SyncedBlocks { peer, blocks },
                _ => Event::SyncFailed { peer },
            };
            let _ = sender.send(event).await;
        });
    }

    /// Checks and commits synced blocks in order; stops at the first bad one.
    /// An answer that commits nothing (empty, or bad from its first block)
    /// puts the peer under penalty.
    pub(super) fn on_synced_blocks(
        &mut self,
        peer: PeerId,
        blocks: Vec<SyncedBlock>,
    ) -> Result<(), DriverError> {
        self.sync.answered(peer);
        let before = self.committed_height();
        for synced in blocks {
            let expected = self.committed_height() + 1;
            match self.check_synced(&synced, expected) {
                Ok(None) => continue,
                Ok(Some((block, certificate))) => {
                    let round = certificate.round.0;
                    self.commit(block, synced.certificate, round, true)?;
                }
                Err(reason) => {
                    warn!(%peer, height = expected, %reason, "refusing a synced block");
                    break;
                }
            }
        }
        let after = self.committed_height();
        if after == before {
            debug!(%peer, "sync answer advanced nothing; asking others for a while");
            self.sync.request_failed(peer, Instant::now());
        } else {
            info!(height = after, "synced from peer");
        }
        Ok(())
    }

    /// Decodes and checks one synced block: its height, its certificate
    /// against the validator set, and its signatures (mempool-known
    /// transactions count as checked). `Ok(None)`: already committed.
    fn check_synced(
        &self,
        synced: &SyncedBlock,
        expected: u64,
    ) -> Result<Option<(Block, CommitCertificate)>, String> {
        let block = Block::from_bytes(&synced.block).map_err(|error| error.to_string())?;
        if block.header.height < expected {
            return Ok(None);
        }
        if block.header.height != expected {
            return Err(format!(
                "got height {}, expected {expected}",
                block.header.height
            ));
        }
        let certificate: CommitCertificate = borsh::from_slice(&synced.certificate)
            .map_err(|error| format!("malformed certificate: {error}"))?;
        certificate
            .verify_for(
                // The set the committed state records for `expected` (final:
                // the store holds `expected - 1`); a peer's claim about the
                // set counts for nothing.
                self.schedule.set_at(expected),
                &self.shared.chain_id,
                Height(expected),
                block.hash(),
            )
            .map_err(|error| format!("certificate: {error}"))?;
        let hashes: Vec<TxHash> = block.txs.iter().map(SignedTransaction::hash).collect();
        if tx_root_with_hashes(&block.txs, &hashes) != block.header.tx_root {
            return Err("the transactions do not match the header's tx root".to_string());
        }
        if let Some(error) = self.first_bad_signature(&block.txs, &hashes) {
            return Err(error.to_string());
        }
        Ok(Some((block, certificate)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consensus::Validator;

    fn validators() -> (ValidatorSet, BTreeMap<PeerId, PublicKey>) {
        let keys: Vec<PublicKey> = (1..=4u8).map(|i| PublicKey([i; 32])).collect();
        let set = ValidatorSet::new(keys.iter().map(|key| Validator {
            public_key: *key,
            power: 1,
        }))
        .unwrap();
        let peers = keys.iter().map(|key| (PeerId::random(), *key)).collect();
        (set, peers)
    }

    /// Found by the chaos runner: two validators restarted one block behind
    /// (the others decided it with their votes, then moved on) waited for a
    /// decision nobody repeats, and the chain stalled.
    #[test]
    fn a_lag_of_one_block_is_fetched_once_it_outlasts_the_grace() {
        let mut sync = SyncState::default();
        let peer = PeerId::random();
        let start = Instant::now();
        assert!(!sync.lag_outlasted(152, start), "nobody is ahead yet");
        sync.peer_height(peer, 153, start);
        assert!(
            !sync.lag_outlasted(152, start),
            "a fresh lag is left to consensus"
        );
        assert!(!sync.lag_outlasted(152, start + ONE_BLOCK_LAG_GRACE / 2));
        assert!(
            sync.lag_outlasted(152, start + ONE_BLOCK_LAG_GRACE),
            "a lag that outlasts the grace is fetched"
        );
        // Our own decision closes the lag: the clock starts again.
        let later = start + ONE_BLOCK_LAG_GRACE * 2;
        sync.peer_height(peer, 154, later);
        assert!(!sync.lag_outlasted(153, later));
        assert!(sync.lag_outlasted(153, later + ONE_BLOCK_LAG_GRACE));
        // Nobody ahead any more: no lag.
        sync.peer_height(peer, 153, later);
        assert!(!sync.lag_outlasted(153, later + ONE_BLOCK_LAG_GRACE * 2));
    }

    #[test]
    fn a_lone_liar_cannot_make_the_node_think_it_is_behind() {
        let (set, peers) = validators();
        let ids: Vec<PeerId> = peers.keys().copied().collect();
        let now = Instant::now();
        let mut sync = SyncState::default();
        sync.peer_height(ids[0], u64::MAX, now);
        sync.peer_height(ids[1], 10, now);
        sync.peer_height(ids[2], 10, now);
        // An observer (not a validator) claiming more changes nothing.
        sync.peer_height(PeerId::random(), 1_000_000, now);
        assert_eq!(sync.backed_height(&set, &peers), 10);
        assert!(!sync.is_behind(9, &set, &peers));
        assert!(sync.is_behind(8, &set, &peers));
        // The liar is still asked (claims choose sources), once.
        assert!(sync.next_source(9, 0).is_some());
    }

    #[test]
    fn a_peer_whose_answer_did_not_advance_is_left_alone_for_a_while() {
        let (_, peers) = validators();
        let ids: Vec<PeerId> = peers.keys().copied().collect();
        let now = Instant::now();
        let mut sync = SyncState::default();
        sync.peer_height(ids[0], u64::MAX, now);
        sync.peer_height(ids[1], 20, now);
        sync.request_failed(ids[0], now);
        // Its new claims are not believed during the penalty.
        sync.peer_height(ids[0], u64::MAX, now + Duration::from_secs(1));
        assert_eq!(sync.next_source(10, 0), Some((ids[1], 20)));
        sync.peer_height(ids[0], 30, now + PENALTY + Duration::from_millis(1));
        assert!(sync.peer_heights.contains_key(&ids[0]));
    }

    #[test]
    fn requests_rotate_among_peers_that_claim_to_be_ahead() {
        let (_, peers) = validators();
        let ids: Vec<PeerId> = peers.keys().copied().collect();
        let now = Instant::now();
        let mut sync = SyncState::default();
        for id in &ids[..3] {
            sync.peer_height(*id, 50, now);
        }
        let mut asked = Vec::new();
        for i in 0..3 {
            let (peer, _) = sync.next_source(10, 0).unwrap();
            sync.last_asked.insert(peer, now + Duration::from_secs(i));
            asked.push(peer);
        }
        asked.sort();
        asked.dedup();
        assert_eq!(asked.len(), 3, "each peer asked once in three requests");
    }
}
