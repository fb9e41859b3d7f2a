//! The database side of the sink: its connection, its lock, what it read
//! back on start, and each batch written in one transaction together with
//! the cursor that accounts for it.
//!
//! Exactly once rests on three things: a batch and its `sink_cursor` update
//! commit or vanish together (PostgreSQL's transaction), the update only
//! applies to the cursor the batch was built after (`WHERE height = …`),
//! and one sink at a time holds the database's advisory lock for as long as
//! its connection lives (a killed sink's connection closes, and with it the
//! lock). A sink killed at any instant resumes from the committed cursor.
//!
//! Each table takes a batch's rows in one statement, `unnest` of one array
//! per column: one round trip per table whatever the batch size. The tables
//! that only grow, and grow most (`events`, new tokens), take theirs by
//! binary `COPY` (`copy.rs`).

use crypto::{ChainId, Hash};
use genesis::Genesis;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement, Transaction};

use super::copy;
use super::rows::{Batch, StateTables};
use super::schema;

/// The advisory lock every sink of a database takes (any fixed number;
/// advisory locks are per database).
const SINK_LOCK: i64 = 0x5CF_5141_u32 as i64;

/// Why the database refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot connect to the database: {0}")]
    Connect(tokio_postgres::Error),
    #[error(
        "another sink is writing to this database (it holds the sink's advisory lock); stop it, or give this one a database of its own"
    )]
    Locked,
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    /// A statement failed; `error` is the client's error with its causes.
    #[error("{doing}: {error}")]
    Query { doing: &'static str, error: String },
    #[error("{what} is {value:?}, not 64 hex digits: the sink's tables were altered")]
    Damaged { what: &'static str, value: String },
    #[error(
        "the database's cursor is at height {found}, not {expected} as this sink wrote it: something else wrote to it; nothing of heights {first}.. was written"
    )]
    CursorMoved {
        expected: u64,
        found: i64,
        first: u64,
    },
    #[error(
        "heights {first}..={last} change {expected} {what} written earlier, but the database holds {found} of them: it was altered outside the sink; nothing of these heights was written"
    )]
    Missing {
        what: &'static str,
        expected: u64,
        found: u64,
        first: u64,
        last: u64,
    },
}

fn query(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> DatabaseError {
    move |error| DatabaseError::Query {
        doing,
        error: error_text(&error),
    }
}

/// The client's error (which step failed) and its causes (what the server,
/// or the encoding of a parameter, said).
pub fn error_text(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// What the database held when the sink started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub chain_id: ChainId,
    pub height: u64,
    pub block_hash: Hash,
    pub events: u64,
}

const PARTICIPANTS: &str = "INSERT INTO participants
        (key, signing_key, name, roles, active, next_nonce, updated_height)
    SELECT k, sk, n, string_to_array(r, ','), a, nn, h
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::int8[],
                $7::int8[]) AS u(k, sk, n, r, a, nn, h)
    ON CONFLICT (key) DO UPDATE SET signing_key = excluded.signing_key, name = excluded.name,
        roles = excluded.roles, active = excluded.active, next_nonce = excluded.next_nonce,
        updated_height = excluded.updated_height";

const CREDIT_LINES: &str = "INSERT INTO credit_lines
        (core, limit_minor, outstanding_minor, updated_height)
    SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[])
    ON CONFLICT (core) DO UPDATE SET limit_minor = excluded.limit_minor,
        outstanding_minor = excluded.outstanding_minor, updated_height = excluded.updated_height";

const GRANTS_CLEARED: &str = "DELETE FROM credit_grants WHERE core = ANY($1::text[])";

const GRANTS: &str = "INSERT INTO credit_grants (core, bank, limit_minor)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int8[])";

const RECEIVABLES: &str = "INSERT INTO receivables
        (root, issuer, amount_minor, maturity, invoice_ref, frozen_tokens, settled,
         payment_ref, settled_at, confirmed_height, updated_height)
    SELECT r, i, a, to_timestamp(0) + m * interval '1 millisecond', inv, f, s, p,
        to_timestamp(0) + sa * interval '1 millisecond', ch, h
    FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::int4[],
                $7::bool[], $8::text[], $9::int8[], $10::int8[], $11::int8[])
        AS u(r, i, a, m, inv, f, s, p, sa, ch, h)
    ON CONFLICT (root) DO UPDATE SET frozen_tokens = excluded.frozen_tokens,
        settled = excluded.settled, payment_ref = excluded.payment_ref,
        settled_at = excluded.settled_at, updated_height = excluded.updated_height";

/// Tokens of earlier batches the batch changed: only what can change on
/// the ledger (no indexed column, so the update stays on its page).
const CHANGED_TOKENS: &str = "UPDATE tokens t SET status = u.st, frozen = u.f,
        pending_bank = u.pb, pending_rate_bps = u.pr, spent_by = u.sb, payment_ref = u.pay,
        updated_height = u.uh
    FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::int4[], $6::text[],
                $7::text[], $8::int8[]) AS u(id, st, f, pb, pr, sb, pay, uh)
    WHERE t.id = u.id";

/// Unspent tokens of roots settled in the batch, written by earlier batches.
const SETTLED: &str = "UPDATE tokens t SET status = 'settled', payment_ref = s.p,
        pending_bank = NULL, pending_rate_bps = NULL, updated_height = s.h
    FROM unnest($1::text[], $2::text[], $3::int8[]) AS s(id, p, h)
    WHERE t.id = s.id AND t.status IN ('active', 'pending')";

const FINANCING: &str = "INSERT INTO financing
        (request, token, root, seller, bank, amount_minor, rate_bps, requested_at, status,
         decision, decided_at, price_minor, days, bought_token)
    SELECT rq, tk, r, s, b, a, rb, to_timestamp(0) + ra * interval '1 millisecond', st, d,
        to_timestamp(0) + da * interval '1 millisecond', pr, dy, bt
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[],
                $7::int4[], $8::int8[], $9::text[], $10::text[], $11::int8[], $12::int8[],
                $13::int8[], $14::text[])
        AS u(rq, tk, r, s, b, a, rb, ra, st, d, da, pr, dy, bt)";

const DECISIONS: &str = "UPDATE financing f SET status = d.st, decision = d.dc,
        decided_at = to_timestamp(0) + d.ms * interval '1 millisecond', price_minor = d.p,
        days = d.dy, bought_token = d.b
    FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                $7::text[]) AS d(tk, st, dc, ms, p, dy, b)
    WHERE f.token = d.tk AND f.status = 'requested' AND f.request < $8::text COLLATE \"C\"";

/// Keys bound in the batch: a binding is written once and never changes.
const KEY_BINDINGS: &str = "INSERT INTO key_bindings (key, participant, bound_height)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int8[])";

const KEY_RECOVERIES: &str = "INSERT INTO key_recoveries
        (participant, new_key, requested_by, requested_height, approved_by, approved_height,
         updated_height)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[],
                         $6::int8[], $7::int8[])
    ON CONFLICT (participant) DO UPDATE SET new_key = excluded.new_key,
        requested_by = excluded.requested_by, requested_height = excluded.requested_height,
        approved_by = excluded.approved_by, approved_height = excluded.approved_height,
        updated_height = excluded.updated_height";

/// An epoch is rewritten when a second change adopted in one block joins
/// it; its members are then replaced with it.
const EPOCHS: &str = "INSERT INTO validator_epochs
        (epoch, from_height, validators, total_power, updated_height)
    SELECT * FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::int8[], $5::int8[])
    ON CONFLICT (epoch) DO UPDATE SET from_height = excluded.from_height,
        validators = excluded.validators, total_power = excluded.total_power,
        updated_height = excluded.updated_height";

const VALIDATORS_CLEARED: &str = "DELETE FROM validators WHERE epoch = ANY($1::int8[])";

const VALIDATORS: &str = "INSERT INTO validators
        (epoch, consensus_key, identity, name, peer_id, address, power)
    SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::int8[])";

const PROPOSALS: &str = "INSERT INTO validator_proposals
        (id, change, details, proposer, proposed_height, expires_at, approvals,
         adopted_height, adopted_by, effective_from, epoch, updated_height)
    SELECT id, c, d::jsonb, p, ph, ex, string_to_array(a, ','), ah, ab, ef, e, uh
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                $7::text[], $8::int8[], $9::text[], $10::int8[], $11::int8[], $12::int8[])
        AS u(id, c, d, p, ph, ex, a, ah, ab, ef, e, uh)
    ON CONFLICT (id) DO UPDATE SET approvals = excluded.approvals,
        adopted_height = excluded.adopted_height, adopted_by = excluded.adopted_by,
        effective_from = excluded.effective_from, epoch = excluded.epoch,
        updated_height = excluded.updated_height";

const CURSOR: &str = "UPDATE sink_cursor SET height = $1, block_hash = $2, app_hash = $3,
        block_time = to_timestamp(0) + $4::int8 * interval '1 millisecond',
        last_event = coalesce($5, last_event), events = events + $6, updated_at = now()
    WHERE id AND height = $7";

/// The statements a batch runs, prepared once per connection.
struct Prepared {
    participants: Statement,
    credit_lines: Statement,
    grants_cleared: Statement,
    grants: Statement,
    receivables: Statement,
    changed_tokens: Statement,
    settled: Statement,
    financing: Statement,
    decisions: Statement,
    key_bindings: Statement,
    key_recoveries: Statement,
    epochs: Statement,
    validators_cleared: Statement,
    validators: Statement,
    proposals: Statement,
    cursor: Statement,
}

/// The sink's connection, holding the database's sink lock.
pub struct Database {
    client: Client,
    prepared: Prepared,
}

impl Database {
    /// Connects, takes the sink lock, migrates the schema and prepares the
    /// statements. Returns the versions migrated now.
    pub async fn open(url: &str) -> Result<(Database, Vec<i32>), DatabaseError> {
        let (mut client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(DatabaseError::Connect)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::error!(%error, "the database connection ended");
            }
        });
        // The schema's `IF NOT EXISTS` notices are not worth a log line.
        client
            .batch_execute("SET client_min_messages TO warning")
            .await
            .map_err(query("setting up the session"))?;
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&SINK_LOCK])
            .await
            .map_err(query("taking the sink's lock"))?
            .get(0);
        if !locked {
            return Err(DatabaseError::Locked);
        }
        let migrated = schema::migrate(&mut client).await?;
        let prepare = |sql: &'static str| {
            let client = &client;
            async move {
                client
                    .prepare(sql)
                    .await
                    .map_err(query("preparing the sink's statements"))
            }
        };
        let prepared = Prepared {
            participants: prepare(PARTICIPANTS).await?,
            credit_lines: prepare(CREDIT_LINES).await?,
            grants_cleared: prepare(GRANTS_CLEARED).await?,
            grants: prepare(GRANTS).await?,
            receivables: prepare(RECEIVABLES).await?,
            changed_tokens: prepare(CHANGED_TOKENS).await?,
            settled: prepare(SETTLED).await?,
            financing: prepare(FINANCING).await?,
            decisions: prepare(DECISIONS).await?,
            key_bindings: prepare(KEY_BINDINGS).await?,
            key_recoveries: prepare(KEY_RECOVERIES).await?,
            epochs: prepare(EPOCHS).await?,
            validators_cleared: prepare(VALIDATORS_CLEARED).await?,
            validators: prepare(VALIDATORS).await?,
            proposals: prepare(PROPOSALS).await?,
            cursor: prepare(CURSOR).await?,
        };
        Ok((Database { client, prepared }, migrated))
    }

    /// The chain and cursor written by an earlier run, if any.
    pub async fn stored(&self) -> Result<Option<Stored>, DatabaseError> {
        let row = self
            .client
            .query_opt(
                "SELECT c.chain_id, s.height, s.block_hash, s.events
                 FROM chain c CROSS JOIN sink_cursor s",
                &[],
            )
            .await
            .map_err(query("reading the sink's cursor"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let hash = |index: usize, what: &'static str| -> Result<Hash, DatabaseError> {
            let text: String = row.get(index);
            text.parse::<Hash>()
                .map_err(|_| DatabaseError::Damaged { what, value: text })
        };
        let height: i64 = row.get(1);
        let events: i64 = row.get(3);
        Ok(Some(Stored {
            chain_id: ChainId(hash(0, "chain.chain_id")?),
            height: height.max(0) as u64,
            block_hash: hash(2, "sink_cursor.block_hash")?,
            events: events.max(0) as u64,
        }))
    }

    /// Writes the chain's row, the genesis state (participants, and the
    /// validator set when genesis records one) and the cursor at height 0,
    /// in one transaction.
    pub async fn initialize(
        &mut self,
        genesis: &Genesis,
        state: &StateTables,
        app_hash: Hash,
    ) -> Result<(), DatabaseError> {
        let failed = query("writing the chain's genesis");
        let transaction = self.client.transaction().await.map_err(&failed)?;
        transaction
            .execute(
                "INSERT INTO chain (chain_id, chain_name, currency_code, currency_decimals)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &genesis.chain_id().to_string(),
                    &genesis.chain_name,
                    &genesis.currency_code,
                    &i16::from(genesis.currency_decimals),
                ],
            )
            .await
            .map_err(&failed)?;
        state_tables(&transaction, &self.prepared, state)
            .await
            .map_err(&failed)?;
        transaction
            .execute(
                "INSERT INTO sink_cursor (height, block_hash, app_hash, events)
                 VALUES (0, $1, $2, 0)",
                &[&Hash::ZERO.to_hex(), &app_hash.to_hex()],
            )
            .await
            .map_err(&failed)?;
        transaction.commit().await.map_err(&failed)
    }

    /// Writes `batch` and moves the cursor from `batch.first_height - 1`
    /// to its end, in one transaction. The tables' statements touch
    /// disjoint rows (the updates only rows of earlier batches, which
    /// `decisions` has to say in its SQL), so they are sent together
    /// (pipelined on the one connection) and the server never waits for
    /// the next one.
    pub async fn write(&mut self, batch: &Batch) -> Result<(), DatabaseError> {
        let failed = query("writing a batch");
        let prepared = &self.prepared;
        let transaction = self.client.transaction().await.map_err(&failed)?;
        let tx = &transaction;
        let (changed, _, _, decided) = tokio::try_join!(
            state_tables(tx, prepared, &batch.state),
            events(tx, batch),
            financing(tx, prepared, batch),
            decisions(tx, prepared, batch),
        )
        .map_err(&failed)?;
        let changes = batch.state.changed_tokens.id.len() as u64;
        if changed != changes {
            return Err(DatabaseError::Missing {
                what: "tokens",
                expected: changes,
                found: changed,
                first: batch.first_height,
                last: batch.end.height,
            });
        }
        let decisions = batch.decisions.token.len() as u64;
        if decided != decisions {
            return Err(DatabaseError::Missing {
                what: "open financing requests",
                expected: decisions,
                found: decided,
                first: batch.first_height,
                last: batch.end.height,
            });
        }
        let end = &batch.end;
        let previous = batch.first_height - 1;
        let moved = transaction
            .execute(
                &prepared.cursor,
                &[
                    &(end.height as i64),
                    &end.block_hash.to_hex(),
                    &end.app_hash.to_hex(),
                    &(end.block_time_ms as i64),
                    &end.last_event,
                    &(batch.event_count() as i64),
                    &(previous as i64),
                ],
            )
            .await
            .map_err(&failed)?;
        if moved != 1 {
            let found: i64 = transaction
                .query_one("SELECT height FROM sink_cursor", &[])
                .await
                .map_err(&failed)?
                .get(0);
            return Err(DatabaseError::CursorMoved {
                expected: previous,
                found,
                first: batch.first_height,
            });
        }
        transaction.commit().await.map_err(&failed)
    }
}

type Written = Result<u64, tokio_postgres::Error>;

/// Every state table's rows; returns how many earlier tokens it changed.
async fn state_tables(tx: &Transaction<'_>, prepared: &Prepared, state: &StateTables) -> Written {
    let (_, _, _, _, changed, _, _, _, _, _) = tokio::try_join!(
        participant_rows(tx, prepared, state),
        credit_lines(tx, prepared, state),
        receivables(tx, prepared, state),
        new_tokens(tx, state),
        changed_tokens(tx, prepared, state),
        settled(tx, prepared, state),
        key_bindings(tx, prepared, state),
        key_recoveries(tx, prepared, state),
        epochs(tx, prepared, state),
        proposals(tx, prepared, state),
    )?;
    Ok(changed)
}

async fn events(tx: &Transaction<'_>, batch: &Batch) -> Written {
    copy::events(tx, &batch.events).await
}

/// A core's credit line and its grants, which replace the ones held.
async fn credit_lines(tx: &Transaction<'_>, prepared: &Prepared, state: &StateTables) -> Written {
    let lines = &state.credit_lines;
    if lines.core.is_empty() {
        return Ok(0);
    }
    tx.execute(
        &prepared.credit_lines,
        &[
            &lines.core,
            &lines.limit_minor,
            &lines.outstanding_minor,
            &lines.updated_height,
        ],
    )
    .await?;
    tx.execute(&prepared.grants_cleared, &[&lines.core]).await?;
    let grants = &state.grants;
    tx.execute(
        &prepared.grants,
        &[&grants.core, &grants.bank, &grants.limit_minor],
    )
    .await
}

async fn receivables(tx: &Transaction<'_>, prepared: &Prepared, state: &StateTables) -> Written {
    let rows = &state.receivables;
    if rows.root.is_empty() {
        return Ok(0);
    }
    tx.execute(
        &prepared.receivables,
        &[
            &rows.root,
            &rows.issuer,
            &rows.amount_minor,
            &rows.maturity_ms,
            &rows.invoice_ref,
            &rows.frozen_tokens,
            &rows.settled,
            &rows.payment_ref,
            &rows.settled_at_ms,
            &rows.confirmed_height,
            &rows.updated_height,
        ],
    )
    .await
}

async fn new_tokens(tx: &Transaction<'_>, state: &StateTables) -> Written {
    copy::new_tokens(tx, &state.new_tokens).await
}

async fn changed_tokens(tx: &Transaction<'_>, prepared: &Prepared, state: &StateTables) -> Written {
    let rows = &state.changed_tokens;
    if rows.id.is_empty() {
        return Ok(0);
    }
    tx.execute(
        &prepared.changed_tokens,
        &[
            &rows.id,
            &rows.status,
            &rows.frozen,
            &rows.pending_bank,
            &rows.pending_rate_bps,
            &rows.spent_by,
            &rows.payment_ref,
            &rows.updated_height,
        ],
    )
    .await
}

async fn settled(tx: &Transaction<'_>, prepared: &Prepared, state: &StateTables) -> Written {
    let rows = &state.settled;
    if rows.id.is_empty() {
        return Ok(0);
    }
    tx.execute(
        &prepared.settled,
        &[&rows.id, &rows.payment_ref, &rows.updated_height],
    )
    .await
}

async fn financing(tx: &Transaction<'_>, prepared: &Prepared, batch: &Batch) -> Written {
    let rows = &batch.financing;
    if rows.request.is_empty() {
        return Ok(0);
    }
    let params: [&(dyn ToSql + Sync); 14] = [
        &rows.request,
        &rows.token,
        &rows.root,
        &rows.seller,
        &rows.bank,
        &rows.amount_minor,
        &rows.rate_bps,
        &rows.requested_at_ms,
        &rows.status,
        &rows.decision,
        &rows.decided_at_ms,
        &rows.price_minor,
        &rows.days,
        &rows.bought_token,
    ];
    tx.execute(&prepared.financing, &params).await
}

/// Decisions on requests of earlier batches; returns how many it closed.
///
/// Only rows of earlier batches may match: a token whose request this
/// batch rejects can be offered again in the same batch, and that new
/// `requested` row (inserted by `financing`, pipelined before this
/// statement) must stay open. Cursors order as text, so every request
/// of an earlier batch is before the batch's first cursor.
async fn decisions(tx: &Transaction<'_>, prepared: &Prepared, batch: &Batch) -> Written {
    let rows = &batch.decisions;
    if rows.token.is_empty() {
        return Ok(0);
    }
    let batch_start = ledger::Cursor {
        height: batch.first_height,
        tx_index: 0,
        event_index: 0,
    }
    .to_string();
    tx.execute(
        &prepared.decisions,
        &[
            &rows.token,
            &rows.status,
            &rows.decision,
            &rows.decided_at_ms,
            &rows.price_minor,
            &rows.days,
            &rows.bought_token,
            &batch_start,
        ],
    )
    .await
}

async fn participant_rows(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    state: &StateTables,
) -> Written {
    let rows = &state.participants;
    if rows.key.is_empty() {
        return Ok(0);
    }
    tx.execute(
        &prepared.participants,
        &[
            &rows.key,
            &rows.signing_key,
            &rows.name,
            &rows.roles,
            &rows.active,
            &rows.next_nonce,
            &rows.updated_height,
        ],
    )
    .await
}

async fn key_bindings(tx: &Transaction<'_>, prepared: &Prepared, state: &StateTables) -> Written {
    let rows = &state.key_bindings;
    if rows.key.is_empty() {
        return Ok(0);
    }
    tx.execute(
        &prepared.key_bindings,
        &[&rows.key, &rows.participant, &rows.bound_height],
    )
    .await
}

async fn key_recoveries(tx: &Transaction<'_>, prepared: &Prepared, state: &StateTables) -> Written {
    let rows = &state.key_recoveries;
    if rows.participant.is_empty() {
        return Ok(0);
    }
    tx.execute(
        &prepared.key_recoveries,
        &[
            &rows.participant,
            &rows.new_key,
            &rows.requested_by,
            &rows.requested_height,
            &rows.approved_by,
            &rows.approved_height,
            &rows.updated_height,
        ],
    )
    .await
}

/// Epochs and their members, which replace the ones held.
async fn epochs(tx: &Transaction<'_>, prepared: &Prepared, state: &StateTables) -> Written {
    let epochs = &state.epochs;
    if epochs.epoch.is_empty() {
        return Ok(0);
    }
    tx.execute(
        &prepared.epochs,
        &[
            &epochs.epoch,
            &epochs.from_height,
            &epochs.validators,
            &epochs.total_power,
            &epochs.updated_height,
        ],
    )
    .await?;
    tx.execute(&prepared.validators_cleared, &[&epochs.epoch])
        .await?;
    let rows = &state.validators;
    tx.execute(
        &prepared.validators,
        &[
            &rows.epoch,
            &rows.consensus_key,
            &rows.identity,
            &rows.name,
            &rows.peer_id,
            &rows.address,
            &rows.power,
        ],
    )
    .await
}

async fn proposals(tx: &Transaction<'_>, prepared: &Prepared, state: &StateTables) -> Written {
    let rows = &state.proposals;
    if rows.id.is_empty() {
        return Ok(0);
    }
    let params: [&(dyn ToSql + Sync); 12] = [
        &rows.id,
        &rows.change,
        &rows.details,
        &rows.proposer,
        &rows.proposed_height,
        &rows.expires_at,
        &rows.approvals,
        &rows.adopted_height,
        &rows.adopted_by,
        &rows.effective_from,
        &rows.epoch,
        &rows.updated_height,
    ];
    tx.execute(&prepared.proposals, &params).await
}
