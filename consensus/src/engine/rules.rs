//! The consensus algorithm for one height: Algorithm 1 of "The latest gossip
//! on BFT consensus" (Buchman, Kwon, Milosevic, 2018, arXiv:1807.04938).
//! Each rule cites the paper's line numbers.
//!
//! The rules are "upon" conditions; after every input, [`HeightState::process`]
//! re-evaluates them until none fires, so the order in which messages arrive
//! does not matter. Departures from the paper, each harmless to safety:
//! - `getValue()` (line 17) is asynchronous: we emit `GetValue` and propose
//!   when the node answers; the proposer therefore also schedules the propose
//!   timeout (line 21), so a slow block builder costs one round, not liveness.
//! - The decision rule (line 49) needs the proposal only to learn `v`; here
//!   `v` is a block hash the node can resolve, so a precommit quorum for `v`
//!   and the node's verdict `valid(v)` suffice.
//! - Lines 52-54 (next height) are left to the node's `StartHeight`.
//! - Own messages are re-sent periodically (`Rebroadcast`), and a
//!   re-proposal travels with the prevotes of its proof of lock, standing in
//!   for the gossip layer the paper assumes.
//!
//! Message admission (signatures, membership, bounds) is in `intake`.

use std::collections::{BTreeMap, BTreeSet};

use crypto::{ChainId, Hash, PublicKey};

use crate::config::{EngineConfig, TimeoutKind};
use crate::engine::output::{Decision, Output, Timeout};
use crate::engine::stats::EngineStats;
use crate::messages::{ConsensusMessage, Proposal, SignedProposal, SignedVote, Vote};
use crate::safety::{GuardedSigner, RoundValue, SafetyRecord};
use crate::types::{Height, Round, Step, VoteKind};
use crate::validator_set::ValidatorSet;
use crate::votekeeper::VoteKeeper;

/// What the rules need from the engine besides the height's own state.
pub(crate) struct Context<'a> {
    pub chain_id: &'a ChainId,
    pub config: &'a EngineConfig,
    pub guard: &'a mut GuardedSigner,
    pub stats: &'a mut EngineStats,
}

/// "For the first time" conditions and per-round facts, reset by StartRound.
#[derive(Debug, Default)]
struct RoundFlags {
    proposed: bool,
    prevote_timeout_scheduled: bool,
    precommit_timeout_scheduled: bool,
    lock_rule_fired: bool,
}

/// Our own signed messages of the current round, for re-sending.
#[derive(Debug, Default)]
struct OwnMessages {
    proposal: Option<SignedProposal>,
    prevote: Option<SignedVote>,
    precommit: Option<SignedVote>,
}

/// The state of one height (`h_p` and everything reset at line 53).
#[derive(Debug)]
pub(crate) struct HeightState {
    pub height: Height,
    pub validators: ValidatorSet,
    /// Our key, if we are a validator at this height.
    pub me: Option<PublicKey>,
    pub round: Round,
    pub step: Step,
    pub locked: Option<RoundValue>,
    pub valid: Option<RoundValue>,
    pub votes: VoteKeeper,
    /// Proposals from each round's proposer, in arrival order (at most
    /// `MAX_PROPOSALS_PER_ROUND`: a second one is already equivocation).
    pub proposals: BTreeMap<Round, Vec<SignedProposal>>,
    /// `valid(v)` as reported by the node.
    pub validity: BTreeMap<Hash, bool>,
    validity_requested: BTreeSet<Hash>,
    flags: RoundFlags,
    own: OwnMessages,
    /// Our votes of the round before: a validator that left a round on a
    /// precommit quorum must keep offering its precommit to those that did
    /// not see that quorum, or they wait forever (f+1 are needed to skip).
    previous_own: OwnMessages,
    pub decided: bool,
}

impl HeightState {
    pub fn new(height: Height, validators: ValidatorSet, me: Option<PublicKey>) -> HeightState {
        HeightState {
            height,
            votes: VoteKeeper::new(height, validators.clone()),
            validators,
            me,
            round: Round::ZERO,
            step: Step::Propose,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            validity: BTreeMap::new(),
            validity_requested: BTreeSet::new(),
            flags: RoundFlags::default(),
            own: OwnMessages::default(),
            previous_own: OwnMessages::default(),
            decided: false,
        }
    }

    fn is_proposer(&self) -> bool {
        self.me == Some(self.validators.proposer(self.height, self.round).public_key)
    }

    fn schedule(&self, kind: TimeoutKind, ctx: &Context<'_>, out: &mut Vec<Output>) {
        out.push(Output::ScheduleTimeout(Timeout {
            kind,
            height: self.height,
            round: self.round,
            duration_ms: ctx.config.timeouts.duration_ms(kind, self.round),
        }));
    }

    /// Lines 11-21: StartRound(round).
    pub fn start_round(&mut self, round: Round, ctx: &mut Context<'_>, out: &mut Vec<Output>) {
        self.round = round; // line 11
        self.step = Step::Propose; // line 12
        self.flags = RoundFlags::default();
        self.previous_own = std::mem::take(&mut self.own);
        self.schedule(TimeoutKind::Rebroadcast, ctx, out);
        if self.is_proposer() {
            // line 13
            match self.valid {
                // lines 14-15 and 18: re-propose the valid value with its POL round.
                Some(valid) => self.propose(valid.value, Some(valid.round), ctx, out),
                // lines 16-17: getValue(), answered by Input::ValueToPropose.
                None => out.push(Output::GetValue {
                    height: self.height,
                    round,
                }),
            }
        }
        // lines 19-21 (for the proposer too: getValue is asynchronous here).
        self.schedule(TimeoutKind::Propose, ctx, out);
    }

    /// Continues after a restart from the last signed message: same round and
    /// step, the lock restored, and the last message re-sent (identical, so
    /// the safety record allows it).
    pub fn resume(&mut self, record: &SafetyRecord, ctx: &mut Context<'_>, out: &mut Vec<Output>) {
        self.round = record.round;
        self.step = record.step;
        self.flags = RoundFlags {
            proposed: true,
            ..RoundFlags::default()
        };
        self.own = OwnMessages::default();
        self.locked = record.locked;
        // validRound >= lockedRound always holds; the lock is the best we know.
        self.valid = record.locked;
        if let Some(locked) = record.locked {
            // We only ever lock on values the node found valid (line 36).
            self.validity.insert(locked.value, true);
        }
        self.schedule(TimeoutKind::Rebroadcast, ctx, out);
        match (record.step, record.value) {
            (Step::Propose, Some(value)) => {
                self.propose(value, record.pol_round, ctx, out);
                self.schedule(TimeoutKind::Propose, ctx, out);
            }
            (Step::Propose, None) => self.schedule(TimeoutKind::Propose, ctx, out),
            (Step::Prevote, value) => self.vote(VoteKind::Prevote, value, ctx, out),
            (Step::Precommit, value) => self.vote(VoteKind::Precommit, value, ctx, out),
        }
    }

    /// Line 18: broadcast ⟨PROPOSAL, h_p, round_p, proposal, validRound_p⟩.
    fn propose(
        &mut self,
        value: Hash,
        pol_round: Option<Round>,
        ctx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        self.flags.proposed = true;
        let Some(me) = self.me else {
            return;
        };
        let proposal = Proposal {
            height: self.height,
            round: self.round,
            value,
            pol_round,
            proposer: me,
        };
        match ctx.guard.sign_proposal(ctx.chain_id, proposal, self.locked) {
            Ok(Some((record, signed))) => {
                out.push(Output::PersistSafetyRecord(record));
                out.push(Output::Broadcast(ConsensusMessage::Proposal(signed)));
                self.broadcast_proof_of_lock(&proposal, out);
                // We built it, or it is our valid value: either way valid.
                self.validity.entry(value).or_insert(true);
                self.own.proposal = Some(signed);
                self.store_proposal(signed);
            }
            Ok(None) => {}
            Err(_) => ctx.stats.refused_signatures += 1,
        }
    }

    /// Signs and broadcasts our vote, and counts it like anyone else's.
    fn vote(
        &mut self,
        kind: VoteKind,
        value: Option<Hash>,
        ctx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        let Some(me) = self.me else {
            return;
        };
        let vote = Vote {
            kind,
            height: self.height,
            round: self.round,
            value,
            validator: me,
        };
        match ctx.guard.sign_vote(ctx.chain_id, vote, self.locked) {
            Ok(Some((record, signed))) => {
                out.push(Output::PersistSafetyRecord(record));
                out.push(Output::Broadcast(ConsensusMessage::Vote(signed)));
                match kind {
                    VoteKind::Prevote => self.own.prevote = Some(signed),
                    VoteKind::Precommit => self.own.precommit = Some(signed),
                }
                self.votes.add(signed);
            }
            Ok(None) => {}
            Err(_) => ctx.stats.refused_signatures += 1,
        }
    }

    pub fn store_proposal(&mut self, signed: SignedProposal) {
        let round = signed.proposal.round;
        let stored = self.proposals.entry(round).or_default();
        if !stored.contains(&signed) {
            stored.push(signed);
        }
        self.votes.note_sender(round, signed.proposal.proposer);
    }

    /// The node built the value we asked for (line 17 returns).
    pub fn on_value_to_propose(
        &mut self,
        round: Round,
        value: Hash,
        ctx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        if self.decided || round != self.round || self.flags.proposed || !self.is_proposer() {
            return;
        }
        self.propose(value, None, ctx, out);
        self.process(ctx, out);
    }

    pub fn on_validity(
        &mut self,
        value: Hash,
        valid: bool,
        ctx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        if self.decided {
            return;
        }
        self.validity.insert(value, valid);
        self.process(ctx, out);
    }

    /// Lines 57-65: the timeout functions (and re-sending).
    pub fn on_timeout(
        &mut self,
        kind: TimeoutKind,
        round: Round,
        ctx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) {
        if self.decided || round != self.round {
            return;
        }
        match kind {
            TimeoutKind::Propose if self.step == Step::Propose => {
                // lines 57-60
                self.vote(VoteKind::Prevote, None, ctx, out);
                self.step = Step::Prevote;
            }
            TimeoutKind::Prevote if self.step == Step::Prevote => {
                // lines 61-64
                self.vote(VoteKind::Precommit, None, ctx, out);
                self.step = Step::Precommit;
            }
            // lines 65-67 (any step)
            TimeoutKind::Precommit => self.start_round(round.next(), ctx, out),
            TimeoutKind::Rebroadcast => self.rebroadcast(ctx, out),
            TimeoutKind::Propose | TimeoutKind::Prevote => {}
        }
        self.process(ctx, out);
    }

    /// Re-sends our messages of this round and our votes of the round before.
    /// The paper assumes gossip that eventually delivers every message to
    /// every correct validator; we re-send only what liveness needs: our own
    /// messages, and with a re-proposal the prevotes of its proof of lock.
    fn rebroadcast(&mut self, ctx: &Context<'_>, out: &mut Vec<Output>) {
        if let Some(proposal) = self.own.proposal {
            out.push(Output::Broadcast(ConsensusMessage::Proposal(proposal)));
            self.broadcast_proof_of_lock(&proposal.proposal, out);
        }
        let previous = [self.previous_own.prevote, self.previous_own.precommit];
        for vote in previous
            .into_iter()
            .chain([self.own.prevote, self.own.precommit])
            .flatten()
        {
            out.push(Output::Broadcast(ConsensusMessage::Vote(vote)));
        }
        self.schedule(TimeoutKind::Rebroadcast, ctx, out);
    }

    /// With a re-proposal (pol_round = vr), relays the 2f+1 prevotes for the
    /// value in round vr that line 28 requires at every receiver. Some may
    /// never have received them, e.g. an equivocator's prevote it sent only
    /// to us.
    fn broadcast_proof_of_lock(&self, proposal: &Proposal, out: &mut Vec<Output>) {
        let Some(pol_round) = proposal.pol_round else {
            return;
        };
        let proof = self
            .votes
            .votes_for(pol_round, VoteKind::Prevote, Some(proposal.value));
        out.extend(proof.map(|v| Output::Broadcast(ConsensusMessage::Vote(*v))));
    }

    /// Re-evaluates every "upon" rule until none fires.
    pub fn process(&mut self, ctx: &mut Context<'_>, out: &mut Vec<Output>) {
        loop {
            if self.decided || self.try_decide(ctx, out) {
                return;
            }
            // lines 55-56: f+1 messages from a higher round: StartRound(round).
            if let Some(round) = self.votes.highest_round_with_f_plus_one(self.round) {
                self.start_round(round, ctx, out);
                continue;
            }
            if self.step == Step::Propose && self.try_prevote_on_proposal(ctx, out) {
                continue;
            }
            if self.try_lock(ctx, out) {
                continue;
            }
            if self.try_precommit_nil(ctx, out) {
                continue;
            }
            // lines 34-35: 2f+1 prevotes of any value while in prevote, first time.
            if self.step == Step::Prevote
                && !self.flags.prevote_timeout_scheduled
                && self.votes.has_quorum_any(self.round, VoteKind::Prevote)
            {
                self.flags.prevote_timeout_scheduled = true;
                self.schedule(TimeoutKind::Prevote, ctx, out);
            }
            // lines 47-48: 2f+1 precommits of any value, first time.
            if !self.flags.precommit_timeout_scheduled
                && self.votes.has_quorum_any(self.round, VoteKind::Precommit)
            {
                self.flags.precommit_timeout_scheduled = true;
                self.schedule(TimeoutKind::Precommit, ctx, out);
            }
            self.request_validity(out);
            return;
        }
    }

    /// Lines 49-54: 2f+1 precommits for v in some round, and valid(v): decide.
    fn try_decide(&mut self, ctx: &mut Context<'_>, out: &mut Vec<Output>) -> bool {
        let decided = self
            .votes
            .precommit_quorums()
            .find(|(_, value)| self.validity.get(value) == Some(&true));
        let Some((round, value)) = decided else {
            return false;
        };
        self.decided = true;
        ctx.stats.decisions += 1;
        let certificate = self.votes.certificate(round, value);
        out.push(Output::Decide(Decision {
            height: self.height,
            round,
            value,
            certificate,
        }));
        true
    }

    /// Lines 22-27 (proposal with vr = -1) and 28-33 (with a proof of lock
    /// from round vr < round_p), while step_p = propose.
    fn try_prevote_on_proposal(&mut self, ctx: &mut Context<'_>, out: &mut Vec<Output>) -> bool {
        let mut choice = None;
        for signed in self.proposals.get(&self.round).into_iter().flatten() {
            let proposal = &signed.proposal;
            // valid(v) is the node's verdict; wait for it.
            let Some(&valid) = self.validity.get(&proposal.value) else {
                continue;
            };
            let prevote_for_value = match proposal.pol_round {
                // line 23: valid(v) ∧ (lockedRound_p = −1 ∨ lockedValue_p = v)
                None => valid && self.locked.is_none_or(|lock| lock.value == proposal.value),
                // line 28: needs 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩ with vr < round_p.
                Some(vr) => {
                    if vr >= self.round
                        || !self
                            .votes
                            .has_quorum_for(vr, VoteKind::Prevote, Some(proposal.value))
                    {
                        continue;
                    }
                    // line 29: valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v)
                    valid
                        && self
                            .locked
                            .is_none_or(|lock| lock.round <= vr || lock.value == proposal.value)
                }
            };
            choice = Some(prevote_for_value.then_some(proposal.value));
            break;
        }
        let Some(value) = choice else {
            return false;
        };
        // lines 24/26 and 30/32, then 27/33.
        self.vote(VoteKind::Prevote, value, ctx, out);
        self.step = Step::Prevote;
        true
    }

    /// Lines 36-43: the round's proposal v is valid and has 2f+1 prevotes,
    /// while step_p ≥ prevote, for the first time: lock and precommit v (only
    /// if still in prevote), and remember v as the valid value.
    fn try_lock(&mut self, ctx: &mut Context<'_>, out: &mut Vec<Output>) -> bool {
        if self.flags.lock_rule_fired || self.step < Step::Prevote {
            return false;
        }
        let round = self.round;
        let found = self
            .proposals
            .get(&round)
            .into_iter()
            .flatten()
            .map(|p| p.proposal.value)
            .find(|value| {
                self.validity.get(value) == Some(&true)
                    && self
                        .votes
                        .has_quorum_for(round, VoteKind::Prevote, Some(*value))
            });
        let Some(value) = found else {
            return false;
        };
        self.flags.lock_rule_fired = true;
        if self.step == Step::Prevote {
            self.locked = Some(RoundValue { round, value }); // lines 38-39
            self.vote(VoteKind::Precommit, Some(value), ctx, out); // line 40
            self.step = Step::Precommit; // line 41
        }
        self.valid = Some(RoundValue { round, value }); // lines 42-43
        true
    }

    /// Lines 44-46: 2f+1 prevotes for nil while in prevote: precommit nil.
    fn try_precommit_nil(&mut self, ctx: &mut Context<'_>, out: &mut Vec<Output>) -> bool {
        if self.step != Step::Prevote
            || !self
                .votes
                .has_quorum_for(self.round, VoteKind::Prevote, None)
        {
            return false;
        }
        self.vote(VoteKind::Precommit, None, ctx, out);
        self.step = Step::Precommit;
        true
    }

    /// Asks the node once for `valid(v)` of every value a rule may need: the
    /// proposals of this and later rounds, and values with a precommit quorum.
    fn request_validity(&mut self, out: &mut Vec<Output>) {
        let proposed = self
            .proposals
            .range(self.round..)
            .flat_map(|(round, proposals)| {
                proposals.iter().map(move |p| (*round, p.proposal.value))
            });
        let wanted: Vec<(Round, Hash)> = proposed.chain(self.votes.precommit_quorums()).collect();
        for (round, value) in wanted {
            if !self.validity.contains_key(&value) && self.validity_requested.insert(value) {
                out.push(Output::CheckValidity {
                    height: self.height,
                    round,
                    value,
                });
            }
        }
    }
}
