//! The one writer of user messages (`message.received`, `message.redriven`) on
//! `chat.<thread_id>.user`: the ingress and a redrive (which the API and the CLI call) both
//! store through [`UserMessageWriter`].
//!
//! A thread's user messages form a chain. Each is published with
//! `Nats-Expected-Last-Subject-Sequence` set to the sequence of the thread's last user
//! message the writer knows (0 for none) and, when there is one, names it in
//! `Smart-Support-Previous-Seq` ([`subjects::PREVIOUS_SEQ_HEADER`]): JetStream stores the
//! message only if that is still the last one, so the chain has no gap and no fork, and the
//! workers follow it to answer a thread's messages in order (docs/events.md, "Order of a
//! thread's turns"). When another message got in first, the publish is refused; the writer
//! reads the thread's last user message (a direct get) and tries again.
//!
//! What else rides on the chain is the caller's [`Admission`]: the ingress's rate limit keeps
//! its state in a header of the messages and may refuse one
//! (docs/adr/003-rate-limit-state-on-the-messages.md); a redrive admits every message
//! ([`AnyMessage`]). An erased thread (its `conversation.erased` tombstone stored) takes no
//! more messages ([`WriteError::Erased`]).

use std::convert::Infallible;
use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream::{
    Context,
    context::{PublishError, PublishErrorKind},
    message::PublishMessage,
    stream::{DirectGetError, DirectGetErrorKind, Info, Stream},
};

use crate::events::{Envelope, ThreadId, publish_of};
use crate::subjects;

/// What a writer keeps of the thread's last user message besides its sequence, and whether
/// a new message may follow it.
pub trait Admission {
    /// Read from the last message's headers and stored in the new message's.
    type State;
    /// Why a message is refused before it is published.
    type Refusal;
    /// The state of the thread's last stored user message (`None`: the thread has none).
    fn read(&self, last: Option<&HeaderMap>) -> Self::State;
    /// The state a new message after `last` stores, or why it may not be stored.
    fn admit(&self, last: &Self::State) -> Result<Self::State, Self::Refusal>;
    /// Adds `state`'s headers to the new message's publish.
    fn write(&self, state: &Self::State, message: PublishMessage) -> PublishMessage;
}

/// Admits every message and keeps nothing beside the chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyMessage;

impl Admission for AnyMessage {
    type State = ();
    type Refusal = Infallible;

    fn read(&self, _: Option<&HeaderMap>) {}

    fn admit(&self, _: &()) -> Result<(), Infallible> {
        Ok(())
    }

    fn write(&self, _: &(), message: PublishMessage) -> PublishMessage {
        message
    }
}

/// The stored message: its stream sequence, and whether it was a resend (a `Nats-Msg-Id`
/// already in the duplicate window: nothing new was stored, `seq` is the first copy's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub duplicate: bool,
}

/// Why a user message was not stored.
#[derive(Debug)]
pub enum WriteError<R> {
    /// The admission refused it.
    Refused(R),
    /// The thread's last user message could not be read.
    Read(DirectGetError),
    /// JetStream did not store it.
    Publish(PublishError),
    /// Another message got in first on every attempt.
    Contention { attempts: usize },
    /// The conversation was erased (its tombstone is stored): it takes no more messages.
    Erased,
}

/// What the writer knows of the thread's last stored user message.
#[derive(Debug, Clone)]
struct Known<S> {
    seq: u64,
    state: S,
}

/// Stores one thread's user messages, each after the one before. It remembers the last one
/// it stored, so its next message needs no read; a writer is used by one task at a time (the
/// ingress keeps one per connection). `I` is the stream handle's kind (with or without its
/// info), as the caller has it.
pub struct UserMessageWriter<A: Admission, I = Info> {
    js: Context,
    stream: Arc<Stream<I>>,
    /// `chat.<thread_id>.user`.
    subject: String,
    /// `chat.<thread_id>.erased`: the thread's tombstone, if it was erased.
    erased: String,
    admission: A,
    /// Publishes tried per message before [`WriteError::Contention`].
    attempts: usize,
    known: Option<Known<A::State>>,
}

impl<A: Admission, I> UserMessageWriter<A, I> {
    pub fn new(
        js: Context,
        stream: Arc<Stream<I>>,
        thread: &ThreadId,
        admission: A,
        attempts: usize,
    ) -> UserMessageWriter<A, I> {
        UserMessageWriter {
            js,
            stream,
            subject: subjects::user_message(thread),
            erased: subjects::erased(thread),
            admission,
            attempts,
            known: None,
        }
    }

    /// Stores a user-message event of this writer's thread as the successor of the thread's
    /// last user message, if the admission lets it; returns once the PubAck is in.
    pub async fn store(&mut self, event: &Envelope) -> Result<Stored, WriteError<A::Refusal>> {
        for _ in 0..self.attempts {
            let known = match self.known.take() {
                Some(known) => known,
                None => self.load().await?,
            };
            let state = match self.admission.admit(&known.state) {
                Ok(state) => state,
                Err(refusal) => {
                    self.known = Some(known);
                    return Err(WriteError::Refused(refusal));
                }
            };
            let (subject, message) = publish_of(event);
            let mut message = message.expected_last_subject_sequence(known.seq);
            if known.seq > 0 {
                // The chain the workers follow to answer a thread's messages in order.
                message = message.header(
                    subjects::PREVIOUS_SEQ_HEADER,
                    known.seq.to_string().as_str(),
                );
            }
            let message = self.admission.write(&state, message);
            let ack = async { self.js.send_publish(subject, message).await?.await };
            match ack.await {
                Ok(ack) if ack.duplicate => {
                    // A resend of a stored message: nothing new was stored.
                    self.known = Some(known);
                    return Ok(Stored {
                        seq: ack.sequence,
                        duplicate: true,
                    });
                }
                Ok(ack) => {
                    self.known = Some(Known {
                        seq: ack.sequence,
                        state,
                    });
                    return Ok(Stored {
                        seq: ack.sequence,
                        duplicate: false,
                    });
                }
                // Another connection, instance or redrive stored a message of this thread
                // first.
                Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => continue,
                Err(err) => return Err(WriteError::Publish(err)),
            }
        }
        Err(WriteError::Contention {
            attempts: self.attempts,
        })
    }

    /// Reads the thread's last user message (its sequence and state) and whether the thread
    /// was erased, both at once: a writer reads when it starts and after another message got
    /// in first, which is also what an erasure's deletes cause.
    async fn load(&self) -> Result<Known<A::State>, WriteError<A::Refusal>> {
        let (last, tombstone) = tokio::join!(
            self.stream
                .direct_get_last_for_subject(self.subject.clone()),
            self.stream.direct_get_last_for_subject(self.erased.clone()),
        );
        match tombstone {
            Ok(_) => return Err(WriteError::Erased),
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => {}
            Err(err) => return Err(WriteError::Read(err)),
        }
        match last {
            Ok(message) => Ok(Known {
                seq: message.sequence,
                state: self.admission.read(Some(&message.headers)),
            }),
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => Ok(Known {
                seq: 0,
                state: self.admission.read(None),
            }),
            Err(err) => Err(WriteError::Read(err)),
        }
    }
}

/// How many times [`store`] reads the thread's last user message again when another message
/// got in first.
const MAX_STORE_ATTEMPTS: usize = 10;

/// Stores one user-message event after the thread's last user message; returns its stream
/// sequence. A redrive and `smart-support seed-demo` store user messages this way (the
/// ingress keeps a writer per connection, with its rate limit).
pub async fn store(js: &Context, event: &Envelope) -> anyhow::Result<u64> {
    let chat = js.get_stream_no_info(subjects::CHAT_STREAM).await?;
    let mut writer = UserMessageWriter::new(
        js.clone(),
        Arc::new(chat),
        &event.thread_id,
        AnyMessage,
        MAX_STORE_ATTEMPTS,
    );
    match writer.store(event).await {
        Ok(stored) => Ok(stored.seq),
        Err(WriteError::Refused(never)) => match never {},
        Err(WriteError::Read(err)) => Err(err.into()),
        Err(WriteError::Publish(err)) => Err(err.into()),
        Err(WriteError::Contention { attempts }) => anyhow::bail!(
            "the thread kept receiving messages; {attempts} attempts failed, try again"
        ),
        Err(WriteError::Erased) => anyhow::bail!("the conversation was erased"),
    }
}
