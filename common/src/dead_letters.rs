//! Dead letters: user messages the workers gave up on, kept in their own stream with the
//! original message and why it failed, until an operator redrives or discards them.
//!
//! A dead letter is one message on `dead.<thread_id>` in the `DEAD_LETTERS` stream. Its
//! payload is the original message's payload, byte for byte; its headers are the
//! original's headers (but JetStream's own `Nats-*` ones) plus the `Smart-Support-*`
//! headers below. Its id is its sequence in the dead-letter stream. It is published with
//! `Nats-Msg-Id: dead-letter:<source seq>`, so a worker that crashes between the dead
//! letter and the termination of the original, and does it again, stores it once.
//!
//! Operators read them with [`list`], [`get`] and [`matching`] (oldest first, read with
//! direct gets from the stream, so reading never changes anything), send one back to the
//! workers with [`redrive`] (a `message.redriven` event with a turn of its own, ordered
//! after the thread's last user message) or drop it with [`discard`].

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use async_nats::jetstream::{
    self, Context, ErrorCode,
    context::{GetStreamErrorKind, PublishAckFuture},
    message::StreamMessage,
    stream::{DeleteMessageErrorKind, DirectGetErrorKind, Stream},
};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::events::{Envelope, ErrorCategory, MessageRedriven, Payload, ThreadId, TurnId};
use crate::subjects;

/// Subject the failed message was stored on.
pub const SOURCE_SUBJECT_HEADER: &str = "Smart-Support-Source-Subject";
/// Its sequence in the chat stream.
pub const SOURCE_SEQ_HEADER: &str = "Smart-Support-Source-Seq";
/// `retryable` (retries exhausted), `not_retryable` or `fatal` (did not parse).
pub const ERROR_CATEGORY_HEADER: &str = "Smart-Support-Error-Category";
/// The last error, one line.
pub const ERROR_HEADER: &str = "Smart-Support-Error";
/// How many times the message was delivered to a worker.
pub const ATTEMPTS_HEADER: &str = "Smart-Support-Attempts";
/// When it was dead-lettered (RFC 3339).
pub const FAILED_AT_HEADER: &str = "Smart-Support-Failed-At";

/// Longest error text kept in a header.
const MAX_ERROR_BYTES: usize = 1024;

/// Why a message is dead-lettered.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub category: ErrorCategory,
    pub error: String,
    pub attempts: u32,
}

/// The message that failed, as delivered.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub subject: &'a str,
    pub seq: u64,
    pub payload: &'a [u8],
    pub headers: Option<&'a HeaderMap>,
}

/// Creates or updates the dead-letter stream (file storage, same replicas and duplicate
/// window as the chat stream; kept until redriven or discarded).
pub async fn ensure_stream(js: &Context, args: &crate::config::NatsArgs) -> anyhow::Result<()> {
    let config = jetstream::stream::Config {
        name: subjects::DEAD_LETTER_STREAM.into(),
        description: Some("User messages the workers gave up on".into()),
        subjects: vec![subjects::DEAD_LETTER_SUBJECTS.into()],
        storage: jetstream::stream::StorageType::File,
        num_replicas: args.stream_replicas,
        duplicate_window: args.duplicate_window,
        allow_direct: true,
        ..Default::default()
    };
    js.create_or_update_stream(config).await.map_err(|err| {
        anyhow::anyhow!(
            "cannot create or update stream {}: {err}",
            subjects::DEAD_LETTER_STREAM
        )
    })?;
    Ok(())
}

/// Stores a dead letter and returns its id (its sequence in the dead-letter stream). A
/// repeat for the same source message returns the id of the one already stored.
pub async fn publish(js: &Context, source: Source<'_>, failure: &Failure) -> anyhow::Result<u64> {
    let mut headers = HeaderMap::new();
    if let Some(original) = source.headers {
        for (name, values) in original.iter() {
            if AsRef::<str>::as_ref(name).starts_with("Nats-") {
                continue;
            }
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    let mut error: String = failure.error.replace(['\r', '\n'], " ");
    if error.len() > MAX_ERROR_BYTES {
        let mut cut = MAX_ERROR_BYTES;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
    }
    let failed_at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .expect("a UTC time formats as RFC 3339");
    headers.insert(SOURCE_SUBJECT_HEADER, source.subject);
    headers.insert(SOURCE_SEQ_HEADER, source.seq.to_string().as_str());
    headers.insert(ERROR_CATEGORY_HEADER, failure.category.as_str());
    headers.insert(ERROR_HEADER, error.as_str());
    headers.insert(ATTEMPTS_HEADER, failure.attempts.to_string().as_str());
    headers.insert(FAILED_AT_HEADER, failed_at.as_str());
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("dead-letter:{}", source.seq).as_str(),
    );
    let ack: PublishAckFuture = js
        .publish_with_headers(
            subjects::dead_letter(subjects::thread_of(source.subject)),
            headers,
            source.payload.to_vec().into(),
        )
        .await?;
    Ok(ack.await?.sequence)
}

/// Why a dead-letter operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetterError {
    /// No dead letter has this id (never stored, or already redriven or discarded).
    #[error("no dead letter {0}")]
    NotFound(u64),
    /// The original is not a user message (e.g. a payload that does not parse); discard it
    /// instead.
    #[error("cannot be redriven: {0}")]
    NotRedrivable(String),
    /// NATS did not answer or refused; nothing was changed, or the operation may be
    /// repeated safely.
    #[error("NATS is unavailable: {0}")]
    Unavailable(String),
}

fn unavailable(err: impl std::fmt::Display) -> DeadLetterError {
    DeadLetterError::Unavailable(err.to_string())
}

/// One dead letter as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream.
    pub id: u64,
    /// The conversation, when the failed message's subject named one.
    pub thread_id: Option<String>,
    /// Subject the failed message was stored on.
    pub source_subject: String,
    /// Its sequence in the chat stream.
    pub source_seq: u64,
    pub category: ErrorCategory,
    /// The last error, one line.
    pub error: String,
    /// How many times the message was delivered to a worker.
    pub attempts: u32,
    /// When it was dead-lettered.
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
    /// The original payload as JSON, or as a JSON string of its (lossy UTF-8) text when it
    /// is not JSON.
    pub original: serde_json::Value,
    /// The original's headers, without the dead-letter ones.
    pub headers: BTreeMap<String, String>,
}

impl DeadLetter {
    /// Reads a stored dead letter. A header that is missing or unreadable (never written
    /// so by [`publish`]) falls back rather than hiding the record: the stream's own time
    /// for `failed_at`, 0 for numbers, `fatal` for the category.
    pub fn from_stored(message: &StreamMessage) -> DeadLetter {
        let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned());
        let number = |name: &str| header(name).and_then(|v| v.trim().parse::<u64>().ok());
        let thread_id = message
            .subject
            .strip_prefix("dead.")
            .filter(|token| !token.is_empty() && *token != "_")
            .map(str::to_owned);
        let original = serde_json::from_slice(&message.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&message.payload).into_owned())
        });
        let mut headers = BTreeMap::new();
        for (name, values) in message.headers.iter() {
            let name: &str = name.as_ref();
            if name.starts_with("Nats-") || DEAD_LETTER_HEADERS.contains(&name) {
                continue;
            }
            let joined = values
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            headers.insert(name.to_owned(), joined);
        }
        DeadLetter {
            id: message.sequence,
            thread_id,
            source_subject: header(SOURCE_SUBJECT_HEADER).unwrap_or_default(),
            source_seq: number(SOURCE_SEQ_HEADER).unwrap_or(0),
            category: header(ERROR_CATEGORY_HEADER)
                .and_then(|v| ErrorCategory::parse(&v))
                .unwrap_or(ErrorCategory::Fatal),
            error: header(ERROR_HEADER).unwrap_or_default(),
            attempts: number(ATTEMPTS_HEADER)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            failed_at: header(FAILED_AT_HEADER)
                .and_then(|v| OffsetDateTime::parse(&v, &Rfc3339).ok())
                .unwrap_or(message.time),
            original,
            headers,
        }
    }
}

/// The headers [`publish`] adds; [`DeadLetter::headers`] leaves them out.
const DEAD_LETTER_HEADERS: [&str; 6] = [
    SOURCE_SUBJECT_HEADER,
    SOURCE_SEQ_HEADER,
    ERROR_CATEGORY_HEADER,
    ERROR_HEADER,
    ATTEMPTS_HEADER,
    FAILED_AT_HEADER,
];

/// Which dead letters to list or act on; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub category: Option<ErrorCategory>,
    /// Failed at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Failed before this instant.
    pub until: Option<OffsetDateTime>,
    pub thread_id: Option<ThreadId>,
}

impl Filter {
    /// Whether a dead letter passes the filter.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        self.category.is_none_or(|c| c == letter.category)
            && self.since.is_none_or(|since| letter.failed_at >= since)
            && self.until.is_none_or(|until| letter.failed_at < until)
            && self
                .thread_id
                .as_ref()
                .is_none_or(|t| letter.thread_id.as_deref() == Some(t.as_str()))
    }

    /// The subjects to read: one thread's, or all.
    fn subject(&self) -> String {
        match &self.thread_id {
            Some(thread) => subjects::dead_letter(Some(thread.as_str())),
            None => subjects::DEAD_LETTER_SUBJECTS.to_owned(),
        }
    }
}

/// One page of dead letters, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub items: Vec<DeadLetter>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_cursor: Option<u64>,
}

/// The dead-letter stream, or `None` when it does not exist (then there are no dead
/// letters).
async fn open_stream(js: &Context) -> Result<Option<Stream>, DeadLetterError> {
    match js.get_stream(subjects::DEAD_LETTER_STREAM).await {
        Ok(stream) => Ok(Some(stream)),
        Err(err)
            if matches!(err.kind(), GetStreamErrorKind::JetStream(ref e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            Ok(None)
        }
        Err(err) => Err(unavailable(err)),
    }
}

/// Reads the dead letters matching `filter` with an id above `after`, oldest first, and
/// hands each to `keep` until it returns false.
async fn scan(
    stream: &Stream,
    filter: &Filter,
    after: u64,
    mut keep: impl FnMut(DeadLetter) -> bool,
) -> Result<(), DeadLetterError> {
    let subject = filter.subject();
    let mut next = after.saturating_add(1);
    loop {
        let message = match stream
            .direct_get_next_for_subject(subject.clone(), Some(next))
            .await
        {
            Ok(message) => message,
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(unavailable(err)),
        };
        next = message.sequence + 1;
        let letter = DeadLetter::from_stored(&message);
        if filter.matches(&letter) && !keep(letter) {
            return Ok(());
        }
    }
}

/// A page of at most `limit` (at least 1) dead letters matching `filter`, oldest first,
/// with ids above `after`.
pub async fn list(
    js: &Context,
    filter: &Filter,
    after: Option<u64>,
    limit: usize,
) -> Result<Page, DeadLetterError> {
    let limit = limit.max(1);
    let Some(stream) = open_stream(js).await? else {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    };
    // One more than asked tells whether there is a next page.
    let mut items = Vec::with_capacity(limit + 1);
    scan(&stream, filter, after.unwrap_or(0), |letter| {
        items.push(letter);
        items.len() <= limit
    })
    .await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| last.id)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Every dead letter matching `filter`, oldest first, so a caller can report the count
/// before it acts on them.
pub async fn matching(js: &Context, filter: &Filter) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let Some(stream) = open_stream(js).await? else {
        return Ok(Vec::new());
    };
    let mut items = Vec::new();
    scan(&stream, filter, 0, |letter| {
        items.push(letter);
        true
    })
    .await?;
    Ok(items)
}

async fn fetch(js: &Context, id: u64) -> Result<(Stream, StreamMessage), DeadLetterError> {
    if id == 0 {
        return Err(DeadLetterError::NotFound(id));
    }
    let stream = open_stream(js)
        .await?
        .ok_or(DeadLetterError::NotFound(id))?;
    match stream.direct_get(id).await {
        Ok(message) => Ok((stream, message)),
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => {
            Err(DeadLetterError::NotFound(id))
        }
        Err(err) => Err(unavailable(err)),
    }
}

/// One dead letter.
pub async fn get(js: &Context, id: u64) -> Result<DeadLetter, DeadLetterError> {
    let (_, message) = fetch(js, id).await?;
    Ok(DeadLetter::from_stored(&message))
}

/// Deletes a dead letter from the stream.
pub async fn discard(js: &Context, id: u64) -> Result<(), DeadLetterError> {
    if id == 0 {
        return Err(DeadLetterError::NotFound(id));
    }
    let stream = open_stream(js)
        .await?
        .ok_or(DeadLetterError::NotFound(id))?;
    delete(&stream, id).await
}

async fn delete(stream: &Stream, id: u64) -> Result<(), DeadLetterError> {
    match stream.delete_message(id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(DeadLetterError::NotFound(id)),
        Err(err) => match err.kind() {
            // The server answers "no message found" for a sequence that is gone.
            DeleteMessageErrorKind::JetStream(e)
                if [
                    ErrorCode::STREAM_MESSAGE_DELETE_FAILED,
                    ErrorCode::NO_MESSAGE_FOUND,
                    ErrorCode::SEQUENCE_NOT_FOUND,
                ]
                .contains(&e.error_code()) =>
            {
                Err(DeadLetterError::NotFound(id))
            }
            _ => Err(unavailable(err)),
        },
    }
}

/// The `message.redriven` event that sends dead letter `id` back to the workers, built
/// from its stored payload. Its event id and turn id derive from the original's and the
/// dead letter's id, so a repeated redrive of the same dead letter is the same event
/// (and JetStream's duplicate window drops it).
pub fn redriven_event(
    payload: &[u8],
    id: u64,
    source_seq: u64,
    now: OffsetDateTime,
) -> Result<Envelope, DeadLetterError> {
    let original = Envelope::from_json(payload).map_err(|err| {
        DeadLetterError::NotRedrivable(format!("the original is not an event ({err})"))
    })?;
    let content = match original.payload {
        Payload::MessageReceived(message) => message.content,
        Payload::MessageRedriven(message) => message.content,
        other => {
            return Err(DeadLetterError::NotRedrivable(format!(
                "the original is a {}, not a user message",
                other.kind()
            )));
        }
    };
    let name = format!("redrive-{id}");
    Ok(Envelope::new(
        Uuid::new_v5(&original.event_id, name.as_bytes()),
        original.thread_id,
        TurnId::from_uuid(Uuid::new_v5(original.turn_id.as_uuid(), name.as_bytes())),
        now,
        MessageRedriven {
            content,
            original_seq: source_seq,
            dead_letter_id: id,
        },
    ))
}

/// Sends dead letter `id` back to the workers as a `message.redriven` event on the
/// thread's user-message subject, after the thread's last user message, and deletes the
/// dead letter once the event is stored. Returns the event's sequence in the chat stream.
pub async fn redrive(js: &Context, id: u64) -> Result<u64, DeadLetterError> {
    let (stream, message) = fetch(js, id).await?;
    let letter = DeadLetter::from_stored(&message);
    let event = redriven_event(
        &message.payload,
        id,
        letter.source_seq,
        OffsetDateTime::now_utc(),
    )?;
    let seq = crate::user_messages::store(js, &event)
        .await
        .map_err(|err| DeadLetterError::Unavailable(format!("{err:#}")))?;
    // Only now: had the publish failed, the dead letter would still be there to retry.
    match delete(&stream, id).await {
        // Someone discarded or redrove it meanwhile; the event is stored either way.
        Ok(()) | Err(DeadLetterError::NotFound(_)) => Ok(seq),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AgentReplied, MessageReceived};
    use time::macros::datetime;

    fn received() -> Envelope {
        Envelope::new(
            Uuid::from_u128(1),
            ThreadId::parse("t-1").unwrap(),
            TurnId::from_uuid(Uuid::from_u128(2)),
            datetime!(2026-01-01 00:00:00 UTC),
            MessageReceived {
                content: "where is my order?".into(),
                client_msg_id: None,
                backdated_ms: None,
            },
        )
    }

    #[test]
    fn a_redriven_event_carries_the_content_and_derived_ids() {
        let now = datetime!(2026-01-02 00:00:00 UTC);
        let event = redriven_event(&received().to_json(), 7, 42, now).unwrap();
        assert_eq!(event.thread_id.as_str(), "t-1");
        assert_eq!(
            event.event_id,
            Uuid::new_v5(&Uuid::from_u128(1), b"redrive-7")
        );
        assert_eq!(
            *event.turn_id.as_uuid(),
            Uuid::new_v5(&Uuid::from_u128(2), b"redrive-7")
        );
        assert_eq!(event.occurred_at, now);
        assert_eq!(
            event.payload,
            Payload::MessageRedriven(MessageRedriven {
                content: "where is my order?".into(),
                original_seq: 42,
                dead_letter_id: 7,
            })
        );
    }

    #[test]
    fn the_same_dead_letter_always_gives_the_same_event_id() {
        let a = redriven_event(&received().to_json(), 7, 42, OffsetDateTime::now_utc()).unwrap();
        let b = redriven_event(&received().to_json(), 7, 42, OffsetDateTime::now_utc()).unwrap();
        let other = redriven_event(&received().to_json(), 8, 42, OffsetDateTime::now_utc());
        assert_eq!(a.event_id, b.event_id);
        assert_ne!(a.event_id, other.unwrap().event_id);
    }

    #[test]
    fn a_payload_that_is_not_an_event_is_not_redrivable() {
        let err = redriven_event(b"not json", 1, 1, OffsetDateTime::now_utc()).unwrap_err();
        assert!(matches!(err, DeadLetterError::NotRedrivable(_)), "{err}");
    }

    #[test]
    fn an_event_that_is_not_a_user_message_is_not_redrivable() {
        let reply = Envelope {
            payload: AgentReplied {
                text: "hi".into(),
                agent: "a".into(),
                engine: "rules".into(),
                usage: None,
                end: None,
                escalation: None,
            }
            .into(),
            ..received()
        };
        let err = redriven_event(&reply.to_json(), 1, 1, OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.to_string().contains("agent.replied"), "{err}");
    }

    #[test]
    fn a_filter_checks_every_field_it_sets() {
        let letter = DeadLetter {
            id: 1,
            thread_id: Some("t-1".into()),
            source_subject: "chat.t-1.user".into(),
            source_seq: 3,
            category: ErrorCategory::Retryable,
            error: "timed out".into(),
            attempts: 5,
            failed_at: datetime!(2026-01-01 12:00:00 UTC),
            original: serde_json::Value::Null,
            headers: BTreeMap::new(),
        };
        assert!(Filter::default().matches(&letter));
        let category = |c| Filter {
            category: Some(c),
            ..Filter::default()
        };
        assert!(category(ErrorCategory::Retryable).matches(&letter));
        assert!(!category(ErrorCategory::Fatal).matches(&letter));
        let since = Filter {
            since: Some(datetime!(2026-01-01 12:00:00 UTC)),
            ..Filter::default()
        };
        assert!(since.matches(&letter));
        let until = Filter {
            until: Some(datetime!(2026-01-01 12:00:00 UTC)),
            ..Filter::default()
        };
        assert!(!until.matches(&letter));
        let thread = Filter {
            thread_id: Some(ThreadId::parse("t-2").unwrap()),
            ..Filter::default()
        };
        assert!(!thread.matches(&letter));
    }
}
