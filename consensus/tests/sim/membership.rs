//! Validator sets that change at heights, as the ledger's governance
//! changes them: validators join, leave, change power and rotate their
//! consensus keys, each change in force from a given height, while
//! Byzantine validators come and go with the rest.
//!
//! A [`Membership`] is a pool of nodes (each one validator's machine) and a
//! schedule: the set in force from each height on. A node outside the set
//! at a height follows it like an observer; a node whose key was rotated
//! signs with the new key from the rotation's height (the simulator gives
//! it a fresh engine for the new key, see `Sim::start_height`).
//!
//! [`Membership::random`] draws a schedule from a seed under the rules the
//! ledger enforces (at least 4 validators after a removal, a removal or
//! power cut keeps more than 2/3 of the power) plus the one BFT needs of
//! every set: Byzantine validators hold less than a third of its power.
//! The simulator does not re-derive the schedule from transactions: it
//! takes it as given, as the node takes each height's set from the ledger.

use std::collections::BTreeMap;

use consensus::{Height, Validator, ValidatorSet};
use crypto::{Keypair, PublicKey};

use super::key;
use super::rng::Rng;

/// The first key index given to a rotated key (`key(ROTATED + r)`), far
/// from the pool's own indices.
const ROTATED: usize = 1_000;

/// One validator of a set: the node that runs it, the index of its key
/// (`sim::key(index)`) and its power.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub node: usize,
    pub key: usize,
    pub power: u64,
}

/// A change, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Add { node: usize, power: u64 },
    Remove { node: usize },
    SetPower { node: usize, power: u64 },
    RotateKey { node: usize, key: usize },
}

#[derive(Clone, Debug)]
pub struct Membership {
    /// The set in force from each height on; the first is from height 1.
    pub schedule: Vec<(Height, Vec<Member>)>,
    pub changes: Vec<(Height, Change)>,
    /// Each key index's public key, computed once.
    keys: BTreeMap<usize, Keypair>,
}

impl Membership {
    /// The members in force at `height`.
    pub fn members_at(&self, height: Height) -> &[Member] {
        let index = self
            .schedule
            .partition_point(|(from, _)| *from <= height)
            .max(1);
        &self.schedule[index - 1].1
    }

    pub fn validator_set(&self, height: Height) -> ValidatorSet {
        ValidatorSet::new(self.members_at(height).iter().map(|member| Validator {
            public_key: self.keys[&member.key].public(),
            power: member.power,
        }))
        .expect("scheduled sets are valid")
    }

    /// The key `node` signs with at `height`: its key in the set in force,
    /// or, outside the set, the last key it had (its first one before it
    /// ever joined).
    pub fn key_of(&self, node: usize, height: Height) -> &Keypair {
        let mut current = node;
        for (from, members) in &self.schedule {
            if *from > height {
                break;
            }
            if let Some(member) = members.iter().find(|m| m.node == node) {
                current = member.key;
            }
        }
        &self.keys[&current]
    }

    /// Every key any node ever has, with its node.
    pub fn all_keys(&self) -> impl Iterator<Item = (PublicKey, usize)> + '_ {
        self.schedule.iter().flat_map(move |(_, members)| {
            members
                .iter()
                .map(move |m| (self.keys[&m.key].public(), m.node))
        })
    }

    /// A given schedule (the first set from height 1), every key a pool
    /// key: for scenarios that need one exact history.
    pub fn fixed(schedule: Vec<(Height, Vec<Member>)>) -> Membership {
        let keys = schedule
            .iter()
            .flat_map(|(_, members)| members.iter().map(|m| (m.key, key(m.key))))
            .collect();
        Membership {
            schedule,
            changes: Vec::new(),
            keys,
        }
    }

    /// A seeded schedule over `pool` nodes, starting with 4 to `pool - 1`
    /// members and changing at random heights up to `last_change`; the
    /// `byzantine` nodes hold less than a third of the power of every set.
    pub fn random(seed: u64, pool: usize, byzantine: &[usize], last_change: u64) -> Membership {
        let mut rng = Rng::new(seed ^ 0x6E7B_E125);
        let mut keys: BTreeMap<usize, Keypair> = (0..pool).map(|i| (i, key(i))).collect();
        let initial = loop {
            let count = rng.between(4, pool as u64 - 1) as usize;
            let members: Vec<Member> = rng
                .pick_distinct(pool, count)
                .into_iter()
                .map(|node| Member {
                    node,
                    key: node,
                    power: rng.between(1, 3),
                })
                .collect();
            if tolerated(&members, byzantine) {
                break members;
            }
        };
        // The key each node last had: a node that comes back uses it.
        let mut last_keys: BTreeMap<usize, usize> = (0..pool).map(|node| (node, node)).collect();
        let mut schedule = vec![(Height(1), initial)];
        let mut changes = Vec::new();
        let mut height = 1;
        let mut rotations = 0;
        loop {
            height += rng.between(1, 3);
            if height > last_change {
                break;
            }
            let current = schedule.last().expect("an initial set").1.clone();
            // A few tries for a change the rules allow; else none here.
            for _ in 0..8 {
                let drawn = draw(&mut rng, &current, pool, &last_keys, &mut rotations);
                let Some((next, change)) = drawn else {
                    continue;
                };
                if allowed(&current, &next) && tolerated(&next, byzantine) {
                    if let Change::RotateKey { node, key: index } = change {
                        keys.insert(index, key(index));
                        last_keys.insert(node, index);
                    }
                    schedule.push((Height(height), next));
                    changes.push((Height(height), change));
                    break;
                }
            }
        }
        Membership {
            schedule,
            changes,
            keys,
        }
    }
}

/// One random change of `current`, and the set after it.
fn draw(
    rng: &mut Rng,
    current: &[Member],
    pool: usize,
    last_keys: &BTreeMap<usize, usize>,
    rotations: &mut usize,
) -> Option<(Vec<Member>, Change)> {
    let mut next = current.to_vec();
    let chosen = rng.index(current.len());
    let change = match rng.index(4) {
        0 => {
            let outside: Vec<usize> = (0..pool)
                .filter(|node| current.iter().all(|m| m.node != *node))
                .collect();
            if outside.is_empty() {
                return None;
            }
            let node = outside[rng.index(outside.len())];
            let power = rng.between(1, 3);
            // A node comes back with the last key it had.
            next.push(Member {
                node,
                key: last_keys[&node],
                power,
            });
            Change::Add { node, power }
        }
        1 => {
            let node = next.remove(chosen).node;
            Change::Remove { node }
        }
        2 => {
            let power = rng.between(1, 4);
            if power == next[chosen].power {
                return None;
            }
            next[chosen].power = power;
            Change::SetPower {
                node: next[chosen].node,
                power,
            }
        }
        _ => {
            *rotations += 1;
            let key = ROTATED + *rotations;
            next[chosen].key = key;
            Change::RotateKey {
                node: next[chosen].node,
                key,
            }
        }
    };
    Some((next, change))
}

/// The ledger's rules for a change: at least 4 validators after a removal,
/// and the validators that stay keep more than 2/3 of the power.
fn allowed(current: &[Member], next: &[Member]) -> bool {
    let total: u64 = current.iter().map(|m| m.power).sum();
    let kept: u64 = current
        .iter()
        .map(|m| {
            next.iter()
                .find(|n| n.node == m.node)
                .map_or(0, |n| n.power.min(m.power))
        })
        .sum();
    next.len() >= 4.min(current.len()) && kept * 3 > total * 2
}

/// Byzantine members hold less than a third of the power.
fn tolerated(members: &[Member], byzantine: &[usize]) -> bool {
    let total: u64 = members.iter().map(|m| m.power).sum();
    let faulty: u64 = members
        .iter()
        .filter(|m| byzantine.contains(&m.node))
        .map(|m| m.power)
        .sum();
    faulty * 3 < total
}
