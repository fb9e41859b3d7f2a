//! The ledger state machine: `execute(block context, state, transaction)`
//! returns the changes the transaction makes, or the rule it breaks, or
//! (apart from both) the state read that failed.
//!
//! Execution is a pure function of its inputs. Time is the block's time,
//! never a clock; nothing iterates a hash map; nothing is random. Every node
//! that executes the same blocks therefore reaches the same state.
//!
//! Signatures are checked before execution, in batches ([`verify`] and
//! [`verify_batch`]): a [`VerifiedTx`] can only be made by checking one. The
//! rules for each kind of transaction live in the submodules.

mod admin;
mod receivables;
mod stateless;
mod tokens;

pub use stateless::check_stateless;

use crypto::{ChainId, PublicKey};

use crate::amount::Timestamp;
use crate::error::{ExecError, TxError};
use crate::participant::{Participant, Role};
use crate::state::{Changes, StateValue, StateView};
use crate::transaction::{SignedTransaction, TxBody, TxHash, verify_signatures};

/// What a transaction may learn about the block that carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockContext {
    pub chain_id: ChainId,
    pub height: u64,
    /// The block's time: the only clock the rules read.
    pub time: Timestamp,
}

/// A transaction whose signature has been checked, with its hash.
#[derive(Clone, Copy, Debug)]
pub struct VerifiedTx<'a> {
    tx: &'a SignedTransaction,
    hash: TxHash,
}

impl<'a> VerifiedTx<'a> {
    pub fn tx(&self) -> &'a SignedTransaction {
        self.tx
    }

    pub fn hash(&self) -> TxHash {
        self.hash
    }

    /// For a caller that has already verified this exact transaction's
    /// signature, such as a mempool that remembers its batch checks by hash.
    pub fn assume_verified(tx: &'a SignedTransaction, hash: TxHash) -> Self {
        VerifiedTx { tx, hash }
    }
}

/// Checks one transaction's signature.
pub fn verify(tx: &SignedTransaction) -> Result<VerifiedTx<'_>, TxError> {
    tx.verify_signature()?;
    Ok(VerifiedTx {
        tx,
        hash: tx.hash(),
    })
}

/// Checks many signatures at once (batched, across cores).
pub fn verify_batch(txs: &[SignedTransaction]) -> Vec<Result<VerifiedTx<'_>, TxError>> {
    verify_signatures(txs)
        .into_iter()
        .zip(txs)
        .map(|(result, tx)| {
            result.map(|()| VerifiedTx {
                tx,
                hash: tx.hash(),
            })
        })
        .collect()
}

/// Verifies the signature, then executes. See [`execute_verified`].
pub fn execute(
    context: &BlockContext,
    state: &impl StateView,
    tx: &SignedTransaction,
) -> Result<Changes, ExecError> {
    execute_verified(context, state, verify(tx)?)
}

/// Applies the rules of `tx` to `state` at `context` and returns the new
/// values it writes (including the signer's advanced nonce). A refused
/// transaction ([`ExecError::Refused`]) changes nothing; neither does one
/// whose execution could not read the state ([`ExecError::State`]), which
/// says nothing about the transaction.
pub fn execute_verified(
    context: &BlockContext,
    state: &impl StateView,
    verified: VerifiedTx<'_>,
) -> Result<Changes, ExecError> {
    let tx = &verified.tx.tx;
    if tx.chain_id != context.chain_id {
        return Err(TxError::WrongChain {
            expected: context.chain_id,
            got: tx.chain_id,
        }
        .into());
    }
    // Before any read: a malformed transaction gets the same verdict on
    // every node, whatever its disk does.
    check_stateless(verified.tx)?;
    let mut signer = active_participant(state, &tx.signer)?;
    if tx.nonce < signer.next_nonce {
        return Err(TxError::Replay {
            signer: signer.key,
            expected: signer.next_nonce,
            got: tx.nonce,
        }
        .into());
    }
    if tx.nonce > signer.next_nonce {
        return Err(TxError::NonceTooHigh {
            signer: signer.key,
            expected: signer.next_nonce,
            got: tx.nonce,
        }
        .into());
    }
    require_role(&signer, required_role(&tx.body))?;

    let call = Call {
        context,
        state,
        signer: &signer,
        tx_hash: verified.hash,
    };
    let mut changes = match &tx.body {
        TxBody::RegisterParticipant { key, name, roles } => {
            admin::register(&call, key, name, roles)?
        }
        TxBody::DeactivateParticipant { key } => admin::deactivate(&call, key)?,
        TxBody::GrantCreditLine { core, limit } => admin::grant_credit_line(&call, core, *limit)?,
        TxBody::Freeze { token, reason } => admin::freeze(&call, token, reason)?,
        TxBody::Unfreeze { token } => admin::unfreeze(&call, token)?,
        TxBody::ConfirmReceivable {
            supplier,
            amount,
            maturity,
            invoice_ref,
        } => receivables::confirm(&call, supplier, *amount, *maturity, invoice_ref)?,
        TxBody::Settle { root, payment_ref } => receivables::settle(&call, root, payment_ref)?,
        TxBody::Transfer { token, outputs } => tokens::transfer(&call, token, outputs)?,
        TxBody::RequestFinancing {
            token,
            bank,
            rate_bps,
        } => tokens::request_financing(&call, token, bank, *rate_bps)?,
        TxBody::AcceptFinancing { token } => tokens::accept_financing(&call, token)?,
        TxBody::RejectFinancing { token } => tokens::reject_financing(&call, token)?,
    };
    // A transaction that deactivates its own signer must not have that
    // write undone by the nonce update below.
    if let Some(StateValue::Participant(updated)) = changes
        .iter()
        .find(|value| matches!(value, StateValue::Participant(p) if p.key == signer.key))
    {
        signer = updated.clone();
    }
    signer.next_nonce += 1;
    changes.retain(|value| !matches!(value, StateValue::Participant(p) if p.key == signer.key));
    changes.push(StateValue::Participant(signer));
    Ok(changes)
}

/// The role rule alone: whether `signer` may sign `body`'s kind at all.
/// Roles never change once registered, so a mempool can check this for a
/// transaction waiting behind a nonce gap, against the signer's committed
/// record.
pub fn check_signer_role(signer: &Participant, body: &TxBody) -> Result<(), TxError> {
    require_role(signer, required_role(body))
}

/// Who may sign each kind (DESIGN.md's table). Holder and bank checks that
/// depend on the token are made by the kind's own rules.
fn required_role(body: &TxBody) -> Option<Role> {
    match body {
        TxBody::RegisterParticipant { .. } | TxBody::DeactivateParticipant { .. } => {
            Some(Role::Operator)
        }
        TxBody::GrantCreditLine { .. }
        | TxBody::AcceptFinancing { .. }
        | TxBody::RejectFinancing { .. } => Some(Role::Bank),
        TxBody::ConfirmReceivable { .. } | TxBody::Settle { .. } => Some(Role::CoreEnterprise),
        TxBody::Freeze { .. } | TxBody::Unfreeze { .. } => Some(Role::Auditor),
        // Any registered holder: a supplier, or a bank passing on a financed token.
        TxBody::Transfer { .. } | TxBody::RequestFinancing { .. } => None,
    }
}

/// Everything a rule needs about the call.
pub(crate) struct Call<'a, S: StateView> {
    pub context: &'a BlockContext,
    pub state: &'a S,
    pub signer: &'a Participant,
    pub tx_hash: TxHash,
}

pub(crate) fn require_role(participant: &Participant, role: Option<Role>) -> Result<(), TxError> {
    match role {
        Some(needed) if !participant.has_role(needed) => Err(TxError::MissingRole {
            key: participant.key,
            needed,
        }),
        _ => Ok(()),
    }
}

/// A registered participant that has not been deactivated.
pub(crate) fn active_participant(
    state: &impl StateView,
    key: &PublicKey,
) -> Result<Participant, ExecError> {
    let participant = state
        .participant(key)?
        .ok_or(TxError::UnknownParticipant { key: *key })?;
    if !participant.active {
        return Err(TxError::ParticipantInactive { key: *key }.into());
    }
    Ok(participant)
}
