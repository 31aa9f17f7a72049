//! Secrets rotate without logging anybody out (docs/operations.md, "Rotating secrets"): the
//! thread-token secret and the API token are lists, the new one first, every one accepted.

use std::net::SocketAddr;

use common::secrets::Secrets;
use serde_json::json;

use crate::support::{Stack, close_code, connect_to, frames_until, next_frame, send_json};

/// One more ingress on the stack's NATS server whose `THREAD_TOKEN_SECRET` is `secrets`, as
/// an instance restarted with a new setting would be.
async fn ingress_with(stack: &Stack, secrets: &str) -> SocketAddr {
    let args = ingress::IngressArgs {
        thread_token_secret: Secrets::parse(secrets).unwrap(),
        ..stack.args.ingress.clone()
    };
    ingress::startup::build(
        "127.0.0.1:0".parse().unwrap(),
        &stack.args.nats,
        args,
        stack.shutdown.clone(),
    )
    .await
    .expect("the ingress starts")
    .addr()
    .expect("bound")
}

fn resume(thread: &str, token: &str) -> String {
    format!("?thread_id={thread}&token={token}&after_seq=0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_thread_token_secret_keeps_customers_in_their_conversation_and_hands_them_a_new_token()
 {
    // The stack signs with "test-secret": a customer starts a conversation under it.
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let thread = session["thread_id"].as_str().unwrap().to_owned();
    let old_token = session["token"].as_str().unwrap().to_owned();
    send_json(
        &mut socket,
        json!({"type": "message", "content": "hello before the rotation", "client_msg_id": "r1"}),
    )
    .await;
    frames_until(&mut socket, |f| f["type"] == "ack").await;
    drop(socket);

    // Rotated: the new secret first, the old one still accepted. The old token resumes the
    // conversation (its history comes back) and the session frame carries a new token.
    let rotated = ingress_with(&stack, "rotated-secret,test-secret").await;
    let mut resumed = connect_to(rotated, &resume(&thread, &old_token)).await;
    let session = next_frame(&mut resumed).await;
    assert_eq!(session["type"], "session", "{session}");
    assert_eq!(session["thread_id"], thread.as_str());
    let new_token = session["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, old_token, "the token was not signed anew");
    let history = frames_until(&mut resumed, |f| {
        f["type"] == "event" && f["event"]["kind"] == "message.received"
    })
    .await;
    assert_eq!(
        history.last().unwrap()["event"]["content"],
        "hello before the rotation"
    );
    drop(resumed);

    // The old secret retired: the new token still works, the old one is refused.
    let retired = ingress_with(&stack, "rotated-secret").await;
    let mut resumed = connect_to(retired, &resume(&thread, &new_token)).await;
    let session = next_frame(&mut resumed).await;
    assert_eq!(session["type"], "session", "{session}");
    assert_eq!(session["token"], new_token.as_str());
    drop(resumed);
    let mut refused = connect_to(retired, &resume(&thread, &old_token)).await;
    let frame = next_frame(&mut refused).await;
    assert_eq!(frame["code"], "unauthorized", "{frame}");
    assert_eq!(close_code(&mut refused).await, 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_token_of_the_list_opens_the_api_and_no_other_does() {
    let stack = Stack::start_with(|args| {
        args.api.api_token = Some(Secrets::parse("new-api-token,old-api-token").unwrap());
    })
    .await;
    let status = |token: &'static str| {
        let request = stack
            .http
            .get(format!("http://{}/api/conversations", stack.addr))
            .bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("new-api-token").await, 200);
    assert_eq!(status("old-api-token").await, 200);
    assert_eq!(status("new-api-token,old-api-token").await, 401);
    assert_eq!(status("another-token").await, 401);
}
