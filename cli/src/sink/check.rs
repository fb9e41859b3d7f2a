//! The sink's checks of what the node served, before any of it may be
//! written: each block verified and replayed by the audit's
//! [`ChainVerifier`] (parent hash, height, chain, tx root, a quorum of the
//! pinned genesis's validators in the certificate, every signature, every
//! transaction, the app hash), then its events derived from the verified
//! block and the replayed state (`ledger::derive_block_events`) and compared
//! with those the node's feed served, one by one and field by field.
//!
//! What is written is what was derived here; the feed is only compared. A
//! node whose feed differs from its own blocks is refused all the same: a
//! bank's other systems may read that feed.

use genesis::Genesis;
use ledger::{Event, StateView, derive_block_events};
use node::api::event_views::EventView;

use crate::audit::{AuditFailure, ChainVerifier, RawBlock, VerifiedBlock};

/// A block that passed every check, with its events.
#[derive(Debug)]
pub struct CheckedBlock {
    pub verified: VerifiedBlock,
    /// Each event with its API form (the JSON the feed serves).
    pub events: Vec<(Event, EventView)>,
}

/// Why a block or its events were refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The block itself (or its certificate) is wrong.
    #[error(transparent)]
    Block(#[from] AuditFailure),
    /// The block verified but the feed's events for it differ.
    #[error("height {height}: {difference}")]
    Events { height: u64, difference: String },
    /// The replayed state lacks an entry an event needs (a token, a key's
    /// binding, an adopted proposal): the verified chain is inconsistent
    /// with the ledger's rules, which cannot be written.
    #[error("height {height}: deriving the block's events failed: {reason}")]
    Derive { height: u64, reason: String },
}

impl CheckError {
    pub fn height(&self) -> Option<u64> {
        match self {
            CheckError::Block(failure) => failure.height(),
            CheckError::Events { height, .. } | CheckError::Derive { height, .. } => Some(*height),
        }
    }
}

/// The chain as verified so far.
pub struct Checker {
    verifier: ChainVerifier,
    decimals: u8,
}

impl Checker {
    pub fn from_genesis(genesis: &Genesis) -> Result<Checker, CheckError> {
        Ok(Checker {
            verifier: ChainVerifier::from_genesis(genesis)?,
            decimals: genesis.currency_decimals,
        })
    }

    pub fn verifier(&self) -> &ChainVerifier {
        &self.verifier
    }

    /// Verifies and replays the next block without its events: for heights
    /// already written, whose state must be rebuilt. Returns how many
    /// transactions it holds.
    pub fn replay(&mut self, raw: &RawBlock) -> Result<usize, CheckError> {
        Ok(self.verifier.verify_next(raw)?.block.txs.len())
    }

    /// Verifies and replays the next block, derives its events and
    /// compares them with `served`, the feed's events of that height.
    pub fn check(&mut self, raw: &RawBlock, served: &[Event]) -> Result<CheckedBlock, CheckError> {
        let verified = self.verifier.verify_next(raw)?;
        let height = verified.block.header.height;
        let state = self.verifier.state();
        let events =
            derive_block_events(&verified.block, |key| state.get(key)).map_err(|error| {
                CheckError::Derive {
                    height,
                    reason: error.to_string(),
                }
            })?;
        compare(&events, served, self.decimals)
            .map_err(|difference| CheckError::Events { height, difference })?;
        let events = events
            .into_iter()
            .map(|event| {
                let view = EventView::new(&event, self.decimals);
                (event, view)
            })
            .collect();
        Ok(CheckedBlock { verified, events })
    }
}

/// The first difference between the events derived from a block and those
/// the feed served for its height; a differing event is described by its
/// API form (`decimals` for its amounts), as the feed's JSON shows it.
fn compare(derived: &[Event], served: &[Event], decimals: u8) -> Result<(), String> {
    for (index, mine) in derived.iter().enumerate() {
        let Some(theirs) = served.get(index) else {
            return Err(format!(
                "the verified block yields event {} ({}), which the node's feed does not serve",
                mine.cursor,
                mine.kind.name()
            ));
        };
        if theirs != mine {
            return Err(format!(
                "the node's feed serves event {} with {}, but the verified block yields {}",
                theirs.cursor,
                field_difference(
                    &EventView::new(theirs, decimals),
                    &EventView::new(mine, decimals)
                ),
                mine.cursor
            ));
        }
    }
    if let Some(extra) = served.get(derived.len()) {
        return Err(format!(
            "the node's feed serves event {} ({}), which the verified block does not yield ({} events)",
            extra.cursor,
            extra.kind.name(),
            derived.len()
        ));
    }
    Ok(())
}

/// "amount_minor 5 where it is 4" for the first field that differs.
fn field_difference(served: &EventView, derived: &EventView) -> String {
    let served = serde_json::to_value(served).expect("an event view serialises");
    let derived = serde_json::to_value(derived).expect("an event view serialises");
    let (Some(served), Some(derived)) = (served.as_object(), derived.as_object()) else {
        return "another value".to_string();
    };
    // An amount differs in its decimal string and its minor units: name
    // the exact integer (`amount_minor`) first.
    let mut names: Vec<&String> = served.keys().chain(derived.keys()).collect();
    names.sort_by_key(|name| (!name.ends_with("_minor"), name.as_str()));
    names.dedup();
    for name in names {
        let (theirs, mine) = (served.get(name), derived.get(name));
        if theirs != mine {
            let show = |value: Option<&serde_json::Value>| {
                value.map_or("nothing".to_string(), |value| {
                    value.to_string().chars().take(200).collect()
                })
            };
            return format!("{name} {} where it is {}", show(theirs), show(mine));
        }
    }
    "another value".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto::{Hash, PublicKey};
    use ledger::{Amount, Cursor, EventKind, Timestamp, TxHash};

    fn event(event_index: u32, amount: u64) -> Event {
        Event {
            cursor: Cursor {
                height: 7,
                tx_index: 0,
                event_index,
            },
            time: Timestamp(1_000),
            tx_hash: TxHash(Hash([1; 32])),
            signer: PublicKey([2; 32]),
            kind: EventKind::CreditLineGranted {
                bank: PublicKey([2; 32]),
                core: PublicKey([3; 32]),
                limit: Amount(amount),
            },
        }
    }

    #[test]
    fn the_same_events_compare_equal() {
        let derived = vec![event(0, 5), event(1, 6)];
        assert_eq!(compare(&derived, &derived.clone(), 2), Ok(()));
    }

    #[test]
    fn a_changed_field_is_named_with_both_values() {
        let derived = vec![event(0, 5)];
        let served = vec![event(0, 4)];
        let difference = compare(&derived, &served, 2).unwrap_err();
        assert!(
            difference.contains("limit_minor 4 where it is 5"),
            "{difference}"
        );
    }

    #[test]
    fn a_missing_or_an_extra_event_is_named() {
        let derived = vec![event(0, 5), event(1, 6)];
        let missing = compare(&derived, &derived[..1], 2).unwrap_err();
        assert!(
            missing.contains("00000000000000000007-0000000000-0000000001")
                && missing.contains("does not serve"),
            "{missing}"
        );
        let extra = compare(&derived[..1], &derived, 2).unwrap_err();
        assert!(extra.contains("does not yield (1 events)"), "{extra}");
    }
}
