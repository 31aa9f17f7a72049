//! The agent workers, in the order a user message flows through them: [`consumer`] pulls
//! user messages from the shared durable consumer (one thread's messages one after the
//! other, different threads in parallel) and turns each step's outcome into ack / nak /
//! term; [`turn`] runs one turn — the only place decisions are made — asking an engine
//! from [`agents`] for the reply and returning the events to publish. [`trace`] puts each delivery in
//! its message's trace. [`config`] and [`startup`] build and run the service.

pub mod agents;
pub mod config;
pub mod consumer;
pub mod desk;
pub mod metrics;
pub mod published;
pub mod startup;
pub mod trace;
pub mod turn;

pub use config::WorkerArgs;

/// smart-support workers: answer user messages with agent turns.
///
/// The binary's command line; in the library so that tests can check what the compose file
/// runs against it (`cli/tests/honesty/compose.rs`).
#[derive(Debug, clap::Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(flatten)]
    pub nats: common::config::NatsArgs,
    #[command(flatten)]
    pub worker: crate::WorkerArgs,
}
