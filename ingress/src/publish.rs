//! The user message as an event and as a JetStream publish. A publish counts only once
//! its PubAck is in, and every publish carries a `Nats-Msg-Id` (the event id), so a resend
//! with the same `client_msg_id` is answered with the sequence of the first one instead of
//! becoming a second message. [`crate::rate_limit`] does the publishing.

use async_nats::jetstream::message::PublishMessage;
use common::events::{Envelope, MessageReceived, ThreadId, TurnId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ws::frame::{ClientMsgId, MessageContent};

/// Namespace of event ids derived from (thread, client message id).
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5b1c_2a8e_6f0d_4c3b_9a7e_1d2f_3c4b_5a69);

/// The stored message: its stream sequence, and whether it was a resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub duplicate: bool,
}

/// The event id of a user message: derived from the client's id when it sent one, so a
/// resend is the same event; random otherwise.
pub fn message_event_id(thread: &ThreadId, client_msg_id: Option<&ClientMsgId>) -> Uuid {
    match client_msg_id {
        Some(id) => Uuid::new_v5(
            &MESSAGE_ID_NAMESPACE,
            format!("{thread}/{}", id.as_str()).as_bytes(),
        ),
        None => Uuid::new_v4(),
    }
}

/// The `message.received` event of a user message.
pub fn user_message(
    thread: &ThreadId,
    content: MessageContent,
    client_msg_id: Option<&ClientMsgId>,
) -> Envelope {
    let event_id = message_event_id(thread, client_msg_id);
    Envelope::new(
        event_id,
        thread.clone(),
        TurnId::from_uuid(Uuid::new_v5(&event_id, b"turn")),
        OffsetDateTime::now_utc(),
        MessageReceived {
            content: content.into_string(),
            client_msg_id: client_msg_id.map(|id| id.as_str().to_owned()),
            backdated_ms: None,
        },
    )
}

/// The publish of an event: its JSON with its event id as `Nats-Msg-Id`, and the
/// `traceparent` of the message's span.
pub fn message(event: &Envelope) -> PublishMessage {
    let message = PublishMessage::build()
        .payload(event.to_json().into())
        .message_id(event.event_id.to_string());
    common::trace::with_traceparent(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resend_with_the_same_client_id_is_the_same_event() {
        let thread = ThreadId::parse("t").unwrap();
        let id = ClientMsgId::parse("m-1".into()).unwrap();
        assert_eq!(
            message_event_id(&thread, Some(&id)),
            message_event_id(&thread, Some(&id))
        );
        let other = ThreadId::parse("u").unwrap();
        assert_ne!(
            message_event_id(&thread, Some(&id)),
            message_event_id(&other, Some(&id))
        );
        assert_ne!(
            message_event_id(&thread, None),
            message_event_id(&thread, None)
        );
    }
}
