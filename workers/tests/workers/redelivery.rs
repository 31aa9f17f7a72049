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
use workers::consumer::{Outcome, RetryPolicy, Worker, step};

use crate::fixture::{chat_stream, delivery, status_worker, store, turn_events};

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

/// An operator takes `thread` over.
fn take_over(thread: &ThreadId) -> Envelope {
    use common::events::{ConversationAssigned, OperatorRef, Payload, TurnId};
    Envelope::new(
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
    )
}

/// The kinds of the ending events of `turn` among `events`.
fn endings(events: &[Envelope], turn: &Envelope) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| e.turn_id == turn.turn_id && e.payload.is_terminal())
        .map(|e| e.payload.kind())
        .collect()
}

/// The thread's next message, "and now?", stored naming the message at `previous` as the
/// one before it: the message, its JSON, its headers and its sequence.
async fn store_next(
    js: &async_nats::jetstream::Context,
    thread: &ThreadId,
    previous: u64,
) -> (Envelope, Vec<u8>, HeaderMap, u64) {
    let next = Envelope::user_message(thread, "and now?");
    let json = next.to_json();
    let mut headers = HeaderMap::new();
    headers.insert(
        common::subjects::PREVIOUS_SEQ_HEADER,
        previous.to_string().as_str(),
    );
    let seq = store(js, &next, headers.clone()).await;
    (next, json, headers, seq)
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
    /// What both run with, for a third worker.
    pub(crate) agents: workers::turn::Agents,
    pub(crate) policy: RetryPolicy,
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
        second: Worker::new(js.clone(), stream.clone(), agents.clone(), policy),
        agents,
        policy,
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
        ..
    } = two_workers().await;
    let thread = ThreadId::generate();

    // The first worker answers the thread's first message, and remembers that turn.
    let earlier = Envelope::user_message(&thread, "how are things?");
    let earlier_json = earlier.to_json();
    let earlier_seq = store(&js, &earlier, HeaderMap::new()).await;
    let outcome = step(&first, delivery(earlier_seq, 1, &earlier_json, None)).await;
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // The next message names it as its previous one; the second worker answers it (the
    // first worker's delivery of it timed out, say), and its ack to JetStream is lost.
    let (next, next_json, headers, next_seq) = store_next(&js, &thread, earlier_seq).await;
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

/// A message and the thread's next one answered, then a person takes the conversation
/// over; then the message is delivered once more, `late` (its delivery count), to the
/// worker `late_to` (0: the one that answered the message first, 1: the other). It was
/// answered, so that delivery stores nothing: no second ending (a `turn.held`, which,
/// unlike a redone `turn.completed`, is no duplicate JetStream drops), and nothing that
/// could block the thread.
async fn answered_taken_over_then_delivered_late(answered_by: usize, late_to: usize, late: u32) {
    let Two {
        _nats,
        _dir,
        js,
        stream,
        first,
        second,
        ..
    } = two_workers().await;
    let workers = [&first, &second];
    let thread = ThreadId::generate();

    let message = Envelope::user_message(&thread, "how are things?");
    let message_json = message.to_json();
    let message_seq = store(&js, &message, HeaderMap::new()).await;
    let outcome = step(
        workers[answered_by],
        delivery(message_seq, 1 + answered_by as u32, &message_json, None),
    )
    .await;
    assert_eq!(outcome, Outcome::Done, "answered; the ack never leaves");

    let (_next, next_json, headers, next_seq) = store_next(&js, &thread, message_seq).await;
    let outcome = step(&second, delivery(next_seq, 1, &next_json, Some(&headers))).await;
    assert_eq!(outcome, Outcome::Done);
    store(&js, &take_over(&thread), HeaderMap::new()).await;
    let before = turn_events(&stream, &thread).await.len();

    let outcome = step(
        workers[late_to],
        delivery(message_seq, late, &message_json, None),
    )
    .await;
    assert_eq!(outcome, Outcome::Done);
    let events = turn_events(&stream, &thread).await;
    assert_eq!(events.len(), before, "{events:?}");
    assert_eq!(endings(&events, &message), ["agent.replied"], "{events:?}");
}

/// A worker froze after storing a message's `turn.completed`, before its ack; the thread's
/// next message was answered meanwhile, and then a person took the conversation over. The
/// message comes back to the other worker after the ack wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_answered_before_later_turns_and_a_take_over_is_not_ended_twice() {
    answered_taken_over_then_delivered_late(0, 1, 2).await;
}

/// A worker froze with a message's first delivery in hand, before it read the thread. The
/// message came back to another worker and was answered, the thread's next message too, and
/// then a person took the conversation over. When the frozen worker runs again it reads the
/// thread as it is now: the thread went past its message, which it therefore does not close
/// a second time with `turn.held` (found by the chaos suite's frozen worker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_delivery_run_after_the_thread_went_past_it_adds_no_ending() {
    answered_taken_over_then_delivered_late(1, 0, 1).await;
}

/// A person took the conversation over after the customer's message was stored, before any
/// worker decided on it. Every delivery of the message decides from what was stored before
/// it, so each one gives it to the agents (a frozen first delivery and the redelivery store
/// the same events, which JetStream de-duplicates, never `turn.held` beside the agents'
/// turn); the next message, sent after the take-over, is held for the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_over_stored_after_a_message_holds_the_next_message_not_that_one() {
    let Two {
        _nats,
        _dir,
        js,
        stream,
        first,
        second,
        ..
    } = two_workers().await;
    let thread = ThreadId::generate();
    let message = Envelope::user_message(&thread, "how are things?");
    let message_json = message.to_json();
    let message_seq = store(&js, &message, HeaderMap::new()).await;
    store(&js, &take_over(&thread), HeaderMap::new()).await;

    // The redelivery (the first delivery's worker froze) and then the first delivery.
    let outcome = step(&second, delivery(message_seq, 2, &message_json, None)).await;
    assert_eq!(outcome, Outcome::Done);
    let outcome = step(&first, delivery(message_seq, 1, &message_json, None)).await;
    assert_eq!(outcome, Outcome::Done);
    let events = turn_events(&stream, &thread).await;
    assert_eq!(endings(&events, &message), ["agent.replied"], "{events:?}");

    let (next, next_json, headers, next_seq) = store_next(&js, &thread, message_seq).await;
    let outcome = step(&first, delivery(next_seq, 1, &next_json, Some(&headers))).await;
    assert_eq!(outcome, Outcome::Done);
    let events = turn_events(&stream, &thread).await;
    let held: Vec<_> = events
        .iter()
        .filter(|e| e.turn_id == next.turn_id)
        .collect();
    assert_eq!(held.len(), 1, "{events:?}");
    assert_eq!(endings(&events, &next), ["turn.held"], "{events:?}");
}

/// The other way round: a person held the conversation when the customer wrote, and
/// released it before a worker reached the message. The message is held (the take-over
/// before it decides, read behind the release), on every delivery alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_stored_after_a_message_leaves_that_message_held() {
    use common::events::{ConversationReleased, OperatorRef, Payload, TurnId};
    let Two {
        _nats,
        _dir,
        js,
        stream,
        first,
        ..
    } = two_workers().await;
    let thread = ThreadId::generate();
    store(&js, &take_over(&thread), HeaderMap::new()).await;
    let message = Envelope::user_message(&thread, "hello?");
    let message_json = message.to_json();
    let message_seq = store(&js, &message, HeaderMap::new()).await;
    let release = Envelope::new(
        uuid::Uuid::new_v4(),
        thread.clone(),
        TurnId::from_uuid(uuid::Uuid::new_v4()),
        time::OffsetDateTime::now_utc(),
        Payload::ConversationReleased(ConversationReleased {
            operator: OperatorRef {
                operator_id: uuid::Uuid::new_v4(),
                name: "Anna".into(),
            },
        }),
    );
    store(&js, &release, HeaderMap::new()).await;

    let outcome = step(&first, delivery(message_seq, 2, &message_json, None)).await;
    assert_eq!(outcome, Outcome::Done);
    let events = turn_events(&stream, &thread).await;
    assert_eq!(endings(&events, &message), ["turn.held"], "{events:?}");
}

/// An engine that answers like `inner`, but only once `gate` lets it: a worker whose
/// process is frozen after it decided to answer, before its turn's events left.
struct Frozen {
    inner: Arc<dyn workers::agents::Engine>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl workers::agents::Engine for Frozen {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn choose_agent<'a>(
        &'a self,
        agents: &'a [workers::agents::AgentCard],
        message: &'a str,
    ) -> workers::agents::BoxFuture<'a, Result<Option<String>, workers::agents::EngineError>> {
        self.inner.choose_agent(agents, message)
    }

    fn next_step<'a>(
        &'a self,
        turn: workers::agents::TurnView<'a>,
    ) -> workers::agents::BoxFuture<'a, Result<workers::agents::Step, workers::agents::EngineError>>
    {
        Box::pin(async move {
            let _thawed = self.gate.acquire().await.expect("the gate stays open");
            self.inner.next_step(turn).await
        })
    }
}

/// A worker started a message's turn (`turn.started` is stored) and froze inside the engine.
/// The message came back after the ack wait to another worker while a person was taking the
/// conversation over: the turn had started, so it finishes as it began, and when the frozen
/// worker runs again its events are the same steps under the same ids, which JetStream drops
/// as duplicates: one reply and one ending (chaos suite, `a_worker_frozen_beyond_the_ack_wait`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_frozen_mid_turn_adds_no_second_reply_or_ending() {
    let Two {
        _nats,
        _dir,
        js,
        stream,
        second: other,
        agents,
        policy,
        ..
    } = two_workers().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let frozen_agents = workers::turn::Agents {
        engine: Arc::new(Frozen {
            inner: agents.engine.clone(),
            gate: gate.clone(),
        }),
        ..agents.clone()
    };
    let frozen = Arc::new(Worker::new(
        js.clone(),
        stream.clone(),
        frozen_agents,
        policy,
    ));
    let thread = ThreadId::generate();
    let message = Envelope::user_message(&thread, "how are things?");
    let message_json: Arc<[u8]> = message.to_json().into();
    let seq = store(&js, &message, HeaderMap::new()).await;
    // The first delivery: decided (the agents answer), then frozen inside the engine.
    let first = {
        let (frozen, payload) = (frozen.clone(), message_json.clone());
        tokio::spawn(async move { step(&frozen, delivery(seq, 1, &payload, None)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!first.is_finished());

    // A person takes the conversation over; the message comes back to the other worker,
    // which finishes the turn the frozen one started.
    store(&js, &take_over(&thread), HeaderMap::new()).await;
    assert_eq!(
        step(&other, delivery(seq, 2, &message_json, None)).await,
        Outcome::Done
    );
    let answered = turn_events(&stream, &thread).await;

    // The frozen worker runs again: nothing of its turn is stored a second time.
    gate.add_permits(100);
    let outcome = first.await.unwrap();
    assert!(
        !matches!(outcome, Outcome::DeadLetter { .. }),
        "{outcome:?}"
    );
    let events = turn_events(&stream, &thread).await;
    assert_eq!(events.len(), answered.len(), "{events:?}");
    let count = |kind: &str| events.iter().filter(|e| e.payload.kind() == kind).count();
    let endings = events.iter().filter(|e| e.payload.is_terminal()).count();
    assert_eq!((count("agent.replied"), endings), (1, 1), "{events:?}");
    assert!(events.last().unwrap().payload.is_terminal(), "{events:?}");

    // A later delivery finds the message ended and stores nothing.
    assert_eq!(
        step(&frozen, delivery(seq, 3, &message_json, None)).await,
        Outcome::Done
    );
    assert_eq!(turn_events(&stream, &thread).await.len(), events.len());
}
