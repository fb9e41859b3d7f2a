//! Per-validator verdicts on proposed blocks: what each validator answers to
//! `Output::CheckValidity`.
//!
//! In the real node a validator judges a block only once it holds the block's
//! true body. Until then it either waits (no answer: the block is being
//! fetched) or, having received a tampered body, answers invalid; when the
//! true body arrives it answers again, with the block's real validity.
//! Validators that hold the true body always agree, because validity is a
//! function of the body.
//!
//! Here each (validator, value) pair gets a [`BodyPlan`] the first time the
//! validator is asked: from a body strategy of the proposer (`byzantine`), or
//! drawn from the scenario's [`ValidityModel`] (honest proposals, whose
//! bodies may simply travel slowly), or held at once. The plan, not the
//! question's timing, fixes when the body arrives, so a validator that
//! restarts and asks again gets a consistent story.
//!
//! Byzantine validators always answer the truth at once: their engines only
//! keep pace with the protocol. Nothing here decides what a block's real
//! validity is; that is the simulated application in `mod.rs`.

use consensus::{Height, Input, Round};
use crypto::Hash;

use super::{Event, Sim};

/// What a validator that does not hold the true body answers meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meanwhile {
    /// Nothing: it is still fetching the body.
    Silent,
    /// Invalid: the body it received does not make a valid block.
    Invalid,
}

/// When a validator holds the true body of one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyPlan {
    /// Simulated time the true body arrives; `None`: never.
    pub arrives_at_ms: Option<u64>,
    pub meanwhile: Meanwhile,
}

impl BodyPlan {
    /// The validator holds the true body already.
    pub const HELD: BodyPlan = BodyPlan {
        arrives_at_ms: Some(0),
        meanwhile: Meanwhile::Silent,
    };
}

/// How bodies of honest proposals reach honest validators. Bodies of honest
/// proposals always arrive (eventual delivery); only when varies.
#[derive(Clone, Copy, Debug)]
pub struct ValidityModel {
    /// Per mille of (validator, value) pairs whose body is late when the
    /// validator is first asked.
    pub late_per_mille: u64,
    /// Per mille of late pairs that wait silently; the others first answer invalid.
    pub silent_per_mille: u64,
    pub min_late_ms: u64,
    pub max_late_ms: u64,
}

impl ValidityModel {
    /// Every validator holds every body when asked.
    pub fn immediate() -> ValidityModel {
        ValidityModel {
            late_per_mille: 0,
            silent_per_mille: 0,
            min_late_ms: 0,
            max_late_ms: 0,
        }
    }

    /// A third of the verdicts are late, by up to a few rounds' timeouts;
    /// half of those first say invalid.
    pub fn disagreeing() -> ValidityModel {
        ValidityModel {
            late_per_mille: 333,
            silent_per_mille: 500,
            min_late_ms: 50,
            max_late_ms: 2_000,
        }
    }
}

impl Sim<'_> {
    /// Schedules `node`'s answer(s) to `CheckValidity` for `value`.
    pub(super) fn check_validity(
        &mut self,
        node: usize,
        height: Height,
        round: Round,
        value: Hash,
    ) {
        let incarnation = self.nodes[node].incarnation;
        let delay = self.rng.between(1, 20);
        let answer = |tampered| Event::Validity {
            node,
            incarnation,
            height,
            round,
            value,
            tampered,
        };
        let plan = if self.is_honest(node) {
            self.body_plan(node, value)
        } else {
            BodyPlan::HELD
        };
        match plan.arrives_at_ms {
            Some(at) if at <= self.now => self.at(self.now + delay, answer(false)),
            arrives => {
                self.report.late_verdicts += 1;
                if plan.meanwhile == Meanwhile::Invalid {
                    self.at(self.now + delay, answer(true));
                }
                // Same delay as the invalid answer: the valid one comes after it.
                if let Some(at) = arrives {
                    self.at(at + delay, answer(false));
                }
            }
        }
    }

    /// The plan for `node` and `value`, drawn from the model on first use.
    fn body_plan(&mut self, node: usize, value: Hash) -> BodyPlan {
        if let Some(plan) = self.bodies.get(&(node, value)) {
            return *plan;
        }
        let model = self.scenario.validity;
        let plan = if model.late_per_mille > 0 && self.validity_rng.chance(model.late_per_mille) {
            let meanwhile = if self.validity_rng.chance(model.silent_per_mille) {
                Meanwhile::Silent
            } else {
                Meanwhile::Invalid
            };
            let late = self
                .validity_rng
                .between(model.min_late_ms, model.max_late_ms);
            BodyPlan {
                arrives_at_ms: Some(self.now + late),
                meanwhile,
            }
        } else {
            BodyPlan::HELD
        };
        self.bodies.insert((node, value), plan);
        plan
    }

    /// A body strategy decided when `peer` holds `value`'s body. A plan
    /// already made stands: a validator that holds a body keeps it.
    pub(super) fn plan_body(&mut self, peer: usize, value: Hash, plan: BodyPlan) {
        self.bodies.entry((peer, value)).or_insert(plan);
    }

    /// Delivers one verdict: the truth, or invalid for a tampered body.
    pub(super) fn answer_validity(
        &mut self,
        node: usize,
        height: Height,
        round: Round,
        value: Hash,
        tampered: bool,
    ) {
        let truth = self.values.get(&value) == Some(&(height, true));
        let valid = !tampered && truth;
        if truth && !valid {
            self.report.misjudged += 1;
        }
        self.told.insert((node, value), valid);
        self.handle(
            node,
            Input::ProposalValidity {
                height,
                round,
                value,
                valid,
            },
        );
    }

    /// An honest validator decides by consensus only a value whose last
    /// verdict it was given was valid (or that it built itself).
    pub(super) fn check_told_valid(&mut self, node: usize, height: Height, value: Hash) {
        let told = self.told.get(&(node, value)).copied();
        if told != Some(true) {
            self.violation(format!(
                "validator {node} decided {value:?} at height {height} though its last verdict on it was {told:?}"
            ));
        }
    }
}
