//! A change of the validator set, and applying one to a set: the rules that
//! keep every set usable by consensus (see the module above for the list).
//!
//! [`ValidatorChange::apply`] is a pure function of the set and the change;
//! what a change needs from the rest of the state (whose account a new
//! consensus key is, whether a key is unused) is `execute::validators`'s.

use std::collections::BTreeSet;
use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::PublicKey;

use super::{MAX_TOTAL_POWER, MAX_VALIDATORS, MIN_VALIDATORS, PeerId, ValidatorInfo};
use crate::error::TxError;

/// Longest multiaddr recorded for a validator.
const MAX_ADDRESS_BYTES: usize = 256;

/// What a proposal changes. Validators are named by their consensus key in
/// the newest scheduled set.
#[derive(
    Clone,
    PartialEq,
    Eq,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ValidatorChange {
    /// A new member, or a former one coming back with its account's key.
    Add {
        name: String,
        consensus_key: PublicKey,
        peer_id: PeerId,
        /// The multiaddr its node listens on, e.g. `/ip4/10.0.0.5/tcp/26656`.
        address: String,
        power: u64,
    },
    Remove {
        consensus_key: PublicKey,
    },
    SetPower {
        consensus_key: PublicKey,
        power: u64,
    },
    /// The same validator (identity, name, node, power) signs with
    /// `new_key` from now on.
    RotateKey {
        old_key: PublicKey,
        new_key: PublicKey,
    },
}

impl ValidatorChange {
    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            ValidatorChange::Add { .. } => "add",
            ValidatorChange::Remove { .. } => "remove",
            ValidatorChange::SetPower { .. } => "set_power",
            ValidatorChange::RotateKey { .. } => "rotate_key",
        }
    }

    /// The rules that need nothing but the change: a name and an address
    /// of the right shape, a positive power, usable keys.
    pub fn check_stateless(&self) -> Result<(), TxError> {
        match self {
            ValidatorChange::Add {
                name,
                consensus_key,
                address,
                power,
                ..
            } => {
                crate::execute::check_text("validator name", name)?;
                check_address(address)?;
                check_power(*power)?;
                crate::execute::check_key("consensus key", consensus_key)
            }
            ValidatorChange::Remove { .. } => Ok(()),
            ValidatorChange::SetPower { power, .. } => check_power(*power),
            ValidatorChange::RotateKey { old_key, new_key } => {
                if old_key == new_key {
                    return Err(TxError::SameKey { key: *new_key });
                }
                crate::execute::check_key("new consensus key", new_key)
            }
        }
    }

    /// The set after the change, sorted by consensus key, or the rule the
    /// change breaks on `validators` (a set sorted by consensus key).
    /// `identity` is the account of an added validator; other changes keep
    /// the identities they find.
    pub fn apply(
        &self,
        validators: &[ValidatorInfo],
        identity: PublicKey,
    ) -> Result<Vec<ValidatorInfo>, TxError> {
        let total: u64 = validators.iter().map(|v| v.power).sum();
        let mut next = validators.to_vec();
        match self {
            ValidatorChange::Add {
                name,
                consensus_key,
                peer_id,
                address,
                power,
            } => {
                if validators.len() >= MAX_VALIDATORS {
                    return Err(TxError::TooManyValidators {
                        limit: MAX_VALIDATORS,
                    });
                }
                for v in validators {
                    if v.consensus_key == *consensus_key || v.identity == identity {
                        return Err(TxError::AlreadyValidator {
                            key: *consensus_key,
                            name: v.name.clone(),
                        });
                    }
                    if v.peer_id == *peer_id {
                        return Err(TxError::DuplicatePeerId {
                            peer_id: peer_id.to_string(),
                            validator: v.name.clone(),
                        });
                    }
                    if v.name == name.trim() {
                        return Err(TxError::DuplicateValidatorName {
                            name: v.name.clone(),
                        });
                    }
                }
                check_total(u128::from(total) + u128::from(*power))?;
                next.push(ValidatorInfo {
                    identity,
                    name: name.trim().to_string(),
                    consensus_key: *consensus_key,
                    peer_id: peer_id.clone(),
                    address: address.clone(),
                    power: *power,
                });
            }
            ValidatorChange::Remove { consensus_key } => {
                let index = position(validators, consensus_key)?;
                if validators.len() - 1 < MIN_VALIDATORS {
                    return Err(TxError::TooFewValidators {
                        remaining: validators.len() - 1,
                        min: MIN_VALIDATORS,
                    });
                }
                check_power_kept(validators[index].power, total)?;
                next.remove(index);
            }
            ValidatorChange::SetPower {
                consensus_key,
                power,
            } => {
                let index = position(validators, consensus_key)?;
                let old = validators[index].power;
                if old == *power {
                    return Err(TxError::PowerUnchanged {
                        key: *consensus_key,
                        power: *power,
                    });
                }
                if *power < old {
                    check_power_kept(old - power, total)?;
                }
                check_total(u128::from(total) - u128::from(old) + u128::from(*power))?;
                next[index].power = *power;
            }
            ValidatorChange::RotateKey { old_key, new_key } => {
                let index = position(validators, old_key)?;
                if let Some(holder) = validators.iter().find(|v| v.consensus_key == *new_key) {
                    return Err(TxError::AlreadyValidator {
                        key: *new_key,
                        name: holder.name.clone(),
                    });
                }
                next[index].consensus_key = *new_key;
            }
        }
        next.sort_by_key(|v| v.consensus_key);
        debug_assert_eq!(
            next.iter()
                .map(|v| v.consensus_key)
                .collect::<BTreeSet<_>>()
                .len(),
            next.len(),
            "consensus keys stay unique"
        );
        Ok(next)
    }
}

impl fmt::Display for ValidatorChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidatorChange::Add {
                name,
                consensus_key,
                power,
                ..
            } => write!(f, "add {name} ({consensus_key}) with power {power}"),
            ValidatorChange::Remove { consensus_key } => write!(f, "remove {consensus_key}"),
            ValidatorChange::SetPower {
                consensus_key,
                power,
            } => write!(f, "set the power of {consensus_key} to {power}"),
            ValidatorChange::RotateKey { old_key, new_key } => {
                write!(f, "rotate consensus key {old_key} to {new_key}")
            }
        }
    }
}

fn position(validators: &[ValidatorInfo], key: &PublicKey) -> Result<usize, TxError> {
    validators
        .binary_search_by_key(key, |v| v.consensus_key)
        .map_err(|_| TxError::UnknownValidator { key: *key })
}

fn check_power(power: u64) -> Result<(), TxError> {
    if power == 0 {
        return Err(TxError::ZeroVotingPower);
    }
    check_total(u128::from(power))
}

fn check_total(total: u128) -> Result<(), TxError> {
    if total > u128::from(MAX_TOTAL_POWER) {
        return Err(TxError::VotingPowerOverflow {
            total,
            max: MAX_TOTAL_POWER,
        });
    }
    Ok(())
}

/// Taking `removed` out of `total` must leave more than 2/3 of `total`.
fn check_power_kept(removed: u64, total: u64) -> Result<(), TxError> {
    let kept = u128::from(total - removed);
    if kept * 3 <= u128::from(total) * 2 {
        return Err(TxError::TooMuchPowerRemoved { removed, total });
    }
    Ok(())
}

/// A multiaddr's shape, as genesis checks it: starts with `/`, no
/// whitespace, at most 256 bytes. Parsing it is libp2p's job, in the node.
pub fn check_address(address: &str) -> Result<(), TxError> {
    let shaped = address.len() > 1
        && address.len() <= MAX_ADDRESS_BYTES
        && address.starts_with('/')
        && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    if !shaped {
        return Err(TxError::InvalidAddress {
            address: address.chars().take(80).collect(),
        });
    }
    Ok(())
}
