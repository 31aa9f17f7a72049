//! Agents answer a user message. The agents config ([`config`]) says which agents exist,
//! how a message is routed to one, which tools each may call with which permission, and
//! when to escalate. An [`Engine`] proposes the next step of a turn (call a tool, or
//! reply); the turn ([`crate::turn`]) decides whether the step is allowed and runs it.
//! The built-in [`RuleEngine`] is deterministic and works offline (the default for the
//! demo and tests); [`OpenAiEngine`] asks any OpenAI-compatible chat-completions server.

/// The agents config lives with the tools it grants (crate `tools`).
pub use tools::agents_config as config;
pub use tools::agents_config::EngineSettings;
pub use tools::{AgentCard, ToolDef};
mod breaker;
pub mod memory;
mod openai;
pub(crate) mod rules;

pub use breaker::{Breaker, BreakerState};
pub use openai::{OpenAiArgs, OpenAiEngine};
pub use rules::RuleEngine;

use std::future::Future;
use std::pin::Pin;

use common::events::{ErrorCategory, TokenUsage};
use serde_json::Value;

/// An engine's answer with the tokens the model server reported for it (none: no model).
pub type Metered<T> = (T, Option<TokenUsage>);

/// A boxed future, the shape of the engine's methods (the trait is used as `dyn Engine`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A tool call made earlier in this turn, and what came of it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub tool: String,
    pub params: Value,
    pub outcome: CallOutcome,
}

/// What came of a tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// The operation answered 2xx with this body.
    Succeeded { status: u16, result: Value },
    /// The operation failed (after its retries).
    Failed {
        category: ErrorCategory,
        /// What went wrong, for operators (`HTTP 409: <the body>`).
        error: String,
        /// Why, in words the customer may read (the API's message or a phrase).
        reason: String,
        status: Option<u16>,
    },
    /// The turn did not run it (not one of the agent's tools, invalid arguments).
    Refused { reason: String },
}

/// Everything an engine needs to propose the next step of a turn.
#[derive(Debug, Clone)]
pub struct TurnView<'a> {
    /// The agent answering the turn.
    pub agent: &'a AgentCard,
    /// Its own model settings from the agents config (the engine's defaults where unset).
    pub settings: &'a EngineSettings,
    /// The tools that agent may call.
    pub tools: &'a [ToolDef],
    /// The user's message.
    pub message: &'a str,
    /// The tool calls made so far in this turn, in order.
    pub calls: &'a [CallRecord],
    /// The conversation before this message, oldest first; empty unless the engine
    /// [`remembers`](Engine::remembers).
    pub earlier: &'a [memory::Exchange],
    /// Where a streaming engine sends the reply's pieces as the model writes them (none:
    /// nobody listens).
    pub deltas: Option<&'a dyn Deltas>,
}

/// Hears the pieces of a reply while a model writes it (the customer's WebSocket, over
/// core NATS in production). Best effort: a piece that cannot be sent is lost, and the
/// stored `agent.replied` still holds the whole text.
pub trait Deltas: Send + Sync + std::fmt::Debug {
    fn send<'a>(&'a self, text: &'a str) -> BoxFuture<'a, ()>;
}

/// What an engine proposes.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Answer the user with this text; the turn ends.
    Reply(String),
    /// Call this tool with these arguments (a JSON object), then ask again.
    CallTool { tool: String, params: Value },
}

/// Why an engine could not propose a step.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Worth trying again later (a time-out, a model server that is down or answered
    /// garbage).
    #[error("engine temporarily unavailable: {0}")]
    Retryable(String),
    /// Will fail the same way again (a rejected request, a bad key).
    #[error("engine failed: {0}")]
    Permanent(String),
    /// Not asked at all: the engine's circuit breaker is open after repeated failures of
    /// its server (retryable, but the customer should not wait for it).
    #[error("engine unavailable: {0}")]
    Unavailable(String),
}

impl EngineError {
    /// The failure's category.
    pub fn category(&self) -> ErrorCategory {
        match self {
            EngineError::Retryable(_) | EngineError::Unavailable(_) => ErrorCategory::Retryable,
            EngineError::Permanent(_) => ErrorCategory::NotRetryable,
        }
    }
}

/// A way of producing the steps of a turn.
pub trait Engine: Send + Sync {
    /// The engine's name, written into `agent.replied` (`rules`, `openai`).
    fn name(&self) -> &'static str;

    /// Whether the engine is told the conversation so far ([`TurnView::earlier`]). Reading
    /// it costs a read of the thread's events, which only an engine that uses it pays for.
    fn remembers(&self) -> bool {
        false
    }

    /// Whether the engine sends a reply's pieces to [`TurnView::deltas`] as they come.
    fn streams(&self) -> bool {
        false
    }

    /// Chooses an agent for a message no routing rule matched, among `agents`; `None`
    /// means the config's default agent.
    fn choose_agent<'a>(
        &'a self,
        agents: &'a [AgentCard],
        message: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, EngineError>>;

    /// Proposes the next step of a turn.
    fn next_step<'a>(&'a self, turn: TurnView<'a>) -> BoxFuture<'a, Result<Step, EngineError>>;

    /// [`choose_agent`](Self::choose_agent), with the tokens it used (what the turn calls).
    fn choose_agent_metered<'a>(
        &'a self,
        agents: &'a [AgentCard],
        message: &'a str,
    ) -> BoxFuture<'a, Result<Metered<Option<String>>, EngineError>> {
        Box::pin(async move { Ok((self.choose_agent(agents, message).await?, None)) })
    }

    /// [`next_step`](Self::next_step), with the tokens it used (what the turn calls).
    fn next_step_metered<'a>(
        &'a self,
        turn: TurnView<'a>,
    ) -> BoxFuture<'a, Result<Metered<Step>, EngineError>> {
        Box::pin(async move { Ok((self.next_step(turn).await?, None)) })
    }
}
