//! One chat message all the way through: WebSocket → JetStream → worker → events back
//! on the socket → projection → REST.

use serde_json::{Value, json};

use crate::support::{
    Stack, completes, frames_until, frames_until_acked_and, message_contents, next_frame, send_json,
};

fn events_of(frames: &[Value]) -> Vec<&Value> {
    frames.iter().filter(|f| f["type"] == "event").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_acked_answered_and_then_listed_and_replayed_over_rest() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;

    let session = next_frame(&mut socket).await;
    assert_eq!(session["type"], "session");
    let thread_id = session["thread_id"].as_str().unwrap().to_owned();
    assert!(!session["token"].as_str().unwrap().is_empty());

    send_json(
        &mut socket,
        json!({"type": "message", "content": "Where is my order?", "client_msg_id": "m-1"}),
    )
    .await;
    let frames = frames_until_acked_and(&mut socket, completes).await;

    let ack = frames.iter().find(|f| f["type"] == "ack").expect("an ack");
    assert_eq!(ack["client_msg_id"], "m-1");
    let message_seq = ack["seq"].as_u64().unwrap();

    let events = events_of(&frames);
    let kinds: Vec<&str> = events
        .iter()
        .map(|f| f["event"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message.received", "turn.started", "agent.replied"]);
    assert_eq!(events[0]["seq"].as_u64(), Some(message_seq));
    assert_eq!(events[0]["event"]["content"], "Where is my order?");
    let seqs: Vec<u64> = events.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "events in stream order: {seqs:?}"
    );
    let reply = &events[2]["event"];
    assert_eq!(reply["thread_id"], thread_id.as_str());
    assert_eq!(reply["agent"], "orders");
    assert!(reply["text"].as_str().unwrap().contains("order number"));
    assert_eq!(reply["turn_id"], events[0]["event"]["turn_id"]);

    let list = stack
        .get_until("/api/conversations", |body| {
            body["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|c| c["thread_id"] == thread_id.as_str() && c["turn_count"] == 1)
            })
        })
        .await;
    let conversation = &list["items"][0];
    assert_eq!(conversation["message_count"], 1);
    assert_eq!(conversation["agent"], "orders");
    assert_eq!(conversation["status"], "open");

    let (status, replay) = stack
        .get(&format!("/api/conversations/{thread_id}/replay"))
        .await;
    assert_eq!(status, 200);
    let steps = replay["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["message.received", "turn.started", "agent.replied"]);
    assert_eq!(steps[0]["content"], "Where is my order?");
    assert_eq!(steps[0]["seq"].as_u64(), Some(message_seq));
    assert_eq!(steps[2]["text"], reply["text"]);
    assert_eq!(steps[2]["outcome"], "replied");
    assert_eq!(steps[1]["agent"], "orders", "the start names the agent");
    assert!(steps[2]["occurred_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_with_the_same_client_msg_id_is_not_a_second_message() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let thread_id = session["thread_id"].as_str().unwrap().to_owned();

    let frame = json!({"type": "message", "content": "hello", "client_msg_id": "same"});
    send_json(&mut socket, frame.clone()).await;
    let first = frames_until(&mut socket, |f| f["type"] == "ack").await;
    send_json(&mut socket, frame).await;
    let second = frames_until(&mut socket, |f| f["type"] == "ack").await;
    assert_eq!(first.last().unwrap()["seq"], second.last().unwrap()["seq"]);

    let conversation = stack
        .get_until(&format!("/api/conversations/{thread_id}"), |c| {
            c["turn_count"] == 1
        })
        .await;
    assert_eq!(conversation["message_count"], 1);
    let (_, replay) = stack
        .get(&format!("/api/conversations/{thread_id}/replay"))
        .await;
    assert_eq!(
        message_contents(replay["steps"].as_array().unwrap()).len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_the_token_replays_the_thread_after_the_given_sequence() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let (thread_id, token) = (
        session["thread_id"].as_str().unwrap().to_owned(),
        session["token"].as_str().unwrap().to_owned(),
    );
    send_json(&mut socket, json!({"type": "message", "content": "hi"})).await;
    let frames = frames_until(&mut socket, completes).await;
    let seqs: Vec<u64> = events_of(&frames)
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    drop(socket);

    let query = format!("?thread_id={thread_id}&token={token}&after_seq={}", seqs[1]);
    let mut resumed = stack.connect(&query).await;
    let session = next_frame(&mut resumed).await;
    assert_eq!(session["thread_id"], thread_id.as_str());
    let replayed = frames_until(&mut resumed, completes).await;
    let replayed_seqs: Vec<u64> = replayed
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(replayed_seqs, seqs[2..]);
}
