//! End-to-end tests: the whole system in one process (`smart-support up`) against a real
//! `nats-server -js` and a real PostgreSQL, driven over a real WebSocket and real HTTP.

mod agent_turns;
mod bad_input;
mod chat_round_trip;
mod cluster_failover;
mod dead_letters;
mod desk;
mod erasure;
mod mixed_versions;
mod operations;
mod poison_events;
mod publish;
mod rate_limit;
mod rebuild;
mod record_v1_fixture;
mod regress;
mod regress_rest;
mod resolve;
mod resume;
mod rotation;
mod security;
mod seed_demo;
mod stream_replaced;
mod streaming;
mod support;
mod unicode_content;
