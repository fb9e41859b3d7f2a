//! Turning a genesis definition into what the other crates take: the
//! ledger's participants at height 0, the consensus validator set and its
//! timeouts.
//!
//! Call these on a validated genesis (as `load` and `from_json` return);
//! they do not re-check what validation already guarantees.

use consensus::{TimeoutConfig, Validator, ValidatorSet, ValidatorSetError};
use ledger::{Participant, Role};

use crate::Genesis;

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
