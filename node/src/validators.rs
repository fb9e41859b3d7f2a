//! The validator sets this node works with, read from committed state only.
//!
//! Governance changes the set by transactions (`ledger::governance`): a
//! change adopted at height H is in force from H + 2. After committing block
//! `c` the node therefore knows, for certain, the set of heights `c + 1` and
//! `c + 2`: what the engine starts the next height with, what consensus
//! messages, announcements and synced certificates are judged against, and
//! which peers are validators. A [`ValidatorSchedule`] holds the epoch in
//! force at `c + 1` and every epoch scheduled after it; the driver rebuilds
//! it after each commit and publishes it in `Shared`, where the intake and
//! the network read it.
//!
//! Nothing a peer says about the set counts: the schedule is built from the
//! store alone. Not here: what the node does with a set (the driver, the
//! intake and the network's allow-list do that).

use std::collections::BTreeMap;

use consensus::ValidatorSet;
use crypto::PublicKey;
use genesis::Genesis;
use ledger::governance::{self, ValidatorEpoch, ValidatorInfo};
use ledger::store::Store;
use ledger::{StateError, StateValue};

use crate::network::{KnownPeer, PeerId};

/// The sets in force from the next height on, as the committed state
/// records them.
#[derive(Clone, Debug)]
pub struct ValidatorSchedule {
    /// The last committed height these were read at.
    committed: u64,
    /// The epoch in force at `committed + 1`, then every later one, oldest
    /// first, each with its consensus set. Never empty.
    epochs: Vec<(ValidatorEpoch, ValidatorSet)>,
}

impl ValidatorSchedule {
    /// Reads the schedule after the store's last committed block. A store
    /// written before the chain recorded its validator set (no governance
    /// summary) has genesis's set forever.
    pub fn read(store: &Store, genesis: &Genesis) -> Result<ValidatorSchedule, StateError> {
        let committed = store.height().unwrap_or(0);
        let Some(first) = governance::epoch_in_force(store, committed + 1)? else {
            return Ok(ValidatorSchedule::from_genesis(genesis, committed));
        };
        let latest =
            governance::summary(store)?.map_or(first.number, |summary| summary.latest_epoch);
        let mut epochs = Vec::new();
        let first_number = first.number;
        epochs.push(first);
        for number in first_number + 1..=latest {
            epochs.push(governance::epoch(store, number)?);
        }
        Ok(ValidatorSchedule::from_epochs(committed, epochs))
    }

    /// The schedule read at `committed` whose epochs are `epochs`: the one
    /// in force at `committed + 1`, then every later one, oldest first.
    /// Separate from [`Self::read`] so the rules of heights and peers are
    /// tested without a store.
    fn from_epochs(committed: u64, epochs: Vec<ValidatorEpoch>) -> ValidatorSchedule {
        assert!(!epochs.is_empty(), "a schedule holds at least one epoch");
        ValidatorSchedule {
            committed,
            epochs: epochs
                .into_iter()
                .map(|epoch| {
                    let set = epoch.consensus_set();
                    (epoch, set)
                })
                .collect(),
        }
    }

    /// Genesis's set alone (epoch 0), for a chain that records none.
    pub fn from_genesis(genesis: &Genesis, committed: u64) -> ValidatorSchedule {
        let epoch = genesis
            .initial_state()
            .ok()
            .and_then(|state| {
                state.values().into_iter().find_map(|value| match value {
                    StateValue::ValidatorEpoch(epoch) => Some(epoch),
                    _ => None,
                })
            })
            .unwrap_or_else(|| ValidatorEpoch {
                number: 0,
                from_height: 1,
                validators: Vec::new(),
            });
        let set = genesis
            .validator_set()
            .expect("genesis was validated when loaded");
        ValidatorSchedule {
            committed,
            epochs: vec![(epoch, set)],
        }
    }

    /// The last committed height the schedule was read at.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// The epoch in force at `height`. Final for heights up to
    /// `committed + 2`; for a later height it is the newest set known now
    /// (a hint: a change adopted meanwhile may replace it). Heights at or
    /// below `committed` get the set of `committed + 1`.
    pub fn epoch_at(&self, height: u64) -> &ValidatorEpoch {
        &self.entry_at(height).0
    }

    /// The consensus set in force at `height` (see [`Self::epoch_at`]).
    pub fn set_at(&self, height: u64) -> &ValidatorSet {
        &self.entry_at(height).1
    }

    fn entry_at(&self, height: u64) -> &(ValidatorEpoch, ValidatorSet) {
        self.epochs
            .iter()
            .rev()
            .find(|(epoch, _)| epoch.from_height <= height)
            .unwrap_or(&self.epochs[0])
    }

    /// Every validator in force at the next height or scheduled after it.
    pub fn validators(&self) -> impl Iterator<Item = &ValidatorInfo> {
        self.epochs
            .iter()
            .flat_map(|(epoch, _)| epoch.validators.iter())
    }

    /// Whether `key` is a consensus key of any set in the schedule.
    pub fn has_consensus_key(&self, key: &PublicKey) -> bool {
        self.epochs
            .iter()
            .any(|(epoch, _)| epoch.by_consensus_key(key).is_some())
    }

    /// Each consensus key of the schedule with its node's peer id (a key
    /// rotation keeps the node, so both keys map to the same peer).
    pub fn peer_of_key(&self) -> BTreeMap<PublicKey, PeerId> {
        self.validators()
            .filter_map(|validator| {
                let peer = PeerId::from_bytes(validator.peer_id.as_bytes()).ok()?;
                Some((validator.consensus_key, peer))
            })
            .collect()
    }

    /// Each validator's peer id with its consensus key at `height`.
    pub fn validator_of_peer_at(&self, height: u64) -> BTreeMap<PeerId, PublicKey> {
        self.epoch_at(height)
            .validators
            .iter()
            .filter_map(|validator| {
                let peer = PeerId::from_bytes(validator.peer_id.as_bytes()).ok()?;
                Some((peer, validator.consensus_key))
            })
            .collect()
    }

    /// The peers this node allows and dials: genesis's observers, and the
    /// node of every validator in force at the next height or scheduled
    /// after it (so a joining validator is connected before its first
    /// height). A validator removed from every such set is left out: its
    /// connections are closed. Sorted by peer id, each once.
    pub fn allowed_peers(&self, genesis: &Genesis) -> Vec<KnownPeer> {
        let mut peers: BTreeMap<PeerId, KnownPeer> = BTreeMap::new();
        let observers = genesis.observers.iter().filter_map(|observer| {
            Some(KnownPeer {
                name: observer.name.clone(),
                peer_id: observer.peer_id.parse().ok()?,
                address: crate::network::identity::parse_address(&observer.address).ok()?,
            })
        });
        let validators = self.validators().filter_map(|validator| {
            Some(KnownPeer {
                name: validator.name.clone(),
                peer_id: PeerId::from_bytes(validator.peer_id.as_bytes()).ok()?,
                address: crate::network::identity::parse_address(&validator.address).ok()?,
            })
        });
        for peer in observers.chain(validators) {
            // The newest record of a node wins (its address may change).
            peers.insert(peer.peer_id, peer);
        }
        peers.into_values().collect()
    }
}

#[cfg(test)]
mod tests;
