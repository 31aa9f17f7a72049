//! Events the ingress writes on behalf of the user.

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
}
