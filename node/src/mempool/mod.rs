//! The mempool: signed transactions waiting for a block.
//!
//! Entry checks, in order of cost: size and decoding, chain id, duplicate
//! hash, then the signature (in batches across cores, see [`Mempool::admit`]),
//! then every stateless rule of the ledger ([`ledger::check_stateless`], for
//! every transaction, however far its nonce), then against the committed
//! state: a registered, active signer with the role its kind needs, and a
//! nonce not yet used. The transaction whose nonce is the signer's next one
//! is also dry-run. A transaction that passes is remembered as verified by
//! its hash, so the block check reuses the mempool's signature check
//! instead of verifying it again.
//!
//! # What a sender can occupy
//!
//! A signer's pending transactions are *ready* (the run of consecutive
//! nonces from its committed next nonce: a block can execute them) or
//! *gapped* (after a missing nonce: nothing can execute them until it comes).
//!
//! - Per signer: at most [`MempoolConfig::max_per_sender`] transactions and
//!   [`MempoolConfig::max_bytes_per_sender`] bytes (by default 512 and
//!   2 MiB, 1/64 of the pool), and no nonce more than
//!   [`MempoolConfig::max_nonce_gap`] ahead. A signer at its limit may still
//!   add its next ready transaction by giving up its own farthest gapped ones.
//! - A gapped transaction expires [`MempoolConfig::gap_expiry_blocks`]
//!   blocks after it started waiting (default 20).
//! - When the pool is full, a *ready* transaction still gets in by evicting,
//!   one at a time: first the farthest-gapped transaction of any other signer
//!   (largest distance from its signer's next nonce), then the last
//!   transaction of the signer with the largest share of the pool, as long as
//!   that share is larger than the newcomer's would be with the new
//!   transaction. A share is the larger of a signer's fraction of the pool's
//!   bytes and of its count. A gapped transaction never evicts anything.
//!
//! So an honest signer's next transaction is kept out only when every other
//! signer holds no more of the pool than it would (the pool is shared out
//! evenly); no flood by one signer, or a few, can do that. Evicting from the
//! end of a signer's nonces never opens a gap in what stays.
//!
//! After each commit, [`Mempool::after_commit`] drops what was included and
//! what can no longer succeed, for the signers the block touched (signed or
//! deactivated) and, in turn, a bounded number of the others, so every
//! signer is rechecked every few blocks; then it expires gapped transactions,
//! a bounded number per commit. A proposer takes ready transactions only,
//! signers round-robin, each signer's in nonce order.
//!
//! Deliberately not done here: the ledger's rules that need more state
//! than the signer's record (a transfer of a spent token is found out when
//! the proposer executes it), networking, and the locking policy around the
//! store (callers pass a participant lookup).

mod book;
mod queue;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use crypto::{ChainId, PublicKey};
use ledger::transaction::verify_signatures;
use ledger::{
    Block, ExecError, Participant, SignedTransaction, StateError, TxBody, TxError, TxHash,
};
use parking_lot::Mutex;

use book::{Entry, Inner};
use queue::SenderQueue;

/// Signers rechecked against the state per commit besides those the block
/// touched: with a few thousand pending signers, every one within a minute.
const RECHECKED_PER_COMMIT: usize = 64;
/// Gapped transactions expired per commit at most; the rest wait for the
/// next commit, so one commit never does unbounded work.
const EXPIRED_PER_COMMIT: usize = 8_192;

/// Limits of the mempool (`[mempool]` in `config.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// Pending transactions per signer.
    pub max_per_sender: usize,
    /// Encoded bytes of pending transactions per signer.
    pub max_bytes_per_sender: usize,
    /// How far ahead of the signer's next nonce a transaction may be.
    pub max_nonce_gap: u64,
    /// Blocks a transaction may wait behind a nonce gap before it is dropped.
    pub gap_expiry_blocks: u64,
}

impl Default for MempoolConfig {
    /// 1/64 of the pool's bytes per signer: a flood needs 64 signers to
    /// fill it, and even then eviction makes room for everyone else's next
    /// transaction. 512 transactions per signer: far more than a client
    /// needs in flight; with 400 busy signers a 5,000-transaction block
    /// takes ~12 from each (round-robin), so 512 is ~40 blocks of backlog.
    fn default() -> Self {
        MempoolConfig {
            max_txs: 200_000,
            max_bytes: 128 * 1024 * 1024,
            max_per_sender: 512,
            max_bytes_per_sender: 2 * 1024 * 1024,
            max_nonce_gap: 512,
            gap_expiry_blocks: 20,
        }
    }
}

impl MempoolConfig {
    /// A signer's share of the pool, scaled by `max_txs × max_bytes`: the
    /// larger of its share of bytes and its share of the count.
    fn share(&self, bytes: usize, count: usize) -> u128 {
        let by_bytes = bytes as u128 * self.max_txs as u128;
        let by_count = count as u128 * self.max_bytes as u128;
        by_bytes.max(by_count)
    }
}

/// Why a transaction was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error(
        "mempool full ({count} of {max_txs} transactions, {bytes} of {max_bytes} bytes) and no signer holds more of it than this one would; retry after the next block"
    )]
    Full {
        count: usize,
        max_txs: usize,
        bytes: usize,
        max_bytes: usize,
    },
    #[error(
        "signer {signer} already has {pending} pending transactions of {bytes} bytes; a signer may have at most {max_txs} transactions and {max_bytes} bytes pending; wait for them to commit"
    )]
    SenderQueueFull {
        signer: PublicKey,
        pending: usize,
        bytes: usize,
        max_txs: usize,
        max_bytes: usize,
    },
    #[error("transaction {hash} is already pending")]
    Duplicate { hash: TxHash },
    #[error(
        "signer {signer} already has a pending transaction with nonce {nonce}; use the next nonce"
    )]
    NonceTaken { signer: PublicKey, nonce: u64 },
    #[error(
        "nonce {nonce} is more than {max_gap} ahead of {signer}'s next nonce {next}; submit the missing nonces first"
    )]
    NonceTooFar {
        signer: PublicKey,
        nonce: u64,
        next: u64,
        max_gap: u64,
    },
    /// This node could not read its own state to check the transaction: no
    /// verdict on it; another node, or this one later, may take it.
    #[error("this node cannot check the transaction now ({reason}); retry later or elsewhere")]
    StateUnavailable { reason: String },
    /// A ledger rule that no later block can change: wrong chain, bad
    /// signature, a stateless rule, unknown or inactive signer, missing
    /// role, used nonce, or (next in line) any rule of its dry run.
    #[error("{0}")]
    Rule(TxError),
}

impl MempoolError {
    /// A short machine-readable code for the API.
    pub fn code(&self) -> String {
        match self {
            MempoolError::Full { .. } => "mempool_full".into(),
            MempoolError::SenderQueueFull { .. } => "sender_queue_full".into(),
            MempoolError::Duplicate { .. } => "duplicate".into(),
            MempoolError::NonceTaken { .. } => "nonce_taken".into(),
            MempoolError::NonceTooFar { .. } => "nonce_too_far".into(),
            MempoolError::StateUnavailable { .. } => "state_unavailable".into(),
            MempoolError::Rule(error) => rule_code(error),
        }
    }

    /// Whether resubmitting later could succeed (the pool was full, or the
    /// state could not be read): the API answers 503 rather than 4xx.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            MempoolError::Full { .. }
                | MempoolError::SenderQueueFull { .. }
                | MempoolError::StateUnavailable { .. }
        )
    }

    fn from_exec(error: ExecError) -> MempoolError {
        match error {
            ExecError::Refused(error) => MempoolError::Rule(error),
            ExecError::State(error) => MempoolError::StateUnavailable {
                reason: error.to_string(),
            },
        }
    }
}

/// The snake_case name of a ledger rule, as `TxError` serialises its tag.
pub fn rule_code(error: &TxError) -> String {
    serde_json::to_value(error)
        .ok()
        .and_then(|value| {
            value
                .get("rule")
                .and_then(|rule| rule.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "rule".to_string())
}

/// A transaction that passed the entry checks.
#[derive(Clone, Debug)]
pub struct PendingTx {
    pub tx: Arc<SignedTransaction>,
    pub hash: TxHash,
    pub size: usize,
}

/// Transactions that left the pool other than by a block or a refusal,
/// counted since the node started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MempoolCounts {
    /// Evicted to make room for another signer's ready transaction, or for
    /// the same signer's next one.
    pub evicted: u64,
    /// Waited behind a nonce gap for `gap_expiry_blocks` blocks.
    pub expired: u64,
}

/// A participant lookup in the committed state: the participant a signer's
/// key is for (its identity, or bound to it by a rotation); `Err`: the read
/// failed.
pub type Lookup<'a> = dyn Fn(&PublicKey) -> Result<Option<Participant>, StateError> + 'a;

/// Thread-safe; shared by the API, the gossip handler and the driver.
pub struct Mempool {
    chain_id: ChainId,
    config: MempoolConfig,
    inner: Mutex<Inner>,
}

/// The outcome per transaction of [`Mempool::admit`], in input order.
pub type AdmitResults = Vec<Result<TxHash, MempoolError>>;

/// Transactions through the state-free checks of [`Mempool::screen`]: the
/// outcome so far per input, and those whose signature is valid (with their
/// input position and hash), still to be checked against the state.
#[derive(Debug)]
pub struct Screened {
    results: AdmitResults,
    verified: Vec<(usize, SignedTransaction, TxHash)>,
}

impl Mempool {
    pub fn new(chain_id: ChainId, config: MempoolConfig) -> Mempool {
        Mempool {
            chain_id,
            config,
            inner: Mutex::new(Inner {
                config,
                by_hash: HashMap::new(),
                senders: BTreeMap::new(),
                bytes: 0,
                by_share: BTreeSet::new(),
                by_gap: BTreeSet::new(),
                waiting: BTreeSet::new(),
                height: 0,
                recheck_after: None,
                dropped: VecDeque::new(),
                counts: MempoolCounts::default(),
                reported: MempoolCounts::default(),
            }),
        }
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Number of pending transactions and their total encoded size.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.by_hash.len(), inner.bytes)
    }

    /// How many pending transactions a block could include now: those whose
    /// nonces follow their signer's next nonce without a gap. (Every other
    /// one is gapped, with its expiry clock running.)
    pub fn ready_count(&self) -> usize {
        let inner = self.inner.lock();
        inner.by_hash.len() - inner.waiting.len()
    }

    /// A signer's pending transactions and their bytes.
    pub fn sender_usage(&self, signer: &PublicKey) -> (usize, usize) {
        let inner = self.inner.lock();
        inner
            .senders
            .get(signer)
            .map_or((0, 0), |queue| (queue.txs.len(), queue.bytes))
    }

    /// Evictions and expiries since the node started.
    pub fn counts(&self) -> MempoolCounts {
        self.inner.lock().counts
    }

    /// Evictions and expiries since the last call: what to add to the
    /// `/metrics` counters (taken under the pool's lock, so concurrent
    /// callers never count one twice).
    pub fn take_new_counts(&self) -> MempoolCounts {
        let mut inner = self.inner.lock();
        let new = MempoolCounts {
            evicted: inner.counts.evicted - inner.reported.evicted,
            expired: inner.counts.expired - inner.reported.expired,
        };
        inner.reported = inner.counts;
        new
    }

    /// Tells the pool the committed height (at start-up; commits tell it
    /// through [`Mempool::after_commit`]), from which expiry counts.
    pub fn observe_height(&self, height: u64) {
        let mut inner = self.inner.lock();
        inner.height = inner.height.max(height);
    }

    pub fn contains(&self, hash: &TxHash) -> bool {
        self.inner.lock().by_hash.contains_key(hash)
    }

    pub fn get(&self, hash: &TxHash) -> Option<PendingTx> {
        self.inner
            .lock()
            .by_hash
            .get(hash)
            .map(|entry| entry.pending.clone())
    }

    /// Checks and inserts a batch of transactions without a dry run.
    /// Verifies their signatures in one batch across cores: CPU-bound, so
    /// async callers run it with `spawn_blocking`. `participant` looks a
    /// signer up in the committed state.
    pub fn admit(
        &self,
        txs: Vec<SignedTransaction>,
        participant: impl Fn(&PublicKey) -> Option<Participant>,
    ) -> AdmitResults {
        let screened = self.screen(txs);
        self.insert_screened(screened, &|key| Ok(participant(key)), &|_, _| Ok(()))
    }

    /// The first half of admission, which needs no state: chain id,
    /// duplicates, then the signatures of what is left in one batch.
    /// Callers that lock the store for the second half call this before
    /// taking the lock, so that verification never holds up a commit.
    pub fn screen(&self, txs: Vec<SignedTransaction>) -> Screened {
        let hashes: Vec<TxHash> = txs.iter().map(SignedTransaction::hash).collect();
        let mut results: AdmitResults = hashes.iter().map(|hash| Ok(*hash)).collect();
        // Cheap checks first, so a flood of duplicates costs no verification.
        let mut to_verify = Vec::new();
        {
            let inner = self.inner.lock();
            for (index, tx) in txs.iter().enumerate() {
                if tx.tx.chain_id != self.chain_id {
                    results[index] = Err(MempoolError::Rule(TxError::WrongChain {
                        expected: self.chain_id,
                        got: tx.tx.chain_id,
                    }));
                } else if inner.by_hash.contains_key(&hashes[index]) {
                    results[index] = Err(MempoolError::Duplicate {
                        hash: hashes[index],
                    });
                } else {
                    to_verify.push(index);
                }
            }
        }
        let mut txs: Vec<Option<SignedTransaction>> = txs.into_iter().map(Some).collect();
        let candidates: Vec<SignedTransaction> = to_verify
            .iter()
            .map(|&index| txs[index].take().expect("each index once"))
            .collect();
        let verdicts = verify_signatures(&candidates);
        let mut verified = Vec::with_capacity(candidates.len());
        for ((index, tx), verdict) in to_verify.into_iter().zip(candidates).zip(verdicts) {
            match verdict {
                Err(error) => results[index] = Err(MempoolError::Rule(error)),
                Ok(()) => verified.push((index, tx, hashes[index])),
            }
        }
        Screened { results, verified }
    }

    /// The second half of admission: the checks against the committed
    /// state, then insertion (evicting if the pool is full, see the module
    /// doc). `dry_run` executes a transaction that is next in line for its
    /// signer against the committed state, so that a transfer by someone who
    /// is not the holder is refused at once with the rule rather than found
    /// out by a proposer; later nonces may depend on pending transactions
    /// and get the stateless and signer checks only.
    pub fn insert_screened(
        &self,
        screened: Screened,
        participant: &Lookup<'_>,
        dry_run: &dyn Fn(&SignedTransaction, TxHash) -> Result<(), ExecError>,
    ) -> AdmitResults {
        let Screened {
            mut results,
            verified,
        } = screened;
        let mut inner = self.inner.lock();
        for (index, tx, hash) in verified {
            results[index] = self.insert(&mut inner, tx, hash, participant, dry_run);
        }
        results
    }

    fn insert(
        &self,
        inner: &mut Inner,
        tx: SignedTransaction,
        hash: TxHash,
        participant: &Lookup<'_>,
        dry_run: &dyn Fn(&SignedTransaction, TxHash) -> Result<(), ExecError>,
    ) -> Result<TxHash, MempoolError> {
        if inner.by_hash.contains_key(&hash) {
            return Err(MempoolError::Duplicate { hash });
        }
        // Stateless rules first, for every transaction: a gapped one that
        // could never execute must not take room while it waits.
        ledger::check_stateless(&tx).map_err(MempoolError::Rule)?;
        let signer = tx.tx.signer;
        let nonce = tx.tx.nonce;
        let account = participant(&signer)
            .map_err(|error| MempoolError::from_exec(error.into()))?
            .ok_or(MempoolError::Rule(TxError::UnknownParticipant {
                key: signer,
            }))?;
        // The lookup follows key rotations to the participant: a key it
        // replaced is refused for good (`ledger::signing_participant`).
        if account.signing_key != signer {
            return Err(MempoolError::Rule(TxError::KeyReplaced {
                key: signer,
                participant: account.key,
            }));
        }
        if !account.active {
            return Err(MempoolError::Rule(TxError::ParticipantInactive {
                key: signer,
            }));
        }
        // Roles never change once registered: this holds for any nonce.
        ledger::check_signer_role(&account, &tx.tx.body).map_err(MempoolError::Rule)?;
        if nonce < account.next_nonce {
            return Err(MempoolError::Rule(TxError::Replay {
                signer,
                expected: account.next_nonce,
                got: nonce,
            }));
        }
        if nonce - account.next_nonce > self.config.max_nonce_gap {
            return Err(MempoolError::NonceTooFar {
                signer,
                nonce,
                next: account.next_nonce,
                max_gap: self.config.max_nonce_gap,
            });
        }
        if nonce == account.next_nonce {
            dry_run(&tx, hash).map_err(MempoolError::from_exec)?;
        }
        // What the pool knows of the signer may be older than this read.
        inner.advance(signer, account.next_nonce, &BTreeSet::new());
        if let Some(queue) = inner.senders.get(&signer)
            && queue.txs.contains_key(&nonce)
        {
            return Err(MempoolError::NonceTaken { signer, nonce });
        }
        let size = borsh::object_length(&tx).unwrap_or(usize::MAX);
        let ready = inner
            .senders
            .get(&signer)
            .map_or(nonce == account.next_nonce, |queue| {
                nonce == queue.ready_end
            });
        self.make_room_in_sender(inner, signer, size, ready)?;
        self.make_room_in_pool(inner, signer, size, ready)?;

        inner.unindex(&signer);
        let height = inner.height;
        let queue = inner
            .senders
            .entry(signer)
            .or_insert_with(|| SenderQueue::new(account.next_nonce));
        queue.txs.insert(nonce, (hash, size));
        queue.bytes += size;
        let became_ready = if ready {
            queue.extend_ready()
        } else {
            Vec::new()
        };
        inner.bytes += size;
        let clock = (!ready).then_some(height);
        if let Some(since) = clock {
            inner.waiting.insert((since, signer, nonce));
        }
        inner.by_hash.insert(
            hash,
            Entry {
                pending: PendingTx {
                    tx: Arc::new(tx),
                    hash,
                    size,
                },
                clock,
            },
        );
        // The new transaction itself is in `became_ready` when it is ready.
        inner.stop_clocks(&signer, &became_ready);
        inner.reindex(&signer);
        Ok(hash)
    }

    /// The signer's own limits. A ready transaction may displace the
    /// signer's own farthest gapped ones; a gapped one displaces nothing.
    fn make_room_in_sender(
        &self,
        inner: &mut Inner,
        signer: PublicKey,
        size: usize,
        ready: bool,
    ) -> Result<(), MempoolError> {
        loop {
            let (count, bytes, ready_end) = inner.senders.get(&signer).map_or((0, 0, 0), |queue| {
                (queue.txs.len(), queue.bytes, queue.ready_end)
            });
            if count < self.config.max_per_sender
                && bytes.saturating_add(size) <= self.config.max_bytes_per_sender
            {
                return Ok(());
            }
            let own_gapped = inner
                .senders
                .get(&signer)
                .and_then(|queue| queue.last_from(ready_end));
            match own_gapped {
                Some(victim) if ready => inner.evict(signer, victim),
                _ => {
                    return Err(MempoolError::SenderQueueFull {
                        signer,
                        pending: count,
                        bytes,
                        max_txs: self.config.max_per_sender,
                        max_bytes: self.config.max_bytes_per_sender,
                    });
                }
            }
        }
    }

    /// The pool's limits, with the eviction policy of the module doc.
    fn make_room_in_pool(
        &self,
        inner: &mut Inner,
        signer: PublicKey,
        size: usize,
        ready: bool,
    ) -> Result<(), MempoolError> {
        let (count, bytes) = inner
            .senders
            .get(&signer)
            .map_or((0, 0), |queue| (queue.txs.len(), queue.bytes));
        let share_after = self.config.share(bytes + size, count + 1);
        loop {
            if inner.by_hash.len() < self.config.max_txs
                && inner.bytes.saturating_add(size) <= self.config.max_bytes
            {
                return Ok(());
            }
            let full = MempoolError::Full {
                count: inner.by_hash.len(),
                max_txs: self.config.max_txs,
                bytes: inner.bytes,
                max_bytes: self.config.max_bytes,
            };
            if !ready {
                return Err(full);
            }
            let farthest_gapped = inner
                .by_gap
                .iter()
                .rev()
                .find(|(_, key)| *key != signer)
                .map(|(_, key)| *key);
            let victim = match farthest_gapped {
                Some(key) => Some(key),
                None => inner
                    .by_share
                    .iter()
                    .rev()
                    .find(|(_, key)| *key != signer)
                    .filter(|(share, _)| *share > share_after)
                    .map(|(_, key)| *key),
            };
            let Some(victim) = victim else {
                return Err(full);
            };
            let nonce = inner.senders[&victim]
                .last_from(0)
                .expect("an indexed signer has a pending transaction");
            inner.evict(victim, nonce);
        }
    }

    /// Candidates for a block, at most `max_txs` and `max_bytes`: ready
    /// transactions only, senders in turn (round-robin, so every sender gets
    /// a share), each sender's transactions in nonce order. The proposer
    /// executes them and skips the invalid ones.
    pub fn candidates(&self, max_txs: usize, max_bytes: usize) -> Vec<PendingTx> {
        let inner = self.inner.lock();
        let mut queues: Vec<std::collections::btree_map::Range<'_, u64, (TxHash, usize)>> = inner
            .senders
            .values()
            .map(|queue| queue.txs.range(..queue.ready_end))
            .collect();
        let mut picked = Vec::new();
        let mut bytes = 0usize;
        'outer: while !queues.is_empty() && picked.len() < max_txs {
            let mut index = 0;
            while index < queues.len() {
                match queues[index].next() {
                    Some((_, (hash, _))) => {
                        let pending = &inner.by_hash[hash].pending;
                        if bytes + pending.size > max_bytes {
                            break 'outer;
                        }
                        bytes += pending.size;
                        picked.push(pending.clone());
                        if picked.len() >= max_txs {
                            break 'outer;
                        }
                        index += 1;
                    }
                    None => {
                        drop(queues.swap_remove(index));
                    }
                }
            }
        }
        picked
    }

    /// Verified copies of `hashes` that the pool holds; `None` for the others.
    pub fn lookup(&self, hashes: &[TxHash]) -> Vec<Option<PendingTx>> {
        let inner = self.inner.lock();
        hashes
            .iter()
            .map(|hash| inner.by_hash.get(hash).map(|entry| entry.pending.clone()))
            .collect()
    }

    /// Removes transactions the proposer found invalid for good, remembering
    /// why, and returns them. A `NonceTooHigh` stays: it waits for an earlier
    /// nonce (now gapped, its expiry clock runs).
    pub fn reject(&self, refused: &[(TxHash, TxError)]) -> Vec<(TxHash, TxError)> {
        let mut inner = self.inner.lock();
        let mut removed = Vec::new();
        for (hash, error) in refused {
            if matches!(error, TxError::NonceTooHigh { .. }) {
                continue;
            }
            if inner.remove_hash(hash).is_some() {
                removed.push((*hash, error.clone()));
            }
        }
        removed
    }

    /// After committing `block` (whose transaction hashes are `included`):
    /// drops the included transactions; rechecks against the state every
    /// signer the block touched (it signed, or was deactivated) and the next
    /// [`RECHECKED_PER_COMMIT`] others in turn, dropping what can no longer
    /// succeed and making ready what a nonce from elsewhere unblocked; then
    /// expires gapped transactions that waited `gap_expiry_blocks`.
    ///
    /// A failed state read is returned: it is this node's disk failing, and
    /// nothing is dropped on it.
    pub fn after_commit(
        &self,
        block: &Block,
        included: &[TxHash],
        participant: &Lookup<'_>,
    ) -> Result<(), StateError> {
        let mut inner = self.inner.lock();
        inner.height = inner.height.max(block.header.height);
        let included: BTreeSet<TxHash> = included.iter().copied().collect();
        let mut touched: BTreeSet<PublicKey> = BTreeSet::new();
        for tx in &block.txs {
            touched.insert(tx.tx.signer);
            if let TxBody::DeactivateParticipant { key } = &tx.tx.body {
                touched.insert(*key);
            }
        }
        touched.retain(|key| inner.senders.contains_key(key));
        touched.extend(inner.rolling_recheck(RECHECKED_PER_COMMIT));
        for signer in touched {
            let account = participant(&signer)?;
            inner.recheck(signer, account, &included);
        }
        // Anything included that the recheck did not reach (it cannot be
        // pending once its nonce is used, but a hash is a hash).
        for hash in &included {
            inner.remove_hash(hash);
        }
        inner.expire(self.config.gap_expiry_blocks, EXPIRED_PER_COMMIT);
        Ok(())
    }

    /// Transactions dropped as invalid or expired since the last call, with
    /// the rule.
    pub fn take_dropped(&self) -> Vec<(TxHash, TxError)> {
        self.inner.lock().dropped.drain(..).collect()
    }
}
