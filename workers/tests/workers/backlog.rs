//! The `workers` consumer's backlog as a worker reports it: user messages stored and not
//! yet delivered to any worker.

use std::time::Duration;

use async_nats::HeaderMap;
use axum::{Router, routing::get};
use common::events::{Envelope, ThreadId};
use common::shutdown::CancellationToken;
use testkit::NatsServer;

use crate::fixture::{chat_stream, status_worker, store};

/// The gauge's value in the process's metrics, if it is there.
fn backlog() -> Option<f64> {
    common::metrics::encode().lines().find_map(|line| {
        line.strip_prefix("smart_support_worker_backlog_messages ")?
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_gauge_shows_the_messages_no_worker_has_taken_yet() {
    let nats = NatsServer::start();
    // A tool API that never answers: the worker's one message in hand stays in its turn.
    let app = Router::new().route("/status", get(std::future::pending::<&'static str>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let args = status_worker(dir.path(), api, &["--tools-timeout", "10m"]);
    let agents = workers::startup::load_agents(&args).unwrap();
    let (_client, js, stream) = chat_stream(&nats, "backlog-test").await;
    const MESSAGES: usize = 6;
    for _ in 0..MESSAGES {
        let message = Envelope::user_message(&ThreadId::generate(), "status?");
        store(&js, &message, HeaderMap::new()).await;
    }

    let (consumer, worker) = workers::startup::consumer_and_state(js, stream, agents, &args)
        .await
        .unwrap();
    let mut info = consumer.clone();
    let shutdown = CancellationToken::new();
    // One message in hand at a time: it hangs in its tool call, the others wait.
    tokio::spawn(workers::consumer::run(
        consumer,
        worker,
        1,
        shutdown.clone(),
    ));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (shown, pending) = loop {
        let pending = info.info().await.unwrap().num_pending;
        let shown = backlog();
        if pending < MESSAGES as u64 && shown == Some(pending as f64) {
            break (shown, pending);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gauge shows {shown:?}, the consumer has {pending} pending"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The worker took at most the one it holds and one the pull fetched ahead.
    assert!(
        pending >= MESSAGES as u64 - 2,
        "{pending} pending, {shown:?} shown"
    );
    shutdown.cancel();
}
