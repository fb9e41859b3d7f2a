//! Admission of received messages into the current height: membership,
//! proposer, round bounds, duplicates, equivocation, signature.
//!
//! Checks run cheapest first, and the signature (the expensive one) only for
//! messages that would change something, so duplicates and gossip echoes cost
//! no verification. Height and chain checks happen earlier, in the engine.
//! Nothing here decides anything; accepted messages go to the rules.

use crate::engine::output::Output;
use crate::engine::rules::{Context, HeightState};
use crate::engine::stats::DropReason;
use crate::evidence::Equivocation;
use crate::messages::{SignedProposal, SignedVote};
use crate::types::Round;
use crate::votekeeper::{AddOutcome, VoteStatus};

/// Distinct proposals kept per round: the first, and one conflicting one
/// (kept because others may have received it first and prevoted for it).
pub(crate) const MAX_PROPOSALS_PER_ROUND: usize = 2;

impl HeightState {
    fn beyond_lookahead(&self, round: Round, ctx: &Context<'_>) -> bool {
        round.0 > self.round.0.saturating_add(ctx.config.round_lookahead)
    }

    /// A vote for this height. `verified`: the signature was already checked
    /// (buffered messages).
    pub fn receive_vote(
        &mut self,
        signed: SignedVote,
        verified: bool,
        ctx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), DropReason> {
        let vote = &signed.vote;
        if !self.validators.contains(&vote.validator) {
            return Err(DropReason::NonValidator);
        }
        if self.beyond_lookahead(vote.round, ctx) {
            return Err(DropReason::FarFutureRound);
        }
        match self.votes.status(vote) {
            VoteStatus::Duplicate => return Err(DropReason::Duplicate),
            VoteStatus::TooMany => return Err(DropReason::Equivocation),
            VoteStatus::New | VoteStatus::Conflicting => {}
        }
        if !verified {
            signed
                .verify(ctx.chain_id)
                .map_err(|_| DropReason::BadSignature)?;
        }
        if let AddOutcome::Equivocation(evidence) = self.votes.add(signed) {
            ctx.stats.evidence += 1;
            out.push(Output::Evidence(*evidence));
        }
        self.process(ctx, out);
        Ok(())
    }

    /// A proposal for this height.
    pub fn receive_proposal(
        &mut self,
        signed: SignedProposal,
        verified: bool,
        ctx: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), DropReason> {
        let proposal = &signed.proposal;
        if !self.validators.contains(&proposal.proposer) {
            return Err(DropReason::NonValidator);
        }
        if self.beyond_lookahead(proposal.round, ctx) {
            return Err(DropReason::FarFutureRound);
        }
        // "from proposer(h_p, round_p)" (lines 22, 28, 36, 49).
        if self
            .validators
            .proposer(proposal.height, proposal.round)
            .public_key
            != proposal.proposer
        {
            return Err(DropReason::NotProposer);
        }
        // line 28 requires vr < round_p; no rule uses any other proof of lock.
        if proposal.pol_round.is_some_and(|vr| vr >= proposal.round) {
            return Err(DropReason::InvalidPolRound);
        }
        let stored = self
            .proposals
            .get(&proposal.round)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if stored.iter().any(|p| p.proposal == *proposal) {
            return Err(DropReason::Duplicate);
        }
        if stored.len() >= MAX_PROPOSALS_PER_ROUND {
            return Err(DropReason::Equivocation);
        }
        let first = stored.first().copied();
        if !verified {
            signed
                .verify(ctx.chain_id)
                .map_err(|_| DropReason::BadSignature)?;
        }
        if let Some(first) = first {
            ctx.stats.evidence += 1;
            out.push(Output::Evidence(Equivocation::Proposals {
                first,
                second: signed,
            }));
        }
        self.store_proposal(signed);
        self.process(ctx, out);
        Ok(())
    }
}
