//! Slow clients, an unreachable JetStream, shutdown and metrics.

use std::time::Duration;

use serde_json::json;

use crate::support::{Stack, close_code, frames_until, is_event, next_frame, send_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_dropped_with_1013_instead_of_growing_memory() {
    let stack = Stack::start_with(|args| args.ingress.outbound_buffer = 8).await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let subject = format!("chat.{}.turn", session["thread_id"].as_str().unwrap());

    // Flood the thread with large events while the client reads nothing.
    let nats = stack.nats_client().await;
    let noise = json!({"kind": "noise", "pad": "z".repeat(8 * 1024)}).to_string();
    for _ in 0..4_000 {
        nats.publish(subject.clone(), noise.clone().into())
            .await
            .unwrap();
    }
    nats.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stack.metric("smart_support_ws_slow_clients_total").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow client was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What was buffered drains, then the close tells the client to resume.
    assert_eq!(close_code(&mut socket).await, 1013);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_jetstream_is_down_the_client_gets_unavailable_and_a_resend_later_is_answered() {
    let mut stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    next_frame(&mut socket).await;

    stack.nats_server().kill();
    let frame = json!({"type": "message", "content": "are you there?", "client_msg_id": "r-1"});
    send_json(&mut socket, frame.clone()).await;
    let answer = frames_until(&mut socket, |f| f["type"] == "ack" || f["type"] == "error")
        .await
        .pop()
        .unwrap();
    assert_eq!(answer["code"], "unavailable");
    assert_eq!(answer["client_msg_id"], "r-1");

    stack.nats_server().restart();
    // The client retries with the same id until the log takes it. The message's own event
    // may come before its ack (websocket.md: match them by seq), so every frame is kept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut frames = Vec::new();
    let seq = loop {
        send_json(&mut socket, frame.clone()).await;
        frames.extend(
            frames_until(&mut socket, |f| f["type"] == "ack" || f["type"] == "error").await,
        );
        let answer = frames.last().unwrap();
        if answer["type"] == "ack" {
            break answer["seq"].as_u64().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never stored after the restart: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if !frames.iter().any(|f| is_event(f, "agent.replied")) {
        frames.extend(frames_until(&mut socket, |f| is_event(f, "agent.replied")).await);
    }
    assert!(
        frames
            .iter()
            .any(|f| is_event(f, "message.received") && f["seq"] == seq),
        "{frames:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_going_away() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    next_frame(&mut socket).await;
    stack.shutdown.cancel();
    assert_eq!(close_code(&mut socket).await, 1001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_messages_and_errors_by_code() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    next_frame(&mut socket).await;
    send_json(&mut socket, json!({"type": "message", "content": "hi"})).await;
    let answered = frames_until(&mut socket, |f| is_event(f, "turn.completed")).await;
    let delivered = answered.iter().filter(|f| f["type"] == "event").count();
    send_json(&mut socket, json!({"type": "nope"})).await;
    frames_until(&mut socket, |f| f["type"] == "error").await;

    assert_eq!(stack.metric("smart_support_ws_connections").await, 1.0);
    assert_eq!(stack.metric("smart_support_ws_messages_total").await, 1.0);
    // Every event the socket got went through the live tail, which timed it.
    assert!(
        stack
            .metric("smart_support_ws_live_delay_seconds_count")
            .await
            >= delivered as f64,
        "the live tail's delay is not counted for the {delivered} events delivered"
    );
    assert_eq!(
        stack
            .metric("smart_support_ws_errors_total{code=\"unknown_type\"}")
            .await,
        1.0
    );
    assert!(stack.metric("smart_support_ws_publish_seconds_count").await >= 1.0);

    // The projector's side: the message and its four turn events (started, routed,
    // replied, completed) are applied once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while stack
        .metric("smart_support_projection_events_applied_total")
        .await
        < 5.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the turn was never projected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stack
            .metric("smart_support_projection_events_applied_total")
            .await,
        5.0
    );
    assert!(stack.metric("smart_support_projection_checkpoint").await >= 4.0);
}
