//! Height, round and step: the coordinates of every consensus message.
//!
//! They are newtypes so that a height can never be passed where a round is
//! expected. This module holds no logic beyond ordering and successor
//! functions; what a step *means* is in `engine::rules`.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::Domain;
use serde::{Deserialize, Serialize};

/// A block height: the index of the instance of consensus that decides one block.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Height(pub u64);

impl Height {
    /// The next height. 2^64 blocks cannot be reached, so overflow is a bug.
    pub fn next(self) -> Height {
        Height(self.0.checked_add(1).expect("height cannot reach 2^64"))
    }
}

/// A round within one height. Round 0 is the first attempt to decide.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Round(pub u32);

impl Round {
    pub const ZERO: Round = Round(0);

    /// The next round. Saturates: a round number near 2^32 is only reachable
    /// through far-future messages, which the engine refuses beforehand.
    pub fn next(self) -> Round {
        Round(self.0.saturating_add(1))
    }
}

impl fmt::Debug for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The step of a round, in the order a validator goes through them. The
/// derived order is relied upon: the safety record refuses to sign at an
/// earlier (height, round, step) than the last signature.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Propose,
    Prevote,
    Precommit,
}

/// The two kinds of vote.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    Prevote,
    Precommit,
}

impl VoteKind {
    /// The step in which a vote of this kind is signed.
    pub fn step(self) -> Step {
        match self {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        }
    }

    /// The signing domain: a prevote signature can never pass as a precommit.
    pub fn domain(self) -> Domain {
        match self {
            VoteKind::Prevote => Domain::Prevote,
            VoteKind::Precommit => Domain::Precommit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_ordered_as_a_round_proceeds() {
        assert!(Step::Propose < Step::Prevote);
        assert!(Step::Prevote < Step::Precommit);
    }

    #[test]
    fn round_successor_saturates_instead_of_wrapping() {
        assert_eq!(Round(u32::MAX).next(), Round(u32::MAX));
        assert_eq!(Round(3).next(), Round(4));
        assert_eq!(Height(9).next(), Height(10));
    }
}
