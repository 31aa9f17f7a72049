//! Shared plumbing of the smart-support pipeline, in the order a chat message meets it:
//! [`events`] is the event contract (the envelope every service reads and writes, and one
//! module per event family), [`subjects`] names every stream, subject and consumer,
//! [`jetstream`] creates them idempotently at start-up, [`user_messages`] stores a thread's
//! user messages as a chain (the ingress and a redrive), [`dead_letters`] keeps the messages
//! the workers gave up on, [`erasure`] removes a conversation from both streams and leaves a
//! tombstone, [`config`] holds the clap argument
//! groups the services share, [`secrets`] a secret setting that can be rotated, [`telemetry`] sets up tracing and [`trace`] carries one trace per message across the
//! services, [`metrics`] serves the Prometheus registry, [`shutdown`] turns
//! Ctrl-C / SIGTERM into a cancellation token that every loop takes as a parameter, and
//! [`startup`] is the shape every service starts in (build, bind, run until stopped).

pub mod config;
pub mod dead_letters;
pub mod erasure;
pub mod events;
pub mod jetstream;
pub mod metrics;
pub mod secrets;
pub mod shutdown;
pub mod startup;
pub mod subjects;
pub mod telemetry;
pub mod text;
pub mod trace;
pub mod user_messages;
