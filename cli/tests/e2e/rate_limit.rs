//! At most 10 messages per 10 s per thread, across connections and ingress instances.

use serde_json::json;

use crate::support::{
    Socket, Stack, connect_to, frames_until, next_frame, resume_query, send_json,
};

async fn send_and_answer(socket: &mut Socket, n: usize) -> serde_json::Value {
    send_json(socket, json!({"type": "message", "content": format!("message {n}"), "client_msg_id": format!("m-{n}")})).await;
    frames_until(socket, |f| f["type"] == "ack" || f["type"] == "error")
        .await
        .pop()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_message_in_ten_seconds_is_refused_with_a_retry_hint() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    next_frame(&mut socket).await;
    for n in 1..=10 {
        assert_eq!(
            send_and_answer(&mut socket, n).await["type"],
            "ack",
            "message {n}"
        );
    }
    let refused = send_and_answer(&mut socket, 11).await;
    assert_eq!(refused["code"], "rate_limited");
    assert_eq!(refused["client_msg_id"], "m-11");
    let retry_after = refused["retry_after_ms"].as_u64().unwrap();
    assert!(retry_after > 0 && retry_after <= 10_000, "{retry_after}");
    // The connection stays usable.
    send_json(&mut socket, json!({"type": "ping"})).await;
    frames_until(&mut socket, |f| f["type"] == "pong").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_for_one_thread_spread_over_two_ingress_instances() {
    let stack = Stack::start().await;
    let second = stack.start_ingress().await;

    let mut first_socket = stack.connect("").await;
    let session = next_frame(&mut first_socket).await;
    let mut second_socket = connect_to(second, &resume_query(&session, None)).await;
    next_frame(&mut second_socket).await;

    for n in 1..=6 {
        assert_eq!(send_and_answer(&mut first_socket, n).await["type"], "ack");
    }
    for n in 7..=10 {
        assert_eq!(send_and_answer(&mut second_socket, n).await["type"], "ack");
    }
    assert_eq!(
        send_and_answer(&mut second_socket, 11).await["code"],
        "rate_limited"
    );
    assert_eq!(
        send_and_answer(&mut first_socket, 12).await["code"],
        "rate_limited"
    );

    // Another thread is not affected.
    let mut other = connect_to(second, "").await;
    next_frame(&mut other).await;
    assert_eq!(send_and_answer(&mut other, 1).await["type"], "ack");
}
