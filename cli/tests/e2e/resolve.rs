//! An operator resolves a conversation over REST: the resolve is an event on the log, and
//! `min_seq` lets the next read see it without polling.

use serde_json::{Value, json};

use crate::support::{Stack, completes, frames_until, is_event, send_json};

/// POSTs `body` (none: an empty body) to `path`: the status and the JSON answer.
async fn post(stack: &Stack, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = stack.http.post(format!("http://{}{path}", stack.addr));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_conversation_reads_resolved_at_the_seq_the_resolve_answered() {
    let stack = Stack::start().await;
    let (mut socket, thread_id) = stack.open_thread().await;
    send_json(
        &mut socket,
        json!({"type": "message", "content": "Where is my order?"}),
    )
    .await;
    // Resolve after the turn is over: a reply would open the conversation again.
    let frames = frames_until(&mut socket, completes).await;
    let completed_seq = frames.last().unwrap()["seq"].as_u64().unwrap();

    let path = format!("/api/conversations/{thread_id}");
    let (status, before) = stack.get(&format!("{path}?min_seq={completed_seq}")).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["status"], "open");
    assert!(before["resolved_at"].is_null());

    let (status, resolved) = post(
        &stack,
        &format!("{path}/resolve"),
        Some(json!({"note": "tracking number sent"})),
    )
    .await;
    assert_eq!(status, 202, "{resolved}");
    assert_eq!(resolved["thread_id"], thread_id.as_str());
    let seq = resolved["seq"].as_u64().expect("a stream sequence");
    assert!(seq > completed_seq);

    // No polling: min_seq waits for the projector.
    let (status, after) = stack.get(&format!("{path}?min_seq={seq}")).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["status"], "resolved");
    assert!(after["resolved_at"].is_string(), "{after}");
    assert_eq!(after["turns"].as_array().map(Vec::len), Some(1), "{after}");

    let (_, replay) = stack.get(&format!("{path}/replay?min_seq={seq}")).await;
    let last = replay["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "conversation.resolved");
    assert_eq!(last["seq"].as_u64(), Some(seq));
    assert_eq!(last["resolved_by"], "operator");
    assert_eq!(last["note"], "tracking number sent");

    // Like every event of the thread, the client sees it on its socket.
    let frames = frames_until(&mut socket, |f| is_event(f, "conversation.resolved")).await;
    assert_eq!(frames.last().unwrap()["seq"].as_u64(), Some(seq));

    let (_, report) = stack
        .get(&format!("/api/analytics?range=24h&min_seq={seq}"))
        .await;
    assert_eq!(report["totals"]["resolutions"], 1, "{report}");
    assert_eq!(report["totals"]["resolution_rate"], 1.0, "{report}");

    // Once the row says resolved, a second resolve is refused; nothing is published.
    let (status, again) = post(&stack, &format!("{path}/resolve"), None).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "already_resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_a_conversation_that_does_not_exist_is_not_found() {
    let stack = Stack::start().await;
    let (status, body) = post(&stack, "/api/conversations/no-such-thread/resolve", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "conversation_not_found");
    let (status, body) = post(&stack, "/api/conversations/a.b/resolve", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_thread_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_past_the_end_of_the_stream_is_refused_at_once_not_after_projection_wait() {
    let stack = Stack::start_with(|args| {
        args.api.projection_wait = std::time::Duration::from_secs(30);
    })
    .await;
    let started = std::time::Instant::now();
    let (status, body) = stack.get("/api/conversations?min_seq=1000000").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_min_seq");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
