//! One trace per message (docs/ARCHITECTURE.md#one-trace-per-message): the whole stack in
//! this process exports its spans to an OTLP receiver the test starts, one message goes in
//! over the WebSocket, and its stored events and the spans received tell one trace.
//!
//! A test binary of its own: the tracing subscriber, and with it the OTLP exporter, is
//! global to the process, and the other end-to-end tests run without one.

#[allow(dead_code)]
#[path = "e2e/support.rs"]
mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Router, body::Bytes, extract::State, http::header, routing::post};
use common::trace::TraceParent;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::json;

use support::{Stack, completes, frames_until_acked_and, send_json};

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

/// A minimal OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body.
async fn start_receiver() -> (SocketAddr, Spans) {
    let spans = Spans::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, spans)
}

async fn receive(
    State(spans): State<Spans>,
    body: Bytes,
) -> ([(header::HeaderName, &'static str); 1], Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    let mut received = spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: TraceId::from_bytes(span.trace_id.try_into().unwrap()),
                    span_id: SpanId::from_bytes(span.span_id.try_into().unwrap()),
                    parent_span_id: span.parent_span_id.try_into().ok().map(SpanId::from_bytes),
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse: everything accepted.
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::new(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messages_events_and_its_spans_from_ingress_worker_and_projector_share_one_trace() {
    let (receiver, spans) = start_receiver().await;
    // Log lines only when asked (RUST_LOG); the spans are exported whatever the filter.
    let telemetry = Arc::new(common::telemetry::init_with(
        "off",
        Some(&format!("http://{receiver}")),
    ));
    assert!(
        common::trace::exporting(),
        "this binary's subscriber exports"
    );
    let stack = Stack::start().await;
    let (mut socket, thread_id) = stack.open_thread().await;
    send_json(
        &mut socket,
        json!({"type": "message", "content": "Where is my order?", "client_msg_id": "m-1"}),
    )
    .await;
    let frames = frames_until_acked_and(&mut socket, completes).await;
    let events: Vec<(u64, String)> = frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| {
            (
                f["seq"].as_u64().unwrap(),
                f["event"]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(events[0].1, "message.received");
    assert_eq!(events.last().unwrap().1, "agent.replied");

    // Every stored event carries a traceparent of one trace: the user message the ingress
    // span's, the turn events the worker span's.
    let js = async_nats::jetstream::new(stack.nats_client().await);
    let stream = js.get_stream(common::subjects::CHAT_STREAM).await.unwrap();
    let mut stored = Vec::new();
    for (seq, kind) in &events {
        let message = stream.get_raw_message(*seq).await.unwrap();
        let parent = TraceParent::from_headers(Some(&message.headers))
            .unwrap_or_else(|| panic!("{kind} (seq {seq}) has no valid traceparent"));
        stored.push(parent);
    }
    let message = stored[0];
    let trace_id = message.trace_id;
    assert!(
        stored.iter().all(|parent| parent.trace_id == trace_id),
        "one trace id on every event: {stored:?}"
    );
    let turn = stored[1].span_id;
    assert!(
        stored[1..].iter().all(|parent| parent.span_id == turn),
        "every turn event names the worker's span: {stored:?}"
    );
    assert_ne!(turn, message.span_id);

    // Projected, so the projector's spans have ended (or are about to, with the batch's ack).
    let last_seq = events.last().unwrap().0;
    stack.replay_through(&thread_id, last_seq).await;

    // The receiver gets a span from each stage in that trace, children of one another.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let flushing = telemetry.clone();
        tokio::task::spawn_blocking(move || flushing.flush())
            .await
            .unwrap();
        let ours: Vec<Received> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect();
        let named = |name: &str| ours.iter().filter(|s| s.name == name).collect::<Vec<_>>();
        let (ingress, worker, projector) = (named("message"), named("turn"), named("project"));
        if !ingress.is_empty() && !worker.is_empty() && projector.len() >= events.len() {
            assert_eq!(ingress.len(), 1, "{ours:?}");
            assert_eq!(ingress[0].span_id, message.span_id);
            assert_eq!(
                ingress[0].parent_span_id, None,
                "the trace starts at the frame"
            );
            assert_eq!(worker.len(), 1, "{ours:?}");
            assert_eq!(worker[0].span_id, turn);
            assert_eq!(worker[0].parent_span_id, Some(message.span_id));
            let parents: HashSet<_> = projector.iter().map(|s| s.parent_span_id).collect();
            assert_eq!(
                parents,
                HashSet::from([Some(message.span_id), Some(turn)]),
                "each projected event continues the span that stored it"
            );
            assert!(
                ours.iter().all(|s| !s.service.is_empty()),
                "a service name on every span: {ours:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans of the trace received: {ours:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
