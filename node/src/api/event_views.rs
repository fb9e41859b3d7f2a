//! The JSON shapes of the event feed (`GET /v1/events`), shared by the
//! server and the `scf events` CLI. Same conventions as [`super::types`]:
//! hex keys and ids, amounts as decimal strings next to their minor units,
//! times as RFC 3339 next to Unix milliseconds. No I/O here.

use borsh::{BorshDeserialize, BorshSerialize};
use crypto::{Hash, PublicKey};
use ledger::{Cursor, Event, EventKind, Role, TokenId, TxHash, ValidatorChange};
use serde::{Deserialize, Serialize};

use super::types::format_time;

/// The answer of `GET /v1/events`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventPageView {
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page; the request's cursor when nothing
    /// was looked at (no newer events yet).
    pub next: String,
    /// Events of every block up to this height are in the feed.
    pub derived_height: u64,
    /// Events below this height were deleted by retention (0: none).
    pub retained_from_height: u64,
}

/// The answer of `GET /v1/events?format=borsh`: the page the JSON answer
/// ([`EventPageView`]) describes, each event as the ledger's own
/// [`Event`], borsh-encoded (`application/octet-stream`). For programs
/// that check events against the blocks they derive them from (`scf sink
/// postgres`): no JSON to write or parse, and an event compares as one
/// value.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RawEventPage {
    pub events: Vec<Event>,
    /// As [`EventPageView::next`].
    pub next: Cursor,
    pub derived_height: u64,
    pub retained_from_height: u64,
}

/// One event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventView {
    /// `HEIGHT-TX-EVENT`, zero-padded: string order is commit order.
    pub cursor: String,
    pub height: u64,
    pub tx_index: u32,
    pub event_index: u32,
    /// The block's time.
    pub block_time: String,
    pub block_time_ms: u64,
    pub tx_hash: TxHash,
    pub signer: PublicKey,
    #[serde(flatten)]
    pub data: EventData,
}

/// One output of a transfer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputView {
    pub token: TokenId,
    pub holder: PublicKey,
    pub amount: String,
    pub amount_minor: u64,
}

/// What happened, tagged by `kind`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventData {
    ParticipantRegistered {
        key: PublicKey,
        name: String,
        roles: Vec<Role>,
    },
    ParticipantDeactivated {
        key: PublicKey,
    },
    CreditLineGranted {
        bank: PublicKey,
        core: PublicKey,
        limit: String,
        limit_minor: u64,
    },
    ReceivableConfirmed {
        root: TokenId,
        core: PublicKey,
        supplier: PublicKey,
        amount: String,
        amount_minor: u64,
        maturity: String,
        maturity_ms: u64,
        invoice_ref: Hash,
    },
    TokenTransferred {
        input: TokenId,
        root: TokenId,
        holder: PublicKey,
        amount: String,
        amount_minor: u64,
        outputs: Vec<OutputView>,
    },
    FinancingRequested {
        token: TokenId,
        root: TokenId,
        holder: PublicKey,
        bank: PublicKey,
        amount: String,
        amount_minor: u64,
        /// Yearly discount rate in basis points (435 = 4.35 %).
        rate_bps: u32,
    },
    FinancingAccepted {
        token: TokenId,
        /// The bank's new token.
        bought: TokenId,
        root: TokenId,
        seller: PublicKey,
        bank: PublicKey,
        amount: String,
        amount_minor: u64,
        /// What the bank paid the seller.
        price: String,
        price_minor: u64,
        rate_bps: u32,
        days: u64,
    },
    FinancingRejected {
        token: TokenId,
        holder: PublicKey,
        bank: PublicKey,
    },
    /// One payout per holder: the sum of its `tokens` unspent tokens.
    ReceivableSettled {
        root: TokenId,
        issuer: PublicKey,
        holder: PublicKey,
        amount: String,
        amount_minor: u64,
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
    /// `participant` (its identity) signs with `new_key` from now on.
    ParticipantKeyRotated {
        participant: PublicKey,
        new_key: PublicKey,
    },
    KeyRecoveryRequested {
        participant: PublicKey,
        new_key: PublicKey,
    },
    ParticipantKeyRecovered {
        participant: PublicKey,
        new_key: PublicKey,
    },
    /// `proposal` is the proposing transaction's hash.
    ValidatorChangeProposed {
        proposal: TxHash,
        change: ValidatorChange,
        expires_at: u64,
    },
    ValidatorChangeApproved {
        proposal: TxHash,
    },
    /// The new set is in force from height `effective_from`.
    ValidatorChangeAdopted {
        proposal: TxHash,
        change: ValidatorChange,
        effective_from: u64,
        epoch: u64,
    },
}

impl EventData {
    /// The kind's name (`token_transferred`…), as `?kinds=` spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            EventData::ParticipantRegistered { .. } => "participant_registered",
            EventData::ParticipantDeactivated { .. } => "participant_deactivated",
            EventData::CreditLineGranted { .. } => "credit_line_granted",
            EventData::ReceivableConfirmed { .. } => "receivable_confirmed",
            EventData::TokenTransferred { .. } => "token_transferred",
            EventData::FinancingRequested { .. } => "financing_requested",
            EventData::FinancingAccepted { .. } => "financing_accepted",
            EventData::FinancingRejected { .. } => "financing_rejected",
            EventData::ReceivableSettled { .. } => "receivable_settled",
            EventData::TokenFrozen { .. } => "token_frozen",
            EventData::TokenUnfrozen { .. } => "token_unfrozen",
            EventData::ParticipantKeyRotated { .. } => "participant_key_rotated",
            EventData::KeyRecoveryRequested { .. } => "key_recovery_requested",
            EventData::ParticipantKeyRecovered { .. } => "participant_key_recovered",
            EventData::ValidatorChangeProposed { .. } => "validator_change_proposed",
            EventData::ValidatorChangeApproved { .. } => "validator_change_approved",
            EventData::ValidatorChangeAdopted { .. } => "validator_change_adopted",
        }
    }
}

impl EventView {
    pub fn new(event: &Event, decimals: u8) -> EventView {
        let money = |amount: ledger::Amount| (amount.to_decimal_string(decimals), amount.0);
        let data = match &event.kind {
            EventKind::ParticipantRegistered { key, name, roles } => {
                EventData::ParticipantRegistered {
                    key: *key,
                    name: name.clone(),
                    roles: roles.clone(),
                }
            }
            EventKind::ParticipantDeactivated { key } => {
                EventData::ParticipantDeactivated { key: *key }
            }
            EventKind::CreditLineGranted { bank, core, limit } => {
                let (limit, limit_minor) = money(*limit);
                EventData::CreditLineGranted {
                    bank: *bank,
                    core: *core,
                    limit,
                    limit_minor,
                }
            }
            EventKind::ReceivableConfirmed {
                root,
                core,
                supplier,
                amount,
                maturity,
                invoice_ref,
            } => {
                let (amount, amount_minor) = money(*amount);
                EventData::ReceivableConfirmed {
                    root: *root,
                    core: *core,
                    supplier: *supplier,
                    amount,
                    amount_minor,
                    maturity: format_time(*maturity),
                    maturity_ms: maturity.0,
                    invoice_ref: *invoice_ref,
                }
            }
            EventKind::TokenTransferred {
                input,
                root,
                holder,
                amount,
                outputs,
            } => {
                let (amount, amount_minor) = money(*amount);
                EventData::TokenTransferred {
                    input: *input,
                    root: *root,
                    holder: *holder,
                    amount,
                    amount_minor,
                    outputs: outputs
                        .iter()
                        .map(|output| {
                            let (amount, amount_minor) = money(output.amount);
                            OutputView {
                                token: output.token,
                                holder: output.holder,
                                amount,
                                amount_minor,
                            }
                        })
                        .collect(),
                }
            }
            EventKind::FinancingRequested {
                token,
                root,
                holder,
                bank,
                amount,
                rate_bps,
            } => {
                let (amount, amount_minor) = money(*amount);
                EventData::FinancingRequested {
                    token: *token,
                    root: *root,
                    holder: *holder,
                    bank: *bank,
                    amount,
                    amount_minor,
                    rate_bps: *rate_bps,
                }
            }
            EventKind::FinancingAccepted {
                token,
                bought,
                root,
                seller,
                bank,
                amount,
                price,
                rate_bps,
                days,
            } => {
                let (amount, amount_minor) = money(*amount);
                let (price, price_minor) = money(*price);
                EventData::FinancingAccepted {
                    token: *token,
                    bought: *bought,
                    root: *root,
                    seller: *seller,
                    bank: *bank,
                    amount,
                    amount_minor,
                    price,
                    price_minor,
                    rate_bps: *rate_bps,
                    days: *days,
                }
            }
            EventKind::FinancingRejected {
                token,
                holder,
                bank,
            } => EventData::FinancingRejected {
                token: *token,
                holder: *holder,
                bank: *bank,
            },
            EventKind::ReceivableSettled {
                root,
                issuer,
                holder,
                amount,
                tokens,
                payment_ref,
            } => {
                let (amount, amount_minor) = money(*amount);
                EventData::ReceivableSettled {
                    root: *root,
                    issuer: *issuer,
                    holder: *holder,
                    amount,
                    amount_minor,
                    tokens: *tokens,
                    payment_ref: payment_ref.clone(),
                }
            }
            EventKind::TokenFrozen {
                token,
                holder,
                reason,
            } => EventData::TokenFrozen {
                token: *token,
                holder: *holder,
                reason: reason.clone(),
            },
            EventKind::TokenUnfrozen { token, holder } => EventData::TokenUnfrozen {
                token: *token,
                holder: *holder,
            },
            EventKind::ParticipantKeyRotated {
                participant,
                new_key,
            } => EventData::ParticipantKeyRotated {
                participant: *participant,
                new_key: *new_key,
            },
            EventKind::KeyRecoveryRequested {
                participant,
                new_key,
            } => EventData::KeyRecoveryRequested {
                participant: *participant,
                new_key: *new_key,
            },
            EventKind::ParticipantKeyRecovered {
                participant,
                new_key,
            } => EventData::ParticipantKeyRecovered {
                participant: *participant,
                new_key: *new_key,
            },
            EventKind::ValidatorChangeProposed {
                proposal,
                change,
                expires_at,
            } => EventData::ValidatorChangeProposed {
                proposal: *proposal,
                change: change.clone(),
                expires_at: *expires_at,
            },
            EventKind::ValidatorChangeApproved { proposal } => EventData::ValidatorChangeApproved {
                proposal: *proposal,
            },
            EventKind::ValidatorChangeAdopted {
                proposal,
                change,
                effective_from,
                epoch,
            } => EventData::ValidatorChangeAdopted {
                proposal: *proposal,
                change: change.clone(),
                effective_from: *effective_from,
                epoch: *epoch,
            },
        };
        EventView {
            cursor: event.cursor.to_string(),
            height: event.cursor.height,
            tx_index: event.cursor.tx_index,
            event_index: event.cursor.event_index,
            block_time: format_time(event.time),
            block_time_ms: event.time.0,
            tx_hash: event.tx_hash,
            signer: event.signer,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::{Amount, Cursor, Timestamp};

    #[test]
    fn every_kind_name_matches_the_ledgers_and_round_trips_through_json() {
        let key = PublicKey([7; 32]);
        let token = TokenId(Hash([1; 32]));
        let add = ValidatorChange::Add {
            name: "bank-e".into(),
            consensus_key: key,
            peer_id: "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
                .parse()
                .expect("a peer id"),
            address: "/ip4/10.0.0.5/tcp/26656".into(),
            power: 1,
        };
        let kinds = vec![
            EventKind::ParticipantRegistered {
                key,
                name: "alice".into(),
                roles: vec![Role::Supplier],
            },
            EventKind::ParticipantDeactivated { key },
            EventKind::CreditLineGranted {
                bank: key,
                core: key,
                limit: Amount(123_456),
            },
            EventKind::ReceivableConfirmed {
                root: token,
                core: key,
                supplier: key,
                amount: Amount(5),
                maturity: Timestamp(1_000),
                invoice_ref: Hash([2; 32]),
            },
            EventKind::TokenTransferred {
                input: token,
                root: token,
                holder: key,
                amount: Amount(5),
                outputs: vec![ledger::TransferredOutput {
                    token,
                    holder: key,
                    amount: Amount(5),
                }],
            },
            EventKind::FinancingRequested {
                token,
                root: token,
                holder: key,
                bank: key,
                amount: Amount(5),
                rate_bps: 435,
            },
            EventKind::FinancingAccepted {
                token,
                bought: token,
                root: token,
                seller: key,
                bank: key,
                amount: Amount(500),
                price: Amount(499),
                rate_bps: 435,
                days: 3,
            },
            EventKind::FinancingRejected {
                token,
                holder: key,
                bank: key,
            },
            EventKind::ReceivableSettled {
                root: token,
                issuer: key,
                holder: key,
                amount: Amount(5),
                tokens: 2,
                payment_ref: "WIRE".into(),
            },
            EventKind::TokenFrozen {
                token,
                holder: key,
                reason: "dispute".into(),
            },
            EventKind::TokenUnfrozen { token, holder: key },
            EventKind::ParticipantKeyRotated {
                participant: key,
                new_key: key,
            },
            EventKind::KeyRecoveryRequested {
                participant: key,
                new_key: key,
            },
            EventKind::ParticipantKeyRecovered {
                participant: key,
                new_key: key,
            },
            EventKind::ValidatorChangeProposed {
                proposal: TxHash(Hash([5; 32])),
                change: add.clone(),
                expires_at: 100,
            },
            EventKind::ValidatorChangeApproved {
                proposal: TxHash(Hash([5; 32])),
            },
            EventKind::ValidatorChangeAdopted {
                proposal: TxHash(Hash([5; 32])),
                change: add,
                effective_from: 12,
                epoch: 1,
            },
        ];
        assert_eq!(kinds.len(), EventKind::NAMES.len());
        for kind in kinds {
            let event = Event {
                cursor: Cursor {
                    height: 3,
                    tx_index: 1,
                    event_index: 0,
                },
                time: Timestamp(1_798_761_600_000),
                tx_hash: TxHash(Hash([4; 32])),
                signer: key,
                kind: kind.clone(),
            };
            let view = EventView::new(&event, 2);
            assert_eq!(view.data.kind(), kind.name());
            let json = serde_json::to_value(&view).unwrap();
            assert_eq!(json["kind"], kind.name());
            assert_eq!(json["cursor"], "00000000000000000003-0000000001-0000000000");
            assert_eq!(json["block_time"], "2027-01-01T00:00:00Z");
            let back: EventView = serde_json::from_value(json).unwrap();
            assert_eq!(back, view);
        }
    }

    #[test]
    fn amounts_are_decimal_strings_next_to_minor_units() {
        let event = Event {
            cursor: Cursor::START,
            time: Timestamp(0),
            tx_hash: TxHash(Hash([4; 32])),
            signer: PublicKey([7; 32]),
            kind: EventKind::CreditLineGranted {
                bank: PublicKey([7; 32]),
                core: PublicKey([8; 32]),
                limit: Amount(123_456),
            },
        };
        let json = serde_json::to_value(EventView::new(&event, 2)).unwrap();
        assert_eq!(json["limit"], "1234.56");
        assert_eq!(json["limit_minor"], 123_456);
    }
}
