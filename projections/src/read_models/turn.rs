//! `turn`: one row per agent turn.

use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a batch changes in one turn row. `None` leaves a column as it is; the counters
/// are added.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub turn_id: Uuid,
    pub thread_id: String,
    /// The time of the turn's first event in the batch (the row's `started_at` when new).
    pub first_at: OffsetDateTime,
    pub message_seq: Option<i64>,
    pub agent: Option<String>,
    pub outcome: Option<&'static str>,
    pub completed_at: Option<OffsetDateTime>,
    pub latency_ms: Option<i64>,
    pub tool_calls: i32,
    pub tool_errors: i32,
}

impl Delta {
    pub fn new(turn_id: Uuid, thread_id: String, first_at: OffsetDateTime) -> Delta {
        Delta {
            turn_id,
            thread_id,
            first_at,
            message_seq: None,
            agent: None,
            outcome: None,
            completed_at: None,
            latency_ms: None,
            tool_calls: 0,
            tool_errors: 0,
        }
    }
}

/// The agents of the turns that have a row, for the fold.
pub async fn agents(
    tx: &mut Transaction<'_, Postgres>,
    turns: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, Option<String>)>> {
    if turns.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as("select turn_id, agent from turn where turn_id = any($1)")
        .bind(turns)
        .fetch_all(&mut **tx)
        .await
}

/// Applies the deltas in one statement: a new turn is inserted with its delta, a known one
/// gets it added (a batch has one delta per turn). The columns' "not known yet" values, 0
/// for `message_seq` and `running` for `outcome`, leave a known row's value as it is.
pub async fn apply(tx: &mut Transaction<'_, Postgres>, deltas: &[Delta]) -> sqlx::Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into turn (turn_id, thread_id, started_at, message_seq, agent, outcome,
                           completed_at, latency_ms, tool_calls, tool_errors)
         select turn_id, thread_id, started_at, coalesce(message_seq, 0), agent,
                coalesce(outcome, 'running'), completed_at, latency_ms, tool_calls, tool_errors
         from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::bigint[], $5::text[],
                     $6::text[], $7::timestamptz[], $8::bigint[], $9::int[], $10::int[])
              as d(turn_id, thread_id, started_at, message_seq, agent, outcome, completed_at,
                   latency_ms, tool_calls, tool_errors)
         on conflict (turn_id) do update set
             message_seq = case when excluded.message_seq = 0 then turn.message_seq
                                else excluded.message_seq end,
             agent = coalesce(excluded.agent, turn.agent),
             outcome = case when excluded.outcome = 'running' then turn.outcome
                            else excluded.outcome end,
             completed_at = coalesce(excluded.completed_at, turn.completed_at),
             latency_ms = coalesce(excluded.latency_ms, turn.latency_ms),
             tool_calls = turn.tool_calls + excluded.tool_calls,
             tool_errors = turn.tool_errors + excluded.tool_errors",
    )
    .bind(deltas.iter().map(|d| d.turn_id).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.thread_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.first_at).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.message_seq).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.agent.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.outcome).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.completed_at).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.latency_ms).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.tool_calls).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.tool_errors).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A turn as the REST API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = Turn)]
pub struct Row {
    pub turn_id: Uuid,
    pub message_seq: i64,
    pub agent: Option<String>,
    pub outcome: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    pub latency_ms: Option<i64>,
    pub tool_calls: i32,
    pub tool_errors: i32,
}

/// A conversation's turns, in order.
pub async fn for_thread(pool: &PgPool, thread_id: &str) -> sqlx::Result<Vec<Row>> {
    sqlx::query_as(
        "select turn_id, message_seq, agent, outcome, started_at, completed_at, latency_ms,
                tool_calls, tool_errors
         from turn where thread_id = $1 order by message_seq, started_at",
    )
    .bind(thread_id)
    .fetch_all(pool)
    .await
}
