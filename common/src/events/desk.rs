//! Events of the operators' desk: a person takes a conversation over, answers the
//! customer, writes internal notes, and hands it back to the agents. Each names its
//! operator by id and display name (never the email: `operator.replied` reaches the
//! customer). `conversation.assigned`, `operator.replied` and `conversation.released` are
//! published on `chat.<thread_id>.operator`, `note.added` on `chat.<thread_id>.note`
//! (which the ingress never sends to a customer), and `turn.held` by a worker on
//! `chat.<thread_id>.turn`; see docs/events.md.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who did it: the operator's id and display name, carried by every operator event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRef {
    /// The operator's id (`operator.operator_id`); the nil id for the static API token.
    pub operator_id: Uuid,
    /// The operator's display name at the time.
    pub name: String,
}

/// `conversation.assigned`: an operator holds the conversation from now on; the agents do
/// not answer it until it is released or resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationAssigned {
    /// The operator who holds it now.
    #[serde(flatten)]
    pub operator: OperatorRef,
    /// Who assigned it, when not the holder (an admin assigning someone else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_by: Option<OperatorRef>,
}

/// `operator.replied`: the operator who holds the conversation answered the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorReplied {
    /// The reply, as the customer sees it.
    pub text: String,
    #[serde(flatten)]
    pub operator: OperatorRef,
    /// The operator client's id for the reply; a resend with the same id stores nothing new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
}

/// `note.added`: an internal note for operators; never sent to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteAdded {
    pub text: String,
    #[serde(flatten)]
    pub operator: OperatorRef,
}

/// `conversation.released`: the operator handed the conversation back; the agents answer
/// the next customer message again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationReleased {
    #[serde(flatten)]
    pub operator: OperatorRef,
}

/// Why a turn was held for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldReason {
    /// The agents escalated the conversation and no operator has taken it yet.
    Escalated,
    /// An operator holds the conversation.
    Assigned,
}

impl HeldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HeldReason::Escalated => "escalated",
            HeldReason::Assigned => "assigned",
        }
    }
}

/// `turn.held`: a customer message the agents did not answer because a person has the
/// conversation; it closes the message's turn (nothing more is published for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnHeld {
    /// Stream sequence of the message the turn would have answered.
    pub message_seq: u64,
    pub reason: HeldReason,
    /// The operator who holds the conversation, when one does (`operator_id` and `name`
    /// beside the other fields).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anna() -> OperatorRef {
        OperatorRef {
            operator_id: Uuid::from_u128(1),
            name: "Anna".into(),
        }
    }

    #[test]
    fn the_operator_stands_beside_the_fields_and_an_absent_one_is_left_out() {
        let held = TurnHeld {
            message_seq: 7,
            reason: HeldReason::Assigned,
            operator: Some(anna()),
        };
        let json = serde_json::to_value(&held).unwrap();
        assert_eq!(json["name"], "Anna");
        assert_eq!(json["reason"], "assigned");
        assert_eq!(serde_json::from_value::<TurnHeld>(json).unwrap(), held);
        let escalated = TurnHeld {
            message_seq: 7,
            reason: HeldReason::Escalated,
            operator: None,
        };
        let json = serde_json::to_value(&escalated).unwrap();
        assert!(
            json.get("name").is_none() && json.get("operator").is_none(),
            "{json}"
        );
        assert_eq!(serde_json::from_value::<TurnHeld>(json).unwrap(), escalated);
    }
}
