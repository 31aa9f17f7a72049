//! The pull loop. Each fetched batch is grouped by thread: one thread's messages run one
//! after the other in stream order, different threads run in parallel, and the next batch
//! is fetched only when this one is done, so a thread's turns never overlap in a worker.
//!
//! [`step`] handles one message and returns an [`Outcome`]; [`settle`] turns the outcome
//! into ack / nak-with-delay / term. Tests call `step` directly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{
    AckKind, Context, Message, consumer::PullConsumer, message::PublishMessage,
};
use common::events::Envelope;
use common::shutdown::CancellationToken;
use futures::StreamExt;
use time::OffsetDateTime;

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

/// Pulls and answers user messages until `shutdown`; the batch in hand is finished first.
pub async fn run(
    consumer: PullConsumer,
    js: Context,
    engine: Arc<dyn Engine>,
    batch: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    while !shutdown.is_cancelled() {
        let fetched = consumer
            .fetch()
            .max_messages(batch)
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let mut messages = match fetched {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(error = %err, "fetch failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut threads: HashMap<String, Vec<Message>> = HashMap::new();
        while let Some(message) = messages.next().await {
            match message {
                Ok(message) => {
                    let thread = common::subjects::thread_of(&message.subject)
                        .unwrap_or_default()
                        .to_owned();
                    threads.entry(thread).or_default().push(message);
                }
                Err(err) => tracing::warn!(error = %err, "fetch error"),
            }
        }
        let lanes = threads.into_values().map(|lane| {
            let js = &js;
            let engine = engine.as_ref();
            async move {
                for message in lane {
                    let (seq, delivered) = match message.info() {
                        Ok(info) => (info.stream_sequence, info.delivered),
                        Err(_) => (0, 1),
                    };
                    let outcome = step(js, engine, &message.payload, seq, delivered).await;
                    settle(&message, &outcome).await;
                }
            }
        });
        futures::future::join_all(lanes).await;
    }
    Ok(())
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
