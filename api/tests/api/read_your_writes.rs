//! `min_seq`: a read waits until the projection has applied the sequence a write answered.

use std::time::{Duration, Instant};

use common::events::{MessageReceived, ThreadId, TurnId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::server::{Server, event};

fn message(thread: &ThreadId) -> common::events::Envelope {
    let message = MessageReceived {
        content: "hello".into(),
        client_msg_id: None,
        backdated_ms: None,
    };
    let turn = TurnId::from_uuid(Uuid::new_v4());
    event(thread, turn, OffsetDateTime::now_utc(), message)
}

#[tokio::test]
async fn a_read_ahead_of_the_projection_answers_projection_behind_after_the_wait() {
    let server = Server::start(Duration::from_millis(150)).await;
    let thread = ThreadId::generate();
    let stored = [message(&thread), message(&thread), message(&thread)];
    assert_eq!(server.store(&stored).await, [1, 2, 3]);
    server.apply(1, &stored[..1]).await;
    for path in [
        "/conversations?min_seq=3".to_owned(),
        format!("/conversations/{thread}?min_seq=3"),
        format!("/conversations/{thread}/replay?min_seq=3"),
        "/analytics?range=24h&min_seq=3".to_owned(),
    ] {
        let started = Instant::now();
        let (status, body) = server.get(&path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["error"]["code"], "projection_behind", "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("sequence 1,") || message.contains("sequence 1 "),
            "{message}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{path} did not wait"
        );
    }
}

#[tokio::test]
async fn a_read_past_the_last_event_of_the_stream_is_refused_at_once() {
    // Found by schemathesis: `min_seq=9223372036854775808` waited, then answered 503,
    // and so would every retry. No `seq` the services return is past the stream's end.
    let server = Server::start(Duration::from_secs(30)).await;
    let thread = ThreadId::generate();
    let stored = [message(&thread)];
    server.store(&stored).await;
    server.apply(1, &stored).await;
    for path in [
        "/conversations?min_seq=2".to_owned(),
        format!("/conversations/{thread}?min_seq=9223372036854775808"),
        format!("/conversations/{thread}/replay?min_seq=18446744073709551615"),
        "/analytics?range=24h&min_seq=1000".to_owned(),
    ] {
        let started = Instant::now();
        let (status, body) = server.get(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_min_seq", "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("stream sequence 1"),
            "{body}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{path} waited");
    }
}

#[tokio::test]
async fn a_read_the_projection_has_reached_answers_at_once() {
    let server = Server::start(Duration::from_secs(30)).await;
    let thread = ThreadId::generate();
    let seq = server.apply(1, &[message(&thread)]).await;
    let started = Instant::now();
    let (status, body) = server
        .get(&format!("/conversations/{thread}?min_seq={seq}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_read_sent_before_the_batch_answers_once_the_batch_is_applied() {
    let server = Server::start(Duration::from_secs(10)).await;
    let thread = ThreadId::generate();
    let path = format!("/conversations/{thread}?min_seq=1");
    let batch = [message(&thread)];
    server.store(&batch).await;
    // The read is polled first, so it is usually waiting when the batch commits; without
    // min_seq it could answer 404.
    let (read, applied) = tokio::join!(server.get(&path), server.apply(1, &batch));
    assert_eq!(applied, 1);
    assert_eq!(read.0, 200, "{}", read.1);
    assert_eq!(read.1["message_count"], 1);
}

#[tokio::test]
async fn a_min_seq_that_is_not_a_whole_number_is_rejected() {
    let server = Server::start(Duration::from_secs(2)).await;
    let thread = ThreadId::generate();
    for path in [
        "/conversations?min_seq=-1".to_owned(),
        format!("/conversations/{thread}?min_seq=x"),
        format!("/conversations/{thread}/replay?min_seq=1.5"),
        "/analytics?min_seq=".to_owned(),
    ] {
        let (status, body) = server.get(&path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_min_seq")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_conversation_shows_its_turns_beside_its_summary() {
    let server = Server::start(Duration::from_secs(2)).await;
    let thread = ThreadId::generate();
    let first = message(&thread);
    let turn = first.turn_id;
    let reply = common::events::AgentReplied {
        end: None,
        escalation: None,
        text: "hi".into(),
        agent: "triage".into(),
        engine: "rules".into(),
        usage: None,
    };
    let done = common::events::TurnCompleted {
        outcome: common::events::TurnOutcome::Replied,
        latency_ms: 7,
        message_seq: 1,
        pending: None,
    };
    let at = first.occurred_at;
    let seq = server
        .apply(
            1,
            &[
                first,
                event(&thread, turn, at, reply),
                event(&thread, turn, at, done),
            ],
        )
        .await;
    let (status, body) = server
        .get(&format!("/conversations/{thread}?min_seq={seq}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["thread_id"], thread.as_str());
    assert_eq!(
        (body["message_count"].as_i64(), body["turn_count"].as_i64()),
        (Some(1), Some(1))
    );
    let turns = body["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1, "{body}");
    assert_eq!(turns[0]["turn_id"], turn.to_string());
    assert_eq!(turns[0]["outcome"], "replied");
    assert_eq!(turns[0]["latency_ms"], 7);
    assert_eq!(turns[0]["message_seq"], 1);
}
