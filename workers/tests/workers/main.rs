//! Integration tests of the workers: the OpenAI-compatible engine against a fake model
//! server, tools against real HTTP servers, a worker process killed mid-turn, and two
//! workers handing one thread's messages between them.

mod backlog;
mod desk;
mod erasure;
mod fixture;
mod kill;
mod memory;
mod model_down;
mod openai_engine;
mod per_agent;
mod redelivery;
mod ssrf;
mod streaming;
mod tools;
