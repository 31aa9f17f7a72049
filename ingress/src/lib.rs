//! The WebSocket ingress, in the order a frame flows through it: [`ws::wire`] is every frame
//! of the protocol as it is on the wire, [`ws::frame`] parses a client frame into typed
//! values (or a named error), [`ws::session`] runs one connection (session frame, frame →
//! limit → publish → ack, events out), [`rate_limit`] holds each thread to its message rate
//! across instances, [`publish`] stores a user message in JetStream (through the thread's
//! user-message writer in `common`) and waits for its PubAck, [`live`] tails the stream once per process and fans
//! each event out to the sockets of its thread, and [`ws::resume`] replays a thread's
//! history after a sequence when a client reconnects. [`backlog`] refuses new messages
//! while the workers are too far behind. [`config`] and [`startup`] build and run the
//! service, and [`metrics`] counts what happens.

pub mod backlog;
pub mod config;
pub mod live;
pub mod metrics;
pub mod publish;
pub mod rate_limit;
pub mod startup;
pub mod ws;

pub use config::IngressArgs;
pub use startup::{IngressState, router};

/// smart-support ingress: the chat WebSocket endpoint (`GET /ws`).
///
/// The binary's command line; in the library so that tests can check what the compose file
/// runs against it (`cli/tests/honesty/compose.rs`).
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub nats: common::config::NatsArgs,
    #[command(flatten)]
    pub ingress: crate::IngressArgs,
    #[command(flatten)]
    pub metrics: common::config::MetricsArgs,
}
