//! A progress line for long replays: events done of the total, the rate and the time
//! left, to stderr, at most every 500 ms. Hand-rolled: one line of arithmetic is not worth
//! a dependency.

use std::io::Write;
use std::time::{Duration, Instant};

/// Least time between two progress lines.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Counts the events of a replay and prints where it stands.
#[derive(Debug)]
pub struct Progress {
    what: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Option<Instant>,
    quiet: bool,
}

impl Progress {
    /// Starts counting towards `total` events; `quiet` prints nothing (tests, scripts).
    pub fn new(what: &'static str, total: u64, quiet: bool) -> Progress {
        Progress {
            what,
            total,
            done: 0,
            started: Instant::now(),
            last_line: None,
            quiet,
        }
    }

    /// Adds `events` to the count; prints a line when the last one is 500 ms old.
    pub fn advance(&mut self, events: u64) {
        self.done += events;
        let now = Instant::now();
        if self
            .last_line
            .is_some_and(|last| now.duration_since(last) < INTERVAL)
        {
            return;
        }
        self.last_line = Some(now);
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", self.line(now.duration_since(self.started)));
        }
    }

    /// Events counted so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The line for `elapsed` time: `rebuild: 120,000 / 1,000,000 events (12%), 85,000 events/s, ETA 10s`.
    pub fn line(&self, elapsed: Duration) -> String {
        let rate = rate(self.done, elapsed);
        let percent = (self.done * 100).checked_div(self.total).unwrap_or(100);
        let eta = match rate {
            0 => "?".to_owned(),
            rate => format_duration(Duration::from_secs(
                self.total.saturating_sub(self.done).div_ceil(rate),
            )),
        };
        format!(
            "{}: {} / {} events ({percent}%), {} events/s, ETA {eta}",
            self.what,
            thousands(self.done),
            thousands(self.total),
            thousands(rate),
        )
    }
}

/// Events per second (0 before any time has passed).
pub fn rate(events: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0
    } else {
        (events as f64 / secs) as u64
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `75s` → `1m15s`; `3700s` → `1h01m`.
fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_numbers_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_line_shows_done_total_rate_and_time_left() {
        let mut progress = Progress::new("rebuild", 1_000_000, true);
        progress.advance(100_000);
        assert_eq!(
            progress.line(Duration::from_secs(2)),
            "rebuild: 100,000 / 1,000,000 events (10%), 50,000 events/s, ETA 18s"
        );
    }

    #[test]
    fn an_empty_replay_is_complete_and_has_no_rate() {
        let progress = Progress::new("rebuild", 0, true);
        assert_eq!(
            progress.line(Duration::ZERO),
            "rebuild: 0 / 0 events (100%), 0 events/s, ETA ?"
        );
    }

    #[test]
    fn long_waits_read_in_minutes_and_hours() {
        assert_eq!(format_duration(Duration::from_secs(75)), "1m15s");
        assert_eq!(format_duration(Duration::from_secs(3700)), "1h01m");
    }
}
