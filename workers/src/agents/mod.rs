//! Agents answer a user message. An [`Engine`] produces the reply; the built-in
//! [`RuleEngine`] is deterministic and works offline (the default for the demo and tests).

mod rules;

pub use rules::RuleEngine;

use std::future::Future;
use std::pin::Pin;

/// What an engine answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The agent that answered.
    pub agent: String,
    /// The reply text.
    pub text: String,
}

/// Why an engine could not answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Worth trying again later (a time-out, a model server that is down).
    #[error("engine temporarily unavailable: {0}")]
    Retryable(String),
    /// Will fail the same way again.
    #[error("engine failed: {0}")]
    Permanent(String),
}

/// A way of producing replies.
pub trait Engine: Send + Sync {
    /// The engine's name, written into `agent.replied`.
    fn name(&self) -> &'static str;

    /// Answers one user message.
    fn reply<'a>(
        &'a self,
        message: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Reply, EngineError>> + Send + 'a>>;
}
