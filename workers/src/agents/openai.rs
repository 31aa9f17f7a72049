//! The OpenAI-compatible engine: chat-completions with tool (function) calling against
//! any compatible server. (Interface only; implementation in progress.)

use std::time::Duration;

use clap::Args;

use super::{AgentCard, BoxFuture, Engine, EngineError, Step, TurnView};

/// Where the OpenAI-compatible model server is.
#[derive(Debug, Clone, Args)]
pub struct OpenAiArgs {
    /// Base URL of the chat-completions API (`…/v1`); `/chat/completions` is appended.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,
    /// Model name sent with every request.
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4o-mini")]
    pub openai_model: String,
    /// API key, sent as `Authorization: Bearer`; none for servers that need none.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,
    /// Time-out of one request to the model server.
    #[arg(long, env = "OPENAI_TIMEOUT", default_value = "30s", value_parser = common::config::parse_duration)]
    pub openai_timeout: Duration,
}

/// An engine backed by an OpenAI-compatible chat-completions server.
pub struct OpenAiEngine {
    _args: OpenAiArgs,
}

impl OpenAiEngine {
    pub fn new(args: OpenAiArgs) -> anyhow::Result<OpenAiEngine> {
        Ok(OpenAiEngine { _args: args })
    }
}

impl Engine for OpenAiEngine {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn choose_agent<'a>(
        &'a self,
        _agents: &'a [AgentCard],
        _message: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
        Box::pin(async { Err(EngineError::Permanent("not implemented yet".into())) })
    }

    fn next_step<'a>(&'a self, _turn: TurnView<'a>) -> BoxFuture<'a, Result<Step, EngineError>> {
        Box::pin(async { Err(EngineError::Permanent("not implemented yet".into())) })
    }
}
