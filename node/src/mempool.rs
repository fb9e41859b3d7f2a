//! The mempool: signed transactions waiting for a block.
//!
//! Entry checks, in order of cost: size and decoding, chain id, duplicate
//! hash, then the signature (in batches across cores, see [`Mempool::admit`]),
//! then against the committed state: a registered, active signer and a nonce
//! not yet used. A transaction that passes is remembered as verified by its
//! hash, so the block check reuses the mempool's signature check instead of
//! verifying it again.
//!
//! Bounded in count and bytes (a clear [`MempoolError::Full`]) and per sender,
//! so one busy sender cannot crowd out the others; a proposer takes senders
//! round-robin, each sender's transactions in nonce order. After each commit
//! [`Mempool::after_commit`] drops what was included and what can no longer
//! succeed.
//!
//! Deliberately not done here: the ledger's rules (a transfer of a spent
//! token is found out when the proposer executes it), networking, and the
//! locking policy around the store (callers pass a participant lookup).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crypto::{ChainId, PublicKey};
use ledger::transaction::verify_signatures;
use ledger::{Participant, SignedTransaction, TxError, TxHash};
use parking_lot::Mutex;

/// Limits of the mempool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// Pending transactions per signer.
    pub max_per_sender: usize,
    /// How far ahead of the signer's next nonce a transaction may be.
    pub max_nonce_gap: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_txs: 200_000,
            max_bytes: 128 * 1024 * 1024,
            max_per_sender: 10_000,
            max_nonce_gap: 10_000,
        }
    }
}

/// Why a transaction was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error(
        "mempool full ({count} of {max_txs} transactions, {bytes} of {max_bytes} bytes); retry after the next block"
    )]
    Full {
        count: usize,
        max_txs: usize,
        bytes: usize,
        max_bytes: usize,
    },
    #[error(
        "signer {signer} already has {pending} pending transactions (the limit); wait for them to commit"
    )]
    SenderQueueFull { signer: PublicKey, pending: usize },
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
    /// A ledger rule that no later block can change: wrong chain, bad
    /// signature, unknown or inactive signer, used nonce.
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
            MempoolError::Rule(error) => rule_code(error),
        }
    }

    /// Whether resubmitting later could succeed (the pool was full): the API
    /// answers 503 rather than 4xx.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            MempoolError::Full { .. } | MempoolError::SenderQueueFull { .. }
        )
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

#[derive(Default)]
struct Inner {
    by_hash: HashMap<TxHash, PendingTx>,
    /// Per signer, its pending transactions by nonce.
    by_sender: BTreeMap<PublicKey, BTreeMap<u64, TxHash>>,
    bytes: usize,
    /// Hashes dropped since the last [`Mempool::take_dropped`], with why.
    dropped: VecDeque<(TxHash, TxError)>,
}

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
            inner: Mutex::new(Inner::default()),
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

    pub fn contains(&self, hash: &TxHash) -> bool {
        self.inner.lock().by_hash.contains_key(hash)
    }

    pub fn get(&self, hash: &TxHash) -> Option<PendingTx> {
        self.inner.lock().by_hash.get(hash).cloned()
    }

    /// Checks and inserts a batch of transactions. Verifies their signatures
    /// in one batch across cores: CPU-bound, so async callers run it with
    /// `spawn_blocking`. `participant` looks a signer up in the committed state.
    pub fn admit(
        &self,
        txs: Vec<SignedTransaction>,
        participant: impl Fn(&PublicKey) -> Option<Participant>,
    ) -> AdmitResults {
        self.admit_checked(txs, participant, |_, _| Ok(()))
    }

    /// As [`Mempool::admit`], and a transaction that is next in line for its
    /// signer (its nonce is the next one and nothing of the signer's is
    /// pending) must also pass `dry_run`: an execution against the
    /// committed state, so that a transfer by someone who is not the holder
    /// is refused at once with the rule rather than found out by a proposer.
    /// Later nonces may depend on pending transactions and are not dry-run.
    pub fn admit_checked(
        &self,
        txs: Vec<SignedTransaction>,
        participant: impl Fn(&PublicKey) -> Option<Participant>,
        dry_run: impl Fn(&SignedTransaction, TxHash) -> Result<(), TxError>,
    ) -> AdmitResults {
        let screened = self.screen(txs);
        self.insert_screened(screened, participant, dry_run)
    }

    /// The first half of [`Mempool::admit_checked`], which needs no state:
    /// chain id, duplicates, then the signatures of what is left in one batch.
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

    /// The second half of [`Mempool::admit_checked`]: the checks against the
    /// committed state, then insertion.
    pub fn insert_screened(
        &self,
        screened: Screened,
        participant: impl Fn(&PublicKey) -> Option<Participant>,
        dry_run: impl Fn(&SignedTransaction, TxHash) -> Result<(), TxError>,
    ) -> AdmitResults {
        let Screened {
            mut results,
            verified,
        } = screened;
        let mut inner = self.inner.lock();
        for (index, tx, hash) in verified {
            results[index] = self.insert(&mut inner, tx, hash, &participant, &dry_run);
        }
        results
    }

    fn insert(
        &self,
        inner: &mut Inner,
        tx: SignedTransaction,
        hash: TxHash,
        participant: &impl Fn(&PublicKey) -> Option<Participant>,
        dry_run: &impl Fn(&SignedTransaction, TxHash) -> Result<(), TxError>,
    ) -> Result<TxHash, MempoolError> {
        if inner.by_hash.contains_key(&hash) {
            return Err(MempoolError::Duplicate { hash });
        }
        let signer = tx.tx.signer;
        let nonce = tx.tx.nonce;
        let Some(account) = participant(&signer) else {
            return Err(MempoolError::Rule(TxError::UnknownParticipant {
                key: signer,
            }));
        };
        if !account.active {
            return Err(MempoolError::Rule(TxError::ParticipantInactive {
                key: signer,
            }));
        }
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
        let next_in_line = nonce == account.next_nonce
            && inner.by_sender.get(&signer).is_none_or(BTreeMap::is_empty);
        if next_in_line {
            dry_run(&tx, hash).map_err(MempoolError::Rule)?;
        }
        let size = borsh::object_length(&tx).unwrap_or(usize::MAX);
        if inner.by_hash.len() >= self.config.max_txs || inner.bytes + size > self.config.max_bytes
        {
            return Err(MempoolError::Full {
                count: inner.by_hash.len(),
                max_txs: self.config.max_txs,
                bytes: inner.bytes,
                max_bytes: self.config.max_bytes,
            });
        }
        let queue = inner.by_sender.entry(signer).or_default();
        if queue.contains_key(&nonce) {
            return Err(MempoolError::NonceTaken { signer, nonce });
        }
        if queue.len() >= self.config.max_per_sender {
            return Err(MempoolError::SenderQueueFull {
                signer,
                pending: queue.len(),
            });
        }
        queue.insert(nonce, hash);
        inner.bytes += size;
        inner.by_hash.insert(
            hash,
            PendingTx {
                tx: Arc::new(tx),
                hash,
                size,
            },
        );
        Ok(hash)
    }

    /// Candidates for a block, at most `max_txs` and `max_bytes`: senders in
    /// turn (round-robin, so every sender gets a share), each sender's
    /// transactions in nonce order. The proposer executes them and skips the
    /// invalid ones.
    pub fn candidates(&self, max_txs: usize, max_bytes: usize) -> Vec<PendingTx> {
        let inner = self.inner.lock();
        let mut queues: Vec<std::collections::btree_map::Values<'_, u64, TxHash>> =
            inner.by_sender.values().map(BTreeMap::values).collect();
        let mut picked = Vec::new();
        let mut bytes = 0usize;
        'outer: while !queues.is_empty() && picked.len() < max_txs {
            let mut index = 0;
            while index < queues.len() {
                match queues[index].next() {
                    Some(hash) => {
                        let pending = &inner.by_hash[hash];
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
            .map(|hash| inner.by_hash.get(hash).cloned())
            .collect()
    }

    /// Removes transactions the proposer found invalid for good (not those
    /// merely waiting for an earlier nonce), remembering why.
    /// Returns those it removed.
    pub fn reject(&self, refused: &[(TxHash, TxError)]) -> Vec<(TxHash, TxError)> {
        let mut inner = self.inner.lock();
        let mut removed = Vec::new();
        for (hash, error) in refused {
            if matches!(error, TxError::NonceTooHigh { .. }) {
                continue;
            }
            if remove(&mut inner, hash) {
                removed.push((*hash, error.clone()));
            }
        }
        removed
    }

    /// After a commit: drops the included transactions, then every pending
    /// transaction whose signer is gone or inactive or whose nonce is now used.
    pub fn after_commit(
        &self,
        included: &[TxHash],
        participant: impl Fn(&PublicKey) -> Option<Participant>,
    ) {
        let mut inner = self.inner.lock();
        let mut touched: Vec<PublicKey> = Vec::new();
        for hash in included {
            if let Some(pending) = inner.by_hash.get(hash) {
                touched.push(pending.tx.tx.signer);
            }
            remove(&mut inner, hash);
        }
        touched.sort();
        touched.dedup();
        // Only signers whose state this block could change need a recheck:
        // those with included transactions. Deactivations are rare; a
        // deactivated signer's leftovers are refused by the proposer.
        for signer in touched {
            let stale: Vec<(TxHash, TxError)> = match participant(&signer) {
                None => inner
                    .by_sender
                    .get(&signer)
                    .map(|queue| {
                        queue
                            .values()
                            .map(|hash| (*hash, TxError::UnknownParticipant { key: signer }))
                            .collect()
                    })
                    .unwrap_or_default(),
                Some(account) => inner
                    .by_sender
                    .get(&signer)
                    .map(|queue| {
                        queue
                            .iter()
                            .filter(|(nonce, _)| !account.active || **nonce < account.next_nonce)
                            .map(|(nonce, hash)| {
                                let error = if account.active {
                                    TxError::Replay {
                                        signer,
                                        expected: account.next_nonce,
                                        got: *nonce,
                                    }
                                } else {
                                    TxError::ParticipantInactive { key: signer }
                                };
                                (*hash, error)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            for (hash, error) in stale {
                if remove(&mut inner, &hash) {
                    inner.dropped.push_back((hash, error));
                }
            }
        }
    }

    /// Transactions dropped as invalid since the last call, with the rule.
    pub fn take_dropped(&self) -> Vec<(TxHash, TxError)> {
        self.inner.lock().dropped.drain(..).collect()
    }
}

fn remove(inner: &mut Inner, hash: &TxHash) -> bool {
    let Some(pending) = inner.by_hash.remove(hash) else {
        return false;
    };
    inner.bytes -= pending.size;
    let signer = pending.tx.tx.signer;
    if let Some(queue) = inner.by_sender.get_mut(&signer) {
        queue.remove(&pending.tx.tx.nonce);
        if queue.is_empty() {
            inner.by_sender.remove(&signer);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto::{Hash, Keypair};
    use ledger::{Role, Transaction, TxBody};

    fn chain() -> ChainId {
        ChainId(Hash::digest(b"mempool test chain"))
    }

    fn tx(key: &Keypair, nonce: u64) -> SignedTransaction {
        Transaction {
            chain_id: chain(),
            signer: key.public(),
            nonce,
            body: TxBody::Unfreeze {
                token: ledger::TokenId(Hash::digest(&nonce.to_le_bytes())),
            },
        }
        .sign(key)
    }

    fn registered(key: &Keypair, next_nonce: u64) -> impl Fn(&PublicKey) -> Option<Participant> {
        let public = key.public();
        move |asked: &PublicKey| {
            (*asked == public).then(|| Participant {
                key: public,
                name: "auditor".into(),
                roles: vec![Role::Auditor],
                active: true,
                next_nonce,
            })
        }
    }

    #[test]
    fn admits_once_and_refuses_a_duplicate() {
        let key = Keypair::from_seed([1; 32]);
        let pool = Mempool::new(chain(), MempoolConfig::default());
        let first = pool.admit(vec![tx(&key, 0)], registered(&key, 0));
        assert!(first[0].is_ok());
        let again = pool.admit(vec![tx(&key, 0)], registered(&key, 0));
        assert!(matches!(again[0], Err(MempoolError::Duplicate { .. })));
        assert_eq!(pool.size().0, 1);
    }

    #[test]
    fn refuses_wrong_chain_bad_signature_unknown_signer_and_used_nonce() {
        let key = Keypair::from_seed([2; 32]);
        let stranger = Keypair::from_seed([3; 32]);
        let pool = Mempool::new(chain(), MempoolConfig::default());
        let mut other_chain = tx(&key, 0);
        other_chain.tx.chain_id = ChainId(Hash::digest(b"other"));
        let mut forged = tx(&key, 1);
        forged.tx.nonce = 2;
        let results = pool.admit(
            vec![other_chain, forged, tx(&stranger, 0), tx(&key, 4)],
            registered(&key, 5),
        );
        assert!(matches!(
            results[0],
            Err(MempoolError::Rule(TxError::WrongChain { .. }))
        ));
        assert!(matches!(
            results[1],
            Err(MempoolError::Rule(TxError::BadSignature { .. }))
        ));
        assert!(matches!(
            results[2],
            Err(MempoolError::Rule(TxError::UnknownParticipant { .. }))
        ));
        assert!(matches!(
            results[3],
            Err(MempoolError::Rule(TxError::Replay {
                expected: 5,
                got: 4,
                ..
            }))
        ));
        assert_eq!(pool.size().0, 0);
    }

    #[test]
    fn full_pool_answers_full() {
        let key = Keypair::from_seed([4; 32]);
        let config = MempoolConfig {
            max_txs: 2,
            ..MempoolConfig::default()
        };
        let pool = Mempool::new(chain(), config);
        let results = pool.admit(
            vec![tx(&key, 0), tx(&key, 1), tx(&key, 2)],
            registered(&key, 0),
        );
        assert!(results[0].is_ok() && results[1].is_ok());
        assert!(matches!(
            results[2],
            Err(MempoolError::Full { max_txs: 2, .. })
        ));
        assert!(results[2].as_ref().unwrap_err().is_temporary());
    }

    #[test]
    fn candidates_take_senders_in_turn_and_nonces_in_order() {
        let a = Keypair::from_seed([5; 32]);
        let b = Keypair::from_seed([6; 32]);
        let pool = Mempool::new(chain(), MempoolConfig::default());
        let lookup = |key: &PublicKey| {
            Some(Participant {
                key: *key,
                name: "x".into(),
                roles: vec![Role::Auditor],
                active: true,
                next_nonce: 0,
            })
        };
        pool.admit(vec![tx(&a, 2), tx(&a, 0), tx(&a, 1)], lookup);
        pool.admit(vec![tx(&b, 0)], lookup);
        let picked = pool.candidates(3, usize::MAX);
        let order: Vec<(PublicKey, u64)> = picked
            .iter()
            .map(|p| (p.tx.tx.signer, p.tx.tx.nonce))
            .collect();
        assert_eq!(order.len(), 3);
        // Both senders appear before `a`'s second transaction.
        assert!(order.contains(&(b.public(), 0)));
        let a_nonces: Vec<u64> = order
            .iter()
            .filter(|(signer, _)| *signer == a.public())
            .map(|(_, nonce)| *nonce)
            .collect();
        assert_eq!(a_nonces, vec![0, 1]);
    }

    #[test]
    fn after_commit_drops_included_and_stale_nonces() {
        let key = Keypair::from_seed([7; 32]);
        let pool = Mempool::new(chain(), MempoolConfig::default());
        let results = pool.admit(
            vec![tx(&key, 0), tx(&key, 1), tx(&key, 2)],
            registered(&key, 0),
        );
        let first = *results[0].as_ref().unwrap();
        // Nonces 0 and 1 are used now (1 by a transaction this pool never saw).
        pool.after_commit(&[first], registered(&key, 2));
        assert_eq!(pool.size().0, 1);
        let dropped = pool.take_dropped();
        assert_eq!(dropped.len(), 1);
        assert!(matches!(dropped[0].1, TxError::Replay { got: 1, .. }));
    }
}
