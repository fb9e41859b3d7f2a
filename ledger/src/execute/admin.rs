//! Rules for the consortium's housekeeping: registering and deactivating
//! participants (operator), credit lines (bank), freezing disputed tokens
//! (auditor).

use crypto::PublicKey;

use super::{Call, active_participant, require_role};
use crate::amount::Amount;
use crate::error::{ExecError, StateError, TxError};
use crate::participant::{Participant, Role};
use crate::state::{Changes, StateKey, StateValue, StateView};
use crate::token::{CreditLine, Receivable, Token, TokenId, TokenStatus};

pub(super) fn register<S: StateView>(
    call: &Call<'_, S>,
    key: &PublicKey,
    name: &str,
    roles: &[Role],
) -> Result<Changes, ExecError> {
    if call.state.participant(key)?.is_some() {
        return Err(TxError::ParticipantExists { key: *key }.into());
    }
    if call.state.key_binding(key)?.is_some() {
        return Err(TxError::KeyInUse { key: *key }.into());
    }
    if roles.contains(&Role::Validator) {
        return Err(TxError::RoleGrantedByGovernance {
            role: Role::Validator,
        }
        .into());
    }
    // A valid name and at least one role: stateless rules (`check_stateless`).
    Ok(vec![StateValue::Participant(Participant::new(
        *key,
        name.trim(),
        roles.iter().copied(),
    ))])
}

pub(super) fn deactivate<S: StateView>(
    call: &Call<'_, S>,
    key: &PublicKey,
) -> Result<Changes, ExecError> {
    let mut participant = active_participant(call.state, key)?;
    // A validator's account signs its consensus key's governance
    // transactions: only the validators may retire a validator.
    if participant.is_validator_account() {
        return Err(TxError::ManagedByGovernance { key: *key }.into());
    }
    participant.active = false;
    Ok(vec![StateValue::Participant(participant)])
}

pub(super) fn grant_credit_line<S: StateView>(
    call: &Call<'_, S>,
    core: &PublicKey,
    limit: Amount,
) -> Result<Changes, ExecError> {
    let core_participant = active_participant(call.state, core)?;
    require_role(&core_participant, Some(Role::CoreEnterprise))?;
    let mut line = call
        .state
        .credit_line(core)?
        .unwrap_or_else(|| CreditLine::new(*core));
    line.set_grant(call.signer.key, limit);
    Ok(vec![StateValue::CreditLine(line)])
}

pub(super) fn freeze<S: StateView>(
    call: &Call<'_, S>,
    id: &TokenId,
    // Its length is a stateless rule (`check_stateless`).
    _reason: &str,
) -> Result<Changes, ExecError> {
    let mut token = call
        .state
        .token(id)?
        .ok_or(TxError::UnknownToken { token: *id })?;
    match token.status {
        TokenStatus::Spent { .. } => return Err(TxError::TokenSpent { token: *id }.into()),
        TokenStatus::Settled { .. } => return Err(TxError::TokenSettled { token: *id }.into()),
        TokenStatus::Active | TokenStatus::Pending { .. } => {}
    }
    let mut receivable = root_receivable(call, &token)?;
    if receivable.settlement.is_some() {
        return Err(TxError::TokenSettled { token: *id }.into());
    }
    if token.frozen {
        return Err(TxError::AlreadyFrozen { token: *id }.into());
    }
    token.frozen = true;
    // A frozen token is never spent (see `usable_token`), so this counts the
    // root's frozen unspent tokens, which settlement waits on.
    receivable.frozen_tokens = receivable
        .frozen_tokens
        .checked_add(1)
        .ok_or(TxError::AmountOverflow)?;
    Ok(vec![
        StateValue::Token(token),
        StateValue::Receivable(receivable),
    ])
}

pub(super) fn unfreeze<S: StateView>(
    call: &Call<'_, S>,
    id: &TokenId,
) -> Result<Changes, ExecError> {
    let mut token = call
        .state
        .token(id)?
        .ok_or(TxError::UnknownToken { token: *id })?;
    if !token.frozen {
        return Err(TxError::NotFrozen { token: *id }.into());
    }
    token.frozen = false;
    let mut receivable = root_receivable(call, &token)?;
    // Freezing counted it.
    receivable.frozen_tokens = receivable.frozen_tokens.saturating_sub(1);
    Ok(vec![
        StateValue::Token(token),
        StateValue::Receivable(receivable),
    ])
}

/// The receivable of `token`'s root, which every token has.
fn root_receivable<S: StateView>(
    call: &Call<'_, S>,
    token: &Token,
) -> Result<Receivable, ExecError> {
    call.state.receivable(&token.root_id)?.ok_or_else(|| {
        StateError {
            key: StateKey::Receivable(token.root_id),
            reason: format!("token {} names a root with no receivable", token.id),
        }
        .into()
    })
}
