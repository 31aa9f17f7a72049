//! The fold: a batch of new events (in stream order), plus what the tables already say
//! about the batch's conversations and turns, becomes one delta per row of each read
//! model. Pure, so the rules are tested without a database; the table modules in
//! [`crate::read_models`] write the deltas.
//!
//! Lifecycle of a conversation (`conversation.status`):
//! - a user message (or a redriven one) opens it: `open`, unless it is `escalated` (a
//!   person has taken over; it stays escalated until resolved);
//! - a turn that ends waiting for a "yes" makes it `waiting_confirmation`; one that replies
//!   makes it `open` again (unless escalated);
//! - an escalation makes it `escalated`; `turn.failed` makes it `failed` (unless
//!   escalated); `conversation.resolved` makes it `resolved` until the next user message;
//! - `conversation.assigned` makes it `assigned` (an operator holds it: like `escalated`, a
//!   user message leaves it so); `conversation.released` makes it `open`.
//!
//! The desk's `handoff` rows follow the same events (see [`crate::read_models::handoff`]).
//!
//! A turn's facts are folded the same whichever version wrote them: version 2's
//! `turn.started` is also its routing (version 1's `agent.routed`), a tool result also its
//! call (`tool.called`), and `agent.replied` also the escalation (`conversation.escalated`)
//! and the turn's end (`turn.completed`), in that order.

use std::collections::HashMap;

use common::events::{
    AgentRouted, Envelope, EscalationReason, OperatorRef, Payload, TurnCompleted, TurnOutcome,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::read_models::analytics::{self, Key};
use crate::read_models::conversation::{self, PREVIEW_CHARS};
use crate::read_models::{desk, handoff, tool_call, turn};

/// What the tables say about the batch's conversations and turns before it.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Status and agent of each conversation that already has a row.
    pub conversations: HashMap<String, (String, Option<String>)>,
    /// Agent of each turn that already has a row (None: not routed), read only for the turns
    /// that an event of the batch counts for before the batch routes them.
    pub turn_agents: HashMap<Uuid, Option<String>>,
    /// The running wait of each conversation that has a `handoff` row: since when, and its
    /// first human reply (read only for a batch with an operator's reply).
    pub waits: HashMap<String, (Option<OffsetDateTime>, Option<OffsetDateTime>)>,
}

/// Every row a batch changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub conversations: Vec<conversation::Delta>,
    pub turns: Vec<turn::Delta>,
    pub tool_calls: Vec<tool_call::Delta>,
    pub analytics: Vec<analytics::Delta>,
    pub handoffs: Vec<handoff::Delta>,
    pub desk: desk::Delta,
}

/// Folds new events into the deltas of every read model.
pub fn fold(events: &[(u64, &Envelope)], context: &Context) -> Effects {
    let mut fold = Fold {
        context,
        effects: Effects::default(),
        conversations: HashMap::new(),
        turns: HashMap::new(),
        tool_calls: HashMap::new(),
        analytics: HashMap::new(),
        handoffs: HashMap::new(),
    };
    for (seq, event) in events {
        fold.event(*seq, event);
    }
    fold.effects
}

/// The turns whose agent the fold needs from the table ([`Context::turn_agents`]): those an
/// event counts for (a result, a failure, an end) before the batch routes them (their
/// `turn.started`, or a version-1 `agent.routed`). A turn started in the batch, as nearly
/// every turn is, needs no lookup; a customer's message comes before its turn's start and
/// counts for no agent. Sorted, without repeats.
pub fn turns_to_look_up(events: &[(u64, &Envelope)]) -> Vec<Uuid> {
    let mut routed = std::collections::HashSet::new();
    let mut turns = Vec::new();
    for (_, event) in events {
        let turn = *event.turn_id.as_uuid();
        if event.payload.routing().is_some() {
            routed.insert(turn);
        } else if !matches!(
            event.payload,
            Payload::MessageReceived(_) | Payload::MessageRedriven(_)
        ) && !routed.contains(&turn)
        {
            turns.push(turn);
        }
    }
    turns.sort_unstable();
    turns.dedup();
    turns
}

struct Fold<'a> {
    context: &'a Context,
    effects: Effects,
    /// Index of each delta in `effects`, by key.
    conversations: HashMap<String, usize>,
    turns: HashMap<Uuid, usize>,
    tool_calls: HashMap<(Uuid, String), usize>,
    analytics: HashMap<Key, usize>,
    handoffs: HashMap<String, usize>,
}

impl Fold<'_> {
    fn event(&mut self, seq: u64, event: &Envelope) {
        let at = event.occurred_at;
        let is_new = self.conversation(seq, event);
        if is_new {
            self.count(at, "", |d| d.conversations += 1);
        }
        let turn_id = *event.turn_id.as_uuid();
        match &event.payload {
            Payload::MessageReceived(message) => {
                let c = self.conversation_mut(event);
                c.messages += 1;
                c.preview = Some(cut(&message.content));
                if c.title.is_none() {
                    c.title = Some(cut(&message.content));
                }
                c.open_unless_escalated();
                self.count(at, "", |d| d.messages += 1);
            }
            Payload::MessageRedriven(message) => {
                let c = self.conversation_mut(event);
                c.preview = Some(cut(&message.content));
                c.open_unless_escalated();
            }
            Payload::TurnStarted(started) => {
                let t = self.turn_mut(event);
                t.message_seq = Some(started.message_seq as i64);
                if let Some(routed) = &started.routed {
                    self.routed(event, routed);
                }
            }
            Payload::AgentRouted(routed) => self.routed(event, routed),
            Payload::ToolCalled(called) => {
                let c = self.call_row(event, &called.call_id, &called.tool, 0);
                c.status = "called";
            }
            Payload::ToolSucceeded(done) => {
                let c = self.call_row(event, &done.call_id, &done.tool, done.latency_ms);
                c.status = "succeeded";
                c.http_status = Some(i32::from(done.status));
                c.result = Some(done.result.clone());
                c.latency_ms = Some(done.latency_ms as i64);
                c.attempts = Some(done.attempts as i32);
                c.finished_at = Some(at);
                self.finished_call(event, false);
            }
            Payload::ToolFailed(failed) => {
                let c = self.call_row(event, &failed.call_id, &failed.tool, failed.latency_ms);
                c.status = "failed";
                c.http_status = failed.status.map(i32::from);
                c.error = Some(failed.error.clone());
                c.category = Some(failed.category.as_str());
                c.latency_ms = Some(failed.latency_ms as i64);
                c.attempts = Some(failed.attempts as i32);
                c.finished_at = Some(at);
                self.finished_call(event, true);
            }
            Payload::ConfirmationRequested(_) => {}
            Payload::ConversationEscalated(escalated) => {
                self.escalated(seq, event, escalated.reason, &escalated.agent);
            }
            Payload::AgentReplied(reply) => {
                if let Some(escalation) = &reply.escalation {
                    self.escalated(seq, event, escalation.reason, &reply.agent);
                }
                let c = self.conversation_mut(event);
                c.agent = Some(reply.agent.clone());
                c.preview = Some(cut(&reply.text));
                let agent = reply.agent.clone();
                let usage = reply.usage.unwrap_or_default();
                let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                self.count(at, &agent, |d| {
                    d.replies += 1;
                    d.prompt_tokens = d.prompt_tokens.saturating_add(tokens(usage.prompt_tokens));
                    d.completion_tokens = d
                        .completion_tokens
                        .saturating_add(tokens(usage.completion_tokens));
                });
                if let Some(done) = &reply.end {
                    self.completed(event, done);
                }
            }
            Payload::TurnCompleted(done) => self.completed(event, done),
            Payload::TurnFailed(failed) => {
                let t = self.turn_mut(event);
                t.outcome = Some("failed");
                t.completed_at = Some(at);
                if t.message_seq.is_none() {
                    t.message_seq = Some(failed.message_seq as i64);
                }
                let c = self.conversation_mut(event);
                c.turns += 1;
                if c.status != "escalated" {
                    c.status = "failed".into();
                }
                let agent = self.agent_of(turn_id);
                self.count(at, &agent, |d| {
                    d.turns += 1;
                    d.failures += 1;
                });
            }
            Payload::ConversationResolved(_) => {
                let c = self.conversation_mut(event);
                if c.status != "resolved" {
                    c.status = "resolved".into();
                    c.resolved_at = Some(at);
                    let agent = c.agent.clone().unwrap_or_default();
                    self.count(at, &agent, |d| d.resolutions += 1);
                }
                if let Payload::ConversationResolved(common::events::ConversationResolved {
                    operator: Some(operator),
                    ..
                }) = &event.payload
                {
                    self.operator(at, operator).resolutions += 1;
                }
                let h = self.handoff_mut(seq, event);
                h.state = Some("resolved");
                h.assignee = None;
                h.assigned_at = None;
                h.waiting_since = None;
                h.first_human_reply_at = None;
            }
            Payload::ConversationAssigned(assigned) => {
                self.operator(at, &assigned.operator).assignments += 1;
                self.conversation_mut(event).status = "assigned".into();
                let h = self.handoff_mut(seq, event);
                // A take-over right after a release begins a new wait: the release in this
                // batch, or (first event of the thread in it) in the row, as `apply` checks.
                if h.state.is_none() && h.wait_seq.is_none() {
                    h.reopen_seq = Some(seq as i64);
                }
                if matches!(h.state, Some("released" | "resolved")) {
                    h.wait_seq = Some(seq as i64);
                    h.waiting_since = None;
                    h.first_human_reply_at = None;
                }
                h.state = Some("assigned");
                h.assignee = Some((
                    assigned.operator.operator_id,
                    assigned.operator.name.clone(),
                ));
                h.assigned_at = Some(at);
                h.waiting_since.get_or_insert(at);
                h.assignments += 1;
            }
            Payload::OperatorReplied(replied) => {
                self.operator(at, &replied.operator).replies += 1;
                let c = self.conversation_mut(event);
                c.preview = Some(cut(&replied.text));
                let (known_since, known_reply) = self
                    .context
                    .waits
                    .get(event.thread_id.as_str())
                    .copied()
                    .unwrap_or_default();
                let h = self.handoff_mut(seq, event);
                // The wait the row will hold: this batch's when it began one, else the
                // table's (the apply coalesces the same way).
                let (since, replied_before) = if h.wait_seq.is_some() {
                    (h.waiting_since, h.first_human_reply_at)
                } else {
                    (
                        known_since.or(h.waiting_since),
                        known_reply.or(h.first_human_reply_at),
                    )
                };
                h.first_human_reply_at.get_or_insert(at);
                if replied_before.is_none()
                    && let Some(since) = since
                {
                    let wait_s = (at - since).whole_seconds().max(0);
                    *self
                        .effects
                        .desk
                        .first_replies
                        .entry((analytics::hour_of(at), wait_s))
                        .or_default() += 1;
                }
            }
            Payload::NoteAdded(_) => {}
            Payload::ConversationReleased(_) => {
                let c = self.conversation_mut(event);
                if matches!(c.status.as_str(), "assigned" | "escalated") {
                    c.status = "open".into();
                }
                let h = self.handoff_mut(seq, event);
                h.state = Some("released");
                h.assignee = None;
                h.assigned_at = None;
                h.waiting_since = None;
                h.first_human_reply_at = None;
            }
            Payload::TurnHeld(held) => {
                let t = self.turn_mut(event);
                t.outcome = Some("held");
                t.completed_at = Some(at);
                if t.message_seq.is_none() {
                    t.message_seq = Some(held.message_seq as i64);
                }
                self.conversation_mut(event).turns += 1;
            }
            // `apply_in` takes a tombstone out of the batch before the fold: it removes rows
            // instead (`read_models::erasure`).
            Payload::ConversationErased(_) => {}
        }
    }

    /// The agent that answers a turn was chosen (`turn.started` in version 2,
    /// `agent.routed` in version 1).
    fn routed(&mut self, event: &Envelope, routed: &AgentRouted) {
        let at = event.occurred_at;
        self.turn_mut(event).agent = Some(routed.agent.clone());
        let c = self.conversation_mut(event);
        if c.agent.is_none() {
            // Its first routing: from now on the conversation counts for this agent,
            // moved from the no-agent row (so every sum stays the same).
            c.agent = Some(routed.agent.clone());
            self.count(at, "", |d| d.conversations -= 1);
            self.count(at, &routed.agent, |d| d.conversations += 1);
        }
    }

    /// A turn handed the conversation to a person (`agent.replied` with its escalation in
    /// version 2, `conversation.escalated` in version 1).
    fn escalated(&mut self, seq: u64, event: &Envelope, reason: EscalationReason, agent: &str) {
        let at = event.occurred_at;
        let c = self.conversation_mut(event);
        c.status = "escalated".into();
        c.escalated_at = Some(at);
        self.count(at, agent, |d| d.escalations += 1);
        let h = self.handoff_mut(seq, event);
        h.state = Some("escalated");
        h.escalation_reason = Some(
            serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        );
        h.wait_seq = Some(seq as i64);
        h.waiting_since = Some(at);
        h.first_human_reply_at = None;
        h.assignee = None;
        h.assigned_at = None;
    }

    /// The agents ended a turn (`agent.replied` with its end in version 2,
    /// `turn.completed` in version 1).
    fn completed(&mut self, event: &Envelope, done: &TurnCompleted) {
        let at = event.occurred_at;
        let turn_id = *event.turn_id.as_uuid();
        let t = self.turn_mut(event);
        t.outcome = Some(match done.outcome {
            TurnOutcome::Replied => "replied",
            TurnOutcome::AwaitingConfirmation => "awaiting_confirmation",
            TurnOutcome::Escalated => "escalated",
        });
        t.completed_at = Some(at);
        t.latency_ms = Some(done.latency_ms as i64);
        if done.message_seq > 0 && t.message_seq.is_none() {
            t.message_seq = Some(done.message_seq as i64);
        }
        let c = self.conversation_mut(event);
        c.turns += 1;
        match done.outcome {
            TurnOutcome::AwaitingConfirmation => {
                if c.status != "escalated" {
                    c.status = "waiting_confirmation".into();
                }
            }
            TurnOutcome::Replied => c.open_unless_escalated(),
            TurnOutcome::Escalated => c.status = "escalated".into(),
        }
        let agent = self.agent_of(turn_id);
        let latency = done.latency_ms;
        self.count(at, &agent, |d| {
            d.turns += 1;
            d.observe_latency(latency);
        });
    }

    /// Creates the conversation's delta on its first event of the batch; true when the
    /// conversation is new (no row, and not seen earlier in the batch).
    fn conversation(&mut self, seq: u64, event: &Envelope) -> bool {
        let thread = event.thread_id.as_str();
        if let Some(&slot) = self.conversations.get(thread) {
            let c = &mut self.effects.conversations[slot];
            // `first_at` stays the thread's first event's (by sequence, not by clock: a
            // minimum over a batch would depend on where the batches split, and a replay would
            // not match). `last_at` is a maximum, the same however the events are batched.
            c.last_at = c.last_at.max(event.occurred_at);
            c.last_seq = seq as i64;
            return false;
        }
        let prior = self.context.conversations.get(thread);
        self.effects.conversations.push(conversation::Delta {
            thread_id: thread.to_owned(),
            first_at: event.occurred_at,
            last_at: event.occurred_at,
            messages: 0,
            turns: 0,
            tool_calls: 0,
            status: prior.map_or_else(|| "open".to_owned(), |(status, _)| status.clone()),
            agent: prior.and_then(|(_, agent)| agent.clone()),
            preview: None,
            title: None,
            resolved_at: None,
            escalated_at: None,
            first_seq: seq as i64,
            last_seq: seq as i64,
        });
        self.conversations
            .insert(thread.to_owned(), self.effects.conversations.len() - 1);
        prior.is_none()
    }

    fn handoff_mut(&mut self, seq: u64, event: &Envelope) -> &mut handoff::Delta {
        let thread = event.thread_id.as_str();
        let slot = match self.handoffs.get(thread) {
            Some(&slot) => slot,
            None => {
                self.effects
                    .handoffs
                    .push(handoff::Delta::new(thread.to_owned(), seq));
                self.handoffs
                    .insert(thread.to_owned(), self.effects.handoffs.len() - 1);
                self.effects.handoffs.len() - 1
            }
        };
        let h = &mut self.effects.handoffs[slot];
        h.last_seq = seq as i64;
        h
    }

    /// The desk counters of an operator in the hour of `at`.
    fn operator(&mut self, at: OffsetDateTime, operator: &OperatorRef) -> &mut desk::OperatorDelta {
        let line = self
            .effects
            .desk
            .operators
            .entry((analytics::hour_of(at), operator.operator_id))
            .or_default();
        line.name.clone_from(&operator.name);
        line
    }

    fn conversation_mut(&mut self, event: &Envelope) -> &mut conversation::Delta {
        let slot = self.conversations[event.thread_id.as_str()];
        &mut self.effects.conversations[slot]
    }

    fn turn_mut(&mut self, event: &Envelope) -> &mut turn::Delta {
        let turn_id = *event.turn_id.as_uuid();
        let slot = *self.turns.entry(turn_id).or_insert_with(|| {
            self.effects.turns.push(turn::Delta::new(
                turn_id,
                event.thread_id.to_string(),
                event.occurred_at,
            ));
            self.effects.turns.len() - 1
        });
        &mut self.effects.turns[slot]
    }

    /// The row of the call an event is about, with what the event states of the call itself
    /// (`Payload::tool_call`): a `tool.called`, or a version-2 result, which is then the
    /// call's only event and was made `latency_ms` before it.
    fn call_row(
        &mut self,
        event: &Envelope,
        call_id: &str,
        tool: &str,
        latency_ms: u64,
    ) -> &mut tool_call::Delta {
        let c = self.tool_call_mut(event, call_id, tool);
        if let Some(call) = event.payload.tool_call() {
            c.called(call);
            let made = event.occurred_at - time::Duration::milliseconds(latency_ms as i64);
            c.first_at = c.first_at.min(made);
        }
        c
    }

    fn tool_call_mut(
        &mut self,
        event: &Envelope,
        call_id: &str,
        tool: &str,
    ) -> &mut tool_call::Delta {
        let key = (*event.turn_id.as_uuid(), call_id.to_owned());
        let slot = *self.tool_calls.entry(key).or_insert_with(|| {
            self.effects.tool_calls.push(tool_call::Delta::new(
                *event.turn_id.as_uuid(),
                call_id.to_owned(),
                event.thread_id.to_string(),
                tool.to_owned(),
                event.occurred_at,
            ));
            self.effects.tool_calls.len() - 1
        });
        &mut self.effects.tool_calls[slot]
    }

    /// A tool call ended (succeeded, failed or refused).
    fn finished_call(&mut self, event: &Envelope, failed: bool) {
        let t = self.turn_mut(event);
        t.tool_calls += 1;
        if failed {
            t.tool_errors += 1;
        }
        self.conversation_mut(event).tool_calls += 1;
        let agent = self.agent_of(*event.turn_id.as_uuid());
        self.count(event.occurred_at, &agent, |d| {
            d.tool_calls += 1;
            if failed {
                d.tool_errors += 1;
            }
        });
    }

    /// The agent a turn was routed to: in this batch, else in the table, else none ('').
    fn agent_of(&self, turn_id: Uuid) -> String {
        self.turns
            .get(&turn_id)
            .and_then(|&slot| self.effects.turns[slot].agent.clone())
            .or_else(|| self.context.turn_agents.get(&turn_id).cloned().flatten())
            .unwrap_or_default()
    }

    /// Adds to the analytics row of the event's hour and this agent.
    fn count(&mut self, at: OffsetDateTime, agent: &str, add: impl FnOnce(&mut analytics::Delta)) {
        let key = Key {
            hour: analytics::hour_of(at),
            agent: agent.to_owned(),
        };
        let slot = *self.analytics.entry(key.clone()).or_insert_with(|| {
            self.effects.analytics.push(analytics::Delta::new(key));
            self.effects.analytics.len() - 1
        });
        add(&mut self.effects.analytics[slot]);
    }
}

fn cut(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

#[cfg(test)]
mod tests;
