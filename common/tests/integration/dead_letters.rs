//! Dead letters in a real JetStream: listed with filters and pages, shown, discarded,
//! and redriven into the thread's chain of user messages.

use std::time::Duration;

use async_nats::jetstream::{Context, stream::Stream};
use common::config::NatsArgs;
use common::dead_letters::{self, DeadLetterError, Failure, Filter, Source};
use common::events::{Envelope, ErrorCategory, Payload, ThreadId};
use common::subjects;
use testkit::NatsServer;
use time::OffsetDateTime;
use uuid::Uuid;

struct Nats {
    js: Context,
    chat: Stream,
    _server: NatsServer,
}

async fn nats() -> Nats {
    let server = NatsServer::start();
    let args = NatsArgs {
        nats_url: server.url(),
        stream_replicas: 1,
        duplicate_window: Duration::from_secs(600),
        client_name: "test".into(),
        nats_user: Some("admin".into()),
        nats_password: Some(testkit::nats_password("admin")),
        nats_tls_ca: None,
    };
    let (_, js) = common::jetstream::connect(&args).await.unwrap();
    let chat = common::jetstream::setup(&js, &args).await.unwrap();
    dead_letters::ensure_stream(&js, &args).await.unwrap();
    Nats {
        js,
        chat,
        _server: server,
    }
}

fn message(thread: &ThreadId, content: &str) -> Envelope {
    Envelope::user_message(thread, content)
}

/// Stores a payload on a thread's user subject and returns its sequence.
async fn store(js: &Context, subject: &str, payload: Vec<u8>) -> u64 {
    js.publish(subject.to_owned(), payload.into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

/// Stores a payload in the chat stream and dead-letters it; returns the dead letter's id.
async fn dead_letter(
    js: &Context,
    thread: &str,
    payload: Vec<u8>,
    category: ErrorCategory,
) -> (u64, u64) {
    let subject = format!("chat.{thread}.user");
    let seq = store(js, &subject, payload.clone()).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("traceparent", "00-abc-def-01");
    let source = Source {
        subject: &subject,
        seq,
        payload: &payload,
        headers: Some(&headers),
    };
    let failure = Failure {
        category,
        error: format!("failed as {}", category.as_str()),
        attempts: 5,
    };
    let id = dead_letters::publish(js, source, &failure).await.unwrap();
    (id, seq)
}

fn ids(letters: &[dead_letters::DeadLetter]) -> Vec<u64> {
    letters.iter().map(|l| l.id).collect()
}

#[tokio::test]
async fn list_filters_by_category_and_time_and_pages_oldest_first() {
    let nats = nats().await;
    let thread = ThreadId::generate();
    let json = |text: &str| message(&thread, text).to_json();
    let (first, _) = dead_letter(
        &nats.js,
        thread.as_str(),
        json("a"),
        ErrorCategory::Retryable,
    )
    .await;
    let first_at = dead_letters::get(&nats.js, first).await.unwrap().failed_at;
    // Every later dead letter fails strictly after this instant.
    let mut mid = OffsetDateTime::now_utc();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while mid <= first_at {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock does not move"
        );
        mid = OffsetDateTime::now_utc();
    }
    let (second, _) = dead_letter(
        &nats.js,
        thread.as_str(),
        b"\xffpoison".to_vec(),
        ErrorCategory::Fatal,
    )
    .await;
    let (third, _) = dead_letter(&nats.js, "other", json("c"), ErrorCategory::Retryable).await;

    let all = dead_letters::list(&nats.js, &Filter::default(), None, 50)
        .await
        .unwrap();
    assert_eq!(ids(&all.items), [first, second, third]);
    assert_eq!(all.next_cursor, None);

    let retryable = Filter {
        category: Some(ErrorCategory::Retryable),
        ..Filter::default()
    };
    let page = dead_letters::list(&nats.js, &retryable, None, 50)
        .await
        .unwrap();
    assert_eq!(ids(&page.items), [first, third]);

    let since = Filter {
        since: Some(mid),
        ..Filter::default()
    };
    let page = dead_letters::list(&nats.js, &since, None, 50)
        .await
        .unwrap();
    assert_eq!(ids(&page.items), [second, third]);
    let until = Filter {
        until: Some(mid),
        ..Filter::default()
    };
    let page = dead_letters::list(&nats.js, &until, None, 50)
        .await
        .unwrap();
    assert_eq!(ids(&page.items), [first]);

    let of_thread = Filter {
        thread_id: Some(thread.clone()),
        ..Filter::default()
    };
    let page = dead_letters::list(&nats.js, &of_thread, None, 50)
        .await
        .unwrap();
    assert_eq!(ids(&page.items), [first, second]);

    let page_one = dead_letters::list(&nats.js, &Filter::default(), None, 2)
        .await
        .unwrap();
    assert_eq!(ids(&page_one.items), [first, second]);
    assert_eq!(page_one.next_cursor, Some(second));
    let page_two = dead_letters::list(&nats.js, &Filter::default(), page_one.next_cursor, 2)
        .await
        .unwrap();
    assert_eq!(ids(&page_two.items), [third]);
    assert_eq!(page_two.next_cursor, None);

    let matching = dead_letters::matching(&nats.js, &retryable).await.unwrap();
    assert_eq!(ids(&matching), [first, third]);
}

#[tokio::test]
async fn show_returns_the_original_with_its_headers_and_the_error() {
    let nats = nats().await;
    let thread = ThreadId::generate();
    let event = message(&thread, "where is my order?");
    let (id, seq) = dead_letter(
        &nats.js,
        thread.as_str(),
        event.to_json(),
        ErrorCategory::NotRetryable,
    )
    .await;
    let letter = dead_letters::get(&nats.js, id).await.unwrap();
    assert_eq!(letter.id, id);
    assert_eq!(letter.thread_id.as_deref(), Some(thread.as_str()));
    assert_eq!(letter.source_subject, subjects::user_message(&thread));
    assert_eq!(letter.source_seq, seq);
    assert_eq!(letter.category, ErrorCategory::NotRetryable);
    assert_eq!(letter.error, "failed as not_retryable");
    assert_eq!(letter.attempts, 5);
    assert_eq!(letter.original["content"], "where is my order?");
    assert_eq!(letter.original["kind"], "message.received");
    assert_eq!(
        letter.headers.keys().collect::<Vec<_>>(),
        ["traceparent"],
        "only the original's headers"
    );
    let json = serde_json::to_value(&letter).unwrap();
    assert_eq!(json["category"], "not_retryable");
    assert!(json["failed_at"].as_str().unwrap().ends_with('Z'));

    let (poison, _) = dead_letter(
        &nats.js,
        thread.as_str(),
        b"\xffnot json".to_vec(),
        ErrorCategory::Fatal,
    )
    .await;
    let letter = dead_letters::get(&nats.js, poison).await.unwrap();
    assert_eq!(letter.original, "\u{fffd}not json");

    assert_eq!(
        dead_letters::get(&nats.js, 999).await,
        Err(DeadLetterError::NotFound(999))
    );
}

#[tokio::test]
async fn a_discarded_dead_letter_is_gone() {
    let nats = nats().await;
    let thread = ThreadId::generate();
    let (id, _) = dead_letter(
        &nats.js,
        thread.as_str(),
        message(&thread, "x").to_json(),
        ErrorCategory::Retryable,
    )
    .await;
    dead_letters::discard(&nats.js, id).await.unwrap();
    assert_eq!(
        dead_letters::get(&nats.js, id).await,
        Err(DeadLetterError::NotFound(id))
    );
    assert_eq!(
        dead_letters::discard(&nats.js, id).await,
        Err(DeadLetterError::NotFound(id))
    );
    assert!(
        dead_letters::matching(&nats.js, &Filter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_redrive_stores_a_redriven_message_after_the_threads_last_and_removes_the_dead_letter() {
    let nats = nats().await;
    let thread = ThreadId::generate();
    let original = message(&thread, "refund please");
    let (id, source_seq) = dead_letter(
        &nats.js,
        thread.as_str(),
        original.to_json(),
        ErrorCategory::Retryable,
    )
    .await;
    // The user wrote again after the message that failed.
    let subject = subjects::user_message(&thread);
    let last = store(&nats.js, &subject, message(&thread, "hello?").to_json()).await;

    let seq = dead_letters::redrive(&nats.js, id).await.unwrap();
    assert!(seq > last);
    let stored = nats.chat.direct_get(seq).await.unwrap();
    assert_eq!(stored.subject.as_str(), subject);
    assert_eq!(
        stored
            .headers
            .get(subjects::PREVIOUS_SEQ_HEADER)
            .unwrap()
            .as_str(),
        last.to_string()
    );
    let event = Envelope::from_json(&stored.payload).unwrap();
    let name = format!("redrive-{id}");
    assert_eq!(
        event.event_id,
        Uuid::new_v5(&original.event_id, name.as_bytes())
    );
    assert_eq!(
        *event.turn_id.as_uuid(),
        Uuid::new_v5(original.turn_id.as_uuid(), name.as_bytes())
    );
    assert_eq!(
        stored.headers.get("Nats-Msg-Id").unwrap().as_str(),
        event.event_id.to_string()
    );
    assert_eq!(event.thread_id, thread);
    let Payload::MessageRedriven(redriven) = event.payload else {
        panic!("expected message.redriven, got {}", event.payload.kind());
    };
    assert_eq!(redriven.content, "refund please");
    assert_eq!(redriven.original_seq, source_seq);
    assert_eq!(redriven.dead_letter_id, id);

    assert_eq!(
        dead_letters::get(&nats.js, id).await,
        Err(DeadLetterError::NotFound(id))
    );
    assert_eq!(
        dead_letters::redrive(&nats.js, id).await,
        Err(DeadLetterError::NotFound(id))
    );
}

#[tokio::test]
async fn a_redrive_on_a_thread_without_messages_names_no_previous_one() {
    let nats = nats().await;
    let thread = ThreadId::generate();
    let original = message(&thread, "hi").to_json();
    // Dead-lettered straight from elsewhere: the thread has no user message in the stream.
    let source = Source {
        subject: "chat.elsewhere.user",
        seq: 77,
        payload: &original,
        headers: None,
    };
    let failure = Failure {
        category: ErrorCategory::Retryable,
        error: "engine down".into(),
        attempts: 5,
    };
    let id = dead_letters::publish(&nats.js, source, &failure)
        .await
        .unwrap();
    let seq = dead_letters::redrive(&nats.js, id).await.unwrap();
    let stored = nats.chat.direct_get(seq).await.unwrap();
    assert_eq!(stored.subject.as_str(), subjects::user_message(&thread));
    assert!(stored.headers.get(subjects::PREVIOUS_SEQ_HEADER).is_none());
}

#[tokio::test]
async fn a_poison_message_is_not_redrivable_and_stays() {
    let nats = nats().await;
    let (id, _) = dead_letter(&nats.js, "p", b"{not json".to_vec(), ErrorCategory::Fatal).await;
    let err = dead_letters::redrive(&nats.js, id).await.unwrap_err();
    assert!(matches!(err, DeadLetterError::NotRedrivable(_)), "{err}");
    assert_eq!(dead_letters::get(&nats.js, id).await.unwrap().id, id);
    let info = nats.chat.get_info().await.unwrap();
    assert_eq!(
        info.state.messages, 1,
        "nothing was published to the chat stream"
    );
}

#[tokio::test]
async fn the_same_source_message_dead_lettered_twice_is_stored_once() {
    let nats = nats().await;
    let thread = ThreadId::generate();
    let payload = message(&thread, "x").to_json();
    let subject = subjects::user_message(&thread);
    let source = Source {
        subject: &subject,
        seq: 5,
        payload: &payload,
        headers: None,
    };
    let failure = Failure {
        category: ErrorCategory::Retryable,
        error: "timeout".into(),
        attempts: 5,
    };
    let first = dead_letters::publish(&nats.js, source, &failure)
        .await
        .unwrap();
    let second = dead_letters::publish(&nats.js, source, &failure)
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(
        ids(&dead_letters::matching(&nats.js, &Filter::default())
            .await
            .unwrap()),
        [first]
    );
}

#[tokio::test]
async fn without_a_dead_letter_stream_there_is_nothing_to_list() {
    let server = NatsServer::start();
    let js = common::jetstream::connect_once(
        &common::config::NatsArgs::at(server.url())
            .as_user("admin", &testkit::nats_password("admin")),
    )
    .await
    .unwrap();
    let page = dead_letters::list(&js, &Filter::default(), None, 10)
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(
        dead_letters::get(&js, 1).await,
        Err(DeadLetterError::NotFound(1))
    );
}
