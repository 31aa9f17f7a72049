//! One Prometheus registry per process, served as text at `GET /metrics` on a listener of its
//! own ([`serve`], `METRICS_ADDR`: loopback by default, no token); on the service's public port
//! only behind the admin's credentials (the API's router uses [`handler`]).
//! Each service registers its metrics once (a `LazyLock` of its own) under `smart_support_…`
//! names; counters get the `_total` suffix from the encoder.

use std::net::SocketAddr;
use std::sync::{LazyLock, Mutex};

use axum::{Router, http::header, response::IntoResponse, routing::get};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::config::{DEFAULT_METRICS_ADDR, MetricsAddr, MetricsArgs};

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

/// Serves `GET /metrics` on the listener `args` names until `shutdown` is cancelled; returns
/// the bound address (`None` when off, or when the default address is taken: then an error
/// is logged and the service runs without /metrics). An address that was set and cannot be
/// bound is an error: the service does not start.
pub async fn serve(
    args: &MetricsArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<SocketAddr>> {
    let listener = match args.metrics_addr {
        Some(MetricsAddr::Off) => return Ok(None),
        Some(MetricsAddr::At(addr)) => {
            tokio::net::TcpListener::bind(addr).await.map_err(|err| {
                anyhow::anyhow!("cannot serve /metrics on {addr} (METRICS_ADDR): {err}")
            })?
        }
        None => match tokio::net::TcpListener::bind(DEFAULT_METRICS_ADDR).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(
                    addr = %DEFAULT_METRICS_ADDR,
                    error = %err,
                    "cannot serve /metrics on the default address; running without it: set METRICS_ADDR"
                );
                return Ok(None);
            }
        },
    };
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, router())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the /metrics listener stopped");
        }
    });
    tracing::info!(%addr, "serving /metrics");
    Ok(Some(addr))
}

/// `GET /metrics`, for a listener of its own ([`serve`]) or the worker's
/// `WORKER_METRICS_ADDR`.
pub fn router() -> Router {
    Router::new().route("/metrics", get(handler))
}

/// The answer to `GET /metrics`: the registry as Prometheus text.
pub async fn handler() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        encode(),
    )
}
