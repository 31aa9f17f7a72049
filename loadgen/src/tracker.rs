//! Matching answers to the messages of one connection, without I/O.
//!
//! Messages are numbered 0, 1, 2… per connection. An ack names its message by
//! `client_msg_id`. An error frame names none, but the server answers a connection's frames
//! in order, so an error answers the oldest message still waiting for its ack. A reply
//! names only its turn: the `message.received` event carrying our `client_msg_id` tells
//! which turn answers which message.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::frame::{self, ServerFrame};
use crate::stats::Batch;

/// What a frame meant, for the live counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Ack,
    Reply,
    Error,
    Nothing,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    sent_at: Instant,
    /// Sent after the warmup, so it counts.
    measured: bool,
    acked: bool,
    /// Replied to or rejected: nothing more is expected for it.
    done: bool,
}

/// The messages of one connection that are not finished yet.
#[derive(Debug)]
pub struct Tracker {
    prefix: String,
    /// Number of `slots[0]`; finished messages leave from the front.
    base: u64,
    slots: VecDeque<Slot>,
    awaiting_ack: VecDeque<u64>,
    /// Turn id → message number, from `message.received`.
    turns: HashMap<u128, u64>,
}

impl Tracker {
    /// A tracker for the connection whose `client_msg_id`s start with `prefix`.
    pub fn new(prefix: String) -> Tracker {
        Tracker {
            prefix,
            base: 0,
            slots: VecDeque::new(),
            awaiting_ack: VecDeque::new(),
            turns: HashMap::new(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Messages sent and neither acked nor rejected yet.
    pub fn unacked(&self) -> usize {
        self.awaiting_ack.len()
    }

    /// Whether every message sent has been replied to or rejected.
    pub fn is_settled(&self) -> bool {
        self.slots.is_empty()
    }

    /// Notes a message about to be sent; returns its number.
    pub fn send(&mut self, at: Instant, measured: bool, batch: &mut Batch) -> u64 {
        let n = self.base + self.slots.len() as u64;
        self.slots.push_back(Slot {
            sent_at: at,
            measured,
            acked: false,
            done: false,
        });
        self.awaiting_ack.push_back(n);
        if measured {
            batch.counts.sent += 1;
        }
        n
    }

    /// Applies one server frame.
    pub fn receive(&mut self, frame: ServerFrame<'_>, now: Instant, batch: &mut Batch) -> Seen {
        match frame {
            ServerFrame::MessageReceived { .. } | ServerFrame::OtherEvent => {
                batch.counts.events += 1
            }
            ServerFrame::AgentReplied { .. } => {
                batch.counts.events += 1;
                batch.counts.replied_events += 1;
            }
            _ => {}
        }
        match frame {
            ServerFrame::Delta { sent_micros } => {
                batch.delta(sent_micros.and_then(|sent| delay_since(sent, SystemTime::now())));
                Seen::Nothing
            }
            ServerFrame::Ack { client_msg_id } => {
                let Some(n) = frame::message_number(&client_msg_id, &self.prefix) else {
                    return Seen::Nothing;
                };
                let Some(position) = self.awaiting_ack.iter().position(|&m| m == n) else {
                    return Seen::Nothing;
                };
                self.awaiting_ack.remove(position);
                if let Some(slot) = self.slot(n) {
                    slot.acked = true;
                    if slot.measured {
                        batch.ack(now.saturating_duration_since(slot.sent_at), now);
                    }
                }
                Seen::Ack
            }
            ServerFrame::Error { code } => {
                let measured = match self.awaiting_ack.pop_front() {
                    Some(n) => match self.slot(n) {
                        Some(slot) => {
                            slot.done = true;
                            if slot.measured {
                                batch.counts.rejected += 1;
                            }
                            slot.measured
                        }
                        None => true,
                    },
                    // Not an answer to a message (the connection is being refused, say): it
                    // still says something about the run.
                    None => true,
                };
                if measured {
                    batch.error(&code);
                }
                self.retire();
                Seen::Error
            }
            ServerFrame::MessageReceived {
                client_msg_id: Some(client_msg_id),
                turn_id: Some(turn),
            } => {
                if let Some(n) = frame::message_number(&client_msg_id, &self.prefix)
                    && self.slot(n).is_some_and(|slot| !slot.done)
                {
                    self.turns.insert(turn, n);
                }
                Seen::Nothing
            }
            ServerFrame::AgentReplied {
                turn_id: Some(turn),
            } => {
                let Some(n) = self.turns.remove(&turn) else {
                    return Seen::Nothing;
                };
                let Some(slot) = self.slot(n).filter(|slot| !slot.done) else {
                    return Seen::Nothing;
                };
                slot.done = true;
                if slot.measured {
                    batch.reply(now.saturating_duration_since(slot.sent_at), now);
                }
                self.retire();
                Seen::Reply
            }
            _ => Seen::Nothing,
        }
    }

    /// Counts what never got its ack or its reply.
    pub fn finish(self, batch: &mut Batch) {
        for slot in self.slots.iter().filter(|slot| slot.measured && !slot.done) {
            if slot.acked {
                batch.counts.unanswered += 1;
            } else {
                batch.counts.unacked += 1;
            }
        }
    }

    fn slot(&mut self, n: u64) -> Option<&mut Slot> {
        let index = usize::try_from(n.checked_sub(self.base)?).ok()?;
        self.slots.get_mut(index)
    }

    fn retire(&mut self) {
        while self.slots.front().is_some_and(|slot| slot.done) {
            self.slots.pop_front();
            self.base += 1;
        }
    }
}

/// From `sent_micros` (Unix time, µs) to `now`; `None` for a send time in the future (a
/// clock that is not this machine's).
fn delay_since(sent_micros: u64, now: SystemTime) -> Option<Duration> {
    now.duration_since(UNIX_EPOCH + Duration::from_micros(sent_micros))
        .ok()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use super::*;

    const PREFIX: &str = "lg-run-0-";

    fn ack(n: u64) -> ServerFrame<'static> {
        ServerFrame::Ack {
            client_msg_id: Cow::Owned(format!("{PREFIX}{n}")),
        }
    }

    fn received(n: u64, turn: u128) -> ServerFrame<'static> {
        ServerFrame::MessageReceived {
            client_msg_id: Some(Cow::Owned(format!("{PREFIX}{n}"))),
            turn_id: Some(turn),
        }
    }

    fn replied(turn: u128) -> ServerFrame<'static> {
        ServerFrame::AgentReplied {
            turn_id: Some(turn),
        }
    }

    fn error(code: &'static str) -> ServerFrame<'static> {
        ServerFrame::Error { code: code.into() }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_reply_is_matched_to_its_message_through_the_turn() {
        let t0 = Instant::now();
        let mut batch = Batch::default();
        let mut tracker = Tracker::new(PREFIX.to_owned());
        let first = tracker.send(t0, true, &mut batch);
        let second = tracker.send(t0 + ms(5), true, &mut batch);
        assert_eq!(tracker.unacked(), 2);

        assert_eq!(
            tracker.receive(ack(first), t0 + ms(2), &mut batch),
            Seen::Ack
        );
        assert_eq!(
            tracker.receive(received(first, 11), t0 + ms(3), &mut batch),
            Seen::Nothing
        );
        assert_eq!(
            tracker.receive(ack(second), t0 + ms(6), &mut batch),
            Seen::Ack
        );
        assert_eq!(
            tracker.receive(received(second, 22), t0 + ms(7), &mut batch),
            Seen::Nothing
        );
        assert_eq!(
            tracker.receive(replied(22), t0 + ms(20), &mut batch),
            Seen::Reply
        );
        assert!(!tracker.is_settled());
        assert_eq!(
            tracker.receive(replied(11), t0 + ms(30), &mut batch),
            Seen::Reply
        );

        assert!(tracker.is_settled());
        assert_eq!(tracker.unacked(), 0);
        assert_eq!(
            (batch.counts.sent, batch.counts.acked, batch.counts.replied),
            (2, 2, 2)
        );
    }

    #[test]
    fn events_and_deltas_are_counted_and_a_deltas_delay_is_from_its_send_time() {
        let t0 = Instant::now();
        let mut batch = Batch::default();
        let mut tracker = Tracker::new(PREFIX.to_owned());
        let n = tracker.send(t0, true, &mut batch);
        tracker.receive(ack(n), t0, &mut batch);
        tracker.receive(received(n, 5), t0, &mut batch);
        tracker.receive(ServerFrame::OtherEvent, t0, &mut batch);
        for sent_micros in [Some(1), None] {
            let seen = tracker.receive(ServerFrame::Delta { sent_micros }, t0, &mut batch);
            assert_eq!(seen, Seen::Nothing);
        }
        tracker.receive(replied(5), t0, &mut batch);
        tracker.receive(ServerFrame::Other, t0, &mut batch);
        assert_eq!(
            (
                batch.counts.events,
                batch.counts.replied_events,
                batch.counts.deltas
            ),
            (3, 1, 2)
        );

        let now = UNIX_EPOCH + Duration::from_micros(1_000_250);
        assert_eq!(
            delay_since(1_000_000, now),
            Some(Duration::from_micros(250))
        );
        assert_eq!(delay_since(2_000_000, now), None);
    }

    #[test]
    fn an_error_answers_the_oldest_message_still_waiting_for_its_ack() {
        let t0 = Instant::now();
        let mut batch = Batch::default();
        let mut tracker = Tracker::new(PREFIX.to_owned());
        let first = tracker.send(t0, true, &mut batch);
        let second = tracker.send(t0, true, &mut batch);
        tracker.receive(ack(first), t0, &mut batch);
        assert_eq!(
            tracker.receive(error("rate_limited"), t0, &mut batch),
            Seen::Error
        );

        assert_eq!(tracker.unacked(), 0);
        assert_eq!(tracker.receive(ack(second), t0, &mut batch), Seen::Nothing);
        assert_eq!(batch.counts.rejected, 1);
        assert_eq!(batch.errors.get("rate_limited"), Some(&1));
        tracker.finish(&mut batch);
        assert_eq!((batch.counts.unacked, batch.counts.unanswered), (0, 1));
    }

    #[test]
    fn what_is_left_at_the_end_is_unacked_or_unanswered() {
        let t0 = Instant::now();
        let mut batch = Batch::default();
        let mut tracker = Tracker::new(PREFIX.to_owned());
        let acked = tracker.send(t0, true, &mut batch);
        tracker.send(t0, true, &mut batch);
        tracker.receive(ack(acked), t0, &mut batch);
        tracker.finish(&mut batch);
        assert_eq!((batch.counts.unacked, batch.counts.unanswered), (1, 1));
    }

    #[test]
    fn warmup_messages_are_tracked_but_not_counted() {
        let t0 = Instant::now();
        let mut batch = Batch::default();
        let mut tracker = Tracker::new(PREFIX.to_owned());
        let warm = tracker.send(t0, false, &mut batch);
        tracker.send(t0, false, &mut batch);
        assert_eq!(tracker.receive(ack(warm), t0, &mut batch), Seen::Ack);
        assert_eq!(
            tracker.receive(error("unavailable"), t0, &mut batch),
            Seen::Error
        );
        tracker.finish(&mut batch);
        assert_eq!(batch.counts, Default::default());
        assert!(batch.errors.is_empty());
    }

    #[test]
    fn frames_about_other_clients_messages_are_ignored() {
        let t0 = Instant::now();
        let mut batch = Batch::default();
        let mut tracker = Tracker::new(PREFIX.to_owned());
        tracker.send(t0, true, &mut batch);
        let foreign = ServerFrame::Ack {
            client_msg_id: "lg-run-1-0".into(),
        };
        assert_eq!(tracker.receive(foreign, t0, &mut batch), Seen::Nothing);
        assert_eq!(tracker.receive(replied(99), t0, &mut batch), Seen::Nothing);
        assert_eq!(tracker.unacked(), 1);
    }

    #[test]
    fn only_the_first_reply_of_a_turn_counts() {
        let t0 = Instant::now();
        let mut batch = Batch::default();
        let mut tracker = Tracker::new(PREFIX.to_owned());
        let n = tracker.send(t0, true, &mut batch);
        tracker.receive(ack(n), t0, &mut batch);
        tracker.receive(received(n, 7), t0, &mut batch);
        assert_eq!(
            tracker.receive(replied(7), t0 + ms(1), &mut batch),
            Seen::Reply
        );
        assert_eq!(
            tracker.receive(replied(7), t0 + ms(2), &mut batch),
            Seen::Nothing
        );
        assert_eq!(batch.counts.replied, 1);
    }
}
