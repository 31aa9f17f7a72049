//! Whether a person has the conversation, so the agents step aside: read from the stream
//! before a turn starts (never from the read models), from two events of the thread:
//! - the last operator event (`chat.<thread>.operator`): `conversation.assigned` or
//!   `operator.replied` mean an operator holds it; `conversation.released` and
//!   `conversation.resolved` give it back to the agents;
//! - the previous message's turn closure (the thread's last turn event, which the order
//!   check reads anyway): a turn that escalated, or one held for a person, leaves the
//!   conversation waiting for a person — unless an operator event came after it.
//!
//! A held message's turn is closed by `turn.held` alone (docs/events.md): stored, acked,
//! shown to operators, answered by nobody but a person.

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
        Payload::TurnCompleted(done) => done.outcome == TurnOutcome::Escalated,
        Payload::TurnHeld(_) => true,
        _ => false,
    }
}

/// The mode for the next message of `thread`, given its previous turn closure.
pub async fn mode(
    stream: &Stream,
    thread: &ThreadId,
    closure: Option<Closure<'_>>,
) -> Result<Mode, String> {
    let operator = last_operator_event(stream, thread).await?;
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
    thread: &ThreadId,
) -> Result<Option<(u64, Envelope)>, String> {
    match stream
        .direct_get_last_for_subject(subjects::operator_event(thread))
        .await
    {
        Ok(message) => Ok(Envelope::from_json(&message.payload)
            .ok()
            .map(|event| (message.sequence, event))),
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!(
            "cannot read the thread's last operator event: {err}"
        )),
    }
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
