//! One recorded turn run again through the workers' own turn ([`workers::turn::run`]) with
//! the new config, offline: its tool calls are answered by [`Recorded`], from the results
//! the recorded turn stored for the same tool with the same arguments; any other call is
//! sent nowhere and answered as not made. Its events are collected, not published.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::events::{Envelope, ErrorCategory, Payload};
use serde_json::Value;
use tools::{CallReport, ToolError, ToolResponse};
use workers::agents::{BoxFuture, ToolDef};
use workers::turn::{self, Agents, Incoming, Prior, Tools, TurnError};

use super::recorded::{Decision, RecordedTurn};

/// The error of a call the recorded turn never made (its `tool.failed` in the replay).
pub const NOT_RECORDED: &str =
    "not made: the recorded turn made no such call, and a replay calls nothing";

/// Tools that answer from one recorded turn's results and call nothing.
pub struct Recorded {
    /// The tool definitions for the engine (the new config's document): never called.
    defs: Arc<dyn Tools>,
    /// The recorded calls with their results, in order; each answers once, the last one of
    /// a tool and arguments again when asked more often than recorded.
    answers: Mutex<Vec<(String, Value, CallReport, bool)>>,
    /// Calls the recording has no answer for.
    new_calls: Mutex<Vec<(String, Value)>>,
}

impl Recorded {
    pub fn new(defs: Arc<dyn Tools>, events: &[Envelope]) -> Recorded {
        let mut answers = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for event in events {
            // Each call once, as its first event states it (`tool.called`, or a version-2
            // read's result); a refused call was not made and has no answer.
            let Some(call) = event.payload.tool_call() else {
                continue;
            };
            if call.permission.is_none() || !seen.insert(call.call_id) {
                continue;
            }
            let (call_id, tool, params) = (call.call_id, call.tool, call.params);
            let result = events.iter().find_map(|e| match &e.payload {
                Payload::ToolSucceeded(done) if done.call_id == call_id => Some(CallReport {
                    result: Ok(ToolResponse {
                        status: done.status,
                        body: done.result.clone(),
                    }),
                    attempts: done.attempts,
                    elapsed: Duration::from_millis(done.latency_ms),
                }),
                Payload::ToolFailed(failed) if failed.call_id == call_id => {
                    Some(CallReport {
                        result: Err(ToolError {
                            category: failed.category,
                            status: failed.status,
                            message: failed.error.clone(),
                            // The reason in words as the turn stored it; absent in older
                            // events, where the turn derives it from the status again.
                            api_message: failed.reason.clone(),
                        }),
                        attempts: failed.attempts,
                        elapsed: Duration::from_millis(failed.latency_ms),
                    })
                }
                _ => None,
            });
            if let Some(report) = result {
                answers.push((tool.to_owned(), params.clone(), report, false));
            }
        }
        Recorded {
            defs,
            answers: Mutex::new(answers),
            new_calls: Mutex::new(Vec::new()),
        }
    }

    /// The calls the recording had no answer for.
    pub fn new_calls(&self) -> Vec<(String, Value)> {
        self.new_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Tools for Recorded {
    fn call<'a>(
        &'a self,
        name: &'a str,
        params: &'a Value,
        _: &'a str,
    ) -> BoxFuture<'a, CallReport> {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let same =
            |(tool, p, _, _): &&mut (String, Value, CallReport, bool)| tool == name && p == params;
        let report = match answers.iter_mut().filter(same).find(|(.., used)| !*used) {
            Some(answer) => {
                answer.3 = true;
                Some(answer.2.clone())
            }
            None => answers
                .iter_mut()
                .rfind(same)
                .map(|answer| answer.2.clone()),
        };
        drop(answers);
        let report = report.unwrap_or_else(|| {
            self.new_calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((name.to_owned(), params.clone()));
            CallReport {
                result: Err(ToolError {
                    category: ErrorCategory::NotRetryable,
                    status: None,
                    message: NOT_RECORDED.to_owned(),
                    api_message: None,
                }),
                attempts: 0,
                elapsed: Duration::ZERO,
            }
        });
        Box::pin(async move { report })
    }

    fn def(&self, name: &str) -> Option<ToolDef> {
        self.defs.def(name)
    }
}

/// Runs `recorded` again with `agents` (the new config, its engine, its tool definitions)
/// and answers what the replay decided. The thread's conversation before the turn is as it
/// was recorded: the write waiting for a "yes" is the one the recorded turn saw.
pub async fn replay(agents: &Agents, recorded: &RecordedTurn) -> Result<Decision, TurnError> {
    let tools = Arc::new(Recorded::new(agents.tools.clone(), &recorded.events));
    let agents = Agents {
        config: agents.config.clone(),
        engine: agents.engine.clone(),
        tools: tools.clone(),
        others: agents.others.clone(),
    };
    let incoming = Incoming {
        event: recorded.message.clone(),
        seq: recorded.seq,
    };
    let prior = Prior {
        pending: recorded.confirming(),
        recorded: Vec::new(),
        history: None,
        last_attempt: false,
        deltas: None,
    };
    let mut sink = Vec::<Envelope>::new();
    let at = recorded.message.occurred_at;
    turn::run(&agents, &incoming, prior, &mut sink, || at).await?;
    let mut decision = Decision::of(&sink);
    let new_calls = tools.new_calls();
    for call in &mut decision.tool_calls {
        call.new = !call.refused
            && new_calls
                .iter()
                .any(|(tool, params)| *tool == call.tool && *params == call.params);
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::events::{
        CallArgs, Permission, ThreadId, ToolCalled, ToolFailed, ToolSucceeded, TurnId,
    };
    use serde_json::json;
    use uuid::Uuid;

    struct NoDefs;

    impl Tools for NoDefs {
        fn call<'a>(&'a self, _: &'a str, _: &'a Value, _: &'a str) -> BoxFuture<'a, CallReport> {
            panic!("a replay calls no tool")
        }
        fn def(&self, _: &str) -> Option<ToolDef> {
            None
        }
    }

    fn event(n: u128, payload: impl Into<Payload>) -> Envelope {
        Envelope::new(
            Uuid::from_u128(n),
            ThreadId::parse("t").unwrap(),
            TurnId::from_uuid(Uuid::from_u128(1)),
            time::OffsetDateTime::UNIX_EPOCH,
            payload,
        )
    }

    fn called(n: u128, call_id: &str, order: &str) -> Envelope {
        event(
            n,
            ToolCalled {
                call_id: call_id.into(),
                tool: "getOrder".into(),
                params: json!({"order_id": order}),
                permission: Permission::Read,
            },
        )
    }

    #[tokio::test]
    async fn a_recorded_call_gets_its_recorded_answer_and_any_other_is_new() {
        let events = vec![
            called(1, "tool-1", "ORD-1"),
            event(
                2,
                ToolSucceeded {
                    call_id: "tool-1".into(),
                    tool: "getOrder".into(),
                    call: None,
                    status: 200,
                    result: json!({"status": "shipped"}),
                    latency_ms: 3,
                    attempts: 1,
                },
            ),
            called(3, "tool-2", "ORD-2"),
            event(
                4,
                ToolFailed {
                    call_id: "tool-2".into(),
                    tool: "getOrder".into(),
                    call: None,
                    category: ErrorCategory::NotRetryable,
                    error: "HTTP 404: {}".into(),
                    reason: Some("it was not found".into()),
                    status: Some(404),
                    latency_ms: 3,
                    attempts: 1,
                },
            ),
        ];
        let tools = Recorded::new(Arc::new(NoDefs), &events);
        let one = tools
            .call("getOrder", &json!({"order_id": "ORD-1"}), "k")
            .await;
        assert_eq!(one.result.unwrap().body, json!({"status": "shipped"}));
        let two = tools
            .call("getOrder", &json!({"order_id": "ORD-2"}), "k")
            .await;
        let error = two.result.unwrap_err();
        assert_eq!(
            (error.status, error.reason()),
            (Some(404), "it was not found".into())
        );
        assert!(tools.new_calls().is_empty());
        // Asked again: the same answer, not a new call.
        let again = tools
            .call("getOrder", &json!({"order_id": "ORD-1"}), "k")
            .await;
        assert!(again.result.is_ok());
        let other = tools
            .call("cancelOrder", &json!({"order_id": "ORD-1"}), "k")
            .await;
        assert_eq!(other.result.unwrap_err().message, NOT_RECORDED);
        assert_eq!(
            tools.new_calls(),
            [("cancelOrder".to_owned(), json!({"order_id": "ORD-1"}))]
        );
    }

    #[tokio::test]
    async fn a_version_2_read_is_answered_from_its_result_alone() {
        let events = vec![event(
            1,
            ToolSucceeded {
                call_id: "tool-1".into(),
                tool: "getOrder".into(),
                call: Some(CallArgs {
                    params: json!({"order_id": "ORD-1"}),
                    permission: Some(Permission::Read),
                }),
                status: 200,
                result: json!({"status": "shipped"}),
                latency_ms: 3,
                attempts: 1,
            },
        )];
        let tools = Recorded::new(Arc::new(NoDefs), &events);
        let one = tools
            .call("getOrder", &json!({"order_id": "ORD-1"}), "k")
            .await;
        assert_eq!(one.result.unwrap().body, json!({"status": "shipped"}));
        assert!(tools.new_calls().is_empty());
    }
}
