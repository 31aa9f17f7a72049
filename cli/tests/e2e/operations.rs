//! Slow clients, an unreachable JetStream, shutdown and metrics.

use std::time::Duration;

use serde_json::json;

use crate::support::{Stack, close_code, completes, frames_until, is_event, next_frame, send_json};

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
async fn while_the_workers_are_too_far_behind_a_new_message_is_refused_with_a_retry_hint() {
    // A tool API that never answers: the one message a worker takes stays in its turn, and
    // the messages after it wait for a worker.
    let app = axum::Router::new().fallback(std::future::pending::<&'static str>);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let stack = Stack::start_with(|args| {
        args.ingress.max_backlog = 1;
        args.worker.worker_batch = 1;
        args.worker.tools.tools_base_url = Some(format!("http://{hanging}"));
        args.worker.tools.tools_allow_hosts = vec![hanging.to_string()];
        args.worker.tools.tools_timeout = Duration::from_secs(600);
    })
    .await;
    let mut sockets = Vec::new();
    for content in ["Where is ORD-1002?", "hello", "hello", "hello"] {
        let mut socket = stack.connect("").await;
        next_frame(&mut socket).await;
        send_json(&mut socket, json!({"type": "message", "content": content})).await;
        let answer = frames_until(&mut socket, |f| f["type"] == "ack" || f["type"] == "error")
            .await
            .pop()
            .unwrap();
        assert_eq!(answer["type"], "ack", "{answer}");
        sockets.push(socket);
    }

    // Within a second or two the ingress sees the backlog and refuses what comes next.
    let mut socket = stack.connect("").await;
    next_frame(&mut socket).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut acked = 0.0;
    let refused = loop {
        send_json(
            &mut socket,
            json!({"type": "message", "content": "hello", "client_msg_id": "late"}),
        )
        .await;
        let answer = frames_until(&mut socket, |f| f["type"] == "ack" || f["type"] == "error")
            .await
            .pop()
            .unwrap();
        if answer["type"] == "error" {
            break answer;
        }
        acked += 1.0; // acked before the refusals began (a resend: the same message)
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert_eq!(refused["client_msg_id"], "late");
    assert_eq!(refused["retry_after_ms"], 1000);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("waiting for an agent"),
        "{refused}"
    );
    // The refused message was not stored: the ingress counted the four before it and the
    // acks of "late" before the refusals began, not the refusal.
    assert_eq!(
        stack.metric("smart_support_ws_messages_total").await,
        4.0 + acked
    );
    assert_eq!(
        stack
            .metric("smart_support_ws_errors_total{code=\"unavailable\"}")
            .await,
        1.0
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
    let answered = frames_until(&mut socket, completes).await;
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

    // The projector's side: the message and its two turn events (started, replied) are
    // applied once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while stack
        .metric("smart_support_projection_events_applied_total")
        .await
        < 3.0
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
        3.0
    );
    assert!(stack.metric("smart_support_projection_checkpoint").await >= 2.0);
}
