//! Events: what each committed transaction did, as typed records an
//! integrator can follow in commit order.
//!
//! Every event has a [`Cursor`] (height, transaction index, event index)
//! whose text form is fixed-width, so ordering cursors as strings is commit
//! order. Events are derived from a committed block and state entries only
//! through fields that never change once written (a token's holder, amount,
//! root, origin, and the transaction that spent it; the identity a key is
//! bound to; a proposal's adoption, which closes it for good), so deriving a
//! block's events at any later height gives the same events: every node,
//! and a node that derives them again after a crash, agrees.
//!
//! A settlement pays every holder of the root's tokens unspent at maturity.
//! Execution does not walk those tokens (settling is O(1), see
//! [`crate::token::TokenStatus::Settled`]); [`derive_block_events`] does, off
//! the commit path. Nothing can spend a token once its root has matured, so
//! the walk finds the same tokens whenever it runs.
//!
//! Not here: storing events and serving them (`store::events`), their JSON
//! form (the node's API types). Events are not part of the app hash.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{Hash, PublicKey};

use crate::amount::{Amount, Timestamp};
use crate::block::Block;
use crate::governance::ValidatorChange;
use crate::participant::Role;
use crate::state::{StateKey, StateValue};
use crate::token::{Origin, Token, TokenId, TokenStatus};
use crate::transaction::{MAX_TRANSFER_OUTPUTS, TxBody, TxHash};

/// Where an event is in commit order: block height, the transaction's index
/// in its block, the event's index among its transaction's events.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Cursor {
    pub height: u64,
    pub tx_index: u32,
    pub event_index: u32,
}

impl Cursor {
    /// Before every event: the feed from its beginning.
    pub const START: Cursor = Cursor {
        height: 0,
        tx_index: 0,
        event_index: 0,
    };

    /// Length of the text form: 20 + 1 + 10 + 1 + 10.
    pub const TEXT_LEN: usize = 42;

    /// The store's key: big-endian fields, so byte order is commit order.
    pub fn to_key(self) -> [u8; 16] {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&self.height.to_be_bytes());
        key[8..12].copy_from_slice(&self.tx_index.to_be_bytes());
        key[12..].copy_from_slice(&self.event_index.to_be_bytes());
        key
    }

    pub fn from_key(key: &[u8]) -> Option<Cursor> {
        let key: &[u8; 16] = key.try_into().ok()?;
        Some(Cursor {
            height: u64::from_be_bytes(key[..8].try_into().ok()?),
            tx_index: u32::from_be_bytes(key[8..12].try_into().ok()?),
            event_index: u32::from_be_bytes(key[12..].try_into().ok()?),
        })
    }
}

/// `HHHHHHHHHHHHHHHHHHHH-TTTTTTTTTT-EEEEEEEEEE`: zero-padded decimals, so
/// string order equals commit order.
impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:020}-{:010}-{:010}",
            self.height, self.tx_index, self.event_index
        )
    }
}

/// A cursor that is not in the fixed-width text form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "cursor {text:?} is not HEIGHT-TX-EVENT with 20, 10 and 10 digits (e.g. 00000000000000000012-0000000003-0000000000); pass a `next` or `cursor` the feed gave"
)]
pub struct BadCursor {
    pub text: String,
}

impl FromStr for Cursor {
    type Err = BadCursor;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadCursor {
            text: text.chars().take(64).collect(),
        };
        if text.len() != Cursor::TEXT_LEN || !text.is_ascii() {
            return Err(bad());
        }
        let bytes = text.as_bytes();
        if bytes[20] != b'-' || bytes[31] != b'-' {
            return Err(bad());
        }
        let digits = |part: &str| -> Result<u64, BadCursor> {
            if !part.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<u64>().map_err(|_| bad())
        };
        let height = digits(&text[..20])?;
        let tx_index = u32::try_from(digits(&text[21..31])?).map_err(|_| bad())?;
        let event_index = u32::try_from(digits(&text[32..])?).map_err(|_| bad())?;
        Ok(Cursor {
            height,
            tx_index,
            event_index,
        })
    }
}

/// One output of a transfer as its event shows it.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct TransferredOutput {
    pub token: TokenId,
    pub holder: PublicKey,
    pub amount: Amount,
}

/// What happened.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum EventKind {
    ParticipantRegistered {
        key: PublicKey,
        name: String,
        roles: Vec<Role>,
    },
    ParticipantDeactivated {
        key: PublicKey,
    },
    /// The signer (a bank) set its grant in `core`'s credit line to `limit`.
    CreditLineGranted {
        bank: PublicKey,
        core: PublicKey,
        limit: Amount,
    },
    ReceivableConfirmed {
        root: TokenId,
        core: PublicKey,
        supplier: PublicKey,
        amount: Amount,
        maturity: Timestamp,
        invoice_ref: Hash,
    },
    /// `input` (held by `holder`) was spent into `outputs`.
    TokenTransferred {
        input: TokenId,
        root: TokenId,
        holder: PublicKey,
        amount: Amount,
        outputs: Vec<TransferredOutput>,
    },
    FinancingRequested {
        token: TokenId,
        root: TokenId,
        holder: PublicKey,
        bank: PublicKey,
        amount: Amount,
        rate_bps: u32,
    },
    /// `bank` bought `token` from `seller` for `price`; it now holds
    /// `bought`.
    FinancingAccepted {
        token: TokenId,
        bought: TokenId,
        root: TokenId,
        seller: PublicKey,
        bank: PublicKey,
        amount: Amount,
        price: Amount,
        rate_bps: u32,
        days: u64,
    },
    FinancingRejected {
        token: TokenId,
        holder: PublicKey,
        bank: PublicKey,
    },
    /// One payout of a settlement: `holder` is paid `amount`, the sum of its
    /// `tokens` tokens of `root` unspent at maturity. A settlement has one
    /// such event per holder, in key order.
    ReceivableSettled {
        root: TokenId,
        issuer: PublicKey,
        holder: PublicKey,
        amount: Amount,
        tokens: u64,
        payment_ref: String,
    },
    TokenFrozen {
        token: TokenId,
        holder: PublicKey,
        reason: String,
    },
    TokenUnfrozen {
        token: TokenId,
        holder: PublicKey,
    },
    /// The participant (its identity) signs with `new_key` from now on; the
    /// event's signer is the key it replaced.
    ParticipantKeyRotated {
        participant: PublicKey,
        new_key: PublicKey,
    },
    /// An operator (the signer) asked to replace the participant's lost key.
    KeyRecoveryRequested {
        participant: PublicKey,
        new_key: PublicKey,
    },
    /// An auditor (the signer) approved the recovery: the participant signs
    /// with `new_key` from now on.
    ParticipantKeyRecovered {
        participant: PublicKey,
        new_key: PublicKey,
    },
    /// A validator (the signer, by its consensus key) proposed a change of
    /// the validator set; `proposal` is this transaction's hash.
    ValidatorChangeProposed {
        proposal: TxHash,
        change: ValidatorChange,
        expires_at: u64,
    },
    /// A validator (the signer) approved the proposal (a proposal's own
    /// event stands for its proposer's approval).
    ValidatorChangeApproved {
        proposal: TxHash,
    },
    /// The transaction's approval took the proposal past two thirds of the
    /// voting power: the new set is in force from `effective_from`.
    ValidatorChangeAdopted {
        proposal: TxHash,
        change: ValidatorChange,
        effective_from: u64,
        epoch: u64,
    },
}

impl EventKind {
    /// Every kind's name, as the API and `?kinds=` spell it.
    pub const NAMES: [&'static str; 17] = [
        "participant_registered",
        "participant_deactivated",
        "credit_line_granted",
        "receivable_confirmed",
        "token_transferred",
        "financing_requested",
        "financing_accepted",
        "financing_rejected",
        "receivable_settled",
        "token_frozen",
        "token_unfrozen",
        "participant_key_rotated",
        "key_recovery_requested",
        "participant_key_recovered",
        "validator_change_proposed",
        "validator_change_approved",
        "validator_change_adopted",
    ];

    pub fn name(&self) -> &'static str {
        let index = match self {
            EventKind::ParticipantRegistered { .. } => 0,
            EventKind::ParticipantDeactivated { .. } => 1,
            EventKind::CreditLineGranted { .. } => 2,
            EventKind::ReceivableConfirmed { .. } => 3,
            EventKind::TokenTransferred { .. } => 4,
            EventKind::FinancingRequested { .. } => 5,
            EventKind::FinancingAccepted { .. } => 6,
            EventKind::FinancingRejected { .. } => 7,
            EventKind::ReceivableSettled { .. } => 8,
            EventKind::TokenFrozen { .. } => 9,
            EventKind::TokenUnfrozen { .. } => 10,
            EventKind::ParticipantKeyRotated { .. } => 11,
            EventKind::KeyRecoveryRequested { .. } => 12,
            EventKind::ParticipantKeyRecovered { .. } => 13,
            EventKind::ValidatorChangeProposed { .. } => 14,
            EventKind::ValidatorChangeApproved { .. } => 15,
            EventKind::ValidatorChangeAdopted { .. } => 16,
        };
        EventKind::NAMES[index]
    }

    /// The participants the event names (besides its signer).
    fn named_parties(&self) -> Vec<PublicKey> {
        match self {
            EventKind::ParticipantRegistered { key, .. }
            | EventKind::ParticipantDeactivated { key } => vec![*key],
            EventKind::CreditLineGranted { bank, core, .. } => vec![*bank, *core],
            EventKind::ReceivableConfirmed { core, supplier, .. } => vec![*core, *supplier],
            EventKind::TokenTransferred {
                holder, outputs, ..
            } => std::iter::once(*holder)
                .chain(outputs.iter().map(|output| output.holder))
                .collect(),
            EventKind::FinancingRequested { holder, bank, .. }
            | EventKind::FinancingRejected { holder, bank, .. } => vec![*holder, *bank],
            EventKind::FinancingAccepted { seller, bank, .. } => vec![*seller, *bank],
            EventKind::ReceivableSettled { issuer, holder, .. } => vec![*issuer, *holder],
            EventKind::TokenFrozen { holder, .. } | EventKind::TokenUnfrozen { holder, .. } => {
                vec![*holder]
            }
            EventKind::ParticipantKeyRotated {
                participant,
                new_key,
            }
            | EventKind::KeyRecoveryRequested {
                participant,
                new_key,
            }
            | EventKind::ParticipantKeyRecovered {
                participant,
                new_key,
            } => vec![*participant, *new_key],
            EventKind::ValidatorChangeProposed { .. }
            | EventKind::ValidatorChangeApproved { .. }
            | EventKind::ValidatorChangeAdopted { .. } => Vec::new(),
        }
    }
}

/// An event with its place and the transaction that caused it.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Event {
    pub cursor: Cursor,
    /// The block's time.
    pub time: Timestamp,
    pub tx_hash: TxHash,
    pub signer: PublicKey,
    pub kind: EventKind,
}

impl Event {
    /// Whether `party` signed the event's transaction or is named in it
    /// (holder, supplier, core enterprise, bank, seller, issuer…).
    pub fn involves(&self, party: &PublicKey) -> bool {
        self.signer == *party || self.kind.named_parties().contains(party)
    }
}

/// Deriving a block's events needed an entry that is not there: the store
/// is corrupt, or the read failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError<E> {
    #[error("block {height}, transaction {tx_index}: token {token} is not in the state")]
    MissingToken {
        height: u64,
        tx_index: u32,
        token: TokenId,
    },
    #[error("block {height}, transaction {tx_index}: {key:?} is not in the state")]
    MissingEntry {
        height: u64,
        tx_index: u32,
        key: StateKey,
    },
    #[error("reading the state: {0}")]
    Read(E),
}

/// The events of committed block `block`, in commit order. `state` reads a
/// state entry from any state at or after the block. Only entries that
/// never change once written are read (a token's holder, amount, root,
/// origin and spender; a key's binding; an adopted proposal), so that is
/// enough: see the module documentation.
pub fn derive_block_events<E>(
    block: &Block,
    state: impl Fn(&StateKey) -> Result<Option<StateValue>, E>,
) -> Result<Vec<Event>, DeriveError<E>> {
    let height = block.header.height;
    let mut events = Vec::new();
    for (tx_index, signed) in block.txs.iter().enumerate() {
        let tx_index = u32::try_from(tx_index).expect("fewer than 2^32 transactions in a block");
        let tx_hash = signed.hash();
        let signer = signed.tx.signer;
        let read = |id: &TokenId| -> Result<Token, DeriveError<E>> {
            match state(&StateKey::Token(*id)).map_err(DeriveError::Read)? {
                Some(StateValue::Token(token)) => Ok(token),
                _ => Err(DeriveError::MissingToken {
                    height,
                    tx_index,
                    token: *id,
                }),
            }
        };
        // The adoption a transaction made, if it made one.
        let adoption = |proposal: &TxHash| -> Result<Option<EventKind>, DeriveError<E>> {
            let record = entry(
                &state,
                StateKey::ValidatorProposal(*proposal),
                |value| match value {
                    StateValue::ValidatorProposal(record) => Some(record),
                    _ => None,
                },
                (height, tx_index),
            )?;
            Ok(record
                .adopted
                .filter(|adoption| adoption.by == tx_hash)
                .map(|adoption| EventKind::ValidatorChangeAdopted {
                    proposal: *proposal,
                    change: record.change.clone(),
                    effective_from: adoption.effective_from,
                    epoch: adoption.epoch,
                }))
        };
        let kinds = match &signed.tx.body {
            TxBody::RegisterParticipant { key, name, roles } => {
                vec![EventKind::ParticipantRegistered {
                    key: *key,
                    name: name.clone(),
                    roles: roles.clone(),
                }]
            }
            TxBody::DeactivateParticipant { key } => {
                vec![EventKind::ParticipantDeactivated { key: *key }]
            }
            TxBody::GrantCreditLine { core, limit } => vec![EventKind::CreditLineGranted {
                bank: signer,
                core: *core,
                limit: *limit,
            }],
            TxBody::ConfirmReceivable {
                supplier,
                amount,
                maturity,
                invoice_ref,
            } => vec![EventKind::ReceivableConfirmed {
                root: TokenId::derive(&tx_hash, 0),
                core: signer,
                supplier: *supplier,
                amount: *amount,
                maturity: *maturity,
                invoice_ref: *invoice_ref,
            }],
            TxBody::Transfer { token, outputs } => {
                let input = read(token)?;
                vec![EventKind::TokenTransferred {
                    input: *token,
                    root: input.root_id,
                    holder: input.holder,
                    amount: input.amount,
                    outputs: outputs
                        .iter()
                        .enumerate()
                        .map(|(index, output)| TransferredOutput {
                            token: TokenId::derive(&tx_hash, index as u32),
                            holder: output.recipient,
                            amount: output.amount,
                        })
                        .collect(),
                }]
            }
            TxBody::RequestFinancing {
                token,
                bank,
                rate_bps,
            } => {
                let offered = read(token)?;
                vec![EventKind::FinancingRequested {
                    token: *token,
                    root: offered.root_id,
                    holder: offered.holder,
                    bank: *bank,
                    amount: offered.amount,
                    rate_bps: *rate_bps,
                }]
            }
            TxBody::AcceptFinancing { token } => {
                let bought_id = TokenId::derive(&tx_hash, 0);
                let bought = read(&bought_id)?;
                let Origin::Financed {
                    seller,
                    price,
                    rate_bps,
                    days,
                } = bought.origin
                else {
                    return Err(DeriveError::MissingToken {
                        height,
                        tx_index,
                        token: bought_id,
                    });
                };
                vec![EventKind::FinancingAccepted {
                    token: *token,
                    bought: bought_id,
                    root: bought.root_id,
                    seller,
                    bank: signer,
                    amount: bought.amount,
                    price,
                    rate_bps,
                    days,
                }]
            }
            TxBody::RejectFinancing { token } => vec![EventKind::FinancingRejected {
                token: *token,
                holder: read(token)?.holder,
                bank: signer,
            }],
            TxBody::Settle { root, payment_ref } => {
                let payouts = payouts(&read(root)?, &read)?;
                payouts
                    .into_iter()
                    .map(|(holder, (amount, tokens))| EventKind::ReceivableSettled {
                        root: *root,
                        issuer: signer,
                        holder,
                        amount,
                        tokens,
                        payment_ref: payment_ref.clone(),
                    })
                    .collect()
            }
            TxBody::Freeze { token, reason } => vec![EventKind::TokenFrozen {
                token: *token,
                holder: read(token)?.holder,
                reason: reason.clone(),
            }],
            TxBody::Unfreeze { token } => vec![EventKind::TokenUnfrozen {
                token: *token,
                holder: read(token)?.holder,
            }],
            TxBody::RotateParticipantKey { new_key } => {
                let binding = entry(
                    &state,
                    StateKey::KeyBinding(*new_key),
                    |value| match value {
                        StateValue::KeyBinding(binding) => Some(binding),
                        _ => None,
                    },
                    (height, tx_index),
                )?;
                vec![EventKind::ParticipantKeyRotated {
                    participant: binding.participant,
                    new_key: *new_key,
                }]
            }
            TxBody::RequestKeyRecovery {
                participant,
                new_key,
            } => vec![EventKind::KeyRecoveryRequested {
                participant: *participant,
                new_key: *new_key,
            }],
            TxBody::ApproveKeyRecovery {
                participant,
                new_key,
            } => vec![EventKind::ParticipantKeyRecovered {
                participant: *participant,
                new_key: *new_key,
            }],
            TxBody::ProposeValidatorChange { change, expires_at } => {
                let proposed = EventKind::ValidatorChangeProposed {
                    proposal: tx_hash,
                    change: change.clone(),
                    expires_at: *expires_at,
                };
                std::iter::once(proposed)
                    .chain(adoption(&tx_hash)?)
                    .collect()
            }
            TxBody::ApproveValidatorChange { proposal } => {
                let approved = EventKind::ValidatorChangeApproved {
                    proposal: *proposal,
                };
                std::iter::once(approved)
                    .chain(adoption(proposal)?)
                    .collect()
            }
        };
        for (event_index, kind) in kinds.into_iter().enumerate() {
            events.push(Event {
                cursor: Cursor {
                    height,
                    tx_index,
                    event_index: u32::try_from(event_index)
                        .expect("fewer than 2^32 events in a transaction"),
                },
                time: block.header.time,
                tx_hash,
                signer,
                kind,
            });
        }
    }
    Ok(events)
}

/// The entry at `key`, as `pick` takes its record out of it; missing (or
/// of another kind) is an error naming the key.
fn entry<T, E>(
    state: &impl Fn(&StateKey) -> Result<Option<StateValue>, E>,
    key: StateKey,
    pick: fn(StateValue) -> Option<T>,
    (height, tx_index): (u64, u32),
) -> Result<T, DeriveError<E>> {
    state(&key)
        .map_err(DeriveError::Read)?
        .and_then(pick)
        .ok_or(DeriveError::MissingEntry {
            height,
            tx_index,
            key,
        })
}

/// Per holder (in key order): the amount and number of `root`'s tokens that
/// are unspent, i.e. were unspent at maturity. A depth-first walk from the
/// root: a spent token's children are the outputs of the transaction that
/// spent it.
fn payouts<E>(
    root: &Token,
    read: &impl Fn(&TokenId) -> Result<Token, DeriveError<E>>,
) -> Result<BTreeMap<PublicKey, (Amount, u64)>, DeriveError<E>> {
    let mut payouts: BTreeMap<PublicKey, (Amount, u64)> = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(token) = stack.pop() {
        match token.status {
            TokenStatus::Spent { by } => {
                // The outputs 0, 1, … of the spending transaction; a transfer
                // has at most MAX_TRANSFER_OUTPUTS, a financing one.
                let count = token_outputs(&by, read)?;
                for index in (0..count).rev() {
                    stack.push(read(&TokenId::derive(&by, index))?);
                }
            }
            TokenStatus::Active | TokenStatus::Pending { .. } | TokenStatus::Settled { .. } => {
                let entry = payouts.entry(token.holder).or_insert((Amount(0), 0));
                // Conservation bounds a root's tokens by the root's amount.
                entry.0 = Amount(entry.0.0.saturating_add(token.amount.0));
                entry.1 += 1;
            }
        }
    }
    Ok(payouts)
}

/// How many outputs transaction `by` created: the first index whose token
/// does not exist.
fn token_outputs<E>(
    by: &TxHash,
    read: &impl Fn(&TokenId) -> Result<Token, DeriveError<E>>,
) -> Result<u32, DeriveError<E>> {
    for index in 0..MAX_TRANSFER_OUTPUTS as u32 {
        match read(&TokenId::derive(by, index)) {
            Ok(_) => {}
            Err(DeriveError::MissingToken { .. }) => return Ok(index),
            Err(other) => return Err(other),
        }
    }
    Ok(MAX_TRANSFER_OUTPUTS as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_text_is_fixed_width_and_orders_as_commit_order() {
        let cursors = [
            Cursor::START,
            Cursor {
                height: 2,
                tx_index: 0,
                event_index: 9,
            },
            Cursor {
                height: 2,
                tx_index: 10,
                event_index: 0,
            },
            Cursor {
                height: 10,
                tx_index: 0,
                event_index: 0,
            },
            Cursor {
                height: u64::MAX,
                tx_index: u32::MAX,
                event_index: u32::MAX,
            },
        ];
        for pair in cursors.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].to_string() < pair[1].to_string());
            assert!(pair[0].to_key() < pair[1].to_key());
        }
        for cursor in cursors {
            let text = cursor.to_string();
            assert_eq!(text.len(), Cursor::TEXT_LEN);
            assert_eq!(text.parse::<Cursor>(), Ok(cursor));
            assert_eq!(Cursor::from_key(&cursor.to_key()), Some(cursor));
        }
        assert_eq!(
            Cursor {
                height: 12,
                tx_index: 3,
                event_index: 1
            }
            .to_string(),
            "00000000000000000012-0000000003-0000000001"
        );
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for text in [
            "",
            "12",
            "00000000000000000012-0000000003-000000000",
            "00000000000000000012-0000000003-00000000001",
            "00000000000000000012_0000000003-0000000001",
            "0000000000000000001x-0000000003-0000000001",
            "00000000000000000012-9999999999-0000000001",
            "+0000000000000000012-0000000003-0000000001",
            "99999999999999999999-0000000003-0000000001",
            "00000000000000000012-0000000003-00000000é",
        ] {
            assert!(text.parse::<Cursor>().is_err(), "{text:?} parsed");
        }
    }
}
