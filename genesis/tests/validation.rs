//! One test per genesis rule: the sample holds every rule, and each test breaks
//! exactly one and expects exactly its error.

mod common;

use common::{key, sample};
use crypto::PublicKey;
use genesis::{Genesis, MAX_CURRENCY_DECIMALS, MAX_TOTAL_VOTING_POWER, Observer, ValidationError};

fn error_after(change: impl FnOnce(&mut Genesis)) -> ValidationError {
    let mut genesis = sample();
    change(&mut genesis);
    genesis
        .validate()
        .expect_err("the change should break a rule")
}

#[test]
fn sample_is_valid() {
    assert_eq!(sample().validate(), Ok(()));
}

#[test]
fn empty_chain_name_is_refused() {
    let error = error_after(|genesis| genesis.chain_name = "  ".to_owned());
    assert_eq!(
        error,
        ValidationError::EmptyName {
            field: "chain_name".to_owned()
        }
    );
}

#[test]
fn empty_validator_name_is_refused_by_position() {
    let error = error_after(|genesis| genesis.validators[1].name.clear());
    assert_eq!(
        error,
        ValidationError::EmptyName {
            field: "validators[1].name".to_owned()
        }
    );
}

#[test]
fn empty_observer_name_is_refused_by_position() {
    let error = error_after(|genesis| genesis.observers[0].name.clear());
    assert_eq!(
        error,
        ValidationError::EmptyName {
            field: "observers[0].name".to_owned()
        }
    );
}

#[test]
fn empty_participant_name_is_refused_by_position() {
    let error = error_after(|genesis| genesis.participants[3].name.clear());
    assert_eq!(
        error,
        ValidationError::EmptyName {
            field: "participants[3].name".to_owned()
        }
    );
}

#[test]
fn empty_or_malformed_currency_code_is_refused() {
    for code in ["", "CN", "cny", "C1Y", "ABCDEFGHIJKLM", "ÇNY"] {
        let error = error_after(|genesis| genesis.currency_code = code.to_owned());
        assert_eq!(
            error,
            ValidationError::InvalidCurrencyCode {
                code: code.to_owned()
            }
        );
    }
    for code in ["USD", "ABCDEFGHIJKL"] {
        let mut genesis = sample();
        genesis.currency_code = code.to_owned();
        assert_eq!(genesis.validate(), Ok(()), "{code}");
    }
}

#[test]
fn more_than_18_decimals_is_refused() {
    let error = error_after(|genesis| genesis.currency_decimals = 19);
    assert_eq!(
        error,
        ValidationError::DecimalsTooLarge {
            decimals: 19,
            max: MAX_CURRENCY_DECIMALS
        }
    );
    let mut genesis = sample();
    genesis.currency_decimals = 18;
    assert_eq!(genesis.validate(), Ok(()));
}

#[test]
fn no_validator_is_refused() {
    let error = error_after(|genesis| genesis.validators.clear());
    assert_eq!(error, ValidationError::NoValidators);
}

#[test]
fn validator_key_off_the_curve_is_refused() {
    let mut bytes = [0u8; 32];
    bytes[0] = 2; // y = 2 has no point on edwards25519.
    let error = error_after(|genesis| genesis.validators[2].public_key = PublicKey(bytes));
    assert_eq!(
        error,
        ValidationError::BadKey {
            field: "validators[2].public_key".to_owned(),
            entry: "bank-c".to_owned(),
            reason: "not a point on the ed25519 curve".to_owned(),
        }
    );
}

#[test]
fn small_order_participant_key_is_refused() {
    let mut identity = [0u8; 32];
    identity[0] = 1; // The identity point: anyone can "sign" for it.
    let error = error_after(|genesis| genesis.participants[1].public_key = PublicKey(identity));
    assert_eq!(
        error,
        ValidationError::BadKey {
            field: "participants[1].public_key".to_owned(),
            entry: "bank-a".to_owned(),
            reason: "a small-order (weak) ed25519 point".to_owned(),
        }
    );
}

#[test]
fn duplicate_validator_key_names_both_validators() {
    let error = error_after(|genesis| genesis.validators[2].public_key = key(1));
    assert_eq!(
        error,
        ValidationError::DuplicateValidatorKey {
            key: key(1),
            first: "bank-a".to_owned(),
            second: "bank-c".to_owned(),
        }
    );
}

#[test]
fn duplicate_participant_key_names_both_participants() {
    let error = error_after(|genesis| genesis.participants[4].public_key = key(13));
    assert_eq!(
        error,
        ValidationError::DuplicateParticipantKey {
            key: key(13),
            first: "core-b".to_owned(),
            second: "auditor-e".to_owned(),
        }
    );
}

#[test]
fn validator_key_may_also_be_a_participant_key() {
    // Signatures are domain-separated, so one key serving both purposes is not
    // ambiguous; it is the operators' choice.
    let mut genesis = sample();
    genesis.participants[1].public_key = genesis.validators[0].public_key;
    assert_eq!(genesis.validate(), Ok(()));
}

#[test]
fn duplicate_validator_name_is_refused() {
    let error = error_after(|genesis| genesis.validators[1].name = "bank-a".to_owned());
    assert_eq!(
        error,
        ValidationError::DuplicateNodeName {
            name: "bank-a".to_owned()
        }
    );
}

#[test]
fn observer_named_like_a_validator_is_refused() {
    let error = error_after(|genesis| genesis.observers[0].name = "core-b".to_owned());
    assert_eq!(
        error,
        ValidationError::DuplicateNodeName {
            name: "core-b".to_owned()
        }
    );
}

#[test]
fn duplicate_participant_name_is_refused() {
    let error = error_after(|genesis| genesis.participants[3].name = "bank-a".to_owned());
    assert_eq!(
        error,
        ValidationError::DuplicateParticipantName {
            name: "bank-a".to_owned()
        }
    );
}

#[test]
fn duplicate_peer_id_names_both_nodes() {
    let error = error_after(|genesis| {
        genesis.observers.push(Observer {
            name: "second-observer".to_owned(),
            peer_id: "12D3KooWPeer2".to_owned(),
            address: "/ip4/127.0.0.1/tcp/30000".to_owned(),
        })
    });
    assert_eq!(
        error,
        ValidationError::DuplicatePeerId {
            peer_id: "12D3KooWPeer2".to_owned(),
            first: "core-b".to_owned(),
            second: "second-observer".to_owned(),
        }
    );
}

#[test]
fn malformed_peer_id_is_refused() {
    for peer_id in ["", "12D3 KooW", "/p2p/12D3KooW"] {
        let error = error_after(|genesis| genesis.validators[0].peer_id = peer_id.to_owned());
        assert_eq!(
            error,
            ValidationError::InvalidPeerId {
                node: "bank-a".to_owned(),
                peer_id: peer_id.to_owned()
            }
        );
    }
}

#[test]
fn address_that_is_not_a_multiaddr_is_refused() {
    for address in ["", "/", "127.0.0.1:26656", "/ip4/127.0.0.1/tcp/ 26656"] {
        let error = error_after(|genesis| genesis.observers[0].address = address.to_owned());
        assert_eq!(
            error,
            ValidationError::InvalidAddress {
                node: "auditor-node".to_owned(),
                address: address.to_owned()
            }
        );
    }
}

#[test]
fn zero_voting_power_is_refused() {
    let error = error_after(|genesis| genesis.validators[1].voting_power = 0);
    assert_eq!(
        error,
        ValidationError::ZeroVotingPower {
            validator: "core-b".to_owned()
        }
    );
}

#[test]
fn total_voting_power_beyond_the_maximum_is_refused() {
    let error = error_after(|genesis| {
        genesis.validators[0].voting_power = u64::MAX;
        genesis.validators[1].voting_power = u64::MAX;
    });
    let total = 2 * u128::from(u64::MAX) + 5;
    assert_eq!(
        error,
        ValidationError::VotingPowerOverflow {
            total,
            max: MAX_TOTAL_VOTING_POWER
        }
    );

    let mut genesis = sample();
    genesis.validators[0].voting_power = MAX_TOTAL_VOTING_POWER - 15;
    assert_eq!(genesis.validate(), Ok(()));
    assert_eq!(genesis.total_voting_power(), MAX_TOTAL_VOTING_POWER);
}

#[test]
fn participant_without_roles_is_refused() {
    let error = error_after(|genesis| genesis.participants[2].roles.clear());
    assert_eq!(
        error,
        ValidationError::NoRoles {
            participant: "core-b".to_owned()
        }
    );
}

#[test]
fn unknown_role_is_refused() {
    let error = error_after(|genesis| genesis.participants[2].roles = vec!["core".to_owned()]);
    assert_eq!(
        error,
        ValidationError::UnknownRole {
            participant: "core-b".to_owned(),
            role: "core".to_owned()
        }
    );
    assert!(
        error
            .to_string()
            .contains("operator, bank, core_enterprise, supplier, auditor")
    );
}

#[test]
fn role_listed_twice_is_refused() {
    let error = error_after(|genesis| genesis.participants[4].roles.push("auditor".to_owned()));
    assert_eq!(
        error,
        ValidationError::DuplicateRole {
            participant: "auditor-e".to_owned(),
            role: "auditor".to_owned()
        }
    );
}

#[test]
fn genesis_without_operator_is_refused() {
    let error = error_after(|genesis| genesis.participants[0].roles = vec!["auditor".to_owned()]);
    assert_eq!(error, ValidationError::NoOperator);
}

type Change = fn(&mut Genesis);

#[test]
fn zero_timeouts_are_refused() {
    let cases: [(&str, Change); 5] = [
        ("timeout_propose_ms", |genesis| {
            genesis.consensus.timeout_propose_ms = 0
        }),
        ("timeout_prevote_ms", |genesis| {
            genesis.consensus.timeout_prevote_ms = 0
        }),
        ("timeout_precommit_ms", |genesis| {
            genesis.consensus.timeout_precommit_ms = 0
        }),
        ("timeout_delta_ms", |genesis| {
            genesis.consensus.timeout_delta_ms = 0
        }),
        ("heartbeat_interval_ms", |genesis| {
            genesis.consensus.heartbeat_interval_ms = Some(0)
        }),
    ];
    for (param, change) in cases {
        assert_eq!(error_after(change), ValidationError::ZeroTimeout { param });
    }
}

#[test]
fn zero_block_limits_are_refused() {
    let cases: [(&str, Change); 2] = [
        ("max_block_txs", |genesis| {
            genesis.consensus.max_block_txs = 0
        }),
        ("max_block_bytes", |genesis| {
            genesis.consensus.max_block_bytes = 0
        }),
    ];
    for (param, change) in cases {
        assert_eq!(
            error_after(change),
            ValidationError::ZeroBlockLimit { param }
        );
    }
}

#[test]
fn errors_name_the_offending_entry_in_their_message() {
    let error = error_after(|genesis| genesis.validators[2].public_key = key(1));
    let message = error.to_string();
    assert!(
        message.contains("\"bank-a\"") && message.contains("\"bank-c\""),
        "{message}"
    );
}
