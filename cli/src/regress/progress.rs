//! A progress bar on stderr, redrawn in place at most every 200 ms, only when stderr is a
//! terminal (a script or a CI log gets nothing). Hand-written: a line of arithmetic; the
//! rebuild's [`Progress`](projections::projector::progress::Progress) prints lines instead,
//! for logs.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use projections::projector::progress::{rate, thousands};

const INTERVAL: Duration = Duration::from_millis(200);
const WIDTH: usize = 30;

/// Events read of the total, with the turns replayed so far.
pub struct Bar {
    started: Instant,
    last: Option<Instant>,
    shown: bool,
    on: bool,
}

impl Bar {
    /// A bar; drawn only on a terminal, and not when `quiet`.
    pub fn new(quiet: bool) -> Bar {
        Bar {
            started: Instant::now(),
            last: None,
            shown: false,
            on: !quiet && std::io::stderr().is_terminal(),
        }
    }

    /// Redraws the bar when the last drawing is old enough.
    pub fn update(&mut self, events: u64, total: u64, turns: u64) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < INTERVAL) {
            return;
        }
        self.last = Some(now);
        self.shown = true;
        let line = line(total, events, turns, now - self.started);
        let _ = write!(std::io::stderr().lock(), "\r{line}");
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            self.shown = false;
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `regress [#########---------------------]  30% 300,000 / 1,000,000 events, 41,000 turns (8,200/s)`
fn line(total: u64, events: u64, turns: u64, elapsed: Duration) -> String {
    let percent = (events.min(total) * 100).checked_div(total).unwrap_or(100);
    let filled = (percent as usize * WIDTH) / 100;
    format!(
        "regress [{}{}] {percent:>3}% {} / {} events, {} turns ({}/s)",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        thousands(events),
        thousands(total),
        thousands(turns),
        thousands(rate(turns, elapsed)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_events_read() {
        let drawn = line(1_000_000, 300_000, 41_000, Duration::from_secs(5));
        assert_eq!(
            drawn,
            "regress [#########---------------------]  30% 300,000 / 1,000,000 events, 41,000 turns (8,200/s)"
        );
        assert!(line(0, 0, 0, Duration::ZERO).contains("100%"));
    }
}
