//! The pull loop. Messages flow from the shared durable consumer into one lane per
//! thread: a thread's messages are answered one after the other in delivery order,
//! different threads run in parallel, so a thread's turns never overlap in a worker.
//!
//! [`step`] handles one message and returns an [`Outcome`]; [`settle`] turns the outcome
//! into ack / nak-with-delay / term. Tests call `step` directly.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{
    AckKind, Context, Message, consumer::PullConsumer, message::PublishMessage,
};
use common::events::Envelope;
use common::shutdown::CancellationToken;
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::agents::{Engine, EngineError};
use crate::turn::{self, Incoming, TurnError};

/// What to do with a message after its step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every event of the turn is stored: acknowledge.
    Done,
    /// Worth another try after this delay (nak with delay: a plain nak would redeliver at
    /// once and hot-loop).
    Retry { after: Duration },
    /// Will never succeed: terminate the message (the dead-letter stream comes later).
    DeadLetter { reason: String },
}

/// Handles one delivered message: decode, run the turn, publish its events.
pub async fn step(
    js: &Context,
    engine: &dyn Engine,
    payload: &[u8],
    seq: u64,
    delivered: i64,
) -> Outcome {
    let event = match Envelope::from_json(payload) {
        Ok(event) => event,
        Err(err) => {
            return Outcome::DeadLetter {
                reason: err.to_string(),
            };
        }
    };
    let incoming = Incoming { event, seq };
    let events = match turn::run(engine, &incoming, OffsetDateTime::now_utc).await {
        Ok(events) => events,
        Err(TurnError::Engine(EngineError::Retryable(reason))) => {
            tracing::warn!(%reason, "engine unavailable; retrying later");
            return Outcome::Retry {
                after: retry_delay(delivered),
            };
        }
        Err(err) => {
            return Outcome::DeadLetter {
                reason: err.to_string(),
            };
        }
    };
    match publish_all(js, &events).await {
        Ok(()) => Outcome::Done,
        Err(err) => {
            tracing::warn!(error = %err, "turn events not stored; retrying later");
            Outcome::Retry {
                after: retry_delay(delivered),
            }
        }
    }
}

/// Publishes the events pipelined (all sent, then all PubAcks awaited), each with its
/// event id as `Nats-Msg-Id`. Ok only when every PubAck is in.
pub async fn publish_all(js: &Context, events: &[Envelope]) -> anyhow::Result<()> {
    let mut acks = Vec::with_capacity(events.len());
    for event in events {
        let publish = PublishMessage::build()
            .payload(event.to_json().into())
            .message_id(event.event_id.to_string());
        acks.push(js.send_publish(event.subject(), publish).await?);
    }
    for ack in acks {
        ack.await?;
    }
    Ok(())
}

/// Exponential back-off for redelivery: 1 s, 2 s, 4 s … capped at 60 s.
pub fn retry_delay(delivered: i64) -> Duration {
    let exponent = delivered.clamp(1, 7) as u32 - 1;
    Duration::from_secs(2u64.pow(exponent)).min(Duration::from_secs(60))
}

/// Acknowledges, naks or terminates according to the outcome.
pub async fn settle(message: &Message, outcome: &Outcome) {
    let result = match outcome {
        Outcome::Done => message.ack().await,
        Outcome::Retry { after } => message.ack_with(AckKind::Nak(Some(*after))).await,
        Outcome::DeadLetter { reason } => {
            tracing::error!(subject = %message.subject, %reason, "message cannot be answered; terminated");
            message.ack_with(AckKind::Term).await
        }
    };
    if let Err(err) = result {
        // The message will be redelivered after ack_wait; its events are de-duplicated.
        tracing::warn!(error = %err, "ack not sent");
    }
}

/// Messages of one thread waiting for its lane, keyed by thread id. A thread has an
/// entry exactly while a lane task is running for it.
type Lanes = Arc<Mutex<HashMap<String, VecDeque<InHand>>>>;

/// A delivered message and the permit that counts it against `max_in_flight`.
type InHand = (Message, OwnedSemaphorePermit);

/// Pulls and answers user messages until `shutdown`, then finishes every message in
/// hand. Messages flow continuously (no fetch round trips); each thread gets a lane that
/// answers its messages one after the other in delivery order, lanes of different threads
/// run in parallel, and at most `max_in_flight` messages are in hand at once.
pub async fn run(
    consumer: PullConsumer,
    js: Context,
    engine: Arc<dyn Engine>,
    max_in_flight: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let lanes: Lanes = Arc::default();
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let tasks = TaskTracker::new();
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
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "pull error; reconnecting");
                    break;
                }
                None => break,
            };
            let thread = common::subjects::thread_of(&message.subject)
                .unwrap_or_default()
                .to_owned();
            let mut waiting = lanes.lock().expect("lanes lock");
            match waiting.get_mut(&thread) {
                Some(queue) => queue.push_back((message, permit)),
                None => {
                    waiting.insert(thread.clone(), VecDeque::new());
                    tasks.spawn(lane(
                        thread,
                        (message, permit),
                        lanes.clone(),
                        js.clone(),
                        engine.clone(),
                    ));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// Answers one thread's messages in order until its queue is empty.
async fn lane(thread: String, first: InHand, lanes: Lanes, js: Context, engine: Arc<dyn Engine>) {
    let mut next = Some(first);
    while let Some((message, _permit)) = next {
        let (seq, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(_) => (0, 1),
        };
        let outcome = step(&js, engine.as_ref(), &message.payload, seq, delivered).await;
        settle(&message, &outcome).await;
        let mut waiting = lanes.lock().expect("lanes lock");
        next = match waiting.get_mut(&thread).and_then(VecDeque::pop_front) {
            Some(queued) => Some(queued),
            None => {
                waiting.remove(&thread);
                None
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_backs_off_exponentially_up_to_a_minute() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
