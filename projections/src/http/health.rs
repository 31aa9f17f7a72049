//! `GET /api/health`: the service and its dependencies.

use std::time::Duration;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Value, json};

use super::ApiState;
use crate::projector::CONVERSATIONS;
use crate::read_models::checkpoint;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/health", get(health))
}

/// 200 when NATS and Postgres answer, 503 otherwise; with the projection's lag.
async fn health(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    let nats_ok = state.client.connection_state() == async_nats::connection::State::Connected;
    let checkpoint = tokio::time::timeout(
        Duration::from_secs(2),
        checkpoint::load(&state.pool, CONVERSATIONS),
    )
    .await
    .ok()
    .and_then(Result::ok);
    let stream_last = if nats_ok {
        let mut stream = state.stream.clone();
        tokio::time::timeout(Duration::from_secs(2), stream.info())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|info| info.state.last_sequence)
    } else {
        None
    };
    let healthy = nats_ok && checkpoint.is_some();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "version": env!("CARGO_PKG_VERSION"),
        "checks": {
            "nats": if nats_ok { "ok" } else { "unavailable" },
            "postgres": if checkpoint.is_some() { "ok" } else { "unavailable" },
        },
        "projection": {
            "name": CONVERSATIONS,
            "checkpoint": checkpoint,
            "stream_last_seq": stream_last,
            "lag": match (stream_last, checkpoint) {
                (Some(last), Some(applied)) => Some(last.saturating_sub(applied)),
                _ => None,
            },
        },
    });
    (status, Json(body))
}
