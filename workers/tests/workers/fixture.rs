//! What the tests that run whole turns against JetStream share: a one-tool agents config
//! (`GET /status`, a read, answered by a rule), the chat stream on a test server, and ways
//! to store an event and to read a thread's turn events back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use async_nats::jetstream::{Context, stream::Stream};
use async_nats::{Client, HeaderMap};
use common::config::NatsArgs;
use common::events::{Envelope, ThreadId};
use testkit::NatsServer;
use workers::WorkerArgs;

/// Writes `status.yaml` (the OpenAPI document) and `agents.yaml` into `dir`: one agent whose
/// every message calls `getStatus` and replies with its `state`. Returns the config's path.
pub fn status_agents(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("status.yaml"),
        "openapi: 3.0.3\ninfo: {title: status, version: '1'}\nservers: [{url: 'http://example.invalid'}]\n\
         paths:\n  /status:\n    get:\n      operationId: getStatus\n      summary: Service status\n      \
         responses: {'200': {description: ok}}\n",
    )
    .unwrap();
    let config = dir.join("agents.yaml");
    std::fs::write(
        &config,
        "openapi: status.yaml\ndefault_agent: general\nagents:\n  - name: general\n    description: All\n    \
         tools: {getStatus: read}\n    intents:\n      - name: status\n        patterns: ['.']\n        \
         tool: getStatus\n        reply: 'Status: {result.state}'\n",
    )
    .unwrap();
    config
}

/// A worker's settings for the agents of [`status_agents`] (written into `dir`) calling the
/// API at `api`, with `more` flags after them.
pub fn status_worker(dir: &Path, api: SocketAddr, more: &[&str]) -> WorkerArgs {
    let mut flags = vec![
        "--agents-config".to_owned(),
        status_agents(dir).display().to_string(),
        "--tools-base-url".to_owned(),
        format!("http://{api}"),
        "--tools-allow-hosts".to_owned(),
        api.to_string(),
    ];
    flags.extend(more.iter().map(|flag| (*flag).to_owned()));
    WorkerArgs::from_flags(flags).unwrap()
}

/// A client of `nats` as the NATS admin, and the chat stream, set up as
/// `smart-support nats-setup` sets it up. (The tests here drive the worker's parts on the
/// connections they also observe with; the workers' own NATS user is exercised end to end in
/// `cli/tests/e2e`.)
pub async fn chat_stream(nats: &NatsServer, client_name: &str) -> (Client, Context, Stream) {
    let args = NatsArgs {
        client_name: client_name.into(),
        ..NatsArgs::at(nats.url()).as_user("admin", &testkit::nats_password("admin"))
    };
    let (client, js) = common::jetstream::connect(&args).await.unwrap();
    let stream = common::jetstream::setup(&js, &args).await.unwrap();
    (client, js, stream)
}

/// Stores `event` on its subject with `headers` and returns its stream sequence.
pub async fn store(js: &Context, event: &Envelope, headers: HeaderMap) -> u64 {
    js.publish_with_headers(event.subject(), headers, event.to_json().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

/// Every event on the thread's turn subject, in stream order.
pub async fn turn_events(stream: &Stream, thread: &ThreadId) -> Vec<Envelope> {
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

/// A delivery of the message stored at `seq`, checked against its thread's order.
pub fn delivery<'a>(
    seq: u64,
    delivered: u32,
    payload: &'a [u8],
    headers: Option<&'a HeaderMap>,
) -> workers::consumer::Delivery<'a> {
    workers::consumer::Delivery {
        subject: "unused",
        seq,
        delivered,
        payload,
        headers,
        ignore_order: false,
    }
}

/// A delivery of the message stored at `seq`, answered whatever its thread's order.
pub fn unordered(seq: u64, delivered: u32, payload: &[u8]) -> workers::consumer::Delivery<'_> {
    workers::consumer::Delivery {
        ignore_order: true,
        ..delivery(seq, delivered, payload, None)
    }
}
