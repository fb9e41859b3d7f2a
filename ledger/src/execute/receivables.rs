//! Rules for the two ends of a receivable's life, both signed by the core
//! enterprise: confirming it (issuing the root token against a credit line)
//! and settling it at maturity (paying every current holder).

use crypto::{Hash, PublicKey};

use super::{Call, active_participant, require_role};
use crate::amount::{Amount, Timestamp};
use crate::error::{ExecError, TxError};
use crate::participant::Role;
use crate::state::{Changes, StateValue, StateView};
use crate::token::{
    CreditLine, InvoiceRecord, Origin, Receivable, Settlement, Token, TokenId, TokenStatus,
};

pub(super) fn confirm<S: StateView>(
    call: &Call<'_, S>,
    supplier: &PublicKey,
    amount: Amount,
    maturity: Timestamp,
    invoice_ref: &Hash,
) -> Result<Changes, ExecError> {
    let now = call.context.time;
    let recipient = active_participant(call.state, supplier)?;
    require_role(&recipient, Some(Role::Supplier))?;
    if maturity <= now {
        return Err(TxError::MaturityNotInFuture { maturity, now }.into());
    }
    if let Some(record) = call.state.invoice(invoice_ref)? {
        return Err(TxError::InvoiceAlreadyConfirmed {
            invoice_ref: *invoice_ref,
            token: record.root_id,
        }
        .into());
    }
    let core = call.signer.key;
    let mut line = call
        .state
        .credit_line(&core)?
        .unwrap_or_else(|| CreditLine::new(core));
    let limit = line.limit();
    let exceeded = TxError::CreditLineExceeded {
        core,
        limit,
        outstanding: line.outstanding,
        requested: amount,
    };
    let outstanding = line
        .outstanding
        .checked_add(amount)
        .ok_or(exceeded.clone())?;
    if outstanding > limit {
        return Err(exceeded.into());
    }
    line.outstanding = outstanding;

    let id = TokenId::derive(&call.tx_hash, 0);
    let token = Token {
        id,
        root_id: id,
        parent_id: None,
        issuer: core,
        holder: *supplier,
        amount,
        maturity,
        invoice_ref: *invoice_ref,
        status: TokenStatus::Active,
        frozen: false,
        origin: Origin::Confirmed,
        created_at: call.context.height,
    };
    let receivable = Receivable {
        root_id: id,
        issuer: core,
        amount,
        maturity,
        invoice_ref: *invoice_ref,
        frozen_tokens: 0,
        settlement: None,
    };
    Ok(vec![
        StateValue::Token(token),
        StateValue::Receivable(receivable),
        StateValue::Invoice(InvoiceRecord {
            invoice_ref: *invoice_ref,
            root_id: id,
        }),
        StateValue::CreditLine(line),
    ])
}

pub(super) fn settle<S: StateView>(
    call: &Call<'_, S>,
    root: &TokenId,
    payment_ref: &str,
) -> Result<Changes, ExecError> {
    let now = call.context.time;
    let root_token = call
        .state
        .token(root)?
        .ok_or(TxError::UnknownToken { token: *root })?;
    if root_token.parent_id.is_some() {
        return Err(TxError::NotRoot {
            token: *root,
            root: root_token.root_id,
        }
        .into());
    }
    let mut receivable = call
        .state
        .receivable(root)?
        .ok_or(TxError::UnknownToken { token: *root })?;
    if receivable.issuer != call.signer.key {
        return Err(TxError::NotIssuer {
            issuer: receivable.issuer,
            signer: call.signer.key,
        }
        .into());
    }
    if now < receivable.maturity {
        return Err(TxError::NotMatured {
            maturity: receivable.maturity,
            now,
        }
        .into());
    }
    if receivable.settlement.is_some() {
        return Err(TxError::AlreadySettled { root: *root }.into());
    }
    if receivable.frozen_tokens > 0 {
        // A disputed token blocks the whole settlement until an auditor
        // resolves it: paying around it would pay the wrong party.
        return Err(TxError::DisputedTokens {
            root: *root,
            frozen: receivable.frozen_tokens,
        }
        .into());
    }
    // The work is the same for a root split into one token or a million:
    // the tokens are not rewritten (see `TokenStatus::Settled`).
    receivable.settlement = Some(Settlement {
        payment_ref: payment_ref.to_string(),
        settled_at: now,
    });
    let mut line = call
        .state
        .credit_line(&receivable.issuer)?
        .unwrap_or_else(|| CreditLine::new(receivable.issuer));
    // Confirmation added exactly this amount, so it cannot underflow.
    line.outstanding = line
        .outstanding
        .checked_sub(receivable.amount)
        .unwrap_or(Amount::ZERO);
    Ok(vec![
        StateValue::Receivable(receivable),
        StateValue::CreditLine(line),
    ])
}
