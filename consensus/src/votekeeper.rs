//! Vote bookkeeping for one height: who voted what in which round, the power
//! behind each (round, kind, value), which (round, value) pairs have a
//! precommit quorum, and which rounds have been heard from by more than a
//! third of the power.
//!
//! As in the paper, every distinct vote counts for its value: a validator that
//! votes for two values (equivocates) adds its power to both, and to the
//! "any value" total only once. This is safe (two quorums for different values
//! in one round would need more than a third of the power to equivocate) and
//! needed for liveness: honest validators that received different votes from
//! an equivocator must still be able to agree on a proof of lock once relays
//! bring them the same messages. The first conflict is reported as an
//! [`Equivocation`]; at most [`MAX_VOTES_PER_STEP`] distinct votes of one
//! validator per (round, kind) are kept, so memory stays bounded.
//!
//! The keeper trusts its caller: it does not check signatures, heights or
//! membership (the engine does, before adding). It decides nothing.

use std::collections::{BTreeMap, BTreeSet};

use crypto::{Hash, PublicKey};

use crate::certificate::{CommitCertificate, CommitSignature};
use crate::evidence::Equivocation;
use crate::messages::{SignedVote, Vote};
use crate::types::{Height, Round, VoteKind};
use crate::validator_set::ValidatorSet;

/// Distinct votes kept per validator, round and kind: nil and the (at most
/// two) proposed values of a round, plus one. An honest validator sends one.
pub const MAX_VOTES_PER_STEP: usize = 4;

/// How a vote relates to what the keeper already holds. Computed before the
/// signature is checked, so duplicates cost no verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteStatus {
    /// First vote of this validator for this round and kind.
    New,
    /// The same body is already counted.
    Duplicate,
    /// Differs from the votes held: counted, and evidence if it is the first conflict.
    Conflicting,
    /// Differs, and this validator already has [`MAX_VOTES_PER_STEP`] votes here.
    TooMany,
}

/// What adding a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    Counted,
    /// Counted, and this is the validator's first conflicting vote here.
    Equivocation(Box<Equivocation>),
    Duplicate,
    /// Not counted: the validator already sent too many different votes here.
    TooMany,
}

#[derive(Debug, Default, Clone)]
struct Tally {
    /// The votes of each validator, first received first.
    votes: BTreeMap<PublicKey, Vec<SignedVote>>,
    power_by_value: BTreeMap<Option<Hash>, u64>,
    power_total: u64,
    reported: BTreeSet<PublicKey>,
}

#[derive(Debug, Default, Clone)]
struct RoundVotes {
    prevotes: Tally,
    precommits: Tally,
    /// Validators heard from in this round, by any message (line 55).
    senders: BTreeSet<PublicKey>,
    sender_power: u64,
}

impl RoundVotes {
    fn tally(&self, kind: VoteKind) -> &Tally {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }

    fn tally_mut(&mut self, kind: VoteKind) -> &mut Tally {
        match kind {
            VoteKind::Prevote => &mut self.prevotes,
            VoteKind::Precommit => &mut self.precommits,
        }
    }
}

/// The votes of one height.
#[derive(Debug, Clone)]
pub struct VoteKeeper {
    height: Height,
    validators: ValidatorSet,
    rounds: BTreeMap<Round, RoundVotes>,
    /// (round, value) pairs with precommits from more than 2/3 of the power.
    precommit_quorums: BTreeSet<(Round, Hash)>,
}

impl VoteKeeper {
    pub fn new(height: Height, validators: ValidatorSet) -> VoteKeeper {
        VoteKeeper {
            height,
            validators,
            rounds: BTreeMap::new(),
            precommit_quorums: BTreeSet::new(),
        }
    }

    pub fn height(&self) -> Height {
        self.height
    }

    /// Classifies `vote` without changing anything.
    pub fn status(&self, vote: &Vote) -> VoteStatus {
        let Some(tally) = self.rounds.get(&vote.round).map(|r| r.tally(vote.kind)) else {
            return VoteStatus::New;
        };
        match tally.votes.get(&vote.validator) {
            None => VoteStatus::New,
            Some(held) if held.iter().any(|v| v.vote == *vote) => VoteStatus::Duplicate,
            Some(held) if held.len() >= MAX_VOTES_PER_STEP => VoteStatus::TooMany,
            Some(_) => VoteStatus::Conflicting,
        }
    }

    /// Adds a vote whose signature, height and signer the caller has checked.
    pub fn add(&mut self, signed: SignedVote) -> AddOutcome {
        let vote = signed.vote;
        debug_assert_eq!(
            vote.height, self.height,
            "the engine only adds votes of its height"
        );
        let Some(power) = self.validators.power_of(&vote.validator) else {
            debug_assert!(false, "the engine only adds votes of validators");
            return AddOutcome::TooMany;
        };
        let quorum = self.validators.quorum_power();
        let round = self.rounds.entry(vote.round).or_default();
        if round.senders.insert(vote.validator) {
            round.sender_power += power;
        }
        let tally = round.tally_mut(vote.kind);
        let held = tally.votes.entry(vote.validator).or_default();
        if held.iter().any(|v| v.vote == vote) {
            return AddOutcome::Duplicate;
        }
        if held.len() >= MAX_VOTES_PER_STEP {
            return AddOutcome::TooMany;
        }
        let first = held.first().copied();
        held.push(signed);
        if first.is_none() {
            tally.power_total += power;
        }
        let for_value = tally.power_by_value.entry(vote.value).or_default();
        *for_value += power;
        if vote.kind == VoteKind::Precommit
            && let Some(value) = vote.value
            && *for_value >= quorum
        {
            self.precommit_quorums.insert((vote.round, value));
        }
        match first {
            Some(first) if tally.reported.insert(vote.validator) => {
                AddOutcome::Equivocation(Box::new(Equivocation::Votes {
                    first,
                    second: signed,
                }))
            }
            _ => AddOutcome::Counted,
        }
    }

    /// Records that `validator` sent some message (a proposal) in `round`,
    /// for the round-skip rule (line 55).
    pub fn note_sender(&mut self, round: Round, validator: PublicKey) {
        let Some(power) = self.validators.power_of(&validator) else {
            return;
        };
        let votes = self.rounds.entry(round).or_default();
        if votes.senders.insert(validator) {
            votes.sender_power += power;
        }
    }

    /// Power of the validators who sent a `kind` vote for `value` in `round`.
    pub fn power_for(&self, round: Round, kind: VoteKind, value: Option<Hash>) -> u64 {
        self.rounds
            .get(&round)
            .and_then(|r| r.tally(kind).power_by_value.get(&value).copied())
            .unwrap_or(0)
    }

    /// Power of the validators who sent any `kind` vote in `round` (each once).
    pub fn power_any(&self, round: Round, kind: VoteKind) -> u64 {
        self.rounds
            .get(&round)
            .map_or(0, |r| r.tally(kind).power_total)
    }

    pub fn has_quorum_for(&self, round: Round, kind: VoteKind, value: Option<Hash>) -> bool {
        self.power_for(round, kind, value) >= self.validators.quorum_power()
    }

    pub fn has_quorum_any(&self, round: Round, kind: VoteKind) -> bool {
        self.power_any(round, kind) >= self.validators.quorum_power()
    }

    /// The (round, value) pairs that have a precommit quorum, lowest round first.
    pub fn precommit_quorums(&self) -> impl Iterator<Item = (Round, Hash)> + '_ {
        self.precommit_quorums.iter().copied()
    }

    /// The highest round above `above` heard from by more than a third of the
    /// power (line 55), if any.
    pub fn highest_round_with_f_plus_one(&self, above: Round) -> Option<Round> {
        let threshold = self.validators.f_plus_one_power();
        self.rounds
            .range(above.next()..)
            .rev()
            .find(|(round, votes)| **round > above && votes.sender_power >= threshold)
            .map(|(round, _)| *round)
    }

    /// The `kind` votes of `round`, by validator key.
    pub fn votes(&self, round: Round, kind: VoteKind) -> impl Iterator<Item = &SignedVote> + '_ {
        self.rounds
            .get(&round)
            .into_iter()
            .flat_map(move |r| r.tally(kind).votes.values().flatten())
    }

    /// The `kind` votes of `round` for `value`, at most one per validator.
    pub fn votes_for(
        &self,
        round: Round,
        kind: VoteKind,
        value: Option<Hash>,
    ) -> impl Iterator<Item = &SignedVote> + '_ {
        self.votes(round, kind)
            .filter(move |v| v.vote.value == value)
    }

    /// The certificate for `value` decided in `round`: every counted precommit
    /// for it, sorted by validator key.
    pub fn certificate(&self, round: Round, value: Hash) -> CommitCertificate {
        let signatures = self
            .votes_for(round, VoteKind::Precommit, Some(value))
            .map(|v| CommitSignature {
                validator: v.vote.validator,
                signature: v.signature,
            })
            .collect();
        CommitCertificate {
            height: self.height,
            round,
            value,
            signatures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator_set::Validator;
    use crypto::{ChainId, Keypair};

    fn keys(n: u8) -> Vec<Keypair> {
        (1..=n).map(|i| Keypair::from_seed([i; 32])).collect()
    }

    fn keeper(keys: &[Keypair]) -> VoteKeeper {
        let set = ValidatorSet::new(keys.iter().map(|k| Validator {
            public_key: k.public(),
            power: 1,
        }))
        .unwrap();
        VoteKeeper::new(Height(1), set)
    }

    fn vote(key: &Keypair, kind: VoteKind, round: u32, value: Option<Hash>) -> SignedVote {
        let chain = ChainId(Hash::digest(b"t"));
        let vote = Vote {
            kind,
            height: Height(1),
            round: Round(round),
            value,
            validator: key.public(),
        };
        SignedVote {
            chain_id: chain,
            vote,
            signature: key.sign(kind.domain(), &chain, &vote),
        }
    }

    #[test]
    fn power_is_counted_per_round_kind_and_value() {
        let keys = keys(4);
        let mut keeper = keeper(&keys);
        let a = Some(Hash::digest(b"a"));
        keeper.add(vote(&keys[0], VoteKind::Prevote, 0, a));
        keeper.add(vote(&keys[1], VoteKind::Prevote, 0, a));
        keeper.add(vote(&keys[2], VoteKind::Prevote, 0, None));
        assert_eq!(keeper.power_for(Round(0), VoteKind::Prevote, a), 2);
        assert_eq!(keeper.power_for(Round(0), VoteKind::Prevote, None), 1);
        assert_eq!(keeper.power_for(Round(0), VoteKind::Precommit, a), 0);
        assert!(keeper.has_quorum_any(Round(0), VoteKind::Prevote));
        assert!(!keeper.has_quorum_for(Round(0), VoteKind::Prevote, a));
        keeper.add(vote(&keys[3], VoteKind::Prevote, 0, a));
        assert!(keeper.has_quorum_for(Round(0), VoteKind::Prevote, a));
    }

    #[test]
    fn conflicting_votes_count_for_each_value_once_and_are_reported_once() {
        let keys = keys(4);
        let mut keeper = keeper(&keys);
        let (a, b) = (Some(Hash::digest(b"a")), Some(Hash::digest(b"b")));
        let first = vote(&keys[0], VoteKind::Precommit, 1, a);
        assert_eq!(keeper.add(first), AddOutcome::Counted);
        assert_eq!(keeper.status(&first.vote), VoteStatus::Duplicate);
        assert_eq!(keeper.add(first), AddOutcome::Duplicate);
        let second = vote(&keys[0], VoteKind::Precommit, 1, b);
        assert_eq!(keeper.status(&second.vote), VoteStatus::Conflicting);
        assert_eq!(
            keeper.add(second),
            AddOutcome::Equivocation(Box::new(Equivocation::Votes { first, second }))
        );
        assert_eq!(
            keeper.add(vote(&keys[0], VoteKind::Precommit, 1, None)),
            AddOutcome::Counted
        );
        assert_eq!(
            keeper.power_any(Round(1), VoteKind::Precommit),
            1,
            "one validator counts once in total"
        );
        assert_eq!(keeper.power_for(Round(1), VoteKind::Precommit, a), 1);
        assert_eq!(keeper.power_for(Round(1), VoteKind::Precommit, b), 1);
        assert_eq!(
            keeper.add(vote(
                &keys[0],
                VoteKind::Precommit,
                1,
                Some(Hash::digest(b"c"))
            )),
            AddOutcome::Counted
        );
        let fifth = vote(&keys[0], VoteKind::Precommit, 1, Some(Hash::digest(b"d")));
        assert_eq!(keeper.status(&fifth.vote), VoteStatus::TooMany);
        assert_eq!(keeper.add(fifth), AddOutcome::TooMany);
    }

    #[test]
    fn an_equivocator_alone_cannot_make_two_quorums() {
        // 3 of 4 needed; honest 1 and 2 split, Byzantine 0 votes for both.
        let keys = keys(4);
        let mut keeper = keeper(&keys);
        let (a, b) = (Some(Hash::digest(b"a")), Some(Hash::digest(b"b")));
        for (key, value) in [(&keys[0], a), (&keys[0], b), (&keys[1], a), (&keys[2], b)] {
            keeper.add(vote(key, VoteKind::Prevote, 0, value));
        }
        assert!(!keeper.has_quorum_for(Round(0), VoteKind::Prevote, a));
        assert!(!keeper.has_quorum_for(Round(0), VoteKind::Prevote, b));
        assert!(keeper.has_quorum_any(Round(0), VoteKind::Prevote));
    }

    #[test]
    fn precommit_quorums_and_certificates_are_tracked() {
        let keys = keys(4);
        let mut keeper = keeper(&keys);
        let v = Hash::digest(b"v");
        for key in &keys[..3] {
            keeper.add(vote(key, VoteKind::Precommit, 2, Some(v)));
        }
        keeper.add(vote(&keys[3], VoteKind::Precommit, 2, None));
        assert_eq!(
            keeper.precommit_quorums().collect::<Vec<_>>(),
            vec![(Round(2), v)]
        );
        let certificate = keeper.certificate(Round(2), v);
        assert_eq!(certificate.signatures.len(), 3);
        assert!(
            certificate
                .signatures
                .windows(2)
                .all(|w| w[0].validator < w[1].validator)
        );
    }

    #[test]
    fn round_skip_needs_more_than_a_third_of_distinct_senders() {
        let keys = keys(4);
        let mut keeper = keeper(&keys);
        keeper.add(vote(&keys[0], VoteKind::Prevote, 5, None));
        keeper.add(vote(&keys[0], VoteKind::Precommit, 5, None));
        assert_eq!(
            keeper.highest_round_with_f_plus_one(Round(0)),
            None,
            "one sender twice is not two"
        );
        keeper.note_sender(Round(5), keys[1].public());
        assert_eq!(
            keeper.highest_round_with_f_plus_one(Round(0)),
            Some(Round(5))
        );
        assert_eq!(keeper.highest_round_with_f_plus_one(Round(5)), None);
    }
}
