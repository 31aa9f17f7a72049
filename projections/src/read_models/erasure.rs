//! `erasure`: one row per erased conversation (who erased it, when, the tombstone's
//! sequence; no content), and the removal of an erased thread's rows from every other table.
//! What the removal takes out of the counters is computed by `projector::erase`.

use std::collections::HashSet;

use common::events::{ConversationErased, Envelope};
use sqlx::{Postgres, Transaction};

/// The threads among `threads` that were erased (their tombstone applied).
pub async fn erased(
    db: &mut sqlx::PgConnection,
    threads: &[&str],
) -> sqlx::Result<HashSet<String>> {
    let erased: Vec<String> =
        sqlx::query_scalar("select thread_id from erasure where thread_id = any($1)")
            .bind(threads)
            .fetch_all(db)
            .await?;
    Ok(erased.into_iter().collect())
}

/// Deletes every row of the thread from the tables keyed by thread (the counters are
/// handled apart), and records the erasure.
pub async fn remove_thread(
    tx: &mut Transaction<'_, Postgres>,
    seq: u64,
    tombstone: &Envelope,
    erased: &ConversationErased,
) -> sqlx::Result<()> {
    let thread = tombstone.thread_id.as_str();
    for table in [
        "replay_step",
        "tool_call",
        "turn",
        "handoff",
        "conversation",
    ] {
        // Table names are the constants above, never input.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "delete from {table} where thread_id = $1"
        )))
        .bind(thread)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "insert into erasure (thread_id, erased_at, erased_by, operator_id, operator_name, seq)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (thread_id) do update set
             erased_at = excluded.erased_at, erased_by = excluded.erased_by,
             operator_id = excluded.operator_id, operator_name = excluded.operator_name,
             seq = excluded.seq",
    )
    .bind(thread)
    .bind(tombstone.occurred_at)
    .bind(&erased.erased_by)
    .bind(erased.operator.as_ref().map(|o| o.operator_id))
    .bind(erased.operator.as_ref().map(|o| o.name.as_str()))
    .bind(seq as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the counter rows an erasure left at zero: a replay of the stream without the
/// thread's events would not have them.
pub async fn remove_empty_counters(tx: &mut Transaction<'_, Postgres>) -> sqlx::Result<()> {
    for statement in [
        "delete from analytics_hourly
         where conversations = 0 and messages = 0 and turns = 0 and replies = 0
           and resolutions = 0 and escalations = 0 and failures = 0 and tool_calls = 0
           and tool_errors = 0 and latency_count = 0 and latency_sum_ms = 0
           and prompt_tokens = 0 and completion_tokens = 0",
        "delete from analytics_latency where turns = 0",
        "delete from desk_hourly where assignments = 0 and replies = 0 and resolutions = 0",
        "delete from desk_first_reply where replies = 0",
    ] {
        sqlx::query(statement).execute(&mut **tx).await?;
    }
    Ok(())
}
