//! Block sync: a node that is behind (new, restarted, partitioned, or an
//! observer) fetches committed blocks with their certificates from peers,
//! checks each certificate against the genesis validator set, re-executes
//! the block and commits it, then joins consensus at the next height.
//!
//! The driver asks every connected peer for its height once a second; when
//! one is ahead it requests the next range from it, one request at a time.
//! Serving requests is not done here (the node answers from the store
//! without the driver: see `crate::serve_sync`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use consensus::{CommitCertificate, Height};
use ledger::block::tx_root_with_hashes;
use ledger::{Block, SignedTransaction, TxHash};
use tracing::{debug, info, warn};

use super::{Driver, DriverError, Event};
use crate::network::{PeerId, SyncRequest, SyncResponse, SyncedBlock};

/// Blocks per sync request.
pub const SYNC_BATCH: u64 = 64;
/// A request unanswered for this long is given up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
pub struct SyncState {
    peer_heights: HashMap<PeerId, u64>,
    in_flight: Option<(PeerId, Instant)>,
}

impl SyncState {
    pub fn peer_height(&mut self, peer: PeerId, height: u64) {
        self.peer_heights.insert(peer, height);
    }

    pub fn request_failed(&mut self, peer: PeerId) {
        if self.in_flight.is_some_and(|(asked, _)| asked == peer) {
            self.in_flight = None;
        }
        self.peer_heights.remove(&peer);
    }

    /// More than one block behind the best peer: a block or so of lag is
    /// normal in consensus and closed by the decision itself.
    pub fn is_behind(&self, height: u64) -> bool {
        self.best().is_some_and(|(_, best)| best > height + 1)
    }

    fn best(&self) -> Option<(PeerId, u64)> {
        self.peer_heights
            .iter()
            .max_by_key(|(peer, height)| (**height, **peer))
            .map(|(peer, height)| (*peer, *height))
    }
}

impl Driver {
    pub(super) fn poll_peer_heights(&mut self) {
        let connected = self.network.connected_peers();
        self.sync
            .peer_heights
            .retain(|peer, _| connected.contains(peer));
        for peer in connected {
            let network = self.network.clone();
            let sender = self.sender.clone();
            self.runtime.spawn(async move {
                let event = match network.request(peer, SyncRequest::Status).await {
                    Ok(SyncResponse::Status { height }) => Event::PeerStatus { peer, height },
                    _ => Event::SyncFailed { peer },
                };
                let _ = sender.send(event);
            });
        }
    }

    /// Requests the next range from the best peer when it is ahead of us.
    pub(super) fn maybe_request_blocks(&mut self) {
        if let Some((_, since)) = self.sync.in_flight {
            if since.elapsed() < REQUEST_TIMEOUT {
                return;
            }
            self.sync.in_flight = None;
        }
        let height = self.committed_height();
        let Some((peer, best)) = self.sync.best() else {
            return;
        };
        // A peer one block ahead may just be faster; wait for our own
        // decision unless we are not in consensus at that height.
        let in_consensus = self.started == Some(height + 1);
        if best <= height || (best == height + 1 && in_consensus) {
            return;
        }
        let to = best.min(height + SYNC_BATCH);
        self.sync.in_flight = Some((peer, Instant::now()));
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
            let _ = sender.send(event);
        });
    }

    /// Checks and commits synced blocks in order; stops at the first bad one
    /// (the peer is then not asked again until it reports a height anew).
    pub(super) fn on_synced_blocks(
        &mut self,
        peer: PeerId,
        blocks: Vec<SyncedBlock>,
    ) -> Result<(), DriverError> {
        if self.sync.in_flight.is_some_and(|(asked, _)| asked == peer) {
            self.sync.in_flight = None;
        }
        let count = blocks.len();
        for synced in blocks {
            let expected = self.committed_height() + 1;
            match self.check_synced(&synced, expected) {
                Ok(None) => continue,
                Ok(Some((block, certificate))) => {
                    let round = certificate.round.0;
                    self.commit(block, synced.certificate, round)?;
                }
                Err(reason) => {
                    warn!(%peer, height = expected, %reason, "refusing a synced block");
                    self.sync.request_failed(peer);
                    return Ok(());
                }
            }
        }
        if count > 0 {
            info!(height = self.committed_height(), "synced from peer");
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
                &self.validators,
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
