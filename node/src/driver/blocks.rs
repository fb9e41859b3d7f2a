//! Blocks in the driver: building one as proposer, checking a proposed one
//! as validator, and the atomic commit. Announcements and fetching bodies
//! are in [`super::bodies`].
//!
//! Signatures are verified once per node: a candidate's transactions are
//! either the mempool's own copies (batch-verified on entry, and the block
//! matched the header's tx root, which commits to each signature) or were
//! verified when the body was fetched; they are then used as
//! `VerifiedTx::assume_verified`.
//!
//! Block time: a proposal's time must be after its parent's and within
//! [`MAX_CLOCK_DRIFT_MS`] of this node's clock on both sides (a fresh
//! proposal; a re-proposal of a value a quorum already prevoted, which
//! carries `pol_round`, is not held to the lower bound, since its time was
//! checked when it was first proposed). So one proposer can neither push
//! the chain's time ahead nor hold it back by more than the drift.

use std::time::Instant;

use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{Round, SignedProposal, ValidatorSet};
use crypto::{ChainId, Hash, PublicKey};
use ledger::block::{select_transactions, tx_root_with_hashes};
use ledger::store::StoreError;
use ledger::{Block, BlockContext, BlockHeader, SignedTransaction, Timestamp, TxHash, VerifiedTx};
use tracing::{debug, info, warn};

use super::{Driver, DriverError};
use crate::shared::{now_ms, signer_account_in};

/// How far a proposed block's time may be from this node's clock, ahead or
/// behind.
pub const MAX_CLOCK_DRIFT_MS: u64 = 30_000;

/// What a proposer gossips: its signed proposal, the header and the
/// transaction hashes. Peers hold the transactions already (transaction
/// gossip), so a 5,000-transaction block costs 160 KB instead of megabytes.
///
/// The signed proposal binds the announcement to the round's proposer: an
/// announcement is taken only when its proposal is validly signed by the
/// proposer of its (height, round) and names exactly this header, so no
/// other peer can make a node hold, fetch or judge a block.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Announcement {
    pub proposal: SignedProposal,
    pub header: BlockHeader,
    pub tx_hashes: Vec<TxHash>,
}

/// Why an announcement is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnouncementError {
    #[error("the proposal is for chain {got}, not {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("the proposal names block {proposed}, the header hashes to {header}")]
    OtherBlock { proposed: Hash, header: Hash },
    #[error("the proposal is for height {proposal}, the header for {header}")]
    HeightMismatch { proposal: u64, header: u64 },
    #[error("{signer} is not the proposer of height {height} round {round}")]
    NotTheProposer {
        signer: PublicKey,
        height: u64,
        round: u32,
    },
    #[error("the header names proposer {named}, who proposed none of rounds 0..={last_round}")]
    WrongHeaderProposer { named: PublicKey, last_round: u32 },
    #[error("a proposal for round {round} cannot re-propose a value of round {pol_round}")]
    BadPolRound { round: u32, pol_round: u32 },
    #[error("{count} transaction hashes, more than a block may hold ({limit})")]
    TooManyTransactions { count: usize, limit: usize },
    #[error("the proposal's signature does not verify")]
    BadSignature,
}

impl Announcement {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Checks everything an announcement can be checked for without the
    /// node's state: the proposal is signed by the proposer of its round,
    /// for this very header, and the header names the proposer who first
    /// proposed the block (the round's proposer, or for a re-proposal one of
    /// a round up to the proposal's `pol_round`). The signature is checked
    /// last, so junk costs no verification.
    pub fn check(
        &self,
        chain_id: &ChainId,
        validators: &ValidatorSet,
        max_block_txs: usize,
    ) -> Result<(), AnnouncementError> {
        let signed = &self.proposal;
        let proposal = &signed.proposal;
        if signed.chain_id != *chain_id || self.header.chain_id != *chain_id {
            return Err(AnnouncementError::WrongChain {
                expected: *chain_id,
                got: signed.chain_id,
            });
        }
        if proposal.value != self.hash() {
            return Err(AnnouncementError::OtherBlock {
                proposed: proposal.value,
                header: self.hash(),
            });
        }
        if proposal.height.0 != self.header.height {
            return Err(AnnouncementError::HeightMismatch {
                proposal: proposal.height.0,
                header: self.header.height,
            });
        }
        if self.tx_hashes.len() > max_block_txs {
            return Err(AnnouncementError::TooManyTransactions {
                count: self.tx_hashes.len(),
                limit: max_block_txs,
            });
        }
        if !validators.contains(&proposal.proposer)
            || validators
                .proposer(proposal.height, proposal.round)
                .public_key
                != proposal.proposer
        {
            return Err(AnnouncementError::NotTheProposer {
                signer: proposal.proposer,
                height: proposal.height.0,
                round: proposal.round.0,
            });
        }
        let first_round = match proposal.pol_round {
            None => proposal.round,
            Some(pol_round) if pol_round < proposal.round => pol_round,
            Some(pol_round) => {
                return Err(AnnouncementError::BadPolRound {
                    round: proposal.round.0,
                    pol_round: pol_round.0,
                });
            }
        };
        let named = self.header.proposer;
        let first_proposed = if proposal.pol_round.is_none() {
            named == proposal.proposer
        } else {
            // Bounded by the engine's round window in the caller; a set
            // repeats its proposers every `total_power` rounds anyway.
            let rounds = u64::from(first_round.0).min(validators.total_power());
            (0..=rounds).any(|round| {
                validators
                    .proposer(proposal.height, Round(round as u32))
                    .public_key
                    == named
            })
        };
        if !first_proposed {
            return Err(AnnouncementError::WrongHeaderProposer {
                named,
                last_round: first_round.0,
            });
        }
        signed
            .verify(chain_id)
            .map_err(|_| AnnouncementError::BadSignature)
    }
}

/// A block this node holds for the current height: its body matches its
/// header's tx root, and every transaction's signature is known to be valid
/// (these exact signed bytes were verified, here or on mempool entry).
#[derive(Debug)]
pub struct Candidate {
    pub block: Block,
    pub hashes: Vec<TxHash>,
    /// The proposal it was announced with; `None` for a block fetched only
    /// because a quorum decided it.
    pub proposal: Option<SignedProposal>,
}

impl Driver {
    fn last_block_time(&self) -> u64 {
        self.shared.status.borrow().block_time_ms
    }

    /// As proposer: takes candidates from the mempool, executes them
    /// (skipping the invalid ones, which leave the mempool with their
    /// reason), prepares the app hash; returns the block's hash. The block
    /// is announced with the signed proposal (`announce`).
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
        // A failed read of our own state refuses no candidate (they stay in
        // the mempool): it is our disk failing, fatal as a store error.
        let (kept, execution, refused) = select_transactions(&context, &*store, &verified)
            .map_err(|source| StoreError::StateReadFailed { height, source })?;
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
        info!(
            height,
            txs = hashes.len(),
            refused = refused.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "proposing block"
        );
        self.shared.remember_block(&block);
        self.candidates.insert(
            hash,
            Candidate {
                block,
                hashes,
                proposal: None,
            },
        );
        self.verdicts.insert(hash, true);
        self.prepared = Some((hash, prepared));
        Ok(hash)
    }

    /// The verdict on a proposed block, `None` while the block is missing.
    /// Only a candidate (a body that matches its header) is ever judged.
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
        let verdict = match self.validate(height, value)? {
            Ok(()) => true,
            Err(reason) => {
                warn!(height, block = %value, %reason, "proposed block is invalid");
                false
            }
        };
        self.verdicts.insert(value, verdict);
        Ok(Some(verdict))
    }

    /// Checks header, limits, transactions and app hash; on success the
    /// store holds the block prepared for commit. The outer error is a
    /// failure of this node (its store), the inner one the block's fault.
    fn validate(&mut self, height: u64, value: Hash) -> Result<Result<(), String>, DriverError> {
        let candidate = self.candidates.get(&value).expect("checked by the caller");
        let header = &candidate.block.header;
        let status = self.shared.status.borrow().clone();
        if header.chain_id != self.shared.chain_id {
            return Ok(Err(format!("chain id {} is not ours", header.chain_id)));
        }
        if header.height != height || height != status.height + 1 {
            return Ok(Err(format!(
                "height {} does not follow our height {}",
                header.height, status.height
            )));
        }
        if header.parent_hash != status.block_hash {
            return Ok(Err(format!(
                "parent {} is not our last block {}",
                header.parent_hash, status.block_hash
            )));
        }
        let re_proposal = candidate
            .proposal
            .as_ref()
            .is_some_and(|proposal| proposal.proposal.pol_round.is_some());
        if let Err(reason) = check_time(header.time.0, status.block_time_ms, now_ms(), re_proposal)
        {
            return Ok(Err(reason));
        }
        if !self
            .schedule
            .set_at(header.height)
            .contains(&header.proposer)
        {
            return Ok(Err(format!(
                "proposer {} is not a validator",
                header.proposer
            )));
        }
        if candidate.block.txs.len() > self.max_block_txs {
            return Ok(Err(format!(
                "{} transactions exceed the limit of {}",
                candidate.block.txs.len(),
                self.max_block_txs
            )));
        }
        let size = borsh::object_length(&candidate.block).unwrap_or(usize::MAX);
        if size > self.max_block_bytes {
            return Ok(Err(format!(
                "{size} bytes exceed the limit of {}",
                self.max_block_bytes
            )));
        }
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
            // Our disk failing, not the block: never a nil vote.
            Err(ledger::BlockError::StateReadFailed { error, .. }) => {
                return Err(StoreError::StateReadFailed {
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

    /// Commits a decided (or synced) block with its certificate in one
    /// synced write, then cleans up for the next height. Everything comes
    /// from the block itself: its transactions, their hashes, its header;
    /// a prepared execution is used only if it is of this very block.
    /// `certified`: a quorum decided it, so a different result here is a
    /// determinism failure, not the block's fault.
    pub(super) fn commit(
        &mut self,
        block: Block,
        certificate: Vec<u8>,
        round: u32,
        certified: bool,
    ) -> Result<(), DriverError> {
        let hash = block.hash();
        let height = block.header.height;
        let started = Instant::now();
        let determinism = |detail: String| DriverError::Determinism { height, detail };
        let prepared = match self.prepared.take() {
            Some((prepared_hash, prepared)) if prepared_hash == hash => prepared,
            _ => {
                let hashes: Vec<TxHash> = block.txs.iter().map(SignedTransaction::hash).collect();
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
                .map_err(|error| determinism(format!("a transaction is refused here: {error}")))?;
                store.prepare(execution)
            }
        };
        let tx_hashes = std::sync::Arc::new(prepared.tx_hashes().to_vec());
        {
            let mut store = self.shared.store.write();
            match store.commit(&block, &certificate, &prepared) {
                Ok(()) => {}
                Err(StoreError::AppHashMismatch {
                    claimed, computed, ..
                }) if certified => {
                    return Err(determinism(format!(
                        "the certified app hash is {claimed}, this node computes {computed}"
                    )));
                }
                Err(error) => return Err(error.into()),
            }
        }
        let write_time = started.elapsed();
        self.last_commit = Instant::now();
        self.shared.status.send_modify(|status| {
            status.height = height;
            status.block_hash = hash;
            status.app_hash = block.header.app_hash;
            status.block_time_ms = block.header.time.0;
        });
        self.shared.metrics.set_height(height);
        self.refresh_validators(height)?;
        self.shared
            .metrics
            .block_committed(block.txs.len(), write_time);
        {
            // A failed read of our own state here is our disk failing:
            // fatal, as in `build_block`, and the mempool drops nothing on it.
            let store = self.shared.store.read();
            self.shared
                .mempool
                .after_commit(&block, &tx_hashes, &|key| signer_account_in(&store, key))
                .map_err(|source| StoreError::StateReadFailed { height, source })?;
        }
        let dropped = self.shared.mempool.take_dropped();
        self.shared.record_rejections(dropped);
        self.shared.publish_mempool_metrics();
        self.shared.record_commit_latency(&tx_hashes);
        let _ = self
            .shared
            .commits
            .send(crate::shared::CommitNotice { height, tx_hashes });
        self.candidates
            .retain(|_, candidate| candidate.block.header.height > height);
        self.wanted.retain(|_, wanted| wanted.height > height);
        self.announced_per_round.clear();
        self.next_height_started_by_peers = false;
        self.next_height_voters.clear();
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

/// The block-time rule (see the module doc): after the parent, at most
/// [`MAX_CLOCK_DRIFT_MS`] ahead of `now`, and (for a fresh proposal) at
/// most that much behind it.
pub fn check_time(time: u64, parent_time: u64, now: u64, re_proposal: bool) -> Result<(), String> {
    if time <= parent_time {
        return Err(format!(
            "time {time} is not after the parent's {parent_time}"
        ));
    }
    if time > now.saturating_add(MAX_CLOCK_DRIFT_MS) {
        return Err(format!(
            "time {time} is more than {MAX_CLOCK_DRIFT_MS} ms ahead of our clock ({now})"
        ));
    }
    if !re_proposal && time.saturating_add(MAX_CLOCK_DRIFT_MS) < now {
        return Err(format!(
            "time {time} is more than {MAX_CLOCK_DRIFT_MS} ms behind our clock ({now})"
        ));
    }
    Ok(())
}
