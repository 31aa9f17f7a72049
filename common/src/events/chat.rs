//! Events the ingress writes on behalf of the user, and the redrive of a dead letter.

use serde::{Deserialize, Serialize};

/// `message.received`: a user's chat message, stored once JetStream acknowledged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageReceived {
    /// The message text: non-empty after trimming, at most 10000 characters.
    pub content: String,
    /// The client's own id for the message, when it sent one; a resend with the same id
    /// is dropped by JetStream's duplicate window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// Demo data only: the message is dated this many milliseconds before it was stored,
    /// and the worker dates its turn's events back by as much, so the turn keeps its real
    /// duration. `smart-support seed-demo` sets it to spread the demo conversations over
    /// past days, publishing straight to the stream; the ingress never sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backdated_ms: Option<u64>,
}

/// `message.redriven`: an operator sent a dead-lettered user message back to the workers.
/// It is answered like a user message, with a turn of its own (`turn_id` is new), but it
/// is not a new message from the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRedriven {
    /// The original message's text.
    pub content: String,
    /// Stream sequence of the original `message.received`.
    pub original_seq: u64,
    /// Id of the dead letter that was redriven.
    pub dead_letter_id: u64,
}
