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
//!
//! Who signs: the signer is a participant's current signing key
//! ([`signing_participant`]); the participant is then named by its
//! identity everywhere (tokens, credit lines, events' parties). A validator
//! signs governance transactions with its consensus key, which is its
//! account's signing key, and the account's nonce.

mod admin;
mod keys;
mod receivables;
mod stateless;
mod tokens;
mod validators;

pub use stateless::check_stateless;
pub(crate) use stateless::{check_key, check_text};

use crypto::{ChainId, PublicKey};

use crate::amount::Timestamp;
use crate::error::{ExecError, StateError, TxError};
use crate::participant::{Participant, Role};
use crate::state::{Changes, StateKey, StateValue, StateView};
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
    let mut signer = signing_participant(state, &tx.signer)?;
    if tx.nonce < signer.next_nonce {
        return Err(TxError::Replay {
            signer: tx.signer,
            expected: signer.next_nonce,
            got: tx.nonce,
        }
        .into());
    }
    if tx.nonce > signer.next_nonce {
        return Err(TxError::NonceTooHigh {
            signer: tx.signer,
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
        TxBody::RotateParticipantKey { new_key } => keys::rotate(&call, new_key)?,
        TxBody::RequestKeyRecovery {
            participant,
            new_key,
        } => keys::request_recovery(&call, participant, new_key)?,
        TxBody::ApproveKeyRecovery {
            participant,
            new_key,
        } => keys::approve_recovery(&call, participant, new_key)?,
        TxBody::ProposeValidatorChange { change, expires_at } => {
            validators::propose(&call, change, *expires_at)?
        }
        TxBody::ApproveValidatorChange { proposal } => validators::approve(&call, proposal)?,
    };
    // A transaction that deactivates its own signer, or changes its key,
    // must not have that write undone by the nonce update below.
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
/// Roles never change once registered (a validator's account gets its one
/// role when it is created), so a mempool can check this for a transaction
/// waiting behind a nonce gap, against the signer's committed record.
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
        TxBody::Freeze { .. } | TxBody::Unfreeze { .. } | TxBody::ApproveKeyRecovery { .. } => {
            Some(Role::Auditor)
        }
        TxBody::RequestKeyRecovery { .. } => Some(Role::Operator),
        // Membership of the set in force is checked by the rules.
        TxBody::ProposeValidatorChange { .. } | TxBody::ApproveValidatorChange { .. } => {
            Some(Role::Validator)
        }
        // Any registered holder: a supplier, or a bank passing on a financed token.
        TxBody::Transfer { .. } | TxBody::RequestFinancing { .. } => None,
        // Any participant (validators' accounts are refused by the rule).
        TxBody::RotateParticipantKey { .. } => None,
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

/// The registered participant named by its identity `key`, not
/// deactivated. A key the participant rotated to is not its name
/// ([`TxError::NotAnIdentity`]): what names a participant never changes.
pub(crate) fn active_participant(
    state: &impl StateView,
    key: &PublicKey,
) -> Result<Participant, ExecError> {
    let Some(participant) = state.participant(key)? else {
        return Err(match state.key_binding(key)? {
            Some(binding) => TxError::NotAnIdentity {
                key: *key,
                participant: binding.participant,
            },
            None => TxError::UnknownParticipant { key: *key },
        }
        .into());
    };
    if !participant.active {
        return Err(TxError::ParticipantInactive { key: *key }.into());
    }
    Ok(participant)
}

/// The participant that `key` signs for, active, with `key` as its current
/// signing key: its identity if it never rotated, else the key its last
/// rotation or recovery bound to it. Any other key it ever had is refused
/// ([`TxError::KeyReplaced`]). A mempool looks signers up with this too.
pub fn signing_participant(
    state: &impl StateView,
    key: &PublicKey,
) -> Result<Participant, ExecError> {
    let participant = match state.participant(key)? {
        Some(participant) => participant,
        None => {
            let binding = state
                .key_binding(key)?
                .ok_or(TxError::UnknownParticipant { key: *key })?;
            state
                .participant(&binding.participant)?
                .ok_or_else(|| StateError {
                    key: StateKey::Participant(binding.participant),
                    reason: format!("key {key} is bound to a participant that is not in the state"),
                })?
        }
    };
    if participant.signing_key != *key {
        return Err(TxError::KeyReplaced {
            key: *key,
            participant: participant.key,
        }
        .into());
    }
    if !participant.active {
        return Err(TxError::ParticipantInactive {
            key: participant.key,
        }
        .into());
    }
    Ok(participant)
}

/// A key no participant or validator has, or had: what a rotation, a
/// recovery or a new validator's account may take. (Identities and bound
/// keys are never deleted, so a key once used stays used.)
pub(crate) fn require_unused_key(state: &impl StateView, key: &PublicKey) -> Result<(), ExecError> {
    if state.participant(key)?.is_some() || state.key_binding(key)?.is_some() {
        return Err(TxError::KeyInUse { key: *key }.into());
    }
    Ok(())
}
