//! Which threads have operator events (`workers::desk::OperatorThreads`), so that the turns
//! of every other thread start without reading the stream: known from the stream when the
//! worker starts, then from the live events.

use common::events::ThreadId;
use common::subjects;
use futures::StreamExt;
use testkit::NatsServer;
use workers::desk::OperatorThreads;

use crate::fixture::chat_stream;

#[tokio::test]
async fn a_thread_with_an_operator_event_is_known_from_the_stream_and_from_then_on_live() {
    let nats = NatsServer::start();
    let (_api, api, _) = chat_stream(&nats, "api").await;
    let (worker, _, stream) = chat_stream(&nats, "worker").await;
    let store = |subject: String| {
        let api = api.clone();
        async move {
            api.publish(subject, "{}".into())
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };

    // Taken over before the worker started.
    let before = ThreadId::generate();
    store(subjects::operator_event(&before)).await;
    let known = OperatorThreads::start(worker.clone(), stream)
        .await
        .unwrap();
    assert!(
        known.may_have(before.as_str()),
        "an operator event stored before the start"
    );

    // Taken over while it runs: a customer message stored after the take-over reaches the
    // worker's connection after the take-over itself (the worker decides once it has it).
    let later = ThreadId::generate();
    assert!(!known.may_have(later.as_str()), "no operator event yet");
    let mut delivered = worker
        .subscribe(subjects::user_message(&later))
        .await
        .unwrap();
    worker.flush().await.unwrap();
    store(subjects::operator_event(&later)).await;
    store(subjects::user_message(&later)).await;
    delivered.next().await.unwrap();
    assert!(known.may_have(later.as_str()), "the take-over came live");
    assert!(
        !known.may_have(ThreadId::generate().as_str()),
        "a thread nobody took over"
    );
}
