//! The shared plumbing against a real `nats-server` with JetStream.

mod dead_letters;
mod nats_users;
