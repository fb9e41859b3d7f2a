//! Checked blocks as the rows the database gets: one [`Batch`] per database
//! transaction, in column form (one vector per column) so that each table
//! takes its rows in one statement (`unnest` of arrays).
//!
//! The state tables (participants, credit lines, receivables, tokens, key
//! bindings and recoveries, validator epochs and proposals) are the
//! replay's own writes: each key once per batch with its last value,
//! the same values the app hash commits to, shown as the API shows them (an
//! unspent token of a settled root is settled). The events table and the
//! financing table come from the derived events, in commit order.
//!
//! Not here: SQL (`write.rs`), and any check (`check.rs`).

use std::collections::{BTreeMap, HashMap};

use crypto::Hash;
use ledger::{
    Event, EventKind, MemoryState, Origin, StateKey, StateValue, StateView, Token, TokenId,
    TokenStatus, ValidatorEpoch, ValidatorProposal,
};

use super::check::CheckedBlock;

/// A value the database's `bigint` cannot hold.
#[derive(Debug, thiserror::Error)]
#[error(
    "height {height}: {what} is {value}, beyond what a PostgreSQL bigint holds ({}); the sink cannot write it",
    i64::MAX
)]
pub struct TooLarge {
    pub height: u64,
    pub what: &'static str,
    pub value: u64,
}

fn bigint(height: u64, what: &'static str, value: u64) -> Result<i64, TooLarge> {
    i64::try_from(value).map_err(|_| TooLarge {
        height,
        what,
        value,
    })
}

/// Why a read of the replay's state cannot fail.
const READ: &str = "the replay's state is in memory and reads without failing";

fn hex(hash: &Hash) -> String {
    hash.to_hex()
}

/// Where a batch ends: what `sink_cursor` says once it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEnd {
    pub height: u64,
    pub block_hash: Hash,
    pub app_hash: Hash,
    pub block_time_ms: u64,
    /// The cursor of the batch's last event, if it has any.
    pub last_event: Option<String>,
}

#[derive(Debug, Default)]
pub struct EventRows {
    pub cursor: Vec<String>,
    pub height: Vec<i64>,
    pub tx_index: Vec<i32>,
    pub event_index: Vec<i32>,
    pub kind: Vec<String>,
    pub block_time_ms: Vec<i64>,
    pub tx_hash: Vec<String>,
    pub signer: Vec<String>,
    /// The event's JSON (`kind` and its fields), as the feed serves it.
    pub payload: Vec<String>,
}

#[derive(Debug, Default)]
pub struct ParticipantRows {
    pub key: Vec<String>,
    pub signing_key: Vec<String>,
    pub name: Vec<String>,
    /// Comma-separated role names (an array of arrays does not `unnest`).
    pub roles: Vec<String>,
    pub active: Vec<bool>,
    pub next_nonce: Vec<i64>,
    pub updated_height: Vec<i64>,
}

#[derive(Debug, Default)]
pub struct CreditLineRows {
    pub core: Vec<String>,
    pub limit_minor: Vec<i64>,
    pub outstanding_minor: Vec<i64>,
    pub updated_height: Vec<i64>,
}

/// Every grant of the credit lines in [`CreditLineRows`] (which replace
/// what the database held for those cores).
#[derive(Debug, Default)]
pub struct GrantRows {
    pub core: Vec<String>,
    pub bank: Vec<String>,
    pub limit_minor: Vec<i64>,
}

#[derive(Debug, Default)]
pub struct ReceivableRows {
    pub root: Vec<String>,
    pub issuer: Vec<String>,
    pub amount_minor: Vec<i64>,
    pub maturity_ms: Vec<i64>,
    pub invoice_ref: Vec<String>,
    pub frozen_tokens: Vec<i32>,
    pub settled: Vec<bool>,
    pub payment_ref: Vec<Option<String>>,
    pub settled_at_ms: Vec<Option<i64>>,
    pub confirmed_height: Vec<i64>,
    pub updated_height: Vec<i64>,
}

#[derive(Debug, Default)]
pub struct TokenRows {
    pub id: Vec<String>,
    pub root: Vec<String>,
    pub parent: Vec<Option<String>>,
    pub issuer: Vec<String>,
    pub holder: Vec<String>,
    pub amount_minor: Vec<i64>,
    pub maturity_ms: Vec<i64>,
    pub status: Vec<String>,
    pub frozen: Vec<bool>,
    pub pending_bank: Vec<Option<String>>,
    pub pending_rate_bps: Vec<Option<i32>>,
    pub spent_by: Vec<Option<String>>,
    pub payment_ref: Vec<Option<String>>,
    pub origin: Vec<String>,
    pub created_height: Vec<i64>,
    pub updated_height: Vec<i64>,
}

/// Keys participants rotated to (each written once, when first bound).
#[derive(Debug, Default)]
pub struct KeyBindingRows {
    pub key: Vec<String>,
    pub participant: Vec<String>,
    pub bound_height: Vec<i64>,
}

/// Each participant's latest lost-key recovery.
#[derive(Debug, Default)]
pub struct KeyRecoveryRows {
    pub participant: Vec<String>,
    pub new_key: Vec<String>,
    pub requested_by: Vec<String>,
    pub requested_height: Vec<i64>,
    pub approved_by: Vec<Option<String>>,
    pub approved_height: Vec<Option<i64>>,
    pub updated_height: Vec<i64>,
}

/// Validator epochs (each a whole set); their members are in
/// [`ValidatorRows`], which replace what the database held for them.
#[derive(Debug, Default)]
pub struct EpochRows {
    pub epoch: Vec<i64>,
    pub from_height: Vec<i64>,
    pub validators: Vec<i32>,
    pub total_power: Vec<i64>,
    pub updated_height: Vec<i64>,
}

/// The members of the epochs in [`EpochRows`].
#[derive(Debug, Default)]
pub struct ValidatorRows {
    pub epoch: Vec<i64>,
    pub consensus_key: Vec<String>,
    pub identity: Vec<String>,
    pub name: Vec<String>,
    pub peer_id: Vec<String>,
    pub address: Vec<String>,
    pub power: Vec<i64>,
}

/// Proposals of validator-set changes, with their approvals and adoption.
#[derive(Debug, Default)]
pub struct ProposalRows {
    pub id: Vec<String>,
    /// `add`, `remove`, `set_power`, `rotate_key`.
    pub change: Vec<String>,
    /// The change's JSON, as the feed's events show it.
    pub details: Vec<String>,
    pub proposer: Vec<String>,
    pub proposed_height: Vec<i64>,
    pub expires_at: Vec<i64>,
    /// Comma-separated identities (an array of arrays does not `unnest`).
    pub approvals: Vec<String>,
    pub adopted_height: Vec<Option<i64>>,
    pub adopted_by: Vec<Option<String>>,
    pub effective_from: Vec<Option<i64>>,
    pub epoch: Vec<Option<i64>>,
    pub updated_height: Vec<i64>,
}

/// Unspent tokens written by earlier batches whose root the batch settles:
/// they become settled (their records on the ledger do not change).
#[derive(Debug, Default)]
pub struct SettledRows {
    pub id: Vec<String>,
    pub payment_ref: Vec<String>,
    pub updated_height: Vec<i64>,
}

/// Financing requests made in the batch (with the decision when the batch
/// holds it too).
#[derive(Debug, Default)]
pub struct FinancingRows {
    pub request: Vec<String>,
    pub token: Vec<String>,
    pub root: Vec<String>,
    pub seller: Vec<String>,
    pub bank: Vec<String>,
    pub amount_minor: Vec<i64>,
    pub rate_bps: Vec<i32>,
    pub requested_at_ms: Vec<i64>,
    pub status: Vec<String>,
    pub decision: Vec<Option<String>>,
    pub decided_at_ms: Vec<Option<i64>>,
    pub price_minor: Vec<Option<i64>>,
    pub days: Vec<Option<i64>>,
    pub bought_token: Vec<Option<String>>,
}

/// Decisions on requests made in earlier batches: each closes the one open
/// request of its token.
#[derive(Debug, Default)]
pub struct DecisionRows {
    pub token: Vec<String>,
    pub status: Vec<String>,
    pub decision: Vec<String>,
    pub decided_at_ms: Vec<i64>,
    pub price_minor: Vec<Option<i64>>,
    pub days: Vec<Option<i64>>,
    pub bought_token: Vec<Option<String>>,
}

/// The state tables' rows of a batch, or of genesis.
#[derive(Debug, Default)]
pub struct StateTables {
    pub participants: ParticipantRows,
    pub credit_lines: CreditLineRows,
    pub grants: GrantRows,
    pub receivables: ReceivableRows,
    /// Tokens created in the batch (inserted).
    pub new_tokens: TokenRows,
    /// Tokens of earlier batches the batch changed (updated).
    pub changed_tokens: TokenRows,
    pub settled: SettledRows,
    pub key_bindings: KeyBindingRows,
    pub key_recoveries: KeyRecoveryRows,
    pub epochs: EpochRows,
    pub validators: ValidatorRows,
    pub proposals: ProposalRows,
}

/// Everything one database transaction writes.
#[derive(Debug)]
pub struct Batch {
    pub first_height: u64,
    pub end: BatchEnd,
    pub events: EventRows,
    pub state: StateTables,
    pub financing: FinancingRows,
    pub decisions: DecisionRows,
}

impl Batch {
    pub fn event_count(&self) -> usize {
        self.events.cursor.len()
    }
}

/// Collects checked blocks until the batch is written.
#[derive(Debug)]
pub struct BatchBuilder {
    first_height: Option<u64>,
    end: Option<BatchEnd>,
    events: EventRows,
    /// Each key written, with the height of its last write. Its value is
    /// the one the replay's state holds when the batch is finished, after
    /// the batch's last block.
    writes: BTreeMap<StateKey, u64>,
    financing: FinancingRows,
    /// Open requests of this batch: token → row in `financing`.
    open_requests: HashMap<TokenId, usize>,
    decisions: DecisionRows,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder::new()
    }
}

impl BatchBuilder {
    pub fn new() -> BatchBuilder {
        BatchBuilder {
            first_height: None,
            end: None,
            events: EventRows::default(),
            writes: BTreeMap::new(),
            financing: FinancingRows::default(),
            open_requests: HashMap::new(),
            decisions: DecisionRows::default(),
        }
    }

    pub fn event_count(&self) -> usize {
        self.events.cursor.len()
    }

    /// Adds a checked block (the next height).
    pub fn add(&mut self, block: CheckedBlock) -> Result<(), TooLarge> {
        let CheckedBlock { verified, events } = block;
        let header = &verified.block.header;
        let height = header.height;
        self.first_height.get_or_insert(height);
        let mut last_event = self.end.take().and_then(|end| end.last_event);
        for (event, view) in &events {
            self.add_event(event, view)?;
            self.add_financing(event)?;
            last_event = Some(view.cursor.clone());
        }
        for key in verified.writes {
            self.writes.insert(key, height);
        }
        self.end = Some(BatchEnd {
            height,
            block_hash: verified.block.hash(),
            app_hash: verified.app_hash,
            block_time_ms: header.time.0,
            last_event,
        });
        Ok(())
    }

    fn add_event(
        &mut self,
        event: &Event,
        view: &node::api::event_views::EventView,
    ) -> Result<(), TooLarge> {
        let height = event.cursor.height;
        let rows = &mut self.events;
        rows.cursor.push(view.cursor.clone());
        rows.height.push(bigint(height, "the height", height)?);
        // Indexes are below 2^32; as i32 they keep their order for
        // indexes below 2^31, which no block reaches (MAX_BLOCK_WRITES).
        rows.tx_index.push(event.cursor.tx_index as i32);
        rows.event_index.push(event.cursor.event_index as i32);
        rows.kind.push(event.kind.name().to_string());
        rows.block_time_ms
            .push(bigint(height, "the block time", event.time.0)?);
        rows.tx_hash.push(hex(&event.tx_hash.0));
        rows.signer.push(event.signer.to_string());
        rows.payload
            .push(serde_json::to_string(&view.data).expect("an event's data always serialises"));
        Ok(())
    }

    fn add_financing(&mut self, event: &Event) -> Result<(), TooLarge> {
        let height = event.cursor.height;
        let time = bigint(height, "the block time", event.time.0)?;
        let (token, status, price, days, bought) = match &event.kind {
            EventKind::FinancingRequested {
                token,
                root,
                holder,
                bank,
                amount,
                rate_bps,
            } => {
                let rows = &mut self.financing;
                self.open_requests.insert(*token, rows.request.len());
                rows.request.push(event.cursor.to_string());
                rows.token.push(token.to_string());
                rows.root.push(root.to_string());
                rows.seller.push(holder.to_string());
                rows.bank.push(bank.to_string());
                rows.amount_minor
                    .push(bigint(height, "a financed amount", amount.0)?);
                rows.rate_bps
                    .push(i32::try_from(*rate_bps).unwrap_or(i32::MAX));
                rows.requested_at_ms.push(time);
                rows.status.push("requested".to_string());
                rows.decision.push(None);
                rows.decided_at_ms.push(None);
                rows.price_minor.push(None);
                rows.days.push(None);
                rows.bought_token.push(None);
                return Ok(());
            }
            EventKind::FinancingAccepted {
                token,
                bought,
                price,
                days,
                ..
            } => (
                token,
                "accepted",
                Some(bigint(height, "a financing price", price.0)?),
                Some(bigint(height, "financing days", *days)?),
                Some(bought.to_string()),
            ),
            EventKind::FinancingRejected { token, .. } => (token, "rejected", None, None, None),
            _ => return Ok(()),
        };
        let decision = event.cursor.to_string();
        if let Some(row) = self.open_requests.remove(token) {
            let rows = &mut self.financing;
            rows.status[row] = status.to_string();
            rows.decision[row] = Some(decision);
            rows.decided_at_ms[row] = Some(time);
            rows.price_minor[row] = price;
            rows.days[row] = days;
            rows.bought_token[row] = bought;
        } else {
            let rows = &mut self.decisions;
            rows.token.push(token.to_string());
            rows.status.push(status.to_string());
            rows.decision.push(decision);
            rows.decided_at_ms.push(time);
            rows.price_minor.push(price);
            rows.days.push(days);
            rows.bought_token.push(bought);
        }
        Ok(())
    }

    /// The batch, with the state rows as `state` (the replay after the
    /// batch's last block) shows them. `None` if no block was added.
    pub fn finish(self, state: &MemoryState) -> Result<Option<Batch>, TooLarge> {
        let (Some(first_height), Some(end)) = (self.first_height, self.end) else {
            return Ok(None);
        };
        // Each key's last value: the replay's, as the batch's last block
        // left it (the state is never shrunk, so every written key is in it).
        let values: Vec<(u64, StateValue)> = self
            .writes
            .iter()
            .map(|(key, height)| {
                let value = state.get(key).expect(READ);
                (
                    *height,
                    value.expect("a key the replay wrote is in its state"),
                )
            })
            .collect();
        // Roots settled in the batch, and the height that settled them.
        let settled_roots: HashMap<TokenId, (String, u64)> = values
            .iter()
            .filter_map(|(height, value)| match value {
                StateValue::Receivable(receivable) => {
                    receivable.settlement.as_ref().map(|settlement| {
                        (
                            receivable.root_id,
                            (settlement.payment_ref.clone(), *height),
                        )
                    })
                }
                _ => None,
            })
            .collect();
        let mut state_rows = StateRows::new(first_height, &settled_roots);
        for (root, (payment_ref, height)) in &settled_roots {
            for token in unspent_tokens(state, root) {
                if !self.writes.contains_key(&StateKey::Token(token)) {
                    let rows = &mut state_rows.tables.settled;
                    rows.id.push(token.to_string());
                    rows.payment_ref.push(payment_ref.clone());
                    rows.updated_height
                        .push(bigint(*height, "the height", *height)?);
                }
            }
        }
        for (height, value) in values {
            state_rows.add(height, value, state)?;
        }
        Ok(Some(Batch {
            first_height,
            end,
            events: self.events,
            state: state_rows.tables,
            financing: self.financing,
            decisions: self.decisions,
        }))
    }
}

/// The tokens of `root` that are unspent (active or pending): a walk down
/// its lineage, as a settlement's payouts are found.
fn unspent_tokens(state: &MemoryState, root: &TokenId) -> Vec<TokenId> {
    let mut unspent = Vec::new();
    let mut stack = vec![*root];
    while let Some(id) = stack.pop() {
        let Some(token) = state.token(&id).expect(READ) else {
            continue;
        };
        if token.is_unspent() {
            unspent.push(id);
        } else {
            stack.extend(state.children(&id).expect(READ));
        }
    }
    unspent
}

/// The genesis state (everything the replay starts from: participants,
/// and the validator set when genesis records one) as rows of height 0,
/// for the database's first transaction.
pub fn genesis_rows(state: &MemoryState) -> Result<StateTables, TooLarge> {
    let settled_roots = HashMap::new();
    let mut rows = StateRows::new(0, &settled_roots);
    for (_, value) in state.entries() {
        rows.add(0, value.clone(), state)?;
    }
    Ok(rows.tables)
}

/// Builds the state tables' rows of one batch.
struct StateRows<'a> {
    /// The batch's first height: a token created from it on is new.
    first_height: u64,
    /// Roots settled in the batch: payment reference and height.
    settled_roots: &'a HashMap<TokenId, (String, u64)>,
    tables: StateTables,
}

impl<'a> StateRows<'a> {
    fn new(first_height: u64, settled_roots: &'a HashMap<TokenId, (String, u64)>) -> Self {
        StateRows {
            first_height,
            settled_roots,
            tables: StateTables::default(),
        }
    }

    fn add(&mut self, height: u64, value: StateValue, state: &MemoryState) -> Result<(), TooLarge> {
        let at = bigint(height, "the height", height)?;
        match value {
            StateValue::Participant(participant) => {
                let rows = &mut self.tables.participants;
                rows.key.push(participant.key.to_string());
                rows.signing_key.push(participant.signing_key.to_string());
                rows.name.push(participant.name);
                let roles: Vec<&str> = participant.roles.iter().map(|role| role.name()).collect();
                rows.roles.push(roles.join(","));
                rows.active.push(participant.active);
                rows.next_nonce
                    .push(bigint(height, "a nonce", participant.next_nonce)?);
                rows.updated_height.push(at);
            }
            StateValue::CreditLine(line) => {
                let core = line.core.to_string();
                let rows = &mut self.tables.credit_lines;
                rows.core.push(core.clone());
                rows.limit_minor
                    .push(bigint(height, "a credit limit", line.limit().0)?);
                rows.outstanding_minor.push(bigint(
                    height,
                    "an outstanding amount",
                    line.outstanding.0,
                )?);
                rows.updated_height.push(at);
                for (bank, limit) in &line.grants {
                    self.tables.grants.core.push(core.clone());
                    self.tables.grants.bank.push(bank.to_string());
                    self.tables
                        .grants
                        .limit_minor
                        .push(bigint(height, "a credit grant", limit.0)?);
                }
            }
            StateValue::Receivable(receivable) => {
                let confirmed_height = state
                    .token(&receivable.root_id)
                    .expect("the replay's state is in memory and reads without failing")
                    .map_or(height, |token| token.created_at);
                let rows = &mut self.tables.receivables;
                rows.root.push(receivable.root_id.to_string());
                rows.issuer.push(receivable.issuer.to_string());
                rows.amount_minor.push(bigint(
                    height,
                    "a receivable's amount",
                    receivable.amount.0,
                )?);
                rows.maturity_ms
                    .push(bigint(height, "a maturity", receivable.maturity.0)?);
                rows.invoice_ref.push(hex(&receivable.invoice_ref));
                rows.frozen_tokens
                    .push(i32::try_from(receivable.frozen_tokens).unwrap_or(i32::MAX));
                rows.settled.push(receivable.settlement.is_some());
                rows.confirmed_height
                    .push(bigint(height, "the height", confirmed_height)?);
                rows.updated_height.push(at);
                match receivable.settlement {
                    Some(settlement) => {
                        rows.payment_ref.push(Some(settlement.payment_ref));
                        rows.settled_at_ms.push(Some(bigint(
                            height,
                            "a settlement time",
                            settlement.settled_at.0,
                        )?));
                    }
                    None => {
                        rows.payment_ref.push(None);
                        rows.settled_at_ms.push(None);
                    }
                }
            }
            StateValue::Token(token) => self.add_token(height, token, state)?,
            // Invoice references are the rule that a receivable is confirmed
            // once; `receivables.invoice_ref` shows them.
            StateValue::Invoice(_) => {}
            StateValue::KeyBinding(binding) => {
                let rows = &mut self.tables.key_bindings;
                rows.key.push(binding.key.to_string());
                rows.participant.push(binding.participant.to_string());
                rows.bound_height.push(at);
            }
            StateValue::KeyRecovery(recovery) => {
                let rows = &mut self.tables.key_recoveries;
                rows.participant.push(recovery.participant.to_string());
                rows.new_key.push(recovery.new_key.to_string());
                rows.requested_by.push(recovery.requested_by.to_string());
                rows.requested_height
                    .push(bigint(height, "the height", recovery.requested_at)?);
                match recovery.approved {
                    Some((auditor, approved_at)) => {
                        rows.approved_by.push(Some(auditor.to_string()));
                        rows.approved_height
                            .push(Some(bigint(height, "the height", approved_at)?));
                    }
                    None => {
                        rows.approved_by.push(None);
                        rows.approved_height.push(None);
                    }
                }
                rows.updated_height.push(at);
            }
            StateValue::ValidatorEpoch(epoch) => self.add_epoch(height, epoch)?,
            StateValue::ValidatorProposal(proposal) => self.add_proposal(height, proposal)?,
            // The newest epoch's number and the open proposals: what
            // `validator_epochs` and `validator_proposals` show (the open
            // ones are those neither adopted nor past `expires_at`).
            StateValue::GovernanceSummary(_) => {}
        }
        Ok(())
    }

    fn add_epoch(&mut self, height: u64, epoch: ValidatorEpoch) -> Result<(), TooLarge> {
        let number = bigint(height, "an epoch number", epoch.number)?;
        let rows = &mut self.tables.epochs;
        rows.epoch.push(number);
        rows.from_height
            .push(bigint(height, "the height", epoch.from_height)?);
        // At most MAX_VALIDATORS members.
        rows.validators
            .push(i32::try_from(epoch.validators.len()).unwrap_or(i32::MAX));
        rows.total_power
            .push(bigint(height, "a total voting power", epoch.total_power())?);
        rows.updated_height
            .push(bigint(height, "the height", height)?);
        for validator in epoch.validators {
            let rows = &mut self.tables.validators;
            rows.epoch.push(number);
            rows.consensus_key.push(validator.consensus_key.to_string());
            rows.identity.push(validator.identity.to_string());
            rows.name.push(validator.name);
            rows.peer_id.push(validator.peer_id.to_string());
            rows.address.push(validator.address);
            rows.power
                .push(bigint(height, "a voting power", validator.power)?);
        }
        Ok(())
    }

    fn add_proposal(&mut self, height: u64, proposal: ValidatorProposal) -> Result<(), TooLarge> {
        let rows = &mut self.tables.proposals;
        rows.id.push(proposal.id.to_string());
        rows.change.push(proposal.change.kind().to_string());
        rows.details.push(
            serde_json::to_string(&proposal.change).expect("a validator change always serialises"),
        );
        rows.proposer.push(proposal.proposer.to_string());
        rows.proposed_height
            .push(bigint(height, "the height", proposal.proposed_at)?);
        rows.expires_at
            .push(bigint(height, "an expiry height", proposal.expires_at)?);
        let approvals: Vec<String> = proposal
            .approvals
            .iter()
            .map(|identity| identity.to_string())
            .collect();
        rows.approvals.push(approvals.join(","));
        match proposal.adopted {
            Some(adoption) => {
                rows.adopted_height
                    .push(Some(bigint(height, "the height", adoption.at)?));
                rows.adopted_by.push(Some(adoption.by.to_string()));
                rows.effective_from.push(Some(bigint(
                    height,
                    "the height",
                    adoption.effective_from,
                )?));
                rows.epoch
                    .push(Some(bigint(height, "an epoch number", adoption.epoch)?));
            }
            None => {
                rows.adopted_height.push(None);
                rows.adopted_by.push(None);
                rows.effective_from.push(None);
                rows.epoch.push(None);
            }
        }
        rows.updated_height
            .push(bigint(height, "the height", height)?);
        Ok(())
    }

    fn add_token(
        &mut self,
        height: u64,
        token: Token,
        state: &MemoryState,
    ) -> Result<(), TooLarge> {
        // As the API shows it: an unspent token of a settled root is
        // settled, and changed at the settlement's height if that is later.
        let mut updated = height;
        let token = match state
            .receivable(&token.root_id)
            .expect("the replay's state is in memory and reads without failing")
        {
            Some(receivable) => {
                let settled = token.settled_by(&receivable);
                if let (TokenStatus::Settled { .. }, Some((_, at))) =
                    (&settled.status, self.settled_roots.get(&settled.root_id))
                {
                    updated = updated.max(*at);
                }
                settled
            }
            None => token,
        };
        let rows = if token.created_at >= self.first_height {
            &mut self.tables.new_tokens
        } else {
            &mut self.tables.changed_tokens
        };
        rows.id.push(token.id.to_string());
        rows.root.push(token.root_id.to_string());
        rows.parent
            .push(token.parent_id.map(|parent| parent.to_string()));
        rows.issuer.push(token.issuer.to_string());
        rows.holder.push(token.holder.to_string());
        rows.amount_minor
            .push(bigint(height, "a token's amount", token.amount.0)?);
        rows.maturity_ms
            .push(bigint(height, "a maturity", token.maturity.0)?);
        rows.frozen.push(token.frozen);
        let (status, pending_bank, pending_rate, spent_by, payment_ref) = match token.status {
            TokenStatus::Active => ("active", None, None, None, None),
            TokenStatus::Pending { bank, rate_bps } => (
                "pending",
                Some(bank.to_string()),
                Some(i32::try_from(rate_bps).unwrap_or(i32::MAX)),
                None,
                None,
            ),
            TokenStatus::Spent { by } => ("spent", None, None, Some(hex(&by.0)), None),
            TokenStatus::Settled { payment_ref } => {
                ("settled", None, None, None, Some(payment_ref))
            }
        };
        rows.status.push(status.to_string());
        rows.pending_bank.push(pending_bank);
        rows.pending_rate_bps.push(pending_rate);
        rows.spent_by.push(spent_by);
        rows.payment_ref.push(payment_ref);
        rows.origin.push(
            match token.origin {
                Origin::Confirmed => "confirmed",
                Origin::Transferred => "transferred",
                Origin::Financed { .. } => "financed",
            }
            .to_string(),
        );
        rows.created_height
            .push(bigint(height, "the height", token.created_at)?);
        rows.updated_height
            .push(bigint(height, "the height", updated)?);
        Ok(())
    }
}
