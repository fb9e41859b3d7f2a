//! One signer's pending transactions, by nonce, and which of them are
//! *ready*: the contiguous run starting at the signer's committed next
//! nonce, which a block could execute in order. Everything after the first
//! missing nonce is *gapped*: it cannot execute until the gap is filled.
//!
//! Only bookkeeping: no limits, no state reads; the pool ([`super`]) decides.

use std::collections::BTreeMap;

use ledger::TxHash;

#[derive(Debug)]
pub(super) struct SenderQueue {
    /// The signer's next nonce in the committed state, as last read.
    pub next_nonce: u64,
    /// Nonce to (hash, encoded size).
    pub txs: BTreeMap<u64, (TxHash, usize)>,
    pub bytes: usize,
    /// The first nonce after the ready run: `next_nonce..ready_end` are all
    /// pending; nothing from `ready_end` on is ready.
    pub ready_end: u64,
    /// This queue's keys in the pool's indexes, as last stored there.
    pub share_key: u128,
    pub gap_key: Option<u64>,
}

impl SenderQueue {
    pub fn new(next_nonce: u64) -> SenderQueue {
        SenderQueue {
            next_nonce,
            txs: BTreeMap::new(),
            bytes: 0,
            ready_end: next_nonce,
            share_key: 0,
            gap_key: None,
        }
    }

    pub fn is_ready(&self, nonce: u64) -> bool {
        (self.next_nonce..self.ready_end).contains(&nonce)
    }

    /// How far the farthest gapped transaction is from the next nonce;
    /// `None` when every pending transaction is ready.
    pub fn farthest_gap(&self) -> Option<u64> {
        let (&last, _) = self.txs.last_key_value()?;
        (last >= self.ready_end).then(|| last - self.next_nonce)
    }

    /// The highest pending nonce at or after `from`, if any: the first to
    /// evict (taking from the end never opens a gap in what stays).
    pub fn last_from(&self, from: u64) -> Option<u64> {
        self.txs.range(from..).next_back().map(|(nonce, _)| *nonce)
    }

    /// Extends the ready run over the pending nonces that now follow it
    /// without a gap; returns those that became ready.
    pub fn extend_ready(&mut self) -> Vec<u64> {
        let mut became = Vec::new();
        while self.txs.contains_key(&self.ready_end) {
            became.push(self.ready_end);
            self.ready_end += 1;
        }
        became
    }

    /// The ready nonces after `nonce` (which is leaving the run), which
    /// become gapped; the run now ends at `nonce`.
    pub fn cut_ready_at(&mut self, nonce: u64) -> Vec<u64> {
        if !self.is_ready(nonce) {
            return Vec::new();
        }
        let later: Vec<u64> = self
            .txs
            .range(nonce + 1..self.ready_end)
            .map(|(nonce, _)| *nonce)
            .collect();
        self.ready_end = nonce;
        later
    }
}
