//! Dead letters: user messages the workers gave up on, kept in their own stream with the
//! original message and why it failed, until an operator redrives or discards them.
//!
//! A dead letter is one message on `dead.<thread_id>` in the `DEAD_LETTERS` stream. Its
//! payload is the original message's payload, byte for byte; its headers are the
//! original's headers (but JetStream's own `Nats-*` ones) plus the `Smart-Support-*`
//! headers below. Its id is its sequence in the dead-letter stream. It is published with
//! `Nats-Msg-Id: dead-letter:<source seq>`, so a worker that crashes between the dead
//! letter and the termination of the original, and does it again, stores it once.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, Context, context::PublishAckFuture};
use time::OffsetDateTime;

use crate::events::ErrorCategory;
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
        .format(&time::format_description::well_known::Rfc3339)
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
