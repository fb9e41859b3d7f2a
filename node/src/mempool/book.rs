//! The pool's bookkeeping: every pending transaction by hash and by
//! signer and nonce, and the indexes the policy of [`super`] reads (signers
//! by share, signers by farthest gap, gapped transactions by the height
//! their expiry clock started). Each change here keeps them consistent
//! (`check_invariants` in tests says how).
//!
//! No limits are decided here and no state is read: [`super::Mempool`]
//! checks, chooses victims and passes in what the state says.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crypto::PublicKey;
use ledger::{Participant, TxError, TxHash};

use super::queue::SenderQueue;
use super::{MempoolConfig, MempoolCounts, PendingTx};

pub(super) struct Entry {
    pub(super) pending: PendingTx,
    /// The height its expiry clock started at, while it is gapped.
    pub(super) clock: Option<u64>,
}

pub(super) struct Inner {
    pub(super) config: MempoolConfig,
    /// Looked up by hash only, never iterated.
    pub(super) by_hash: HashMap<TxHash, Entry>,
    pub(super) senders: BTreeMap<PublicKey, SenderQueue>,
    pub(super) bytes: usize,
    /// Every signer by its share of the pool (the largest last).
    pub(super) by_share: BTreeSet<(u128, PublicKey)>,
    /// Signers with gapped transactions, by their farthest gap.
    pub(super) by_gap: BTreeSet<(u64, PublicKey)>,
    /// Gapped transactions by the height their clock started: (height,
    /// signer, nonce). Holds exactly the entries whose `clock` is set.
    pub(super) waiting: BTreeSet<(u64, PublicKey, u64)>,
    /// The last committed height this pool heard of.
    pub(super) height: u64,
    /// Where the rolling recheck of [`Mempool::after_commit`] goes on.
    pub(super) recheck_after: Option<PublicKey>,
    /// Hashes dropped since the last [`Mempool::take_dropped`], with why.
    pub(super) dropped: VecDeque<(TxHash, TxError)>,
    pub(super) counts: MempoolCounts,
    /// `counts` as last handed out by [`Mempool::take_new_counts`].
    pub(super) reported: MempoolCounts,
}

impl Inner {
    /// Takes `signer` out of the share and gap indexes before a change.
    pub(super) fn unindex(&mut self, signer: &PublicKey) {
        if let Some(queue) = self.senders.get(signer) {
            self.by_share.remove(&(queue.share_key, *signer));
            if let Some(gap) = queue.gap_key {
                self.by_gap.remove(&(gap, *signer));
            }
        }
    }

    /// Puts `signer` back into the indexes after a change, or forgets it if
    /// nothing of it is pending.
    pub(super) fn reindex(&mut self, signer: &PublicKey) {
        let Some(queue) = self.senders.get_mut(signer) else {
            return;
        };
        if queue.txs.is_empty() {
            self.senders.remove(signer);
            return;
        }
        queue.share_key = self.config.share(queue.bytes, queue.txs.len());
        queue.gap_key = queue.farthest_gap();
        self.by_share.insert((queue.share_key, *signer));
        if let Some(gap) = queue.gap_key {
            self.by_gap.insert((gap, *signer));
        }
    }

    /// Stops the expiry clocks of transactions that became ready.
    pub(super) fn stop_clocks(&mut self, signer: &PublicKey, nonces: &[u64]) {
        for nonce in nonces {
            let Some((hash, _)) = self.senders.get(signer).and_then(|q| q.txs.get(nonce)) else {
                continue;
            };
            let hash = *hash;
            if let Some(entry) = self.by_hash.get_mut(&hash)
                && let Some(since) = entry.clock.take()
            {
                self.waiting.remove(&(since, *signer, *nonce));
            }
        }
    }

    /// Removes one transaction. If it was ready, the ready ones after it
    /// become gapped and their expiry clocks start now.
    pub(super) fn remove_tx(&mut self, signer: PublicKey, nonce: u64) -> Option<Entry> {
        self.unindex(&signer);
        let height = self.height;
        let queue = self.senders.get_mut(&signer)?;
        let Some((hash, size)) = queue.txs.remove(&nonce) else {
            self.reindex(&signer);
            return None;
        };
        queue.bytes -= size;
        let now_gapped = queue.cut_ready_at(nonce);
        let later: Vec<TxHash> = now_gapped
            .iter()
            .filter_map(|later| queue.txs.get(later).map(|(hash, _)| *hash))
            .collect();
        self.bytes -= size;
        let entry = self
            .by_hash
            .remove(&hash)
            .expect("every queued nonce has its entry");
        if let Some(since) = entry.clock {
            self.waiting.remove(&(since, signer, nonce));
        }
        for (later_nonce, later_hash) in now_gapped.into_iter().zip(later) {
            if let Some(later_entry) = self.by_hash.get_mut(&later_hash)
                && later_entry.clock.is_none()
            {
                later_entry.clock = Some(height);
                self.waiting.insert((height, signer, later_nonce));
            }
        }
        self.reindex(&signer);
        Some(entry)
    }

    pub(super) fn remove_hash(&mut self, hash: &TxHash) -> Option<Entry> {
        let (signer, nonce) = {
            let entry = self.by_hash.get(hash)?;
            (entry.pending.tx.tx.signer, entry.pending.tx.tx.nonce)
        };
        self.remove_tx(signer, nonce)
    }

    pub(super) fn evict(&mut self, signer: PublicKey, nonce: u64) {
        if self.remove_tx(signer, nonce).is_some() {
            self.counts.evicted += 1;
        }
    }

    /// Brings `signer`'s queue to the committed next nonce `next`: what is
    /// below it is used (dropped as a replay unless it is in `included`),
    /// and pending nonces that now follow it become ready.
    pub(super) fn advance(&mut self, signer: PublicKey, next: u64, included: &BTreeSet<TxHash>) {
        let Some(queue) = self.senders.get_mut(&signer) else {
            return;
        };
        if next <= queue.next_nonce {
            return;
        }
        queue.next_nonce = next;
        queue.ready_end = queue.ready_end.max(next);
        let used: Vec<(u64, TxHash)> = queue
            .txs
            .range(..next)
            .map(|(nonce, (hash, _))| (*nonce, *hash))
            .collect();
        for (nonce, hash) in used {
            self.remove_tx(signer, nonce);
            if !included.contains(&hash) {
                self.dropped.push_back((
                    hash,
                    TxError::Replay {
                        signer,
                        expected: next,
                        got: nonce,
                    },
                ));
            }
        }
        self.unindex(&signer);
        if let Some(queue) = self.senders.get_mut(&signer) {
            let became = queue.extend_ready();
            self.stop_clocks(&signer, &became);
        }
        self.reindex(&signer);
    }

    /// Applies the signer's committed record: all of it goes if the signer
    /// is gone or inactive; otherwise [`Inner::advance`].
    pub(super) fn recheck(
        &mut self,
        signer: PublicKey,
        account: Option<Participant>,
        included: &BTreeSet<TxHash>,
    ) {
        let gone = match &account {
            None => Some(TxError::UnknownParticipant { key: signer }),
            Some(account) if account.signing_key != signer => Some(TxError::KeyReplaced {
                key: signer,
                participant: account.key,
            }),
            Some(account) if !account.active => Some(TxError::ParticipantInactive { key: signer }),
            Some(_) => None,
        };
        match (gone, account) {
            (Some(error), _) => {
                let all: Vec<(u64, TxHash)> = self
                    .senders
                    .get(&signer)
                    .map(|queue| {
                        queue
                            .txs
                            .iter()
                            .map(|(nonce, (hash, _))| (*nonce, *hash))
                            .collect()
                    })
                    .unwrap_or_default();
                // From the end, so no clock starts for what goes anyway.
                for (nonce, hash) in all.into_iter().rev() {
                    self.remove_tx(signer, nonce);
                    if !included.contains(&hash) {
                        self.dropped.push_back((hash, error.clone()));
                    }
                }
            }
            (None, Some(account)) => self.advance(signer, account.next_nonce, included),
            (None, None) => {}
        }
    }

    /// The next `count` signers after the last rechecked one, wrapping.
    pub(super) fn rolling_recheck(&mut self, count: usize) -> Vec<PublicKey> {
        use std::ops::Bound::{Excluded, Unbounded};
        let start = match self.recheck_after {
            Some(after) => (Excluded(after), Unbounded),
            None => (Unbounded, Unbounded),
        };
        let mut picked: Vec<PublicKey> = self
            .senders
            .range(start)
            .map(|(key, _)| *key)
            .take(count)
            .collect();
        if picked.len() < count {
            let wrapped = self
                .senders
                .keys()
                .take(count - picked.len())
                .filter(|key| !picked.contains(key))
                .copied()
                .collect::<Vec<_>>();
            picked.extend(wrapped);
        }
        self.recheck_after = picked.last().copied();
        picked
    }

    /// Drops gapped transactions whose clock started `expiry_blocks` or
    /// more blocks ago, at most `limit` of them.
    pub(super) fn expire(&mut self, expiry_blocks: u64, limit: usize) {
        for _ in 0..limit {
            let Some(&(since, signer, nonce)) = self.waiting.first() else {
                return;
            };
            if since.saturating_add(expiry_blocks) > self.height {
                return;
            }
            let expected = self
                .senders
                .get(&signer)
                .map_or(0, |queue| queue.next_nonce);
            match self.remove_tx(signer, nonce) {
                Some(entry) => {
                    self.counts.expired += 1;
                    self.dropped.push_back((
                        entry.pending.hash,
                        TxError::NonceTooHigh {
                            signer,
                            expected,
                            got: nonce,
                        },
                    ));
                }
                // Cannot happen (the index holds exactly the clocked
                // entries); never loop on it.
                None => {
                    self.waiting.remove(&(since, signer, nonce));
                }
            }
        }
    }
}

#[cfg(test)]
impl super::Mempool {
    /// Panics unless every index agrees with the queues it summarises.
    pub(crate) fn check_invariants(&self) {
        let inner = self.inner.lock();
        let mut count = 0;
        let mut bytes = 0;
        let mut clocked = BTreeSet::new();
        let mut ready = 0;
        for (signer, queue) in &inner.senders {
            assert!(!queue.txs.is_empty(), "an empty queue is forgotten");
            assert_eq!(
                queue.bytes,
                queue.txs.values().map(|(_, size)| size).sum::<usize>()
            );
            assert!(queue.ready_end >= queue.next_nonce);
            for nonce in queue.next_nonce..queue.ready_end {
                assert!(queue.txs.contains_key(&nonce), "the ready run is whole");
            }
            assert!(!queue.txs.contains_key(&queue.ready_end));
            ready += usize::try_from(queue.ready_end - queue.next_nonce).expect("a small run");
            for (nonce, (hash, size)) in &queue.txs {
                assert!(*nonce >= queue.next_nonce, "nothing used stays");
                let entry = &inner.by_hash[hash];
                assert_eq!(entry.pending.size, *size);
                assert_eq!(entry.pending.tx.tx.nonce, *nonce);
                assert_eq!(
                    entry.clock.is_some(),
                    !queue.is_ready(*nonce),
                    "clock iff gapped"
                );
                if let Some(since) = entry.clock {
                    clocked.insert((since, *signer, *nonce));
                }
            }
            assert!(
                inner
                    .by_share
                    .contains(&(inner.config.share(queue.bytes, queue.txs.len()), *signer))
            );
            match queue.farthest_gap() {
                Some(gap) => assert!(inner.by_gap.contains(&(gap, *signer))),
                None => assert!(inner.by_gap.iter().all(|(_, key)| key != signer)),
            }
            count += queue.txs.len();
            bytes += queue.bytes;
        }
        assert_eq!(count, inner.by_hash.len());
        assert_eq!(bytes, inner.bytes);
        assert_eq!(inner.by_share.len(), inner.senders.len());
        assert_eq!(clocked, inner.waiting);
        assert_eq!(
            inner.by_hash.len() - inner.waiting.len(),
            ready,
            "what `ready_count` answers"
        );
    }
}
