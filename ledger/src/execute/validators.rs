//! Rules for changing the validator set: proposing a change and approving
//! one, both signed by a validator of the set in force with its consensus
//! key (the signer's account has the validator role; membership is checked
//! here, against the set in force at the block's height).
//!
//! See `governance` for the rules in one list. This module reads and writes
//! the records; what a change does to a set is
//! [`ValidatorChange::apply`].

use crypto::PublicKey;

use super::{Call, require_unused_key};
use crate::error::{ExecError, StateError, TxError};
use crate::governance::{
    self, ACTIVATION_DISTANCE, Adoption, GovernanceSummary, MAX_OPEN_PROPOSALS,
    MAX_OPEN_PROPOSALS_PER_VALIDATOR, MAX_PROPOSAL_LIFETIME, OpenProposal, ValidatorChange,
    ValidatorEpoch, ValidatorInfo, ValidatorProposal,
};
use crate::participant::{KeyBinding, Participant, Role};
use crate::state::{Changes, StateKey, StateValue, StateView};
use crate::transaction::TxHash;

/// The summary and the set in force at the block's height, with the
/// signer's place in it.
struct Governance {
    summary: GovernanceSummary,
    in_force: ValidatorEpoch,
}

fn governance<S: StateView>(call: &Call<'_, S>) -> Result<Governance, ExecError> {
    let height = call.context.height;
    let summary = governance::summary(call.state)?.ok_or(TxError::NoValidatorSetRecorded)?;
    let in_force = governance::epoch_in_force(call.state, height)?
        .expect("a recorded summary comes with its epochs");
    // The account's identity, not the key: a validator whose rotation was
    // adopted signs with its new key before that key is in force.
    if in_force.by_identity(&call.signer.key).is_none() {
        return Err(TxError::NotAValidator {
            key: call.signer.signing_key,
            height,
        }
        .into());
    }
    Ok(Governance { summary, in_force })
}

pub(super) fn propose<S: StateView>(
    call: &Call<'_, S>,
    change: &ValidatorChange,
    expires_at: u64,
) -> Result<Changes, ExecError> {
    let height = call.context.height;
    let Governance {
        mut summary,
        in_force,
    } = governance(call)?;
    let max = height.saturating_add(MAX_PROPOSAL_LIFETIME);
    if expires_at <= height || expires_at > max {
        return Err(TxError::ExpiryOutOfRange {
            expires_at,
            height,
            max,
        }
        .into());
    }
    let proposer = call.signer.key;
    summary.open.retain(|open| open.expires_at > height);
    let mine = summary
        .open
        .iter()
        .filter(|open| open.proposer == proposer)
        .count();
    if mine >= MAX_OPEN_PROPOSALS_PER_VALIDATOR {
        return Err(TxError::TooManyOpenProposals {
            validator: call.signer.signing_key,
            open: mine,
            limit: MAX_OPEN_PROPOSALS_PER_VALIDATOR,
        }
        .into());
    }
    if summary.open.len() >= MAX_OPEN_PROPOSALS {
        return Err(TxError::OpenProposalsFull {
            limit: MAX_OPEN_PROPOSALS,
        }
        .into());
    }
    // Refused now rather than at adoption if it cannot apply to the newest
    // set; it is checked again then, as the set may have moved on.
    let latest = governance::epoch(call.state, summary.latest_epoch)?;
    changed_set(call, &latest, change)?;
    summary.open.push(OpenProposal {
        id: call.tx_hash,
        proposer,
        expires_at,
    });
    let proposal = ValidatorProposal {
        id: call.tx_hash,
        change: change.clone(),
        proposer,
        proposed_at: height,
        expires_at,
        approvals: vec![proposer],
        adopted: None,
    };
    tally(call, &in_force, summary, proposal, true)
}

pub(super) fn approve<S: StateView>(call: &Call<'_, S>, id: &TxHash) -> Result<Changes, ExecError> {
    let height = call.context.height;
    let Governance { summary, in_force } = governance(call)?;
    let mut proposal =
        governance::proposal(call.state, id)?.ok_or(TxError::UnknownProposal { proposal: *id })?;
    if let Some(adoption) = proposal.adopted {
        return Err(TxError::ProposalAlreadyAdopted {
            proposal: *id,
            at: adoption.at,
        }
        .into());
    }
    if height >= proposal.expires_at {
        return Err(TxError::ProposalExpired {
            proposal: *id,
            expires_at: proposal.expires_at,
            height,
        }
        .into());
    }
    let approver = call.signer.key;
    let Err(position) = proposal.approvals.binary_search(&approver) else {
        return Err(TxError::AlreadyApproved {
            proposal: *id,
            validator: call.signer.signing_key,
        }
        .into());
    };
    proposal.approvals.insert(position, approver);
    tally(call, &in_force, summary, proposal, false)
}

/// Counts `proposal`'s approvals with the powers in force and, past two
/// thirds, adopts it: the newest epoch changes, or a new epoch starts at
/// height + [`ACTIVATION_DISTANCE`]. Returns everything to write.
fn tally<S: StateView>(
    call: &Call<'_, S>,
    in_force: &ValidatorEpoch,
    mut summary: GovernanceSummary,
    mut proposal: ValidatorProposal,
    summary_changed: bool,
) -> Result<Changes, ExecError> {
    let height = call.context.height;
    // Approvals of validators that left the set count for nothing; dropping
    // them keeps the list no longer than the set.
    proposal
        .approvals
        .retain(|identity| in_force.by_identity(identity).is_some());
    let approved: u128 = proposal
        .approvals
        .iter()
        .filter_map(|identity| in_force.by_identity(identity))
        .map(|validator| u128::from(validator.power))
        .sum();
    let total = u128::from(in_force.total_power());
    let open_before = summary.open.len();
    summary.open.retain(|open| open.expires_at > height);
    let mut summary_changed = summary_changed || summary.open.len() != open_before;
    let mut changes = Vec::new();
    // More than two thirds of the power in force: the consensus quorum.
    if approved * 3 > total * 2 {
        let latest = governance::epoch(call.state, summary.latest_epoch)?;
        let (validators, accounts) = changed_set(call, &latest, &proposal.change)?;
        let effective_from = height + ACTIVATION_DISTANCE;
        // Adoptions in one block take effect together: the second one
        // changes the epoch the first one started.
        let number = if latest.from_height == effective_from {
            latest.number
        } else {
            debug_assert!(latest.from_height < effective_from);
            latest.number + 1
        };
        changes.extend(accounts);
        changes.push(StateValue::ValidatorEpoch(ValidatorEpoch {
            number,
            from_height: effective_from,
            validators,
        }));
        proposal.adopted = Some(Adoption {
            at: height,
            by: call.tx_hash,
            effective_from,
            epoch: number,
        });
        summary.latest_epoch = number;
        summary.open.retain(|open| open.id != proposal.id);
        summary_changed = true;
    }
    changes.push(StateValue::ValidatorProposal(proposal));
    if summary_changed {
        changes.push(StateValue::GovernanceSummary(summary));
    }
    Ok(changes)
}

/// `change` applied to `latest`, with the account writes it needs: a new
/// validator's account, or a rotated validator's new signing key.
fn changed_set<S: StateView>(
    call: &Call<'_, S>,
    latest: &ValidatorEpoch,
    change: &ValidatorChange,
) -> Result<(Vec<ValidatorInfo>, Changes), ExecError> {
    match change {
        ValidatorChange::Add {
            name,
            consensus_key,
            ..
        } => {
            let (identity, account) = account_for(call.state, consensus_key, name)?;
            let validators = change.apply(&latest.validators, identity)?;
            Ok((
                validators,
                account.map(StateValue::Participant).into_iter().collect(),
            ))
        }
        ValidatorChange::RotateKey { old_key, new_key } => {
            let validators = change.apply(&latest.validators, *old_key)?;
            require_unused_key(call.state, new_key)?;
            let identity = latest
                .by_consensus_key(old_key)
                .expect("apply found the rotated validator")
                .identity;
            let mut account = call
                .state
                .participant(&identity)?
                .ok_or_else(|| StateError {
                    key: StateKey::Participant(identity),
                    reason: "a validator's account is not in the state".to_string(),
                })?;
            account.signing_key = *new_key;
            let binding = KeyBinding {
                key: *new_key,
                participant: identity,
            };
            Ok((
                validators,
                vec![
                    StateValue::Participant(account),
                    StateValue::KeyBinding(binding),
                ],
            ))
        }
        ValidatorChange::Remove { consensus_key }
        | ValidatorChange::SetPower { consensus_key, .. } => Ok((
            change.apply(&latest.validators, *consensus_key)?,
            Vec::new(),
        )),
    }
}

/// The account a validator added with `key` signs with: a fresh key gets a
/// new account (to write), and a former validator coming back with its
/// account's current key keeps its account. Any other key in use is
/// refused: a participant's key, or a key replaced since.
fn account_for(
    state: &impl StateView,
    key: &PublicKey,
    name: &str,
) -> Result<(PublicKey, Option<Participant>), ExecError> {
    let existing = match state.participant(key)? {
        Some(participant) => Some(participant),
        None => match state.key_binding(key)? {
            Some(binding) => state.participant(&binding.participant)?,
            None => None,
        },
    };
    match existing {
        None => Ok((
            *key,
            Some(Participant::new(*key, name.trim(), [Role::Validator])),
        )),
        Some(account) if account.is_validator_account() && account.signing_key == *key => {
            Ok((account.key, None))
        }
        Some(_) => Err(TxError::KeyInUse { key: *key }.into()),
    }
}
