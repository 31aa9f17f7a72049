//! What the run measured. Each connection collects counts and latencies in a small
//! [`Batch`] and adds it to one shared [`Summary`] every few hundred samples, so the lock is
//! taken rarely and thousands of connections do not each carry a histogram.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, from 1 µs to an hour, to 3 significant digits.
const HIGHEST_MICROS: u64 = 3_600_000_000;
/// Samples a connection keeps before adding them to the summary.
const BATCH_SAMPLES: usize = 256;

/// Messages by what became of them; only messages sent after the warmup count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Written to the socket.
    pub sent: u64,
    /// Acknowledged by the server (stored).
    pub acked: u64,
    /// Answered by an error frame instead of an ack.
    pub rejected: u64,
    /// Answered by the agent (`agent.replied` of the message's turn).
    pub replied: u64,
    /// Neither acked nor rejected by the end of the drain (or before the connection closed).
    pub unacked: u64,
    /// Acked but without an agent reply by the end of the drain.
    pub unanswered: u64,
    /// Event frames received, of the whole run (warmup included, and whoever's message
    /// they are about).
    pub events: u64,
    /// `agent.replied` event frames received, of the whole run: with `events`, the stored
    /// events per turn.
    pub replied_events: u64,
    /// `delta` frames (pieces of streamed replies) received, of the whole run.
    pub deltas: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.sent += other.sent;
        self.acked += other.acked;
        self.rejected += other.rejected;
        self.replied += other.replied;
        self.unacked += other.unacked;
        self.unanswered += other.unanswered;
        self.events += other.events;
        self.replied_events += other.replied_events;
        self.deltas += other.deltas;
    }
}

/// p50, p95, p99 and max of one latency, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Everything every connection observed, added up.
#[derive(Debug, Clone)]
pub struct Summary {
    pub counts: Counts,
    /// Error frames by code (including ones that answered no message of ours).
    pub errors: BTreeMap<String, u64>,
    /// When the last counted ack and reply arrived (for the rates).
    pub last_ack: Option<Instant>,
    pub last_reply: Option<Instant>,
    ack: Histogram<u64>,
    reply: Histogram<u64>,
    delta: Histogram<u64>,
}

impl Default for Summary {
    fn default() -> Summary {
        let histogram =
            || Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("the bounds are valid");
        Summary {
            counts: Counts::default(),
            errors: BTreeMap::new(),
            last_ack: None,
            last_reply: None,
            ack: histogram(),
            reply: histogram(),
            delta: histogram(),
        }
    }
}

impl Summary {
    /// Adds what one connection collected.
    pub fn add(&mut self, batch: &Batch) {
        self.counts.add(&batch.counts);
        for (code, count) in &batch.errors {
            *self.errors.entry(code.clone()).or_default() += count;
        }
        for &micros in &batch.ack_micros {
            self.ack.saturating_record(micros.max(1));
        }
        for &micros in &batch.reply_micros {
            self.reply.saturating_record(micros.max(1));
        }
        for &micros in &batch.delta_micros {
            self.delta.saturating_record(micros.max(1));
        }
        self.last_ack = self.last_ack.max(batch.last_ack);
        self.last_reply = self.last_reply.max(batch.last_reply);
    }

    /// Send → ack latency; `None` before the first ack.
    pub fn ack_latency(&self) -> Option<Percentiles> {
        percentiles(&self.ack)
    }

    /// Send → first agent reply latency; `None` before the first reply.
    pub fn reply_latency(&self) -> Option<Percentiles> {
        percentiles(&self.reply)
    }

    /// Model → customer latency of the delta frames that carried their send time; `None`
    /// when none did.
    pub fn delta_latency(&self) -> Option<Percentiles> {
        percentiles(&self.delta)
    }
}

fn percentiles(histogram: &Histogram<u64>) -> Option<Percentiles> {
    if histogram.is_empty() {
        return None;
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    Some(Percentiles {
        p50: ms(histogram.value_at_quantile(0.50)),
        p95: ms(histogram.value_at_quantile(0.95)),
        p99: ms(histogram.value_at_quantile(0.99)),
        max: ms(histogram.max()),
    })
}

/// What one connection observed since it last added to the summary.
#[derive(Debug, Default)]
pub struct Batch {
    pub counts: Counts,
    pub errors: BTreeMap<String, u64>,
    ack_micros: Vec<u64>,
    reply_micros: Vec<u64>,
    delta_micros: Vec<u64>,
    last_ack: Option<Instant>,
    last_reply: Option<Instant>,
}

impl Batch {
    pub fn ack(&mut self, latency: Duration, at: Instant) {
        self.counts.acked += 1;
        self.ack_micros.push(micros(latency));
        self.last_ack = Some(at);
    }

    pub fn reply(&mut self, latency: Duration, at: Instant) {
        self.counts.replied += 1;
        self.reply_micros.push(micros(latency));
        self.last_reply = Some(at);
    }

    /// A delta frame; `latency`: from the model's send time to now, when it carried one.
    pub fn delta(&mut self, latency: Option<Duration>) {
        self.counts.deltas += 1;
        if let Some(latency) = latency {
            self.delta_micros.push(micros(latency));
        }
    }

    pub fn error(&mut self, code: &str) {
        match self.errors.get_mut(code) {
            Some(count) => *count += 1,
            None => {
                self.errors.insert(code.to_owned(), 1);
            }
        }
    }

    fn is_full(&self) -> bool {
        self.ack_micros.len() + self.reply_micros.len() + self.delta_micros.len() >= BATCH_SAMPLES
    }

    fn clear(&mut self) {
        self.counts = Counts::default();
        self.errors.clear();
        self.ack_micros.clear();
        self.reply_micros.clear();
        self.delta_micros.clear();
        self.last_ack = None;
        self.last_reply = None;
    }
}

fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

/// One connection's way into the shared summary.
#[derive(Debug)]
pub struct Recorder {
    summary: Arc<Mutex<Summary>>,
    pub batch: Batch,
}

impl Recorder {
    pub fn new(summary: Arc<Mutex<Summary>>) -> Recorder {
        Recorder {
            summary,
            batch: Batch::default(),
        }
    }

    /// Adds the batch to the summary when it holds enough samples.
    pub fn maybe_flush(&mut self) {
        if self.batch.is_full() {
            self.flush();
        }
    }

    /// Adds the batch to the summary now.
    pub fn flush(&mut self) {
        let mut summary = self
            .summary
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        summary.add(&self.batch);
        drop(summary);
        self.batch.clear();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_of_one_to_a_hundred_milliseconds_are_where_expected() {
        let mut batch = Batch::default();
        let now = Instant::now();
        for n in 1..=100 {
            batch.ack(ms(n), now);
        }
        let mut summary = Summary::default();
        summary.add(&batch);
        let latency = summary.ack_latency().unwrap();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(close(latency.p50, 50.0), "{latency:?}");
        assert!(close(latency.p95, 95.0), "{latency:?}");
        assert!(close(latency.p99, 99.0), "{latency:?}");
        assert!(close(latency.max, 100.0), "{latency:?}");
        assert_eq!(summary.reply_latency(), None);
    }

    #[test]
    fn batches_from_several_connections_add_up() {
        let summary = Arc::new(Mutex::new(Summary::default()));
        let start = Instant::now();
        for connection in 0..3_u64 {
            let mut recorder = Recorder::new(summary.clone());
            recorder.batch.counts.sent += 10;
            recorder.batch.counts.unanswered += 1;
            for n in 0..4 {
                recorder.batch.ack(ms(1 + connection), start + ms(n));
            }
            recorder
                .batch
                .reply(ms(100 * (connection + 1)), start + ms(10 + connection));
            recorder.batch.error("rate_limited");
            if connection == 2 {
                recorder.batch.error("unavailable");
            }
        }
        let summary = summary.lock().unwrap();
        assert_eq!(summary.counts.sent, 30);
        assert_eq!(summary.counts.acked, 12);
        assert_eq!(summary.counts.replied, 3);
        assert_eq!(summary.counts.unanswered, 3);
        assert_eq!(summary.errors.get("rate_limited"), Some(&3));
        assert_eq!(summary.errors.get("unavailable"), Some(&1));
        assert_eq!(summary.last_ack, Some(start + ms(3)));
        assert_eq!(summary.last_reply, Some(start + ms(12)));
        let reply = summary.reply_latency().unwrap();
        assert!((reply.max - 300.0).abs() < 0.5, "{reply:?}");
    }

    #[test]
    fn a_full_batch_is_flushed_and_emptied() {
        let summary = Arc::new(Mutex::new(Summary::default()));
        let mut recorder = Recorder::new(summary.clone());
        let now = Instant::now();
        for _ in 0..BATCH_SAMPLES {
            recorder.batch.ack(ms(1), now);
            recorder.maybe_flush();
        }
        assert_eq!(summary.lock().unwrap().counts.acked, BATCH_SAMPLES as u64);
        assert_eq!(recorder.batch.counts.acked, 0);
    }

    #[test]
    fn latencies_beyond_an_hour_are_clamped_not_lost() {
        let mut batch = Batch::default();
        batch.reply(Duration::from_secs(5 * 3600), Instant::now());
        let mut summary = Summary::default();
        summary.add(&batch);
        let reply = summary.reply_latency().unwrap();
        assert!(reply.max >= 3_599_000.0, "{reply:?}");
    }
}
