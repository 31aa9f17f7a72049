//! The user message as an event, and its store. A publish counts only once its PubAck is
//! in, and every publish carries a `Nats-Msg-Id` (the event id), so a resend with the same
//! `client_msg_id` is answered with the sequence of the first one instead of becoming a
//! second message.
//!
//! [`ThreadWriter`] stores a connection's messages through the thread's user-message writer
//! ([`common::user_messages`]: the compare-and-set chain, `Smart-Support-Previous-Seq`), with
//! the [`crate::rate_limit`] as its admission. A connection's messages are therefore stored
//! one after the other (each publish names the previous one's sequence); the writer is
//! called from one task per connection.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{Context, stream::Stream};
use common::events::{Envelope, MessageReceived, ThreadId, TurnId};
use common::user_messages::{Stored, UserMessageWriter, WriteError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rate_limit::Limit;
use crate::ws::frame::{ClientMsgId, MessageContent};

/// Publishes tried per message before the client is told `unavailable` (another connection
/// or instance kept storing a message of the thread first).
const MAX_ATTEMPTS: usize = 8;

/// Why a message was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over the thread's limit.
    Limited { retry_after: Duration },
    /// JetStream did not store it (down, timed out, too much contention); the client may
    /// resend with the same `client_msg_id`.
    Unavailable(String),
    /// The conversation was erased: it takes no more messages.
    Erased,
}

/// Stores one thread's user messages within its rate limit.
pub struct ThreadWriter {
    thread: ThreadId,
    writer: UserMessageWriter<Limit>,
}

impl ThreadWriter {
    pub fn new(js: Context, stream: Arc<Stream>, thread: ThreadId, limit: Limit) -> ThreadWriter {
        ThreadWriter {
            writer: UserMessageWriter::new(js, stream, &thread, limit, MAX_ATTEMPTS),
            thread,
        }
    }

    /// Stores a user message if the thread is under its limit.
    pub async fn store(
        &mut self,
        content: MessageContent,
        client_msg_id: Option<&ClientMsgId>,
    ) -> Result<Stored, Refusal> {
        let event = user_message(&self.thread, content, client_msg_id);
        self.writer.store(&event).await.map_err(|err| match err {
            WriteError::Refused(retry_after) => Refusal::Limited { retry_after },
            WriteError::Read(err) => Refusal::Unavailable(err.to_string()),
            WriteError::Publish(err) => Refusal::Unavailable(err.to_string()),
            WriteError::Contention { .. } => {
                Refusal::Unavailable("too much contention on the thread; resend".into())
            }
            WriteError::Erased => Refusal::Erased,
        })
    }
}

/// Namespace of event ids derived from (thread, client message id).
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5b1c_2a8e_6f0d_4c3b_9a7e_1d2f_3c4b_5a69);

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
