//! Turning a genesis definition into what the other crates take: the
//! ledger's state at height 0 (participants, and the validator set that
//! governance changes later), the consensus validator set and its timeouts.
//!
//! Call these on a validated genesis (as `load` and `from_json` return);
//! they do not re-check what validation already guarantees.

use consensus::{TimeoutConfig, Validator, ValidatorSet, ValidatorSetError};
use ledger::governance::{GenesisState, GenesisStateError, GenesisValidator, PeerIdError};
use ledger::{Participant, Role};

use crate::Genesis;

/// Why a genesis cannot start a chain that records its validator set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitialStateError {
    #[error("validator {validator:?}: {error}")]
    PeerId {
        validator: String,
        error: PeerIdError,
    },
    #[error(transparent)]
    State(#[from] GenesisStateError),
}

impl Genesis {
    /// The participants registered at height 0, as ledger state.
    pub fn initial_participants(&self) -> Vec<Participant> {
        self.participants
            .iter()
            .map(|participant| {
                let roles = participant.roles.iter().filter_map(|name| {
                    Role::GRANTABLE.into_iter().find(|role| role.name() == name)
                });
                Participant::new(participant.public_key, participant.name.clone(), roles)
            })
            .collect()
    }

    /// The ledger's state at height 0 with the validator set recorded:
    /// the participants, an account per validator, and epoch 0 (in force
    /// from height 1). What `Store::init_genesis_state` writes and what an
    /// auditor replaying the chain starts from.
    ///
    /// Stricter than [`Genesis::validate`]: every validator's peer id must
    /// be a real libp2p peer id (the ledger records its bytes), and no key
    /// may be both a validator's and a participant's (a validator's
    /// consensus key is its account).
    pub fn initial_state(&self) -> Result<GenesisState, InitialStateError> {
        let validators = self
            .validators
            .iter()
            .map(|validator| {
                Ok(GenesisValidator {
                    name: validator.name.clone(),
                    consensus_key: validator.public_key,
                    peer_id: validator.peer_id.parse().map_err(|error| {
                        InitialStateError::PeerId {
                            validator: validator.name.clone(),
                            error,
                        }
                    })?,
                    address: validator.address.clone(),
                    power: validator.voting_power,
                })
            })
            .collect::<Result<Vec<_>, InitialStateError>>()?;
        Ok(GenesisState::new(self.initial_participants(), validators)?)
    }

    /// The validators with their voting power, as consensus takes them.
    pub fn validator_set(&self) -> Result<ValidatorSet, ValidatorSetError> {
        ValidatorSet::new(self.validators.iter().map(|validator| Validator {
            public_key: validator.public_key,
            power: validator.voting_power,
        }))
    }

    /// The step timeouts; genesis has one growth per round for all three.
    pub fn timeout_config(&self) -> TimeoutConfig {
        let params = &self.consensus;
        TimeoutConfig {
            propose_ms: params.timeout_propose_ms,
            propose_delta_ms: params.timeout_delta_ms,
            prevote_ms: params.timeout_prevote_ms,
            prevote_delta_ms: params.timeout_delta_ms,
            precommit_ms: params.timeout_precommit_ms,
            precommit_delta_ms: params.timeout_delta_ms,
            ..TimeoutConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use crypto::Keypair;
    use ledger::governance::GenesisStateError;

    use super::InitialStateError;
    use crate::{ConsensusParams, Genesis, InitialParticipant, Validator};

    fn genesis() -> Genesis {
        let mut genesis = Genesis {
            chain_name: "convert".into(),
            currency_code: "CNY".into(),
            currency_decimals: 2,
            genesis_time_ms: 1,
            validators: vec![],
            observers: vec![],
            participants: vec![],
            consensus: ConsensusParams::default(),
        };
        genesis.validators = (0..4u8)
            .map(|i| Validator {
                name: format!("v{i}"),
                public_key: Keypair::from_seed([i + 1; 32]).public(),
                peer_id: format!("peer{i}"),
                address: format!("/ip4/127.0.0.1/tcp/{}", 1000 + u16::from(i)),
                voting_power: u64::from(i) + 1,
            })
            .collect();
        genesis.participants = vec![InitialParticipant {
            name: "admin".into(),
            public_key: Keypair::from_seed([9; 32]).public(),
            roles: vec!["operator".into(), "auditor".into()],
        }];
        genesis
    }

    #[test]
    fn participants_keep_their_roles() {
        let participants = genesis().initial_participants();
        assert_eq!(participants.len(), 1);
        assert_eq!(
            participants[0].roles,
            vec![ledger::Role::Operator, ledger::Role::Auditor]
        );
        assert!(participants[0].active);
        assert_eq!(participants[0].next_nonce, 0);
    }

    #[test]
    fn the_initial_state_records_the_validator_set_with_real_peer_ids() {
        let mut genesis = genesis();
        assert_eq!(
            genesis.initial_state().unwrap_err(),
            InitialStateError::PeerId {
                validator: "v0".into(),
                error: "peer0".parse::<ledger::PeerId>().unwrap_err(),
            }
        );
        for (index, validator) in genesis.validators.iter_mut().enumerate() {
            let mut bytes = vec![0x00, 36, 0x08, 0x01, 0x12, 0x20];
            bytes.extend_from_slice(&[index as u8 + 1; 32]);
            validator.peer_id = ledger::PeerId::from_bytes(bytes).unwrap().to_string();
        }
        let state = genesis.initial_state().unwrap();
        let values = state.values();
        let epoch = values
            .iter()
            .find_map(|value| match value {
                ledger::StateValue::ValidatorEpoch(epoch) => Some(epoch.clone()),
                _ => None,
            })
            .expect("epoch 0");
        assert_eq!((epoch.number, epoch.from_height), (0, 1));
        assert_eq!(epoch.consensus_set(), genesis.validator_set().unwrap());
        // A validator's key may not also be a participant's.
        genesis.participants[0].public_key = genesis.validators[2].public_key;
        assert_eq!(
            genesis.initial_state().unwrap_err(),
            InitialStateError::State(GenesisStateError::DuplicateKey {
                key: genesis.validators[2].public_key
            })
        );
    }

    #[test]
    fn validator_set_carries_every_power() {
        let set = genesis().validator_set().unwrap();
        assert_eq!(set.len(), 4);
        assert_eq!(set.total_power(), 1 + 2 + 3 + 4);
    }

    #[test]
    fn timeouts_grow_by_the_genesis_delta() {
        let mut genesis = genesis();
        genesis.consensus.timeout_delta_ms = 250;
        let timeouts = genesis.timeout_config();
        assert_eq!(timeouts.propose_delta_ms, 250);
        assert_eq!(timeouts.precommit_delta_ms, 250);
        assert_eq!(timeouts.propose_ms, genesis.consensus.timeout_propose_ms);
    }
}
