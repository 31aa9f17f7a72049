//! Per-thread rate limit, shared by every connection and ingress instance: at most
//! `limit.messages` messages per `limit.window` in one thread.
//!
//! The state travels with the messages themselves. Every stored user message carries, in
//! the `Smart-Support-Arrivals` header, the arrival times (ms) of the thread's recent
//! messages including its own. A publish names the sequence of the thread's last user
//! message it knows (`Nats-Expected-Last-Subject-Sequence` on `chat.<thread>.user`): if
//! another connection or instance stored one meanwhile, JetStream refuses the publish,
//! and the limiter reads the thread's last message (a direct get) and decides again. So
//! two instances can never both take the last slot, and a message costs one JetStream
//! write: the limit needs no store of its own.
//!
//! A connection's messages are therefore stored one after the other (each publish names
//! the previous one's sequence); [`ThreadLimiter::store`] is called from one task per
//! connection.
//!
//! The same compare-and-set gives every user message the sequence of the thread's previous
//! one (`Smart-Support-Previous-Seq`), which the workers use to keep a thread's turns in
//! order.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{
    Context, context::PublishErrorKind, stream::DirectGetErrorKind, stream::Stream,
};
use common::{events::ThreadId, subjects};

use crate::publish::{self, Stored};
use crate::ws::frame::{ClientMsgId, MessageContent};

/// Header with the arrival times of the thread's recent messages (comma-separated ms).
pub const ARRIVALS_HEADER: &str = "Smart-Support-Arrivals";

/// Settings of the limit.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub messages: usize,
    pub window: Duration,
}

/// The verdict for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; a slot frees up after this long.
    Limited {
        retry_after: Duration,
    },
}

/// Why a message was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over the thread's limit.
    Limited { retry_after: Duration },
    /// JetStream did not store it (down, timed out, too much contention); the client may
    /// resend with the same `client_msg_id`.
    Unavailable(String),
}

/// What this connection knows of its thread's last stored user message.
#[derive(Debug, Clone)]
struct Known {
    last_seq: u64,
    arrivals: Vec<u64>,
}

/// Stores one thread's user messages within its rate limit.
pub struct ThreadLimiter {
    js: Context,
    stream: Arc<Stream>,
    thread: ThreadId,
    subject: String,
    limit: Limit,
    known: Option<Known>,
}

impl ThreadLimiter {
    pub fn new(js: Context, stream: Arc<Stream>, thread: ThreadId, limit: Limit) -> ThreadLimiter {
        ThreadLimiter {
            subject: subjects::user_message(&thread),
            js,
            stream,
            thread,
            limit,
            known: None,
        }
    }

    /// Stores a user message if the thread is under its limit.
    pub async fn store(
        &mut self,
        content: MessageContent,
        client_msg_id: Option<&ClientMsgId>,
    ) -> Result<Stored, Refusal> {
        let event = publish::user_message(&self.thread, content, client_msg_id);
        for _ in 0..8 {
            let known = match self.known.take() {
                Some(known) => known,
                None => self.load().await?,
            };
            let (decision, arrivals) = decide(known.arrivals.clone(), now_ms(), self.limit);
            if let Decision::Limited { retry_after } = decision {
                self.known = Some(known);
                return Err(Refusal::Limited { retry_after });
            }
            let mut message = publish::message(&event)
                .expected_last_subject_sequence(known.last_seq)
                .header(ARRIVALS_HEADER, encode(&arrivals).as_str());
            if known.last_seq > 0 {
                // The chain the workers follow to answer a thread's messages in order.
                message = message.header(
                    subjects::PREVIOUS_SEQ_HEADER,
                    known.last_seq.to_string().as_str(),
                );
            }
            let ack = async {
                self.js
                    .send_publish(self.subject.clone(), message)
                    .await?
                    .await
            };
            match ack.await {
                Ok(ack) if ack.duplicate => {
                    // A resend of a stored message: nothing new was stored.
                    self.known = Some(known);
                    return Ok(Stored {
                        seq: ack.sequence,
                        duplicate: true,
                    });
                }
                Ok(ack) => {
                    self.known = Some(Known {
                        last_seq: ack.sequence,
                        arrivals,
                    });
                    return Ok(Stored {
                        seq: ack.sequence,
                        duplicate: false,
                    });
                }
                // Another connection or instance stored a message of this thread first.
                Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => continue,
                Err(err) => return Err(Refusal::Unavailable(err.to_string())),
            }
        }
        Err(Refusal::Unavailable(
            "too much contention on the thread; resend".into(),
        ))
    }

    /// Reads the thread's last user message: its sequence and recent arrivals.
    async fn load(&self) -> Result<Known, Refusal> {
        match self
            .stream
            .direct_get_last_for_subject(self.subject.clone())
            .await
        {
            Ok(message) => Ok(Known {
                last_seq: message.sequence,
                arrivals: message
                    .headers
                    .get(ARRIVALS_HEADER)
                    .map(|value| decode(value.as_str()))
                    .unwrap_or_default(),
            }),
            Err(err) if err.kind() == DirectGetErrorKind::NotFound => Ok(Known {
                last_seq: 0,
                arrivals: Vec::new(),
            }),
            Err(err) => Err(Refusal::Unavailable(err.to_string())),
        }
    }
}

/// The pure rule: drop arrivals older than the window, then allow and record `now` if
/// fewer than `limit.messages` remain.
pub fn decide(mut arrivals: Vec<u64>, now: u64, limit: Limit) -> (Decision, Vec<u64>) {
    let window = limit.window.as_millis() as u64;
    arrivals.retain(|&t| t + window > now && t <= now + window);
    if arrivals.len() >= limit.messages {
        let oldest = arrivals.iter().min().copied().unwrap_or(now);
        let retry_after = Duration::from_millis((oldest + window).saturating_sub(now).max(1));
        return (Decision::Limited { retry_after }, arrivals);
    }
    arrivals.push(now);
    (Decision::Allowed, arrivals)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn encode(arrivals: &[u64]) -> String {
    arrivals
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn decode(header: &str) -> Vec<u64> {
    header
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Limit = Limit {
        messages: 3,
        window: Duration::from_secs(10),
    };

    #[test]
    fn messages_under_the_limit_are_allowed_and_recorded() {
        let (decision, arrivals) = decide(vec![1_000, 2_000], 3_000, LIMIT);
        assert_eq!(decision, Decision::Allowed);
        assert_eq!(arrivals, [1_000, 2_000, 3_000]);
    }

    #[test]
    fn the_message_over_the_limit_is_refused_with_the_time_until_a_slot_frees() {
        let (decision, arrivals) = decide(vec![1_000, 2_000, 3_000], 4_000, LIMIT);
        assert_eq!(
            decision,
            Decision::Limited {
                retry_after: Duration::from_millis(7_000)
            }
        );
        assert_eq!(arrivals.len(), 3, "a refused message takes no slot");
    }

    #[test]
    fn arrivals_older_than_the_window_no_longer_count() {
        let (decision, arrivals) = decide(vec![1_000, 2_000, 3_000], 11_500, LIMIT);
        assert_eq!(decision, Decision::Allowed);
        assert_eq!(arrivals, [2_000, 3_000, 11_500]);
    }

    #[test]
    fn the_arrivals_header_round_trips_and_ignores_garbage() {
        assert_eq!(decode(&encode(&[1, 22, 333])), [1, 22, 333]);
        assert_eq!(decode("5,x,,7"), [5, 7]);
        assert!(decode("").is_empty());
    }
}
