//! Blocks in the driver: building one as proposer, checking a proposed one
//! as validator, rebuilding announced blocks from the mempool, and the
//! atomic commit.
//!
//! Signatures are verified once per node: transactions taken from the
//! mempool were batch-verified on entry and are used as
//! `VerifiedTx::assume_verified`; only those fetched with a whole block are
//! verified here (in one batch).

use std::time::Instant;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::Hash;
use ledger::block::{select_transactions, tx_root_with_hashes};
use ledger::transaction::verify_signatures;
use ledger::{
    Block, BlockContext, BlockHeader, SignedTransaction, Timestamp, TxError, TxHash, VerifiedTx,
};
use tracing::{debug, info, warn};

use super::{Driver, DriverError};
use crate::network::{PeerId, SyncRequest, SyncResponse, Topic};
use crate::shared::{now_ms, participant_in};

/// How far a proposed block's time may run ahead of this node's clock.
const MAX_CLOCK_DRIFT_MS: u64 = 30_000;

/// What a proposer gossips: the header and the transaction hashes. Peers
/// hold the transactions already (transaction gossip), so a 5,000-transaction
/// block costs 160 KB instead of megabytes.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Announcement {
    pub header: BlockHeader,
    pub tx_hashes: Vec<TxHash>,
}

impl Announcement {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }
}

/// A block this node holds for the current height, with every transaction's
/// signature known to be valid.
#[derive(Debug)]
pub struct Candidate {
    pub block: Block,
    pub hashes: Vec<TxHash>,
}

impl Driver {
    fn last_block_time(&self) -> u64 {
        self.shared.status.borrow().block_time_ms
    }

    /// As proposer: takes candidates from the mempool, executes them
    /// (skipping the invalid ones, which leave the mempool with their
    /// reason), prepares the app hash, announces the block; returns its hash.
    pub(super) fn build_block(&mut self, height: u64) -> Result<Hash, DriverError> {
        let started = Instant::now();
        let Some(key) = self.my_key.clone() else {
            unreachable!("only a validator engine asks for a value");
        };
        let header_room = 512;
        let pending = self.shared.mempool.candidates(
            self.max_block_txs,
            self.max_block_bytes.saturating_sub(header_room),
        );
        let txs: Vec<&SignedTransaction> = pending.iter().map(|p| p.tx.as_ref()).collect();
        let verified: Vec<VerifiedTx<'_>> = txs
            .iter()
            .zip(&pending)
            .map(|(tx, p)| VerifiedTx::assume_verified(tx, p.hash))
            .collect();
        let time = Timestamp(now_ms().max(self.last_block_time() + 1));
        let parent_hash = self.shared.status.borrow().block_hash;
        let context = BlockContext {
            chain_id: self.shared.chain_id,
            height,
            time,
        };
        let mut store = self.shared.store.write();
        // state-errors: a failed read of our own state refuses no candidate
        // (they stay in the mempool); it is our disk failing, fatal as a store error.
        let (kept, execution, refused) = select_transactions(&context, &*store, &verified)
            .map_err(|source| ledger::store::StoreError::StateReadFailed { height, source })?;
        let block_txs: Vec<SignedTransaction> = kept.iter().map(|tx| tx.tx().clone()).collect();
        let hashes: Vec<TxHash> = kept.iter().map(VerifiedTx::hash).collect();
        let prepared = store.prepare(execution);
        drop(store);
        let header = BlockHeader {
            chain_id: self.shared.chain_id,
            height,
            time,
            parent_hash,
            proposer: key.public(),
            tx_root: tx_root_with_hashes(&block_txs, &hashes),
            app_hash: prepared.app_hash(),
        };
        let block = Block {
            header,
            txs: block_txs,
        };
        let hash = block.hash();
        for (hash, error) in &refused {
            debug!(%hash, %error, "proposer skips a transaction");
        }
        let removed = self.shared.mempool.reject(&refused);
        self.shared.record_rejections(removed);
        let announcement = Announcement {
            header: block.header.clone(),
            tx_hashes: hashes.clone(),
        };
        if let Err(error) = self.network.publish(
            Topic::Blocks,
            borsh::to_vec(&announcement).expect("encoding to a Vec"),
        ) {
            debug!(%error, "block announcement not published");
        }
        info!(
            height,
            txs = hashes.len(),
            refused = refused.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "proposing block"
        );
        self.shared.remember_block(&block);
        self.candidates.insert(hash, Candidate { block, hashes });
        self.verdicts.insert(hash, true);
        self.prepared = Some((hash, prepared));
        Ok(hash)
    }

    /// The verdict on a proposed block, `None` while the block is missing.
    pub(super) fn check_block(
        &mut self,
        height: u64,
        value: Hash,
    ) -> Result<Option<bool>, DriverError> {
        if let Some(verdict) = self.verdicts.get(&value) {
            return Ok(Some(*verdict));
        }
        if !self.candidates.contains_key(&value) {
            return Ok(None);
        }
        // state-errors: executing the candidate may fail to read our own
        // state: no verdict on the block (no nil vote), a fatal store error.
        let checked = match self.validate(height, value) {
            Ok(()) => self.execute_candidate(value)?,
            Err(reason) => Err(reason),
        };
        let verdict = match checked {
            Ok(()) => true,
            Err(reason) => {
                warn!(height, block = %value, %reason, "proposed block is invalid");
                false
            }
        };
        self.verdicts.insert(value, verdict);
        Ok(Some(verdict))
    }

    /// Checks header, limits and the tx root: everything that needs no
    /// state (see [`Driver::execute_candidate`] for the rest).
    fn validate(&mut self, height: u64, value: Hash) -> Result<(), String> {
        let candidate = self.candidates.get(&value).expect("checked by the caller");
        let header = &candidate.block.header;
        let status = self.shared.status.borrow().clone();
        if header.chain_id != self.shared.chain_id {
            return Err(format!("chain id {} is not ours", header.chain_id));
        }
        if header.height != height || height != status.height + 1 {
            return Err(format!(
                "height {} does not follow our height {}",
                header.height, status.height
            ));
        }
        if header.parent_hash != status.block_hash {
            return Err(format!(
                "parent {} is not our last block {}",
                header.parent_hash, status.block_hash
            ));
        }
        if header.time.0 <= status.block_time_ms {
            return Err(format!(
                "time {} is not after the parent's {}",
                header.time.0, status.block_time_ms
            ));
        }
        if header.time.0 > now_ms() + MAX_CLOCK_DRIFT_MS {
            return Err(format!(
                "time {} is more than {MAX_CLOCK_DRIFT_MS} ms ahead of our clock",
                header.time.0
            ));
        }
        if !self.validators.contains(&header.proposer) {
            return Err(format!("proposer {} is not a validator", header.proposer));
        }
        if candidate.block.txs.len() > self.max_block_txs {
            return Err(format!(
                "{} transactions exceed the limit of {}",
                candidate.block.txs.len(),
                self.max_block_txs
            ));
        }
        let size = borsh::object_length(&candidate.block).unwrap_or(usize::MAX);
        if size > self.max_block_bytes {
            return Err(format!(
                "{size} bytes exceed the limit of {}",
                self.max_block_bytes
            ));
        }
        if tx_root_with_hashes(&candidate.block.txs, &candidate.hashes) != header.tx_root {
            return Err("the tx root does not match the transactions".to_string());
        }
        Ok(())
    }

    /// Executes a candidate that passed [`Driver::validate`]: `Ok(Err)` if
    /// its transactions or app hash are wrong; on success the store holds
    /// the block prepared for commit.
    fn execute_candidate(&mut self, value: Hash) -> Result<Result<(), String>, DriverError> {
        let candidate = self.candidates.get(&value).expect("checked by the caller");
        let header = &candidate.block.header;
        let verified: Vec<VerifiedTx<'_>> = candidate
            .block
            .txs
            .iter()
            .zip(&candidate.hashes)
            .map(|(tx, hash)| VerifiedTx::assume_verified(tx, *hash))
            .collect();
        let context = header.context();
        let mut store = self.shared.store.write();
        let execution = match ledger::block::execute_verified_block(&context, &*store, &verified) {
            Ok(execution) => execution,
            Err(ledger::BlockError::StateReadFailed { error, .. }) => {
                return Err(ledger::store::StoreError::StateReadFailed {
                    height: header.height,
                    source: *error,
                }
                .into());
            }
            Err(invalid) => return Ok(Err(invalid.to_string())),
        };
        let prepared = store.prepare(execution);
        drop(store);
        if prepared.app_hash() != header.app_hash {
            return Ok(Err(format!(
                "app hash {} differs from ours {}",
                header.app_hash,
                prepared.app_hash()
            )));
        }
        self.prepared = Some((value, prepared));
        Ok(Ok(()))
    }

    /// A proposer's announcement: rebuild the block from the mempool, or
    /// fetch it whole from the proposer.
    pub(super) fn on_announcement(
        &mut self,
        from: PeerId,
        announcement: super::Announcement,
    ) -> Result<(), DriverError> {
        let height = announcement.header.height;
        let committed = self.committed_height();
        if height <= committed {
            return Ok(());
        }
        self.activity_height = self.activity_height.max(height);
        let hash = announcement.hash();
        if self.candidates.contains_key(&hash) || announcement.tx_hashes.len() > self.max_block_txs
        {
            return Ok(());
        }
        let found = self.shared.mempool.lookup(&announcement.tx_hashes);
        if found.iter().all(Option::is_some) {
            let txs: Vec<SignedTransaction> = found
                .into_iter()
                .map(|pending| pending.expect("all present").tx.as_ref().clone())
                .collect();
            let block = Block {
                header: announcement.header,
                txs,
            };
            self.shared.remember_block(&block);
            self.candidates.insert(
                hash,
                super::Candidate {
                    block,
                    hashes: announcement.tx_hashes,
                },
            );
            return self.retry_waiting();
        }
        let missing = found.iter().filter(|p| p.is_none()).count();
        debug!(
            height,
            missing, "announced block has transactions we lack; fetching it"
        );
        let proposer_peer = self.peer_for_proposer(&announcement.header.proposer);
        self.fetching.insert(hash, announcement);
        self.fetch_block(hash, proposer_peer.or(Some(from)));
        Ok(())
    }

    /// Asks `first` (or every connected peer) for a block by hash; the answer
    /// arrives as `Event::FetchedBlock`.
    pub(super) fn fetch_block(&self, hash: Hash, first: Option<PeerId>) {
        let mut peers = self.network.connected_peers();
        if let Some(first) = first {
            peers.retain(|peer| *peer != first);
            peers.insert(0, first);
        }
        let network = self.network.clone();
        let sender = self.sender.clone();
        self.runtime.spawn(async move {
            for peer in peers {
                match network.request(peer, SyncRequest::BlockByHash(hash)).await {
                    Ok(SyncResponse::Block(Some(bytes))) => match Block::from_bytes(&bytes) {
                        Ok(block) if block.hash() == hash => {
                            let _ = sender.send(super::Event::FetchedBlock(block));
                            return;
                        }
                        _ => debug!(%peer, "peer sent a wrong block for a hash"),
                    },
                    Ok(_) => {}
                    Err(error) => debug!(%peer, %error, "block request failed"),
                }
            }
        });
    }

    /// A whole block fetched by hash: verify the signatures of the
    /// transactions the mempool did not hold, then use it.
    pub(super) fn on_fetched_block(&mut self, block: Block) -> Result<(), DriverError> {
        let hash = block.hash();
        self.fetching.remove(&hash);
        if block.header.height <= self.committed_height() || self.candidates.contains_key(&hash) {
            return Ok(());
        }
        let hashes: Vec<TxHash> = block.txs.iter().map(SignedTransaction::hash).collect();
        if let Some(bad) = self.first_bad_signature(&block.txs, &hashes) {
            warn!(height = block.header.height, %bad, "fetched block carries a bad signature");
            self.verdicts.insert(hash, false);
            return self.retry_waiting();
        }
        self.shared.remember_block(&block);
        self.candidates.insert(hash, Candidate { block, hashes });
        self.retry_waiting()
    }

    /// Verifies, in one batch, the signatures of those of `txs` the mempool
    /// does not hold (the mempool verified its own on entry); the first bad
    /// one, if any.
    pub(super) fn first_bad_signature(
        &self,
        txs: &[SignedTransaction],
        hashes: &[TxHash],
    ) -> Option<TxError> {
        let known = self.shared.mempool.lookup(hashes);
        let unknown: Vec<SignedTransaction> = txs
            .iter()
            .zip(&known)
            .filter(|(_, pending)| pending.is_none())
            .map(|(tx, _)| tx.clone())
            .collect();
        verify_signatures(&unknown)
            .into_iter()
            .find_map(Result::err)
    }

    /// Commits a decided (or synced) block with its certificate in one
    /// synced write, then cleans up for the next height.
    pub(super) fn commit(
        &mut self,
        block: Block,
        certificate: Vec<u8>,
        round: u32,
    ) -> Result<(), DriverError> {
        let hash = block.hash();
        let height = block.header.height;
        let started = Instant::now();
        let prepared = match self.prepared.take() {
            Some((prepared_hash, prepared)) if prepared_hash == hash => prepared,
            _ => {
                let hashes: Vec<TxHash> = match self.candidates.get(&hash) {
                    Some(candidate) => candidate.hashes.clone(),
                    None => block.txs.iter().map(SignedTransaction::hash).collect(),
                };
                let verified: Vec<VerifiedTx<'_>> = block
                    .txs
                    .iter()
                    .zip(&hashes)
                    .map(|(tx, hash)| VerifiedTx::assume_verified(tx, *hash))
                    .collect();
                let mut store = self.shared.store.write();
                let execution = ledger::block::execute_verified_block(
                    &block.header.context(),
                    &*store,
                    &verified,
                )
                .map_err(|error| match error {
                    // state-errors: our disk failing, not the block.
                    ledger::BlockError::StateReadFailed { error, .. } => {
                        ledger::store::StoreError::StateReadFailed {
                            height,
                            source: *error,
                        }
                    }
                    invalid => ledger::store::StoreError::Corrupt {
                        what: format!(
                            "block {height} was decided by a quorum but does not execute here: {invalid}"
                        ),
                    },
                })?;
                store.prepare(execution)
            }
        };
        let tx_hashes = std::sync::Arc::new(prepared.tx_hashes().to_vec());
        {
            let mut store = self.shared.store.write();
            store.commit(&block, &certificate, &prepared)?;
        }
        let write_time = started.elapsed();
        self.last_commit = Instant::now();
        self.last_block_busy = !block.txs.is_empty();
        self.shared.status.send_modify(|status| {
            status.height = height;
            status.block_hash = hash;
            status.app_hash = block.header.app_hash;
            status.block_time_ms = block.header.time.0;
        });
        self.shared.metrics.set_height(height);
        self.shared
            .metrics
            .block_committed(block.txs.len(), write_time);
        {
            let store = self.shared.store.read();
            self.shared
                .mempool
                .after_commit(&tx_hashes, |key| participant_in(&store, key));
        }
        let dropped = self.shared.mempool.take_dropped();
        self.shared.record_rejections(dropped);
        let (count, bytes) = self.shared.mempool.size();
        self.shared.metrics.set_mempool(count, bytes);
        self.shared.record_commit_latency(&tx_hashes);
        let _ = self
            .shared
            .commits
            .send(crate::shared::CommitNotice { height, tx_hashes });
        self.candidates
            .retain(|_, candidate| candidate.block.header.height > height);
        self.fetching
            .retain(|_, announcement| announcement.header.height > height);
        self.verdicts.clear();
        self.waiting_checks.retain(|(h, _, _)| h.0 > height);
        if self
            .waiting_decision
            .as_ref()
            .is_some_and(|decision| decision.height.0 <= height)
        {
            self.waiting_decision = None;
        }
        info!(
            height,
            round,
            txs = block.txs.len(),
            commit_ms = write_time.as_millis() as u64,
            "committed block"
        );
        Ok(())
    }
}
