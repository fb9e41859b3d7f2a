//! Consensus parameters: the step timeouts of a Tendermint round, how they grow
//! per round, and how large a block may be.
//!
//! Every field has a default, so a genesis file may omit the whole section or
//! any field of it. Defaults are part of the chain id (the canonical form holds
//! the values, not whether they were written), so changing a default here
//! changes the id of every genesis file that relies on it: the defaults are
//! pinned by a test, and [`crate::Genesis::save`] always writes every value out.
//!
//! This module only holds the values; the rules they must obey are in
//! `validate.rs`, and their use is the `consensus` and `node` crates' business.

use serde::{Deserialize, Serialize};

/// Timing and size limits every validator must agree on.
///
/// A step's timeout in round `r` is its base value plus `r × timeout_delta_ms`,
/// so that under partial synchrony some round eventually lasts long enough for
/// the honest validators to hear each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusParams {
    /// How long to wait for the proposal in round 0.
    pub timeout_propose_ms: u64,
    /// How long to wait for more prevotes after seeing 2f+1 of any kind, in round 0.
    pub timeout_prevote_ms: u64,
    /// How long to wait for more precommits after seeing 2f+1 of any kind, in round 0.
    pub timeout_precommit_ms: u64,
    /// Added to each of the three timeouts for every further round.
    pub timeout_delta_ms: u64,
    /// Most transactions in one block.
    pub max_block_txs: u64,
    /// Most bytes in one block's encoding.
    pub max_block_bytes: u64,
    /// If set, a block is proposed at least this often even with no
    /// transactions, so that block time (the only clock the ledger's rules see,
    /// e.g. for maturity) keeps moving. If absent, blocks are made only when
    /// there are transactions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<u64>,
}

impl Default for ConsensusParams {
    /// Values for validators on one LAN or a few data centres: Tendermint's
    /// timeouts, and blocks small enough to gossip in well under a second.
    fn default() -> Self {
        ConsensusParams {
            timeout_propose_ms: 3_000,
            timeout_prevote_ms: 1_000,
            timeout_precommit_ms: 1_000,
            timeout_delta_ms: 500,
            max_block_txs: 2_000,
            max_block_bytes: 1 << 20,
            heartbeat_interval_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changing a default changes the chain id of files that omit the value:
    /// this test makes such a change deliberate.
    #[test]
    fn defaults_are_pinned() {
        let params = ConsensusParams::default();
        assert_eq!(
            (
                params.timeout_propose_ms,
                params.timeout_prevote_ms,
                params.timeout_precommit_ms,
                params.timeout_delta_ms,
                params.max_block_txs,
                params.max_block_bytes,
                params.heartbeat_interval_ms,
            ),
            (3_000, 1_000, 1_000, 500, 2_000, 1_048_576, None)
        );
    }

    #[test]
    fn omitted_fields_take_their_defaults() {
        let params: ConsensusParams = serde_json::from_str(r#"{ "max_block_txs": 7 }"#).unwrap();
        assert_eq!(
            params,
            ConsensusParams {
                max_block_txs: 7,
                ..ConsensusParams::default()
            }
        );
    }

    #[test]
    fn misspelled_field_is_refused() {
        let error =
            serde_json::from_str::<ConsensusParams>(r#"{ "max_block_tx": 7 }"#).unwrap_err();
        assert!(error.to_string().contains("max_block_tx"), "{error}");
    }
}
