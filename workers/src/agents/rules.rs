//! The rule engine: the agents config's intents, applied without a model. It is
//! deterministic — the same message and tool results always give the same steps — so tests
//! and the offline demo need no model server.
//!
//! For a message, the agent's first intent whose pattern matches is taken. An intent with
//! a tool first calls it with the arguments found in the message (a missing one gets the
//! intent's `missing_reply`), then answers with its `reply` template filled from the
//! result, or its `error_reply` when the call failed.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::config::{AgentsConfig, Intent, render};
use super::{
    AgentCard, BoxFuture, CallOutcome, CallRecord, Engine, EngineError, Metered, Step, TurnView,
};

/// The built-in deterministic engine.
#[derive(Debug, Clone)]
pub struct RuleEngine {
    config: Arc<AgentsConfig>,
}

impl RuleEngine {
    /// Its [`Engine::name`].
    pub const NAME: &'static str = "rules";

    pub fn new(config: Arc<AgentsConfig>) -> RuleEngine {
        RuleEngine { config }
    }

    /// The next step, without I/O.
    pub fn decide(&self, agent: &str, message: &str, calls: &[CallRecord]) -> Step {
        let Some(agent) = self.config.agent(agent) else {
            return Step::Reply(self.fallback(None, message));
        };
        let matching = |intent: &&Intent| intent.patterns.iter().any(|p| p.is_match(message));
        if let Some(call) = calls.last() {
            // Answer with the template of the intent that made this call (the one matching
            // the message, or any with that tool when the message was a "yes").
            let intent = agent
                .intents
                .iter()
                .filter(|i| i.tool.as_deref() == Some(call.tool.as_str()))
                .find(matching)
                .or_else(|| {
                    agent
                        .intents
                        .iter()
                        .find(|i| i.tool.as_deref() == Some(call.tool.as_str()))
                });
            return Step::Reply(answer(intent, call));
        }
        let Some(intent) = agent.intents.iter().find(matching) else {
            return Step::Reply(self.fallback(Some(&agent.fallback_reply), message));
        };
        let Some(tool) = &intent.tool else {
            return Step::Reply(render(&intent.reply, &json!({ "message": message })));
        };
        let mut params = Map::new();
        for param in &intent.params {
            let Some(found) = param.find(message) else {
                let reply = intent.missing_reply.clone().unwrap_or_else(|| {
                    format!(
                        "I need the {} to help with that.",
                        param.name.replace('_', " ")
                    )
                });
                return Step::Reply(reply);
            };
            params.insert(param.name.clone(), Value::String(found));
        }
        Step::CallTool {
            tool: tool.clone(),
            params: Value::Object(params),
        }
    }

    fn fallback(&self, template: Option<&str>, message: &str) -> String {
        let template = template.unwrap_or("Thanks for your message. How can I help?");
        render(template, &json!({ "message": excerpt(message, 80) }))
    }
}

/// The reply after a tool call.
fn answer(intent: Option<&Intent>, call: &CallRecord) -> String {
    let mut context = json!({ "params": call.params });
    match &call.outcome {
        CallOutcome::Succeeded { result, .. } => {
            context["result"] = result.clone();
            match intent {
                Some(intent) => render(&intent.reply, &context),
                None => format!("Done: {} answered.", call.tool),
            }
        }
        // The customer reads the reason in words; the technical error stays in `tool.failed`.
        CallOutcome::Failed { reason, .. } => failed(intent, context, reason),
        CallOutcome::Refused { .. } => failed(intent, context, tools::reason::REFUSED),
    }
}

/// The reply after a failed or refused call: the intent's `error_reply` with `{error}`
/// the reason in words.
fn failed(intent: Option<&Intent>, mut context: Value, reason: &str) -> String {
    context["error"] = Value::String(reason.to_owned());
    match intent.and_then(|i| i.error_reply.as_ref()) {
        Some(template) => render(template, &context),
        None => format!("Sorry, that did not work: {reason}"),
    }
}

impl Engine for RuleEngine {
    fn name(&self) -> &'static str {
        RuleEngine::NAME
    }

    fn choose_agent<'a>(
        &'a self,
        _agents: &'a [AgentCard],
        _message: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
        // No rule matched: the config's default agent answers.
        Box::pin(async { Ok(None) })
    }

    fn next_step<'a>(&'a self, turn: TurnView<'a>) -> BoxFuture<'a, Result<Step, EngineError>> {
        Box::pin(async move { Ok(self.decide(&turn.agent.name, turn.message, turn.calls)) })
    }

    // By hand, not the trait's wrappers: one boxed future per step on the hot path, as
    // before token use was counted (no model, no tokens).
    fn choose_agent_metered<'a>(
        &'a self,
        _agents: &'a [AgentCard],
        _message: &'a str,
    ) -> BoxFuture<'a, Result<Metered<Option<String>>, EngineError>> {
        Box::pin(async { Ok((None, None)) })
    }

    fn next_step_metered<'a>(
        &'a self,
        turn: TurnView<'a>,
    ) -> BoxFuture<'a, Result<Metered<Step>, EngineError>> {
        Box::pin(async move {
            Ok((
                self.decide(&turn.agent.name, turn.message, turn.calls),
                None,
            ))
        })
    }
}

/// The first `max` characters of `text` on one line, with an ellipsis when cut.
fn excerpt(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::events::ErrorCategory;
    use std::path::Path;

    fn engine() -> RuleEngine {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/agents.yaml");
        RuleEngine::new(Arc::new(AgentsConfig::load(&path).unwrap()))
    }

    #[test]
    fn an_order_question_with_a_number_calls_get_order() {
        let step = engine().decide("orders", "where is ord-1001?", &[]);
        assert_eq!(
            step,
            Step::CallTool {
                tool: "getOrder".into(),
                params: json!({"order_id": "ORD-1001"})
            }
        );
    }

    #[test]
    fn an_order_is_found_as_customers_write_it() {
        let engine = engine();
        for message in [
            "what is the status of my order 1001?",
            "where is #1001",
            "where is ord-1001",
            "ORD-1001 please",
            "order #1001",
            "my order number 1001 is late",
            "order no. 1001",
        ] {
            assert_eq!(
                engine.decide("orders", message, &[]),
                Step::CallTool {
                    tool: "getOrder".into(),
                    params: json!({"order_id": "ORD-1001"})
                },
                "{message}"
            );
        }
        assert_eq!(
            engine.decide("billing", "refund order 1003 please", &[]),
            Step::CallTool {
                tool: "refundOrder".into(),
                params: json!({"order_id": "ORD-1003"})
            }
        );
    }

    #[test]
    fn an_order_question_without_a_number_asks_for_it() {
        let Step::Reply(text) = engine().decide("orders", "where is my order?", &[]) else {
            panic!()
        };
        assert!(text.contains("order number"), "{text}");
    }

    #[test]
    fn the_reply_uses_the_tool_result() {
        let call = CallRecord {
            tool: "getOrder".into(),
            params: json!({"order_id": "ORD-1001"}),
            outcome: CallOutcome::Succeeded {
                status: 200,
                result: json!({"order_id": "ORD-1001", "status": "shipped", "total_cents": 4250}),
            },
        };
        let step = engine().decide("orders", "where is ORD-1001", &[call]);
        assert_eq!(
            step,
            Step::Reply("Order ORD-1001 is shipped (total $42.50).".into())
        );
    }

    #[test]
    fn a_failed_call_gets_the_error_reply() {
        let call = CallRecord {
            tool: "cancelOrder".into(),
            params: json!({"order_id": "ORD-1002"}),
            outcome: CallOutcome::Failed {
                category: ErrorCategory::NotRetryable,
                error: r#"HTTP 409: {"error":{"code":"not_cancellable","message":"order already shipped"}}"#.into(),
                reason: "order already shipped".into(),
                status: Some(409),
            },
        };
        let Step::Reply(text) = engine().decide("orders", "yes", &[call]) else {
            panic!()
        };
        assert_eq!(
            text,
            "I could not cancel order ORD-1002: order already shipped"
        );
    }

    #[test]
    fn a_refused_call_is_answered_without_the_technical_reason() {
        let call = CallRecord {
            tool: "cancelOrder".into(),
            params: json!({"order_id": "ORD-1002"}),
            outcome: CallOutcome::Refused {
                reason: "cancelOrder is not one of agent billing's tools".into(),
            },
        };
        let Step::Reply(text) = engine().decide("orders", "yes", &[call]) else {
            panic!()
        };
        assert_eq!(
            text,
            "I could not cancel order ORD-1002: that is not something I can do here"
        );
    }

    #[test]
    fn a_greeting_needs_no_tool() {
        let Step::Reply(text) = engine().decide("triage", "hi there", &[]) else {
            panic!()
        };
        assert!(text.starts_with("Hello!"), "{text}");
    }

    #[test]
    fn the_fallback_quotes_the_message_on_one_line() {
        let Step::Reply(text) = engine().decide("general", "The   colour is\nwrong", &[]) else {
            panic!()
        };
        assert!(text.contains("“The colour is wrong”"), "{text}");
    }

    #[test]
    fn the_same_message_always_gets_the_same_step() {
        let engine = engine();
        assert_eq!(
            engine.decide("billing", "refund ORD-1004", &[]),
            engine.decide("billing", "refund ORD-1004", &[])
        );
    }
}
