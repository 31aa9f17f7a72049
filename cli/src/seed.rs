//! `smart-support seed-events`: a realistic synthetic CHAT stream for benchmarks,
//! published straight to JetStream (no ingress, no workers): conversations of turns with
//! routing, tool calls (some failing), replies, escalations, failed turns and resolutions,
//! spread over the last 30 days. Events are built with the `common::events` types, carry
//! `Nats-Msg-Id` = their event id, and are pipelined (hundreds of PubAcks in flight).
//!
//! Only for a stack whose workers are not running: they would answer every seeded
//! message.

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use common::config::NatsArgs;
use common::events::{
    AgentReplied, AgentRouted, CallArgs, ConversationResolved, Envelope, ErrorCategory, Escalation,
    EscalationReason, MessageReceived, Permission, ThreadId, ToolFailed, ToolSucceeded,
    TurnCompleted, TurnFailed, TurnId, TurnOutcome, TurnStarted, publish_of, step_event_id,
};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use projections::projector::progress::{Progress, rate, thousands};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// `smart-support seed-events`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// Events to publish.
    #[arg(long)]
    pub events: u64,
    /// Conversations (chat threads) open at once; their events interleave in the stream
    /// as concurrent conversations' do.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub threads: u64,
    /// Publishes awaiting their PubAck at once.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub in_flight: u64,
    /// Seed of the generator: the same seed gives the same conversations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// What a seeding did.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    pub events: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub seconds: f64,
}

/// Publishes the events; prints the rate.
pub async fn run(args: &SeedArgs) -> anyhow::Result<Seeded> {
    let (_client, js) = common::jetstream::connect(&args.nats).await?;
    let mut stream = common::jetstream::ensure_chat_stream(&js, &args.nats).await?;
    let base = stream
        .info()
        .await
        .context("stream info")?
        .state
        .last_sequence;
    let mut generator = Generator::new(args.seed, args.threads as usize, base);
    let mut progress = Progress::new("seed", args.events, args.quiet);
    let mut in_flight = FuturesOrdered::new();
    let mut expected = base;
    let mut shifted = 0u64;
    let started = Instant::now();
    let mut sent = 0;
    while sent < args.events || !in_flight.is_empty() {
        if sent < args.events && in_flight.len() < args.in_flight as usize {
            let (event, previous) = generator.next_event();
            let (subject, mut message) = publish_of(&event);
            if let Some(previous) = previous {
                message = message.header(
                    common::subjects::PREVIOUS_SEQ_HEADER,
                    previous.to_string().as_str(),
                );
            }
            // One connection, in order: the stream stores them in this order, so the
            // sequences the generator assumed (for `message_seq`) hold.
            in_flight.push_back(js.send_publish(subject, message).await?.into_future());
            sent += 1;
            continue;
        }
        let ack = in_flight
            .next()
            .await
            .expect("a publish is in flight")
            .context("a publish was not acknowledged")?;
        expected += 1;
        if ack.sequence != expected {
            shifted += 1;
        }
        progress.advance(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    if shifted > 0 {
        tracing::warn!(
            shifted,
            "another publisher wrote to the stream meanwhile: some message_seq fields are off"
        );
    }
    println!(
        "published {} events (sequences {}..={}) in {seconds:.1}s: {} events/s",
        thousands(args.events),
        base + 1,
        expected,
        thousands(rate(args.events, started.elapsed())),
    );
    Ok(Seeded {
        events: args.events,
        first_seq: base + 1,
        last_seq: expected,
        seconds,
    })
}

/// splitmix64: a small, fast, seedable generator (quality is not the point here).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn uuid(&mut self) -> Uuid {
        Uuid::from_u64_pair(self.next(), self.next())
    }
}

const AGENTS: [&str; 3] = ["orders", "billing", "general"];
const QUESTIONS: [&str; 6] = [
    "Where is my order ORD-1001?",
    "I was charged twice for my last purchase",
    "Can I change the delivery address?",
    "My package arrived damaged, what now?",
    "How do I reset my password?",
    "I want to talk to a human, please",
];
const TOOLS: [&str; 4] = ["getOrder", "listInvoices", "updateAddress", "getShipment"];

/// One conversation being written.
struct Conversation {
    thread: ThreadId,
    clock: OffsetDateTime,
    turns_left: u32,
    agent: &'static str,
    last_turn: Option<TurnId>,
    last_user_seq: Option<u64>,
    /// The rest of the current turn.
    queue: VecDeque<Envelope>,
    /// The conversation ends with an operator's resolution.
    resolve: bool,
}

/// Interleaves the events of `threads` conversations open at once.
struct Generator {
    rng: Rng,
    open: Vec<Conversation>,
    /// The sequence the next event will be stored at.
    next_seq: u64,
    now: OffsetDateTime,
}

impl Generator {
    fn new(seed: u64, threads: usize, last_seq: u64) -> Generator {
        let mut generator = Generator {
            rng: Rng(seed),
            open: Vec::with_capacity(threads),
            next_seq: last_seq + 1,
            now: OffsetDateTime::now_utc(),
        };
        for _ in 0..threads {
            let conversation = generator.conversation();
            generator.open.push(conversation);
        }
        generator
    }

    fn conversation(&mut self) -> Conversation {
        let rng = &mut self.rng;
        let ago = Duration::seconds(rng.range(3_600, 30 * 86_400) as i64);
        Conversation {
            thread: ThreadId::parse(&format!("seed-{:016x}", rng.next())).expect("a valid id"),
            clock: self.now - ago,
            turns_left: rng.range(1, 6) as u32,
            agent: AGENTS[(rng.next() % 3) as usize],
            last_turn: None,
            last_user_seq: None,
            queue: VecDeque::new(),
            resolve: rng.chance(30),
        }
    }

    /// The next event, and for a user message the sequence of its thread's previous one.
    fn next_event(&mut self) -> (Envelope, Option<u64>) {
        let i = (self.rng.next() % self.open.len() as u64) as usize;
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(event) = self.open[i].queue.pop_front() {
            return (event, None);
        }
        if self.open[i].turns_left == 0 {
            // Ended: maybe resolved by an operator, then replaced by a new conversation.
            let next = self.conversation();
            let ended = std::mem::replace(&mut self.open[i], next);
            if ended.resolve
                && let Some(turn) = ended.last_turn
            {
                let at = ended.clock + Duration::minutes(5);
                let event = Envelope::new(
                    step_event_id(&turn, "resolved"),
                    ended.thread,
                    turn,
                    at,
                    ConversationResolved {
                        resolved_by: "operator".into(),
                        operator: None,
                        note: None,
                    },
                );
                return (event, None);
            }
        }
        self.start_turn(i, seq)
    }

    /// The user message that opens a turn (stored at `seq`); the turn's other events are
    /// queued behind it.
    fn start_turn(&mut self, i: usize, seq: u64) -> (Envelope, Option<u64>) {
        let rng = &mut self.rng;
        let c = &mut self.open[i];
        c.turns_left -= 1;
        c.clock += Duration::seconds(rng.range(10, 300) as i64);
        let event_id = rng.uuid();
        let turn = TurnId::from_uuid(Uuid::new_v5(&event_id, b"turn"));
        let thread = c.thread.clone();
        let question = rng.pick(&QUESTIONS);
        let message = Envelope::new(
            event_id,
            thread.clone(),
            turn,
            c.clock,
            MessageReceived {
                content: question.to_owned(),
                client_msg_id: None,
                backdated_ms: None,
            },
        );
        let previous = c.last_user_seq.replace(seq);
        c.last_turn = Some(turn);
        let started_at = c.clock;
        let mut at = c.clock;
        let mut step = |rng: &mut Rng, name: &str, payload: common::events::Payload| {
            at += Duration::milliseconds(rng.range(20, 1_500) as i64);
            Envelope::new(
                step_event_id(&turn, name),
                thread.clone(),
                turn,
                at,
                payload,
            )
        };
        let agent = c.agent;
        let mut queue = VecDeque::new();
        let fails = rng.chance(3);
        queue.push_back(step(
            rng,
            "start",
            TurnStarted {
                message_seq: seq,
                confirming: None,
                routed: (!fails).then(|| AgentRouted {
                    agent: agent.into(),
                    reason: "keyword".into(),
                }),
            }
            .into(),
        ));
        if fails {
            queue.push_back(step(
                rng,
                "failed",
                TurnFailed {
                    message_seq: seq,
                    category: ErrorCategory::Retryable,
                    error: "the model server did not answer in time".into(),
                    attempts: 5,
                    text: "Sorry, something went wrong. Please try again.".into(),
                    dead_letter_id: None,
                }
                .into(),
            ));
            c.clock = at;
            c.queue = queue;
            return (message, previous);
        }
        let calls = match rng.next() % 10 {
            0..=4 => 0,
            5..=8 => 1,
            _ => 2,
        };
        for n in 1..=calls {
            let call_id = format!("tool-{n}");
            let tool = rng.pick(&TOOLS);
            let params = json!({ "order_id": format!("ORD-{}", rng.range(1000, 9999)) });
            let call = Some(CallArgs {
                params,
                permission: Some(Permission::Read),
            });
            let latency_ms = rng.range(5, 800);
            let outcome = if rng.chance(88) {
                ToolSucceeded {
                    call_id: call_id.clone(),
                    tool: tool.into(),
                    call,
                    status: 200,
                    result: json!({ "status": "shipped", "eta_days": rng.range(1, 7) }),
                    latency_ms,
                    attempts: 1,
                }
                .into()
            } else {
                ToolFailed {
                    call_id: call_id.clone(),
                    tool: tool.into(),
                    call,
                    category: ErrorCategory::Retryable,
                    error: "HTTP 503 from the shop API".into(),
                    reason: Some(tools::reason::in_words(
                        None,
                        Some(503),
                        ErrorCategory::Retryable,
                    )),
                    status: Some(503),
                    latency_ms,
                    attempts: 3,
                }
                .into()
            };
            queue.push_back(step(rng, &format!("{call_id}-result"), outcome));
        }
        let escalate = rng.chance(6);
        let mut done = step(
            rng,
            "reply",
            AgentReplied {
                text: "Thanks for waiting — here is what I found.".into(),
                agent: agent.into(),
                engine: "rules".into(),
                usage: None,
                end: Some(TurnCompleted {
                    outcome: if escalate {
                        TurnOutcome::Escalated
                    } else {
                        TurnOutcome::Replied
                    },
                    latency_ms: 0,
                    message_seq: seq,
                    pending: None,
                }),
                escalation: escalate.then(|| Escalation {
                    reason: EscalationReason::Keyword,
                    detail: "the user asked for a human".into(),
                }),
            }
            .into(),
        );
        if let common::events::Payload::AgentReplied(AgentReplied { end: Some(end), .. }) =
            &mut done.payload
        {
            end.latency_ms = (done.occurred_at - started_at).whole_milliseconds() as u64;
        }
        c.clock = done.occurred_at;
        queue.push_back(done);
        if escalate {
            c.turns_left = 0;
        }
        c.queue = queue;
        (message, previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seeded_event_survives_a_round_trip_and_turns_follow_their_message() {
        let mut generator = Generator::new(7, 3, 0);
        let mut kinds = std::collections::HashMap::new();
        let mut seq_of_message = std::collections::HashMap::new();
        let mut escalations = 0;
        for seq in 1..=5_000u64 {
            let (event, _) = generator.next_event();
            assert_eq!(Envelope::from_json(&event.to_json()).unwrap(), event);
            *kinds.entry(event.payload.kind()).or_insert(0) += 1;
            match &event.payload {
                common::events::Payload::MessageReceived(_) => {
                    seq_of_message.insert(event.turn_id, seq);
                }
                common::events::Payload::TurnStarted(started) => {
                    assert_eq!(seq_of_message[&event.turn_id], started.message_seq);
                }
                common::events::Payload::AgentReplied(_) => {
                    escalations += usize::from(event.payload.escalation().is_some());
                }
                _ => {}
            }
            let age = OffsetDateTime::now_utc() - event.occurred_at;
            assert!(age > Duration::ZERO && age < Duration::days(31), "{age}");
        }
        // The turns the workers write (version 2).
        for kind in [
            "message.received",
            "turn.started",
            "tool.succeeded",
            "tool.failed",
            "agent.replied",
            "turn.failed",
            "conversation.resolved",
        ] {
            assert!(kinds.contains_key(kind), "no {kind} in {kinds:?}");
        }
        for kind in ["agent.routed", "tool.called", "turn.completed"] {
            assert!(!kinds.contains_key(kind), "{kind} in {kinds:?}");
        }
        assert!(escalations > 0, "no escalation");
    }
}
