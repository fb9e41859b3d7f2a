//! Engine configuration: timeouts (in milliseconds, growing linearly with the
//! round, as the paper requires for liveness after GST) and the bounds that
//! keep a Byzantine peer from making the engine hold unbounded state.
//!
//! The engine never measures time; it asks the node to schedule a timer of
//! `duration_ms` and is told when it fired.

use serde::{Deserialize, Serialize};

use crate::types::Round;

/// The timers the engine asks for.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    /// Waiting for the round's proposal (line 21).
    Propose,
    /// Waiting for prevotes to agree after a prevote quorum (line 35).
    Prevote,
    /// Waiting for precommits to agree after a precommit quorum (line 48).
    Precommit,
    /// Re-send this round's own messages. Not in the paper, which assumes a
    /// gossip layer that eventually delivers every message; a real network
    /// loses messages across partitions and restarts.
    Rebroadcast,
}

/// Timeout durations: `base + round * delta` for each kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TimeoutConfig {
    pub propose_ms: u64,
    pub propose_delta_ms: u64,
    pub prevote_ms: u64,
    pub prevote_delta_ms: u64,
    pub precommit_ms: u64,
    pub precommit_delta_ms: u64,
    /// Period of re-sending own messages while a round makes no progress.
    pub rebroadcast_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            propose_ms: 3_000,
            propose_delta_ms: 500,
            prevote_ms: 1_000,
            prevote_delta_ms: 500,
            precommit_ms: 1_000,
            precommit_delta_ms: 500,
            rebroadcast_ms: 5_000,
        }
    }
}

impl TimeoutConfig {
    /// The duration of a `kind` timeout in `round`. Grows with the round so
    /// that, once the network is timely, some round's timeouts exceed the
    /// actual delays and every correct validator hears everyone in time.
    pub fn duration_ms(&self, kind: TimeoutKind, round: Round) -> u64 {
        let round = u64::from(round.0);
        let (base, delta) = match kind {
            TimeoutKind::Propose => (self.propose_ms, self.propose_delta_ms),
            TimeoutKind::Prevote => (self.prevote_ms, self.prevote_delta_ms),
            TimeoutKind::Precommit => (self.precommit_ms, self.precommit_delta_ms),
            TimeoutKind::Rebroadcast => (self.rebroadcast_ms, 0),
        };
        base.saturating_add(delta.saturating_mul(round))
    }
}

/// Everything the engine can be tuned by.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct EngineConfig {
    pub timeouts: TimeoutConfig,
    /// Messages for up to this many heights above the current one are
    /// buffered; higher ones are dropped (`DropReason::FarFutureHeight`).
    pub future_heights: u64,
    /// Messages for rounds more than this far above the current round are
    /// dropped (`DropReason::FarFutureRound`): it bounds the votes one
    /// Byzantine validator can make us store.
    pub round_lookahead: u32,
    /// Bound on buffered future-height messages, in total and per signer.
    pub max_buffered_messages: usize,
    pub max_buffered_per_signer: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            timeouts: TimeoutConfig::default(),
            future_heights: 2,
            round_lookahead: 100,
            max_buffered_messages: 10_000,
            max_buffered_per_signer: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_linearly_with_the_round() {
        let config = TimeoutConfig::default();
        assert_eq!(config.duration_ms(TimeoutKind::Propose, Round(0)), 3_000);
        assert_eq!(config.duration_ms(TimeoutKind::Propose, Round(4)), 5_000);
        assert_eq!(config.duration_ms(TimeoutKind::Precommit, Round(2)), 2_000);
        assert_eq!(
            config.duration_ms(TimeoutKind::Rebroadcast, Round(9)),
            5_000
        );
        assert_eq!(
            config.duration_ms(TimeoutKind::Prevote, Round(u32::MAX)),
            1_000 + 500 * u64::from(u32::MAX)
        );
    }
}
