//! One Prometheus registry per process, served as text at `GET /metrics`. Each service
//! registers its metrics once (a `LazyLock` of its own) under `smart_support_…` names;
//! counters get the `_total` suffix from the encoder.

use std::sync::{LazyLock, Mutex};

use axum::{Router, http::header, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;

static REGISTRY: LazyLock<Mutex<Registry>> =
    LazyLock::new(|| Mutex::new(Registry::with_prefix("smart_support")));

/// Registers metrics in the process registry.
pub fn register(f: impl FnOnce(&mut Registry)) {
    f(&mut REGISTRY.lock().expect("metrics registry lock"));
}

/// The registry in Prometheus text format.
pub fn encode() -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(
        &mut out,
        &REGISTRY.lock().expect("metrics registry lock"),
    )
    .expect("writing to a String cannot fail");
    out
}

/// `GET /metrics`.
pub fn router() -> Router {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        encode(),
    )
}
