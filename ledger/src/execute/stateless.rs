//! The rules a transaction must satisfy whatever the state: its encoded
//! size, text lengths, output counts, non-zero amounts, usable new keys, the
//! shape of a validator-set change. One function,
//! [`check_stateless`], used by execution (first, before any state read) and
//! by the node's mempool on entry for every transaction, so the two can
//! never disagree about what is well-formed.
//!
//! Known kinds need no check here: a body is a closed enum, and an unknown
//! kind tag never decodes (borsh) or parses (serde).
//!
//! Deliberately not here: anything that reads the state or the block time
//! (who holds a token, whether a maturity is still ahead, the signer's
//! roles; see [`check_signer_role`](super::check_signer_role)).

use crypto::PublicKey;

use crate::amount::Amount;
use crate::error::TxError;
use crate::transaction::{MAX_TRANSFER_OUTPUTS, MAX_TX_BYTES, Output, SignedTransaction, TxBody};

/// Checks every rule of `tx` that depends on nothing but its bytes.
///
/// Execution runs it before reading any state, so a transaction that breaks
/// one of these rules is refused with the same error on every node, even on
/// one whose disk fails.
pub fn check_stateless(tx: &SignedTransaction) -> Result<(), TxError> {
    // Every entry path decodes with this limit (`SignedTransaction::from_bytes`);
    // a block carries its transactions inside a larger limit, so the rule
    // is also a rule of execution.
    let len = borsh::object_length(tx).unwrap_or(usize::MAX);
    if len > MAX_TX_BYTES {
        return Err(TxError::TxTooLarge {
            len,
            limit: MAX_TX_BYTES,
        });
    }
    match &tx.tx.body {
        TxBody::RegisterParticipant { name, roles, .. } => {
            check_text("participant name", name)?;
            if roles.is_empty() {
                return Err(TxError::NoRoles);
            }
        }
        TxBody::ConfirmReceivable { amount, .. } => {
            if *amount == Amount::ZERO {
                return Err(TxError::ZeroAmount);
            }
        }
        TxBody::Transfer { outputs, .. } => check_outputs(outputs)?,
        TxBody::Settle { payment_ref, .. } => check_text("payment reference", payment_ref)?,
        TxBody::Freeze { reason, .. } => check_text("freeze reason", reason)?,
        TxBody::RotateParticipantKey { new_key } | TxBody::RequestKeyRecovery { new_key, .. } => {
            check_key("new key", new_key)?
        }
        TxBody::ProposeValidatorChange { change, .. } => change.check_stateless()?,
        TxBody::DeactivateParticipant { .. }
        | TxBody::GrantCreditLine { .. }
        | TxBody::RequestFinancing { .. }
        | TxBody::AcceptFinancing { .. }
        | TxBody::RejectFinancing { .. }
        | TxBody::Unfreeze { .. }
        | TxBody::ApproveKeyRecovery { .. }
        | TxBody::ApproveValidatorChange { .. } => {}
    }
    Ok(())
}

/// A key a participant or validator is to sign with from now on: a point
/// of the curve, and not one of small order (for which a signature proves
/// nothing about who signed), as genesis requires of its keys.
pub(crate) fn check_key(what: &'static str, key: &PublicKey) -> Result<(), TxError> {
    let reason = match key.verifying_key() {
        Err(_) => "not a point on the ed25519 curve",
        Ok(point) if point.is_weak() => "a small-order (weak) ed25519 point",
        Ok(_) => return Ok(()),
    };
    Err(TxError::InvalidKey {
        what,
        key: *key,
        reason,
    })
}

/// Between 1 and [`MAX_TRANSFER_OUTPUTS`] outputs, each of a positive
/// amount, whose sum fits in 64 bits. (That the sum equals the spent
/// token's amount needs the state.)
fn check_outputs(outputs: &[Output]) -> Result<(), TxError> {
    if outputs.is_empty() || outputs.len() > MAX_TRANSFER_OUTPUTS {
        return Err(TxError::OutputCount {
            got: outputs.len(),
            limit: MAX_TRANSFER_OUTPUTS,
        });
    }
    let mut sum = Amount::ZERO;
    for output in outputs {
        if output.amount == Amount::ZERO {
            return Err(TxError::ZeroAmount);
        }
        sum = sum
            .checked_add(output.amount)
            .ok_or(TxError::AmountOverflow)?;
    }
    Ok(())
}

/// Not blank, and at most `MAX_TEXT_BYTES` bytes.
pub(crate) fn check_text(what: &'static str, text: &str) -> Result<(), TxError> {
    use crate::transaction::MAX_TEXT_BYTES;
    if text.trim().is_empty() {
        return Err(TxError::EmptyText { what });
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(TxError::TextTooLong {
            what,
            len: text.len(),
            limit: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::ValidatorChange;
    use crate::participant::Role;
    use crate::token::TokenId;
    use crate::transaction::Transaction;
    use crypto::{ChainId, Hash, Keypair};

    fn signed(body: TxBody) -> SignedTransaction {
        let key = Keypair::from_seed([7; 32]);
        Transaction {
            chain_id: ChainId(Hash([1; 32])),
            signer: key.public(),
            nonce: 0,
            body,
        }
        .sign(&key)
    }

    fn outputs(amounts: &[u64]) -> TxBody {
        TxBody::Transfer {
            token: TokenId(Hash([2; 32])),
            outputs: amounts
                .iter()
                .map(|amount| Output {
                    recipient: PublicKey([3; 32]),
                    amount: Amount(*amount),
                })
                .collect(),
        }
    }

    /// One row per stateless rule: the body, and the error (None: holds).
    #[test]
    fn each_stateless_rule_holds_and_breaks() {
        let register = |name: &str, roles: Vec<Role>| TxBody::RegisterParticipant {
            key: PublicKey([4; 32]),
            name: name.into(),
            roles,
        };
        let long = "x".repeat(257);
        let rows: Vec<(&str, TxBody, Option<TxError>)> = vec![
            ("a name", register("bank", vec![Role::Bank]), None),
            (
                "a blank name",
                register("  ", vec![Role::Bank]),
                Some(TxError::EmptyText {
                    what: "participant name",
                }),
            ),
            (
                "a long name",
                register(&long, vec![Role::Bank]),
                Some(TxError::TextTooLong {
                    what: "participant name",
                    len: 257,
                    limit: 256,
                }),
            ),
            ("no roles", register("bank", vec![]), Some(TxError::NoRoles)),
            (
                "a huge role list",
                register("bank", vec![Role::Bank; MAX_TX_BYTES]),
                Some(TxError::TxTooLarge {
                    len: borsh::object_length(&signed(register(
                        "bank",
                        vec![Role::Bank; MAX_TX_BYTES],
                    )))
                    .unwrap(),
                    limit: MAX_TX_BYTES,
                }),
            ),
            (
                "a zero confirmation",
                TxBody::ConfirmReceivable {
                    supplier: PublicKey([4; 32]),
                    amount: Amount::ZERO,
                    maturity: crate::amount::Timestamp(1),
                    invoice_ref: Hash([5; 32]),
                },
                Some(TxError::ZeroAmount),
            ),
            ("64 outputs", outputs(&[1; 64]), None),
            (
                "65 outputs",
                outputs(&[1; 65]),
                Some(TxError::OutputCount { got: 65, limit: 64 }),
            ),
            (
                "no outputs",
                outputs(&[]),
                Some(TxError::OutputCount { got: 0, limit: 64 }),
            ),
            ("a zero output", outputs(&[5, 0]), Some(TxError::ZeroAmount)),
            (
                "outputs overflowing",
                outputs(&[u64::MAX, 1]),
                Some(TxError::AmountOverflow),
            ),
            (
                "a blank payment reference",
                TxBody::Settle {
                    root: TokenId(Hash([2; 32])),
                    payment_ref: String::new(),
                },
                Some(TxError::EmptyText {
                    what: "payment reference",
                }),
            ),
            (
                "a long freeze reason",
                TxBody::Freeze {
                    token: TokenId(Hash([2; 32])),
                    reason: long.clone(),
                },
                Some(TxError::TextTooLong {
                    what: "freeze reason",
                    len: 257,
                    limit: 256,
                }),
            ),
        ];
        for (what, body, expected) in rows {
            assert_eq!(check_stateless(&signed(body)).err(), expected, "{what}");
        }
    }

    /// The same for keys and validator-set changes.
    #[test]
    fn each_stateless_key_and_governance_rule_holds_and_breaks() {
        let good = Keypair::from_seed([8; 32]).public();
        // The neutral point: of small order, so a signature proves nothing.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let weak = PublicKey(weak);
        let peer_id: crate::governance::PeerId =
            "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
                .parse()
                .unwrap();
        // y = 2: (y² − 1)/(d·y² + 1) is not a square, so no x exists.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        let off_curve = PublicKey(off_curve);
        let add = |name: &str, key: PublicKey, address: &str, power: u64| {
            TxBody::ProposeValidatorChange {
                change: ValidatorChange::Add {
                    name: name.into(),
                    consensus_key: key,
                    peer_id: peer_id.clone(),
                    address: address.into(),
                    power,
                },
                expires_at: 10,
            }
        };
        let change = |change| TxBody::ProposeValidatorChange {
            change,
            expires_at: 10,
        };
        let address = "/ip4/10.0.0.5/tcp/26656";
        let weak_error = |what| TxError::InvalidKey {
            what,
            key: weak,
            reason: "a small-order (weak) ed25519 point",
        };
        let rows: Vec<(&str, TxBody, Option<TxError>)> = vec![
            (
                "a rotation to a usable key",
                TxBody::RotateParticipantKey { new_key: good },
                None,
            ),
            (
                "a rotation to a weak key",
                TxBody::RotateParticipantKey { new_key: weak },
                Some(weak_error("new key")),
            ),
            (
                "a recovery to a key off the curve",
                TxBody::RequestKeyRecovery {
                    participant: good,
                    new_key: off_curve,
                },
                Some(TxError::InvalidKey {
                    what: "new key",
                    key: off_curve,
                    reason: "not a point on the ed25519 curve",
                }),
            ),
            ("an addition", add("bank-e", good, address, 1), None),
            (
                "an addition without a name",
                add(" ", good, address, 1),
                Some(TxError::EmptyText {
                    what: "validator name",
                }),
            ),
            (
                "an addition at a host:port",
                add("bank-e", good, "10.0.0.5:26656", 1),
                Some(TxError::InvalidAddress {
                    address: "10.0.0.5:26656".into(),
                }),
            ),
            (
                "an addition of power 0",
                add("bank-e", good, address, 0),
                Some(TxError::ZeroVotingPower),
            ),
            (
                "an addition of a weak key",
                add("bank-e", weak, address, 1),
                Some(weak_error("consensus key")),
            ),
            (
                "a power of 0",
                change(ValidatorChange::SetPower {
                    consensus_key: good,
                    power: 0,
                }),
                Some(TxError::ZeroVotingPower),
            ),
            (
                "a rotation to the same key",
                change(ValidatorChange::RotateKey {
                    old_key: good,
                    new_key: good,
                }),
                Some(TxError::SameKey { key: good }),
            ),
            (
                "a consensus-key rotation to a weak key",
                change(ValidatorChange::RotateKey {
                    old_key: good,
                    new_key: weak,
                }),
                Some(weak_error("new consensus key")),
            ),
        ];
        for (what, body, expected) in rows {
            assert_eq!(check_stateless(&signed(body)).err(), expected, "{what}");
        }
    }
}
