//! Events a worker writes while it runs one agent turn.

use serde::{Deserialize, Serialize};

/// `turn.started`: a worker took the user message and began answering it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnStarted {
    /// Stream sequence of the `message.received` event this turn answers.
    pub message_seq: u64,
}

/// `agent.replied`: the agent's answer, shown to the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReplied {
    /// The reply text.
    pub text: String,
    /// Name of the agent that answered (from the agents config).
    pub agent: String,
    /// The engine that produced the reply (`rules` or `openai`).
    pub engine: String,
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    /// The agent replied.
    Replied,
}

/// `turn.completed`: the turn is over; nothing more is published for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnCompleted {
    /// How the turn ended.
    pub outcome: TurnOutcome,
    /// Milliseconds from the user message being stored to the reply being published.
    pub latency_ms: u64,
}
