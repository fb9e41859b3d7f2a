//! The rules a genesis must obey, and the error that names the first one broken.
//!
//! Rules are checked in a fixed order (chain fields, validators, observers,
//! participants, consensus parameters; entries in file order), so the same
//! file always gets the same error. Each error names the offending entry.
//!
//! Network identities are only checked for shape (a peer id is alphanumeric,
//! an address is a `/`-separated multiaddr): parsing them is libp2p's job, in
//! `node`. What roles permit is the ledger's business, not this module's.

use std::collections::{BTreeMap, BTreeSet};

use crypto::PublicKey;

use crate::file::Genesis;
use crate::roles::{OPERATOR, ROLE_NAMES, is_role_name};

/// Most decimals a currency may have: one whole unit, 10^18 minor units, still
/// fits in a `u64` amount (10^19 would not).
pub const MAX_CURRENCY_DECIMALS: u8 = 18;

/// Largest total voting power: an eighth of `u64::MAX`, so that quorum
/// arithmetic such as `2 × total` or `(2k+1) × power` cannot overflow. Equal to
/// `consensus::MAX_TOTAL_POWER`, so a genesis accepted here is a validator set
/// the consensus engine accepts.
pub const MAX_TOTAL_VOTING_POWER: u64 = u64::MAX / 8;

/// A broken genesis rule. Entries are named by their `name`; when the name
/// itself is the problem, by their position (`validators[2].name`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field} is empty")]
    EmptyName { field: String },
    #[error("currency code {code:?} is not 3 to 12 uppercase ASCII letters (e.g. \"CNY\")")]
    InvalidCurrencyCode { code: String },
    #[error("currency_decimals is {decimals}; at most {max} fit a u64 amount")]
    DecimalsTooLarge { decimals: u8, max: u8 },
    #[error("{field} of {entry:?} is not a usable ed25519 public key: {reason}")]
    BadKey {
        field: String,
        entry: String,
        reason: String,
    },
    #[error("there are no validators; a chain needs at least one")]
    NoValidators,
    #[error("validators {first:?} and {second:?} have the same public key {key}")]
    DuplicateValidatorKey {
        key: PublicKey,
        first: String,
        second: String,
    },
    #[error("participants {first:?} and {second:?} have the same public key {key}")]
    DuplicateParticipantKey {
        key: PublicKey,
        first: String,
        second: String,
    },
    #[error("node name {name:?} is used twice among validators and observers")]
    DuplicateNodeName { name: String },
    #[error("participant name {name:?} is used twice")]
    DuplicateParticipantName { name: String },
    #[error("nodes {first:?} and {second:?} have the same peer id {peer_id}")]
    DuplicatePeerId {
        peer_id: String,
        first: String,
        second: String,
    },
    #[error(
        "peer id {peer_id:?} of node {node:?} is not a libp2p peer id (non-empty, letters and digits)"
    )]
    InvalidPeerId { node: String, peer_id: String },
    #[error(
        "address {address:?} of node {node:?} is not a multiaddr like \"/ip4/10.0.0.1/tcp/26656\""
    )]
    InvalidAddress { node: String, address: String },
    #[error("validator {validator:?} has voting power 0; give it at least 1 or remove it")]
    ZeroVotingPower { validator: String },
    #[error("total voting power {total} exceeds the maximum {max}")]
    VotingPowerOverflow { total: u128, max: u64 },
    #[error("participant {participant:?} has no roles")]
    NoRoles { participant: String },
    #[error("participant {participant:?} has unknown role {role:?}; roles are {}", ROLE_NAMES.join(", "))]
    UnknownRole { participant: String, role: String },
    #[error("participant {participant:?} lists role {role:?} twice")]
    DuplicateRole { participant: String, role: String },
    #[error("no participant has the operator role, so nobody could register participants")]
    NoOperator,
    #[error("consensus.{param} is 0; timeouts must be positive")]
    ZeroTimeout { param: &'static str },
    #[error("consensus.{param} is 0; a block must be allowed to hold something")]
    ZeroBlockLimit { param: &'static str },
}

impl Genesis {
    /// Checks every rule; the error names the first one broken.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_chain_fields(self)?;
        let mut nodes = NodeNames::default();
        check_validators(self, &mut nodes)?;
        for (index, observer) in self.observers.iter().enumerate() {
            check_name(&observer.name, "observers", index)?;
            nodes.add(&observer.name, &observer.peer_id, &observer.address)?;
        }
        check_participants(self)?;
        check_consensus_params(self)
    }

    /// The validators' total voting power (saturating; a valid genesis never saturates).
    pub fn total_voting_power(&self) -> u64 {
        self.validators.iter().fold(0u64, |total, validator| {
            total.saturating_add(validator.voting_power)
        })
    }
}

fn check_chain_fields(genesis: &Genesis) -> Result<(), ValidationError> {
    if genesis.chain_name.trim().is_empty() {
        return Err(ValidationError::EmptyName {
            field: "chain_name".to_owned(),
        });
    }
    let code = &genesis.currency_code;
    if !(3..=12).contains(&code.len()) || !code.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(ValidationError::InvalidCurrencyCode { code: code.clone() });
    }
    if genesis.currency_decimals > MAX_CURRENCY_DECIMALS {
        return Err(ValidationError::DecimalsTooLarge {
            decimals: genesis.currency_decimals,
            max: MAX_CURRENCY_DECIMALS,
        });
    }
    Ok(())
}

fn check_validators<'a>(
    genesis: &'a Genesis,
    nodes: &mut NodeNames<'a>,
) -> Result<(), ValidationError> {
    if genesis.validators.is_empty() {
        return Err(ValidationError::NoValidators);
    }
    let mut keys: BTreeMap<PublicKey, &str> = BTreeMap::new();
    let mut total: u128 = 0;
    for (index, validator) in genesis.validators.iter().enumerate() {
        let name = validator.name.as_str();
        check_name(name, "validators", index)?;
        check_key(&validator.public_key, "validators", index, name)?;
        if let Some(first) = keys.insert(validator.public_key, name) {
            return Err(ValidationError::DuplicateValidatorKey {
                key: validator.public_key,
                first: first.to_owned(),
                second: name.to_owned(),
            });
        }
        nodes.add(name, &validator.peer_id, &validator.address)?;
        if validator.voting_power == 0 {
            return Err(ValidationError::ZeroVotingPower {
                validator: name.to_owned(),
            });
        }
        total += u128::from(validator.voting_power);
    }
    if total > u128::from(MAX_TOTAL_VOTING_POWER) {
        return Err(ValidationError::VotingPowerOverflow {
            total,
            max: MAX_TOTAL_VOTING_POWER,
        });
    }
    Ok(())
}

/// Names and peer ids are shared by validators and observers: both are nodes
/// that peers admit by peer id, and operators tell them apart by name.
#[derive(Default)]
struct NodeNames<'a> {
    names: BTreeSet<&'a str>,
    peer_ids: BTreeMap<&'a str, &'a str>,
}

impl<'a> NodeNames<'a> {
    fn add(
        &mut self,
        name: &'a str,
        peer_id: &'a str,
        address: &'a str,
    ) -> Result<(), ValidationError> {
        if !self.names.insert(name) {
            return Err(ValidationError::DuplicateNodeName {
                name: name.to_owned(),
            });
        }
        if peer_id.is_empty() || !peer_id.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return Err(ValidationError::InvalidPeerId {
                node: name.to_owned(),
                peer_id: peer_id.to_owned(),
            });
        }
        if let Some(first) = self.peer_ids.insert(peer_id, name) {
            return Err(ValidationError::DuplicatePeerId {
                peer_id: peer_id.to_owned(),
                first: first.to_owned(),
                second: name.to_owned(),
            });
        }
        let shaped_like_multiaddr = address.len() > 1
            && address.starts_with('/')
            && !address.chars().any(char::is_whitespace);
        if !shaped_like_multiaddr {
            return Err(ValidationError::InvalidAddress {
                node: name.to_owned(),
                address: address.to_owned(),
            });
        }
        Ok(())
    }
}

fn check_participants(genesis: &Genesis) -> Result<(), ValidationError> {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    let mut keys: BTreeMap<PublicKey, &str> = BTreeMap::new();
    let mut has_operator = false;
    for (index, participant) in genesis.participants.iter().enumerate() {
        let name = participant.name.as_str();
        check_name(name, "participants", index)?;
        if !names.insert(name) {
            return Err(ValidationError::DuplicateParticipantName {
                name: name.to_owned(),
            });
        }
        check_key(&participant.public_key, "participants", index, name)?;
        if let Some(first) = keys.insert(participant.public_key, name) {
            return Err(ValidationError::DuplicateParticipantKey {
                key: participant.public_key,
                first: first.to_owned(),
                second: name.to_owned(),
            });
        }
        if participant.roles.is_empty() {
            return Err(ValidationError::NoRoles {
                participant: name.to_owned(),
            });
        }
        for (position, role) in participant.roles.iter().enumerate() {
            if !is_role_name(role) {
                return Err(ValidationError::UnknownRole {
                    participant: name.to_owned(),
                    role: role.clone(),
                });
            }
            if participant.roles[..position].contains(role) {
                return Err(ValidationError::DuplicateRole {
                    participant: name.to_owned(),
                    role: role.clone(),
                });
            }
        }
        has_operator |= participant.roles.iter().any(|role| role == OPERATOR);
    }
    if !has_operator {
        return Err(ValidationError::NoOperator);
    }
    Ok(())
}

fn check_consensus_params(genesis: &Genesis) -> Result<(), ValidationError> {
    let params = &genesis.consensus;
    let timeouts = [
        ("timeout_propose_ms", Some(params.timeout_propose_ms)),
        ("timeout_prevote_ms", Some(params.timeout_prevote_ms)),
        ("timeout_precommit_ms", Some(params.timeout_precommit_ms)),
        // Without growth, a network slower than the base timeouts would never decide.
        ("timeout_delta_ms", Some(params.timeout_delta_ms)),
        ("heartbeat_interval_ms", params.heartbeat_interval_ms),
    ];
    if let Some((param, _)) = timeouts.iter().find(|(_, value)| *value == Some(0)) {
        return Err(ValidationError::ZeroTimeout { param });
    }
    let limits = [
        ("max_block_txs", params.max_block_txs),
        ("max_block_bytes", params.max_block_bytes),
    ];
    if let Some((param, _)) = limits.iter().find(|(_, value)| *value == 0) {
        return Err(ValidationError::ZeroBlockLimit { param });
    }
    Ok(())
}

fn check_name(name: &str, list: &str, index: usize) -> Result<(), ValidationError> {
    if name.trim().is_empty() {
        return Err(ValidationError::EmptyName {
            field: format!("{list}[{index}].name"),
        });
    }
    Ok(())
}

/// Well-formed hex is not enough: the bytes must be a curve point, and not one
/// of small order, for which signatures prove nothing about who signed.
fn check_key(
    key: &PublicKey,
    list: &str,
    index: usize,
    entry: &str,
) -> Result<(), ValidationError> {
    let reason = match key.verifying_key() {
        Err(_) => "not a point on the ed25519 curve",
        Ok(point) if point.is_weak() => "a small-order (weak) ed25519 point",
        Ok(_) => return Ok(()),
    };
    Err(ValidationError::BadKey {
        field: format!("{list}[{index}].public_key"),
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    })
}
