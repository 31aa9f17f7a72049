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
