//! Per-thread rate limit, shared by every connection and ingress instance: at most
//! `limit.messages` messages per `limit.window` in one thread.
//!
//! The state travels with the messages themselves. Every stored user message carries, in
//! the `Smart-Support-Arrivals` header, the arrival times (ms) of the thread's recent
//! messages including its own. The limit is the [`Admission`] of the thread's user-message
//! writer ([`common::user_messages`]): a publish names the sequence of the thread's last
//! user message it knows (`Nats-Expected-Last-Subject-Sequence` on `chat.<thread>.user`); if
//! another connection or instance stored one meanwhile, JetStream refuses the publish, and
//! the writer reads the thread's last message (a direct get) and asks [`decide`] again. So
//! two instances can never both take the last slot, and a message costs one JetStream
//! write: the limit needs no store of its own.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use common::user_messages::Admission;

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

/// The limit as the admission of a thread's user messages: the state is the arrival times
/// in the last message's header; a refusal is the time until a slot frees up.
impl Admission for Limit {
    type State = Vec<u64>;
    type Refusal = Duration;

    fn read(&self, last: Option<&HeaderMap>) -> Vec<u64> {
        last.and_then(|headers| headers.get(ARRIVALS_HEADER))
            .map(|value| decode(value.as_str()))
            .unwrap_or_default()
    }

    fn admit(&self, arrivals: &Vec<u64>) -> Result<Vec<u64>, Duration> {
        match decide(arrivals.clone(), now_ms(), *self) {
            (Decision::Allowed, arrivals) => Ok(arrivals),
            (Decision::Limited { retry_after }, _) => Err(retry_after),
        }
    }

    fn write(&self, arrivals: &Vec<u64>, message: PublishMessage) -> PublishMessage {
        message.header(ARRIVALS_HEADER, encode(arrivals).as_str())
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
    fn as_the_writer_s_admission_the_limit_reads_decides_and_writes_the_arrivals() {
        assert!(LIMIT.read(None).is_empty(), "a thread without messages");
        let mut headers = HeaderMap::new();
        headers.insert(ARRIVALS_HEADER, "1,22");
        assert_eq!(LIMIT.read(Some(&headers)), [1, 22]);
        let now = now_ms();
        let next = LIMIT.admit(&vec![now, now]).unwrap();
        assert_eq!(next.len(), 3);
        assert!(
            LIMIT.admit(&next).is_err(),
            "the fourth message in the window"
        );
        let message = LIMIT.write(&vec![1, 22], PublishMessage::build());
        let message = format!("{message:?}");
        assert!(message.contains("1,22"), "{message}");
    }

    #[test]
    fn the_arrivals_header_round_trips_and_ignores_garbage() {
        assert_eq!(decode(&encode(&[1, 22, 333])), [1, 22, 333]);
        assert_eq!(decode("5,x,,7"), [5, 7]);
        assert!(decode("").is_empty());
    }
}
