//! The chat stream recorded by version 1 of the events (`fixtures/v1/`, recorded once with
//! commit 51a233a by `cli/tests/e2e/record_v1_fixture.rs`): the v1 contract as data, for the
//! tests that check newer code still reads it.

use async_nats::HeaderMap;
use async_nats::jetstream::{Context, message::PublishMessage};
use serde_json::Value;

/// Every message of the recorded `CHAT` stream, one JSON object a line, in sequence order:
/// `seq`, `subject`, `headers` (each name with its values) and `payload` (the stored bytes as a
/// string; not always an event: one is an unreadable message).
pub const CHAT_STREAM: &str = include_str!("../../fixtures/v1/chat-stream.jsonl");

/// Publishes the recorded v1 stream into the empty chat stream of `js`, message by message in
/// order, each to its subject with its headers (`Nats-Msg-Id`, `Smart-Support-Previous-Seq`,
/// `Smart-Support-Arrivals`, `traceparent`, …), and checks that each is stored at its recorded
/// sequence, so the sequences the events name (`message_seq`, `original_seq`, the headers')
/// still point at the right messages. Returns the last sequence.
pub async fn load(js: &Context) -> u64 {
    let mut last = 0;
    for (n, line) in CHAT_STREAM.lines().enumerate() {
        let recorded: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("line {} of chat-stream.jsonl: {err}", n + 1));
        let (seq, subject, payload) = (
            recorded["seq"].as_u64().expect("a seq"),
            recorded["subject"].as_str().expect("a subject").to_owned(),
            recorded["payload"].as_str().expect("a payload").to_owned(),
        );
        let mut headers = HeaderMap::new();
        for (name, values) in recorded["headers"].as_object().expect("headers") {
            for value in values.as_array().expect("header values") {
                headers.append(name.as_str(), value.as_str().expect("a header value"));
            }
        }
        let message = PublishMessage::build()
            .payload(payload.into_bytes().into())
            .headers(headers);
        let ack = js
            .send_publish(subject.clone(), message)
            .await
            .unwrap()
            .await
            .unwrap_or_else(|err| panic!("the message of seq {seq} is refused: {err}"));
        assert_eq!(
            (ack.sequence, ack.duplicate),
            (seq, false),
            "{subject} is stored at its recorded sequence (the stream was empty)"
        );
        last = ack.sequence;
    }
    last
}
