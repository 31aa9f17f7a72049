//! The pull loop. Messages flow from the shared durable consumer into one lane per
//! thread: a thread's messages are answered one after the other in delivery order, and
//! different threads run in parallel.
//!
//! Order across worker processes comes from the stream itself. Every user message names
//! its thread's previous one (`Smart-Support-Previous-Seq`), and a worker starts a turn
//! only once the thread's last turn event is the end (`turn.completed`/`turn.failed`) of
//! that previous message's turn. Until then the message is parked — out of its lane,
//! its ack deadline pushed back with progress acks — and tried again when a turn ends in
//! this process or after a short poll.
//!
//! [`step`] handles one message and returns an [`Outcome`]; the lane turns it into ack /
//! nak-with-delay / dead letter + term. Tests call `step` directly.
//!
//! One file per job, in the order a message meets them: `lanes` (the pull loop, a lane per
//! thread, parking, settling an outcome), `order` (may this message start? the
//! `Smart-Support-Previous-Seq` check), this module's [`step`], `sink` (publishes a turn's
//! events and waits for their PubAcks), `retry` (the [`RetryPolicy`] and its delays),
//! `dead_letter` (dead letter + `turn.failed`), and `backlog` (the backlog gauge).

mod backlog;
mod dead_letter;
mod deltas;
mod lanes;
pub(crate) mod order;
mod retry;
mod sink;

pub use dead_letter::{FAIL_AFTER_DEAD_LETTER, dead_letter};
pub use lanes::run;
pub use retry::RetryPolicy;

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{Context, stream::Stream};
use common::events::{Envelope, ErrorCategory, HeldReason, OperatorRef, Payload};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::agents::EngineError;
use crate::desk::{self, Mode, OperatorRead, OperatorThreads};
use crate::published::LiveAgents;
use crate::turn::{self, Agents, Incoming, Prior, TurnError};
use order::{
    Ended, Last, ThreadHistory, is_of_a_later_message, last_turn_event, pending_of, previous_seq,
    turn_events,
};
use retry::worker_retry;
use sink::JetStreamSink;

/// Everything a worker needs to run turns.
pub struct Worker {
    pub js: Context,
    /// The chat stream, for direct reads of a thread's turn events.
    pub stream: Stream,
    /// The agents config, engine and tools, with the published tools merged in.
    pub agents: LiveAgents,
    pub policy: RetryPolicy,
    /// Woken whenever a turn of this process ends, so parked messages look again.
    settled: Notify,
    /// The turns this process ended last, by thread: see [`Ended`].
    ended: Ended,
    /// Which threads have operator events (none: every turn reads its thread's).
    operators: Option<Arc<OperatorThreads>>,
}

impl AsRef<Stream> for Worker {
    fn as_ref(&self) -> &Stream {
        &self.stream
    }
}

impl Worker {
    pub fn new(js: Context, stream: Stream, agents: Agents, policy: RetryPolicy) -> Worker {
        Worker {
            js,
            stream,
            agents: LiveAgents::new(agents),
            policy,
            settled: Notify::new(),
            ended: Ended::default(),
            operators: None,
        }
    }

    /// Reads the thread's last operator event only for threads that have one (see
    /// [`OperatorThreads`]).
    pub async fn watching_operators(mut self) -> anyhow::Result<Worker> {
        self.operators = Some(OperatorThreads::start(self.js.client(), self.stream.clone()).await?);
        Ok(self)
    }
}

/// A delivered message.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub subject: &'a str,
    pub seq: u64,
    /// How many times it has been delivered, this time included.
    pub delivered: u32,
    pub payload: &'a [u8],
    pub headers: Option<&'a HeaderMap>,
    /// Run without waiting for the thread's previous turn (it waited `order_wait` already).
    pub ignore_order: bool,
}

/// What to do with a message after its step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The turn ended and every event of it is stored: acknowledge.
    Done,
    /// The thread's previous message is still being answered: try again when it is.
    Wait,
    /// Worth another try after this delay (nak with delay: a plain nak would redeliver at
    /// once and hot-loop).
    Retry { after: Duration, error: String },
    /// Will never succeed, or retries are exhausted: dead-letter, tell the user, terminate.
    DeadLetter {
        category: ErrorCategory,
        error: String,
    },
}

/// Handles one delivered message: decode, check the thread's order, run the turn.
pub async fn step(worker: &Worker, delivery: Delivery<'_>) -> Outcome {
    step_with(worker, delivery, OperatorRead::AtTurnStart).await
}

/// [`step`], with the read of who holds the conversation already started.
pub(crate) async fn step_with(
    worker: &Worker,
    delivery: Delivery<'_>,
    operator: OperatorRead,
) -> Outcome {
    let event = match Envelope::from_json(delivery.payload) {
        Ok(event) if event.payload.is_user_message() => event,
        Ok(event) => {
            return Outcome::DeadLetter {
                category: ErrorCategory::Fatal,
                error: format!("expected a user message, got {}", event.payload.kind()),
            };
        }
        Err(err) => {
            return Outcome::DeadLetter {
                category: ErrorCategory::Fatal,
                error: err.to_string(),
            };
        }
    };
    crate::trace::record_turn(&event.turn_id);
    let retry = |error: String| worker_retry(worker, delivery.delivered, error);
    let ended_here = (delivery.delivered == 1)
        .then(|| previous_seq(delivery.headers))
        .flatten()
        .and_then(|previous| worker.ended.take(&event.thread_id, previous));
    let last = match ended_here {
        Some((terminal, seq)) => Last::Event(terminal, Some(seq)),
        None => match last_turn_event(&worker.stream, &event.thread_id).await {
            Ok(last) => last,
            Err(err) => return retry(err),
        },
    };
    // No turn event: the thread's first message, or a thread erased while this delivery was
    // in flight (its events, this message included, are deleted). An erased thread's message
    // is never answered: its turn would store content after the erasure.
    if matches!(last, Last::Nothing) {
        match common::erasure::erased_at(&worker.stream, &event.thread_id).await {
            Ok(Some(tombstone)) if tombstone > delivery.seq => {
                tracing::info!(
                    tombstone,
                    "the conversation was erased; its message is not answered"
                );
                return Outcome::Done;
            }
            Ok(_) => {}
            Err(err) => return retry(err.to_string()),
        }
    }
    let own = last
        .event()
        .is_some_and(|last| last.turn_id == event.turn_id);
    if own && last.event().is_some_and(|last| last.payload.is_terminal()) {
        // An earlier delivery finished the turn; only its ack was lost.
        return Outcome::Done;
    }
    // A redelivery whose turn is no longer the thread's last: an earlier delivery may have
    // finished it (its worker froze before the ack) and later turns ran since. Its stored
    // events say so; running it again would give the message a second ending (a
    // `turn.held` is no duplicate of a `turn.completed`). The same for any delivery once
    // the thread's last turn is of a later message: a first delivery whose worker froze
    // before it read the thread, while a redelivery was answered elsewhere.
    let passed = last
        .event()
        .is_some_and(|last| is_of_a_later_message(last, delivery.seq));
    let mut earlier = Vec::new();
    if (delivery.delivered > 1 || passed) && !own {
        earlier = match turn_events(&worker.stream, &event, delivery.seq).await {
            Ok(recorded) => recorded,
            Err(err) => return retry(err),
        };
        if earlier.iter().any(|e| e.payload.is_terminal()) {
            return Outcome::Done;
        }
    }
    // An earlier delivery started it: it finishes as it began, with what it recorded.
    let own = own || !earlier.is_empty();
    if let Some(previous) = previous_seq(delivery.headers)
        && !own
        && !delivery.ignore_order
        && !last.lets_start_after(previous)
    {
        return Outcome::Wait;
    }
    // What the thread's last turn event was when this turn was decided (see `JetStreamSink`).
    let last_turn_seq = match &last {
        Last::Nothing => Some(0),
        Last::Event(_, seq) => *seq,
        Last::Unreadable => None,
    };
    // A person has the conversation: the message's turn is closed by `turn.held`, unless an
    // earlier delivery already started the agents' turn (which then finishes as it began).
    let started =
        !earlier.is_empty() || (own && last.event().is_some_and(|e| !e.payload.is_terminal()));
    if !started {
        let closure = match &last {
            Last::Event(event, seq) => Some(desk::Closure { event, seq: *seq }),
            Last::Nothing | Last::Unreadable => None,
        };
        match desk::mode(
            &worker.stream,
            &event.thread_id,
            delivery.seq,
            closure,
            operator,
        )
        .await
        {
            Ok(Mode::Agents) => {}
            Ok(Mode::Held { reason, operator }) => {
                let held = (reason, operator);
                return hold(worker, event, delivery.seq, held, last_turn_seq, retry).await;
            }
            Err(err) => return retry(err),
        }
    }
    let prior = if own {
        let recorded = if earlier.is_empty() {
            match turn_events(&worker.stream, &event, delivery.seq).await {
                Ok(recorded) => recorded,
                Err(err) => return retry(err),
            }
        } else {
            earlier
        };
        let pending = recorded.iter().find_map(|e| match &e.payload {
            Payload::TurnStarted(started) => started.confirming.clone(),
            _ => None,
        });
        Prior {
            pending,
            recorded,
            history: None,
            last_attempt: false,
            deltas: None,
        }
    } else {
        Prior {
            pending: last.into_event().and_then(pending_of),
            recorded: Vec::new(),
            history: None,
            last_attempt: false,
            deltas: None,
        }
    };
    let incoming = Incoming {
        event,
        seq: delivery.seq,
    };
    // Another worker may have this message too once it is redelivered (this process froze
    // past the ack wait, perhaps with the turn's events still in its connection): the turn's
    // first event is stored only if the thread did not move on since the decision, and both
    // deliveries decide alike, so the later copy of each event is a duplicate (see
    // `JetStreamSink`).
    let careful = delivery.delivered > 1 || delivery.ignore_order;
    let mut sink = JetStreamSink::new(&worker.js).expecting_last_turn_event(last_turn_seq, careful);
    // The tool set current when the turn starts, for the whole turn.
    let agents = worker.agents.current();
    // Where a model engine reads the conversation so far; the rule engine's turns (the
    // hot path) build nothing and read nothing.
    let mut prior = prior;
    prior.last_attempt = delivery.delivered >= worker.policy.max_deliveries;
    if agents.stream() {
        prior.deltas = Some(Arc::new(deltas::NatsDeltas::new(
            worker.js.client(),
            &incoming.event.thread_id,
            incoming.event.turn_id,
        )));
    }
    if agents.remember() {
        prior.history = Some(Arc::new(ThreadHistory {
            stream: worker.stream.clone(),
            thread: incoming.event.thread_id.clone(),
            before: incoming.seq,
        }));
    }
    let backdating = incoming.event.backdating();
    match turn::run(&agents, &incoming, prior, &mut sink, move || {
        OffsetDateTime::now_utc() - backdating
    })
    .await
    {
        Ok(()) => {
            if let Some((terminal, seq)) = sink.stored_terminal() {
                worker
                    .ended
                    .remember(&incoming.event.thread_id, incoming.seq, terminal, seq);
            }
            Outcome::Done
        }
        Err(TurnError::Engine(
            EngineError::Retryable(reason) | EngineError::Unavailable(reason),
        )) => retry(format!("engine unavailable: {reason}")),
        Err(TurnError::Publish(reason)) => retry(reason),
        Err(err @ TurnError::History(_)) => retry(err.to_string()),
        Err(err @ TurnError::Engine(EngineError::Permanent(_))) => Outcome::DeadLetter {
            category: ErrorCategory::NotRetryable,
            error: err.to_string(),
        },
        Err(err @ TurnError::NotAUserMessage(_)) => Outcome::DeadLetter {
            category: ErrorCategory::Fatal,
            error: err.to_string(),
        },
    }
}

/// Closes a held message's turn with `turn.held` (see [`desk`]).
///
/// `turn.held` is stored only if the thread's last turn event is still the one the decision
/// saw (`last_turn_seq`): a delivery held past the ack wait (a frozen worker) may have been
/// closed elsewhere meanwhile (by the same `turn.held`, as every delivery decides alike
/// (`desk::mode`), which JetStream then drops as a duplicate), and the thread may have
/// moved on since. Refused, the message is retried, and its redelivery finds its ending in
/// the stream.
async fn hold(
    worker: &Worker,
    event: Envelope,
    seq: u64,
    hold: (HeldReason, Option<OperatorRef>),
    last_turn_seq: Option<u64>,
    retry: impl Fn(String) -> Outcome,
) -> Outcome {
    let (reason, operator) = hold;
    let incoming = Incoming { event, seq };
    // One event: waiting for it is waiting for the turn.
    let mut sink = JetStreamSink::new(&worker.js).expecting_last_turn_event(last_turn_seq, true);
    let backdating = incoming.event.backdating();
    match turn::hold(&incoming, reason, operator, &mut sink, move || {
        OffsetDateTime::now_utc() - backdating
    })
    .await
    {
        Ok(()) => {
            if let Some((terminal, seq)) = sink.stored_terminal() {
                worker
                    .ended
                    .remember(&incoming.event.thread_id, incoming.seq, terminal, seq);
            }
            Outcome::Done
        }
        Err(TurnError::Publish(reason)) => retry(reason),
        Err(err) => Outcome::DeadLetter {
            category: ErrorCategory::Fatal,
            error: err.to_string(),
        },
    }
}
