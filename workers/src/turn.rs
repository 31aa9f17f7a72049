//! One agent turn: the only place decisions are made. Given the user message, what the
//! thread's previous turn left pending, and what an earlier attempt of this turn already
//! stored, it routes the message to an agent, asks the engine for steps, enforces the
//! agent's tool permissions and the escalation rules, calls tools, and emits the turn's
//! events as it goes.
//!
//! Every event id is derived from the turn id and the step, so a redone turn publishes the
//! same ids: JetStream drops the repeats, and events an earlier attempt stored are not
//! emitted again. A tool result already stored is reused, not fetched again, and a tool
//! call carries `Idempotency-Key: <turn id>:<call id>:<hash of tool and arguments>`, so a
//! crash between a call and its event does not repeat the side effect.
//!
//! I/O comes in through two traits, [`Tools`] and [`Sink`], so a test says "given this
//! message, expect these events".

use std::collections::HashMap;
use std::sync::Arc;

use common::events::{
    AgentReplied, AgentRouted, CallArgs, Envelope, Escalation, EscalationReason, HeldReason,
    MessageReceived, MessageRedriven, OperatorRef, Payload, PendingAction, Permission, TokenUsage,
    ToolCalled, ToolFailed, ToolSucceeded, TurnCompleted, TurnHeld, TurnOutcome, TurnStarted,
    step_event_id,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::agents::config::{Agent, AgentsConfig, Answer, render};
use crate::agents::memory::{self, Exchange};
use crate::agents::{
    BoxFuture, CallOutcome, CallRecord, Deltas, Engine, EngineError, Step, TurnView,
};
use tools::{CallReport, Toolbox};

/// A user message as the worker received it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The `message.received` (or `message.redriven`) envelope.
    pub event: Envelope,
    /// Its stream sequence.
    pub seq: u64,
}

/// What the worker knows before the turn runs.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// The write the thread's previous turn asked the user to confirm.
    pub pending: Option<PendingAction>,
    /// Events of this very turn an earlier attempt already stored, in stream order.
    pub recorded: Vec<Envelope>,
    /// Where the conversation before this message is read from, when an engine that
    /// [`remembers`](Engine::remembers) asks (none: the engine is told nothing earlier).
    pub history: Option<Arc<dyn History>>,
    /// This is the message's last delivery: an engine that still fails hands the
    /// conversation to a person (`model_unavailable`) instead of dead-lettering it.
    pub last_attempt: bool,
    /// Where a streaming engine sends the reply's pieces (the customer's WebSocket).
    pub deltas: Option<Arc<dyn Deltas>>,
}

/// Reads the thread's events before the message being answered, in stream order (the
/// stream in production: the same events on every delivery of the message).
pub trait History: Send + Sync + std::fmt::Debug {
    fn read(&self) -> BoxFuture<'_, Result<Vec<Envelope>, String>>;
}

/// A conversation already in hand (a replay, a test).
impl History for Vec<Envelope> {
    fn read(&self) -> BoxFuture<'_, Result<Vec<Envelope>, String>> {
        let events = self.clone();
        Box::pin(async move { Ok(events) })
    }
}

/// Why a turn did not end.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The event is not a user message (a worker's filter should never deliver one).
    #[error("expected a user message, got {0}")]
    NotAUserMessage(&'static str),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An event was not stored.
    #[error("turn event not stored: {0}")]
    Publish(String),
    /// The conversation before the message could not be read.
    #[error("cannot read the conversation so far: {0}")]
    History(String),
}

/// Calls tools (the [`Toolbox`] in production).
pub trait Tools: Send + Sync {
    /// Calls a tool, retries included.
    fn call<'a>(
        &'a self,
        name: &'a str,
        params: &'a Value,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, CallReport>;

    /// The JSON schema and description of a tool, for the engine.
    fn def(&self, name: &str) -> Option<crate::agents::ToolDef>;
}

impl Tools for Toolbox {
    fn call<'a>(
        &'a self,
        name: &'a str,
        params: &'a Value,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, CallReport> {
        Box::pin(Toolbox::call(self, name, params, Some(idempotency_key)))
    }

    fn def(&self, name: &str) -> Option<crate::agents::ToolDef> {
        self.spec(name).map(|spec| spec.def())
    }
}

/// Where a turn's events go (JetStream in production). `emit` may return before the
/// event is stored; `flush` returns once every emitted event is.
pub trait Sink: Send {
    fn emit(&mut self, event: Envelope) -> BoxFuture<'_, Result<(), TurnError>>;
    fn flush(&mut self) -> BoxFuture<'_, Result<(), TurnError>>;
}

/// Keeps a turn's events in memory instead of storing them (a replay, a generator): every
/// emitted event is "stored" at once.
impl Sink for Vec<Envelope> {
    fn emit(&mut self, event: Envelope) -> BoxFuture<'_, Result<(), TurnError>> {
        self.push(event);
        Box::pin(async { Ok(()) })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), TurnError>> {
        Box::pin(async { Ok(()) })
    }
}

/// What a turn needs: the config, the engines and the tools.
#[derive(Clone)]
pub struct Agents {
    pub config: Arc<AgentsConfig>,
    /// The worker's engine (`AGENT_ENGINE`): routing, and every agent that names none.
    pub engine: Arc<dyn Engine>,
    pub tools: Arc<dyn Tools>,
    /// The other engines agents name in the config (`engine:`), by [`Engine::name`].
    pub others: Vec<Arc<dyn Engine>>,
}

impl Agents {
    /// The engine that answers `agent`'s turns: the one it names, else the worker's.
    pub fn engine_for(&self, agent: &Agent) -> &Arc<dyn Engine> {
        match agent.engine.name {
            Some(name) if name.as_str() != self.engine.name() => self
                .others
                .iter()
                .find(|engine| engine.name() == name.as_str())
                .unwrap_or(&self.engine),
            _ => &self.engine,
        }
    }

    /// Whether some agent's engine streams its replies.
    pub fn stream(&self) -> bool {
        self.engine.streams() || self.others.iter().any(|engine| engine.streams())
    }

    /// Whether some agent's engine is told the conversation so far.
    pub fn remember(&self) -> bool {
        self.engine.remembers() || self.others.iter().any(|engine| engine.remembers())
    }
}

/// Runs the turn that answers `incoming`, emitting its events into `sink` (flushed at the
/// end). `now` stamps the events.
pub async fn run(
    agents: &Agents,
    incoming: &Incoming,
    prior: Prior,
    sink: &mut dyn Sink,
    now: impl Fn() -> OffsetDateTime + Send + Sync,
) -> Result<(), TurnError> {
    let content = match &incoming.event.payload {
        Payload::MessageReceived(MessageReceived { content, .. })
        | Payload::MessageRedriven(MessageRedriven { content, .. }) => content.as_str(),
        other => return Err(TurnError::NotAUserMessage(other.kind())),
    };
    let mut turn = Turn {
        agents,
        incoming,
        content,
        recorded: prior
            .recorded
            .into_iter()
            .map(|event| (event.event_id, event))
            .collect(),
        sink,
        now: &now,
        calls: Vec::new(),
        failed_calls: 0,
        history: prior.history,
        earlier: None,
        last_attempt: prior.last_attempt,
        deltas: prior.deltas,
        usage: None,
        confirming: prior.pending.clone(),
    };
    if turn
        .recorded
        .values()
        .any(|event| event.payload.is_terminal())
    {
        // An earlier attempt finished the turn; only its ack was lost.
        return Ok(());
    }
    turn.answer(prior.pending).await?;
    turn.sink.flush().await
}

/// Closes the turn of a message a person will answer (the conversation is escalated or
/// held by an operator): `turn.held` alone; the agents are not asked.
pub async fn hold(
    incoming: &Incoming,
    reason: HeldReason,
    operator: Option<OperatorRef>,
    sink: &mut dyn Sink,
    now: impl Fn() -> OffsetDateTime + Send + Sync,
) -> Result<(), TurnError> {
    let message = &incoming.event;
    if !message.payload.is_user_message() {
        return Err(TurnError::NotAUserMessage(message.payload.kind()));
    }
    sink.emit(Envelope::new(
        step_event_id(&message.turn_id, "held"),
        message.thread_id.clone(),
        message.turn_id,
        now(),
        TurnHeld {
            message_seq: incoming.seq,
            reason,
            operator,
        },
    ))
    .await?;
    sink.flush().await
}

/// The state of a running turn.
struct Turn<'a> {
    agents: &'a Agents,
    incoming: &'a Incoming,
    content: &'a str,
    /// Events an earlier attempt stored, by id.
    recorded: HashMap<Uuid, Envelope>,
    sink: &'a mut dyn Sink,
    now: &'a (dyn Fn() -> OffsetDateTime + Send + Sync),
    calls: Vec<CallRecord>,
    failed_calls: usize,
    history: Option<Arc<dyn History>>,
    /// The conversation before the message, once read.
    earlier: Option<Vec<Exchange>>,
    last_attempt: bool,
    deltas: Option<Arc<dyn Deltas>>,
    /// The tokens the model server reported for this attempt's requests.
    usage: Option<TokenUsage>,
    /// The write the previous turn left waiting for this message's answer.
    confirming: Option<PendingAction>,
}

impl<'a> Turn<'a> {
    fn used(&mut self, usage: Option<TokenUsage>) {
        if let Some(usage) = usage {
            self.usage = Some(self.usage.unwrap_or_default().plus(usage));
        }
    }

    /// Whether an engine failure hands the customer to a person now: the engine's breaker
    /// is open, or the model server still fails on the message's last delivery. Waiting
    /// longer would only leave the customer without an answer.
    fn hands_over(&self, err: &EngineError) -> bool {
        match err {
            EngineError::Unavailable(_) => true,
            EngineError::Retryable(_) => self.last_attempt,
            EngineError::Permanent(_) => false,
        }
    }

    /// The conversation before the message, read once, and only for an engine that
    /// remembers (the rule engine's turns never read it).
    async fn earlier(&mut self, engine: &dyn Engine) -> Result<Vec<Exchange>, TurnError> {
        if !engine.remembers() {
            return Ok(Vec::new());
        }
        if let Some(earlier) = &self.earlier {
            return Ok(earlier.clone());
        }
        let events = match &self.history {
            Some(history) => history.read().await.map_err(TurnError::History)?,
            None => Vec::new(),
        };
        let earlier = memory::earlier(&events);
        self.earlier = Some(earlier.clone());
        Ok(earlier)
    }

    async fn answer(&mut self, pending: Option<PendingAction>) -> Result<(), TurnError> {
        let config: &'a AgentsConfig = &self.agents.config;
        if let Some(action) = pending {
            // The config may have changed since the question: only a tool the agent still
            // has as a `write` runs on this "yes".
            let agent = config.agent(&action.agent).filter(|agent| {
                agent
                    .tool(&action.tool)
                    .is_some_and(|tool| tool.permission == Permission::Write)
            });
            match (config.answer(self.content), agent) {
                (Answer::Yes, Some(agent)) => {
                    self.start(agent, format!("confirmation of {}", action.tool))
                        .await?;
                    self.call(agent, action.tool, action.params).await?;
                    return self.steps(agent).await;
                }
                (Answer::No, Some(agent)) => {
                    self.start(agent, format!("confirmation of {}", action.tool))
                        .await?;
                    let text = config.confirmation.cancelled_reply.clone();
                    return self.reply(agent, text).await;
                }
                // Anything else drops the pending action: the message is a new request.
                _ => {}
            }
        }
        let agent = self.route().await?;
        if let Some((reason, detail)) = config.escalation_trigger(self.content) {
            return self.escalate(agent, reason, detail).await;
        }
        self.steps(agent).await
    }

    /// Chooses the agent: the one an earlier attempt of the turn stored, else the config's
    /// routing rules, else the engine, else the default; and starts the turn with it.
    async fn route(&mut self) -> Result<&'a Agent, TurnError> {
        let config: &'a AgentsConfig = &self.agents.config;
        // Version 1 stored the routing as an event of its own (`routed`).
        let stored = ["started", "routed"]
            .into_iter()
            .filter_map(|step| self.recorded.get(&self.step_id(step)))
            .find_map(|event| event.payload.routing())
            .and_then(|routed| Some((config.agent(&routed.agent)?, routed.reason.clone())));
        if let Some((agent, reason)) = stored {
            self.start(agent, reason).await?;
            return Ok(agent);
        }
        let (agent, reason) = match config.route(self.content) {
            Some(found) => found,
            None => {
                let cards = config.cards();
                let chosen = match self
                    .agents
                    .engine
                    .choose_agent_metered(&cards, self.content)
                    .await
                {
                    Ok((chosen, usage)) => {
                        self.used(usage);
                        chosen
                    }
                    // The default agent answers (and escalates if its engine is down too).
                    Err(err) if self.hands_over(&err) => None,
                    Err(err) => return Err(err.into()),
                };
                match chosen.as_deref().and_then(|name| config.agent(name)) {
                    Some(agent) => (agent, "the engine's choice".to_owned()),
                    None => (
                        config
                            .agent(&config.default_agent)
                            .expect("the config checks that the default agent exists"),
                        "default agent".to_owned(),
                    ),
                }
            }
        };
        self.start(agent, reason).await?;
        Ok(agent)
    }

    /// Asks the engine for steps until it replies, running the tool calls it proposes.
    async fn steps(&mut self, agent: &Agent) -> Result<(), TurnError> {
        let config: &'a AgentsConfig = &self.agents.config;
        let tools: Vec<_> = agent
            .tools
            .iter()
            .filter_map(|tool| self.agents.tools.def(&tool.operation))
            .collect();
        let agents: &'a Agents = self.agents;
        let engine = agents.engine_for(agent);
        let earlier = self.earlier(engine.as_ref()).await?;
        loop {
            let view = TurnView {
                agent: &agent.card,
                settings: &agent.engine,
                tools: &tools,
                message: self.content,
                calls: &self.calls,
                earlier: &earlier,
                deltas: self.deltas.as_deref(),
            };
            let step = match engine.next_step_metered(view).await {
                Ok((step, usage)) => {
                    self.used(usage);
                    step
                }
                Err(err) if self.hands_over(&err) => {
                    let detail = format!("the model server could not answer: {err}");
                    return self
                        .escalate(agent, EscalationReason::ModelUnavailable, detail)
                        .await;
                }
                Err(err) => return Err(err.into()),
            };
            match step {
                Step::Reply(text) => {
                    return self.reply(agent, text).await;
                }
                Step::CallTool { tool, params } => {
                    if self.calls.len() >= config.max_tool_calls {
                        let detail = format!(
                            "the agent wanted more than {} tool calls in one turn",
                            config.max_tool_calls
                        );
                        return self
                            .escalate(agent, EscalationReason::ToolFailures, detail)
                            .await;
                    }
                    match agent.tool(&tool).map(|t| (t.permission, t.confirm.clone())) {
                        None => {
                            let reason =
                                format!("{tool} is not one of agent {}'s tools", agent.card.name);
                            self.refuse(tool, params, reason).await?;
                        }
                        Some((Permission::Read, _)) => self.call(agent, tool, params).await?,
                        Some((Permission::Write, confirm)) => {
                            return self.ask_confirmation(agent, tool, params, confirm).await;
                        }
                        Some((Permission::Destructive, _)) => {
                            let detail = format!(
                                "the agent wanted to run the destructive tool {tool} with {params}"
                            );
                            return self
                                .escalate(agent, EscalationReason::DestructiveAction, detail)
                                .await;
                        }
                    }
                    if self.failed_calls >= config.escalation.max_failed_tool_calls {
                        let errors: Vec<String> = self
                            .calls
                            .iter()
                            .filter_map(|call| match &call.outcome {
                                CallOutcome::Failed { error, .. }
                                | CallOutcome::Refused { reason: error } => {
                                    Some(format!("{}: {error}", call.tool))
                                }
                                CallOutcome::Succeeded { .. } => None,
                            })
                            .collect();
                        let detail = format!(
                            "{} failed tool calls: {}",
                            self.failed_calls,
                            errors.join("; ")
                        );
                        return self
                            .escalate(agent, EscalationReason::ToolFailures, detail)
                            .await;
                    }
                }
            }
        }
    }

    /// Runs a permitted tool call, or reuses the result an earlier attempt stored.
    async fn call(&mut self, agent: &Agent, tool: String, params: Value) -> Result<(), TurnError> {
        let permission = agent.tool(&tool).map_or(Permission::Read, |t| t.permission);
        let call_id = format!("tool-{}", self.calls.len() + 1);
        let step = format!("{call_id}/{tool}/{params}");
        let args = CallArgs {
            params: params.clone(),
            permission: Some(permission),
        };
        let result_id = self.step_id(&format!("{step}.result"));
        let outcome = match self.recorded.get(&result_id).map(|e| &e.payload) {
            Some(Payload::ToolSucceeded(done)) => CallOutcome::Succeeded {
                status: done.status,
                result: done.result.clone(),
            },
            Some(Payload::ToolFailed(failed)) => CallOutcome::Failed {
                category: failed.category,
                error: failed.error.clone(),
                reason: failed.reason.clone().unwrap_or_else(|| {
                    tools::reason::in_words(None, failed.status, failed.category)
                }),
                status: failed.status,
            },
            _ => {
                // A write is on record before its side effect happens: its `tool.called`,
                // and everything before it, stored. A read has no side effect to record
                // first: its result alone says it was made, and the turn's events stay in
                // flight while the request is made.
                if permission != Permission::Read {
                    self.emit(
                        &format!("{step}.called"),
                        ToolCalled {
                            call_id: call_id.clone(),
                            tool: tool.clone(),
                            params: params.clone(),
                            permission,
                        },
                    )
                    .await?;
                    self.sink.flush().await?;
                }
                // Names this tool with these arguments: a redo that proposes other
                // arguments must not get the stored answer of the first request.
                let request = self.step_id(&step).simple().to_string();
                let key = format!(
                    "{}:{call_id}:{}",
                    self.incoming.event.turn_id,
                    &request[..8]
                );
                let report = self.agents.tools.call(&tool, &params, &key).await;
                let result = match &report.result {
                    Ok(_) => "succeeded",
                    Err(err) => err.category.as_str(),
                };
                crate::metrics::METRICS
                    .tool_calls
                    .get_or_create(&crate::metrics::ToolLabel {
                        tool: tool.clone(),
                        result,
                    })
                    .inc();
                let latency_ms = report.elapsed.as_millis().min(u128::from(u64::MAX)) as u64;
                let (payload, outcome): (Payload, _) = match report.result {
                    Ok(response) => (
                        ToolSucceeded {
                            call_id,
                            tool: tool.clone(),
                            call: Some(args),
                            status: response.status,
                            result: response.body.clone(),
                            latency_ms,
                            attempts: report.attempts,
                        }
                        .into(),
                        CallOutcome::Succeeded {
                            status: response.status,
                            result: response.body,
                        },
                    ),
                    Err(err) => {
                        let reason = err.reason();
                        (
                            ToolFailed {
                                call_id,
                                tool: tool.clone(),
                                call: Some(args),
                                category: err.category,
                                error: err.message.clone(),
                                reason: Some(reason.clone()),
                                status: err.status,
                                latency_ms,
                                attempts: report.attempts,
                            }
                            .into(),
                            CallOutcome::Failed {
                                category: err.category,
                                error: err.message,
                                reason,
                                status: err.status,
                            },
                        )
                    }
                };
                self.emit(&format!("{step}.result"), payload).await?;
                outcome
            }
        };
        if !matches!(outcome, CallOutcome::Succeeded { .. }) {
            self.failed_calls += 1;
        }
        self.calls.push(CallRecord {
            tool,
            params,
            outcome,
        });
        Ok(())
    }

    /// Records a call the agent may not make; the engine hears why.
    async fn refuse(
        &mut self,
        tool: String,
        params: Value,
        reason: String,
    ) -> Result<(), TurnError> {
        let call_id = format!("tool-{}", self.calls.len() + 1);
        self.emit(
            &format!("{call_id}/{tool}/{params}.refused"),
            ToolFailed {
                call_id,
                tool: tool.clone(),
                call: Some(CallArgs {
                    params: params.clone(),
                    permission: None,
                }),
                category: common::events::ErrorCategory::NotRetryable,
                error: reason.clone(),
                reason: Some(tools::reason::REFUSED.into()),
                status: None,
                latency_ms: 0,
                attempts: 0,
            },
        )
        .await?;
        self.failed_calls += 1;
        self.calls.push(CallRecord {
            tool,
            params,
            outcome: CallOutcome::Refused { reason },
        });
        Ok(())
    }

    async fn ask_confirmation(
        &mut self,
        agent: &Agent,
        tool: String,
        params: Value,
        confirm: Option<String>,
    ) -> Result<(), TurnError> {
        let prompt = match confirm {
            Some(template) => render(&template, &params),
            None => {
                format!("Shall I run {tool} with {params}? Reply yes to confirm or no to cancel.")
            }
        };
        let action = PendingAction {
            agent: agent.card.name.clone(),
            tool,
            params,
        };
        self.end(
            agent,
            prompt,
            TurnOutcome::AwaitingConfirmation,
            Some(action),
            None,
        )
        .await
    }

    async fn escalate(
        &mut self,
        agent: &Agent,
        reason: EscalationReason,
        detail: String,
    ) -> Result<(), TurnError> {
        let text = self.agents.config.escalation.reply.clone();
        let escalation = Escalation { reason, detail };
        self.end(agent, text, TurnOutcome::Escalated, None, Some(escalation))
            .await
    }

    /// `turn.started`, with the agent that answers and why: the turn's first event.
    async fn start(&mut self, agent: &Agent, reason: String) -> Result<(), TurnError> {
        self.emit(
            "started",
            TurnStarted {
                message_seq: self.incoming.seq,
                confirming: self.confirming.clone(),
                routed: Some(AgentRouted {
                    agent: agent.card.name.clone(),
                    reason,
                }),
            },
        )
        .await
    }

    /// A plain reply: the end of the turn.
    async fn reply(&mut self, agent: &Agent, text: String) -> Result<(), TurnError> {
        self.end(agent, text, TurnOutcome::Replied, None, None)
            .await
    }

    /// `agent.replied`, which ends the turn: what the user reads, how the turn ended, the
    /// write waiting for a "yes", the hand-over to a person.
    async fn end(
        &mut self,
        agent: &Agent,
        text: String,
        outcome: TurnOutcome,
        pending: Option<PendingAction>,
        escalation: Option<Escalation>,
    ) -> Result<(), TurnError> {
        let replied_at = (self.now)();
        let latency_ms = (replied_at - self.incoming.event.occurred_at)
            .whole_milliseconds()
            .clamp(0, i128::from(u64::MAX)) as u64;
        let end = TurnCompleted {
            outcome,
            latency_ms,
            message_seq: self.incoming.seq,
            pending,
        };
        let replied = self.step_id("replied");
        if self
            .recorded
            .get(&replied)
            .is_some_and(|stored| !stored.payload.is_terminal())
        {
            // Version 1 stored this turn's reply and died before its `turn.completed`: the
            // reply cannot be stored again under its id, so the turn ends the old way.
            return self.emit("completed", end).await;
        }
        self.emit(
            "replied",
            AgentReplied {
                text,
                agent: agent.card.name.clone(),
                engine: self.agents.engine_for(agent).name().into(),
                usage: self.usage,
                end: Some(end),
                escalation,
            },
        )
        .await
    }

    fn step_id(&self, step: &str) -> Uuid {
        step_event_id(&self.incoming.event.turn_id, step)
    }

    /// Emits the event of a step, unless an earlier attempt stored it already.
    async fn emit(&mut self, step: &str, payload: impl Into<Payload>) -> Result<(), TurnError> {
        let id = self.step_id(step);
        if self.recorded.contains_key(&id) {
            return Ok(());
        }
        let message = &self.incoming.event;
        let event = Envelope::new(
            id,
            message.thread_id.clone(),
            message.turn_id,
            (self.now)(),
            payload,
        );
        self.sink.emit(event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::{AgentCard, RuleEngine, ToolDef};
    use common::events::{ErrorCategory, ThreadId, TurnId};
    use serde_json::json;
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::Duration;
    use time::macros::datetime;
    use tools::{ToolError, ToolResponse};

    /// A scripted tool answer: a body, or a failure's category and status.
    type Scripted = Result<Value, (ErrorCategory, u16)>;

    /// Tools that answer from a script and count their calls.
    #[derive(Default)]
    struct FakeTools {
        answers: Mutex<HashMap<String, Vec<Scripted>>>,
        calls: Mutex<Vec<(String, Value, String)>>,
        log: Log,
    }

    impl FakeTools {
        fn answering(tool: &str, answers: Vec<Scripted>) -> FakeTools {
            let fake = FakeTools::default();
            fake.answers.lock().unwrap().insert(tool.into(), answers);
            fake
        }
    }

    impl Tools for FakeTools {
        fn call<'a>(
            &'a self,
            name: &'a str,
            params: &'a Value,
            key: &'a str,
        ) -> BoxFuture<'a, CallReport> {
            self.calls
                .lock()
                .unwrap()
                .push((name.into(), params.clone(), key.into()));
            self.log.lock().unwrap().push(format!("call: {name}"));
            let answer = self
                .answers
                .lock()
                .unwrap()
                .get_mut(name)
                .and_then(|answers| (!answers.is_empty()).then(|| answers.remove(0)))
                .unwrap_or(Ok(
                    json!({"order_id": "ORD-1001", "status": "processing", "total_cents": 1000}),
                ));
            Box::pin(async move {
                CallReport {
                    result: answer
                        .map(|body| ToolResponse { status: 200, body })
                        .map_err(|(category, status)| ToolError {
                            category,
                            status: Some(status),
                            message: format!("HTTP {status}"),
                            api_message: None,
                        }),
                    attempts: 1,
                    elapsed: Duration::from_millis(3),
                }
            })
        }

        fn def(&self, name: &str) -> Option<ToolDef> {
            Some(ToolDef {
                name: name.into(),
                description: String::new(),
                parameters: json!({"type": "object"}),
            })
        }
    }

    /// Keeps what it is given; can be told to fail from the n-th event on.
    #[derive(Default)]
    struct VecSink {
        events: Vec<Envelope>,
        fail_from: Option<usize>,
        /// Shared with [`FakeTools`]: what was on record when, and when calls were made.
        log: Log,
        /// How many of `events` a flush has put on record.
        flushed: usize,
    }

    /// `stored: <kind>` for each event a flush put on record, `call: <tool>` for each call.
    type Log = Arc<Mutex<Vec<String>>>;

    impl Sink for VecSink {
        fn emit(&mut self, event: Envelope) -> BoxFuture<'_, Result<(), TurnError>> {
            Box::pin(async move {
                if self.fail_from.is_some_and(|n| self.events.len() >= n) {
                    return Err(TurnError::Publish("stream down".into()));
                }
                self.events.push(event);
                Ok(())
            })
        }

        fn flush(&mut self) -> BoxFuture<'_, Result<(), TurnError>> {
            let stored = &self.events[self.flushed..];
            self.log.lock().unwrap().extend(
                stored
                    .iter()
                    .map(|event| format!("stored: {}", event.payload.kind())),
            );
            self.flushed = self.events.len();
            Box::pin(async { Ok(()) })
        }
    }

    fn config() -> Arc<AgentsConfig> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/agents.yaml");
        Arc::new(AgentsConfig::load(&path).unwrap())
    }

    fn agents(tools: FakeTools) -> (Agents, Arc<FakeTools>) {
        let config = config();
        let tools = Arc::new(tools);
        let agents = Agents {
            engine: Arc::new(RuleEngine::new(config.clone())),
            config,
            tools: tools.clone(),
            others: Vec::new(),
        };
        (agents, tools)
    }

    fn incoming(content: &str, turn: u128) -> Incoming {
        Incoming {
            event: Envelope::new(
                Uuid::from_u128(turn + 1000),
                ThreadId::parse("t").unwrap(),
                TurnId::from_uuid(Uuid::from_u128(turn)),
                datetime!(2026-11-25 10:00:00 UTC),
                MessageReceived {
                    content: content.into(),
                    client_msg_id: None,
                    backdated_ms: None,
                },
            ),
            seq: 40 + turn as u64,
        }
    }

    fn at() -> OffsetDateTime {
        datetime!(2026-11-25 10:00:00.250 UTC)
    }

    async fn turn(agents: &Agents, incoming: &Incoming, prior: Prior) -> Vec<Envelope> {
        let mut sink = VecSink::default();
        run(agents, incoming, prior, &mut sink, at).await.unwrap();
        sink.events
    }

    fn kinds(events: &[Envelope]) -> Vec<&'static str> {
        events.iter().map(|e| e.payload.kind()).collect()
    }

    fn reply_text(events: &[Envelope]) -> &str {
        events
            .iter()
            .find_map(|e| match &e.payload {
                Payload::AgentReplied(reply) => Some(reply.text.as_str()),
                _ => None,
            })
            .expect("a reply")
    }

    /// How the turn ended: its last event, the reply that carries its end.
    fn completed(events: &[Envelope]) -> &TurnCompleted {
        let last = &events.last().unwrap().payload;
        last.completion()
            .unwrap_or_else(|| panic!("the turn ended with {}", last.kind()))
    }

    fn escalation(events: &[Envelope]) -> &Escalation {
        match &events.last().unwrap().payload {
            Payload::AgentReplied(AgentReplied {
                escalation: Some(escalation),
                ..
            }) => escalation,
            other => panic!("the turn ended with {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_greeting_is_routed_and_answered_without_tools() {
        let (agents, tools) = agents(FakeTools::default());
        let events = turn(&agents, &incoming("hello there", 1), Prior::default()).await;
        assert_eq!(kinds(&events), ["turn.started", "agent.replied"]);
        let routed = events[0]
            .payload
            .routing()
            .expect("the start names the agent");
        assert_eq!(
            (routed.agent.as_str(), routed.reason.as_str()),
            ("triage", "keyword \"hello\"")
        );
        assert_eq!(completed(&events).latency_ms, 250);
        assert_eq!(completed(&events).message_seq, 41);
        assert!(tools.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_read_tool_runs_at_once_and_its_result_is_in_the_reply() {
        let (agents, tools) = agents(FakeTools::answering(
            "getOrder",
            vec![Ok(
                json!({"order_id": "ORD-1001", "status": "shipped", "total_cents": 4250}),
            )],
        ));
        let events = turn(
            &agents,
            &incoming("Where is ORD-1001?", 1),
            Prior::default(),
        )
        .await;
        assert_eq!(
            kinds(&events),
            ["turn.started", "tool.succeeded", "agent.replied"]
        );
        let Payload::ToolSucceeded(done) = &events[1].payload else {
            panic!()
        };
        assert_eq!(
            done.call,
            Some(CallArgs {
                params: json!({"order_id": "ORD-1001"}),
                permission: Some(Permission::Read)
            }),
            "the result carries its call"
        );
        assert_eq!(
            reply_text(&events),
            "Order ORD-1001 is shipped (total $42.50)."
        );
        let calls = tools.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].1, json!({"order_id": "ORD-1001"}));
        let turn = TurnId::from_uuid(Uuid::from_u128(1));
        let request = step_event_id(&turn, r#"tool-1/getOrder/{"order_id":"ORD-1001"}"#)
            .simple()
            .to_string();
        assert_eq!(calls[0].2, format!("{turn}:tool-1:{}", &request[..8]));
    }

    #[tokio::test]
    async fn a_write_asks_first_and_runs_after_yes() {
        let (agents, tools) = agents(FakeTools::default());
        let first = turn(
            &agents,
            &incoming("Please cancel ORD-1001", 1),
            Prior::default(),
        )
        .await;
        assert_eq!(kinds(&first), ["turn.started", "agent.replied"]);
        assert!(
            tools.calls.lock().unwrap().is_empty(),
            "nothing runs before the yes"
        );
        assert_eq!(
            reply_text(&first),
            "Shall I cancel order ORD-1001? Reply yes to confirm or no to keep it."
        );
        let done = completed(&first);
        assert_eq!(done.outcome, TurnOutcome::AwaitingConfirmation);
        let pending = done.pending.clone().unwrap();
        assert_eq!(pending.tool, "cancelOrder");

        let prior = Prior {
            pending: Some(pending),
            recorded: Vec::new(),
            history: None,
            last_attempt: false,
            deltas: None,
        };
        let second = turn(&agents, &incoming("yes", 2), prior).await;
        assert_eq!(
            kinds(&second),
            [
                "turn.started",
                "tool.called",
                "tool.succeeded",
                "agent.replied"
            ]
        );
        assert_eq!(tools.calls.lock().unwrap()[0].0, "cancelOrder");
        assert_eq!(completed(&second).outcome, TurnOutcome::Replied);
    }

    #[tokio::test]
    async fn a_write_is_on_record_before_it_runs_and_a_read_does_not_wait() {
        let (agents, tools) = agents(FakeTools::default());
        let run_logged = |incoming: Incoming, prior: Prior| {
            let agents = agents.clone();
            let log = tools.log.clone();
            async move {
                log.lock().unwrap().clear();
                let mut sink = VecSink {
                    log: log.clone(),
                    ..VecSink::default()
                };
                run(&agents, &incoming, prior, &mut sink, at).await.unwrap();
                let log = log.lock().unwrap().clone();
                (sink.events, log)
            }
        };
        let (_, read) = run_logged(incoming("Where is ORD-1001?", 1), Prior::default()).await;
        assert_eq!(
            read.first().map(String::as_str),
            Some("call: getOrder"),
            "a read is not held back for its events: {read:?}"
        );

        let (asked, _) = run_logged(incoming("Please cancel ORD-1001", 2), Prior::default()).await;
        let prior = Prior {
            pending: completed(&asked).pending.clone(),
            recorded: Vec::new(),
            history: None,
            last_attempt: false,
            deltas: None,
        };
        let (_, write) = run_logged(incoming("yes", 3), prior).await;
        let call = write.iter().position(|l| l == "call: cancelOrder").unwrap();
        assert_eq!(
            write[..call],
            ["stored: turn.started", "stored: tool.called"],
            "a write runs only once its call is on record: {write:?}"
        );
    }

    #[tokio::test]
    async fn a_no_drops_the_pending_write() {
        let (agents, tools) = agents(FakeTools::default());
        let first = turn(&agents, &incoming("cancel ORD-1001", 1), Prior::default()).await;
        let prior = Prior {
            pending: completed(&first).pending.clone(),
            recorded: Vec::new(),
            history: None,
            last_attempt: false,
            deltas: None,
        };
        let second = turn(&agents, &incoming("no", 2), prior).await;
        assert!(reply_text(&second).starts_with("All right, I won't"));
        assert!(tools.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_destructive_tool_is_never_run_and_escalates() {
        let (agents, tools) = agents(FakeTools::default());
        let events = turn(
            &agents,
            &incoming("delete ORD-1001 now", 1),
            Prior::default(),
        )
        .await;
        assert_eq!(kinds(&events), ["turn.started", "agent.replied"]);
        assert_eq!(
            escalation(&events).reason,
            EscalationReason::DestructiveAction
        );
        assert_eq!(completed(&events).outcome, TurnOutcome::Escalated);
        assert!(tools.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn asking_for_a_human_escalates() {
        let (agents, _) = agents(FakeTools::default());
        let events = turn(
            &agents,
            &incoming("I want to talk to a human", 1),
            Prior::default(),
        )
        .await;
        assert_eq!(escalation(&events).reason, EscalationReason::UserRequest);
    }

    /// An engine that always wants the same tool.
    struct Stubborn;

    impl Engine for Stubborn {
        fn name(&self) -> &'static str {
            "stubborn"
        }
        fn choose_agent<'a>(
            &'a self,
            _: &'a [AgentCard],
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
            Box::pin(async { Ok(None) })
        }
        fn next_step<'a>(&'a self, _: TurnView<'a>) -> BoxFuture<'a, Result<Step, EngineError>> {
            Box::pin(async {
                Ok(Step::CallTool {
                    tool: "getOrder".into(),
                    params: json!({"order_id": "ORD-1"}),
                })
            })
        }
    }

    #[tokio::test]
    async fn repeated_tool_failures_escalate() {
        let tools = FakeTools::answering(
            "getOrder",
            vec![
                Err((ErrorCategory::Retryable, 503)),
                Err((ErrorCategory::Retryable, 503)),
            ],
        );
        let (mut agents, tools) = agents(tools);
        agents.engine = Arc::new(Stubborn);
        let events = turn(&agents, &incoming("where is ORD-1", 1), Prior::default()).await;
        assert_eq!(tools.calls.lock().unwrap().len(), 2);
        let escalated = escalation(&events);
        assert_eq!(escalated.reason, EscalationReason::ToolFailures);
        assert!(
            escalated.detail.contains("2 failed tool calls"),
            "{}",
            escalated.detail
        );
    }

    #[tokio::test]
    async fn a_tool_the_agent_may_not_call_is_refused_and_the_engine_hears_why() {
        struct Outsider;
        impl Engine for Outsider {
            fn name(&self) -> &'static str {
                "outsider"
            }
            fn choose_agent<'a>(
                &'a self,
                _: &'a [AgentCard],
                _: &'a str,
            ) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
                Box::pin(async { Ok(None) })
            }
            fn next_step<'a>(
                &'a self,
                turn: TurnView<'a>,
            ) -> BoxFuture<'a, Result<Step, EngineError>> {
                let step = match turn.calls.first() {
                    None => Step::CallTool {
                        tool: "refundOrder".into(),
                        params: json!({}),
                    },
                    Some(call) => Step::Reply(format!("{:?}", call.outcome)),
                };
                Box::pin(async move { Ok(step) })
            }
        }
        let (mut agents, tools) = agents(FakeTools::default());
        agents.engine = Arc::new(Outsider);
        // "track" routes to orders, which has no refundOrder.
        let events = turn(&agents, &incoming("track it", 1), Prior::default()).await;
        assert!(tools.calls.lock().unwrap().is_empty());
        assert!(
            reply_text(&events).contains("not one of agent orders's tools"),
            "{}",
            reply_text(&events)
        );
        assert!(kinds(&events).contains(&"tool.failed"));
    }

    #[tokio::test]
    async fn a_redone_turn_reuses_the_stored_tool_result_and_repeats_no_event() {
        let (agents, tools) = agents(FakeTools::default());
        let message = incoming("Where is ORD-1001?", 1);
        // The first attempt stores two events (through tool.succeeded), then the stream
        // goes away.
        let mut sink = VecSink {
            fail_from: Some(2),
            ..VecSink::default()
        };
        let err = run(&agents, &message, Prior::default(), &mut sink, at)
            .await
            .unwrap_err();
        assert!(matches!(err, TurnError::Publish(_)));
        assert_eq!(kinds(&sink.events), ["turn.started", "tool.succeeded"]);
        let stored = sink.events;

        let prior = Prior {
            pending: None,
            recorded: stored.clone(),
            history: None,
            last_attempt: false,
            deltas: None,
        };
        let again = turn(&agents, &message, prior).await;
        assert_eq!(kinds(&again), ["agent.replied"]);
        assert_eq!(
            tools.calls.lock().unwrap().len(),
            1,
            "the tool is not called again"
        );

        // Nothing more once the turn is complete.
        let all: Vec<_> = stored.into_iter().chain(again).collect();
        let prior = Prior {
            pending: None,
            recorded: all,
            history: None,
            last_attempt: false,
            deltas: None,
        };
        assert!(turn(&agents, &message, prior).await.is_empty());
    }

    #[tokio::test]
    async fn a_turn_version_1_stored_up_to_its_reply_ends_the_old_way() {
        let (agents, _) = agents(FakeTools::default());
        let message = incoming("hello there", 1);
        let v2 = turn(&agents, &message, Prior::default()).await;
        // What version 1 stored before it died: its start, and the reply that did not end
        // the turn (upcast: no end).
        let mut reply = v2[1].clone();
        reply.schema_version = 1;
        let reply = common::events::upcast::upcast(reply).unwrap();
        let prior = Prior {
            recorded: vec![v2[0].clone(), reply],
            ..Prior::default()
        };
        let again = turn(&agents, &message, prior).await;
        assert_eq!(kinds(&again), ["turn.completed"]);
        assert_eq!(completed(&again).message_seq, 41);
    }

    #[tokio::test]
    async fn a_redone_turn_keeps_the_agent_its_start_named() {
        let (agents, _) = agents(FakeTools::default());
        let message = incoming("hello there", 1);
        let first = turn(&agents, &message, Prior::default()).await;
        let mut started = first[0].clone();
        let Payload::TurnStarted(TurnStarted {
            routed: Some(routed),
            ..
        }) = &mut started.payload
        else {
            panic!()
        };
        // An engine may choose another agent on a redo; the stored choice stands.
        routed.agent = "orders".into();
        let prior = Prior {
            recorded: vec![started],
            ..Prior::default()
        };
        let again = turn(&agents, &message, prior).await;
        let Payload::AgentReplied(reply) = &again[0].payload else {
            panic!("{again:?}")
        };
        assert_eq!(reply.agent, "orders");
    }

    #[tokio::test]
    async fn a_redone_turn_produces_the_same_event_ids() {
        let (agents, _) = agents(FakeTools::default());
        let message = incoming("Where is ORD-1001?", 1);
        let first = turn(&agents, &message, Prior::default()).await;
        let again = turn(&agents, &message, Prior::default()).await;
        let ids = |events: &[Envelope]| events.iter().map(|e| e.event_id).collect::<Vec<_>>();
        assert_eq!(ids(&first), ids(&again));
    }

    #[tokio::test]
    async fn a_turn_event_is_not_answered() {
        let (agents, _) = agents(FakeTools::default());
        let events = turn(&agents, &incoming("hi", 1), Prior::default()).await;
        let not_a_message = Incoming {
            event: events[1].clone(),
            seq: 42,
        };
        let mut sink = VecSink::default();
        let err = run(&agents, &not_a_message, Prior::default(), &mut sink, at)
            .await
            .unwrap_err();
        assert!(matches!(err, TurnError::NotAUserMessage("agent.replied")));
    }
}
