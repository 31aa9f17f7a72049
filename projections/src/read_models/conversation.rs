//! `conversation`: one row per thread with its lifecycle and counters.

use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

/// Longest preview kept.
pub const PREVIEW_CHARS: usize = 200;

/// What a batch changes in one conversation row (folded by `projector::fold`).
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub thread_id: String,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
    pub messages: i32,
    pub turns: i32,
    /// Tool calls that ended (succeeded, failed or refused).
    pub tool_calls: i32,
    /// The status after the batch (the fold starts from the row's).
    pub status: String,
    /// Agent of the latest reply (the row's when the batch has none).
    pub agent: Option<String>,
    /// The batch's latest message or reply text.
    pub preview: Option<String>,
    /// The batch's first customer message (the row keeps the first one it gets).
    pub title: Option<String>,
    pub resolved_at: Option<OffsetDateTime>,
    pub escalated_at: Option<OffsetDateTime>,
    pub first_seq: i64,
    pub last_seq: i64,
}

impl Delta {
    /// A user message: open again, unless a person has taken over (escalated, or held by
    /// an operator).
    pub fn open_unless_escalated(&mut self) {
        if self.status != "escalated" && self.status != "assigned" {
            self.status = "open".into();
        }
    }
}

/// Status and agent of the conversations that have a row, for the fold.
pub async fn known(
    tx: &mut Transaction<'_, Postgres>,
    threads: &[&str],
) -> sqlx::Result<Vec<(String, String, Option<String>)>> {
    sqlx::query_as("select thread_id, status, agent from conversation where thread_id = any($1)")
        .bind(threads)
        .fetch_all(&mut **tx)
        .await
}

/// Applies the deltas of a batch in one statement.
pub async fn apply(tx: &mut Transaction<'_, Postgres>, deltas: &[Delta]) -> sqlx::Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into conversation (thread_id, status, started_at, last_activity_at, message_count,
                                   turn_count, tool_call_count, agent, preview, resolved_at,
                                   escalated_at, first_seq, last_seq, title)
         select thread_id, status, first_at, last_at, messages, turns, tool_calls, agent,
                coalesce(preview, ''), resolved_at, escalated_at, first_seq, last_seq, title
         from unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[],
                     $6::int[], $7::int[], $8::text[], $9::text[], $10::timestamptz[],
                     $11::timestamptz[], $12::bigint[], $13::bigint[], $14::text[])
              as d(thread_id, status, first_at, last_at, messages, turns, tool_calls, agent,
                   preview, resolved_at, escalated_at, first_seq, last_seq, title)
         on conflict (thread_id) do update set
             status = excluded.status,
             last_activity_at = greatest(conversation.last_activity_at, excluded.last_activity_at),
             message_count = conversation.message_count + excluded.message_count,
             turn_count = conversation.turn_count + excluded.turn_count,
             tool_call_count = conversation.tool_call_count + excluded.tool_call_count,
             agent = coalesce(excluded.agent, conversation.agent),
             preview = case when excluded.preview = '' then conversation.preview
                            else excluded.preview end,
             resolved_at = coalesce(excluded.resolved_at, conversation.resolved_at),
             escalated_at = coalesce(excluded.escalated_at, conversation.escalated_at),
             last_seq = greatest(conversation.last_seq, excluded.last_seq),
             title = coalesce(conversation.title, excluded.title)",
    )
    .bind(
        deltas
            .iter()
            .map(|d| d.thread_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.status.as_str()).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.first_at).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.last_at).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.messages).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.turns).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.tool_calls).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.agent.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        deltas
            .iter()
            .map(|d| d.preview.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.resolved_at).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.escalated_at).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.first_seq).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.last_seq).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.title.as_deref())
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A conversation as the REST API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = ConversationSummary)]
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
    pub tool_call_count: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub escalated_at: Option<OffsetDateTime>,
    /// The customer's first message, cut to 200 characters; null until there is one.
    pub title: Option<String>,
}

/// The columns of a [`Summary`], for the queries that read one (aliased `c`).
pub(crate) const SUMMARY_COLUMNS: &str =
    "c.thread_id, c.status, c.started_at, c.last_activity_at, c.message_count, c.turn_count,
     c.agent, c.preview, c.tool_call_count, c.resolved_at, c.escalated_at, c.title";

/// Where a page starts: just after this conversation in newest-first order.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub started_at: OffsetDateTime,
    pub thread_id: String,
}

/// Which conversations a list or a search takes; `None` takes any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub status: Option<String>,
    /// The conversation's agent (of its latest reply).
    pub agent: Option<String>,
    /// Started at or after.
    pub from: Option<OffsetDateTime>,
    /// Started before.
    pub to: Option<OffsetDateTime>,
}

/// One page, newest first (by start time, then thread id), of the conversations `filter`
/// takes.
pub async fn page(
    pool: &PgPool,
    filter: &Filter,
    after: Option<&After>,
    limit: i64,
) -> sqlx::Result<Vec<Summary>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {SUMMARY_COLUMNS}
         from conversation c
         where ($1::text is null or c.status = $1)
           and ($2::text is null or c.agent = $2)
           and ($3::timestamptz is null or c.started_at >= $3)
           and ($4::timestamptz is null or c.started_at < $4)
           and ($5::timestamptz is null or (c.started_at, c.thread_id) < ($5, $6))
         order by c.started_at desc, c.thread_id desc
         limit $7"
    )))
    .bind(filter.status.as_deref())
    .bind(filter.agent.as_deref())
    .bind(filter.from)
    .bind(filter.to)
    .bind(after.map(|a| a.started_at))
    .bind(after.map(|a| a.thread_id.as_str()))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One conversation.
pub async fn find(pool: &PgPool, thread_id: &str) -> sqlx::Result<Option<Summary>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {SUMMARY_COLUMNS} from conversation c where c.thread_id = $1"
    )))
    .bind(thread_id)
    .fetch_optional(pool)
    .await
}
