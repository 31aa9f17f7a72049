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

/// smart-support demo shop API: products and orders the demo's agents call as tools.
///
/// The binary's command line; in the library so that tests can check what the compose file
/// runs against it (`cli/tests/honesty/compose.rs`).
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "SHOP_BIND", default_value = "127.0.0.1:8090")]
    pub bind: std::net::SocketAddr,
}
