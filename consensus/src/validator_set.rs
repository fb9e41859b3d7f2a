//! The validators of one height: their public keys and voting power, the
//! quorum thresholds, and the deterministic proposer of each round.
//!
//! The engine receives a `ValidatorSet` with every height it starts, so a
//! change of the set between heights (decided by the ledger) needs no change
//! here. This module does not decide *how* the set changes.
//!
//! Proposer selection is a weighted round robin that depends only on the set
//! and on (height, round): every validator with power `p` proposes exactly `p`
//! times in any window of `total_power` consecutive slots, spread evenly
//! (occurrence `k` of a validator of power `p` sits at time `(2k+1)/(2p)` of
//! the period, the Sainte-Laguë sequence; ties go to the lower key). The slot of
//! (height, round) is `(height + round) mod total_power`, computed in
//! O(n² log p) without walking the schedule, so large powers cost nothing.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::types::{Height, Round};

/// Keeps `2 * total_power` and `(2k+1) * power` products far from overflow.
pub const MAX_TOTAL_POWER: u64 = u64::MAX / 8;

/// One validator: a public key and its voting power.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Validator {
    pub public_key: PublicKey,
    pub power: u64,
}

/// Why a list of validators is not a usable set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("a validator set needs at least one validator")]
    Empty,
    #[error("validator {validator} has zero voting power")]
    ZeroPower { validator: PublicKey },
    #[error("validator {validator} is listed twice")]
    DuplicateValidator { validator: PublicKey },
    #[error("total voting power exceeds the maximum of {max}")]
    TotalPowerTooLarge { max: u64 },
}

/// A validated, canonical set of validators: sorted by public key, no
/// duplicates, every power positive, total power at most [`MAX_TOTAL_POWER`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Validator>", into = "Vec<Validator>")]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
}

impl ValidatorSet {
    /// Validates and sorts the validators. The input order does not matter:
    /// two nodes given the same validators in different orders agree on
    /// proposers and on the encoding.
    pub fn new(
        validators: impl IntoIterator<Item = Validator>,
    ) -> Result<ValidatorSet, ValidatorSetError> {
        let mut validators: Vec<Validator> = validators.into_iter().collect();
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        validators.sort_by_key(|v| v.public_key);
        let mut total: u64 = 0;
        for (i, validator) in validators.iter().enumerate() {
            if validator.power == 0 {
                return Err(ValidatorSetError::ZeroPower {
                    validator: validator.public_key,
                });
            }
            if i > 0 && validators[i - 1].public_key == validator.public_key {
                return Err(ValidatorSetError::DuplicateValidator {
                    validator: validator.public_key,
                });
            }
            total = total
                .checked_add(validator.power)
                .filter(|t| *t <= MAX_TOTAL_POWER)
                .ok_or(ValidatorSetError::TotalPowerTooLarge {
                    max: MAX_TOTAL_POWER,
                })?;
        }
        Ok(ValidatorSet {
            validators,
            total_power: total,
        })
    }

    /// The validators, sorted by public key.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// More than two thirds of the total power: the smallest power that any
    /// two quorums share more than a third of, hence at least one honest
    /// validator when at most a third is Byzantine.
    pub fn quorum_power(&self) -> u64 {
        self.total_power * 2 / 3 + 1
    }

    /// More than one third of the total power ("f + 1"): enough to contain at
    /// least one honest validator.
    pub fn f_plus_one_power(&self) -> u64 {
        self.total_power / 3 + 1
    }

    /// The validator with this key, if any.
    pub fn get(&self, key: &PublicKey) -> Option<&Validator> {
        self.validators
            .binary_search_by_key(key, |v| v.public_key)
            .ok()
            .map(|i| &self.validators[i])
    }

    pub fn power_of(&self, key: &PublicKey) -> Option<u64> {
        self.get(key).map(|v| v.power)
    }

    pub fn contains(&self, key: &PublicKey) -> bool {
        self.get(key).is_some()
    }

    /// The proposer of `round` at `height`: weighted round robin, see the
    /// module documentation.
    pub fn proposer(&self, height: Height, round: Round) -> &Validator {
        let slot = (u128::from(height.0) + u128::from(round.0)) % u128::from(self.total_power);
        for (i, validator) in self.validators.iter().enumerate() {
            // The largest occurrence k of validator i whose rank is <= slot.
            if self.occurrence_rank(i, 0) > slot {
                continue;
            }
            let (mut low, mut high) = (0u64, validator.power - 1);
            while low < high {
                let middle = low + (high - low).div_ceil(2);
                if self.occurrence_rank(i, middle) <= slot {
                    low = middle;
                } else {
                    high = middle - 1;
                }
            }
            if self.occurrence_rank(i, low) == slot {
                return validator;
            }
        }
        unreachable!("every slot below total_power belongs to exactly one occurrence")
    }

    /// The position, within one period of the schedule, of occurrence `k` of
    /// validator `i`: the number of occurrences that come strictly before it.
    fn occurrence_rank(&self, i: usize, k: u64) -> u128 {
        let power_i = u128::from(self.validators[i].power);
        let mut rank = 0u128;
        for (j, other) in self.validators.iter().enumerate() {
            let power_j = u128::from(other.power);
            // Occurrence m of j is earlier when (2m+1)/(2 p_j) < (2k+1)/(2 p_i),
            // i.e. the odd number 2m+1 is below a / p_i with a = (2k+1) p_j.
            let a = (2 * u128::from(k) + 1) * power_j;
            let odd_numbers_below = (a - 1) / power_i;
            rank += (odd_numbers_below.div_ceil(2)).min(power_j);
            // Occurrences at exactly the same time go to the lower index.
            let tie = a % power_i == 0 && (a / power_i) % 2 == 1;
            if j < i && tie {
                rank += 1;
            }
        }
        rank
    }
}

impl TryFrom<Vec<Validator>> for ValidatorSet {
    type Error = ValidatorSetError;
    fn try_from(validators: Vec<Validator>) -> Result<Self, Self::Error> {
        ValidatorSet::new(validators)
    }
}

impl From<ValidatorSet> for Vec<Validator> {
    fn from(set: ValidatorSet) -> Self {
        set.validators
    }
}

impl fmt::Debug for ValidatorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorSet")
            .field("validators", &self.validators.len())
            .field("total_power", &self.total_power)
            .finish()
    }
}

/// Encoded as the sorted list of validators, so its hash is canonical.
impl BorshSerialize for ValidatorSet {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.validators, writer)
    }
}

/// Decoding validates like [`ValidatorSet::new`] and also refuses a list that
/// is not in canonical (sorted) order, so one set has one encoding.
impl BorshDeserialize for ValidatorSet {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let validators = Vec::<Validator>::deserialize_reader(reader)?;
        let set = ValidatorSet::new(validators.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        if set.validators != validators {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "validators are not sorted by public key",
            ));
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: u8) -> PublicKey {
        PublicKey([i; 32])
    }

    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet::new(powers.iter().enumerate().map(|(i, p)| Validator {
            public_key: key(i as u8 + 1),
            power: *p,
        }))
        .expect("valid test set")
    }

    #[test]
    fn thresholds_match_three_f_plus_one() {
        for (n, quorum, f_plus_one) in [
            (1, 1, 1),
            (3, 3, 2),
            (4, 3, 2),
            (7, 5, 3),
            (10, 7, 4),
            (100, 67, 34),
        ] {
            let s = set(&vec![1; n]);
            assert_eq!(
                (s.quorum_power(), s.f_plus_one_power()),
                (quorum, f_plus_one),
                "n = {n}"
            );
        }
    }

    #[test]
    fn invalid_sets_are_refused_with_the_reason() {
        assert_eq!(ValidatorSet::new([]), Err(ValidatorSetError::Empty));
        let zero = [Validator {
            public_key: key(1),
            power: 0,
        }];
        assert_eq!(
            ValidatorSet::new(zero),
            Err(ValidatorSetError::ZeroPower { validator: key(1) })
        );
        let twice = [
            Validator {
                public_key: key(1),
                power: 1,
            },
            Validator {
                public_key: key(1),
                power: 2,
            },
        ];
        assert_eq!(
            ValidatorSet::new(twice),
            Err(ValidatorSetError::DuplicateValidator { validator: key(1) })
        );
        let huge = [
            Validator {
                public_key: key(1),
                power: MAX_TOTAL_POWER,
            },
            Validator {
                public_key: key(2),
                power: 1,
            },
        ];
        assert_eq!(
            ValidatorSet::new(huge),
            Err(ValidatorSetError::TotalPowerTooLarge {
                max: MAX_TOTAL_POWER
            })
        );
    }

    #[test]
    fn equal_powers_give_plain_round_robin() {
        let s = set(&[1, 1, 1, 1]);
        let order: Vec<PublicKey> = (0..8)
            .map(|r| s.proposer(Height(0), Round(r)).public_key)
            .collect();
        let expected: Vec<PublicKey> = (0..8).map(|i| key(i % 4 + 1)).collect();
        assert_eq!(order, expected);
        // The next height starts one step further along the schedule.
        assert_eq!(s.proposer(Height(1), Round(0)).public_key, key(2));
    }

    #[test]
    fn weighted_schedule_is_spread_evenly() {
        // Power 2, 1, 1: the heavy validator proposes every other slot.
        let s = set(&[2, 1, 1]);
        let order: Vec<u8> = (0..4)
            .map(|r| s.proposer(Height(0), Round(r)).public_key.0[0])
            .collect();
        assert_eq!(order, vec![1, 2, 3, 1]);
    }

    #[test]
    fn large_powers_are_cheap() {
        let s = set(&[1 << 40, 3 << 38, 12345]);
        let p = s.proposer(Height(u64::MAX), Round(u32::MAX));
        assert!(s.contains(&p.public_key));
    }

    #[test]
    fn serde_and_borsh_round_trip_and_validate() {
        let s = set(&[3, 1, 2]);
        let bytes = borsh::to_vec(&s).unwrap();
        assert_eq!(borsh::from_slice::<ValidatorSet>(&bytes).unwrap(), s);
        // A zero-power validator cannot sneak in through decoding.
        let bad = borsh::to_vec(&vec![Validator {
            public_key: key(1),
            power: 0,
        }])
        .unwrap();
        assert!(borsh::from_slice::<ValidatorSet>(&bad).is_err());
        // Nor an unsorted list (one set, one encoding).
        let unsorted = borsh::to_vec(&vec![
            Validator {
                public_key: key(2),
                power: 1,
            },
            Validator {
                public_key: key(1),
                power: 1,
            },
        ])
        .unwrap();
        assert!(borsh::from_slice::<ValidatorSet>(&unsorted).is_err());
    }

    proptest! {
        /// Over one period every validator proposes exactly its power times.
        #[test]
        fn each_validator_proposes_its_power_per_period(powers in prop::collection::vec(1u64..12, 1..8), height in 0u64..1000) {
            let s = set(&powers);
            let mut counts = vec![0u64; powers.len()];
            for r in 0..s.total_power() {
                let p = s.proposer(Height(height), Round(r as u32));
                counts[(p.public_key.0[0] - 1) as usize] += 1;
            }
            prop_assert_eq!(counts, powers);
        }
    }
}
