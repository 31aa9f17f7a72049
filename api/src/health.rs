//! `GET /api/health`: the service and its dependencies.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ApiState, Routes};
use projections::projector::CONVERSATIONS;
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
        (status = 503, description = "A dependency is down (same body, `status` `unavailable`)", body = Health),
    ),
)]
pub async fn health(State(state): State<ApiState>) -> (StatusCode, Json<Health>) {
    let connected = state.client.connection_state() == async_nats::connection::State::Connected;
    let checkpoint = tokio::time::timeout(
        Duration::from_secs(2),
        checkpoint::load(&state.pool, CONVERSATIONS),
    )
    .await
    .ok()
    .and_then(Result::ok);
    let stream_last = if connected {
        super::consistency::stream_last_seq(&state).await
    } else {
        None
    };
    // Connected is not enough: a frozen or overloaded server keeps the connection up but
    // answers nothing, and then the ingress cannot store messages either.
    let nats_ok = stream_last.is_some();
    let healthy = nats_ok && checkpoint.is_some();
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
    };
    (status, Json(body))
}
