//! Threads belong to their token holder, and a reconnect loses nothing.

use serde_json::{Value, json};

use crate::support::{
    Stack, close_code, completes, frames_until, next_frame, resume_query, send_json,
};

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_disconnected_mid_turn_gets_the_rest_of_the_turn_on_reconnect_without_gap_or_duplicate()
 {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    send_json(
        &mut socket,
        json!({"type": "message", "content": "where is my order", "client_msg_id": "q1"}),
    )
    .await;
    let ack = frames_until(&mut socket, |f| f["type"] == "ack")
        .await
        .pop()
        .unwrap();
    let acked = ack["seq"].as_u64().unwrap();
    drop(socket); // gone before the reply

    let mut resumed = stack.connect(&resume_query(&session, Some(acked))).await;
    assert_eq!(next_frame(&mut resumed).await["type"], "session");
    let frames = frames_until(&mut resumed, completes).await;
    let kinds: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["event"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["turn.started", "agent.replied"]);
    let got = seqs(&frames);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]) && got[0] > acked,
        "{got:?}"
    );

    // A resend of the same client_msg_id after the reconnect is the same message.
    send_json(
        &mut resumed,
        json!({"type": "message", "content": "where is my order", "client_msg_id": "q1"}),
    )
    .await;
    let again = frames_until(&mut resumed, |f| f["type"] == "ack")
        .await
        .pop()
        .unwrap();
    assert_eq!(again["seq"].as_u64(), Some(acked));
    let thread_id = session["thread_id"].as_str().unwrap();
    let conversation = stack
        .get_until(&format!("/api/conversations/{thread_id}"), |c| {
            c["turn_count"] == 1
        })
        .await;
    assert_eq!(conversation["message_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_produced_while_away_are_replayed_then_live_ones_follow() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    send_json(&mut socket, json!({"type": "message", "content": "one"})).await;
    let first = frames_until(&mut socket, completes).await;
    let last_seen = *seqs(&first).last().unwrap();
    // Another device of the same user sends while this one is away.
    let mut other = stack
        .connect(&resume_query(&session, Some(last_seen)))
        .await;
    next_frame(&mut other).await;
    drop(socket);
    send_json(&mut other, json!({"type": "message", "content": "two"})).await;
    frames_until(&mut other, completes).await;

    let mut back = stack
        .connect(&resume_query(&session, Some(last_seen)))
        .await;
    next_frame(&mut back).await;
    let replayed = frames_until(&mut back, completes).await;
    let replayed_seqs = seqs(&replayed);
    assert_eq!(
        replayed_seqs.len(),
        3,
        "message + 2 turn events: {replayed:?}"
    );
    assert_eq!(replayed_seqs[0], last_seen + 1, "no gap");
    assert_eq!(replayed[0]["event"]["content"], "two");
    // Then live.
    send_json(&mut back, json!({"type": "message", "content": "three"})).await;
    let live = frames_until(&mut back, completes).await;
    let live_seqs = seqs(&live);
    assert_eq!(
        live_seqs[0],
        replayed_seqs[2] + 1,
        "no gap between replay and live"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_never_sees_another_threads_events() {
    let stack = Stack::start().await;
    let mut alice = stack.connect("").await;
    let alice_session = next_frame(&mut alice).await;
    let mut bob = stack.connect("").await;
    let bob_session = next_frame(&mut bob).await;
    assert_ne!(alice_session["thread_id"], bob_session["thread_id"]);

    send_json(
        &mut alice,
        json!({"type": "message", "content": "alice here"}),
    )
    .await;
    send_json(&mut bob, json!({"type": "message", "content": "bob here"})).await;
    for (socket, session) in [(&mut alice, &alice_session), (&mut bob, &bob_session)] {
        let frames = frames_until(socket, completes).await;
        for event in frames.iter().filter(|f| f["type"] == "event") {
            assert_eq!(event["event"]["thread_id"], session["thread_id"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_and_the_socket_closed() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let thread_id = session["thread_id"].as_str().unwrap();
    let mut intruder = stack
        .connect(&format!("?thread_id={thread_id}&token=forged&after_seq=0"))
        .await;
    let refusal = next_frame(&mut intruder).await;
    assert_eq!(refusal["code"], "unauthorized");
    assert_eq!(close_code(&mut intruder).await, 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_after_a_sequence_the_stream_does_not_have_gets_invalid_after_seq_and_a_close() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    send_json(
        &mut socket,
        json!({"type": "message", "content": "where is my order", "client_msg_id": "q1"}),
    )
    .await;
    let ack = frames_until(&mut socket, |f| f["type"] == "ack")
        .await
        .pop()
        .unwrap();
    let acked = ack["seq"].as_u64().unwrap();
    drop(socket);

    // As a client that saw sequence 1949 of a stream since replaced by a shorter one.
    let mut resumed = stack
        .connect(&resume_query(&session, Some(acked + 10_000)))
        .await;
    assert_eq!(next_frame(&mut resumed).await["type"], "session");
    let refusal = next_frame(&mut resumed).await;
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert_eq!(refusal["code"], "invalid_after_seq", "{refusal}");
    assert!(
        refusal["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("after_seq {}", acked + 10_000))),
        "{refusal}"
    );
    assert_eq!(close_code(&mut resumed).await, 1008);

    // A resume at the stream's end is no error: nothing to replay, the socket stays.
    let mut at_end = stack.connect(&resume_query(&session, Some(acked))).await;
    assert_eq!(next_frame(&mut at_end).await["type"], "session");
    send_json(&mut at_end, json!({"type": "ping"})).await;
    let pong = frames_until(&mut at_end, |f| f["type"] == "pong").await;
    assert!(pong.iter().all(|f| f["type"] != "error"), "{pong:?}");
}
