//! One agent turn: given the user message, decide what happens and return the events to
//! publish. No I/O but the engine call, so a test says "given this message, expect these
//! events". Every event id is derived from the turn id and the step, so a redone turn
//! publishes the same ids and JetStream drops the repeats.

use common::events::{
    AgentReplied, Envelope, MessageReceived, Payload, TurnCompleted, TurnOutcome, TurnStarted,
    step_event_id,
};
use time::OffsetDateTime;

use crate::agents::{AgentCard, Engine, EngineError, Step, TurnView};

/// A user message as the worker received it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The `message.received` envelope.
    pub event: Envelope,
    /// Its stream sequence.
    pub seq: u64,
}

/// Why a stream message cannot be a turn.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The event is not a user message (a worker's filter should never deliver one).
    #[error("expected message.received, got {0}")]
    NotAUserMessage(&'static str),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Runs the turn that answers `incoming` and returns its events in publish order.
pub async fn run(
    engine: &dyn Engine,
    incoming: &Incoming,
    now: impl Fn() -> OffsetDateTime,
) -> Result<Vec<Envelope>, TurnError> {
    let Payload::MessageReceived(MessageReceived { content, .. }) = &incoming.event.payload else {
        return Err(TurnError::NotAUserMessage(incoming.event.payload.kind()));
    };
    let message = &incoming.event;
    let event = |step: &str, at: OffsetDateTime, payload: Payload| {
        Envelope::new(
            step_event_id(&message.turn_id, step),
            message.thread_id.clone(),
            message.turn_id,
            at,
            payload,
        )
    };
    let started = event(
        "started",
        now(),
        TurnStarted {
            message_seq: incoming.seq,
        }
        .into(),
    );
    let agent = engine
        .choose_agent(&[], content)
        .await?
        .unwrap_or_else(|| "general".into());
    let card = AgentCard {
        name: agent.clone(),
        description: String::new(),
        instructions: String::new(),
    };
    let view = TurnView {
        agent: &card,
        tools: &[],
        message: content,
        calls: &[],
    };
    let Step::Reply(text) = engine.next_step(view).await? else {
        return Err(TurnError::Engine(EngineError::Permanent(
            "no tools yet".into(),
        )));
    };
    let reply = crate::agents::rules::Reply { agent, text };
    let replied_at = now();
    let latency_ms = (replied_at - message.occurred_at)
        .whole_milliseconds()
        .clamp(0, i128::from(u64::MAX)) as u64;
    Ok(vec![
        started,
        event(
            "replied",
            replied_at,
            AgentReplied {
                text: reply.text,
                agent: reply.agent,
                engine: engine.name().into(),
            }
            .into(),
        ),
        event(
            "completed",
            now(),
            TurnCompleted {
                outcome: TurnOutcome::Replied,
                latency_ms,
                message_seq: incoming.seq,
                pending: None,
            }
            .into(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::RuleEngine;
    use common::events::{ThreadId, TurnId};
    use time::macros::datetime;

    fn incoming(content: &str) -> Incoming {
        Incoming {
            event: Envelope::new(
                uuid_from(1),
                ThreadId::parse("t").unwrap(),
                TurnId::from_uuid(uuid_from(2)),
                datetime!(2026-11-25 10:00:00 UTC),
                MessageReceived {
                    content: content.into(),
                    client_msg_id: None,
                },
            ),
            seq: 41,
        }
    }

    fn uuid_from(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    fn at() -> OffsetDateTime {
        datetime!(2026-11-25 10:00:00.250 UTC)
    }

    #[tokio::test]
    async fn a_user_message_gets_started_replied_and_completed_in_that_order() {
        let events = run(&RuleEngine, &incoming("where is my order?"), at)
            .await
            .unwrap();
        let kinds: Vec<_> = events.iter().map(|e| e.payload.kind()).collect();
        assert_eq!(kinds, ["turn.started", "agent.replied", "turn.completed"]);
        assert!(
            events
                .iter()
                .all(|e| e.turn_id == incoming("").event.turn_id)
        );
        let Payload::AgentReplied(reply) = &events[1].payload else {
            panic!()
        };
        assert_eq!(reply.agent, "orders");
        assert_eq!(reply.engine, "rules");
        let Payload::TurnStarted(started) = &events[0].payload else {
            panic!()
        };
        assert_eq!(started.message_seq, 41);
        let Payload::TurnCompleted(done) = &events[2].payload else {
            panic!()
        };
        assert_eq!(done.latency_ms, 250);
    }

    #[tokio::test]
    async fn a_redone_turn_produces_the_same_event_ids() {
        let first = run(&RuleEngine, &incoming("hi"), at).await.unwrap();
        let again = run(&RuleEngine, &incoming("hi"), OffsetDateTime::now_utc)
            .await
            .unwrap();
        let ids = |events: &[Envelope]| events.iter().map(|e| e.event_id).collect::<Vec<_>>();
        assert_eq!(ids(&first), ids(&again));
    }

    #[tokio::test]
    async fn a_turn_event_is_not_answered() {
        let events = run(&RuleEngine, &incoming("hi"), at).await.unwrap();
        let not_a_message = Incoming {
            event: events[1].clone(),
            seq: 42,
        };
        let err = run(&RuleEngine, &not_a_message, at).await.unwrap_err();
        assert!(matches!(err, TurnError::NotAUserMessage("agent.replied")));
    }
}
