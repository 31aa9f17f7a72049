//! A model server that is down: after the retries, and while the circuit breaker is open,
//! the turn hands the customer to a person (`conversation.escalated` with reason
//! `model_unavailable`) instead of leaving them waiting or dead-lettering the message.

use std::time::Duration;

use async_nats::HeaderMap;
use common::events::{Envelope, ThreadId, TurnOutcome};
use testkit::{FakeLlm, NatsServer};
use workers::consumer::{Outcome, RetryPolicy, Worker, step};

use crate::fixture::{chat_stream, status_worker, store, turn_events, unordered};

struct Down {
    _nats: NatsServer,
    _dir: tempfile::TempDir,
    llm: FakeLlm,
    js: async_nats::jetstream::Context,
    stream: async_nats::jetstream::stream::Stream,
    worker: Worker,
}

/// A worker with the model engine on a fake that answers 503 to everything.
async fn down(breaker_failures: &str) -> Down {
    let nats = NatsServer::start();
    let llm = FakeLlm::start().await;
    llm.set_default_status(503);
    let dir = tempfile::tempdir().unwrap();
    let args = status_worker(
        dir.path(),
        "127.0.0.1:9".parse().unwrap(),
        &[
            "--engine",
            "openai",
            "--openai-base-url",
            &llm.url(),
            "--openai-breaker-failures",
            breaker_failures,
            "--openai-breaker-cool-down",
            "10m",
        ],
    );
    let agents = workers::startup::load_agents(&args).unwrap();
    let (_client, js, stream) = chat_stream(&nats, "model-down-test").await;
    let policy = RetryPolicy {
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        max_deliveries: 3,
        ack_wait: Duration::from_secs(30),
        order_wait: Duration::from_secs(30),
    };
    Down {
        worker: Worker::new(js.clone(), stream.clone(), agents, policy),
        _nats: nats,
        _dir: dir,
        llm,
        js,
        stream,
    }
}

async fn message(down: &Down, thread: &ThreadId) -> (Vec<u8>, u64) {
    let event = Envelope::user_message(thread, "is anyone there?");
    let seq = store(&down.js, &event, HeaderMap::new()).await;
    (event.to_json(), seq)
}

/// The turn was handed to a person because of the model server.
fn assert_handed_over(events: &[Envelope]) {
    let kinds: Vec<_> = events.iter().map(|e| e.payload.kind()).collect();
    assert_eq!(kinds, ["turn.started", "agent.replied"]);
    let (reason, _, _) = events[1].payload.escalation().expect("an escalation");
    assert_eq!(serde_json::to_value(reason).unwrap(), "model_unavailable");
    let done = events[1]
        .payload
        .completion()
        .expect("the reply ends the turn");
    assert_eq!(done.outcome, TurnOutcome::Escalated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_server_still_down_on_the_last_delivery_hands_the_customer_to_a_person() {
    let down = down("0").await;
    let thread = ThreadId::generate();
    let (payload, seq) = message(&down, &thread).await;
    for delivered in 1..3 {
        assert!(
            matches!(
                step(&down.worker, unordered(seq, delivered, &payload)).await,
                Outcome::Retry { .. }
            ),
            "delivery {delivered} is retried"
        );
    }
    assert!(
        !turn_events(&down.stream, &thread)
            .await
            .iter()
            .any(|e| e.payload.is_terminal()),
        "no ending before the last delivery"
    );
    assert_eq!(
        step(&down.worker, unordered(seq, 3, &payload)).await,
        Outcome::Done,
        "the last delivery ends the turn: no dead letter"
    );
    assert_handed_over(&turn_events(&down.stream, &thread).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_breaker_is_open_a_turn_goes_to_a_person_at_once_without_asking_the_model() {
    let down = down("2").await;
    let gauge = "smart_support_model_breaker_state";
    let first = ThreadId::generate();
    let (payload, seq) = message(&down, &first).await;
    for delivered in 1..3 {
        assert!(matches!(
            step(&down.worker, unordered(seq, delivered, &payload)).await,
            Outcome::Retry { .. }
        ));
    }
    assert_eq!(down.llm.requests().len(), 2);
    assert!(
        common::metrics::encode().contains(&format!("{gauge} 1")),
        "{}",
        common::metrics::encode()
    );

    // Another conversation, first delivery: answered at once by a person's hand-over.
    let second = ThreadId::generate();
    let (payload, seq) = message(&down, &second).await;
    assert_eq!(
        step(&down.worker, unordered(seq, 1, &payload)).await,
        Outcome::Done
    );
    assert_handed_over(&turn_events(&down.stream, &second).await);
    assert_eq!(down.llm.requests().len(), 2, "no request while open");
}
