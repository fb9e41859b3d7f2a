//! What a simulation run is given (validators, Byzantine behaviours, twinned
//! keys, how block bodies reach validators, network, partitions, crashes,
//! restarts, timeouts) and what it reports
//! (decisions, violations, counters). The run itself is in `mod.rs`.

use std::collections::{BTreeMap, BTreeSet};

use consensus::{EngineStats, Height, Round, TimeoutConfig, Validator, ValidatorSet};
use crypto::{Hash, PublicKey};

use super::byzantine::Behaviour;
use super::membership::Membership;
use super::rng::Rng;
use super::validity::ValidityModel;
use super::{Sim, key};

#[derive(Clone, Debug)]
pub struct NetworkConfig {
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    pub drop_per_mille: u64,
    pub duplicate_per_mille: u64,
}

impl NetworkConfig {
    /// Delays sometimes longer than the first rounds' timeouts, 3% drops, 3% duplicates.
    pub fn hostile() -> NetworkConfig {
        NetworkConfig {
            min_delay_ms: 1,
            max_delay_ms: 250,
            drop_per_mille: 30,
            duplicate_per_mille: 30,
        }
    }

    /// Timely, loses nothing, still reorders and duplicates.
    pub fn reliable() -> NetworkConfig {
        NetworkConfig {
            min_delay_ms: 1,
            max_delay_ms: 60,
            drop_per_mille: 0,
            duplicate_per_mille: 20,
        }
    }
}

/// Nodes in different groups cannot reach each other from `from_ms` until `until_ms`.
#[derive(Clone, Debug)]
pub struct Partition {
    pub from_ms: u64,
    pub until_ms: u64,
    pub groups: Vec<Vec<usize>>,
}

/// A validator stops at `at_ms` (losing everything but its safety record and
/// committed blocks) and, if `restart_at_ms`, comes back then.
#[derive(Clone, Debug)]
pub struct Crash {
    pub node: usize,
    pub at_ms: u64,
    pub restart_at_ms: Option<u64>,
}

/// `node` crashes between any two outputs it carries out with probability
/// `per_mille_per_output`, and restarts after a random downtime.
#[derive(Clone, Debug)]
pub struct RandomRestarts {
    pub node: usize,
    pub per_mille_per_output: u64,
    pub min_down_ms: u64,
    pub max_down_ms: u64,
    pub max_restarts: u32,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub validators: usize,
    /// `key(i).public()`, computed once: deriving keys is not free.
    pub public_keys: Vec<PublicKey>,
    pub byzantine: Vec<(usize, Behaviour)>,
    /// Validators whose key a second instance also runs (Twins). Instance
    /// `validators + j` runs the key of `twins[j]`; both instances are
    /// honest engines but count as Byzantine.
    pub twins: Vec<usize>,
    /// How bodies of honest proposals reach honest validators.
    pub validity: ValidityModel,
    /// Run until every honest validator that is up has decided heights 1..=target.
    pub target_height: u64,
    pub max_time_ms: u64,
    pub max_events: u64,
    pub network: NetworkConfig,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<Crash>,
    pub random_restarts: Option<RandomRestarts>,
    pub timeouts: TimeoutConfig,
    /// Voting powers differ from height to height (all-honest scenarios only).
    pub powers_change_per_height: bool,
    /// Validators join, leave, change power and rotate keys at heights
    /// (`membership`); `validators` is then the pool of nodes.
    pub membership: Option<Membership>,
    pub sync_interval_ms: u64,
}

impl Scenario {
    pub fn new(seed: u64, validators: usize) -> Scenario {
        Scenario {
            seed,
            validators,
            public_keys: (0..validators).map(|i| key(i).public()).collect(),
            byzantine: Vec::new(),
            twins: Vec::new(),
            validity: ValidityModel::immediate(),
            target_height: 3,
            max_time_ms: 600_000,
            max_events: 2_000_000,
            network: NetworkConfig::hostile(),
            partitions: Vec::new(),
            crashes: Vec::new(),
            random_restarts: None,
            timeouts: TimeoutConfig {
                propose_ms: 300,
                propose_delta_ms: 100,
                prevote_ms: 150,
                prevote_delta_ms: 100,
                precommit_ms: 150,
                precommit_delta_ms: 100,
                rebroadcast_ms: 1_000,
            },
            powers_change_per_height: false,
            membership: None,
            sync_interval_ms: 1_000,
        }
    }

    /// Gives `behaviours` to distinct validators chosen by the seed.
    pub fn with_byzantine(mut self, behaviours: &[Behaviour]) -> Scenario {
        let mut rng = Rng::new(self.seed ^ 0xB1A5);
        let chosen = rng.pick_distinct(self.validators, behaviours.len());
        self.byzantine = chosen.into_iter().zip(behaviours.iter().copied()).collect();
        self
    }

    /// One partition that heals, starting at a seeded time in
    /// `start_ms`, splitting the validators into two seeded groups.
    pub fn with_random_partition(
        mut self,
        start_ms: (u64, u64),
        min_len_ms: u64,
        max_len_ms: u64,
    ) -> Scenario {
        let mut rng = Rng::new(self.seed ^ 0x9A27);
        let order = rng.pick_distinct(self.validators, self.validators);
        let cut = rng.between(1, self.validators as u64 - 1) as usize;
        let from_ms = rng.between(start_ms.0, start_ms.1);
        let until_ms = from_ms + rng.between(min_len_ms, max_len_ms);
        self.partitions.push(Partition {
            from_ms,
            until_ms,
            groups: vec![order[..cut].to_vec(), order[cut..].to_vec()],
        });
        self
    }

    /// Twins: each twinned key runs twice, its instances in different groups
    /// of a partition that heals at a seeded time in `heal_ms`; the other
    /// validators are split between the groups by the seed.
    pub fn with_twins(mut self, twinned: &[usize], heal_ms: (u64, u64)) -> Scenario {
        let mut rng = Rng::new(self.seed ^ 0x7715);
        self.twins = twinned.to_vec();
        let mut others: Vec<usize> = (0..self.validators)
            .filter(|i| !twinned.contains(i))
            .collect();
        let order = rng.pick_distinct(others.len(), others.len());
        others = order.into_iter().map(|i| others[i]).collect();
        let cut = rng.between(0, others.len() as u64) as usize;
        let mut first = twinned.to_vec();
        first.extend_from_slice(&others[..cut]);
        let mut second: Vec<usize> = (0..twinned.len()).map(|j| self.validators + j).collect();
        second.extend_from_slice(&others[cut..]);
        self.partitions.push(Partition {
            from_ms: 0,
            until_ms: rng.between(heal_ms.0, heal_ms.1),
            groups: vec![first, second],
        });
        self
    }

    /// Validator instances: one per validator, plus one per twinned key.
    pub fn nodes(&self) -> usize {
        self.validators + self.twins.len()
    }

    /// The validator whose key instance `node` runs.
    pub fn key_of(&self, node: usize) -> usize {
        match node.checked_sub(self.validators) {
            Some(j) => self.twins[j],
            None => node,
        }
    }

    pub fn behaviour(&self, node: usize) -> Option<Behaviour> {
        if node >= self.validators || self.twins.contains(&node) {
            return Some(Behaviour::Twin);
        }
        self.byzantine
            .iter()
            .find(|(i, _)| *i == node)
            .map(|(_, b)| *b)
    }

    pub fn validator_set(&self, height: Height) -> ValidatorSet {
        if let Some(membership) = &self.membership {
            return membership.validator_set(height);
        }
        ValidatorSet::new((0..self.validators).map(|i| Validator {
            public_key: self.public_keys[i],
            power: if self.powers_change_per_height {
                1 + (i as u64 + height.0) % 3
            } else {
                1
            },
        }))
        .expect("simulated validator sets are valid")
    }

    pub fn run(&self) -> Report {
        Sim::new(self).run()
    }
}

#[derive(Clone, Debug)]
pub struct DecisionRecord {
    pub node: usize,
    pub height: Height,
    pub round: Round,
    pub value: Hash,
    pub at_ms: u64,
    pub via_sync: bool,
}

/// The state of the honest validators when a partition healed.
#[derive(Clone, Debug)]
pub struct HealSnapshot {
    pub at_ms: u64,
    pub max_round: Round,
    pub max_height: Height,
}

#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub honest: Vec<usize>,
    pub decisions: Vec<DecisionRecord>,
    pub violations: Vec<String>,
    /// Every honest validator that is up reached the target height.
    pub finished: bool,
    pub messages_delivered: u64,
    pub events: u64,
    pub time_ms: u64,
    pub signed_by_honest: u64,
    pub restarts: u32,
    /// Verdicts asked of honest validators that did not hold the true body yet.
    pub late_verdicts: u64,
    /// Verdicts "invalid" given to honest validators on values that are valid.
    pub misjudged: u64,
    pub evidence_against: BTreeSet<usize>,
    pub heals: Vec<HealSnapshot>,
    /// Engines replaced for a rotated key (`membership`).
    pub rotations: u32,
    /// Final engine counters per validator (`None` if down at the end).
    pub stats: Vec<Option<EngineStats>>,
}

impl Report {
    pub fn heights_decided(&self) -> u64 {
        self.decisions
            .iter()
            .map(|d| d.height)
            .collect::<BTreeSet<_>>()
            .len() as u64
    }

    /// The safety properties held (they are checked during the run).
    pub fn safe(&self) -> Result<(), String> {
        match self.violations.first() {
            Some(v) => Err(format!("{v} (seed {}, t = {} ms)", self.seed, self.time_ms)),
            None => Ok(()),
        }
    }

    /// Safe, and every honest validator reached the target.
    pub fn safe_and_finished(&self) -> Result<(), String> {
        self.safe()?;
        if !self.finished {
            let mut reached: BTreeMap<usize, Height> = BTreeMap::new();
            for d in &self.decisions {
                let e = reached.entry(d.node).or_default();
                *e = (*e).max(d.height);
            }
            return Err(format!(
                "not every honest validator reached the target by t = {} ms ({} events); reached: {reached:?}",
                self.time_ms, self.events
            ));
        }
        Ok(())
    }
}
