//! Events a worker writes while it runs one agent turn. Version 2 (this code) writes
//! `turn.started` with the routing, then per tool call `tool.succeeded` or `tool.failed`
//! with the call's arguments (a `write` call has its `tool.called` before it), and last
//! `agent.replied`, which ends the turn: its outcome, latency, the write waiting for a
//! "yes", the escalation (or `turn.failed`, which is also written for a message that could
//! not be answered at all).
//!
//! Version 1 wrote the routing as `agent.routed`, a `tool.called` before every call,
//! `confirmation.requested` or `conversation.escalated` when the turn ended that way, and
//! `turn.completed` after the reply. Readers still read those kinds: streams keep them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `turn.started`: a worker took the user message and began answering it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnStarted {
    /// Stream sequence of the `message.received` event this turn answers.
    pub message_seq: u64,
    /// The write this message may confirm: the previous turn ended asking for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirming: Option<PendingAction>,
    /// The agent that answers and why (`agent`, `reason` beside the other fields); absent
    /// in version 1, which wrote them as `agent.routed`.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub routed: Option<AgentRouted>,
}

/// `agent.routed` (version 1; version 2 writes it in `turn.started`): which agent of the
/// agents config answers this turn, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRouted {
    /// Name of the agent (from the agents config).
    pub agent: String,
    /// Why it was chosen, in words (`keyword "refund"`, `the model's choice`, `default`).
    pub reason: String,
}

/// The permission level of a tool, from the agents config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Runs at once.
    Read,
    /// Runs only after the user confirmed it in the conversation.
    Write,
    /// Never run by an agent; the conversation is escalated to a human.
    Destructive,
}

/// `tool.called`: the agent calls one HTTP operation. Version 2 writes it only before a
/// `write` call, so the call is on record before its side effect; a `read` call is its
/// result alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCalled {
    /// The call's step within the turn (`tool-1`, `tool-2`, …); the matching
    /// `tool.succeeded`/`tool.failed` carries the same id.
    pub call_id: String,
    /// The tool's name: the operation id in the OpenAPI document.
    pub tool: String,
    /// The arguments, as a JSON object.
    pub params: Value,
    /// The tool's permission level.
    pub permission: Permission,
}

/// `tool.succeeded`: the operation answered with a 2xx status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSucceeded {
    pub call_id: String,
    pub tool: String,
    /// The call's arguments and permission (version 2; in version 1 they are on the
    /// call's `tool.called`).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallArgs>,
    /// The HTTP status.
    pub status: u16,
    /// The response body (JSON; a non-JSON body is a JSON string).
    pub result: Value,
    /// Milliseconds from the first attempt to the answer.
    pub latency_ms: u64,
    /// How many HTTP attempts it took (retries of retryable failures included).
    pub attempts: u32,
}

/// A tool call's arguments and permission, on its result (version 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallArgs {
    /// The arguments, as a JSON object.
    pub params: Value,
    /// The tool's permission level; absent for a call the turn refused (a tool the agent
    /// does not have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<Permission>,
}

/// How a failure is classified where it enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// Worth another try: time-outs, connection errors, HTTP 429 and 5xx, an engine that
    /// is down.
    Retryable,
    /// Fails the same way again: HTTP 4xx, invalid arguments, a refused permission or
    /// address.
    NotRetryable,
    /// The input itself is broken: an event that does not parse.
    Fatal,
}

impl ErrorCategory {
    /// The category as written on the wire (`retryable`, `not_retryable`, `fatal`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Retryable => "retryable",
            ErrorCategory::NotRetryable => "not_retryable",
            ErrorCategory::Fatal => "fatal",
        }
    }

    /// Parses the wire form.
    pub fn parse(raw: &str) -> Option<ErrorCategory> {
        match raw {
            "retryable" => Some(ErrorCategory::Retryable),
            "not_retryable" => Some(ErrorCategory::NotRetryable),
            "fatal" => Some(ErrorCategory::Fatal),
            _ => None,
        }
    }
}

/// `tool.failed`: the operation failed after its retries, or was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolFailed {
    pub call_id: String,
    pub tool: String,
    /// The call's arguments and permission (version 2; in version 1 they are on the
    /// call's `tool.called`, and a refused call has none).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallArgs>,
    pub category: ErrorCategory,
    /// What went wrong, for operators.
    pub error: String,
    /// Why, in words for the customer: the API's own message or a phrase for the kind of
    /// failure, never a status code or JSON. Absent in events written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The HTTP status, when the operation answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub attempts: u32,
}

/// A write operation that waits for the user's "yes".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAction {
    /// The agent that proposed it.
    pub agent: String,
    /// The tool to call.
    pub tool: String,
    /// Its arguments.
    pub params: Value,
}

/// `confirmation.requested` (version 1; version 2 writes it as the `pending` of the turn's
/// `agent.replied`): the agent wants to run a `write` tool and asks the user first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmationRequested {
    #[serde(flatten)]
    pub action: PendingAction,
    /// The question shown to the user.
    pub prompt: String,
}

/// Why a conversation was handed to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// The user asked for a human.
    UserRequest,
    /// A configured escalation keyword appeared.
    Keyword,
    /// Too many failed tool calls in one turn.
    ToolFailures,
    /// The agent wanted a `destructive` tool, which only a human may run.
    DestructiveAction,
    /// The model server could not answer: still failing on the message's last delivery,
    /// or its circuit breaker is open (added 2026-12-07).
    ModelUnavailable,
}

/// `conversation.escalated` (version 1; version 2 writes it as the `escalation` of the
/// turn's `agent.replied`, whose agent escalated): a human takes over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationEscalated {
    pub reason: EscalationReason,
    /// Details for the operator (the keyword, the tool, the errors).
    pub detail: String,
    /// The agent that escalated.
    pub agent: String,
}

/// Why and how a turn handed the conversation to a human (version 2, on `agent.replied`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub reason: EscalationReason,
    /// Details for the operator (the keyword, the tool, the errors).
    pub detail: String,
}

/// `agent.replied`: the agent's answer, shown to the user. In version 2 it also ends the
/// turn (`end`, with the escalation when the turn escalated); in version 1 a
/// `turn.completed` followed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReplied {
    /// The reply text.
    pub text: String,
    /// Name of the agent that answered (from the agents config).
    pub agent: String,
    /// The engine that produced the reply (`rules` or `openai`).
    pub engine: String,
    /// The tokens the model server reported for the turn's requests, summed (added
    /// 2026-12-07; absent for the rule engine and in older events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// How the turn ended (`outcome`, `latency_ms`, `message_seq`, `pending` beside the
    /// other fields): version 2. Absent in version 1, where `turn.completed` followed.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub end: Option<TurnCompleted>,
    /// Why a person takes over, when the outcome is `escalated` (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
}

/// Tokens a model server reported using (its `usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Tokens of the requests (`prompt_tokens`).
    pub prompt_tokens: u64,
    /// Tokens the model wrote (`completion_tokens`).
    pub completion_tokens: u64,
}

impl TokenUsage {
    /// Both counts added.
    pub fn plus(self, other: TokenUsage) -> TokenUsage {
        TokenUsage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
        }
    }
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    /// The agent replied.
    Replied,
    /// The agent asked the user to confirm a write; the next message answers it.
    AwaitingConfirmation,
    /// The conversation was handed to a human.
    Escalated,
}

/// `turn.completed` (version 1; version 2 writes these fields in the turn's
/// `agent.replied`): the turn is over; nothing more is published for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnCompleted {
    /// How the turn ended.
    pub outcome: TurnOutcome,
    /// Milliseconds from the user message being stored to the reply being published.
    pub latency_ms: u64,
    /// Stream sequence of the message this turn answered (0 in events written before
    /// this field existed).
    #[serde(default)]
    pub message_seq: u64,
    /// The write waiting for the user's confirmation, when the outcome is
    /// `awaiting_confirmation`; the next turn of the thread reads it from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingAction>,
}

/// `turn.failed`: the message could not be answered; it is in the dead-letter stream and
/// the user is told (`text`). Nothing more is published for the turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnFailed {
    /// Stream sequence of the message that failed.
    pub message_seq: u64,
    pub category: ErrorCategory,
    /// What went wrong, for operators.
    pub error: String,
    /// How many times the message was delivered.
    pub attempts: u32,
    /// The apology shown to the user.
    pub text: String,
    /// Id (sequence in the dead-letter stream) of the message's dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_id: Option<u64>,
}

/// `conversation.resolved`: an operator marked the conversation resolved. Published on
/// `chat.<thread_id>.operator` (not a turn event: the workers' order check never sees it);
/// its `turn_id` is an id of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationResolved {
    /// Who resolved it (`operator` for the REST API).
    pub resolved_by: String,
    /// The operator who resolved it (absent in events written before operators signed in).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<crate::events::OperatorRef>,
    /// An optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
