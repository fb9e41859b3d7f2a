//! The tables a batch only adds rows to, and the most rows, `events` and
//! the tokens it creates, written by `COPY … FROM STDIN (FORMAT binary)`:
//! the server inserts a page of rows at a time (one WAL record per page
//! instead of per row) and decodes no arrays, no text and no expressions.
//! `scf-sink-bench` catches up about a quarter faster with it than with one
//! `INSERT … SELECT FROM unnest` per table.
//!
//! A `COPY` runs inside the batch's transaction like any statement, so its
//! rows commit or vanish with the cursor (`write.rs`); the tables' primary
//! keys still refuse a row written twice.
//!
//! Not here: rows that may already exist (`INSERT … ON CONFLICT` and
//! `UPDATE`, in `write.rs`).

use std::error::Error;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, BytesMut};
use tokio_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::rows::{EventRows, TokenRows};

const EVENTS: &str = "COPY events
        (cursor, height, tx_index, event_index, kind, block_time, tx_hash, signer, payload)
    FROM STDIN (FORMAT binary)";

const EVENT_TYPES: [Type; 9] = [
    Type::TEXT,
    Type::INT8,
    Type::INT4,
    Type::INT4,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::JSONB,
];

const TOKENS: &str = "COPY tokens
        (id, root, parent, issuer, holder, amount_minor, maturity, status, frozen,
         pending_bank, pending_rate_bps, spent_by, payment_ref, origin, created_height,
         updated_height)
    FROM STDIN (FORMAT binary)";

const TOKEN_TYPES: [Type; 16] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
];

/// Writes the batch's events; returns how many.
pub async fn events(tx: &Transaction<'_>, rows: &EventRows) -> Result<u64, tokio_postgres::Error> {
    if rows.cursor.is_empty() {
        return Ok(0);
    }
    let sink = tx.copy_in(EVENTS).await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &EVENT_TYPES));
    for row in 0..rows.cursor.len() {
        writer
            .as_mut()
            .write(&[
                &rows.cursor[row],
                &rows.height[row],
                &rows.tx_index[row],
                &rows.event_index[row],
                &rows.kind[row],
                &block_time(rows.block_time_ms[row]),
                &rows.tx_hash[row],
                &rows.signer[row],
                &JsonText(&rows.payload[row]),
            ])
            .await?;
    }
    writer.finish().await
}

/// Writes the tokens the batch created; returns how many.
pub async fn new_tokens(
    tx: &Transaction<'_>,
    rows: &TokenRows,
) -> Result<u64, tokio_postgres::Error> {
    if rows.id.is_empty() {
        return Ok(0);
    }
    let sink = tx.copy_in(TOKENS).await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &TOKEN_TYPES));
    for row in 0..rows.id.len() {
        writer
            .as_mut()
            .write(&[
                &rows.id[row],
                &rows.root[row],
                &rows.parent[row],
                &rows.issuer[row],
                &rows.holder[row],
                &rows.amount_minor[row],
                &block_time(rows.maturity_ms[row]),
                &rows.status[row],
                &rows.frozen[row],
                &rows.pending_bank[row],
                &rows.pending_rate_bps[row],
                &rows.spent_by[row],
                &rows.payment_ref[row],
                &rows.origin[row],
                &rows.created_height[row],
                &rows.updated_height[row],
            ])
            .await?;
    }
    writer.finish().await
}

/// A time of the chain (milliseconds since 1970, never negative: the rows
/// are built from `u64`s that fit an `i64`) as `timestamptz`.
fn block_time(milliseconds: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(milliseconds.max(0) as u64)
}

/// An event's JSON as the feed serves it, sent as text to a `json` column
/// or as `jsonb`'s binary input, which is a version byte (1) and the text:
/// the server parses it either way, as it parsed `$1::jsonb`.
#[derive(Debug)]
struct JsonText<'a>(&'a str);

impl ToSql for JsonText<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(1);
        }
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::JSONB
    }

    to_sql_checked!();
}
