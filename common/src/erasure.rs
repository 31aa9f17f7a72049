//! Erasure: a conversation's events leave the `CHAT` stream, its dead letters leave
//! `DEAD_LETTERS`, and a tombstone without content (`conversation.erased` on
//! `chat.<thread_id>.erased`) is stored after them, which the projector folds into "this
//! thread's rows leave every table" (docs/operations.md#erasing-a-conversation).
//!
//! Each message is removed with JetStream's message delete (`STREAM.MSG.DELETE` without
//! `no_erase`), which overwrites the stored record in the stream's files with random bytes,
//! one message at a time, found with direct gets (`chat.<thread_id>.>` and
//! `dead.<thread_id>`). A purge by subject would be one request, but it only marks the
//! records deleted: their bytes stay in the message block until the block is compacted or
//! emptied. The tombstone is stored after the first sweep, and a second sweep removes what a
//! turn in flight stored meanwhile.
//!
//! The NATS operations an eraser needs: direct gets of the next message by subject on both
//! streams (`$JS.API.DIRECT.GET.CHAT`, `$JS.API.DIRECT.GET.DEAD_LETTERS`), message deletes
//! (`$JS.API.STREAM.MSG.DELETE.CHAT`, `$JS.API.STREAM.MSG.DELETE.DEAD_LETTERS`), the
//! dead-letter stream's info (`$JS.API.STREAM.INFO.DEAD_LETTERS`) and a publish on
//! [`subjects::ERASED_EVENTS`] (with its PubAck). [`erased_at`], which the ingress and the
//! workers call, is a direct get of the last message on `chat.<thread_id>.erased`
//! (`$JS.API.DIRECT.GET.CHAT.chat.<thread_id>.erased`).

use async_nats::jetstream::{
    Context, ErrorCode,
    context::GetStreamErrorKind,
    stream::{DeleteMessageErrorKind, DirectGetErrorKind, Stream},
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::events::{ConversationErased, Envelope, OperatorRef, ThreadId, TurnId, publish_of};
use crate::subjects;

/// Who asks for an erasure (recorded in the tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eraser {
    /// An operator through the REST API (the static API token is the nil operator).
    Operator(OperatorRef),
    /// `smart-support erase`.
    Cli,
    /// `CONVERSATION_RETENTION`: inactive for longer than the retention.
    Retention,
}

impl Eraser {
    fn tombstone(&self) -> ConversationErased {
        let (erased_by, operator) = match self {
            Eraser::Operator(operator) => ("operator", Some(operator.clone())),
            Eraser::Cli => ("cli", None),
            Eraser::Retention => ("retention", None),
        };
        ConversationErased {
            erased_by: erased_by.into(),
            operator,
        }
    }
}

/// What an erasure removed, and where its tombstone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    /// Stream sequence of the `conversation.erased` tombstone: a read with this `min_seq`
    /// sees the conversation gone.
    pub seq: u64,
    /// Events removed from `CHAT` (both sweeps).
    pub events: u64,
    /// Dead letters removed from `DEAD_LETTERS`.
    pub dead_letters: u64,
}

/// Erases `thread`: its events and dead letters are deleted and the tombstone stored.
/// Returns `None`, and stores nothing, when there was nothing to remove and `known` is
/// false (the caller found no row of the conversation either): no such conversation.
pub async fn erase(
    js: &Context,
    thread: &ThreadId,
    by: &Eraser,
    known: bool,
) -> anyhow::Result<Option<Erased>> {
    let chat = js.get_stream_no_info(subjects::CHAT_STREAM).await?;
    let chat_filter = subjects::thread_events(thread);
    let mut events = sweep(&chat, &chat_filter, subjects::is_erasable).await?;
    let dead_letters = match js.get_stream(subjects::DEAD_LETTER_STREAM).await {
        Ok(dead) => {
            sweep(&dead, &subjects::dead_letter(Some(thread.as_str())), |_| {
                true
            })
            .await?
        }
        // No dead letter was ever stored.
        Err(err)
            if matches!(err.kind(), GetStreamErrorKind::JetStream(ref e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            0
        }
        Err(err) => return Err(err.into()),
    };
    if events == 0 && dead_letters == 0 && !known {
        return Ok(None);
    }
    let tombstone = Envelope::new(
        Uuid::new_v4(),
        thread.clone(),
        // Not a turn of the thread: an id of its own.
        TurnId::from_uuid(Uuid::new_v4()),
        OffsetDateTime::now_utc(),
        by.tombstone(),
    );
    let (subject, publish) = publish_of(&tombstone);
    let publish = publish.expected_stream(subjects::CHAT_STREAM);
    let seq = js.send_publish(subject, publish).await?.await?.sequence;
    // What a turn in flight stored between the first sweep and the tombstone.
    events += sweep(&chat, &chat_filter, subjects::is_erasable).await?;
    Ok(Some(Erased {
        seq,
        events,
        dead_letters,
    }))
}

/// The sequence of the thread's latest tombstone, if it was erased.
pub async fn erased_at<I>(chat: &Stream<I>, thread: &ThreadId) -> anyhow::Result<Option<u64>> {
    match chat
        .direct_get_last_for_subject(subjects::erased(thread))
        .await
    {
        Ok(message) => Ok(Some(message.sequence)),
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(err) => Err(anyhow::anyhow!("cannot read the thread's tombstone: {err}")),
    }
}

/// Deletes (overwriting the stored bytes) every message on `filter` whose subject is
/// `erasable`; returns how many.
async fn sweep<I>(
    stream: &Stream<I>,
    filter: &str,
    erasable: fn(&str) -> bool,
) -> anyhow::Result<u64> {
    let mut removed = 0;
    let mut next = 1;
    loop {
        let message = match stream.direct_get_next_for_subject(filter, Some(next)).await {
            Ok(message) => message,
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => return Ok(removed),
            Err(err) => anyhow::bail!("cannot read the messages of {filter}: {err}"),
        };
        next = message.sequence + 1;
        if !erasable(message.subject.as_str()) {
            continue;
        }
        match stream.delete_message(message.sequence).await {
            Ok(true) => removed += 1,
            Ok(false) => {}
            // Already gone: another erasure, or a discarded dead letter.
            Err(err)
                if matches!(err.kind(), DeleteMessageErrorKind::JetStream(ref e)
                    if [
                        ErrorCode::STREAM_MESSAGE_DELETE_FAILED,
                        ErrorCode::NO_MESSAGE_FOUND,
                        ErrorCode::SEQUENCE_NOT_FOUND,
                    ]
                    .contains(&e.error_code())) => {}
            Err(err) => anyhow::bail!("cannot delete message {}: {err}", message.sequence),
        }
    }
}
