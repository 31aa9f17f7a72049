//! `replay_step`: every event of every thread, in stream order.

use common::events::Envelope;
use serde_json::{Map, Value};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// Stores one event as a step; false when it was stored already (a redelivery).
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    seq: u64,
    event: &Envelope,
) -> sqlx::Result<bool> {
    let mut fields = match serde_json::to_value(&event.payload) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    fields.remove("kind");
    let inserted = sqlx::query(
        "insert into replay_step (seq, event_id, thread_id, turn_id, kind, occurred_at, fields)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict do nothing",
    )
    .bind(seq as i64)
    .bind(event.event_id)
    .bind(event.thread_id.as_str())
    .bind(event.turn_id.as_uuid())
    .bind(event.payload.kind())
    .bind(event.occurred_at)
    .bind(Value::Object(fields))
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
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
