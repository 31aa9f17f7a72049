//! The recorded turns, read from the chat stream (never from the read models): each user
//! message with its turn's events, grouped by turn id as they arrive in stream order, and
//! [`Decision`], what a turn decided in the terms the report compares.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::stream::Stream;
use common::events::{Envelope, Payload, PendingAction, ThreadId, TurnId};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Which recorded turns to replay.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only turns whose user message was stored at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only these threads (all when empty).
    pub threads: Vec<ThreadId>,
    /// Only the last `limit` turns that can be replayed.
    pub limit: Option<usize>,
}

/// One turn as it happened: the user message and its turn's events in stream order.
#[derive(Debug, Clone)]
pub struct RecordedTurn {
    /// The user message's stream sequence.
    pub seq: u64,
    /// The `message.received` or `message.redriven`.
    pub message: Envelope,
    /// The turn's events (`turn.started` … `turn.completed`), each once.
    pub events: Vec<Envelope>,
}

impl RecordedTurn {
    pub fn thread(&self) -> &ThreadId {
        &self.message.thread_id
    }

    /// The customer's message.
    pub fn content(&self) -> &str {
        match &self.message.payload {
            Payload::MessageReceived(m) => &m.content,
            Payload::MessageRedriven(m) => &m.content,
            _ => "",
        }
    }

    /// The write the thread's previous turn asked to confirm, as this turn saw it.
    pub fn confirming(&self) -> Option<PendingAction> {
        self.events.iter().find_map(|e| match &e.payload {
            Payload::TurnStarted(started) => started.confirming.clone(),
            _ => None,
        })
    }
}

/// Turns read but not replayed, by why.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Skipped {
    /// Answered by a person (`turn.held`): the agents were not asked.
    pub held: u64,
    /// Dead-lettered (`turn.failed`): no answer to compare with.
    pub failed: u64,
    /// No end of turn on the stream yet (still running, or its message is before the
    /// selection's start).
    pub unfinished: u64,
    /// Stored bytes that are not an event this version reads.
    pub unreadable: u64,
}

/// What the reader sends: turns to replay, then what it skipped.
#[derive(Debug)]
pub enum Read {
    Turn(Box<RecordedTurn>),
    Done(Skipped),
}

/// How far the read is: events to read, events read (for the progress bar).
#[derive(Debug, Default)]
pub struct Counts {
    pub total: AtomicU64,
    pub read: AtomicU64,
}

/// Reads the selected part of the stream with an ordered consumer (ephemeral, deleted when
/// dropped; nothing is published) up to the last sequence it holds now, and sends each
/// complete turn that the agents answered into `turns` as soon as its ending arrives (with
/// a limit: the last ones, at the end).
pub async fn read(
    stream: Stream,
    selection: Selection,
    counts: Arc<Counts>,
    turns: mpsc::Sender<Read>,
) -> anyhow::Result<()> {
    // All of it unfiltered: filters with wildcards (`chat.*.user`, `chat.*.turn`) make the
    // server look through every thread's subjects for each message, and the read of 600,000
    // events took minutes instead of seconds (a thread's operator events and notes are
    // skipped here instead). A few threads' own subjects are cheap to filter on.
    let filter_subjects = if selection.threads.is_empty() {
        vec![common::subjects::CHAT_SUBJECTS.to_owned()]
    } else {
        selection
            .threads
            .iter()
            .flat_map(|t| {
                [
                    common::subjects::user_message(t),
                    common::subjects::turn_event(t),
                ]
            })
            .collect()
    };
    let deliver_policy = match selection.since {
        Some(start_time) => DeliverPolicy::ByStartTime { start_time },
        None => DeliverPolicy::All,
    };
    let mut consumer = stream
        .create_consumer(OrderedConfig {
            filter_subjects,
            deliver_policy,
            ..Default::default()
        })
        .await
        .context("cannot read the chat stream")?;
    let pending = consumer
        .info()
        .await
        .context("cannot read the chat stream")?
        .num_pending;
    counts.total.store(pending, Ordering::Relaxed);
    let mut turns_by_id: HashMap<TurnId, RecordedTurn> = HashMap::new();
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut skipped = Skipped::default();
    let mut last: VecDeque<RecordedTurn> = VecDeque::new();
    if pending > 0 {
        let mut messages = consumer
            .messages()
            .await
            .context("cannot read the chat stream")?;
        let mut read = 0u64;
        while let Some(message) = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .context("the chat stream stopped answering")?
        {
            let message = message.context("cannot read the chat stream")?;
            let info = message.info().map_err(|err| anyhow::anyhow!("{err}"))?;
            let (seq, left) = (info.stream_sequence, info.pending);
            read += 1;
            counts.read.store(read, Ordering::Relaxed);
            // An operator's event or a note is not part of a turn.
            let subject = message.subject.as_str();
            let of_a_turn = subject.ends_with(".user") || subject.ends_with(".turn");
            let event = match of_a_turn.then(|| Envelope::from_json(&message.payload)) {
                Some(Ok(event)) => Some(event),
                Some(Err(_)) => {
                    skipped.unreadable += 1;
                    None
                }
                None => None,
            };
            if let Some(turn) =
                event.and_then(|event| fold(&mut turns_by_id, &mut seen, &mut skipped, seq, event))
            {
                match selection.limit {
                    Some(limit) => {
                        if last.len() == limit {
                            last.pop_front();
                        }
                        if limit > 0 {
                            last.push_back(turn);
                        }
                    }
                    None => {
                        if turns.send(Read::Turn(Box::new(turn))).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            // Up to the end as it was when the read began: the stream may keep growing.
            if left == 0 || read >= pending {
                break;
            }
        }
    }
    for turn in last {
        if turns.send(Read::Turn(Box::new(turn))).await.is_err() {
            return Ok(());
        }
    }
    skipped.unfinished += turns_by_id.len() as u64;
    let _ = turns.send(Read::Done(skipped)).await;
    Ok(())
}

/// Adds one event to the open turns; answers the turn it completes when the agents
/// answered it (`turn.completed`).
fn fold(
    open: &mut HashMap<TurnId, RecordedTurn>,
    seen: &mut HashSet<Uuid>,
    skipped: &mut Skipped,
    seq: u64,
    event: Envelope,
) -> Option<RecordedTurn> {
    if event.payload.is_user_message() {
        open.insert(
            event.turn_id,
            RecordedTurn {
                seq,
                message: event,
                events: Vec::new(),
            },
        );
        return None;
    }
    // An event of a turn whose message is before the selection: nothing to replay.
    let turn = open.get_mut(&event.turn_id)?;
    // A redone turn may store an event twice once the duplicate window has passed.
    if !seen.insert(event.event_id) {
        return None;
    }
    let ending = match &event.payload {
        Payload::TurnFailed(_) => {
            skipped.failed += 1;
            Some(false)
        }
        Payload::TurnHeld(_) => {
            skipped.held += 1;
            Some(false)
        }
        other => other.completion().map(|_| true),
    };
    turn.events.push(event);
    let replay = ending?;
    let turn_id = turn.message.turn_id;
    let turn = open.remove(&turn_id)?;
    for event in &turn.events {
        seen.remove(&event.event_id);
    }
    replay.then_some(turn)
}

/// A tool call of a turn, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    pub tool: String,
    pub params: Value,
    /// The turn refused it (not one of the agent's tools): nothing was called.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// Replay only: the recorded turn made no such call, so it had no answer and was sent
    /// nowhere.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub new: bool,
}

impl PartialEq for Call {
    /// `new` says where an answer came from, not what the turn decided. A refusal stored by
    /// version 1 has no arguments (`null`): it matches the same tool refused with any.
    fn eq(&self, other: &Call) -> bool {
        let params = self.params == other.params
            || (self.refused && (self.params.is_null() || other.params.is_null()));
        (&self.tool, self.refused) == (&other.tool, other.refused) && params
    }
}

/// A confirmation question: the write waiting for the user's "yes".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confirmation {
    pub tool: String,
    pub params: Value,
}

/// An escalation to a person.
#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    /// `user_request`, `keyword`, `tool_failures`, `destructive_action`.
    pub reason: String,
    pub detail: String,
}

impl PartialEq for Escalation {
    /// The detail holds error texts and tool arguments (compared as tool calls).
    fn eq(&self, other: &Escalation) -> bool {
        self.reason == other.reason
    }
}

/// What a turn decided: the five things the report compares.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Decision {
    pub agent: Option<String>,
    pub tool_calls: Vec<Call>,
    pub confirmation: Option<Confirmation>,
    pub escalation: Option<Escalation>,
    pub reply: Option<String>,
}

impl Decision {
    /// Reads a turn's events, recorded (by either version) or replayed.
    pub fn of(events: &[Envelope]) -> Decision {
        let mut decision = Decision::default();
        let mut called = HashSet::new();
        for event in events {
            if let Some(routed) = event.payload.routing() {
                decision.agent = Some(routed.agent.clone());
            }
            if let Some((reason, detail, _)) = event.payload.escalation() {
                decision.escalation = Some(Escalation {
                    reason: serde_json::to_value(reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    detail: detail.to_owned(),
                });
            }
            if let Some(call) = event.payload.tool_call() {
                // A write's result states its call again: its `tool.called` counted.
                if called.insert(call.call_id.to_owned()) {
                    decision.tool_calls.push(Call {
                        tool: call.tool.to_owned(),
                        params: call.params.clone(),
                        refused: call.permission.is_none(),
                        new: false,
                    });
                }
                continue;
            }
            match &event.payload {
                // Version 1: a failure without a call before it is a refusal.
                Payload::ToolFailed(failed) if !called.contains(&failed.call_id) => {
                    decision.tool_calls.push(Call {
                        tool: failed.tool.clone(),
                        // Version 1 kept its arguments only in its step name (hashed into
                        // the event id), not in the event.
                        params: Value::Null,
                        refused: true,
                        new: false,
                    });
                }
                Payload::ConfirmationRequested(asked) => {
                    decision.confirmation = Some(Confirmation {
                        tool: asked.action.tool.clone(),
                        params: asked.action.params.clone(),
                    })
                }
                Payload::AgentReplied(replied) => {
                    decision.reply = Some(replied.text.clone());
                    if let Some(pending) = replied.end.as_ref().and_then(|end| end.pending.as_ref())
                    {
                        decision.confirmation = Some(Confirmation {
                            tool: pending.tool.clone(),
                            params: pending.params.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::events::{
        AgentReplied, AgentRouted, HeldReason, MessageReceived, TurnCompleted, TurnHeld,
        TurnOutcome, TurnStarted,
    };

    fn event(turn: u128, n: u128, payload: impl Into<Payload>) -> Envelope {
        Envelope::new(
            Uuid::from_u128(turn * 100 + n),
            ThreadId::parse("t").unwrap(),
            TurnId::from_uuid(Uuid::from_u128(turn)),
            OffsetDateTime::UNIX_EPOCH,
            payload,
        )
    }

    fn message(turn: u128) -> Envelope {
        event(
            turn,
            0,
            MessageReceived {
                content: "hello".into(),
                client_msg_id: None,
                backdated_ms: None,
            },
        )
    }

    fn completed(turn: u128) -> Envelope {
        event(
            turn,
            9,
            TurnCompleted {
                outcome: TurnOutcome::Replied,
                latency_ms: 1,
                message_seq: 1,
                pending: None,
            },
        )
    }

    #[test]
    fn a_turn_is_replayed_once_it_is_completed_and_held_ones_are_counted() {
        let (mut open, mut seen, mut skipped) = Default::default();
        let mut fold = |seq, event| fold(&mut open, &mut seen, &mut skipped, seq, event);
        assert!(fold(1, message(1)).is_none());
        assert!(fold(2, message(2)).is_none());
        let started = event(
            1,
            1,
            TurnStarted {
                message_seq: 1,
                confirming: None,
                routed: None,
            },
        );
        assert!(fold(3, started.clone()).is_none());
        // A copy stored again (a redone turn after the duplicate window) counts once.
        assert!(fold(4, started).is_none());
        let routed = AgentRouted {
            agent: "triage".into(),
            reason: "keyword".into(),
        };
        assert!(fold(5, event(1, 2, routed)).is_none());
        let replied = AgentReplied {
            text: "Hi".into(),
            agent: "triage".into(),
            engine: "rules".into(),
            usage: None,
            end: None,
            escalation: None,
        };
        assert!(fold(6, event(1, 3, replied)).is_none());
        let held = TurnHeld {
            message_seq: 2,
            reason: HeldReason::Escalated,
            operator: None,
        };
        assert!(fold(7, event(2, 1, held)).is_none());
        let turn = fold(8, completed(1)).expect("the completed turn");
        assert_eq!(turn.seq, 1);
        assert_eq!(turn.events.len(), 4);
        let decision = Decision::of(&turn.events);
        assert_eq!(decision.agent.as_deref(), Some("triage"));
        assert_eq!(decision.reply.as_deref(), Some("Hi"));
        // The end of a turn whose message was not read (before `--since`) is passed over.
        assert!(fold(9, completed(3)).is_none());
        assert_eq!(skipped.held, 1);
        assert!(open.is_empty() && seen.is_empty());
    }

    #[test]
    fn a_version_2_turn_decides_as_the_version_1_turn_with_the_same_facts() {
        use common::events::{CallArgs, Permission, ToolCalled, ToolSucceeded};
        let params = serde_json::json!({"order_id": "ORD-1"});
        let succeeded = |call| ToolSucceeded {
            call_id: "tool-1".into(),
            tool: "getOrder".into(),
            call,
            status: 200,
            result: serde_json::json!({}),
            latency_ms: 1,
            attempts: 1,
        };
        let reply = |end| AgentReplied {
            text: "Shipped.".into(),
            agent: "orders".into(),
            engine: "rules".into(),
            usage: None,
            end,
            escalation: None,
        };
        let started = |routed| TurnStarted {
            message_seq: 1,
            confirming: None,
            routed,
        };
        let routed = AgentRouted {
            agent: "orders".into(),
            reason: "keyword".into(),
        };
        let v1 = [
            event(1, 1, started(None)),
            event(1, 2, routed.clone()),
            event(
                1,
                3,
                ToolCalled {
                    call_id: "tool-1".into(),
                    tool: "getOrder".into(),
                    params: params.clone(),
                    permission: Permission::Read,
                },
            ),
            event(1, 4, succeeded(None)),
            event(1, 5, reply(None)),
            completed(1),
        ];
        let end = match completed(1).payload {
            Payload::TurnCompleted(end) => end,
            _ => unreachable!(),
        };
        let v2 = [
            event(1, 1, started(Some(routed))),
            event(
                1,
                4,
                succeeded(Some(CallArgs {
                    params,
                    permission: Some(Permission::Read),
                })),
            ),
            event(1, 5, reply(Some(end))),
        ];
        let (old, new) = (Decision::of(&v1), Decision::of(&v2));
        assert_eq!(new, old);
        assert_eq!(new.agent.as_deref(), Some("orders"));
        assert_eq!(new.tool_calls.len(), 1, "{new:?}");
        assert_eq!(new.tool_calls[0].tool, "getOrder");
    }
}
