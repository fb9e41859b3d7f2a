//! Block bodies in the driver: announcing our proposals, rebuilding
//! announced blocks from the mempool, and fetching bodies from peers.
//!
//! The rule everywhere: a body is used only once it matches its header's tx
//! root (which commits to every transaction and its signature). A rebuild
//! from mempool copies that does not match (say, the signer gave this node
//! another valid signature than the proposer's) is not judged: the body is
//! fetched. A fetched body that does not match is discarded and the next
//! peer asked; a peer that withholds it is skipped; a body still missing is
//! asked for again every [`super::REFETCH_INTERVAL`]. Only bodies of the
//! next height that an engine-checked proposal, decision or lock needs, or
//! that a checked announcement names, are wanted, and at most
//! [`super::MAX_WANTED_BODIES`] at once.

use std::time::Instant;

use consensus::{Round, SignedProposal};
use crypto::Hash;
use ledger::block::{tx_root, tx_root_with_hashes};
use ledger::transaction::verify_signatures;
use ledger::{Block, SignedTransaction, TxError, TxHash};
use tracing::{debug, warn};

use super::blocks::{Announcement, Candidate};
use super::{
    ANNOUNCEMENT_ROUNDS_AHEAD, Driver, DriverError, Event, MAX_ANNOUNCEMENTS_PER_ROUND,
    MAX_WANTED_BODIES, REFETCH_INTERVAL,
};
use crate::network::{PeerId, SyncRequest, SyncResponse, Topic};

/// A block body the node needs and does not hold.
#[derive(Debug)]
pub struct WantedBody {
    pub height: u64,
    /// The checked announcement that named it, if one did.
    pub announcement: Option<Announcement>,
    /// Who to ask first (the proposer).
    pub first_peer: Option<PeerId>,
    pub in_flight: bool,
    pub next_try: Instant,
}

impl WantedBody {
    pub fn new(height: u64) -> WantedBody {
        WantedBody {
            height,
            announcement: None,
            first_peer: None,
            in_flight: false,
            next_try: Instant::now(),
        }
    }
}

/// Whether `block`'s body is the one its header commits to.
pub fn body_matches_header(block: &Block) -> bool {
    tx_root(&block.txs) == block.header.tx_root
}

impl Driver {
    /// Gossips the announcement of a proposal we are about to broadcast, if
    /// we hold its block (a re-proposal after a restart may not be here).
    pub(super) fn announce(&mut self, proposal: &SignedProposal) {
        let Some(candidate) = self.candidates.get_mut(&proposal.proposal.value) else {
            debug!(value = %proposal.proposal.value, "no body to announce for our proposal");
            return;
        };
        if candidate.proposal.is_none() {
            candidate.proposal = Some(*proposal);
        }
        let announcement = Announcement {
            proposal: *proposal,
            header: candidate.block.header.clone(),
            tx_hashes: candidate.hashes.clone(),
        };
        if let Err(error) = self.network.publish(
            Topic::Blocks,
            borsh::to_vec(&announcement).expect("encoding to a Vec"),
        ) {
            debug!(%error, "block announcement not published");
        }
    }

    /// A proposer's announcement, already checked by the intake (signed
    /// proposal of the round's proposer for this header): rebuild the block
    /// from the mempool if that gives exactly the header's tx root, or
    /// fetch it whole.
    pub(super) fn on_announcement(
        &mut self,
        from: PeerId,
        announcement: Announcement,
    ) -> Result<(), DriverError> {
        let height = announcement.header.height;
        if height != self.committed_height() + 1 {
            return Ok(());
        }
        let hash = announcement.hash();
        if self.candidates.contains_key(&hash) || self.wanted.contains_key(&hash) {
            return Ok(());
        }
        let round = announcement.proposal.proposal.round;
        let our_round = self.engine.round().unwrap_or(Round::ZERO);
        if round.0 > our_round.0.saturating_add(ANNOUNCEMENT_ROUNDS_AHEAD) {
            debug!(
                height,
                round = round.0,
                "announcement too far ahead; ignored"
            );
            return Ok(());
        }
        let taken = self.announced_per_round.entry(round.0).or_insert(0);
        if *taken >= MAX_ANNOUNCEMENTS_PER_ROUND {
            warn!(%from, height, round = round.0, "too many announcements for one round; ignored");
            return Ok(());
        }
        *taken += 1;
        if round == Round::ZERO {
            // Signed by the round-0 proposer: the height has begun.
            self.next_height_started_by_peers = true;
        }
        let found = self.shared.mempool.lookup(&announcement.tx_hashes);
        if found.iter().all(Option::is_some) {
            let txs: Vec<SignedTransaction> = found
                .into_iter()
                .map(|pending| pending.expect("all present").tx.as_ref().clone())
                .collect();
            // Our copies are verified; they are this block only if they
            // carry the signatures its header commits to.
            if tx_root_with_hashes(&txs, &announcement.tx_hashes) == announcement.header.tx_root {
                let block = Block {
                    header: announcement.header,
                    txs,
                };
                self.shared.remember_block(&block);
                self.candidates.insert(
                    hash,
                    Candidate {
                        block,
                        hashes: announcement.tx_hashes,
                        proposal: Some(announcement.proposal),
                    },
                );
                return self.retry_waiting();
            }
            debug!(
                height,
                "our copies do not give the announced tx root; fetching the block"
            );
        }
        let proposer_peer = self.peer_for_proposer(&announcement.proposal.proposal.proposer);
        if self.wanted.len() >= MAX_WANTED_BODIES {
            warn!(
                height,
                "too many bodies wanted; not fetching an announced block"
            );
            return Ok(());
        }
        let mut wanted = WantedBody::new(height);
        wanted.first_peer = proposer_peer.or(Some(from));
        wanted.announcement = Some(announcement);
        self.wanted.insert(hash, wanted);
        self.fetch_wanted(hash);
        Ok(())
    }

    /// Wants the body of `value` at `height` (a proposal the engine checked,
    /// or a decision) unless it is here or already wanted.
    pub(super) fn want_body(&mut self, height: u64, value: Hash) {
        if height != self.committed_height() + 1
            || self.candidates.contains_key(&value)
            || self.wanted.contains_key(&value)
        {
            return;
        }
        if self.wanted.len() >= MAX_WANTED_BODIES {
            warn!(height, %value, "too many bodies wanted; not fetching");
            return;
        }
        self.wanted.insert(value, WantedBody::new(height));
        self.fetch_wanted(value);
    }

    /// Asks again for the bodies still missing whose retry time has come.
    pub(super) fn refetch_wanted(&mut self) {
        let now = Instant::now();
        let due: Vec<Hash> = self
            .wanted
            .iter()
            .filter(|(_, wanted)| !wanted.in_flight && wanted.next_try <= now)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in due {
            self.fetch_wanted(hash);
        }
    }

    pub(super) fn on_fetch_failed(&mut self, hash: Hash) {
        if let Some(wanted) = self.wanted.get_mut(&hash) {
            wanted.in_flight = false;
            wanted.next_try = Instant::now() + REFETCH_INTERVAL;
        }
    }

    /// Asks the first peer (then every other connected peer, in turn) for
    /// a wanted body; the answer arrives as `Event::FetchedBlock` (a body
    /// that matches its header) or `Event::FetchFailed`.
    fn fetch_wanted(&mut self, hash: Hash) {
        let Some(wanted) = self.wanted.get_mut(&hash) else {
            return;
        };
        wanted.in_flight = true;
        wanted.next_try = Instant::now() + REFETCH_INTERVAL;
        let mut peers = self.network.connected_peers();
        if let Some(first) = wanted.first_peer {
            peers.retain(|peer| *peer != first);
            peers.insert(0, first);
        }
        let network = self.network.clone();
        let sender = self.sender.clone();
        self.runtime.spawn(async move {
            for peer in peers {
                match network.request(peer, SyncRequest::BlockByHash(hash)).await {
                    Ok(SyncResponse::Block(Some(bytes))) => match Block::from_bytes(&bytes) {
                        Ok(block) if block.hash() == hash && body_matches_header(&block) => {
                            let _ = sender.send(Event::FetchedBlock(block)).await;
                            return;
                        }
                        _ => warn!(%peer, %hash, "peer sent a body that does not match the block"),
                    },
                    Ok(_) => debug!(%peer, %hash, "peer does not hold the block"),
                    Err(error) => debug!(%peer, %error, "block request failed"),
                }
            }
            let _ = sender.send(Event::FetchFailed(hash)).await;
        });
    }

    /// A wanted body, matching its header: verify the signatures the
    /// mempool has not verified, then use it. A bad signature here is the
    /// block's own (its header commits to it), so the verdict is final.
    pub(super) fn on_fetched_block(&mut self, block: Block) -> Result<(), DriverError> {
        let hash = block.hash();
        let Some(wanted) = self.wanted.remove(&hash) else {
            return Ok(());
        };
        if block.header.height != self.committed_height() + 1
            || self.candidates.contains_key(&hash)
            || !body_matches_header(&block)
        {
            return Ok(());
        }
        let hashes: Vec<TxHash> = block.txs.iter().map(SignedTransaction::hash).collect();
        if let Some(bad) = self.first_bad_signature(&block.txs, &hashes) {
            warn!(height = block.header.height, %bad, "proposed block carries a bad signature");
            self.verdicts.insert(hash, false);
            return self.retry_waiting();
        }
        self.shared.remember_block(&block);
        self.candidates.insert(
            hash,
            Candidate {
                block,
                hashes,
                proposal: wanted
                    .announcement
                    .map(|announcement| announcement.proposal),
            },
        );
        self.retry_waiting()
    }

    /// Verifies, in one batch, the signatures of those of `txs` that the
    /// mempool does not hold with exactly the same signature (the mempool
    /// verified its own copies on entry; a transaction's hash does not cover
    /// its signature, so a copy with another signature proves nothing); the
    /// first bad one, if any.
    pub(super) fn first_bad_signature(
        &self,
        txs: &[SignedTransaction],
        hashes: &[TxHash],
    ) -> Option<TxError> {
        let known = self.shared.mempool.lookup(hashes);
        let unverified: Vec<SignedTransaction> = txs
            .iter()
            .zip(&known)
            .filter(|(tx, pending)| {
                !pending
                    .as_ref()
                    .is_some_and(|pending| pending.tx.signature == tx.signature)
            })
            .map(|(tx, _)| tx.clone())
            .collect();
        verify_signatures(&unverified)
            .into_iter()
            .find_map(Result::err)
    }
}
