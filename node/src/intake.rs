//! What arrives from peers, judged before anything uses or relays it.
//!
//! Every gossip message is decoded and checked here, off the driver's
//! thread, and gossipsub is told the verdict: only accepted messages are
//! forwarded, and rejected ones count against the peer that sent them (three
//! in a short while graylist it; see `network::behaviour`). A claim is a
//! hint until its signature is checked:
//!
//! - a consensus message reaches the driver only if its signer is a
//!   validator, its signature verifies, and its height and round are within
//!   the window the engine can use (the next few heights, the current round
//!   plus the engine's lookahead); anything else is dropped here, so nothing
//!   unverified starts a height or fills a buffer;
//! - a block announcement only with a valid signed proposal of the round's
//!   proposer for exactly its header ([`Announcement::check`]), for the next
//!   height;
//! - transactions go through the mempool's checks (signatures batch-verified
//!   under the one ZIP-215 rule).
//!
//! Sync requests are answered from the store without the driver.
//!
//! Every hand-off from here is bounded, and what does not fit is dropped
//! and counted (`scf_dropped_total`), never queued without bound:
//!
//! - to the driver, a bounded channel: a consensus message or an
//!   announcement that finds it full is dropped and reported `Ignore`
//!   (consensus rebroadcasts its messages, and a missing body is fetched);
//!   the wake-up after transactions were admitted waits for room instead
//!   (it is never lost, and the wait holds back admission, see below);
//! - transaction batches go to a bounded verification queue served by a
//!   semaphore of `gossip_verification_concurrency` blocking tasks; a batch
//!   that finds the queue full is dropped and reported `Ignore` (its
//!   transactions reach this node again in the block that carries them);
//! - sync answers are built by at most `sync_serving_concurrency` blocking
//!   tasks; the requests waiting for them are bounded by the network's
//!   per-peer limit on unanswered requests.
//!
//! Signatures of consensus messages are checked here, on the intake task,
//! never on the driver's thread: a flood of badly signed votes costs the
//! intake one check each (its peer's share of the network inbox bounds the
//! backlog, and gossipsub graylists the sender after three rejections) and
//! the driver nothing.

use std::sync::Arc;

use consensus::{ConsensusMessage, EngineConfig, ValidatorSet};
use ledger::SignedTransaction;
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, info, warn};

use crate::driver::Event;
use crate::driver::blocks::Announcement;
use crate::mempool::MempoolError;
use crate::metrics::Drops;
use crate::network::{
    GossipMessageRef, GossipVerdict, Network, NetworkEvent, P2pLimits, SyncResponse, Topic,
};
use crate::shared::Shared;

/// Judges gossip and answers sync requests for one node.
pub struct Intake {
    shared: Arc<Shared>,
    network: Network,
    events: mpsc::Sender<Event>,
    engine: EngineConfig,
    max_block_txs: usize,
    limits: P2pLimits,
    drops: Drops,
    /// Transaction batches waiting for verification.
    admission: mpsc::Sender<GossipBatch>,
    /// Sync answers being built.
    sync_serving: Arc<Semaphore>,
}

/// A transaction batch from gossip, not decoded yet.
struct GossipBatch {
    bytes: Vec<u8>,
    message: GossipMessageRef,
}

impl Intake {
    /// Also spawns the task that verifies gossiped transaction batches; it
    /// ends when the intake is dropped.
    pub fn new(
        shared: Arc<Shared>,
        network: Network,
        events: mpsc::Sender<Event>,
        limits: P2pLimits,
    ) -> Intake {
        let max_block_txs = shared.genesis.consensus.max_block_txs as usize;
        let (admission, batches) = mpsc::channel(limits.gossip_verification_queue);
        tokio::spawn(admit_batches(
            batches,
            Arc::new(Semaphore::new(limits.gossip_verification_concurrency)),
            Arc::clone(&shared),
            network.clone(),
            events.clone(),
        ));
        Intake {
            drops: shared.metrics.drops(),
            sync_serving: Arc::new(Semaphore::new(limits.sync_serving_concurrency)),
            shared,
            network,
            events,
            engine: EngineConfig::default(),
            max_block_txs,
            limits,
            admission,
        }
    }

    /// Hands an event from a peer to the driver, or drops and counts it.
    fn to_driver(&self, event: Event, kind: &'static str) -> bool {
        offer_to_driver(&self.events, &self.drops, event, kind)
    }

    pub fn on_network_event(&self, event: NetworkEvent) {
        match event {
            NetworkEvent::Gossip {
                topic,
                from,
                bytes,
                message,
            } => match topic {
                Topic::Transactions => self.on_transactions(from, bytes, message),
                Topic::Consensus => {
                    let verdict = self.on_consensus(&bytes);
                    if verdict == GossipVerdict::Reject {
                        warn!(%from, "rejected a consensus message");
                    }
                    self.network.report(message, verdict);
                }
                Topic::Blocks => {
                    let verdict = self.on_announcement(from, &bytes);
                    self.network.report(message, verdict);
                }
            },
            NetworkEvent::SyncRequest {
                from: _,
                request,
                reply,
            } => {
                let shared = Arc::clone(&self.shared);
                let permits = Arc::clone(&self.sync_serving);
                let limits = self.limits;
                // Waiting tasks are bounded by the network's limit on a
                // peer's unanswered requests.
                tokio::spawn(async move {
                    let Ok(_permit) = permits.acquire_owned().await else {
                        return;
                    };
                    // The peer gave up (or the network answered for us).
                    if reply.is_closed() {
                        return;
                    }
                    let answer = tokio::task::spawn_blocking(move || {
                        crate::serve_sync(&shared, request, &limits)
                    })
                    .await
                    .unwrap_or_else(|error| SyncResponse::Error(error.to_string()));
                    let _ = reply.send(answer);
                });
            }
            NetworkEvent::PeerConnected(peer) => info!(%peer, "peer connected"),
            NetworkEvent::PeerDisconnected(peer) => info!(%peer, "peer disconnected"),
        }
    }

    /// The committed height and the engine's round, as the driver last
    /// published them.
    fn position(&self) -> (u64, u32) {
        let status = self.shared.status.borrow();
        (status.height, status.round)
    }

    /// A consensus message: passed to the driver only if it is signed by a
    /// validator and within the engine's window.
    pub fn on_consensus(&self, bytes: &[u8]) -> GossipVerdict {
        let message = match ConsensusMessage::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                debug!(%error, "malformed consensus message");
                return GossipVerdict::Reject;
            }
        };
        // Judged against the set the committed state records for the
        // message's height (for heights past the next two, the newest set
        // known: a hint the engine checks again when it starts the height).
        let schedule = self.shared.validator_schedule();
        let verdict = judge_consensus(
            &message,
            &self.shared.chain_id,
            schedule.set_at(message.height().0),
            &self.engine,
            self.position(),
        );
        if verdict == GossipVerdict::Accept
            && !self.to_driver(Event::Consensus(message), "consensus")
        {
            return GossipVerdict::Ignore;
        }
        verdict
    }

    fn on_announcement(&self, from: crate::network::PeerId, bytes: &[u8]) -> GossipVerdict {
        let announcement = match borsh::from_slice::<Announcement>(bytes) {
            Ok(announcement) => announcement,
            Err(error) => {
                warn!(%from, %error, "malformed block announcement");
                return GossipVerdict::Reject;
            }
        };
        let (committed, round) = self.position();
        let height = announcement.header.height;
        // Only the next height: a later one cannot be checked against a
        // parent we hold, an earlier one is decided.
        if height != committed + 1 {
            return GossipVerdict::Ignore;
        }
        if announcement.proposal.proposal.round.0
            > round.saturating_add(self.engine.round_lookahead)
        {
            return GossipVerdict::Ignore;
        }
        let schedule = self.shared.validator_schedule();
        match announcement.check(
            &self.shared.chain_id,
            schedule.set_at(height),
            self.max_block_txs,
        ) {
            Ok(()) => {
                let event = Event::Announcement {
                    from,
                    announcement: Box::new(announcement),
                };
                if self.to_driver(event, "announcement") {
                    GossipVerdict::Accept
                } else {
                    GossipVerdict::Ignore
                }
            }
            Err(error) => {
                warn!(%from, height, %error, "refused a block announcement");
                GossipVerdict::Reject
            }
        }
    }

    /// Queues a batch for verification, or drops it (counted, `Ignore`)
    /// when the verification queue is full.
    fn on_transactions(
        &self,
        from: crate::network::PeerId,
        bytes: Vec<u8>,
        message: GossipMessageRef,
    ) {
        match self.admission.try_send(GossipBatch { bytes, message }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(batch)) => {
                self.drops.count("gossip verification", "transactions");
                debug!(%from, "transaction verification is saturated; dropped a batch");
                self.network.report(batch.message, GossipVerdict::Ignore);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Hands a message from a peer to the driver if its queue has room;
/// otherwise drops it and counts it under `queue="driver"`. `false` if
/// dropped. (The node's own events — timers, sync results, the mempool
/// wake-up — are sent with `send().await` instead: they wait, never drop.)
fn offer_to_driver(
    events: &mpsc::Sender<Event>,
    drops: &Drops,
    event: Event,
    kind: &'static str,
) -> bool {
    match events.try_send(event) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            drops.count("driver", kind);
            debug!(
                kind,
                "the driver's queue is full; dropped a message from a peer"
            );
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Verifies queued transaction batches, at most `permits` at once, each on
/// a blocking thread (decoding and the mempool's batch signature check).
/// The wake-up for the driver is sent while the permit is held: a driver
/// that falls behind holds back admission, which fills the bounded queue,
/// which drops batches at the intake.
async fn admit_batches(
    mut batches: mpsc::Receiver<GossipBatch>,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    network: Network,
    events: mpsc::Sender<Event>,
) {
    while let Some(GossipBatch { bytes, message }) = batches.recv().await {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let shared = Arc::clone(&shared);
        let network = network.clone();
        let events = events.clone();
        tokio::spawn(async move {
            let judged = tokio::task::spawn_blocking(move || {
                let Ok(batch) = borsh::from_slice::<Vec<Vec<u8>>>(&bytes) else {
                    return None;
                };
                drop(bytes);
                let mut malformed = false;
                let txs: Vec<SignedTransaction> = batch
                    .iter()
                    .filter_map(|bytes| {
                        let decoded = SignedTransaction::from_bytes(bytes).ok();
                        malformed |= decoded.is_none();
                        decoded
                    })
                    .collect();
                drop(batch);
                let results = shared.admit(txs, false);
                let admitted = results.iter().any(Result::is_ok);
                Some((transactions_verdict(malformed, &results), admitted))
            })
            .await;
            let (verdict, admitted) = match judged {
                Ok(Some(judged)) => judged,
                Ok(None) => {
                    warn!("malformed transaction batch");
                    (GossipVerdict::Reject, false)
                }
                Err(_) => (GossipVerdict::Ignore, false),
            };
            if admitted {
                let _ = events.send(Event::MempoolActivity).await;
            }
            network.report(message, verdict);
            drop(permit);
        });
    }
}

/// A batch with a malformed or badly signed transaction is rejected (an
/// honest node relays only batches it accepted, so the peer that sent it
/// is to blame); one that added something is forwarded; the rest (all
/// known, or refused by the state) is not forwarded.
fn transactions_verdict(
    malformed: bool,
    results: &[Result<ledger::TxHash, MempoolError>],
) -> GossipVerdict {
    let forged = results.iter().any(|result| {
        matches!(
            result,
            Err(MempoolError::Rule(ledger::TxError::BadSignature { .. }))
        )
    });
    if malformed || forged {
        GossipVerdict::Reject
    } else if results.iter().any(Result::is_ok) {
        GossipVerdict::Accept
    } else {
        GossipVerdict::Ignore
    }
}

/// The verdict on a decoded consensus message given the node's committed
/// height and round: past heights and messages outside the engine's window
/// are ignored (an honest peer may be ahead or behind); another chain or a
/// bad signature is rejected, and so is a non-validator signer where the set
/// is final. The signature is checked last, so messages outside the window
/// cost no verification.
///
/// `validators` is the set the committed state records for the message's
/// height. It is final only up to `committed + ACTIVATION_DISTANCE`; past
/// that it is the newest set known, a hint: a validator added or a key
/// rotated by a change this node has not executed yet is missing from it,
/// so a signer outside it is ignored, not rejected (a rejection counts
/// against the peer, and a node catching up across a change would
/// otherwise graylist every honest peer relaying the new set's votes).
/// Past heights are ignored before the signer is looked at for the same
/// reason: a late precommit of a key rotated away at the next height is
/// honest.
pub fn judge_consensus(
    message: &ConsensusMessage,
    chain_id: &crypto::ChainId,
    validators: &ValidatorSet,
    engine: &EngineConfig,
    (committed, round): (u64, u32),
) -> GossipVerdict {
    if message.chain_id() != *chain_id {
        return GossipVerdict::Reject;
    }
    let height = message.height().0;
    if height <= committed || height > committed.saturating_add(1 + engine.future_heights) {
        return GossipVerdict::Ignore;
    }
    // Rounds of the next height are bounded by our round; later heights'
    // rounds by the lookahead alone (their round 0 is where they begin).
    let round_limit = if height == committed + 1 {
        round.saturating_add(engine.round_lookahead)
    } else {
        engine.round_lookahead
    };
    if message.round().0 > round_limit {
        return GossipVerdict::Ignore;
    }
    if !validators.contains(&message.signer()) {
        let set_is_final =
            height <= committed.saturating_add(ledger::governance::ACTIVATION_DISTANCE);
        return if set_is_final {
            GossipVerdict::Reject
        } else {
            GossipVerdict::Ignore
        };
    }
    match message.verify(chain_id) {
        Ok(()) => GossipVerdict::Accept,
        Err(_) => GossipVerdict::Reject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use consensus::{Height, Round, SignedVote, Validator, Vote, VoteKind};
    use crypto::{ChainId, Domain, Hash, Keypair};

    fn chain() -> ChainId {
        ChainId(Hash::digest(b"intake"))
    }

    fn keys() -> Vec<Keypair> {
        (1..=4u8).map(|i| Keypair::from_seed([i; 32])).collect()
    }

    fn set(keys: &[Keypair]) -> ValidatorSet {
        ValidatorSet::new(keys.iter().map(|key| Validator {
            public_key: key.public(),
            power: 1,
        }))
        .unwrap()
    }

    fn vote(key: &Keypair, height: u64, round: u32) -> ConsensusMessage {
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: Height(height),
            round: Round(round),
            value: Some(Hash([7; 32])),
            validator: key.public(),
        };
        ConsensusMessage::Vote(SignedVote {
            chain_id: chain(),
            signature: key.sign(Domain::Prevote, &chain(), &vote),
            vote,
        })
    }

    /// One row per rule: the message, the node at committed height 10,
    /// round 3, and the verdict.
    #[test]
    fn consensus_messages_are_judged_before_the_driver_sees_them() {
        let keys = keys();
        let validators = set(&keys);
        let engine = EngineConfig::default();
        let outsider = Keypair::from_seed([99; 32]);
        let mut forged = vote(&keys[0], 11, 0);
        if let ConsensusMessage::Vote(signed) = &mut forged {
            signed.signature.0[0] ^= 1;
        }
        let rows: Vec<(&str, ConsensusMessage, GossipVerdict)> = vec![
            (
                "next height, signed",
                vote(&keys[0], 11, 0),
                GossipVerdict::Accept,
            ),
            (
                "a later height in the window",
                vote(&keys[1], 13, 5),
                GossipVerdict::Accept,
            ),
            (
                "a committed height",
                vote(&keys[0], 10, 0),
                GossipVerdict::Ignore,
            ),
            (
                "beyond the future window",
                vote(&keys[0], 14, 0),
                GossipVerdict::Ignore,
            ),
            (
                "height u64::MAX",
                vote(&keys[0], u64::MAX, 0),
                GossipVerdict::Ignore,
            ),
            (
                "round u32::MAX",
                vote(&keys[0], 11, u32::MAX),
                GossipVerdict::Ignore,
            ),
            (
                "round past the lookahead",
                vote(&keys[0], 11, 3 + 101),
                GossipVerdict::Ignore,
            ),
            ("a forged signature", forged, GossipVerdict::Reject),
            (
                "a non-validator",
                vote(&outsider, 11, 0),
                GossipVerdict::Reject,
            ),
            (
                "a non-validator where the set is final",
                vote(&outsider, 12, 0),
                GossipVerdict::Reject,
            ),
            (
                "a signer outside the newest set known, past the final ones",
                vote(&outsider, 13, 0),
                GossipVerdict::Ignore,
            ),
            (
                "a non-validator at a committed height",
                vote(&outsider, 10, 0),
                GossipVerdict::Ignore,
            ),
            (
                "a non-validator beyond the window",
                vote(&outsider, 40, 0),
                GossipVerdict::Ignore,
            ),
        ];
        for (name, message, expected) in rows {
            assert_eq!(
                judge_consensus(&message, &chain(), &validators, &engine, (10, 3)),
                expected,
                "{name}"
            );
        }
        let other_chain = ChainId(Hash::digest(b"other"));
        assert_eq!(
            judge_consensus(
                &vote(&keys[0], 11, 0),
                &other_chain,
                &validators,
                &engine,
                (10, 3)
            ),
            GossipVerdict::Reject,
            "another chain"
        );
    }

    #[test]
    fn a_batch_with_a_forged_signature_is_rejected_not_relayed() {
        let signer = PublicKey([1; 32]);
        let hash = ledger::TxHash(Hash([2; 32]));
        let forged = Err(MempoolError::Rule(ledger::TxError::BadSignature { signer }));
        let duplicate = Err(MempoolError::Duplicate { hash });
        assert_eq!(
            transactions_verdict(false, &[Ok(hash), forged]),
            GossipVerdict::Reject
        );
        assert_eq!(
            transactions_verdict(true, &[Ok(hash)]),
            GossipVerdict::Reject
        );
        assert_eq!(
            transactions_verdict(false, &[Ok(hash), duplicate]),
            GossipVerdict::Accept
        );
        let duplicate = Err(MempoolError::Duplicate { hash });
        assert_eq!(
            transactions_verdict(false, &[duplicate]),
            GossipVerdict::Ignore
        );
    }

    use crypto::PublicKey;

    /// A full driver queue drops peers' messages (counted), while the
    /// node's own events wait for room and arrive.
    #[tokio::test]
    async fn a_full_driver_queue_drops_peer_messages_and_makes_own_events_wait() {
        let (events, mut driver) = mpsc::channel(2);
        let drops = Drops::default();
        let keys = keys();
        for round in 0..5 {
            offer_to_driver(
                &events,
                &drops,
                Event::Consensus(vote(&keys[0], 11, round)),
                "consensus",
            );
        }
        assert_eq!(drops.get("driver", "consensus"), 3, "2 queued, 3 dropped");
        // The wake-up waits while the queue is full and goes in once the
        // driver takes something.
        let waiting = tokio::spawn({
            let events = events.clone();
            async move { events.send(Event::MempoolActivity).await.is_ok() }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "waits for room");
        assert!(matches!(driver.recv().await, Some(Event::Consensus(_))));
        assert!(waiting.await.expect("the sender task"));
        assert!(matches!(driver.recv().await, Some(Event::Consensus(_))));
        assert!(matches!(driver.recv().await, Some(Event::MempoolActivity)));
        assert_eq!(drops.get("driver", "consensus"), 3, "nothing else dropped");
    }
}
