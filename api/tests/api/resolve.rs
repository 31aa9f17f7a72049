//! `POST /api/conversations/{thread_id}/resolve` against a real JetStream (no projector:
//! the e2e test follows the event through it).

use std::time::Duration;

use common::events::{Envelope, MessageReceived, Payload, ThreadId, TurnId};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::server::{Server, event};

async fn with_conversation() -> (Server, ThreadId) {
    let server = Server::start(Duration::from_secs(2)).await;
    let thread = ThreadId::generate();
    let message = MessageReceived {
        content: "hello".into(),
        client_msg_id: None,
        backdated_ms: None,
    };
    let turn = TurnId::from_uuid(Uuid::new_v4());
    server
        .apply(
            1,
            &[event(&thread, turn, OffsetDateTime::now_utc(), message)],
        )
        .await;
    (server, thread)
}

#[tokio::test]
async fn a_resolve_is_stored_on_the_operator_subject_with_its_event_id_as_msg_id() {
    let (server, thread) = with_conversation().await;
    let (status, body) = server
        .post(
            &format!("/conversations/{thread}/resolve"),
            Some(json!({ "note": "refund sent" })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["thread_id"], thread.as_str());
    let seq = body["seq"].as_u64().unwrap();

    let chat = common::jetstream::connect_once(
        &common::config::NatsArgs::at(server.nats.url())
            .as_user("admin", &testkit::nats_password("admin")),
    )
    .await
    .unwrap()
    .get_stream(common::subjects::CHAT_STREAM)
    .await
    .unwrap();
    let stored = chat.get_raw_message(seq).await.unwrap();
    assert_eq!(stored.subject.as_str(), format!("chat.{thread}.operator"));
    let event = Envelope::from_json(&stored.payload).unwrap();
    assert_eq!(event.thread_id, thread);
    assert_eq!(
        stored
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned()),
        Some(event.event_id.to_string())
    );
    match event.payload {
        Payload::ConversationResolved(resolved) => {
            assert_eq!(resolved.resolved_by, "operator");
            assert_eq!(resolved.note.as_deref(), Some("refund sent"));
        }
        other => panic!("expected conversation.resolved, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_resolve_body_is_rejected_before_anything_is_published() {
    let (server, thread) = with_conversation().await;
    for (body, code) in [
        (json!({ "notes": "typo" }), "invalid_body"),
        (json!({ "note": "x".repeat(2001) }), "note_too_long"),
    ] {
        let (status, answer) = server
            .post(&format!("/conversations/{thread}/resolve"), Some(body))
            .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some(code))
        );
    }
}

#[tokio::test]
async fn a_resolve_while_nats_is_down_answers_unavailable() {
    let (mut server, thread) = with_conversation().await;
    server.nats.kill();
    let (status, body) = server
        .post(&format!("/conversations/{thread}/resolve"), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
}
