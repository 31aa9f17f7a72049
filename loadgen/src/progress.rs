//! The live line on stderr, once a second: `\r`-updated on a terminal, one line per
//! second otherwise. Its numbers include the warmup; the report's do not.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Prints a message on its own line, clearing a `\r`-updated progress line first.
pub fn note(message: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = if stderr.is_terminal() {
        writeln!(stderr, "\r\x1b[K{message}")
    } else {
        writeln!(stderr, "{message}")
    };
}

/// Counters every connection bumps as things happen.
#[derive(Debug, Default)]
pub struct Live {
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub replied: AtomicU64,
    pub errors: AtomicU64,
}

impl Live {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Snapshot {
            connected: get(&self.connected),
            failed: get(&self.failed),
            open: get(&self.open),
            sent: get(&self.sent),
            acked: get(&self.acked),
            replied: get(&self.replied),
            errors: get(&self.errors),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub connected: u64,
    pub failed: u64,
    pub open: u64,
    pub sent: u64,
    pub acked: u64,
    pub replied: u64,
    pub errors: u64,
}

/// What the run is doing, which decides what the line says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    Connecting {
        total: u64,
    },
    Sending {
        started: Instant,
        measure_from: Instant,
    },
    Draining {
        started: Instant,
    },
    Holding {
        started: Instant,
        hold: Duration,
    },
}

/// The progress line for `now`, given the counters a second (`since`) ago.
pub fn line(
    phase: Phase,
    now: Instant,
    current: Snapshot,
    previous: Snapshot,
    since: Duration,
) -> String {
    match phase {
        Phase::Connecting { total } => format!(
            "connecting: {} of {total} open, {} failed",
            current.connected, current.failed
        ),
        Phase::Holding { started, hold } => format!(
            "idle {:>5.0}s of {}s: {} of {} connections open",
            now.saturating_duration_since(started).as_secs_f64(),
            hold.as_secs(),
            current.open,
            current.connected
        ),
        Phase::Sending { started, .. } | Phase::Draining { started } => {
            let label = match phase {
                Phase::Sending { measure_from, .. } if now < measure_from => "warmup",
                Phase::Sending { .. } => "sending",
                _ => "draining",
            };
            let seconds = since.as_secs_f64();
            let rate = if seconds > 0.0 {
                current.acked.saturating_sub(previous.acked) as f64 / seconds
            } else {
                0.0
            };
            format!(
                "{label:<8} {:>6.1}s  sent {}  acked {}  replied {}  errors {}  {rate:.0} msg/s acked",
                now.saturating_duration_since(started).as_secs_f64(),
                current.sent,
                current.acked,
                current.replied,
                current.errors,
            )
        }
    }
}

/// The task that prints the line; [`Progress::finish`] stops it.
pub struct Progress {
    phase: watch::Sender<Phase>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(live: Arc<Live>, phase: Phase) -> Progress {
        let (sender, receiver) = watch::channel(phase);
        let task = tokio::spawn(print_every_second(live, receiver));
        Progress {
            phase: sender,
            task,
        }
    }

    pub fn set(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    /// Stops the line, leaving the last one printed in place.
    pub async fn finish(self) {
        drop(self.phase);
        let _ = self.task.await;
    }
}

async fn print_every_second(live: Arc<Live>, mut phase: watch::Receiver<Phase>) {
    let tty = std::io::stderr().is_terminal();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut previous = (Instant::now(), live.snapshot());
    let mut printed = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = phase.changed() => match changed {
                Ok(()) => continue,
                Err(_) => break,
            },
        }
        let now = Instant::now();
        let current = live.snapshot();
        let text = line(*phase.borrow(), now, current, previous.1, now - previous.0);
        previous = (now, current);
        let mut stderr = std::io::stderr().lock();
        let _ = if tty {
            write!(stderr, "\r{text}\x1b[K")
        } else {
            writeln!(stderr, "{text}")
        };
        let _ = stderr.flush();
        printed = true;
    }
    if tty && printed {
        let _ = writeln!(std::io::stderr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sending_line_shows_counts_and_the_acks_of_the_last_second() {
        let started = Instant::now();
        let previous = Snapshot {
            acked: 1_000,
            ..Snapshot::default()
        };
        let current = Snapshot {
            sent: 3_100,
            acked: 3_000,
            replied: 2_500,
            errors: 4,
            ..Snapshot::default()
        };
        let phase = Phase::Sending {
            started,
            measure_from: started,
        };
        let text = line(
            phase,
            started + Duration::from_secs(3),
            current,
            previous,
            Duration::from_secs(2),
        );
        assert_eq!(
            text,
            "sending     3.0s  sent 3100  acked 3000  replied 2500  errors 4  1000 msg/s acked"
        );
    }

    #[test]
    fn the_line_says_warmup_until_measuring_starts() {
        let started = Instant::now();
        let phase = Phase::Sending {
            started,
            measure_from: started + Duration::from_secs(5),
        };
        let text = line(
            phase,
            started + Duration::from_secs(1),
            Snapshot::default(),
            Snapshot::default(),
            Duration::from_secs(1),
        );
        assert!(text.starts_with("warmup"), "{text}");
    }

    #[test]
    fn connecting_and_idle_lines_count_connections() {
        let now = Instant::now();
        let current = Snapshot {
            connected: 9_000,
            failed: 3,
            open: 8_990,
            ..Snapshot::default()
        };
        let connecting = line(
            Phase::Connecting { total: 10_000 },
            now,
            current,
            current,
            Duration::from_secs(1),
        );
        assert_eq!(connecting, "connecting: 9000 of 10000 open, 3 failed");
        let holding = Phase::Holding {
            started: now,
            hold: Duration::from_secs(120),
        };
        let idle = line(
            holding,
            now + Duration::from_secs(12),
            current,
            current,
            Duration::from_secs(1),
        );
        assert_eq!(idle, "idle    12s of 120s: 8990 of 9000 connections open");
    }
}
