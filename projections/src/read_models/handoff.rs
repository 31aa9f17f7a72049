//! `handoff`: who has each conversation that was handed to a person (the desk's inbox).
//! The fold computes what a batch changes; [`apply`] merges it into the row: an escalation
//! starts a new wait (`waiting_since` and the first reply start over), a take-over keeps
//! the wait that was already running (or starts one), a release or a resolve ends the wait
//! and the holding.

use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a batch changes in one thread's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub thread_id: String,
    /// The state after the batch, when an event of the batch set one.
    pub state: Option<&'static str>,
    pub escalation_reason: Option<String>,
    /// Sequence of the escalation that began a new wait in this batch: `waiting_since` and
    /// `first_human_reply_at` then replace the row's instead of filling them.
    pub wait_seq: Option<i64>,
    pub waiting_since: Option<OffsetDateTime>,
    pub assignee: Option<(Uuid, String)>,
    pub assigned_at: Option<OffsetDateTime>,
    pub first_human_reply_at: Option<OffsetDateTime>,
    pub assignments: i32,
    /// Sequence of a take-over that came before any other event of the thread in this
    /// batch: it begins a new wait if the row's had ended (released or resolved), as it
    /// does when the release is in the same batch — so the row does not depend on where
    /// batches are cut (live, rebuild and verify cut them differently).
    pub reopen_seq: Option<i64>,
    pub last_seq: i64,
}

impl Delta {
    pub fn new(thread_id: String, seq: u64) -> Delta {
        Delta {
            thread_id,
            state: None,
            escalation_reason: None,
            wait_seq: None,
            waiting_since: None,
            assignee: None,
            assigned_at: None,
            first_human_reply_at: None,
            assignments: 0,
            reopen_seq: None,
            last_seq: seq as i64,
        }
    }
}

/// Applies the deltas of a batch in one statement.
pub async fn apply(tx: &mut Transaction<'_, Postgres>, deltas: &[Delta]) -> sqlx::Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into handoff as h (thread_id, state, escalation_reason, waiting_since, wait_seq,
                                   assignee_id, assignee_name, assigned_at, first_human_reply_at,
                                   assignments, last_seq)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[],
                              $6::uuid[], $7::text[], $8::timestamptz[], $9::timestamptz[],
                              $10::int[], $11::bigint[])
         on conflict (thread_id) do update set
             state = coalesce(excluded.state, h.state),
             escalation_reason = coalesce(excluded.escalation_reason, h.escalation_reason),
             waiting_since = case when excluded.state in ('released', 'resolved') then null
                                  when excluded.wait_seq > coalesce(h.wait_seq, 0)
                                  then excluded.waiting_since
                                  else coalesce(h.waiting_since, excluded.waiting_since) end,
             first_human_reply_at = case when excluded.state in ('released', 'resolved') then null
                                         when excluded.wait_seq > coalesce(h.wait_seq, 0)
                                         then excluded.first_human_reply_at
                                         else coalesce(h.first_human_reply_at,
                                                       excluded.first_human_reply_at) end,
             wait_seq = greatest(h.wait_seq, excluded.wait_seq,
                                 case when h.state in ('released', 'resolved')
                                      then (select r.seq from unnest($1::text[], $12::bigint[])
                                                 as r(thread_id, seq)
                                            where r.thread_id = excluded.thread_id) end),
             assignee_id = case when excluded.state in ('released', 'resolved', 'escalated')
                                then excluded.assignee_id
                                else coalesce(excluded.assignee_id, h.assignee_id) end,
             assignee_name = case when excluded.state in ('released', 'resolved', 'escalated')
                                  then excluded.assignee_name
                                  else coalesce(excluded.assignee_name, h.assignee_name) end,
             assigned_at = case when excluded.state in ('released', 'resolved', 'escalated')
                                then excluded.assigned_at
                                else coalesce(excluded.assigned_at, h.assigned_at) end,
             assignments = h.assignments + excluded.assignments,
             last_seq = greatest(h.last_seq, excluded.last_seq)",
    )
    .bind(
        deltas
            .iter()
            .map(|d| d.thread_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.state).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.escalation_reason.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.waiting_since).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.wait_seq).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.assignee.as_ref().map(|a| a.0))
            .collect::<Vec<_>>(),
    )
    .bind(
        deltas
            .iter()
            .map(|d| d.assignee.as_ref().map(|a| a.1.as_str()))
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.assigned_at).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.first_human_reply_at)
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.assignments).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.last_seq).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.reopen_seq).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The running wait of each of `threads` that has a row: `(thread, (waiting_since,
/// first_human_reply_at))`, for the fold.
#[allow(clippy::type_complexity)]
pub async fn waits(
    tx: &mut Transaction<'_, Postgres>,
    threads: &[&str],
) -> sqlx::Result<Vec<(String, (Option<OffsetDateTime>, Option<OffsetDateTime>))>> {
    let rows: Vec<(String, Option<OffsetDateTime>, Option<OffsetDateTime>)> = sqlx::query_as(
        "select thread_id, waiting_since, first_human_reply_at from handoff
         where thread_id = any($1)",
    )
    .bind(threads)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(t, a, b)| (t, (a, b))).collect())
}

/// Which conversations an inbox shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Escalated and not taken by anyone.
    Unassigned,
    /// Held by this operator.
    Mine(Uuid),
    /// Both, and those held by other operators.
    All,
}

/// A conversation that needs (or has) a person.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct InboxItem {
    pub thread_id: String,
    /// The customer's first message, cut to 200 characters.
    pub title: String,
    /// `escalated` (waiting for a person) or `assigned`.
    pub status: String,
    /// The operator who holds it.
    #[sqlx(skip)]
    pub assignee: Option<Assignee>,
    #[serde(skip)]
    pub assignee_id: Option<Uuid>,
    #[serde(skip)]
    pub assignee_name: Option<String>,
    /// Since when it waits for (or has) a person.
    #[serde(with = "time::serde::rfc3339::option")]
    pub waiting_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub assigned_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_event_at: OffsetDateTime,
    /// Why the agents escalated it (`user_request`, `keyword`, `tool_failures`,
    /// `destructive_action`), when they did.
    pub escalation_reason: Option<String>,
}

/// An operator as the inbox names them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Assignee {
    pub id: Uuid,
    pub name: String,
}

/// How many conversations each view holds.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub unassigned: i64,
    pub mine: i64,
    pub all: i64,
}

/// The conversations of a view, oldest waiting first.
pub async fn inbox(pool: &PgPool, view: View, limit: i64) -> sqlx::Result<Vec<InboxItem>> {
    let (states, me): (&[&str], Option<Uuid>) = match view {
        View::Unassigned => (&["escalated"], None),
        View::Mine(me) => (&["assigned"], Some(me)),
        View::All => (&["escalated", "assigned"], None),
    };
    let mut items: Vec<InboxItem> = sqlx::query_as(
        "select h.thread_id, h.state as status, h.assignee_id, h.assignee_name, h.waiting_since,
                h.assigned_at, c.last_activity_at as last_event_at, h.escalation_reason,
                coalesce(left((select r.fields->>'content' from replay_step r
                               where r.thread_id = h.thread_id and r.kind = 'message.received'
                               order by r.seq limit 1), 200), '') as title
         from handoff h join conversation c on c.thread_id = h.thread_id
         where h.state = any($1) and ($2::uuid is null or h.assignee_id = $2)
         order by h.waiting_since asc nulls last, h.thread_id
         limit $3",
    )
    .bind(states)
    .bind(me)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    for item in &mut items {
        item.assignee = item
            .assignee_id
            .zip(item.assignee_name.clone())
            .map(|(id, name)| Assignee { id, name });
    }
    Ok(items)
}

/// The size of each view for operator `me`.
pub async fn counts(pool: &PgPool, me: Uuid) -> sqlx::Result<Counts> {
    let (unassigned, mine, all): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where state = 'escalated'),
                count(*) filter (where state = 'assigned' and assignee_id = $1),
                count(*) filter (where state in ('escalated', 'assigned'))
         from handoff",
    )
    .bind(me)
    .fetch_one(pool)
    .await?;
    Ok(Counts {
        unassigned,
        mine,
        all,
    })
}
