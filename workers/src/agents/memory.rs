//! The conversation so far, as a model engine is told it: the thread's events before the
//! message being answered, read from the stream (never the read models, so a redelivered
//! message asks the same question again), folded into [`Exchange`]s, one per earlier
//! customer message.
//!
//! [`earlier`] is a plain function over events; the read itself is the consumer's
//! (`consumer::history`), and the engine decides how much of it fits its budget.

use std::collections::HashMap;

use common::events::{Envelope, Payload, TurnId};

use super::CallOutcome;

/// What was said or done in the conversation, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    /// A customer message (`message.received`, `message.redriven`).
    Customer(String),
    /// What the agents told the customer (`agent.replied`, the apology of `turn.failed`).
    Agent(String),
    /// What an operator (a person) told the customer (`operator.replied`).
    Operator { name: String, text: String },
    /// A tool call the agents made, with its outcome (`tool.called` and its
    /// `tool.succeeded` / `tool.failed`).
    Call {
        /// Unique in the conversation: `<turn>-<call_id>`.
        id: String,
        tool: String,
        params: serde_json::Value,
        outcome: CallOutcome,
    },
}

/// One earlier customer message and what followed it, up to the next one. The first
/// exchange may start without a customer message (an operator wrote first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exchange {
    pub said: Vec<Said>,
}

/// Folds a thread's events (in stream order, all before the message being answered) into
/// its exchanges. Notes, routing, confirmations and other bookkeeping are left out; a tool
/// call without a stored outcome (a turn cut short) is left out too, since a model may not
/// be shown a call without its result.
pub fn earlier(events: &[Envelope]) -> Vec<Exchange> {
    let mut exchanges: Vec<Exchange> = Vec::new();
    let mut called: HashMap<(TurnId, String), (String, serde_json::Value)> = HashMap::new();
    let push = |exchanges: &mut Vec<Exchange>, said: Said, starts: bool| {
        if starts || exchanges.is_empty() {
            exchanges.push(Exchange::default());
        }
        exchanges.last_mut().expect("one exchange").said.push(said);
    };
    for event in events {
        match &event.payload {
            Payload::MessageReceived(message) => {
                push(
                    &mut exchanges,
                    Said::Customer(message.content.clone()),
                    true,
                );
            }
            Payload::MessageRedriven(message) => {
                push(
                    &mut exchanges,
                    Said::Customer(message.content.clone()),
                    true,
                );
            }
            Payload::AgentReplied(reply) => {
                push(&mut exchanges, Said::Agent(reply.text.clone()), false);
            }
            Payload::TurnFailed(failed) => {
                push(&mut exchanges, Said::Agent(failed.text.clone()), false);
            }
            Payload::OperatorReplied(reply) => push(
                &mut exchanges,
                Said::Operator {
                    name: reply.operator.name.clone(),
                    text: reply.text.clone(),
                },
                false,
            ),
            Payload::ToolCalled(call) => {
                called.insert(
                    (event.turn_id, call.call_id.clone()),
                    (call.tool.clone(), call.params.clone()),
                );
            }
            Payload::ToolSucceeded(_) | Payload::ToolFailed(_) => {
                if let Some(said) = answered(&mut called, event) {
                    push(&mut exchanges, said, false);
                }
            }
            _ => {}
        }
    }
    exchanges
}

/// A made call's result, with the call it answers: from its `tool.called` (version 1, a
/// version-2 write) or from the result itself (a version-2 read). A refused call is none:
/// the model of that turn heard why, later turns need not.
fn answered(
    called: &mut HashMap<(TurnId, String), (String, serde_json::Value)>,
    event: &Envelope,
) -> Option<Said> {
    let (id, outcome) = match &event.payload {
        Payload::ToolSucceeded(done) => (
            &done.call_id,
            CallOutcome::Succeeded {
                status: done.status,
                result: done.result.clone(),
            },
        ),
        Payload::ToolFailed(failed) => (
            &failed.call_id,
            CallOutcome::Failed {
                category: failed.category,
                error: failed.error.clone(),
                reason: failed.reason.clone().unwrap_or_else(|| {
                    tools::reason::in_words(None, failed.status, failed.category)
                }),
                status: failed.status,
            },
        ),
        _ => return None,
    };
    let (tool, params) = called.remove(&(event.turn_id, id.clone())).or_else(|| {
        let made = event
            .payload
            .tool_call()
            .filter(|c| c.permission.is_some())?;
        Some((made.tool.to_owned(), made.params.clone()))
    })?;
    Some(call(call_id(&event.turn_id, id), tool, params, outcome))
}

fn call(id: String, tool: String, params: serde_json::Value, outcome: CallOutcome) -> Said {
    Said::Call {
        id,
        tool,
        params,
        outcome,
    }
}

/// A call id unique in the conversation and short enough for any server (OpenAI allows
/// 40 characters): the turn id's last 10 hex digits (random in a UUIDv7, where the first
/// ones are the time) and the call's step.
fn call_id(turn: &TurnId, call: &str) -> String {
    let hex = turn.as_uuid().simple().to_string();
    format!("{}-{call}", &hex[hex.len() - 10..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::events::{
        AgentReplied, CallArgs, ErrorCategory, MessageReceived, NoteAdded, OperatorRef,
        OperatorReplied, Permission, ThreadId, ToolCalled, ToolFailed, ToolSucceeded,
    };
    use serde_json::json;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn event(turn: u128, n: u128, payload: impl Into<Payload>) -> Envelope {
        Envelope::new(
            Uuid::from_u128(n),
            ThreadId::parse("t").unwrap(),
            TurnId::from_uuid(Uuid::from_u128(turn)),
            OffsetDateTime::UNIX_EPOCH,
            payload,
        )
    }

    fn message(turn: u128, text: &str) -> Envelope {
        event(
            turn,
            turn * 100,
            MessageReceived {
                content: text.into(),
                client_msg_id: None,
                backdated_ms: None,
            },
        )
    }

    fn replied(turn: u128, text: &str) -> Envelope {
        event(
            turn,
            turn * 100 + 9,
            AgentReplied {
                text: text.into(),
                agent: "orders".into(),
                engine: "openai".into(),
                usage: None,
                end: None,
                escalation: None,
            },
        )
    }

    fn anna() -> OperatorRef {
        OperatorRef {
            operator_id: Uuid::from_u128(7),
            name: "Anna".into(),
        }
    }

    #[test]
    fn each_customer_message_starts_an_exchange_with_what_followed_it() {
        let events = [
            message(1, "where is ORD-1?"),
            event(
                1,
                101,
                ToolCalled {
                    call_id: "tool-1".into(),
                    tool: "getOrder".into(),
                    params: json!({"order_id": "ORD-1"}),
                    permission: Permission::Read,
                },
            ),
            event(
                1,
                102,
                ToolSucceeded {
                    call_id: "tool-1".into(),
                    tool: "getOrder".into(),
                    call: None,
                    status: 200,
                    result: json!({"status": "shipped"}),
                    latency_ms: 1,
                    attempts: 1,
                },
            ),
            replied(1, "It shipped."),
            message(2, "and ORD-2?"),
            event(
                2,
                201,
                OperatorReplied {
                    text: "A person here: let me check.".into(),
                    operator: anna(),
                    client_msg_id: None,
                },
            ),
            event(
                2,
                202,
                NoteAdded {
                    text: "internal".into(),
                    operator: anna(),
                },
            ),
        ];
        let exchanges = earlier(&events);
        assert_eq!(exchanges.len(), 2);
        assert_eq!(
            exchanges[0].said[0],
            Said::Customer("where is ORD-1?".into())
        );
        let Said::Call {
            id, tool, outcome, ..
        } = &exchanges[0].said[1]
        else {
            panic!("{:?}", exchanges[0].said[1])
        };
        assert_eq!(
            (id.as_str(), tool.as_str()),
            ("0000000001-tool-1", "getOrder")
        );
        assert!(matches!(
            outcome,
            CallOutcome::Succeeded { status: 200, .. }
        ));
        assert_eq!(exchanges[0].said[2], Said::Agent("It shipped.".into()));
        assert_eq!(
            exchanges[1].said,
            [
                Said::Customer("and ORD-2?".into()),
                Said::Operator {
                    name: "Anna".into(),
                    text: "A person here: let me check.".into()
                }
            ],
            "the note is left out"
        );
    }

    #[test]
    fn a_version_2_call_is_its_result_alone_and_a_refused_one_is_left_out() {
        let events = [
            message(1, "where is ORD-1?"),
            event(
                1,
                101,
                ToolFailed {
                    call_id: "tool-1".into(),
                    tool: "deleteOrder".into(),
                    call: Some(CallArgs {
                        params: json!({"order_id": "ORD-1"}),
                        permission: None,
                    }),
                    category: ErrorCategory::NotRetryable,
                    error: "not allowed".into(),
                    reason: None,
                    status: None,
                    latency_ms: 0,
                    attempts: 0,
                },
            ),
            event(
                1,
                102,
                ToolSucceeded {
                    call_id: "tool-2".into(),
                    tool: "getOrder".into(),
                    call: Some(CallArgs {
                        params: json!({"order_id": "ORD-1"}),
                        permission: Some(Permission::Read),
                    }),
                    status: 200,
                    result: json!({"status": "shipped"}),
                    latency_ms: 1,
                    attempts: 1,
                },
            ),
            replied(1, "It shipped."),
        ];
        let exchanges = earlier(&events);
        assert_eq!(exchanges.len(), 1);
        let said = &exchanges[0].said;
        assert_eq!(said.len(), 3, "{said:?}");
        let Said::Call {
            id, tool, params, ..
        } = &said[1]
        else {
            panic!("{:?}", said[1])
        };
        assert_eq!(
            (id.as_str(), tool.as_str(), params),
            (
                "0000000001-tool-2",
                "getOrder",
                &json!({"order_id": "ORD-1"})
            )
        );
        assert_eq!(said[2], Said::Agent("It shipped.".into()));
    }

    #[test]
    fn a_call_without_an_outcome_and_a_refused_call_are_left_out() {
        let events = [
            message(1, "hi"),
            event(
                1,
                101,
                ToolCalled {
                    call_id: "tool-1".into(),
                    tool: "getOrder".into(),
                    params: json!({}),
                    permission: Permission::Read,
                },
            ),
            event(
                1,
                102,
                ToolFailed {
                    call_id: "tool-2".into(),
                    tool: "deleteOrder".into(),
                    call: None,
                    category: ErrorCategory::NotRetryable,
                    error: "not allowed".into(),
                    reason: None,
                    status: None,
                    latency_ms: 0,
                    attempts: 0,
                },
            ),
        ];
        assert_eq!(earlier(&events)[0].said, [Said::Customer("hi".into())]);
    }
}
