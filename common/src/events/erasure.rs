//! `conversation.erased`: the tombstone an erasure leaves on `chat.<thread_id>.erased` after
//! it removed the thread's events from the stream and its dead letters (see
//! `common::erasure` and docs/events.md). It carries who erased the conversation and when (the
//! envelope's `occurred_at`), and nothing of what was said, so the projector folds it the same
//! way live and in a rebuild: the thread's rows leave every table.

use serde::{Deserialize, Serialize};

use crate::events::OperatorRef;

/// `conversation.erased`: the conversation was erased on request or by retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationErased {
    /// `operator` (through the REST API: an operator, or the static API token as the nil
    /// operator), `cli` (`smart-support erase`) or `retention` (`CONVERSATION_RETENTION`).
    pub erased_by: String,
    /// The operator who erased it (REST only; `operator_id` and `name` beside the fields).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorRef>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_tombstone_names_who_and_nothing_else() {
        let erased = ConversationErased {
            erased_by: "operator".into(),
            operator: Some(OperatorRef {
                operator_id: Uuid::nil(),
                name: "API token".into(),
            }),
        };
        let json = serde_json::to_value(&erased).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"erased_by": "operator", "operator_id": Uuid::nil(), "name": "API token"})
        );
        assert_eq!(
            serde_json::from_value::<ConversationErased>(json).unwrap(),
            erased
        );
        let by_retention = ConversationErased {
            erased_by: "retention".into(),
            operator: None,
        };
        assert_eq!(
            serde_json::to_value(&by_retention).unwrap(),
            serde_json::json!({"erased_by": "retention"})
        );
    }
}
