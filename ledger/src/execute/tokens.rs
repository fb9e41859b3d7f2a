//! Rules for what a holder does with a token: transfer (split) it, offer it
//! for financing; and the bank's answer to that offer.

use crypto::PublicKey;

use super::{Call, active_participant, require_role};
use crate::amount::{Amount, Timestamp};
use crate::error::{ExecError, TxError};
use crate::participant::Role;
use crate::state::{Changes, StateValue, StateView};
use crate::token::{Origin, Token, TokenId, TokenStatus};
use crate::transaction::Output;

/// Basis points per whole, times the 360-day year of the discount formula.
const RATE_DAY_SCALE: u128 = 10_000 * 360;

/// The token `id`, held by the signer, active, not frozen, not matured.
fn usable_token<S: StateView>(call: &Call<'_, S>, id: &TokenId) -> Result<Token, ExecError> {
    let token = call
        .state
        .token(id)?
        .ok_or(TxError::UnknownToken { token: *id })?;
    if token.holder != call.signer.key {
        return Err(TxError::NotHolder {
            token: *id,
            holder: token.holder,
            signer: call.signer.key,
        }
        .into());
    }
    match token.status {
        TokenStatus::Active => {}
        TokenStatus::Pending { .. } => return Err(TxError::TokenPending { token: *id }.into()),
        TokenStatus::Spent { .. } => return Err(TxError::TokenSpent { token: *id }.into()),
        TokenStatus::Settled { .. } => return Err(TxError::TokenSettled { token: *id }.into()),
    }
    if token.frozen {
        return Err(TxError::TokenFrozen { token: *id }.into());
    }
    not_settled(call, &token)?;
    not_matured(&token, call.context.time)?;
    Ok(token)
}

/// Refuses a token of a settled root: it reads as settled although its
/// record still says active or pending (see [`TokenStatus::Settled`]).
/// Reads the receivable only once the token has matured, since no root is
/// settled before its maturity.
pub(super) fn not_settled<S: StateView>(
    call: &Call<'_, S>,
    token: &Token,
) -> Result<(), ExecError> {
    if call.context.time < token.maturity || !token.is_unspent() {
        return Ok(());
    }
    let receivable = call.state.receivable(&token.root_id)?;
    if receivable.is_some_and(|receivable| receivable.settlement.is_some()) {
        return Err(TxError::TokenSettled { token: token.id }.into());
    }
    Ok(())
}

fn not_matured(token: &Token, now: Timestamp) -> Result<(), TxError> {
    if now >= token.maturity {
        return Err(TxError::Matured {
            token: token.id,
            maturity: token.maturity,
            now,
        });
    }
    Ok(())
}

/// A child of `parent` created as output `index` of this transaction.
fn child<S: StateView>(
    call: &Call<'_, S>,
    parent: &Token,
    index: u32,
    holder: PublicKey,
    amount: Amount,
    origin: Origin,
) -> Token {
    Token {
        id: TokenId::derive(&call.tx_hash, index),
        root_id: parent.root_id,
        parent_id: Some(parent.id),
        issuer: parent.issuer,
        holder,
        amount,
        maturity: parent.maturity,
        invoice_ref: parent.invoice_ref,
        status: TokenStatus::Active,
        frozen: false,
        origin,
        created_at: call.context.height,
    }
}

pub(super) fn transfer<S: StateView>(
    call: &Call<'_, S>,
    id: &TokenId,
    outputs: &[Output],
) -> Result<Changes, ExecError> {
    // Output count, positive amounts and a sum within 64 bits are stateless
    // rules, checked before execution (`check_stateless`).
    let mut input = usable_token(call, id)?;
    let mut sum = Amount::ZERO;
    for output in outputs {
        sum = sum
            .checked_add(output.amount)
            .expect("check_stateless refused outputs whose sum overflows");
    }
    if sum != input.amount {
        return Err(TxError::AmountsNotConserved {
            input: input.amount,
            outputs: sum,
        }
        .into());
    }
    for output in outputs {
        if output.recipient != call.signer.key {
            active_participant(call.state, &output.recipient)?;
        }
    }
    let mut changes = Vec::with_capacity(outputs.len() + 1);
    for (index, output) in outputs.iter().enumerate() {
        let index = u32::try_from(index)
            .expect("check_stateless allows at most MAX_TRANSFER_OUTPUTS outputs");
        changes.push(StateValue::Token(child(
            call,
            &input,
            index,
            output.recipient,
            output.amount,
            Origin::Transferred,
        )));
    }
    input.status = TokenStatus::Spent { by: call.tx_hash };
    changes.push(StateValue::Token(input));
    Ok(changes)
}

/// Price = amount × (1 − rate × days / 360), rounded down to a minor unit.
fn discounted_price(amount: Amount, rate_bps: u32, days: u64) -> Result<Amount, TxError> {
    let discount = u128::from(rate_bps) * u128::from(days);
    if discount >= RATE_DAY_SCALE {
        return Err(TxError::DiscountTooLarge { rate_bps, days });
    }
    let price = u128::from(amount.0) * (RATE_DAY_SCALE - discount) / RATE_DAY_SCALE;
    Ok(Amount(
        u64::try_from(price).expect("price is at most the amount"),
    ))
}

pub(super) fn request_financing<S: StateView>(
    call: &Call<'_, S>,
    id: &TokenId,
    bank: &PublicKey,
    rate_bps: u32,
) -> Result<Changes, ExecError> {
    let mut token = usable_token(call, id)?;
    let bank_participant = active_participant(call.state, bank)?;
    require_role(&bank_participant, Some(Role::Bank))?;
    // Refuse at once an offer no bank could accept today.
    discounted_price(
        token.amount,
        rate_bps,
        call.context.time.days_until(token.maturity),
    )?;
    token.status = TokenStatus::Pending {
        bank: *bank,
        rate_bps,
    };
    Ok(vec![StateValue::Token(token)])
}

/// The token `id`, pending with the signer as its bank; returns the rate.
fn offered_to_signer<S: StateView>(
    call: &Call<'_, S>,
    id: &TokenId,
) -> Result<(Token, u32), ExecError> {
    let token = call
        .state
        .token(id)?
        .ok_or(TxError::UnknownToken { token: *id })?;
    let (bank, rate_bps) = match token.status {
        TokenStatus::Pending { bank, rate_bps } => (bank, rate_bps),
        TokenStatus::Spent { .. } => return Err(TxError::TokenSpent { token: *id }.into()),
        TokenStatus::Settled { .. } => return Err(TxError::TokenSettled { token: *id }.into()),
        TokenStatus::Active => return Err(TxError::NotPending { token: *id }.into()),
    };
    not_settled(call, &token)?;
    if bank != call.signer.key {
        return Err(TxError::NotTheFinancingBank {
            token: *id,
            bank,
            signer: call.signer.key,
        }
        .into());
    }
    Ok((token, rate_bps))
}

pub(super) fn accept_financing<S: StateView>(
    call: &Call<'_, S>,
    id: &TokenId,
) -> Result<Changes, ExecError> {
    let (mut token, rate_bps) = offered_to_signer(call, id)?;
    if token.frozen {
        return Err(TxError::TokenFrozen { token: *id }.into());
    }
    let now = call.context.time;
    not_matured(&token, now)?;
    let days = now.days_until(token.maturity);
    let price = discounted_price(token.amount, rate_bps, days)?;
    let origin = Origin::Financed {
        seller: token.holder,
        price,
        rate_bps,
        days,
    };
    let bought = child(call, &token, 0, call.signer.key, token.amount, origin);
    token.status = TokenStatus::Spent { by: call.tx_hash };
    Ok(vec![StateValue::Token(bought), StateValue::Token(token)])
}

pub(super) fn reject_financing<S: StateView>(
    call: &Call<'_, S>,
    id: &TokenId,
) -> Result<Changes, ExecError> {
    let (mut token, _) = offered_to_signer(call, id)?;
    token.status = TokenStatus::Active;
    Ok(vec![StateValue::Token(token)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discount_follows_the_360_day_formula() {
        // 1,000,000.00 at 4.35% for 90 days: 1,000,000 × (1 − 0.0435 × 90/360).
        assert_eq!(
            discounted_price(Amount(100_000_000), 435, 90),
            Ok(Amount(98_912_500))
        );
        assert_eq!(discounted_price(Amount(100), 0, 1000), Ok(Amount(100)));
        assert_eq!(
            discounted_price(Amount(100), 10_000, 360),
            Err(TxError::DiscountTooLarge {
                rate_bps: 10_000,
                days: 360
            })
        );
    }
}
