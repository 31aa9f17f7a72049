//! A worker process killed with SIGKILL in the middle of a turn: the message comes back
//! to another worker after the ack wait, the turn is redone without duplicate events, and
//! the conversation gets exactly one reply.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use axum::{Json, Router, http::HeaderMap, routing::get};
use common::events::{Envelope, ThreadId};
use serde_json::json;
use testkit::NatsServer;

use crate::fixture::{chat_stream, status_agents, store, turn_events};

/// An API whose first `GET /status` never answers (the worker is killed while it
/// waits); later ones answer at once. Records each request's `Idempotency-Key`.
async fn hanging_once_api() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let seen = keys.clone();
    let app = Router::new().route(
        "/status",
        get(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let first = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(key);
                    seen.len() == 1
                };
                if first {
                    std::future::pending::<()>().await;
                }
                Json(json!({"state": "fine"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, keys)
}

/// A worker process; killed (SIGKILL) when dropped.
struct WorkerProcess(Child);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(nats: &str, config: &std::path::Path, api: std::net::SocketAddr) -> WorkerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_workers"))
        .env("NATS_URL", nats)
        .envs(testkit::nats_env("worker"))
        .env("AGENTS_CONFIG", config)
        .env("TOOLS_BASE_URL", format!("http://{api}"))
        .env("TOOLS_ALLOW_HOSTS", api.to_string())
        .env("TOOLS_TIMEOUT", "120s")
        .env("WORKER_ACK_WAIT", "2s")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("the workers binary starts");
    WorkerProcess(child)
}

async fn wait_for(stream: &Stream, thread: &ThreadId, kind: &str) -> Vec<Envelope> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = turn_events(stream, thread).await;
        if events.iter().any(|e| e.payload.kind() == kind) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {kind} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_tool_call_is_replaced_and_the_message_gets_exactly_one_reply() {
    let nats = NatsServer::start();
    let (api, keys) = hanging_once_api().await;
    let dir = tempfile::tempdir().unwrap();
    let config = status_agents(dir.path());
    let (_client, js, stream) = chat_stream(&nats, "kill-test").await;
    let mut first = spawn_worker(&nats.url(), &config, api);

    let thread = ThreadId::generate();
    let message = Envelope::user_message(&thread, "how are things?");
    store(&js, &message, async_nats::HeaderMap::new()).await;

    // The first worker is inside the tool call (the API has its request): kill it there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while keys.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no call within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let _second = spawn_worker(&nats.url(), &config, api);

    let events = wait_for(&stream, &thread, "agent.replied").await;
    let count = |kind: &str| events.iter().filter(|e| e.payload.kind() == kind).count();
    assert_eq!(count("turn.started"), 1, "{events:?}");
    assert_eq!(count("tool.succeeded"), 1);
    assert_eq!(count("agent.replied"), 1);
    assert!(events.last().unwrap().payload.is_terminal(), "{events:?}");
    // The redone call carried the same Idempotency-Key, so an API that honours it would
    // not apply the effect twice.
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0], keys[1]);
    assert!(
        keys[0].starts_with(&format!("{}:tool-1:", message.turn_id)),
        "{keys:?}"
    );
    let _ = common::jetstream::connect_once(
        &common::config::NatsArgs::at(nats.url())
            .as_user("admin", &testkit::nats_password("admin")),
    )
    .await
    .unwrap();
}
