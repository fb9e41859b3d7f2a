//! The state a chain starts from: its participants and, so that governance
//! can change it later, its validator set (epoch 0, in force from height 1)
//! with an account for each validator.
//!
//! One function builds it ([`GenesisState::values`]); the store writes it
//! and an auditor replaying the chain in memory applies the same values, so
//! both start from the same app hash.

use std::collections::BTreeSet;

use crypto::PublicKey;

use super::{
    GovernanceSummary, MAX_TOTAL_POWER, MAX_VALIDATORS, PeerId, ValidatorEpoch, ValidatorInfo,
};
use crate::participant::{Participant, Role};
use crate::state::StateValue;

/// A validator listed in genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisValidator {
    pub name: String,
    pub consensus_key: PublicKey,
    pub peer_id: PeerId,
    pub address: String,
    pub power: u64,
}

/// Participants and validators at height 0, checked to be a usable start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisState {
    participants: Vec<Participant>,
    validators: Vec<GenesisValidator>,
}

/// Why a genesis cannot be the start of a chain with governance.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenesisStateError {
    #[error("genesis lists no validators")]
    NoValidators,
    #[error("genesis lists {count} validators; at most {limit} are allowed")]
    TooManyValidators { count: usize, limit: usize },
    #[error(
        "key {key} is listed twice (validator consensus keys and participant keys must all differ)"
    )]
    DuplicateKey { key: PublicKey },
    #[error("peer id {peer_id} is listed for two validators")]
    DuplicatePeerId { peer_id: String },
    #[error("validator name {name:?} is listed twice")]
    DuplicateName { name: String },
    #[error("validator {name:?} has voting power 0")]
    ZeroPower { name: String },
    #[error("the validators' total voting power exceeds {max}")]
    PowerOverflow { max: u64 },
}

impl GenesisState {
    /// Checks what governance will rely on: every key (consensus keys and
    /// participants' keys alike) distinct, so each validator's account is
    /// its own; peer ids and names distinct; powers positive and within
    /// the consensus limit. Genesis may have fewer than
    /// [`super::MIN_VALIDATORS`] (a development chain); governance then
    /// only refuses to shrink it further.
    pub fn new(
        participants: Vec<Participant>,
        validators: Vec<GenesisValidator>,
    ) -> Result<GenesisState, GenesisStateError> {
        if validators.is_empty() {
            return Err(GenesisStateError::NoValidators);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(GenesisStateError::TooManyValidators {
                count: validators.len(),
                limit: MAX_VALIDATORS,
            });
        }
        let mut keys = BTreeSet::new();
        let all_keys = participants
            .iter()
            .map(|p| p.key)
            .chain(validators.iter().map(|v| v.consensus_key));
        for key in all_keys {
            if !keys.insert(key) {
                return Err(GenesisStateError::DuplicateKey { key });
            }
        }
        let (mut peers, mut names, mut total) = (BTreeSet::new(), BTreeSet::new(), 0u128);
        for validator in &validators {
            if !peers.insert(&validator.peer_id) {
                return Err(GenesisStateError::DuplicatePeerId {
                    peer_id: validator.peer_id.to_string(),
                });
            }
            if !names.insert(&validator.name) {
                return Err(GenesisStateError::DuplicateName {
                    name: validator.name.clone(),
                });
            }
            if validator.power == 0 {
                return Err(GenesisStateError::ZeroPower {
                    name: validator.name.clone(),
                });
            }
            total += u128::from(validator.power);
        }
        if total > u128::from(MAX_TOTAL_POWER) {
            return Err(GenesisStateError::PowerOverflow {
                max: MAX_TOTAL_POWER,
            });
        }
        Ok(GenesisState {
            participants,
            validators,
        })
    }

    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }

    /// Every state entry at height 0: the participants, an account per
    /// validator, epoch 0 (in force from height 1) and the governance
    /// summary.
    pub fn values(&self) -> Vec<StateValue> {
        let mut values: Vec<StateValue> = self
            .participants
            .iter()
            .cloned()
            .map(StateValue::Participant)
            .collect();
        let mut validators = Vec::with_capacity(self.validators.len());
        for validator in &self.validators {
            values.push(StateValue::Participant(Participant::new(
                validator.consensus_key,
                validator.name.clone(),
                [Role::Validator],
            )));
            validators.push(ValidatorInfo {
                identity: validator.consensus_key,
                name: validator.name.clone(),
                consensus_key: validator.consensus_key,
                peer_id: validator.peer_id.clone(),
                address: validator.address.clone(),
                power: validator.power,
            });
        }
        validators.sort_by_key(|v| v.consensus_key);
        values.push(StateValue::ValidatorEpoch(ValidatorEpoch {
            number: 0,
            from_height: 1,
            validators,
        }));
        values.push(StateValue::GovernanceSummary(GovernanceSummary {
            latest_epoch: 0,
            open: Vec::new(),
        }));
        values
    }
}
