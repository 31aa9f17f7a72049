//! Stores a user message in JetStream. A publish counts only once its PubAck is in, and
//! every publish carries a `Nats-Msg-Id`, so a resend with the same `client_msg_id` is
//! answered with the sequence of the first one instead of becoming a second message.

use async_nats::jetstream::{Context, message::PublishMessage};
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

/// Why a message was not stored. The client may resend with the same `client_msg_id`.
#[derive(Debug, thiserror::Error)]
#[error("JetStream did not store the message: {0}")]
pub struct Unavailable(String);

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

/// Publishes `message.received` and waits until JetStream has stored it.
#[tracing::instrument(skip_all, fields(thread_id = %thread))]
pub async fn store_user_message(
    js: &Context,
    thread: &ThreadId,
    content: MessageContent,
    client_msg_id: Option<&ClientMsgId>,
) -> Result<Stored, Unavailable> {
    let event_id = message_event_id(thread, client_msg_id);
    let event = Envelope::new(
        event_id,
        thread.clone(),
        TurnId::from_uuid(Uuid::new_v5(&event_id, b"turn")),
        OffsetDateTime::now_utc(),
        MessageReceived {
            content: content.into_string(),
            client_msg_id: client_msg_id.map(|id| id.as_str().to_owned()),
        },
    );
    let publish = PublishMessage::build()
        .payload(event.to_json().into())
        .message_id(event_id.to_string());
    let ack = js
        .send_publish(event.subject(), publish)
        .await
        .map_err(|err| Unavailable(err.to_string()))?
        .await
        .map_err(|err| Unavailable(err.to_string()))?;
    Ok(Stored {
        seq: ack.sequence,
        duplicate: ack.duplicate,
    })
}
