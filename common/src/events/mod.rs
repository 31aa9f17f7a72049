//! The event contract, version 2: one [`Envelope`] around one [`Payload`] kind. Events of
//! version 1 are read through [`upcast`]: every version-1 kind is still a kind here.
//!
//! On the wire an event is a flat JSON object: the envelope fields (`event_id`,
//! `schema_version`, `thread_id`, `turn_id`, `occurred_at`), the `kind` tag, and the
//! kind's own fields beside them. The catalogue with every kind, its subject, who emits
//! it and who consumes it is `docs/events.md`; keep the two in step.
//!
//! Events are immutable facts. A new field is added as optional (`#[serde(default)]`);
//! a change of meaning is a new kind or a new `schema_version`, so streams written by
//! older code keep replaying.

mod chat;
mod desk;
mod erasure;
mod ids;
mod publish;
mod turn;
pub mod upcast;

pub use chat::{MessageReceived, MessageRedriven};
pub use desk::{
    ConversationAssigned, ConversationReleased, HeldReason, NoteAdded, OperatorRef,
    OperatorReplied, TurnHeld,
};
pub use erasure::ConversationErased;
pub use ids::{IdError, ThreadId, TurnId};
pub use publish::publish_of;
pub use turn::{
    AgentReplied, AgentRouted, CallArgs, ConfirmationRequested, ConversationEscalated,
    ConversationResolved, ErrorCategory, Escalation, EscalationReason, PendingAction, Permission,
    TokenUsage, ToolCalled, ToolFailed, ToolSucceeded, TurnCompleted, TurnFailed, TurnOutcome,
    TurnStarted,
};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::subjects;

/// The schema version this code writes. Readers accept every version up to this one,
/// older ones through [`upcast`].
pub const SCHEMA_VERSION: u16 = 2;

/// The envelope every event on the stream is wrapped in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id of this event; also its `Nats-Msg-Id`, so it is derived from the input
    /// (client message id, turn id + step) and a retry publishes the same id.
    pub event_id: Uuid,
    /// Version of the payload's schema (see [`SCHEMA_VERSION`]).
    pub schema_version: u16,
    /// The conversation this event belongs to.
    pub thread_id: ThreadId,
    /// The turn this event belongs to: the user message it answers.
    pub turn_id: TurnId,
    /// When the fact happened (UTC, RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The kind (`kind` tag) and its fields, flattened beside the envelope fields.
    #[serde(flatten)]
    pub payload: Payload,
}

/// Every kind of event, tagged by `kind` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Payload {
    /// A user's chat message, stored by the ingress.
    #[serde(rename = "message.received")]
    MessageReceived(MessageReceived),
    /// An operator redrove a dead-lettered user message.
    #[serde(rename = "message.redriven")]
    MessageRedriven(MessageRedriven),
    /// A worker began the turn that answers a user message.
    #[serde(rename = "turn.started")]
    TurnStarted(TurnStarted),
    /// The agent that answers the turn was chosen.
    #[serde(rename = "agent.routed")]
    AgentRouted(AgentRouted),
    /// The agent calls a tool.
    #[serde(rename = "tool.called")]
    ToolCalled(ToolCalled),
    /// A tool call succeeded.
    #[serde(rename = "tool.succeeded")]
    ToolSucceeded(ToolSucceeded),
    /// A tool call failed.
    #[serde(rename = "tool.failed")]
    ToolFailed(ToolFailed),
    /// The agent asks the user to confirm a write.
    #[serde(rename = "confirmation.requested")]
    ConfirmationRequested(ConfirmationRequested),
    /// A human takes the conversation over.
    #[serde(rename = "conversation.escalated")]
    ConversationEscalated(ConversationEscalated),
    /// The agent's answer to the user.
    #[serde(rename = "agent.replied")]
    AgentReplied(AgentReplied),
    /// The turn ended; nothing more will be published for it.
    #[serde(rename = "turn.completed")]
    TurnCompleted(TurnCompleted),
    /// The message could not be answered; it was dead-lettered.
    #[serde(rename = "turn.failed")]
    TurnFailed(TurnFailed),
    /// An operator resolved the conversation.
    #[serde(rename = "conversation.resolved")]
    ConversationResolved(ConversationResolved),
    /// An operator holds the conversation; the agents step aside.
    #[serde(rename = "conversation.assigned")]
    ConversationAssigned(ConversationAssigned),
    /// The operator who holds the conversation answered the customer.
    #[serde(rename = "operator.replied")]
    OperatorReplied(OperatorReplied),
    /// An internal note (never sent to the customer).
    #[serde(rename = "note.added")]
    NoteAdded(NoteAdded),
    /// The operator handed the conversation back to the agents.
    #[serde(rename = "conversation.released")]
    ConversationReleased(ConversationReleased),
    /// A customer message a person will answer: its turn ends without the agents.
    #[serde(rename = "turn.held")]
    TurnHeld(TurnHeld),
    /// The conversation was erased: a tombstone without content (on `chat.<thread>.erased`).
    #[serde(rename = "conversation.erased")]
    ConversationErased(ConversationErased),
}

/// A tool call as an event states it ([`Payload::tool_call`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallView<'a> {
    pub call_id: &'a str,
    pub tool: &'a str,
    pub params: &'a serde_json::Value,
    /// `None`: the turn refused the call (a tool the agent does not have).
    pub permission: Option<Permission>,
}

/// Why bytes from the stream are not an event this code can read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, an unknown `kind`, a missing field or a field of the wrong type.
    #[error("not a valid event: {0}")]
    Invalid(#[from] serde_json::Error),
    /// Written by newer code than this.
    #[error("event schema version {found} is newer than the supported {SCHEMA_VERSION}")]
    UnsupportedVersion { found: u16 },
}

impl Payload {
    /// The `kind` tag of this payload, as written on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::MessageReceived(_) => "message.received",
            Payload::MessageRedriven(_) => "message.redriven",
            Payload::TurnStarted(_) => "turn.started",
            Payload::AgentRouted(_) => "agent.routed",
            Payload::ToolCalled(_) => "tool.called",
            Payload::ToolSucceeded(_) => "tool.succeeded",
            Payload::ToolFailed(_) => "tool.failed",
            Payload::ConfirmationRequested(_) => "confirmation.requested",
            Payload::ConversationEscalated(_) => "conversation.escalated",
            Payload::AgentReplied(_) => "agent.replied",
            Payload::TurnCompleted(_) => "turn.completed",
            Payload::TurnFailed(_) => "turn.failed",
            Payload::ConversationResolved(_) => "conversation.resolved",
            Payload::ConversationAssigned(_) => "conversation.assigned",
            Payload::OperatorReplied(_) => "operator.replied",
            Payload::NoteAdded(_) => "note.added",
            Payload::ConversationReleased(_) => "conversation.released",
            Payload::TurnHeld(_) => "turn.held",
            Payload::ConversationErased(_) => "conversation.erased",
        }
    }

    /// Whether this is a message the workers answer (`message.received`,
    /// `message.redriven`).
    pub fn is_user_message(&self) -> bool {
        matches!(
            self,
            Payload::MessageReceived(_) | Payload::MessageRedriven(_)
        )
    }

    /// Whether this event ends a turn (`agent.replied` with its outcome, `turn.failed`,
    /// `turn.held`; `turn.completed` in version 1): nothing more is published for the
    /// turn after it.
    pub fn is_terminal(&self) -> bool {
        match self {
            Payload::TurnCompleted(_) | Payload::TurnFailed(_) | Payload::TurnHeld(_) => true,
            Payload::AgentReplied(reply) => reply.end.is_some(),
            _ => false,
        }
    }

    /// How the agents ended a turn: the `agent.replied` that ends it (version 2) or its
    /// `turn.completed` (version 1).
    pub fn completion(&self) -> Option<&TurnCompleted> {
        match self {
            Payload::TurnCompleted(done) => Some(done),
            Payload::AgentReplied(reply) => reply.end.as_ref(),
            _ => None,
        }
    }

    /// The agent a turn was routed to, and why: on its `turn.started` (version 2) or its
    /// `agent.routed` (version 1).
    pub fn routing(&self) -> Option<&AgentRouted> {
        match self {
            Payload::AgentRouted(routed) => Some(routed),
            Payload::TurnStarted(started) => started.routed.as_ref(),
            _ => None,
        }
    }

    /// The tool call this event states: a `tool.called` (either version), or a result that
    /// carries its call (version 2: `params`, and `permission` unless the turn refused it).
    /// A version-1 result, which carries no call, states none.
    pub fn tool_call(&self) -> Option<CallView<'_>> {
        let (call_id, tool, params, permission) = match self {
            Payload::ToolCalled(call) => (
                &call.call_id,
                &call.tool,
                &call.params,
                Some(call.permission),
            ),
            Payload::ToolSucceeded(ToolSucceeded {
                call_id,
                tool,
                call: Some(call),
                ..
            })
            | Payload::ToolFailed(ToolFailed {
                call_id,
                tool,
                call: Some(call),
                ..
            }) => (call_id, tool, &call.params, call.permission),
            _ => return None,
        };
        Some(CallView {
            call_id,
            tool,
            params,
            permission,
        })
    }

    /// The hand-over to a person a turn ended with, and the agent that escalated: on its
    /// `agent.replied` (version 2) or its `conversation.escalated` (version 1).
    pub fn escalation(&self) -> Option<(EscalationReason, &str, &str)> {
        match self {
            Payload::ConversationEscalated(escalated) => Some((
                escalated.reason,
                escalated.detail.as_str(),
                escalated.agent.as_str(),
            )),
            Payload::AgentReplied(AgentReplied {
                escalation: Some(escalation),
                agent,
                ..
            }) => Some((
                escalation.reason,
                escalation.detail.as_str(),
                agent.as_str(),
            )),
            _ => None,
        }
    }
}

impl Envelope {
    /// Wraps a payload in a fresh envelope of the current schema version.
    pub fn new(
        event_id: Uuid,
        thread_id: ThreadId,
        turn_id: TurnId,
        occurred_at: OffsetDateTime,
        payload: impl Into<Payload>,
    ) -> Envelope {
        Envelope {
            event_id,
            schema_version: SCHEMA_VERSION,
            thread_id,
            turn_id,
            occurred_at,
            payload: payload.into(),
        }
    }

    /// A user message typed now in `thread`, with fresh event and turn ids and no client
    /// message id: for tools and tests that write to the stream themselves. (The ingress
    /// derives both ids from the client message id instead, so that a resend is the same
    /// event.)
    pub fn user_message(thread: &ThreadId, content: &str) -> Envelope {
        Envelope::new(
            Uuid::new_v4(),
            thread.clone(),
            TurnId::from_uuid(Uuid::new_v4()),
            OffsetDateTime::now_utc(),
            MessageReceived {
                content: content.to_owned(),
                client_msg_id: None,
                backdated_ms: None,
            },
        )
    }

    /// How far back the events of the turn that answers this message are dated: its
    /// `backdated_ms` (demo data), zero for every other event.
    pub fn backdating(&self) -> time::Duration {
        match &self.payload {
            Payload::MessageReceived(MessageReceived {
                backdated_ms: Some(ms),
                ..
            }) => time::Duration::milliseconds(i64::try_from(*ms).unwrap_or(i64::MAX)),
            _ => time::Duration::ZERO,
        }
    }

    /// The subject this event is published on.
    pub fn subject(&self) -> String {
        match self.payload {
            Payload::MessageReceived(_) | Payload::MessageRedriven(_) => {
                subjects::user_message(&self.thread_id)
            }
            Payload::ConversationResolved(_)
            | Payload::ConversationAssigned(_)
            | Payload::OperatorReplied(_)
            | Payload::ConversationReleased(_) => subjects::operator_event(&self.thread_id),
            Payload::NoteAdded(_) => subjects::note(&self.thread_id),
            Payload::ConversationErased(_) => subjects::erased(&self.thread_id),
            _ => subjects::turn_event(&self.thread_id),
        }
    }

    /// Encodes the event as stored on the stream.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// Decodes an event from the stream, an older version through [`upcast`]; never panics
    /// on bad input.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let envelope: Envelope = serde_json::from_slice(bytes)?;
        upcast::upcast(envelope)
    }
}

/// A deterministic event id for a step of a turn, so a redone turn publishes the same ids
/// and JetStream's duplicate window drops the repeats.
pub fn step_event_id(turn_id: &TurnId, step: &str) -> Uuid {
    Uuid::new_v5(turn_id.as_uuid(), step.as_bytes())
}

macro_rules! payload_from {
    ($($kind:ident),* $(,)?) => {$(
        impl From<$kind> for Payload {
            fn from(value: $kind) -> Payload {
                Payload::$kind(value)
            }
        }
    )*};
}
payload_from!(
    MessageReceived,
    MessageRedriven,
    TurnStarted,
    AgentRouted,
    ToolCalled,
    ToolSucceeded,
    ToolFailed,
    ConfirmationRequested,
    ConversationEscalated,
    AgentReplied,
    TurnCompleted,
    TurnFailed,
    ConversationResolved,
    ConversationAssigned,
    OperatorReplied,
    NoteAdded,
    ConversationReleased,
    TurnHeld,
    ConversationErased,
);

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample() -> Envelope {
        Envelope::new(
            Uuid::from_u128(7),
            ThreadId::parse("t-1").unwrap(),
            TurnId::from_uuid(Uuid::from_u128(9)),
            datetime!(2026-11-25 12:00:00 UTC),
            AgentReplied {
                text: "Hello".into(),
                agent: "general".into(),
                engine: "rules".into(),
                usage: None,
                end: None,
                escalation: None,
            },
        )
    }

    #[test]
    fn an_envelope_survives_a_round_trip() {
        let event = sample();
        assert_eq!(Envelope::from_json(&event.to_json()).unwrap(), event);
    }

    #[test]
    fn kind_fields_sit_beside_the_envelope_fields() {
        let json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        assert_eq!(json["kind"], "agent.replied");
        assert_eq!(json["text"], "Hello");
        assert_eq!(json["thread_id"], "t-1");
        assert_eq!(json["schema_version"], 2);
        assert_eq!(json["occurred_at"], "2026-11-25T12:00:00Z");
    }

    #[test]
    fn an_unknown_kind_is_an_error_not_a_panic() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        json["kind"] = "agent.sang".into();
        let err = Envelope::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("agent.sang"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"null", b"[1,2]", b"{\"kind\":1}", b"\xff\xfe"] {
            assert!(Envelope::from_json(bytes).is_err());
        }
    }

    #[test]
    fn a_newer_schema_version_is_refused() {
        let mut event = sample();
        event.schema_version = SCHEMA_VERSION + 1;
        let err = Envelope::from_json(&event.to_json()).unwrap_err();
        assert!(matches!(err, DecodeError::UnsupportedVersion { found: 3 }));
    }

    #[test]
    fn user_messages_and_turn_events_go_to_their_own_subjects() {
        let reply = sample();
        assert_eq!(reply.subject(), "chat.t-1.turn");
        let message = Envelope {
            payload: MessageReceived {
                content: "hi".into(),
                client_msg_id: None,
                backdated_ms: None,
            }
            .into(),
            ..reply
        };
        assert_eq!(message.subject(), "chat.t-1.user");
    }

    #[test]
    fn step_ids_are_stable_per_turn_and_step() {
        let turn = TurnId::from_uuid(Uuid::from_u128(1));
        assert_eq!(step_event_id(&turn, "reply"), step_event_id(&turn, "reply"));
        assert_ne!(step_event_id(&turn, "reply"), step_event_id(&turn, "start"));
    }
}
