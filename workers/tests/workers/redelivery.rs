//! Two workers and one thread: a message that comes back to the worker that ended the
//! thread's previous turn, after another worker already answered it, is not answered again.
//!
//! The worker remembers the turns it ended and skips reading the thread back when the next
//! message names such a turn as its previous one — but only on that message's first
//! delivery (`Ended` in `workers/src/consumer/order.rs`). A later delivery may have been preceded
//! by another worker's, whose events are on the stream and not in this worker's memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use axum::{Json, Router, routing::get};
use common::events::{Envelope, ThreadId};
use serde_json::json;
use testkit::NatsServer;
use workers::consumer::{Delivery, Outcome, RetryPolicy, Worker, step};

use crate::fixture::{chat_stream, status_worker, store, turn_events};

/// An API whose `GET /status` answers at once and counts the requests.
async fn counting_api() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/status",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Json(json!({"state": "fine"})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

/// Two workers of the same agents (one tool, on [`counting_api`]) on one chat stream.
pub(crate) struct Two {
    pub(crate) _nats: NatsServer,
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) hits: Arc<AtomicUsize>,
    pub(crate) js: async_nats::jetstream::Context,
    pub(crate) stream: async_nats::jetstream::stream::Stream,
    pub(crate) first: Worker,
    pub(crate) second: Worker,
}

pub(crate) async fn two_workers() -> Two {
    let nats = NatsServer::start();
    let (api, hits) = counting_api().await;
    let dir = tempfile::tempdir().unwrap();
    let args = status_worker(dir.path(), api, &[]);
    let agents = workers::startup::load_agents(&args).unwrap();
    let (_client, js, stream) = chat_stream(&nats, "redelivery-test").await;
    let policy = RetryPolicy {
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        max_deliveries: 5,
        ack_wait: Duration::from_secs(30),
        order_wait: Duration::from_secs(30),
    };
    Two {
        first: Worker::new(js.clone(), stream.clone(), agents.clone(), policy),
        second: Worker::new(js.clone(), stream.clone(), agents, policy),
        _nats: nats,
        _dir: dir,
        hits,
        js,
        stream,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_answered_elsewhere_is_not_answered_again_by_the_worker_that_ended_the_turn_before()
 {
    let Two {
        _nats,
        _dir,
        hits,
        js,
        stream,
        first,
        second,
    } = two_workers().await;
    let thread = ThreadId::generate();

    // The first worker answers the thread's first message, and remembers that turn.
    let earlier = Envelope::user_message(&thread, "how are things?");
    let earlier_json = earlier.to_json();
    let earlier_seq = store(&js, &earlier, HeaderMap::new()).await;
    let delivery = |seq, delivered, payload, headers| Delivery {
        subject: "unused",
        seq,
        delivered,
        payload,
        headers,
        ignore_order: false,
    };
    let outcome = step(&first, delivery(earlier_seq, 1, &earlier_json, None)).await;
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // The next message names it as its previous one; the second worker answers it (the
    // first worker's delivery of it timed out, say), and its ack to JetStream is lost.
    let next = Envelope::user_message(&thread, "and now?");
    let next_json = next.to_json();
    let mut headers = HeaderMap::new();
    headers.insert(
        common::subjects::PREVIOUS_SEQ_HEADER,
        earlier_seq.to_string().as_str(),
    );
    let next_seq = store(&js, &next, headers.clone()).await;
    let outcome = step(&second, delivery(next_seq, 1, &next_json, Some(&headers))).await;
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // JetStream delivers it again, now to the first worker: it reads the thread, finds the
    // turn ended, and neither calls the API nor answers again.
    let outcome = step(&first, delivery(next_seq, 2, &next_json, Some(&headers))).await;
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(hits.load(Ordering::SeqCst), 2, "the tool was called again");
    let events = turn_events(&stream, &thread).await;
    let replies = events
        .iter()
        .filter(|e| e.turn_id == next.turn_id && e.payload.kind() == "agent.replied")
        .count();
    assert_eq!(replies, 1, "{events:?}");
}

/// A worker froze after storing a message's `turn.completed`, before its ack; the thread's
/// next message was answered meanwhile, and then a person took the conversation over. The
/// message comes back after the ack wait: it was answered, so it gets no second ending (a
/// `turn.held`, which, unlike a redone `turn.completed`, is no duplicate JetStream drops),
/// and the thread is not blocked by a stray ending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_answered_before_later_turns_and_a_take_over_is_not_ended_twice() {
    use common::events::{ConversationAssigned, OperatorRef, Payload, TurnId};

    let Two {
        _nats,
        _dir,
        js,
        stream,
        first: frozen,
        second: other,
        ..
    } = two_workers().await;
    let thread = ThreadId::generate();
    let delivery = |seq, delivered, payload, headers| Delivery {
        subject: "unused",
        seq,
        delivered,
        payload,
        headers,
        ignore_order: false,
    };

    let first = Envelope::user_message(&thread, "how are things?");
    let first_json = first.to_json();
    let first_seq = store(&js, &first, HeaderMap::new()).await;
    let outcome = step(&frozen, delivery(first_seq, 1, &first_json, None)).await;
    assert_eq!(outcome, Outcome::Done, "answered; the ack never leaves");

    let next = Envelope::user_message(&thread, "and now?");
    let next_json = next.to_json();
    let mut headers = HeaderMap::new();
    headers.insert(
        common::subjects::PREVIOUS_SEQ_HEADER,
        first_seq.to_string().as_str(),
    );
    let next_seq = store(&js, &next, headers.clone()).await;
    let outcome = step(&other, delivery(next_seq, 1, &next_json, Some(&headers))).await;
    assert_eq!(outcome, Outcome::Done);

    let take_over = Envelope::new(
        uuid::Uuid::new_v4(),
        thread.clone(),
        TurnId::from_uuid(uuid::Uuid::new_v4()),
        time::OffsetDateTime::now_utc(),
        Payload::ConversationAssigned(ConversationAssigned {
            operator: OperatorRef {
                operator_id: uuid::Uuid::new_v4(),
                name: "Anna".into(),
            },
            assigned_by: None,
        }),
    );
    store(&js, &take_over, HeaderMap::new()).await;

    let outcome = step(&other, delivery(first_seq, 2, &first_json, None)).await;
    assert_eq!(outcome, Outcome::Done);
    let events = turn_events(&stream, &thread).await;
    let endings: Vec<_> = events
        .iter()
        .filter(|e| e.turn_id == first.turn_id && e.payload.is_terminal())
        .map(|e| e.payload.kind())
        .collect();
    assert_eq!(endings, ["turn.completed"], "{events:?}");
}
