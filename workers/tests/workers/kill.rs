//! A worker process killed with SIGKILL in the middle of a turn: the message comes back
//! to another worker after the ack wait, the turn is redone without duplicate events, and
//! the conversation gets exactly one reply.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};
use axum::{Json, Router, http::HeaderMap, routing::get};
use common::config::NatsArgs;
use common::events::{Envelope, MessageReceived, ThreadId, TurnId};
use serde_json::json;
use testkit::NatsServer;
use time::OffsetDateTime;
use uuid::Uuid;

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

/// Every event on the thread's turn subject, in stream order.
async fn turn_events(stream: &Stream, thread: &ThreadId) -> Vec<Envelope> {
    let subject = common::subjects::turn_event(thread);
    let mut events = Vec::new();
    let mut next = 1;
    while let Ok(message) = stream
        .direct_get_next_for_subject(subject.as_str(), Some(next))
        .await
    {
        next = message.sequence + 1;
        events.push(Envelope::from_json(&message.payload).unwrap());
    }
    events
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
    std::fs::write(
        dir.path().join("status.yaml"),
        "openapi: 3.0.3\ninfo: {title: status, version: '1'}\nservers: [{url: 'http://example.invalid'}]\n\
         paths:\n  /status:\n    get:\n      operationId: getStatus\n      summary: Service status\n      \
         responses: {'200': {description: ok}}\n",
    )
    .unwrap();
    let config = dir.path().join("agents.yaml");
    std::fs::write(
        &config,
        "openapi: status.yaml\ndefault_agent: general\nagents:\n  - name: general\n    description: All\n    \
         tools: {getStatus: read}\n    intents:\n      - name: status\n        patterns: ['.']\n        \
         tool: getStatus\n        reply: 'Status: {result.state}'\n",
    )
    .unwrap();

    let args = NatsArgs {
        nats_url: nats.url(),
        stream_replicas: 1,
        duplicate_window: Duration::from_secs(600),
        client_name: "kill-test".into(),
    };
    let (_client, js) = common::jetstream::connect(&args).await.unwrap();
    let stream = common::jetstream::ensure_chat_stream(&js, &args)
        .await
        .unwrap();
    let mut first = spawn_worker(&nats.url(), &config, api);

    let thread = ThreadId::generate();
    let message = Envelope::new(
        Uuid::new_v4(),
        thread.clone(),
        TurnId::from_uuid(Uuid::new_v4()),
        OffsetDateTime::now_utc(),
        MessageReceived {
            content: "how are things?".into(),
            client_msg_id: None,
            backdated_ms: None,
        },
    );
    js.publish(message.subject(), message.to_json().into())
        .await
        .unwrap()
        .await
        .unwrap();

    // The first worker is inside the tool call: kill it there.
    wait_for(&stream, &thread, "tool.called").await;
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let _second = spawn_worker(&nats.url(), &config, api);

    let events = wait_for(&stream, &thread, "turn.completed").await;
    let count = |kind: &str| events.iter().filter(|e| e.payload.kind() == kind).count();
    assert_eq!(count("turn.started"), 1, "{events:?}");
    assert_eq!(count("tool.called"), 1);
    assert_eq!(count("tool.succeeded"), 1);
    assert_eq!(count("agent.replied"), 1);
    assert_eq!(count("turn.completed"), 1);
    // The redone call carried the same Idempotency-Key, so an API that honours it would
    // not apply the effect twice.
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0], keys[1]);
    assert!(
        keys[0].starts_with(&format!("{}:tool-1:", message.turn_id)),
        "{keys:?}"
    );
    let _ = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
}
