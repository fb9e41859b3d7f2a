//! Counters of what the engine refused or noticed, for metrics and tests.
//!
//! Dropping a message is never an error for the caller: Byzantine peers,
//! other chains and stale gossip are normal. Each drop is counted by reason.

use std::collections::BTreeMap;

/// Why a received message was not used.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum DropReason {
    /// No `StartHeight` yet.
    NotStarted,
    /// Signed for another chain (per its envelope).
    WrongChain,
    /// The signature does not verify on our chain.
    BadSignature,
    /// The signer is not a validator at the message's height.
    NonValidator,
    /// For a height already decided or abandoned.
    PastHeight,
    /// More than `future_heights` heights ahead.
    FarFutureHeight,
    /// More than `round_lookahead` rounds ahead.
    FarFutureRound,
    /// The future-height buffer (total or per signer) is full.
    BufferFull,
    /// A proposal from a validator that is not the round's proposer.
    NotProposer,
    /// A proposal whose proof-of-lock round is not below its round.
    InvalidPolRound,
    /// Already have this exact message.
    Duplicate,
    /// A conflicting message beyond what is kept per validator and step
    /// (two proposals per round, `MAX_VOTES_PER_STEP` votes).
    Equivocation,
    /// For the current height after it was decided.
    AlreadyDecided,
    /// `StartHeight` for a height not above the current one.
    StaleStartHeight,
}

/// Counters, inspectable with [`Engine::stats`](crate::Engine::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub dropped: BTreeMap<DropReason, u64>,
    /// Equivocations reported (`Output::Evidence`).
    pub evidence: u64,
    /// Signatures the safety record refused (expected only after a restart).
    pub refused_signatures: u64,
    pub decisions: u64,
}

impl EngineStats {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    pub(crate) fn count(&mut self, reason: DropReason) {
        *self.dropped.entry(reason).or_default() += 1;
    }
}
