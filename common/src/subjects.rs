//! Every stream, subject and consumer name of the pipeline, in one place.
//!
//! ```text
//! stream CHAT   chat.<thread_id>.user   message.received        (ingress → workers, projectors)
//!               chat.<thread_id>.turn   turn.* / agent.* / tool.* (workers → ingress, projectors)
//!               chat.<thread_id>.operator conversation.* / operator.replied (REST → ingress, workers, projectors)
//!               chat.<thread_id>.note   note.added              (REST → projectors, the desk; never a customer)
//!               chat.<thread_id>.erased conversation.erased     (REST, CLI, retention → projectors, ingress, workers)
//! stream DEAD_LETTERS  dead.<thread_id>    user messages that could not be answered (workers → operators)
//! ```
//! A thread id is one subject token (see [`crate::events::ThreadId`]), so the events of one
//! conversation are `chat.<thread_id>.>` and a consumer can follow one thread alone.

use crate::events::ThreadId;

/// The stream that is the log of every chat event.
pub const CHAT_STREAM: &str = "CHAT";
/// The subjects the chat stream captures.
pub const CHAT_SUBJECTS: &str = "chat.>";
/// Filter of the user messages the workers answer.
pub const USER_MESSAGES: &str = "chat.*.user";
/// Durable consumer the workers share.
pub const WORKERS_CONSUMER: &str = "workers";
/// The stream of dead letters: user messages the workers gave up on.
pub const DEAD_LETTER_STREAM: &str = "DEAD_LETTERS";
/// The subjects the dead-letter stream captures.
pub const DEAD_LETTER_SUBJECTS: &str = "dead.>";
/// The KV bucket of the published tools (its stream is `KV_TOOLS`, its subjects `$KV.TOOLS.>`).
pub const TOOLS_BUCKET: &str = "TOOLS";
/// The tombstones of erased conversations (`conversation.erased`), of every thread: what an
/// eraser (the API's and the CLI's NATS user) publishes beside its deletes.
pub const ERASED_EVENTS: &str = "chat.*.erased";
/// Durable consumer of the conversation projector.
pub const PROJECTOR_CONSUMER: &str = "projector";

/// Header of a user message (`chat.<thread>.user`) with the stream sequence of the
/// thread's previous user message, absent for the first. Whoever stores a user message
/// (the ingress, a redrive) stores it with `Nats-Expected-Last-Subject-Sequence` set to the
/// same number, so the chain has no gap; a worker answers a message only after the turn of
/// the previous one has ended, which keeps a thread's turns in order across workers.
pub const PREVIOUS_SEQ_HEADER: &str = "Smart-Support-Previous-Seq";

/// Subject of a user message of this thread.
pub fn user_message(thread: &ThreadId) -> String {
    format!("chat.{thread}.user")
}

/// Subject of the worker's turn events of this thread.
pub fn turn_event(thread: &ThreadId) -> String {
    format!("chat.{thread}.turn")
}

/// Subject of the pieces of a reply while a model writes it (`delta.<thread>`): core NATS
/// only, outside every stream (`chat.>`, `dead.>`), so nothing of it is ever stored. The
/// payload is the WebSocket frame itself: `{"type":"delta","turn_id":…,"text":…}`.
pub fn reply_delta(thread: &ThreadId) -> String {
    format!("delta.{thread}")
}

/// Every thread's reply pieces (what the ingress subscribes to).
pub const REPLY_DELTAS: &str = "delta.*";

/// The thread token of a [`reply_delta`] subject.
pub fn thread_of_delta(subject: &str) -> Option<&str> {
    subject
        .strip_prefix("delta.")
        .filter(|token| !token.is_empty() && !token.contains('.'))
}

/// Subject of a dead letter of this thread (`dead.<thread>`; `dead._` when the failed
/// message's subject names no thread).
pub fn dead_letter(thread: Option<&str>) -> String {
    format!("dead.{}", thread.unwrap_or("_"))
}

/// Subject of an operator's event about this thread (`conversation.resolved`).
pub fn operator_event(thread: &ThreadId) -> String {
    operator_event_of(thread.as_str())
}

/// [`operator_event`] of a thread id as a subject token (e.g. from [`thread_of`]).
pub fn operator_event_of(thread: &str) -> String {
    format!("chat.{thread}.operator")
}

/// Subject of an operator's internal note about this thread: never sent to a customer
/// (see [`reaches_customer`]).
pub fn note(thread: &ThreadId) -> String {
    format!("chat.{thread}.note")
}

/// Subject of the tombstone of an erased conversation (`conversation.erased`): the one
/// subject of the thread an erasure keeps (see [`is_erasable`]).
pub fn erased(thread: &ThreadId) -> String {
    format!("chat.{thread}.erased")
}

/// Whether an event stored on `subject` is content an erasure removes: every chat subject
/// of the thread but its tombstones.
pub fn is_erasable(subject: &str) -> bool {
    !subject.ends_with(".erased")
}

/// Whether an event stored on `subject` may be sent to the customer's WebSocket: every
/// chat event but the operators' internal notes. The live tail and the resume both ask.
pub fn reaches_customer(subject: &str) -> bool {
    !subject.ends_with(".note")
}

/// Filter for every event of one thread.
pub fn thread_events(thread: &ThreadId) -> String {
    format!("chat.{thread}.>")
}

/// The thread token of a chat subject (`chat.<thread_id>.…`), without allocating.
pub fn thread_of(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix("chat.")?;
    rest.split('.').next().filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_is_read_back_from_a_subject() {
        let thread = ThreadId::parse("abc").unwrap();
        assert_eq!(thread_of(&user_message(&thread)), Some("abc"));
        assert_eq!(thread_of(&turn_event(&thread)), Some("abc"));
        assert_eq!(thread_of("other.abc.user"), None);
    }

    #[test]
    fn a_note_never_reaches_the_customer_and_every_other_event_does() {
        let thread = ThreadId::parse("abc").unwrap();
        assert!(!reaches_customer(&note(&thread)));
        assert!(reaches_customer(&user_message(&thread)));
        assert!(reaches_customer(&turn_event(&thread)));
        assert!(reaches_customer(&operator_event(&thread)));
    }

    #[test]
    fn an_erasure_removes_every_subject_of_a_thread_but_its_tombstone() {
        let thread = ThreadId::parse("abc").unwrap();
        for content in [
            user_message(&thread),
            turn_event(&thread),
            operator_event(&thread),
            note(&thread),
        ] {
            assert!(is_erasable(&content), "{content}");
        }
        assert!(!is_erasable(&erased(&thread)));
        assert_eq!(thread_of(&erased(&thread)), Some("abc"));
    }
}
