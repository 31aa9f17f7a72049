//! `conversation`: one row per thread with its lifecycle and counters.

use common::events::{Envelope, Payload};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

/// Longest preview kept.
const PREVIEW_CHARS: usize = 200;

/// Folds one (new) event into its conversation row.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    seq: u64,
    event: &Envelope,
) -> sqlx::Result<()> {
    let (messages, turns, agent, preview) = match &event.payload {
        Payload::MessageReceived(m) => (1, 0, None, Some(cut(&m.content))),
        Payload::AgentReplied(r) => (0, 0, Some(r.agent.as_str()), Some(cut(&r.text))),
        Payload::TurnCompleted(_) => (0, 1, None, None),
        Payload::TurnStarted(_) => (0, 0, None, None),
    };
    sqlx::query(
        "insert into conversation (thread_id, status, started_at, last_activity_at, message_count,
                                   turn_count, agent, preview, first_seq, last_seq)
         values ($1, 'open', $2, $2, $3, $4, $5, coalesce($6, ''), $7, $7)
         on conflict (thread_id) do update set
             last_activity_at = greatest(conversation.last_activity_at, excluded.last_activity_at),
             message_count = conversation.message_count + excluded.message_count,
             turn_count = conversation.turn_count + excluded.turn_count,
             agent = coalesce($5, conversation.agent),
             preview = coalesce($6, conversation.preview),
             last_seq = greatest(conversation.last_seq, excluded.last_seq)",
    )
    .bind(event.thread_id.as_str())
    .bind(event.occurred_at)
    .bind(messages)
    .bind(turns)
    .bind(agent)
    .bind(preview)
    .bind(seq as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn cut(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

/// A conversation as the REST API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Summary {
    pub thread_id: String,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
    pub message_count: i32,
    pub turn_count: i32,
    pub agent: Option<String>,
    pub preview: String,
}

/// Where a page starts: just after this conversation in newest-first order.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub started_at: OffsetDateTime,
    pub thread_id: String,
}

/// One page, newest first (by start time, then thread id), optionally of one status.
pub async fn page(
    pool: &PgPool,
    status: Option<&str>,
    after: Option<&After>,
    limit: i64,
) -> sqlx::Result<Vec<Summary>> {
    sqlx::query_as(
        "select thread_id, status, started_at, last_activity_at, message_count, turn_count, agent, preview
         from conversation
         where ($1::text is null or status = $1)
           and ($2::timestamptz is null or (started_at, thread_id) < ($2, $3))
         order by started_at desc, thread_id desc
         limit $4",
    )
    .bind(status)
    .bind(after.map(|a| a.started_at))
    .bind(after.map(|a| a.thread_id.as_str()))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One conversation.
pub async fn find(pool: &PgPool, thread_id: &str) -> sqlx::Result<Option<Summary>> {
    sqlx::query_as(
        "select thread_id, status, started_at, last_activity_at, message_count, turn_count, agent, preview
         from conversation where thread_id = $1",
    )
    .bind(thread_id)
    .fetch_optional(pool)
    .await
}
