//! A replaced stream is noticed, never silently skipped (issue 21 item 6): the `CHAT` stream
//! deleted and created again under a running stack (what deleting the NATS store and
//! starting again does) stops the projector, `/api/health` answers 503 `stream_replaced`
//! with its remedy, and `smart-support rebuild` brings the read models back from the new
//! stream, after which the projector goes on by itself.

use std::time::Duration;

use cli::rebuild::{RebuildArgs, ReplayArgs, VerifyArgs};
use projections::projector::rebuild::Reader;
use serde_json::{Value, json};

use crate::support::{Stack, completes, frames_until, next_frame, send_json};

fn replay() -> ReplayArgs {
    ReplayArgs {
        batch: 7,
        reader: Reader::Pull,
        quiet: true,
    }
}

/// Sends one message in a new conversation; returns its thread once the message is acked
/// (the turn is answered later, by the workers).
async fn send(stack: &Stack, content: &str) -> String {
    let (mut socket, thread) = stack.open_thread().await;
    send_json(&mut socket, json!({"type": "message", "content": content})).await;
    frames_until(&mut socket, |f| f["type"] == "ack").await;
    thread
}

/// The conversations' thread ids once `done` holds for the list.
async fn threads_when(stack: &Stack, done: impl Fn(&[Value]) -> bool) -> Vec<String> {
    let list = stack
        .get_until("/api/conversations?limit=100", |body| {
            body["items"].as_array().is_some_and(|items| done(items))
        })
        .await;
    let mut threads: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["thread_id"].as_str().unwrap().to_owned())
        .collect();
    threads.sort();
    threads
}

/// Every conversation of `items` has each of its messages' turns projected.
fn answered(items: &[Value]) -> bool {
    items.iter().all(|c| {
        c["message_count"].as_u64().is_some_and(|m| m >= 1) && c["turn_count"] == c["message_count"]
    })
}

/// `GET /api/health` until `done` holds for its status and body.
async fn health_until(stack: &Stack, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = stack.get("/api/health").await;
        if done(status, &body) {
            return (status, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never got there; last answer {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long the new stream gets before the checks.
#[derive(Clone, Copy, PartialEq)]
enum NewStream {
    /// Longer than the old checkpoint: only the stream's identity tells them apart.
    Longer,
    /// Shorter than the old checkpoint (the demo's case: checkpoint 1949, stream 1747).
    Shorter,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_stream_stops_the_projector_health_says_so_and_a_rebuild_brings_the_new_messages()
 {
    replaced(NewStream::Longer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_beyond_a_new_shorter_stream_is_noticed_and_a_rebuild_brings_the_new_messages()
{
    replaced(NewStream::Shorter).await;
}

async fn replaced(new_stream: NewStream) {
    let stack = Stack::start().await;
    // The old stream: one conversation, or three so that its checkpoint is well beyond
    // what one message makes on the new stream.
    let before = if new_stream == NewStream::Shorter {
        3
    } else {
        1
    };
    for n in 0..before {
        let mut socket = stack.connect("").await;
        next_frame(&mut socket).await;
        send_json(
            &mut socket,
            json!({"type": "message", "content": format!("Where is my order? ({n})")}),
        )
        .await;
        frames_until(&mut socket, completes).await;
    }
    let old = threads_when(&stack, |items| items.len() == before && answered(items)).await;
    let (status, healthy) = health_until(&stack, |_, body| body["projection"]["lag"] == 0).await;
    assert_eq!(status, 200, "{healthy}");
    assert_eq!(healthy["status"], "ok");
    assert!(healthy.get("reason").is_none(), "{healthy}");
    let old_checkpoint = healthy["projection"]["checkpoint"].as_u64().unwrap();

    // The stream replaced: deleted and created again as a service starting on an empty
    // store would (with the workers' consumer, which went with it).
    let js = async_nats::jetstream::new(stack.nats_client().await);
    js.delete_stream(common::subjects::CHAT_STREAM)
        .await
        .unwrap();
    let stream = common::jetstream::ensure_chat_stream(&js, &stack.args.nats)
        .await
        .unwrap();
    common::jetstream::ensure_workers_consumer(&stream, stack.args.worker.worker_ack_wait)
        .await
        .unwrap();

    // New conversations on the new stream, until it is longer than the old checkpoint: the
    // sequences alone no longer tell the streams apart, the stream's identity does.
    let mut new = Vec::new();
    for n in 0.. {
        new.push(send(&stack, &format!("Hello number {n}")).await);
        let mut info = stream.clone();
        if new_stream == NewStream::Shorter
            || n >= 1 && info.info().await.unwrap().state.last_sequence > old_checkpoint
        {
            break;
        }
    }
    let (status, body) = health_until(&stack, |status, _| status == 503).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["reason"], "stream_replaced", "{body}");
    assert_eq!(body["checks"]["nats"], "ok", "{body}");
    assert_eq!(body["checks"]["postgres"], "ok", "{body}");
    assert!(
        body["remedy"]
            .as_str()
            .is_some_and(|r| r.contains("smart-support rebuild")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("another CHAT stream")),
        "{body}"
    );
    if new_stream == NewStream::Shorter {
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("checkpoint {old_checkpoint} is beyond"))),
            "{body}"
        );
    }
    stack
        .metric_until("smart_support_projection_stream_replaced", 1.0)
        .await;
    // Nothing of the new stream was applied against the old checkpoint.
    let (_, list) = stack.get("/api/conversations?limit=100").await;
    assert_eq!(list["items"].as_array().unwrap().len(), before, "{list}");
    // verify has nothing to compare, and says why.
    let verify = cli::rebuild::verify(&VerifyArgs {
        limit: 5,
        replay: replay(),
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
    })
    .await
    .expect_err("verify refuses tables of another stream");
    assert!(
        format!("{verify:#}").contains("stream_replaced"),
        "{verify:#}"
    );

    cli::rebuild::rebuild(&RebuildArgs {
        dry_run: false,
        replay: replay(),
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
    })
    .await
    .expect("the rebuild succeeds");

    let (_, body) = health_until(&stack, |status, body| {
        status == 200 && body["projection"]["lag"] == 0
    })
    .await;
    assert_eq!(body["status"], "ok", "{body}");
    assert!(body.get("reason").is_none(), "{body}");
    stack
        .metric_until("smart_support_projection_stream_replaced", 0.0)
        .await;
    new.sort();
    let rebuilt = threads_when(&stack, |items| items.len() == new.len() && answered(items)).await;
    assert_eq!(
        rebuilt, new,
        "the read models hold the new stream's conversations"
    );
    assert!(old.iter().all(|thread| !rebuilt.contains(thread)));

    // And the projector goes on by itself.
    let later = send(&stack, "One more question").await;
    let threads = threads_when(&stack, |items| {
        items.len() == new.len() + 1 && answered(items)
    })
    .await;
    assert!(threads.contains(&later), "{threads:?}");
}
