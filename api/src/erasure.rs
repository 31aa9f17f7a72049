//! `DELETE /api/conversations/{thread_id}` (admin): erase a conversation
//! ([`common::erasure`]: its events and dead letters are deleted from JetStream and a
//! tombstone without content is stored, which the projector folds into "its rows leave every
//! table"), and the retention sweep that erases inactive conversations the same way
//! (`CONVERSATION_RETENTION`).

use std::time::Duration;

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
};
use common::erasure::{self, Eraser};
use common::events::ThreadId;
use common::shutdown::CancellationToken;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::conversations::{conversation_not_found, parse_thread_id};
use crate::error::{ApiError, ErrorBody};
use crate::{ApiState, Routes};
use projections::read_models::conversation;

pub fn routes() -> Routes {
    Routes::new().delete("/conversations/{thread_id}", erase)
}

/// The answer to an erasure.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErasedAnswer {
    pub thread_id: String,
    /// Stream sequence of the `conversation.erased` tombstone: pass it as `min_seq` to a read
    /// to see the conversation gone from every read model.
    pub seq: u64,
    /// Events deleted from the stream.
    pub events: u64,
    /// Dead letters deleted.
    pub dead_letters: u64,
}

/// Erases a conversation: its events leave the stream, its dead letters go, and a tombstone
/// without content (`conversation.erased`, naming the operator) is stored; the projector then
/// removes its rows from every table. Answered once the deletes are done, the tombstone is
/// stored and the projector has applied it (or `PROJECTION_WAIT` has passed: then the rows go
/// when it reaches `seq`, which a read can wait for with `min_seq`).
#[utoipa::path(
    delete,
    path = "/api/conversations/{thread_id}",
    tag = "conversations",
    params(("thread_id" = String, Path, description = "1 to 64 characters of `A-Z a-z 0-9 - _`", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 202, description = "Erased from the stream; the tombstone is stored at `seq`", body = ErasedAnswer),
        (status = 400, description = "`invalid_thread_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`: no event, dead letter or row of it (never stored, or erased already)", body = ErrorBody),
        (status = 503, description = "`unavailable`: NATS did not answer; what was deleted stays deleted, try again", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn erase(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(thread_id): Path<String>,
) -> Result<(StatusCode, Json<ErasedAnswer>), ApiError> {
    let thread_id = parse_thread_id(&thread_id)?;
    let erased = erase_thread(
        &state.pool,
        &state.client,
        &thread_id,
        &Eraser::Operator(caller.as_ref()),
    )
    .await?
    .ok_or_else(|| conversation_not_found(&thread_id))?;
    // Read your write: the rows are gone when this answers, unless the projector is behind
    // (then they go when it reaches `seq`; the erasure from the stream is done either way).
    if let Err(err) = crate::consistency::wait_for(&state, Some(erased.seq)).await {
        tracing::warn!(error = %err, seq = erased.seq, "erased; the projector has not removed the rows yet");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(ErasedAnswer {
            thread_id: thread_id.to_string(),
            seq: erased.seq,
            events: erased.events,
            dead_letters: erased.dead_letters,
        }),
    ))
}

/// Erases one thread (see [`common::erasure::erase`]); `None`: there was nothing of it.
pub async fn erase_thread(
    pool: &PgPool,
    client: &async_nats::Client,
    thread_id: &ThreadId,
    by: &Eraser,
) -> Result<Option<erasure::Erased>, ApiError> {
    let known = conversation::find(pool, thread_id.as_str())
        .await?
        .is_some();
    let js = async_nats::jetstream::new(client.clone());
    let erased = erasure::erase(&js, thread_id, by, known)
        .await
        .map_err(|err| ApiError::Unavailable(format!("erasure not finished: {err:#}")))?;
    // Regress runs quote the turns they compared (`public.regress_turn`, not rebuilt from
    // the stream, so the projector's tombstone does not reach it).
    let quoted = sqlx::query("delete from public.regress_turn where thread_id = $1")
        .bind(thread_id.as_str())
        .execute(pool)
        .await?
        .rows_affected();
    if let Some(erased) = &erased {
        tracing::info!(
            %thread_id,
            seq = erased.seq,
            events = erased.events,
            dead_letters = erased.dead_letters,
            regress_turns = quoted,
            by = ?by,
            "conversation erased"
        );
    }
    Ok(erased)
}

/// Most conversations one round of the retention sweep erases.
const RETENTION_BATCH: i64 = 100;

/// Erases, every `every`, the conversations whose last activity is older than `retention`
/// (recorded as by `retention`), until `shutdown`. Every API instance sweeps; two sweeping
/// the same conversation at once store two tombstones, which the projector folds as one.
pub async fn retention_sweep(
    pool: PgPool,
    client: async_nats::Client,
    retention: Duration,
    every: Duration,
    shutdown: CancellationToken,
) {
    tracing::info!(retention = ?retention, "conversation retention on");
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match sweep_once(&pool, &client, retention).await {
            Ok(0) => {}
            Ok(erased) => tracing::info!(erased, "inactive conversations erased"),
            Err(err) => tracing::warn!(error = %err, "retention sweep failed; trying again later"),
        }
    }
}

/// One round: erases up to [`RETENTION_BATCH`] conversations inactive for `retention`;
/// returns how many.
pub async fn sweep_once(
    pool: &PgPool,
    client: &async_nats::Client,
    retention: Duration,
) -> Result<usize, ApiError> {
    let before = time::OffsetDateTime::now_utc()
        - time::Duration::try_from(retention).unwrap_or(time::Duration::MAX);
    let inactive: Vec<String> = sqlx::query_scalar(
        "select thread_id from conversation where last_activity_at < $1
         order by last_activity_at limit $2",
    )
    .bind(before)
    .bind(RETENTION_BATCH)
    .fetch_all(pool)
    .await?;
    let mut erased = 0;
    for thread in inactive {
        let Ok(thread_id) = ThreadId::parse(&thread) else {
            continue;
        };
        if erase_thread(pool, client, &thread_id, &Eraser::Retention)
            .await?
            .is_some()
        {
            erased += 1;
        }
    }
    Ok(erased)
}
