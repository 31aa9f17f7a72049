//! The demo shop API the demo's agents call as tools: [`state`] holds the seeded products
//! and orders and applies each effect (with the `Idempotency-Key` replay store);
//! [`http`] maps each route to one function of the state. [`router`] and [`serve`] run it
//! in-process (tests) or from the `shop-api` binary. It is described for the agents by
//! `fixtures/shop-openapi.yaml`.

pub mod http;
pub mod state;

use std::future::Future;

pub use http::router;

/// Serves the shop (fresh seeded state) on `listener` until `shutdown` completes, then
/// finishes the requests in hand.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
}
