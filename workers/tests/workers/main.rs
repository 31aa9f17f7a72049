//! Integration tests of the workers: the OpenAI-compatible engine against a fake model
//! server, tools against real HTTP servers, and a worker process killed mid-turn.

mod kill;
mod openai_engine;
mod ssrf;
mod tools;
