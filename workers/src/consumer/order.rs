//! The order protocol: may this message start its turn? A thread's user messages form a
//! chain (`Smart-Support-Previous-Seq`), and a message starts only once the thread's last
//! turn event ends the turn of the message it names (docs/events.md, "Order of a thread's
//! turns"). Also the reads of a thread's turn subject that [`super::step`] makes.

use std::collections::HashMap;
use std::sync::Mutex;

use async_nats::HeaderMap;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use common::events::{Envelope, Payload, PendingAction, ThreadId};
use common::subjects;

/// The last turn this process ended in each thread: the sequence of the message it
/// answered and the event that ended it (as stored: its PubAck came back).
///
/// A thread's next message names that sequence as its previous one. If it comes here on
/// its first delivery, nothing else can have written a turn event for the thread since:
/// another worker would need a later message, which waits for this one, and an earlier
/// delivery of this message would have made this one the second. So the stored event is
/// the thread's last turn event, and the turn starts without reading it back (a direct
/// get, one JetStream round trip per turn). Anything else reads the stream as before
/// (`workers/tests/workers/redelivery.rs` shows why a later delivery must).
#[derive(Default)]
pub(super) struct Ended(Mutex<HashMap<String, (u64, Envelope, u64)>>);

impl Ended {
    /// Threads remembered at most; past it the memory starts over (a miss costs one read).
    const CAPACITY: usize = 50_000;

    /// `terminal` ended the turn of the message at `message_seq`; it is stored at
    /// `terminal_seq`.
    pub(super) fn remember(
        &self,
        thread: &ThreadId,
        message_seq: u64,
        terminal: Envelope,
        terminal_seq: u64,
    ) {
        let mut ended = self.0.lock().expect("ended lock");
        if ended.len() >= Self::CAPACITY {
            ended.clear();
        }
        ended.insert(thread.to_string(), (message_seq, terminal, terminal_seq));
    }

    /// The event that ended the turn of `previous`, and its stream sequence, if this
    /// process ended it.
    pub(super) fn take(&self, thread: &ThreadId, previous: u64) -> Option<(Envelope, u64)> {
        let mut ended = self.0.lock().expect("ended lock");
        match ended.remove(thread.as_str()) {
            Some((seq, terminal, stored)) if seq == previous => Some((terminal, stored)),
            _ => None,
        }
    }
}

/// The sequence of the thread's previous user message, from the header.
pub(super) fn previous_seq(headers: Option<&HeaderMap>) -> Option<u64> {
    headers?
        .get(subjects::PREVIOUS_SEQ_HEADER)?
        .as_str()
        .parse()
        .ok()
        .filter(|&seq| seq > 0)
}

/// Whether `event` ends the turn of the message at `seq` or of a later one.
fn ends_turn_of(event: &Envelope, seq: u64) -> bool {
    match &event.payload {
        Payload::TurnFailed(failed) => failed.message_seq >= seq,
        Payload::TurnHeld(held) => held.message_seq >= seq,
        // 0: written before turn events named their message; it cannot block a thread.
        other => other
            .completion()
            .is_some_and(|done| done.message_seq >= seq || done.message_seq == 0),
    }
}

/// Whether `event` belongs to the turn of a message stored after the one at `seq`: the
/// thread went past that message, which was therefore answered (or is being answered)
/// elsewhere, however late this delivery of it runs (a worker frozen before it read the
/// thread, even on a first delivery).
pub(super) fn is_of_a_later_message(event: &Envelope, seq: u64) -> bool {
    let of = match &event.payload {
        Payload::TurnStarted(started) => started.message_seq,
        Payload::TurnFailed(failed) => failed.message_seq,
        Payload::TurnHeld(held) => held.message_seq,
        other => match other.completion() {
            Some(done) => done.message_seq,
            None => return false,
        },
    };
    of > seq
}

/// The last event on a thread's turn subject.
#[derive(Debug)]
// One per message in hand, moved once: boxing would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Last {
    /// The thread has no turn event yet.
    Nothing,
    /// The last one does not decode (garbage, or written by newer code).
    Unreadable,
    /// The event, and its stream sequence (`None` only where none is known).
    Event(Envelope, Option<u64>),
}

impl Last {
    pub(super) fn event(&self) -> Option<&Envelope> {
        match self {
            Last::Event(event, _) => Some(event),
            Last::Nothing | Last::Unreadable => None,
        }
    }

    pub(super) fn into_event(self) -> Option<Envelope> {
        match self {
            Last::Event(event, _) => Some(event),
            Last::Nothing | Last::Unreadable => None,
        }
    }

    /// Whether a message whose previous one is at `previous` may start its turn.
    pub(super) fn lets_start_after(&self, previous: u64) -> bool {
        match self {
            Last::Nothing => false,
            // Order cannot be checked against what this code cannot read; blocking the
            // thread for good would be worse than answering.
            Last::Unreadable => {
                tracing::warn!("the thread's last turn event does not decode; not waiting for it");
                true
            }
            Last::Event(event, _) => ends_turn_of(event, previous),
        }
    }
}

/// The write a finished turn left waiting for the user's answer.
pub(super) fn pending_of(event: Envelope) -> Option<PendingAction> {
    event
        .payload
        .completion()
        .and_then(|done| done.pending.clone())
}

/// The thread's last turn event.
pub(super) async fn last_turn_event(stream: &Stream, thread: &ThreadId) -> Result<Last, String> {
    match stream
        .direct_get_last_for_subject(subjects::turn_event(thread))
        .await
    {
        Ok(message) => Ok(match Envelope::from_json(&message.payload) {
            Ok(event) => Last::Event(event, Some(message.sequence)),
            Err(_) => Last::Unreadable,
        }),
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => Ok(Last::Nothing),
        Err(err) => Err(format!("cannot read the thread's last turn event: {err}")),
    }
}

/// The events of this message's turn an earlier delivery stored: the thread's turn
/// events after the message, of this turn id.
pub(super) async fn turn_events(
    stream: &Stream,
    event: &Envelope,
    seq: u64,
) -> Result<Vec<Envelope>, String> {
    let subject = subjects::turn_event(&event.thread_id);
    let mut found = Vec::new();
    let mut next = seq + 1;
    loop {
        let message = match stream
            .direct_get_next_for_subject(subject.as_str(), Some(next))
            .await
        {
            Ok(message) => message,
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => return Ok(found),
            Err(err) => return Err(format!("cannot read the turn's events: {err}")),
        };
        next = message.sequence + 1;
        if let Ok(stored) = Envelope::from_json(&message.payload)
            && stored.turn_id == event.turn_id
        {
            let terminal = stored.payload.is_terminal();
            found.push(stored);
            if terminal {
                return Ok(found);
            }
        }
    }
}

/// The conversation before a message: every event of its thread stored before it (its
/// user messages, turn events, operator events; notes are left out later), read with
/// direct gets on `chat.<thread>.>`. The same on every delivery of the message, whatever
/// happened in the thread since, so a redelivery asks the model the same question.
#[derive(Debug)]
pub(super) struct ThreadHistory {
    pub(super) stream: Stream,
    pub(super) thread: ThreadId,
    /// The message's stream sequence: events from here on are not read.
    pub(super) before: u64,
}

impl crate::turn::History for ThreadHistory {
    fn read(&self) -> crate::agents::BoxFuture<'_, Result<Vec<Envelope>, String>> {
        Box::pin(thread_before(&self.stream, &self.thread, self.before))
    }
}

/// Every decodable event of `thread` stored before `before`, in stream order.
pub(super) async fn thread_before(
    stream: &Stream,
    thread: &ThreadId,
    before: u64,
) -> Result<Vec<Envelope>, String> {
    let events = events_before(stream, &subjects::thread_events(thread), before)
        .await
        .map_err(|err| format!("cannot read the thread's events: {err}"))?;
    Ok(events.into_iter().map(|(_, event)| event).collect())
}

/// Every decodable event on `subject` (a wildcard too) stored before `before`, with its
/// sequence, in stream order: one direct get after the other.
pub(crate) async fn events_before(
    stream: &Stream,
    subject: &str,
    before: u64,
) -> Result<Vec<(u64, Envelope)>, async_nats::jetstream::stream::DirectGetError> {
    let mut found = Vec::new();
    let mut next = 1;
    while next < before {
        let message = match stream
            .direct_get_next_for_subject(subject, Some(next))
            .await
        {
            Ok(message) => message,
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => break,
            Err(err) => return Err(err),
        };
        if message.sequence >= before {
            break;
        }
        next = message.sequence + 1;
        if let Ok(event) = Envelope::from_json(&message.payload) {
            found.push((message.sequence, event));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::events::TurnId;
    use time::OffsetDateTime;
    use uuid::Uuid;

    #[test]
    fn only_the_end_of_the_previous_turn_or_a_later_one_lets_a_message_start() {
        let thread = ThreadId::parse("t").unwrap();
        let turn = TurnId::from_uuid(Uuid::from_u128(1));
        let event = |payload: Payload| Envelope {
            event_id: Uuid::from_u128(2),
            schema_version: 1,
            thread_id: thread.clone(),
            turn_id: turn,
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            payload,
        };
        let completed = |seq| {
            event(Payload::TurnCompleted(common::events::TurnCompleted {
                outcome: common::events::TurnOutcome::Replied,
                latency_ms: 1,
                message_seq: seq,
                pending: None,
            }))
        };
        assert!(ends_turn_of(&completed(7), 7));
        assert!(ends_turn_of(&completed(9), 7));
        assert!(!ends_turn_of(&completed(5), 7));
        let started = event(Payload::TurnStarted(common::events::TurnStarted {
            message_seq: 7,
            confirming: None,
            routed: None,
        }));
        assert!(!ends_turn_of(&started, 7));
        // Version 2: the reply that carries the turn's end ends it; one without does not.
        let replied = |end| {
            event(Payload::AgentReplied(common::events::AgentReplied {
                text: "hi".into(),
                agent: "general".into(),
                engine: "rules".into(),
                usage: None,
                end,
                escalation: None,
            }))
        };
        let Payload::TurnCompleted(end) = completed(7).payload else {
            unreachable!()
        };
        assert!(ends_turn_of(&replied(Some(end)), 7));
        assert!(!ends_turn_of(&replied(None), 7));
        // A turn.completed from before the field existed does not hold a thread up.
        assert!(ends_turn_of(&completed(0), 7));
        assert!(Last::Unreadable.lets_start_after(7));
        assert!(!Last::Nothing.lets_start_after(7));
    }

    #[test]
    fn the_write_waiting_for_a_yes_is_read_from_either_versions_end_of_turn() {
        let pending = common::events::PendingAction {
            agent: "orders".into(),
            tool: "cancelOrder".into(),
            params: serde_json::json!({"order_id": "ORD-1"}),
        };
        let end = common::events::TurnCompleted {
            outcome: common::events::TurnOutcome::AwaitingConfirmation,
            latency_ms: 1,
            message_seq: 7,
            pending: Some(pending.clone()),
        };
        let event = |payload: Payload| {
            Envelope::new(
                Uuid::from_u128(2),
                ThreadId::parse("t").unwrap(),
                TurnId::from_uuid(Uuid::from_u128(1)),
                OffsetDateTime::UNIX_EPOCH,
                payload,
            )
        };
        let v1 = event(Payload::TurnCompleted(end.clone()));
        let v2 = event(Payload::AgentReplied(common::events::AgentReplied {
            text: "Shall I cancel ORD-1?".into(),
            agent: "orders".into(),
            engine: "rules".into(),
            usage: None,
            end: Some(end),
            escalation: None,
        }));
        assert_eq!(pending_of(v1), Some(pending.clone()));
        assert_eq!(pending_of(v2), Some(pending));
    }
}
