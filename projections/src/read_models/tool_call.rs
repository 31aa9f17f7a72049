//! `tool_call`: one row per tool call of a turn.

use serde_json::Value;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a batch changes in one tool call row. `None` leaves a column as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub turn_id: Uuid,
    pub call_id: String,
    pub thread_id: String,
    pub tool: String,
    /// The time of the call's first event in the batch (`called_at` when new).
    pub first_at: OffsetDateTime,
    pub params: Option<Value>,
    pub permission: Option<String>,
    /// `called`, `succeeded` or `failed`: the latest in the batch.
    pub status: &'static str,
    pub http_status: Option<i32>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub category: Option<&'static str>,
    pub latency_ms: Option<i64>,
    pub attempts: Option<i32>,
    pub finished_at: Option<OffsetDateTime>,
}

impl Delta {
    pub fn new(
        turn_id: Uuid,
        call_id: String,
        thread_id: String,
        tool: String,
        first_at: OffsetDateTime,
    ) -> Delta {
        Delta {
            turn_id,
            call_id,
            thread_id,
            tool,
            first_at,
            params: None,
            permission: None,
            status: "called",
            http_status: None,
            result: None,
            error: None,
            category: None,
            latency_ms: None,
            attempts: None,
            finished_at: None,
        }
    }
}

impl Delta {
    /// What is known of the call itself: its arguments and permission (from its
    /// `tool.called`, or in version 2 from its result).
    pub fn called(&mut self, call: common::events::CallView<'_>) {
        self.params = Some(call.params.clone());
        self.permission = call
            .permission
            .map(|permission| format!("{permission:?}").to_lowercase());
    }
}

/// Applies the deltas in one statement: a known row gets what each delta knows (`None`
/// leaves a column as it is), a new one is inserted with it (`params` `{}` until a
/// `tool.called` states them). One write per row: a version-2 result is nearly always its
/// call's only event, so inserting a bare row and then updating it would write each row
/// twice. Only the projector's leader writes the table, so no row appears between the
/// update and the insert.
pub async fn apply(tx: &mut Transaction<'_, Postgres>, deltas: &[Delta]) -> sqlx::Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "with d as (
             select * from unnest($1::uuid[], $2::text[], $3::jsonb[], $4::text[], $5::text[],
                                  $6::int[], $7::jsonb[], $8::text[], $9::text[], $10::bigint[],
                                  $11::int[], $12::timestamptz[], $13::text[], $14::text[],
                                  $15::timestamptz[])
                 as d(turn_id, call_id, params, permission, status, http_status, result, error,
                      category, latency_ms, attempts, finished_at, thread_id, tool, called_at)
         ),
         known as (
             update tool_call set
                 params = coalesce(d.params, tool_call.params),
                 permission = coalesce(d.permission, tool_call.permission),
                 status = d.status,
                 http_status = coalesce(d.http_status, tool_call.http_status),
                 result = coalesce(d.result, tool_call.result),
                 error = coalesce(d.error, tool_call.error),
                 category = coalesce(d.category, tool_call.category),
                 latency_ms = coalesce(d.latency_ms, tool_call.latency_ms),
                 attempts = coalesce(d.attempts, tool_call.attempts),
                 finished_at = coalesce(d.finished_at, tool_call.finished_at)
             from d
             where tool_call.turn_id = d.turn_id and tool_call.call_id = d.call_id
             returning tool_call.turn_id, tool_call.call_id
         )
         insert into tool_call (turn_id, call_id, thread_id, tool, params, permission, status,
                                http_status, result, error, category, latency_ms, attempts,
                                called_at, finished_at)
         select turn_id, call_id, thread_id, tool, coalesce(params, '{}'::jsonb), permission,
                status, http_status, result, error, category, latency_ms, attempts, called_at,
                finished_at
         from d
         where not exists (select 1 from known
                           where known.turn_id = d.turn_id and known.call_id = d.call_id)",
    )
    .bind(deltas.iter().map(|d| d.turn_id).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.call_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.params.clone()).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.permission.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.status).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.http_status).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.result.clone()).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.error.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.category).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.latency_ms).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.attempts).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.finished_at).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.thread_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(deltas.iter().map(|d| d.tool.as_str()).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.first_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
