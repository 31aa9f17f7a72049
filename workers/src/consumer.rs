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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{
    AckKind, Context, Message,
    consumer::PullConsumer,
    context::PublishAckFuture,
    message::PublishMessage,
    stream::{DirectGetErrorKind, Stream},
};
use common::dead_letters::{self, Failure, Source};
use common::events::{
    Envelope, ErrorCategory, HeldReason, OperatorRef, Payload, PendingAction, ThreadId, TurnFailed,
    TurnId, step_event_id,
};
use common::shutdown::CancellationToken;
use common::subjects;
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::agents::{BoxFuture, EngineError};
use crate::desk::{self, Mode};
use crate::metrics;
use crate::published::LiveAgents;
use crate::turn::{self, Agents, Incoming, Prior, Sink, TurnError};

/// What the user is told when their message cannot be answered.
const APOLOGY: &str = "Sorry, I could not process your message. It has been passed to our support team, who will get back to you here.";

/// How redeliveries back off and when the worker gives up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay before the second delivery; doubles each time.
    pub first_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Deliveries before a message whose turn keeps failing is dead-lettered.
    pub max_deliveries: u32,
    /// The consumer's ack wait: a parked message sends progress well within it.
    pub ack_wait: Duration,
    /// Longest a message waits for the previous turn of its thread; then it runs anyway
    /// (the previous message may have been removed from the stream by hand).
    pub order_wait: Duration,
}

impl RetryPolicy {
    /// Delay before the next delivery after `delivered` failed ones: exponential with
    /// up to 20 % jitter (so messages that failed together do not come back together),
    /// capped at `max_delay`.
    pub fn delay(&self, delivered: u32) -> Duration {
        let exponent = delivered.clamp(1, 20) - 1;
        let base = self
            .first_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max_delay);
        let jitter = base.mul_f64(fastrand_fraction() * 0.2);
        (base + jitter).min(self.max_delay)
    }
}

/// A number in [0, 1) that differs between calls; enough for jitter.
fn fastrand_fraction() -> f64 {
    (Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

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
}

/// The last turn this process ended in each thread: the sequence of the message it
/// answered and the event that ended it (as stored: its PubAck came back).
///
/// A thread's next message names that sequence as its previous one. If it comes here on
/// its first delivery, nothing else can have written a turn event for the thread since:
/// another worker would need a later message, which waits for this one, and an earlier
/// delivery of this message would have made this one the second. So the stored event is
/// the thread's last turn event, and the turn starts without reading it back (a direct
/// get, one JetStream round trip per turn). Anything else reads the stream as before
/// (`workers/tests/workers/redelivery.rs` shows why a later delivery must).
#[derive(Default)]
struct Ended(Mutex<HashMap<String, (u64, Envelope)>>);

impl Ended {
    /// Threads remembered at most; past it the memory starts over (a miss costs one read).
    const CAPACITY: usize = 50_000;

    fn remember(&self, thread: &ThreadId, message_seq: u64, terminal: Envelope) {
        let mut ended = self.0.lock().expect("ended lock");
        if ended.len() >= Self::CAPACITY {
            ended.clear();
        }
        ended.insert(thread.to_string(), (message_seq, terminal));
    }

    /// The event that ended the turn of `previous`, if this process ended it.
    fn take(&self, thread: &ThreadId, previous: u64) -> Option<Envelope> {
        let mut ended = self.0.lock().expect("ended lock");
        match ended.remove(thread.as_str()) {
            Some((seq, terminal)) if seq == previous => Some(terminal),
            _ => None,
        }
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
        }
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
    let retry = |error: String| worker_retry(worker, delivery.delivered, error);
    let ended_here = (delivery.delivered == 1)
        .then(|| previous_seq(delivery.headers))
        .flatten()
        .and_then(|previous| worker.ended.take(&event.thread_id, previous));
    let last = match ended_here {
        Some(terminal) => Last::Event(terminal, None),
        None => match last_turn_event(&worker.stream, &event.thread_id).await {
            Ok(last) => last,
            Err(err) => return retry(err),
        },
    };
    let own = last
        .event()
        .is_some_and(|last| last.turn_id == event.turn_id);
    if own && last.event().is_some_and(|last| last.payload.is_terminal()) {
        // An earlier delivery finished the turn; only its ack was lost.
        return Outcome::Done;
    }
    if let Some(previous) = previous_seq(delivery.headers)
        && !own
        && !delivery.ignore_order
        && !last.lets_start_after(previous)
    {
        return Outcome::Wait;
    }
    // A person has the conversation: the message's turn is closed by `turn.held`, unless an
    // earlier delivery already started the agents' turn (which then finishes as it began).
    let started = own && last.event().is_some_and(|e| !e.payload.is_terminal());
    if !started {
        let closure = match &last {
            Last::Event(event, seq) => Some(desk::Closure { event, seq: *seq }),
            Last::Nothing | Last::Unreadable => None,
        };
        match desk::mode(&worker.stream, &event.thread_id, closure).await {
            Ok(Mode::Agents) => {}
            Ok(Mode::Held { reason, operator }) => {
                return hold(worker, event, delivery.seq, reason, operator, retry).await;
            }
            Err(err) => return retry(err),
        }
    }
    let prior = if own {
        let recorded = match turn_events(&worker.stream, &event, delivery.seq).await {
            Ok(recorded) => recorded,
            Err(err) => return retry(err),
        };
        let pending = recorded.iter().find_map(|e| match &e.payload {
            Payload::TurnStarted(started) => started.confirming.clone(),
            _ => None,
        });
        Prior { pending, recorded }
    } else {
        Prior {
            pending: last.into_event().and_then(pending_of),
            recorded: Vec::new(),
        }
    };
    let incoming = Incoming {
        event,
        seq: delivery.seq,
    };
    let mut sink = JetStreamSink {
        js: &worker.js,
        acks: Vec::new(),
        terminal: None,
    };
    // The tool set current when the turn starts, for the whole turn.
    let agents = worker.agents.current();
    let backdating = incoming.event.backdating();
    match turn::run(&agents, &incoming, prior, &mut sink, move || {
        OffsetDateTime::now_utc() - backdating
    })
    .await
    {
        Ok(()) => {
            if let Some(terminal) = sink.terminal {
                worker
                    .ended
                    .remember(&incoming.event.thread_id, incoming.seq, terminal);
            }
            Outcome::Done
        }
        Err(TurnError::Engine(EngineError::Retryable(reason))) => {
            retry(format!("engine unavailable: {reason}"))
        }
        Err(TurnError::Publish(reason)) => retry(reason),
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
async fn hold(
    worker: &Worker,
    event: Envelope,
    seq: u64,
    reason: HeldReason,
    operator: Option<OperatorRef>,
    retry: impl Fn(String) -> Outcome,
) -> Outcome {
    let incoming = Incoming { event, seq };
    let mut sink = JetStreamSink {
        js: &worker.js,
        acks: Vec::new(),
        terminal: None,
    };
    let backdating = incoming.event.backdating();
    match turn::hold(&incoming, reason, operator, &mut sink, move || {
        OffsetDateTime::now_utc() - backdating
    })
    .await
    {
        Ok(()) => {
            if let Some(terminal) = sink.terminal {
                worker
                    .ended
                    .remember(&incoming.event.thread_id, incoming.seq, terminal);
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

/// A retry, or a dead letter once the deliveries are used up.
fn worker_retry(worker: &Worker, delivered: u32, error: String) -> Outcome {
    if delivered >= worker.policy.max_deliveries {
        Outcome::DeadLetter {
            category: ErrorCategory::Retryable,
            error: format!("gave up after {delivered} deliveries: {error}"),
        }
    } else {
        Outcome::Retry {
            after: worker.policy.delay(delivered),
            error,
        }
    }
}

/// The sequence of the thread's previous user message, from the header.
fn previous_seq(headers: Option<&HeaderMap>) -> Option<u64> {
    headers?
        .get(subjects::PREVIOUS_SEQ_HEADER)?
        .as_str()
        .parse()
        .ok()
        .filter(|&seq| seq > 0)
}

/// Whether `event` ends the turn of the message at `seq` or of a later one.
fn ends_turn_of(event: &Envelope, seq: u64) -> bool {
    match &event.payload {
        // 0: written before turn events named their message; it cannot block a thread.
        Payload::TurnCompleted(done) => done.message_seq >= seq || done.message_seq == 0,
        Payload::TurnFailed(failed) => failed.message_seq >= seq,
        Payload::TurnHeld(held) => held.message_seq >= seq,
        _ => false,
    }
}

/// The last event on a thread's turn subject.
// One per message in hand, moved once: boxing would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Last {
    /// The thread has no turn event yet.
    Nothing,
    /// The last one does not decode (garbage, or written by newer code).
    Unreadable,
    /// The event, and its stream sequence when it was read from the stream (not when this
    /// process remembered it).
    Event(Envelope, Option<u64>),
}

impl Last {
    fn event(&self) -> Option<&Envelope> {
        match self {
            Last::Event(event, _) => Some(event),
            Last::Nothing | Last::Unreadable => None,
        }
    }

    fn into_event(self) -> Option<Envelope> {
        match self {
            Last::Event(event, _) => Some(event),
            Last::Nothing | Last::Unreadable => None,
        }
    }

    /// Whether a message whose previous one is at `previous` may start its turn.
    fn lets_start_after(&self, previous: u64) -> bool {
        match self {
            Last::Nothing => false,
            // Order cannot be checked against what this code cannot read; blocking the
            // thread for good would be worse than answering.
            Last::Unreadable => {
                tracing::warn!("the thread's last turn event does not decode; not waiting for it");
                true
            }
            Last::Event(event, _) => ends_turn_of(event, previous),
        }
    }
}

/// The write a finished turn left waiting for the user's answer.
fn pending_of(event: Envelope) -> Option<PendingAction> {
    match event.payload {
        Payload::TurnCompleted(done) => done.pending,
        _ => None,
    }
}

/// The thread's last turn event.
async fn last_turn_event(stream: &Stream, thread: &ThreadId) -> Result<Last, String> {
    match stream
        .direct_get_last_for_subject(subjects::turn_event(thread))
        .await
    {
        Ok(message) => Ok(match Envelope::from_json(&message.payload) {
            Ok(event) => Last::Event(event, Some(message.sequence)),
            Err(_) => Last::Unreadable,
        }),
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => Ok(Last::Nothing),
        Err(err) => Err(format!("cannot read the thread's last turn event: {err}")),
    }
}

/// The events of this message's turn an earlier delivery stored: the thread's turn
/// events after the message, of this turn id.
async fn turn_events(stream: &Stream, event: &Envelope, seq: u64) -> Result<Vec<Envelope>, String> {
    let subject = subjects::turn_event(&event.thread_id);
    let mut found = Vec::new();
    let mut next = seq + 1;
    loop {
        let message = match stream
            .direct_get_next_for_subject(subject.as_str(), Some(next))
            .await
        {
            Ok(message) => message,
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => return Ok(found),
            Err(err) => return Err(format!("cannot read the turn's events: {err}")),
        };
        next = message.sequence + 1;
        if let Ok(stored) = Envelope::from_json(&message.payload)
            && stored.turn_id == event.turn_id
        {
            let terminal = stored.payload.is_terminal();
            found.push(stored);
            if terminal {
                return Ok(found);
            }
        }
    }
}

/// Publishes a turn's events pipelined, each with its event id as `Nats-Msg-Id`; `flush`
/// returns once every PubAck is in.
struct JetStreamSink<'a> {
    js: &'a Context,
    acks: Vec<PublishAckFuture>,
    /// The event that ended the turn, once emitted (stored once `flush` returned).
    terminal: Option<Envelope>,
}

impl Sink for JetStreamSink<'_> {
    fn emit(&mut self, event: Envelope) -> BoxFuture<'_, Result<(), TurnError>> {
        Box::pin(async move {
            let publish = PublishMessage::build()
                .payload(event.to_json().into())
                .message_id(event.event_id.to_string());
            let ack = self
                .js
                .send_publish(event.subject(), publish)
                .await
                .map_err(|err| TurnError::Publish(err.to_string()))?;
            self.acks.push(ack);
            if event.payload.is_terminal() {
                self.terminal = Some(event);
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), TurnError>> {
        Box::pin(async move {
            for ack in self.acks.drain(..) {
                ack.await
                    .map_err(|err| TurnError::Publish(err.to_string()))?;
            }
            Ok(())
        })
    }
}

/// Dead-letters a message, tells the user with `turn.failed`, and returns the dead
/// letter's id. Both publishes are de-duplicated, so doing it again after a crash stores
/// nothing twice.
pub async fn dead_letter(
    worker: &Worker,
    delivery: Delivery<'_>,
    category: ErrorCategory,
    error: &str,
) -> anyhow::Result<u64> {
    let failure = Failure {
        category,
        error: error.to_owned(),
        attempts: delivery.delivered,
    };
    let source = Source {
        subject: delivery.subject,
        seq: delivery.seq,
        payload: delivery.payload,
        headers: delivery.headers,
    };
    let id = dead_letters::publish(&worker.js, source, &failure).await?;
    fail_point(FAIL_AFTER_DEAD_LETTER);
    let parsed = Envelope::from_json(delivery.payload).ok();
    let backdating = parsed
        .as_ref()
        .map_or(time::Duration::ZERO, Envelope::backdating);
    let (thread, turn) = match parsed {
        Some(event) => (Some(event.thread_id), event.turn_id),
        None => (
            subjects::thread_of(delivery.subject).and_then(|t| ThreadId::parse(t).ok()),
            // A message that does not parse has no turn id: derive one from its place.
            TurnId::from_uuid(Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("chat-seq-{}", delivery.seq).as_bytes(),
            )),
        ),
    };
    if let Some(thread) = thread {
        let failed = Envelope::new(
            step_event_id(&turn, &format!("failed-{}", delivery.seq)),
            thread,
            turn,
            OffsetDateTime::now_utc() - backdating,
            TurnFailed {
                message_seq: delivery.seq,
                category,
                error: error.to_owned(),
                attempts: delivery.delivered,
                text: APOLOGY.into(),
                dead_letter_id: Some(id),
            },
        );
        let publish = PublishMessage::build()
            .payload(failed.to_json().into())
            .message_id(failed.event_id.to_string());
        worker
            .js
            .send_publish(failed.subject(), publish)
            .await?
            .await?;
    }
    Ok(id)
}

/// Fail point (environment `SMART_SUPPORT_FAIL_POINT`) of the reliability suite: the worker
/// dies right after a dead letter is stored, before the `turn.failed` and the message's
/// termination, as a `kill -9` landing in that window would (`chaos/`, docs/reliability.md).
pub const FAIL_AFTER_DEAD_LETTER: &str = "after-dead-letter";

/// Aborts the process (no clean-up, like SIGKILL) when `SMART_SUPPORT_FAIL_POINT` names this
/// point. Unset in production: then it is one comparison.
fn fail_point(name: &str) {
    static FAIL_POINT: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| std::env::var("SMART_SUPPORT_FAIL_POINT").ok());
    if FAIL_POINT.as_deref() == Some(name) {
        eprintln!("fail point {name}: aborting");
        std::process::abort();
    }
}

/// Messages of one thread waiting for its lane, keyed by thread. A thread has an entry
/// exactly while a lane task is running for it.
type Lanes = Arc<Mutex<HashMap<String, VecDeque<InHand>>>>;

/// A delivered message, the permit that counts it against the most in hand (none once it
/// was parked), and whether it already waited `order_wait` for its thread's previous turn.
type InHand = (Message, Option<OwnedSemaphorePermit>, bool);

/// Shared by the pull loop, the lanes and the parked messages.
struct Shared {
    worker: Arc<Worker>,
    lanes: Lanes,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// Pulls and answers user messages until `shutdown`, then finishes every message in
/// hand. Messages flow continuously (no fetch round trips); at most `max_in_flight` are in
/// hand at once, not counting parked ones.
pub async fn run(
    consumer: PullConsumer,
    worker: Arc<Worker>,
    max_in_flight: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared {
        worker,
        lanes: Arc::default(),
        tasks: TaskTracker::new(),
        shutdown: shutdown.clone(),
    });
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    shared.tasks.spawn(watch_backlog(
        shared.worker.stream.clone(),
        shutdown.clone(),
    ));
    'connect: while !shutdown.is_cancelled() {
        let stream = consumer
            .stream()
            .max_messages_per_batch(max_in_flight.max(1))
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await;
        let mut messages = match stream {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(error = %err, "cannot pull messages; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break 'connect,
                permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let next = tokio::select! {
                _ = shutdown.cancelled() => break 'connect,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => enqueue(&shared, (message, Some(permit), false)),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "pull error; reconnecting");
                    break;
                }
                None => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shared.tasks.close();
    shared.tasks.wait().await;
    Ok(())
}

/// How often a worker reads the `workers` consumer's backlog.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// Keeps `worker_backlog_messages` at the user messages stored and not yet delivered to any
/// worker. Every worker instance reads the same shared consumer, so they all show the same
/// figure; a backlog that keeps growing means the workers answer slower than messages
/// arrive (docs/operations.md).
async fn watch_backlog(stream: Stream, shutdown: CancellationToken) {
    loop {
        match common::jetstream::workers_backlog(&stream).await {
            Ok(pending) => {
                let pending = i64::try_from(pending).unwrap_or(i64::MAX);
                metrics::METRICS.backlog.set(pending);
            }
            Err(err) => tracing::debug!(%err, "backlog gauge not updated"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(BACKLOG_EVERY) => {}
        }
    }
}

/// Queues a message on its thread's lane, starting the lane if it is idle.
fn enqueue(shared: &Arc<Shared>, in_hand: InHand) {
    let thread = subjects::thread_of(&in_hand.0.subject)
        .unwrap_or_default()
        .to_owned();
    let mut waiting = shared.lanes.lock().expect("lanes lock");
    match waiting.get_mut(&thread) {
        Some(queue) => queue.push_back(in_hand),
        None => {
            waiting.insert(thread.clone(), VecDeque::new());
            shared.tasks.spawn(lane(thread, in_hand, shared.clone()));
        }
    }
}

/// Answers one thread's messages in order until its queue is empty.
async fn lane(thread: String, first: InHand, shared: Arc<Shared>) {
    let mut next = Some(first);
    while let Some((message, permit, ignore_order)) = next {
        let (seq, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(_) => (0, 1),
        };
        let delivery = Delivery {
            subject: &message.subject,
            seq,
            delivered: u32::try_from(delivered).unwrap_or(u32::MAX),
            payload: &message.payload,
            headers: message.headers.as_ref(),
            ignore_order,
        };
        let worker = &shared.worker;
        let started = std::time::Instant::now();
        match step(worker, delivery).await {
            Outcome::Wait => {
                drop(permit);
                metrics::settled("parked");
                metrics::METRICS.parked.inc();
                shared.tasks.spawn(park(message, shared.clone()));
            }
            outcome => {
                settle(worker, &message, delivery, outcome).await;
                metrics::METRICS
                    .turn_seconds
                    .observe(started.elapsed().as_secs_f64());
                worker.settled.notify_waiters();
            }
        }
        let mut waiting = shared.lanes.lock().expect("lanes lock");
        next = match waiting.get_mut(&thread).and_then(VecDeque::pop_front) {
            Some(queued) => Some(queued),
            None => {
                waiting.remove(&thread);
                None
            }
        };
    }
}

/// Holds a message whose thread's previous message is still being answered, keeping its
/// delivery alive, and puts it back on its lane when a turn ends here or a poll is due.
/// On shutdown it is released for redelivery at once.
async fn park(message: Message, shared: Arc<Shared>) {
    let worker = &shared.worker;
    let progress_every = worker.policy.ack_wait / 3;
    let parked_at = tokio::time::Instant::now();
    let mut last_progress = parked_at;
    let mut ignore_order = false;
    let mut poll = Duration::from_millis(5);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => {
                metrics::METRICS.parked.dec();
                let _ = message.ack_with(AckKind::Nak(None)).await;
                return;
            }
            _ = worker.settled.notified() => {}
            _ = tokio::time::sleep(poll) => poll = (poll * 2).min(Duration::from_millis(250)),
        }
        if last_progress.elapsed() >= progress_every {
            if let Err(err) = message.ack_with(AckKind::Progress).await {
                tracing::warn!(error = %err, "progress ack not sent");
            }
            last_progress = tokio::time::Instant::now();
        }
        let Ok(event) = Envelope::from_json(&message.payload) else {
            break;
        };
        let Some(previous) = previous_seq(message.headers.as_ref()) else {
            break;
        };
        match last_turn_event(&worker.stream, &event.thread_id).await {
            Ok(last)
                if last.lets_start_after(previous)
                    || last
                        .event()
                        .is_some_and(|last| last.turn_id == event.turn_id) =>
            {
                break;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "parked message cannot check its thread"),
        }
        if parked_at.elapsed() >= worker.policy.order_wait {
            tracing::warn!(
                thread_id = %event.thread_id,
                previous,
                "the previous message of the thread did not end its turn within the order wait; answering this one anyway"
            );
            ignore_order = true;
            break;
        }
    }
    metrics::METRICS.parked.dec();
    enqueue(&shared, (message, None, ignore_order));
}

/// Acknowledges, naks or dead-letters according to the outcome.
async fn settle(worker: &Worker, message: &Message, delivery: Delivery<'_>, outcome: Outcome) {
    let result = match outcome {
        Outcome::Done => {
            metrics::settled("done");
            message.ack().await
        }
        Outcome::Wait => unreachable!("a waiting message is parked, not settled"),
        Outcome::Retry { after, error } => {
            metrics::settled("retry");
            tracing::warn!(subject = %message.subject, %error, ?after, "turn failed; redelivery later");
            message.ack_with(AckKind::Nak(Some(after))).await
        }
        Outcome::DeadLetter { category, error } => {
            match dead_letter(worker, delivery, category, &error).await {
                Ok(id) => {
                    metrics::settled("dead_letter");
                    tracing::error!(subject = %message.subject, dead_letter = id, category = category.as_str(), %error, "message dead-lettered");
                    message.ack_with(AckKind::Term).await
                }
                Err(err) => {
                    tracing::warn!(error = %err, "dead letter not stored; redelivery later");
                    message
                        .ack_with(AckKind::Nak(Some(worker.policy.delay(delivery.delivered))))
                        .await
                }
            }
        }
    };
    if let Err(err) = result {
        // The message will be redelivered after ack_wait; its events are de-duplicated.
        tracing::warn!(error = %err, "ack not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_backs_off_exponentially_with_jitter_up_to_the_cap() {
        let policy = RetryPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_deliveries: 5,
            ack_wait: Duration::from_secs(30),
            order_wait: Duration::from_secs(600),
        };
        for (delivered, base) in [(1, 1), (2, 2), (3, 4), (4, 8), (7, 60), (9, 60)] {
            let delay = policy.delay(delivered);
            let base = Duration::from_secs(base);
            assert!(
                delay >= base && delay <= (base.mul_f64(1.2)).min(Duration::from_secs(60)),
                "{delivered}: {delay:?}"
            );
        }
    }

    #[test]
    fn only_the_end_of_the_previous_turn_or_a_later_one_lets_a_message_start() {
        let thread = ThreadId::parse("t").unwrap();
        let turn = TurnId::from_uuid(Uuid::from_u128(1));
        let event = |payload: Payload| Envelope {
            event_id: Uuid::from_u128(2),
            schema_version: 1,
            thread_id: thread.clone(),
            turn_id: turn,
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            payload,
        };
        let completed = |seq| {
            event(Payload::TurnCompleted(common::events::TurnCompleted {
                outcome: common::events::TurnOutcome::Replied,
                latency_ms: 1,
                message_seq: seq,
                pending: None,
            }))
        };
        assert!(ends_turn_of(&completed(7), 7));
        assert!(ends_turn_of(&completed(9), 7));
        assert!(!ends_turn_of(&completed(5), 7));
        let started = event(Payload::TurnStarted(common::events::TurnStarted {
            message_seq: 7,
            confirming: None,
        }));
        assert!(!ends_turn_of(&started, 7));
        // A turn.completed from before the field existed does not hold a thread up.
        assert!(ends_turn_of(&completed(0), 7));
        assert!(Last::Unreadable.lets_start_after(7));
        assert!(!Last::Nothing.lets_start_after(7));
    }
}
