//! `GET /api/health`: the service and its dependencies.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ApiState, Routes};
use projections::projector::CONVERSATIONS;
use projections::projector::replaced::{self, StreamIdentity, Verdict};
use projections::read_models::checkpoint;

pub fn routes() -> Routes {
    Routes::new().get("/health", health)
}

/// The service and its dependencies.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    pub version: String,
    pub checks: Checks,
    pub projection: ProjectionState,
    /// Why the service is `unavailable` while NATS and PostgreSQL both answer (added
    /// 2026-12-06): `stream_replaced` when the read models were projected from another
    /// `CHAT` stream (the NATS store was deleted and the stream created again) and the
    /// projector has stopped applying. Absent when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened, with `reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What to do about it, with `reason` (for `stream_replaced`: run `smart-support
    /// rebuild`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// Each dependency: `ok` or `unavailable`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Checks {
    pub nats: String,
    pub postgres: String,
}

/// How far the projection is behind the stream.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectionState {
    pub name: String,
    /// Last stream sequence the projector committed (null when PostgreSQL did not answer).
    pub checkpoint: Option<u64>,
    /// Last sequence of the `CHAT` stream (null when NATS did not answer in 2 s).
    pub stream_last_seq: Option<u64>,
    /// `stream_last_seq - checkpoint`, in events (null when either is unknown).
    pub lag: Option<u64>,
}

fn word(ok: bool) -> String {
    if ok { "ok" } else { "unavailable" }.to_owned()
}

/// 200 when NATS and Postgres answer, 503 otherwise; with the projection's lag.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "health",
    responses(
        (status = 200, description = "NATS and PostgreSQL answer", body = Health),
        (status = 503, description = "A dependency is down, or the read models belong to another stream (`reason` `stream_replaced`); same body, `status` `unavailable`", body = Health),
    ),
)]
pub async fn health(State(state): State<ApiState>) -> (StatusCode, Json<Health>) {
    let connected = state.client.connection_state() == async_nats::connection::State::Connected;
    // The checkpoint first, the stream after: the stream only grows, so a checkpoint read
    // first is never beyond a last sequence read after it.
    let position = tokio::time::timeout(
        Duration::from_secs(2),
        checkpoint::position(&state.pool, CONVERSATIONS),
    )
    .await
    .ok()
    .and_then(Result::ok);
    let checkpoint = position.map(|p| p.last_seq);
    let stream = if connected {
        tokio::time::timeout(Duration::from_secs(2), StreamIdentity::of(&state.stream))
            .await
            .ok()
            .and_then(Result::ok)
    } else {
        None
    };
    let stream_last = stream.map(|s| s.last_seq);
    // Connected is not enough: a frozen or overloaded server keeps the connection up but
    // answers nothing, and then the ingress cannot store messages either.
    let nats_ok = stream.is_some();
    // Both answer, but the read models may belong to another stream: then the projector
    // applies nothing and every page would be stale without a word (issue 21 item 6).
    let replaced = match (position, stream) {
        (Some(position), Some(stream)) => match replaced::judge(&position, &stream) {
            Verdict::Replaced(replaced) => Some(replaced),
            Verdict::Same | Verdict::Unrecorded => None,
        },
        _ => None,
    };
    let healthy = nats_ok && checkpoint.is_some() && replaced.is_none();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: word(healthy),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        checks: Checks {
            nats: word(nats_ok),
            postgres: word(checkpoint.is_some()),
        },
        projection: ProjectionState {
            name: CONVERSATIONS.to_owned(),
            checkpoint,
            stream_last_seq: stream_last,
            lag: match (stream_last, checkpoint) {
                (Some(last), Some(applied)) => Some(last.saturating_sub(applied)),
                _ => None,
            },
        },
        reason: replaced.as_ref().map(|_| replaced::REASON.to_owned()),
        message: replaced.as_ref().map(|r| r.describe()),
        remedy: replaced.as_ref().map(|_| replaced::REMEDY.to_owned()),
    };
    (status, Json(body))
}
