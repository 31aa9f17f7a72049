//! An event as a JetStream publish. Every publisher of events (the ingress's user messages,
//! the worker's turn events and `turn.failed`, a redrive, the API's resolve, the CLI's
//! seeding) builds its publish here, so a header every event carries is added in one place.

use async_nats::jetstream::message::PublishMessage;

use super::Envelope;

/// The publish of an event: its subject, and its JSON with its event id as `Nats-Msg-Id`
/// (JetStream drops a repeat within the duplicate window) and the W3C `traceparent` of the
/// current span (`crate::trace`: one trace follows a message across the services). Callers
/// add the headers of their own protocol (an expected last sequence, the order chain).
pub fn publish_of(event: &Envelope) -> (String, PublishMessage) {
    let message = PublishMessage::build()
        .payload(event.to_json().into())
        .message_id(event.event_id.to_string());
    (event.subject(), crate::trace::with_traceparent(message))
}
