//! `replay_step`: every event of every thread, in stream order.

use common::events::Envelope;
use serde_json::{Map, Value};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// Stores events as steps in one statement; returns the sequences that were new (a
/// redelivered event is already there and is left alone).
pub async fn insert_many(
    tx: &mut Transaction<'_, Postgres>,
    events: &[(u64, &Envelope)],
) -> sqlx::Result<Vec<u64>> {
    let mut seqs = Vec::with_capacity(events.len());
    let mut event_ids = Vec::with_capacity(events.len());
    let mut threads = Vec::with_capacity(events.len());
    let mut turns = Vec::with_capacity(events.len());
    let mut kinds = Vec::with_capacity(events.len());
    let mut times = Vec::with_capacity(events.len());
    let mut fields = Vec::with_capacity(events.len());
    for (seq, event) in events {
        seqs.push(*seq as i64);
        event_ids.push(event.event_id);
        threads.push(event.thread_id.as_str());
        turns.push(*event.turn_id.as_uuid());
        kinds.push(event.payload.kind());
        times.push(event.occurred_at);
        fields.push(kind_fields(event));
    }
    let inserted: Vec<i64> = sqlx::query_scalar(
        "insert into replay_step (seq, event_id, thread_id, turn_id, kind, occurred_at, fields)
         select * from unnest($1::bigint[], $2::uuid[], $3::text[], $4::uuid[], $5::text[],
                              $6::timestamptz[], $7::jsonb[])
         on conflict do nothing
         returning seq",
    )
    .bind(seqs)
    .bind(event_ids)
    .bind(threads)
    .bind(turns)
    .bind(kinds)
    .bind(times)
    .bind(fields)
    .fetch_all(&mut **tx)
    .await?;
    Ok(inserted.into_iter().map(|seq| seq as u64).collect())
}

/// The events of `events` whose sequence holds another event in `replay_step` (another
/// `event_id`): `(seq, stored id, delivered id)`. An event delivered again at its own
/// sequence is not one.
pub async fn conflicts(
    tx: &mut Transaction<'_, Postgres>,
    events: &[(u64, &Envelope)],
) -> sqlx::Result<Vec<(u64, Uuid, Uuid)>> {
    let seqs: Vec<i64> = events.iter().map(|(seq, _)| *seq as i64).collect();
    let stored: Vec<(i64, Uuid)> =
        sqlx::query_as("select seq, event_id from replay_step where seq = any($1)")
            .bind(seqs)
            .fetch_all(&mut **tx)
            .await?;
    let stored: std::collections::HashMap<u64, Uuid> = stored
        .into_iter()
        .map(|(seq, id)| (seq as u64, id))
        .collect();
    Ok(events
        .iter()
        .filter_map(|(seq, event)| {
            let id = *stored.get(seq)?;
            (id != event.event_id).then_some((*seq, id, event.event_id))
        })
        .collect())
}

/// Stores events as steps; returns the sequences that were new. The usual case, none of
/// them stored yet, is one [`copy_many`]; when one already is (a batch applied again with a
/// stale checkpoint), the `COPY` is undone to a savepoint and the batch goes in with
/// [`insert_many`], which leaves the stored ones alone.
pub async fn store(
    tx: &mut Transaction<'_, Postgres>,
    events: &[(u64, &Envelope)],
) -> sqlx::Result<Vec<u64>> {
    let mut savepoint = sqlx::Connection::begin(&mut **tx).await?;
    match copy_many(&mut savepoint, events).await {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(events.iter().map(|(seq, _)| *seq).collect())
        }
        Err(err)
            if err
                .as_database_error()
                .is_some_and(|e| e.is_unique_violation()) =>
        {
            savepoint.rollback().await?;
            insert_many(tx, events).await
        }
        Err(err) => Err(err),
    }
}

/// Stores events as steps with one `COPY`, which has no `on conflict`: a step already
/// there fails the whole statement (a rebuild's fresh copy has none; [`store`] falls back).
/// In exchange PostgreSQL writes the rows in bulk (multi-row heap inserts, fewer WAL
/// records), a large share of the projector's time (docs/benchmarks.md).
pub async fn copy_many(
    tx: &mut Transaction<'_, Postgres>,
    events: &[(u64, &Envelope)],
) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut data = Vec::with_capacity(events.len() * 256);
    for (seq, event) in events {
        write_copy_row(&mut data, *seq, event);
    }
    let mut copy = tx
        .copy_in_raw(
            "copy replay_step (seq, event_id, thread_id, turn_id, kind, occurred_at, fields) \
             from stdin",
        )
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// One row of `COPY … FROM STDIN` text format: tab-separated, newline-terminated, with
/// backslash, tab, newline and carriage return escaped in the text columns.
fn write_copy_row(out: &mut Vec<u8>, seq: u64, event: &Envelope) {
    use std::io::Write;
    // Writing into a Vec cannot fail, nor can formatting these types.
    let _ = write!(out, "{seq}\t{}\t", event.event_id);
    copy_escaped(out, event.thread_id.as_str().as_bytes());
    let _ = write!(out, "\t{}\t", event.turn_id.as_uuid());
    copy_escaped(out, event.payload.kind().as_bytes());
    out.push(b'\t');
    // Truncated to microseconds as sqlx's binary encoding does for the live tables
    // (PostgreSQL would round more digits), so a rebuild stores the same instant.
    let at = event.occurred_at;
    let at = at
        .replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
        .unwrap_or(at);
    let _ = at.format_into(&mut *out, &time::format_description::well_known::Rfc3339);
    out.push(b'\t');
    let fields = serde_json::to_vec(&kind_fields(event)).unwrap_or_else(|_| b"{}".to_vec());
    copy_escaped(out, &fields);
    out.push(b'\n');
}

fn copy_escaped(out: &mut Vec<u8>, text: &[u8]) {
    for &byte in text {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(byte),
        }
    }
}

/// The kind's own fields: the event without its envelope and `kind` tag.
fn kind_fields(event: &Envelope) -> Value {
    let mut fields = match serde_json::to_value(&event.payload) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    fields.remove("kind");
    Value::Object(fields)
}

/// One step as the replay endpoint shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct Step {
    pub seq: i64,
    pub event_id: Uuid,
    pub turn_id: Uuid,
    pub kind: String,
    pub occurred_at: OffsetDateTime,
    pub fields: Value,
}

/// Every step of a thread, in stream order.
pub async fn for_thread(pool: &PgPool, thread_id: &str) -> sqlx::Result<Vec<Step>> {
    sqlx::query_as(
        "select seq, event_id, turn_id, kind, occurred_at, fields
         from replay_step where thread_id = $1 order by seq",
    )
    .bind(thread_id)
    .fetch_all(pool)
    .await
}

/// Every stored event of a thread, in stream order, read back as events (inside the batch's
/// transaction): what an erasure takes out of the counters. A step is the event with its
/// envelope fields in columns, so the event is its fields with those put back. A step keeps
/// no schema version: it is read with this version's meanings, which version 1's fields
/// keep (a version-1 event has none of the fields version 2 added).
pub async fn events_of(
    tx: &mut Transaction<'_, Postgres>,
    thread_id: &str,
) -> sqlx::Result<Vec<(u64, Envelope)>> {
    let rows: Vec<(i64, Value)> = sqlx::query_as(
        "select seq, fields || jsonb_build_object(
                    'event_id', event_id, 'schema_version', $2::int, 'thread_id', thread_id,
                    'turn_id', turn_id, 'kind', kind,
                    'occurred_at', to_char(occurred_at at time zone 'UTC',
                                           'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))
         from replay_step where thread_id = $1 order by seq",
    )
    .bind(thread_id)
    .bind(i32::from(common::events::SCHEMA_VERSION))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(seq, event)| {
            let event = serde_json::from_value::<Envelope>(event)
                .map_err(|err| {
                    tracing::warn!(seq, error = %common::text::log_safe(&err.to_string()), "a stored step does not read back as an event; its counts stay")
                })
                .ok()?;
            Some((seq as u64, event))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_row_escapes_what_copy_text_format_reads_as_special() {
        let mut out = Vec::new();
        copy_escaped(&mut out, b"a\tb\nc\rd\\e \"f\"");
        assert_eq!(out, b"a\\tb\\nc\\rd\\\\e \"f\"");
    }
}
