//! Whether a person has the conversation, so the agents step aside: read from the stream
//! (never from the read models), from two events of the thread:
//! - the last operator event stored before the message (`chat.<thread>.operator`):
//!   `conversation.assigned` or `operator.replied` mean an operator holds it;
//!   `conversation.released` and `conversation.resolved` give it back to the agents. It is
//!   read as soon as the worker has the message ([`OperatorRead`]); one stored after the
//!   message decides only the messages after it ([`mode`]), so every delivery of a message
//!   decides the same;
//! - the previous message's turn closure (the thread's last turn event, which the order
//!   check reads anyway): a turn that escalated, or one held for a person, leaves the
//!   conversation waiting for a person — unless an operator event came after it.
//!
//! A held message's turn is closed by `turn.held` alone (docs/events.md): stored, acked,
//! shown to operators, answered by nobody but a person.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::{FutureExt, StreamExt, TryStreamExt};

use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use common::events::{Envelope, HeldReason, OperatorRef, Payload, ThreadId, TurnOutcome};
use common::subjects;

/// Who answers the next customer message.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The agents.
    Agents,
    /// A person: the message's turn is closed by `turn.held`.
    Held {
        reason: HeldReason,
        operator: Option<OperatorRef>,
    },
}

/// The thread's previous turn closure, as the order check found it: the event and, when
/// it was read from the stream, its sequence.
pub struct Closure<'a> {
    pub event: &'a Envelope,
    pub seq: Option<u64>,
}

/// Whether a closure leaves the conversation waiting for a person.
fn waits_for_a_person(event: &Envelope) -> bool {
    match &event.payload {
        Payload::TurnHeld(_) => true,
        other => other
            .completion()
            .is_some_and(|done| done.outcome == TurnOutcome::Escalated),
    }
}

/// The read of a thread's last operator event, started on a task of its own as soon as the
/// worker has the message, so it runs while the thread's earlier messages are answered
/// instead of adding a JetStream round trip to the turn. Started after the message was
/// stored, it sees every operator event stored before the message (perhaps later ones too,
/// which [`mode`] then looks behind): a message sent after a take-over (or a release) is
/// decided by it. Skipped for a thread
/// that [`OperatorThreads`] knows has no operator event.
pub enum OperatorRead {
    /// The thread has no operator event.
    None,
    /// Started.
    Reading(tokio::task::JoinHandle<Result<Option<(u64, Envelope)>, String>>),
    /// To be read when the turn starts.
    AtTurnStart,
}

impl OperatorRead {
    /// Starts reading the last operator event of the thread of `message_subject` from the
    /// stream `owner` holds, unless `known` says the thread has none.
    pub fn start<S>(
        owner: Arc<S>,
        known: Option<&Arc<OperatorThreads>>,
        message_subject: &str,
    ) -> Self
    where
        S: AsRef<Stream> + Send + Sync + 'static,
    {
        let Some(thread) = subjects::thread_of(message_subject) else {
            return OperatorRead::None;
        };
        if known.is_some_and(|known| !known.may_have(thread)) {
            return OperatorRead::None;
        }
        let subject = subjects::operator_event_of(thread);
        OperatorRead::Reading(tokio::spawn(async move {
            last_operator_event((*owner).as_ref(), subject).await
        }))
    }

    async fn result(
        mut self,
        stream: &Stream,
        thread: &ThreadId,
    ) -> Result<Option<(u64, Envelope)>, String> {
        match &mut self {
            OperatorRead::None => Ok(None),
            OperatorRead::AtTurnStart => {
                last_operator_event(stream, subjects::operator_event(thread)).await
            }
            OperatorRead::Reading(read) => read.await.map_err(|err| {
                format!("the read of the thread's last operator event failed: {err}")
            })?,
        }
    }
}

impl Drop for OperatorRead {
    /// A message that waits or was answered already does not need it.
    fn drop(&mut self) {
        if let OperatorRead::Reading(read) = self {
            read.abort();
        }
    }
}

/// The threads that have an operator event, so that a turn of any other thread (nearly all
/// of them) starts without reading the stream. Known from the stream's subjects when the
/// worker starts, then from a plain subscription to `chat.*.operator` on the connection the
/// worker pulls its messages on: the server sends an operator event to it when the event
/// is published, before the event is stored, so before any customer message stored after
/// it reaches the worker (on one server; in a cluster the event crosses a route, and a
/// message sent within milliseconds of a take-over may still be answered by the agents).
/// After a reconnect (events published meanwhile did not come), every thread is read from
/// the stream until the subjects are known again.
pub struct OperatorThreads {
    client: async_nats::Client,
    stream: Stream,
    state: Mutex<Watch>,
}

struct Watch {
    live: async_nats::Subscriber,
    threads: HashSet<String>,
    /// The client's connect count the threads are known for.
    connects: u64,
    reloading: bool,
}

impl OperatorThreads {
    /// Subscribes, then reads which threads have operator events.
    pub async fn start(client: async_nats::Client, stream: Stream) -> anyhow::Result<Arc<Self>> {
        let live = client.subscribe(subjects::operator_event_of("*")).await?;
        // The subscription is in place before the subjects are read: nothing falls between.
        client.flush().await?;
        let connects = client.statistics().connects.load(Ordering::Relaxed);
        let threads = operator_threads(&stream).await?;
        Ok(Arc::new(OperatorThreads {
            client,
            stream,
            state: Mutex::new(Watch {
                live,
                threads,
                connects,
                reloading: false,
            }),
        }))
    }

    /// Whether `thread` may have an operator event (false: it has none).
    pub fn may_have(self: &Arc<Self>, thread: &str) -> bool {
        let mut watch = self.state.lock().expect("operator threads lock");
        while let Some(Some(event)) = watch.live.next().now_or_never() {
            if let Some(thread) = subjects::thread_of(&event.subject) {
                watch.threads.insert(thread.to_owned());
            }
        }
        let connects = self.client.statistics().connects.load(Ordering::Relaxed);
        if connects != watch.connects && !watch.reloading {
            watch.reloading = true;
            tokio::spawn(self.clone().reload(connects));
        }
        watch.reloading || watch.threads.contains(thread)
    }

    async fn reload(self: Arc<Self>, connects: u64) {
        loop {
            match operator_threads(&self.stream).await {
                Ok(threads) => {
                    let mut watch = self.state.lock().expect("operator threads lock");
                    watch.threads.extend(threads);
                    watch.connects = connects;
                    watch.reloading = false;
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read which threads have operator events; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// The threads with an operator event in the stream.
async fn operator_threads(stream: &Stream) -> anyhow::Result<HashSet<String>> {
    let mut subjects = stream
        .info_with_subjects(subjects::operator_event_of("*"))
        .await?;
    let mut threads = HashSet::new();
    while let Some((subject, _)) = subjects.try_next().await? {
        if let Some(thread) = subjects::thread_of(&subject) {
            threads.insert(thread.to_owned());
        }
    }
    Ok(threads)
}

/// The mode for the message stored at `message_seq` in `thread`, given its previous turn
/// closure and the read of its last operator event.
///
/// Only what was stored before the message counts: an operator event stored after it (a
/// take-over while the message waited for a worker) decides the messages after it, not this
/// one. Every delivery of the message, however late, therefore decides the same, and so
/// stores the same events with the same ids (docs/events.md "Event ids"): a worker frozen
/// with its turn still in its connection cannot give the message a second, different ending
/// (`turn.held` beside the agents' turn), since JetStream drops the later copy of each event.
pub async fn mode(
    stream: &Stream,
    thread: &ThreadId,
    message_seq: u64,
    closure: Option<Closure<'_>>,
    operator: OperatorRead,
) -> Result<Mode, String> {
    let operator = match operator.result(stream, thread).await? {
        Some((seq, _)) if seq > message_seq => {
            operator_event_before(stream, subjects::operator_event(thread), message_seq).await?
        }
        read => read,
    };
    let escalated = closure.as_ref().filter(|c| waits_for_a_person(c.event));
    Ok(decide(
        operator.as_ref().map(|(seq, event)| (*seq, event)),
        match escalated {
            // The closure's sequence decides against an operator event; when it was taken
            // from this process's memory it is read again (rare: an escalated thread).
            Some(c) => Some(match c.seq {
                Some(seq) => seq,
                None => last_turn_seq(stream, thread).await?,
            }),
            None => None,
        },
    ))
}

/// The decision, without I/O: the last operator event with its sequence, and the sequence
/// of the previous turn closure when that closure left the conversation waiting for a
/// person.
pub fn decide(operator: Option<(u64, &Envelope)>, escalated_at: Option<u64>) -> Mode {
    let escalated = Mode::Held {
        reason: HeldReason::Escalated,
        operator: None,
    };
    let Some((operator_seq, event)) = operator else {
        return if escalated_at.is_some() {
            escalated
        } else {
            Mode::Agents
        };
    };
    match &event.payload {
        Payload::ConversationAssigned(assigned) => Mode::Held {
            reason: HeldReason::Assigned,
            operator: Some(assigned.operator.clone()),
        },
        Payload::OperatorReplied(replied) => Mode::Held {
            reason: HeldReason::Assigned,
            operator: Some(replied.operator.clone()),
        },
        // Released or resolved: the agents answer, unless they escalated again since.
        _ => match escalated_at {
            Some(seq) if seq > operator_seq => escalated,
            _ => Mode::Agents,
        },
    }
}

/// The thread's last operator event and its sequence (`None`: there is none, or it does not
/// decode).
async fn last_operator_event(
    stream: &Stream,
    subject: String,
) -> Result<Option<(u64, Envelope)>, String> {
    match stream.direct_get_last_for_subject(subject).await {
        Ok(message) => Ok(Envelope::from_json(&message.payload)
            .ok()
            .map(|event| (message.sequence, event))),
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!(
            "cannot read the thread's last operator event: {err}"
        )),
    }
}

/// The thread's last operator event stored before `before` (rare: an operator acted between
/// the message and its turn). A thread has few operator events: they are read in order.
async fn operator_event_before(
    stream: &Stream,
    subject: String,
    before: u64,
) -> Result<Option<(u64, Envelope)>, String> {
    crate::consumer::order::events_before(stream, &subject, before)
        .await
        .map(|mut events| events.pop())
        .map_err(|err| format!("cannot read the thread's operator events: {err}"))
}

/// The sequence of the thread's last turn event (0 when none).
async fn last_turn_seq(stream: &Stream, thread: &ThreadId) -> Result<u64, String> {
    match stream
        .direct_get_last_for_subject(subjects::turn_event(thread))
        .await
    {
        Ok(message) => Ok(message.sequence),
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => Ok(0),
        Err(err) => Err(format!("cannot read the thread's last turn event: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use common::events::{
        ConversationAssigned, ConversationReleased, ConversationResolved, OperatorReplied, TurnId,
    };
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    fn anna() -> OperatorRef {
        OperatorRef {
            operator_id: Uuid::from_u128(1),
            name: "Anna".into(),
        }
    }

    fn event(payload: impl Into<Payload>) -> Envelope {
        Envelope::new(
            Uuid::new_v4(),
            ThreadId::parse("t").unwrap(),
            TurnId::from_uuid(Uuid::new_v4()),
            OffsetDateTime::now_utc(),
            payload,
        )
    }

    fn held(reason: HeldReason, operator: Option<OperatorRef>) -> Mode {
        Mode::Held { reason, operator }
    }

    #[test]
    fn without_operator_events_the_agents_answer_unless_they_escalated() {
        assert_eq!(decide(None, None), Mode::Agents);
        assert_eq!(decide(None, Some(5)), held(HeldReason::Escalated, None));
    }

    #[test]
    fn an_assigned_or_answering_operator_holds_the_conversation() {
        let assigned = event(ConversationAssigned {
            operator: anna(),
            assigned_by: None,
        });
        let replied = event(OperatorReplied {
            text: "hi".into(),
            operator: anna(),
            client_msg_id: None,
        });
        for operator in [&assigned, &replied] {
            assert_eq!(
                decide(Some((9, operator)), None),
                held(HeldReason::Assigned, Some(anna()))
            );
            assert_eq!(
                decide(Some((9, operator)), Some(20)),
                held(HeldReason::Assigned, Some(anna()))
            );
        }
    }

    #[test]
    fn a_release_or_resolve_gives_the_conversation_back_unless_the_agents_escalated_after_it() {
        let released = event(ConversationReleased { operator: anna() });
        let resolved = event(ConversationResolved {
            resolved_by: "operator".into(),
            operator: Some(anna()),
            note: None,
        });
        for operator in [&released, &resolved] {
            assert_eq!(decide(Some((9, operator)), None), Mode::Agents);
            assert_eq!(decide(Some((9, operator)), Some(5)), Mode::Agents);
            assert_eq!(
                decide(Some((9, operator)), Some(12)),
                held(HeldReason::Escalated, None)
            );
        }
    }
}
