//! The pull loop and the lanes: one lane task per thread answers its messages one after the
//! other; a message whose thread's previous turn has not ended is parked; each step's
//! outcome becomes ack / nak-with-delay / dead letter + term.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

use async_nats::jetstream::{AckKind, Message, consumer::PullConsumer};
use common::events::Envelope;
use common::shutdown::CancellationToken;
use common::subjects;
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::backlog::watch_backlog;
use super::dead_letter::dead_letter;
use super::order::{Last, last_turn_event, previous_seq};
use super::{Delivery, Outcome, Worker, step_with};
use crate::desk::OperatorRead;
use crate::metrics;

/// Messages of one thread waiting for its lane, keyed by thread. A thread has an entry
/// exactly while a lane task is running for it.
type Lanes = Arc<Mutex<HashMap<String, VecDeque<InHand>>>>;

/// A delivered message in hand.
struct InHand {
    message: Message,
    /// Counts it against the most in hand (none once it was parked).
    permit: Option<OwnedSemaphorePermit>,
    /// It already waited `order_wait` for its thread's previous turn.
    ignore_order: bool,
    /// Who holds the conversation, read while it waits for its lane.
    operator: OperatorRead,
}

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
                Some(Ok(message)) => enqueue(&shared, message, Some(permit), false),
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

/// Queues a message on its thread's lane, starting the lane if it is idle, and starts the
/// read of who holds its conversation.
fn enqueue(
    shared: &Arc<Shared>,
    message: Message,
    permit: Option<OwnedSemaphorePermit>,
    ignore_order: bool,
) {
    let thread = subjects::thread_of(&message.subject)
        .unwrap_or_default()
        .to_owned();
    let operator = OperatorRead::start(
        shared.worker.clone(),
        shared.worker.operators.as_ref(),
        &message.subject,
    );
    let in_hand = InHand {
        message,
        permit,
        ignore_order,
        operator,
    };
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
    while let Some(InHand {
        message,
        permit,
        ignore_order,
        operator,
    }) = next
    {
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
        let span = crate::trace::turn_span(&delivery);
        match step_with(worker, delivery, operator)
            .instrument(span.clone())
            .await
        {
            Outcome::Wait => {
                drop(permit);
                metrics::settled("parked");
                metrics::METRICS.parked.inc();
                shared.tasks.spawn(park(message, shared.clone()));
            }
            outcome => {
                settle(worker, &message, delivery, outcome)
                    .instrument(span)
                    .await;
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
            // The previous message's turn events are gone: an erasure, which the step sees.
            Ok(Last::Nothing)
                if matches!(
                    common::erasure::erased_at(&worker.stream, &event.thread_id).await,
                    Ok(Some(_))
                ) =>
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
    enqueue(&shared, message, None, ignore_order);
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
            // The error may quote the message or the model's answer: only what it does not
            // quote goes to the log at warn (the whole of it at debug).
            tracing::warn!(subject = %message.subject, error = %common::text::log_safe(&error), ?after, "turn failed; redelivery later");
            tracing::debug!(subject = %message.subject, %error, "turn failed (whole error)");
            message.ack_with(AckKind::Nak(Some(after))).await
        }
        Outcome::DeadLetter { category, error } => {
            match dead_letter(worker, delivery, category, &error).await {
                Ok(id) => {
                    metrics::settled("dead_letter");
                    // The whole error is in the dead letter; the log keeps what it does not quote.
                    tracing::error!(subject = %message.subject, dead_letter = id, category = category.as_str(), error = %common::text::log_safe(&error), "message dead-lettered");
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
