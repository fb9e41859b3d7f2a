//! Rules for changing a participant's signing key: rotation by the
//! participant itself (signed with its current key), and recovery of a lost
//! key by an operator's request and an auditor's approval.
//!
//! Either way two entries are written: the participant (its new signing
//! key) and the new key's binding to its identity. Tokens, credit lines,
//! financing offers and events name the participant by its identity, so
//! none of them is rewritten and lineage is untouched; every earlier key is
//! refused as a signer from the next transaction on.
//!
//! Validators' accounts are not rotated here: a consensus key changes by a
//! validator-set proposal (`rotate_key`), which every validator approves.

use crypto::PublicKey;

use super::{Call, active_participant, require_unused_key};
use crate::error::{ExecError, TxError};
use crate::participant::{KeyBinding, KeyRecovery, Participant};
use crate::state::{Changes, StateValue, StateView};

fn not_a_validator_account(participant: &Participant) -> Result<(), TxError> {
    if participant.is_validator_account() {
        return Err(TxError::ManagedByGovernance {
            key: participant.key,
        });
    }
    Ok(())
}

/// `participant` signing with `new_key` from now on, and the binding.
fn rekeyed(mut participant: Participant, new_key: &PublicKey) -> Changes {
    participant.signing_key = *new_key;
    let binding = KeyBinding {
        key: *new_key,
        participant: participant.key,
    };
    vec![
        StateValue::Participant(participant),
        StateValue::KeyBinding(binding),
    ]
}

pub(super) fn rotate<S: StateView>(
    call: &Call<'_, S>,
    new_key: &PublicKey,
) -> Result<Changes, ExecError> {
    not_a_validator_account(call.signer)?;
    require_unused_key(call.state, new_key)?;
    Ok(rekeyed(call.signer.clone(), new_key))
}

pub(super) fn request_recovery<S: StateView>(
    call: &Call<'_, S>,
    participant: &PublicKey,
    new_key: &PublicKey,
) -> Result<Changes, ExecError> {
    let lost = active_participant(call.state, participant)?;
    not_a_validator_account(&lost)?;
    require_unused_key(call.state, new_key)?;
    // A request replaces any earlier one for the participant: the auditor
    // approves the newest, and an approved one is history.
    Ok(vec![StateValue::KeyRecovery(KeyRecovery {
        participant: lost.key,
        new_key: *new_key,
        requested_by: call.signer.key,
        requested_at: call.context.height,
        approved: None,
    })])
}

pub(super) fn approve_recovery<S: StateView>(
    call: &Call<'_, S>,
    participant: &PublicKey,
    new_key: &PublicKey,
) -> Result<Changes, ExecError> {
    let mut recovery =
        call.state
            .key_recovery(participant)?
            .ok_or(TxError::NoRecoveryRequested {
                participant: *participant,
            })?;
    if let Some((_, height)) = recovery.approved {
        return Err(TxError::RecoveryAlreadyApproved {
            participant: *participant,
            height,
        }
        .into());
    }
    if recovery.new_key != *new_key {
        return Err(TxError::RecoveryKeyMismatch {
            participant: *participant,
            requested: recovery.new_key,
            approved: *new_key,
        }
        .into());
    }
    // Two people, two keys: one participant holding both roles may not
    // replace a key alone.
    if recovery.requested_by == call.signer.key {
        return Err(TxError::RecoveryNeedsSecondParticipant {
            key: call.signer.key,
        }
        .into());
    }
    let lost = active_participant(call.state, participant)?;
    not_a_validator_account(&lost)?;
    // The key may have been taken since the request.
    require_unused_key(call.state, new_key)?;
    recovery.approved = Some((call.signer.key, call.context.height));
    let mut changes = rekeyed(lost, new_key);
    changes.push(StateValue::KeyRecovery(recovery));
    Ok(changes)
}
