//! The OpenAI-compatible engine: chat-completions with tool (function) calling against
//! any compatible server (OpenAI, or a local server exposing `/v1/chat/completions`).
//!
//! Each call is one stateless request: the conversation so far (system prompt, the earlier
//! exchanges that fit the memory budget, the user message, every tool call of this turn
//! with its outcome) is rebuilt into `messages`, so a redelivered message asks the same
//! question again. The request bodies ([`step_request`],
//! [`choose_agent_request`]) and the reading of answers ([`parse_step`],
//! [`parse_agent_choice`]) are plain functions; only [`OpenAiEngine::complete`] does I/O
//! and classifies its failures.

use std::fmt;
use std::time::{Duration, Instant};

use clap::Args;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use super::memory::{Exchange, Said};
use super::{AgentCard, BoxFuture, CallOutcome, CallRecord, Engine, EngineError, Step, TurnView};
use super::{Breaker, Deltas, Metered};
use common::events::TokenUsage;

/// The largest response body read from the model server; a larger one is malformed.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How much of an error body goes into an error message.
const ERROR_EXCERPT_CHARS: usize = 200;

/// The `name` of an operator's message in the memory (`^[a-zA-Z0-9_-]+$`, as the API
/// requires).
const OPERATOR_NAME: &str = "operator";

/// Attempts of a streamed request whose stream breaks midway, before the turn's message is
/// retried by redelivery.
const STREAM_ATTEMPTS: u32 = 2;

/// The tool `choose_agent` forces the model to call.
const CHOOSE_AGENT_TOOL: &str = "choose_agent";

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
    /// Budget, in estimated tokens (characters of a message's JSON / 4, rounded up), of the
    /// earlier conversation sent with each request; the oldest exchanges are left out first.
    /// The system prompt and the current message are always sent. 0 sends no memory.
    #[arg(long, env = "OPENAI_MEMORY_TOKENS", default_value_t = 4000)]
    pub openai_memory_tokens: usize,
    /// Retryable failures of the model server in a row that open the circuit breaker (no
    /// request is made and turns go to a person until the cool-down is over); 0 never opens.
    #[arg(long, env = "OPENAI_BREAKER_FAILURES", default_value_t = 5)]
    pub openai_breaker_failures: u32,
    /// How long an open circuit breaker stays open before one trial request.
    #[arg(long, env = "OPENAI_BREAKER_COOL_DOWN", default_value = "30s", value_parser = common::config::parse_duration)]
    pub openai_breaker_cool_down: Duration,
    /// Ask for the agents' steps with `stream: true`: the reply reaches the customer's
    /// WebSocket in pieces (`delta` frames) while the model writes it.
    #[arg(long, env = "OPENAI_STREAM", default_value_t = true, action = clap::ArgAction::Set)]
    pub openai_stream: bool,
}

/// An engine backed by an OpenAI-compatible chat-completions server.
pub struct OpenAiEngine {
    client: reqwest::Client,
    /// `{base}/chat/completions`.
    endpoint: String,
    model: String,
    api_key: Option<String>,
    /// [`OpenAiArgs::openai_memory_tokens`].
    memory_tokens: usize,
    breaker: Breaker,
    /// [`OpenAiArgs::openai_stream`].
    stream: bool,
}

impl fmt::Debug for OpenAiEngine {
    // By hand so the API key never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEngine")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl OpenAiEngine {
    /// Builds the engine and its one HTTP client (time-out per request, no proxy).
    pub fn new(args: OpenAiArgs) -> anyhow::Result<OpenAiEngine> {
        // reqwest is built with `rustls-no-provider`: the default `rustls` feature would
        // compile aws-lc-rs (a C/cmake build), while `ring` is already in the tree through
        // async-nats. Installing fails only when a provider is already installed, which
        // serves just as well.
        tools::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(args.openai_timeout)
            .no_proxy()
            .build()?;
        let endpoint = format!(
            "{}/chat/completions",
            args.openai_base_url.trim_end_matches('/')
        );
        Ok(OpenAiEngine {
            client,
            endpoint,
            model: args.openai_model,
            api_key: args.openai_api_key.filter(|key| !key.is_empty()),
            memory_tokens: args.openai_memory_tokens,
            breaker: Breaker::new(args.openai_breaker_failures, args.openai_breaker_cool_down),
            stream: args.openai_stream,
        })
    }

    /// POSTs one chat-completions request and returns the parsed JSON body of a 2xx
    /// answer (a streamed one put together into the same shape), classifying every failure
    /// where it enters. A stream that breaks midway is asked again as a whole, once;
    /// `deltas` hears the content as it comes, each piece once: of the attempt after a
    /// break, only what goes beyond what was already heard (see [`Resumed`]).
    #[tracing::instrument(skip_all, fields(model = %self.model, purpose = purpose))]
    async fn complete(
        &self,
        purpose: &'static str,
        body: &Value,
        deltas: Option<&dyn Deltas>,
    ) -> Result<Value, EngineError> {
        if !self.breaker.admit(Instant::now()) {
            return Err(EngineError::Unavailable(
                "the model server kept failing: circuit breaker open, no request made".into(),
            ));
        }
        let mut attempt = 1;
        let resumed = deltas.map(Resumed::new);
        let answer = loop {
            let heard = resumed.as_ref().map(|r| r as &dyn Deltas);
            match self.request(body, heard).await {
                Err(Failure::Broken(why)) if attempt < STREAM_ATTEMPTS => {
                    tracing::info!(attempt, %why, "the model's stream broke; asking again");
                    attempt += 1;
                    if let Some(resumed) = &resumed {
                        resumed.next_attempt();
                    }
                }
                Err(Failure::Broken(why)) => {
                    break Err(EngineError::Retryable(format!(
                        "the model's stream broke {STREAM_ATTEMPTS} times: {why}"
                    )));
                }
                Err(Failure::Engine(err)) => break Err(err),
                Ok(answer) => break Ok(answer),
            }
        };
        match &answer {
            Err(EngineError::Retryable(_)) => self.breaker.failed(Instant::now()),
            _ => self.breaker.succeeded(),
        }
        answer
    }

    /// The request itself, for [`complete`](Self::complete).
    async fn request(&self, body: &Value, deltas: Option<&dyn Deltas>) -> Result<Value, Failure> {
        let mut request = self.client.post(&self.endpoint).json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|err| self.transport(&err))?;
        let status = response.status();
        let event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        if status.is_success() && event_stream {
            return self.read_stream(&mut response, deltas).await;
        }
        let received = read_capped(&mut response)
            .await
            .map_err(|err| self.transport(&err))?;
        tracing::debug!(
            status = status.as_u16(),
            bytes = received.as_ref().map(Vec::len),
            "model answered"
        );
        if !status.is_success() {
            let excerpt = match &received {
                Some(body) => self.redact(&excerpt(&String::from_utf8_lossy(body))),
                None => format!("(body larger than {MAX_RESPONSE_BYTES} bytes)"),
            };
            let message = format!("model server answered {status}: {excerpt}");
            return Err(Failure::Engine(if is_retryable_status(status) {
                EngineError::Retryable(message)
            } else {
                EngineError::Permanent(message)
            }));
        }
        let bytes = received
            .ok_or_else(|| malformed(format!("body larger than {MAX_RESPONSE_BYTES} bytes")))?;
        Ok(serde_json::from_slice(&bytes).map_err(|err| malformed(format!("not JSON: {err}")))?)
    }

    /// Reads a streamed answer (server-sent events) to its `[DONE]` and puts it together
    /// as a chat completion, passing each piece of content to `deltas` as it comes. A
    /// stream that ends or fails before `[DONE]` is [`Failure::Broken`].
    async fn read_stream(
        &self,
        response: &mut reqwest::Response,
        deltas: Option<&dyn Deltas>,
    ) -> Result<Value, Failure> {
        let mut events = SseLines::default();
        let mut answer = Streamed::default();
        let mut read = 0;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Err(Failure::Broken("the stream ended before [DONE]".into())),
                Err(err) if err.is_timeout() => return Err(self.transport(&err)),
                Err(err) => return Err(Failure::Broken(self.redact(&error_chain(&err)))),
            };
            read += chunk.len();
            if read > MAX_RESPONSE_BYTES {
                return Err(
                    malformed(format!("stream larger than {MAX_RESPONSE_BYTES} bytes")).into(),
                );
            }
            for data in events.feed(&chunk) {
                if data.trim() == "[DONE]" {
                    return Ok(answer.completion());
                }
                let piece = answer.take(&data).map_err(|why| match why {
                    // The server said why in the stream: a failure of the server's.
                    StreamError::Server(message) => {
                        Failure::Broken(self.redact(&excerpt(&message)))
                    }
                    StreamError::Malformed(why) => malformed(why).into(),
                })?;
                if let (Some(deltas), Some(text)) = (deltas, piece) {
                    deltas.send(&text).await;
                }
            }
        }
    }

    /// A request that got no (complete) answer: a builder error (a bad base URL) fails
    /// the same way every time; anything else — refused connection, time-out, reset —
    /// is the server's state at the moment.
    fn transport(&self, err: &reqwest::Error) -> Failure {
        Failure::Engine(self.transport_error(err))
    }

    fn transport_error(&self, err: &reqwest::Error) -> EngineError {
        let message = self.redact(&error_chain(err));
        if err.is_builder() {
            EngineError::Permanent(format!("cannot build the request: {message}"))
        } else if err.is_timeout() {
            EngineError::Retryable(format!("model server timed out: {message}"))
        } else {
            EngineError::Retryable(format!("model server unreachable: {message}"))
        }
    }

    /// Removes the API key from text going into an error (some servers echo it back).
    fn redact(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) => text.replace(key.as_str(), "[redacted]"),
            None => text.to_owned(),
        }
    }
}

impl Engine for OpenAiEngine {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn remembers(&self) -> bool {
        true
    }

    fn streams(&self) -> bool {
        self.stream
    }

    fn choose_agent<'a>(
        &'a self,
        agents: &'a [AgentCard],
        message: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
        Box::pin(async move { Ok(self.choose_agent_metered(agents, message).await?.0) })
    }

    fn next_step<'a>(&'a self, turn: TurnView<'a>) -> BoxFuture<'a, Result<Step, EngineError>> {
        Box::pin(async move { Ok(self.next_step_metered(turn).await?.0) })
    }

    fn choose_agent_metered<'a>(
        &'a self,
        agents: &'a [AgentCard],
        message: &'a str,
    ) -> BoxFuture<'a, Result<Metered<Option<String>>, EngineError>> {
        Box::pin(async move {
            // An empty `enum` is an invalid schema; there is nothing to choose anyway.
            if agents.is_empty() {
                return Ok((None, None));
            }
            let body = choose_agent_request(&self.model, agents, message);
            let answer = self.complete("choose_agent", &body, None).await?;
            Ok((parse_agent_choice(&answer, agents)?, usage_of(&answer)))
        })
    }

    fn next_step_metered<'a>(
        &'a self,
        turn: TurnView<'a>,
    ) -> BoxFuture<'a, Result<Metered<Step>, EngineError>> {
        Box::pin(async move {
            let model = turn.settings.model.as_deref().unwrap_or(&self.model);
            let mut body = step_request(model, &turn, self.memory_tokens);
            if self.stream {
                // The reply is written as it comes; usage arrives in a last chunk.
                body["stream"] = json!(true);
                body["stream_options"] = json!({"include_usage": true});
            }
            let answer = self.complete("next_step", &body, turn.deltas).await?;
            Ok((parse_step(&answer)?, usage_of(&answer)))
        })
    }
}

/// The answer's `usage` (`prompt_tokens`, `completion_tokens`), when the server sent one.
fn usage_of(answer: &Value) -> Option<TokenUsage> {
    let usage = answer.get("usage")?;
    let count = |key: &str| usage.get(key).and_then(Value::as_u64);
    match (count("prompt_tokens"), count("completion_tokens")) {
        (None, None) => None,
        (prompt, completion) => Some(TokenUsage {
            prompt_tokens: prompt.unwrap_or(0),
            completion_tokens: completion.unwrap_or(0),
        }),
    }
}

/// The request body asking for the next step of `turn`, with as much of the earlier
/// conversation as `memory_tokens` allows.
fn step_request(model: &str, turn: &TurnView<'_>, memory_tokens: usize) -> Value {
    let agent = turn.agent;
    let system = format!(
        "You are {name}, a customer support agent. {description}\n\n{instructions}\n\n\
         Answer the customer as support agent {name}. Call a tool when you need facts you do \
         not have; never invent order data.",
        name = agent.name,
        description = agent.description,
        instructions = agent.instructions,
    );
    let mut messages = vec![json!({"role": "system", "content": system})];
    let memory = memory_messages(turn.earlier, memory_tokens);
    if memory.left_out > 0 {
        messages.push(json!({"role": "system", "content": format!(
            "The conversation began earlier: its first {} customer message(s) and what \
             followed them ({} message(s)) are left out here to stay within the memory budget.",
            memory.left_out, memory.left_out_messages,
        )}));
    }
    messages.extend(memory.messages);
    messages.push(json!({"role": "user", "content": turn.message}));
    for (i, call) in turn.calls.iter().enumerate() {
        messages.extend(call_messages(&format!("call_{}", i + 1), call));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    // The agent's own settings; unset ones are left to the server's defaults.
    if let Some(temperature) = turn.settings.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    if let Some(max_tokens) = turn.settings.max_tokens {
        body.insert("max_tokens".into(), json!(max_tokens));
    }
    // Some servers reject an empty `tools` array, so a tool-less agent sends none.
    if !turn.tools.is_empty() {
        let tools = turn
            .tools
            .iter()
            .map(|tool| function_tool(&tool.name, &tool.description, &tool.parameters))
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(body)
}

/// The earlier conversation that fits a budget.
#[derive(Debug, Default)]
struct Memory {
    /// Oldest first.
    messages: Vec<Value>,
    /// Exchanges (earlier customer messages and what followed them) left out.
    left_out: usize,
    /// Messages those exchanges would have been.
    left_out_messages: usize,
}

/// The earlier conversation as chat messages, each of its own role (customer `user`,
/// agents and operators `assistant`, tool calls `assistant` `tool_calls` + `tool`), newest
/// exchanges first into the budget: whole exchanges are kept while their estimated tokens
/// fit in `budget`, so the oldest are the ones left out.
fn memory_messages(earlier: &[Exchange], budget: usize) -> Memory {
    let mut kept: Vec<Vec<Value>> = Vec::new();
    let mut used = 0;
    let mut memory = Memory::default();
    for (i, exchange) in earlier.iter().enumerate().rev() {
        let messages = exchange_messages(exchange);
        let tokens: usize = messages.iter().map(estimated_tokens).sum();
        if used + tokens > budget {
            memory.left_out = i + 1;
            memory.left_out_messages = messages.len()
                + earlier[..i]
                    .iter()
                    .map(|e| exchange_messages(e).len())
                    .sum::<usize>();
            break;
        }
        used += tokens;
        kept.push(messages);
    }
    memory.messages = kept.into_iter().rev().flatten().collect();
    memory
}

/// An estimate of the tokens a message costs: the characters of its JSON text / 4, rounded
/// up (about right for English with OpenAI's tokenizers, and on the safe side for JSON).
fn estimated_tokens(message: &Value) -> usize {
    message.to_string().chars().count().div_ceil(4)
}

fn exchange_messages(exchange: &Exchange) -> Vec<Value> {
    let mut messages = Vec::with_capacity(exchange.said.len());
    for said in &exchange.said {
        match said {
            Said::Customer(text) => messages.push(json!({"role": "user", "content": text})),
            Said::Agent(text) => messages.push(json!({"role": "assistant", "content": text})),
            // A person's words, as the customer read them: the assistant side of the
            // conversation, named so the model can tell them from its own.
            Said::Operator { text, .. } => {
                messages.push(json!({"role": "assistant", "name": OPERATOR_NAME, "content": text}))
            }
            Said::Call {
                id,
                tool,
                params,
                outcome,
            } => messages.extend(call_messages(
                id,
                &CallRecord {
                    tool: tool.clone(),
                    params: params.clone(),
                    outcome: outcome.clone(),
                },
            )),
        }
    }
    messages
}

/// The assistant message that made `call` and the tool message with its outcome.
fn call_messages(id: &str, call: &CallRecord) -> [Value; 2] {
    let arguments = call.params.to_string();
    let outcome = match &call.outcome {
        CallOutcome::Succeeded { status, result } => json!({"status": status, "result": result}),
        // `reason` is what the customer may be told; `error` is for the model's judgement.
        CallOutcome::Failed {
            category,
            error,
            reason,
            status,
        } => {
            json!({"error": error, "reason": reason, "category": category.as_str(), "status": status})
        }
        CallOutcome::Refused { reason } => json!({"refused": reason}),
    };
    [
        json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": id,
                "type": "function",
                "function": {"name": call.tool, "arguments": arguments},
            }],
        }),
        json!({"role": "tool", "tool_call_id": id, "content": outcome.to_string()}),
    ]
}

fn function_tool(name: &str, description: &str, parameters: &Value) -> Value {
    json!({
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    })
}

/// The request body asking which of `agents` should answer `message`: one forced call of
/// the `choose_agent` tool whose only argument is an enum of the agents' names.
fn choose_agent_request(model: &str, agents: &[AgentCard], message: &str) -> Value {
    let listing: String = agents
        .iter()
        .map(|agent| format!("- {}: {}\n", agent.name, agent.description))
        .collect();
    let system = format!(
        "You route customer support messages to the agent best suited to answer them. \
         The agents:\n{listing}\nCall {CHOOSE_AGENT_TOOL} with the name of one of them."
    );
    let names: Vec<&str> = agents.iter().map(|agent| agent.name.as_str()).collect();
    let parameters = json!({
        "type": "object",
        "properties": {"agent": {"type": "string", "enum": names}},
        "required": ["agent"],
    });
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": message},
        ],
        "tools": [function_tool(
            CHOOSE_AGENT_TOOL,
            "Choose the support agent that answers the message.",
            &parameters,
        )],
        "tool_choice": {"type": "function", "function": {"name": CHOOSE_AGENT_TOOL}},
    })
}

/// Reads a chat-completion body as the next step: the first tool call if there is one,
/// else the text reply.
///
/// A 2xx body of another shape is `Retryable`, not `Permanent`: a model server answering
/// garbage is treated like one answering 5xx (overloaded, restarting, a proxy's error
/// page, a model that produced broken arguments this once). The message is retried by
/// redelivery and dead-lettered when it keeps failing, so a persistent fault still ends.
fn parse_step(answer: &Value) -> Result<Step, EngineError> {
    let message = first_message(answer)?;
    if let Some((tool, params)) = first_tool_call(message)? {
        return Ok(Step::CallTool { tool, params });
    }
    match message.get("content").and_then(Value::as_str) {
        Some(content) if !content.trim().is_empty() => Ok(Step::Reply(content.to_owned())),
        _ => Err(malformed("neither tool_calls nor content")),
    }
}

/// Reads the answer to a [`choose_agent_request`]: `Some(name)` when the model called
/// `choose_agent` with a listed agent, `None` when it chose something else or did not
/// call the tool (the config's default agent answers then). Malformed bodies are
/// `Retryable`, as in [`parse_step`].
fn parse_agent_choice(answer: &Value, agents: &[AgentCard]) -> Result<Option<String>, EngineError> {
    let message = first_message(answer)?;
    let Some((tool, params)) = first_tool_call(message)? else {
        return Ok(None);
    };
    if tool != CHOOSE_AGENT_TOOL {
        return Ok(None);
    }
    let chosen = params.get("agent").and_then(Value::as_str);
    Ok(agents
        .iter()
        .find(|agent| Some(agent.name.as_str()) == chosen)
        .map(|agent| agent.name.clone()))
}

/// `choices[0].message`.
fn first_message(answer: &Value) -> Result<&Map<String, Value>, EngineError> {
    answer
        .get("choices")
        .and_then(|choices| choices.get(0))
        .and_then(|choice| choice.get("message"))
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("no choices[0].message"))
}

/// The first of `message.tool_calls` as (name, arguments object); `None` when there are
/// no tool calls.
fn first_tool_call(message: &Map<String, Value>) -> Result<Option<(String, Value)>, EngineError> {
    let Some(call) = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .and_then(|calls| calls.first())
    else {
        return Ok(None);
    };
    let function = call
        .get("function")
        .ok_or_else(|| malformed("tool call without function"))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| malformed("tool call without a name"))?;
    let arguments = function
        .get("arguments")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("tool call arguments are not a string"))?;
    // Some models send "" for a tool without parameters; that means no arguments.
    let params = if arguments.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(arguments)
            .map_err(|err| malformed(format!("tool call arguments are not JSON: {err}")))?
    };
    if !params.is_object() {
        return Err(malformed("tool call arguments are not a JSON object"));
    }
    Ok(Some((name.to_owned(), params)))
}

fn malformed(why: impl fmt::Display) -> EngineError {
    EngineError::Retryable(format!("malformed response: {why}"))
}

/// 429 (rate limited) and 5xx are the server's state at the moment; other statuses
/// (400, 401, 403, 404, …) say the request or the key is wrong and will stay wrong.
/// The pieces of a reply as the customer is to hear them when a broken stream is asked
/// again: the new attempt starts from the beginning, and only its text beyond what the
/// customer already heard is passed on. When it says something else than what was heard
/// (a model need not answer twice alike), nothing more of it is passed on: the stored
/// `agent.replied` that follows holds the whole text and replaces the pieces.
#[derive(Debug)]
struct Resumed<'a> {
    inner: &'a dyn Deltas,
    state: std::sync::Mutex<Heard>,
}

#[derive(Debug, Default)]
struct Heard {
    /// Everything passed on so far, over every attempt.
    passed: String,
    /// The text of this attempt so far.
    this: String,
    /// This attempt said something else than what was passed on.
    diverged: bool,
}

impl<'a> Resumed<'a> {
    fn new(inner: &'a dyn Deltas) -> Self {
        Resumed {
            inner,
            state: std::sync::Mutex::new(Heard::default()),
        }
    }

    fn next_attempt(&self) {
        let mut state = self.state.lock().expect("deltas lock");
        state.this.clear();
        state.diverged = false;
    }

    /// What of `piece` is new to the customer.
    fn new_part(&self, piece: &str) -> Option<String> {
        let mut state = self.state.lock().expect("deltas lock");
        let Heard {
            passed,
            this,
            diverged,
        } = &mut *state;
        if *diverged {
            return None;
        }
        this.push_str(piece);
        let (longer, shorter) = if this.len() >= passed.len() {
            (&*this, &*passed)
        } else {
            (&*passed, &*this)
        };
        if !longer.starts_with(shorter.as_str()) {
            *diverged = true;
            return None;
        }
        if this.len() <= passed.len() {
            return None;
        }
        let new = this[passed.len()..].to_owned();
        passed.clone_from(this);
        Some(new)
    }
}

impl Deltas for Resumed<'_> {
    fn send<'a>(&'a self, text: &'a str) -> BoxFuture<'a, ()> {
        let new = self.new_part(text);
        Box::pin(async move {
            if let Some(new) = new {
                self.inner.send(&new).await;
            }
        })
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Reads the body; `None` when it is larger than [`MAX_RESPONSE_BYTES`] (announced by
/// `Content-Length`, or found while reading, which then stops) so a huge answer cannot
/// exhaust memory.
async fn read_capped(response: &mut reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_RESPONSE_BYTES {
            return Ok(None);
        }
    }
    Ok(Some(body))
}

/// The first characters of an error body, on one line.
fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > ERROR_EXCERPT_CHARS {
        let cut: String = flat.chars().take(ERROR_EXCERPT_CHARS).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// An error with its sources (reqwest's own message hides the cause, e.g. "connection
/// refused").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Why a request gave no answer.
enum Failure {
    Engine(EngineError),
    /// A streamed answer that broke off midway: asked again as a whole.
    Broken(String),
}

impl From<EngineError> for Failure {
    fn from(err: EngineError) -> Failure {
        Failure::Engine(err)
    }
}

/// Why a streamed chunk could not be taken.
#[derive(Debug)]
enum StreamError {
    /// The server sent an `error` object in the stream.
    Server(String),
    Malformed(String),
}

/// Splits a server-sent-events body into the `data` of its events, whatever the chunks'
/// boundaries: `data:` lines (joined with `\n` when an event has several), ended by a blank
/// line; `:` lines (keep-alive comments) and other fields are skipped.
#[derive(Debug, Default)]
struct SseLines {
    buffer: Vec<u8>,
    data: Option<String>,
}

impl SseLines {
    fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                events.extend(self.data.take());
            } else if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                }
            }
            // `:` comments (keep-alives), `event:`, `id:`, `retry:`: nothing to take.
        }
        events
    }
}

/// A streamed answer put together chunk by chunk.
#[derive(Debug, Default)]
struct Streamed {
    content: String,
    /// By the chunks' `index`: id, name, arguments (split over many chunks).
    tool_calls: std::collections::BTreeMap<u64, (String, String, String)>,
    usage: Option<Value>,
    finish_reason: Option<Value>,
}

impl Streamed {
    /// Takes one chunk (`chat.completion.chunk`); the piece of content it carries, if any.
    fn take(&mut self, data: &str) -> Result<Option<String>, StreamError> {
        let chunk: Value = serde_json::from_str(data)
            .map_err(|err| StreamError::Malformed(format!("a stream chunk is not JSON: {err}")))?;
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            return Err(StreamError::Server(format!(
                "error in the stream: {message}"
            )));
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| !usage.is_null()) {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|choices| choices.first())
        else {
            // The usage chunk has no choices.
            return Ok(None);
        };
        if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
            self.finish_reason = Some(reason.clone());
        }
        let Some(delta) = choice.get("delta") else {
            return Ok(None);
        };
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let entry = self.tool_calls.entry(index).or_default();
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                entry.0 = id.to_owned();
            }
            let function = call.get("function");
            let part = |key: &str| function.and_then(|f| f.get(key)).and_then(Value::as_str);
            if let Some(name) = part("name") {
                entry.1.push_str(name);
            }
            if let Some(arguments) = part("arguments") {
                entry.2.push_str(arguments);
            }
        }
        match delta.get("content").and_then(Value::as_str) {
            Some(text) if !text.is_empty() => {
                self.content.push_str(text);
                Ok(Some(text.to_owned()))
            }
            _ => Ok(None),
        }
    }

    /// The answer as the non-streamed API would have given it.
    fn completion(self) -> Value {
        let mut message = json!({
            "role": "assistant",
            "content": if self.content.is_empty() { Value::Null } else { Value::String(self.content) },
        });
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = self
                .tool_calls
                .into_values()
                .map(|(id, name, arguments)| {
                    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
                })
                .collect();
        }
        let mut completion = json!({
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
        });
        if let Some(usage) = self.usage {
            completion["usage"] = usage;
        }
        completion
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Kept(std::sync::Mutex<Vec<String>>);

    impl Deltas for Kept {
        fn send<'a>(&'a self, text: &'a str) -> BoxFuture<'a, ()> {
            self.0.lock().unwrap().push(text.to_owned());
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn after_a_break_only_what_goes_beyond_what_was_heard_is_passed_on_and_nothing_of_another_answer()
     {
        let kept = Kept::default();
        let resumed = Resumed::new(&kept);
        for piece in ["Your ord", "er shi"] {
            resumed.send(piece).await;
        }
        resumed.next_attempt();
        for piece in ["Your", " order ", "shipped", "."] {
            resumed.send(piece).await;
        }
        assert_eq!(*kept.0.lock().unwrap(), ["Your ord", "er shi", "pped", "."]);
        resumed.next_attempt();
        for piece in ["Sorry, ", "your order shipped. More text."] {
            resumed.send(piece).await;
        }
        assert_eq!(
            kept.0.lock().unwrap().len(),
            4,
            "another answer is not pieced on"
        );
    }
    use crate::agents::{EngineSettings, ToolDef};
    use common::events::ErrorCategory;

    fn agent() -> AgentCard {
        AgentCard {
            name: "orders".into(),
            description: "Order status and delivery.".into(),
            instructions: "Look orders up before answering.".into(),
        }
    }

    fn completion(message: Value) -> Value {
        json!({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
    }

    #[test]
    fn a_failed_call_is_sent_back_as_error_reason_category_and_status() {
        let agent = agent();
        let calls = [CallRecord {
            tool: "getOrder".into(),
            params: json!({"order_id": "ORD-9"}),
            outcome: CallOutcome::Failed {
                category: ErrorCategory::NotRetryable,
                error: "not found".into(),
                reason: "it was not found".into(),
                status: Some(404),
            },
        }];
        let turn = TurnView {
            agent: &agent,
            settings: &EngineSettings::default(),
            tools: &[],
            message: "where is ORD-9?",
            calls: &calls,
            earlier: &[],
            deltas: None,
        };
        let body = step_request("m", &turn, 100);
        assert!(body.get("tools").is_none(), "no tools, no tools key");
        let tool_message = &body["messages"][3];
        let content: Value =
            serde_json::from_str(tool_message["content"].as_str().unwrap()).unwrap();
        assert_eq!(
            content,
            json!({"error": "not found", "reason": "it was not found", "category": "not_retryable", "status": 404})
        );
    }

    #[test]
    fn a_refused_call_is_sent_back_with_its_reason() {
        let agent = agent();
        let tools = [ToolDef {
            name: "getOrder".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        }];
        let calls = [CallRecord {
            tool: "deleteOrder".into(),
            params: json!({}),
            outcome: CallOutcome::Refused {
                reason: "not allowed".into(),
            },
        }];
        let turn = TurnView {
            agent: &agent,
            settings: &EngineSettings::default(),
            tools: &tools,
            message: "m",
            calls: &calls,
            earlier: &[],
            deltas: None,
        };
        let body = step_request("m", &turn, 100);
        assert_eq!(
            body["messages"][3]["content"],
            r#"{"refused":"not allowed"}"#
        );
    }

    fn exchange(n: usize) -> Exchange {
        Exchange {
            said: vec![
                Said::Customer(format!("question {n}")),
                Said::Agent(format!("answer {n}")),
            ],
        }
    }

    fn contents(body: &Value) -> Vec<(String, String)> {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap().to_owned(),
                    m["content"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn the_oldest_exchanges_are_left_out_first_and_a_system_line_says_so() {
        let agent = agent();
        let earlier: Vec<Exchange> = (1..=5).map(exchange).collect();
        let one = exchange_messages(&earlier[0])
            .iter()
            .map(estimated_tokens)
            .sum::<usize>();
        let turn = TurnView {
            agent: &agent,
            settings: &EngineSettings::default(),
            tools: &[],
            message: "question 6",
            calls: &[],
            earlier: &earlier,
            deltas: None,
        };
        // Room for two exchanges and a bit, not three.
        let body = step_request("m", &turn, one * 2 + one / 2);
        let messages = contents(&body);
        assert_eq!(messages[0].0, "system");
        assert_eq!(messages[1].0, "system");
        assert!(
            messages[1].1.contains("first 3 customer message(s)")
                && messages[1].1.contains("(6 message(s))"),
            "{}",
            messages[1].1
        );
        let rest: Vec<_> = messages[2..]
            .iter()
            .map(|(role, text)| format!("{role}: {text}"))
            .collect();
        assert_eq!(
            rest,
            [
                "user: question 4",
                "assistant: answer 4",
                "user: question 5",
                "assistant: answer 5",
                "user: question 6"
            ]
        );
    }

    #[test]
    fn a_memory_that_fits_is_sent_whole_without_a_system_line() {
        let agent = agent();
        let earlier: Vec<Exchange> = (1..=2).map(exchange).collect();
        let turn = TurnView {
            agent: &agent,
            settings: &EngineSettings::default(),
            tools: &[],
            message: "question 3",
            calls: &[],
            earlier: &earlier,
            deltas: None,
        };
        let messages = contents(&step_request("m", &turn, 10_000));
        assert_eq!(messages.len(), 6, "{messages:?}");
        assert_eq!(messages.iter().filter(|m| m.0 == "system").count(), 1);
        // A budget of nothing keeps the system prompt and the message only.
        let messages = contents(&step_request("m", &turn, 0));
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert_eq!(messages[2], ("user".into(), "question 3".into()));
    }

    #[test]
    fn server_sent_events_are_read_whatever_the_chunk_boundaries() {
        let body = ": keep-alive\r\n\r\ndata: {\"a\":1}\n\nevent: x\ndata: two\ndata: lines\n\ndata:[DONE]\n\n";
        for cut in 1..body.len() {
            let mut lines = SseLines::default();
            let (first, second) = body.as_bytes().split_at(cut);
            let mut events = lines.feed(first);
            events.extend(lines.feed(second));
            assert_eq!(
                events,
                [r#"{"a":1}"#, "two\nlines", "[DONE]"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn empty_arguments_mean_an_empty_object() {
        let answer = completion(json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "listOrders", "arguments": ""}}
        ]}));
        assert_eq!(
            parse_step(&answer).unwrap(),
            Step::CallTool {
                tool: "listOrders".into(),
                params: json!({})
            }
        );
    }

    #[test]
    fn whitespace_content_without_tool_calls_is_malformed() {
        let answer = completion(json!({"role": "assistant", "content": "  "}));
        let err = parse_step(&answer).unwrap_err();
        assert!(matches!(err, EngineError::Retryable(m) if m.starts_with("malformed response:")));
    }

    #[test]
    fn an_error_excerpt_is_one_short_line() {
        let long = format!("line one\n{}", "x".repeat(500));
        let short = excerpt(&long);
        assert!(short.starts_with("line one x"));
        assert_eq!(short.chars().count(), ERROR_EXCERPT_CHARS + 1);
    }
}
