//! The properties checked while a simulation runs: agreement, validity
//! (of the value, and of the verdict the deciding validator was given),
//! certificates, no double signing, persist-before-send, and evidence that
//! only ever names Byzantine validators. A violation is recorded and ends
//! the run; nothing here changes what the validators do.

use consensus::{ConsensusMessage, Decision, Equivocation, Height, Step};
use crypto::Hash;

use super::{DecisionRecord, Sim};

impl Sim<'_> {
    /// An honest validator's own message: never two different ones at one
    /// step, and never before the safety record covering it was persisted.
    pub(super) fn check_own_signature(&mut self, node: usize, message: ConsensusMessage) {
        let step = match &message {
            ConsensusMessage::Proposal(_) => Step::Propose,
            ConsensusMessage::Vote(v) => v.vote.kind.step(),
        };
        let position = (message.height(), message.round(), step);
        let covered = self.nodes[node]
            .record
            .is_some_and(|r| (r.height, r.round, r.step) >= position);
        if !covered {
            self.violation(format!(
                "validator {node} sent {position:?} before persisting a safety record for it"
            ));
        }
        self.report.signed_by_honest += 1;
        let key = (node, position.0, position.1, step);
        match self.signed.get(&key) {
            None => {
                self.signed.insert(key, message);
            }
            Some(first) if same_body(first, &message) => {}
            Some(first) => {
                let text = format!(
                    "validator {node} double-signed at {position:?}: {first:?} then {message:?}"
                );
                self.violation(text);
            }
        }
    }

    pub(super) fn evidence(&mut self, reporter: usize, evidence: Equivocation) {
        if !evidence.is_proof(&self.chain) {
            self.violation(format!(
                "validator {reporter} reported evidence that is no proof: {evidence:?}"
            ));
        }
        let offender = self.keys.get(&evidence.offender()).copied();
        match offender {
            Some(o) if self.is_honest(o) => self.violation(format!(
                "validator {reporter} accused honest validator {o}: {evidence:?}"
            )),
            Some(o) => {
                self.report.evidence_against.insert(o);
            }
            None => self.violation(format!("evidence against an unknown key: {evidence:?}")),
        }
    }

    /// Checks and records a decision; returns the next height to start.
    pub(super) fn decided(
        &mut self,
        node: usize,
        decision: Decision,
        via_sync: bool,
    ) -> Option<Height> {
        let height = decision.height;
        let validators = self.scenario.validator_set(height);
        let fingerprint = Hash::of(&(&decision.certificate, decision.value));
        if !self.verified.contains(&fingerprint) {
            match decision
                .certificate
                .verify_for(&validators, &self.chain, height, decision.value)
            {
                Ok(()) => {
                    self.verified.insert(fingerprint);
                }
                Err(error) => self.violation(format!(
                    "validator {node}: certificate of height {height} does not verify: {error}"
                )),
            }
        }
        if self.is_honest(node) {
            if self.values.get(&decision.value) != Some(&(height, true)) {
                self.violation(format!(
                    "validator {node} decided an invalid value at height {height}"
                ));
            }
            if !via_sync {
                self.check_told_valid(node, height, decision.value);
            }
            match self.decided.get(&height) {
                Some(value) if *value != decision.value => self.violation(format!(
                    "agreement broken at height {height}: validator {node} decided {:?}, another {value:?}",
                    decision.value
                )),
                Some(_) => {}
                None => {
                    self.decided.insert(height, decision.value);
                }
            }
            self.report.decisions.push(DecisionRecord {
                node,
                height,
                round: decision.round,
                value: decision.value,
                at_ms: self.now,
                via_sync,
            });
        }
        self.nodes[node]
            .blocks
            .insert(height, (decision.value, decision.certificate));
        (height.0 < self.scenario.target_height).then(|| height.next())
    }
}

pub(super) fn same_body(a: &ConsensusMessage, b: &ConsensusMessage) -> bool {
    match (a, b) {
        (ConsensusMessage::Proposal(x), ConsensusMessage::Proposal(y)) => x.proposal == y.proposal,
        (ConsensusMessage::Vote(x), ConsensusMessage::Vote(y)) => x.vote == y.vote,
        _ => false,
    }
}
