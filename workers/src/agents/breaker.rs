//! A circuit breaker in front of a model server: after `failures` retryable failures in a
//! row it opens, and for `cool_down` no request is made (the engine answers
//! [`EngineError::Unavailable`](super::EngineError::Unavailable) at once, and the turn hands
//! the customer to a person instead of leaving them waiting through redeliveries). Then it
//! is half open: one request goes through; its success closes the breaker, its failure
//! opens it again. The state is the gauge `smart_support_model_breaker_state`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The breaker's state, as the gauge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests go through (gauge 0).
    Closed,
    /// No request is made until the cool-down is over (gauge 1).
    Open,
    /// One trial request is in flight (gauge 2).
    HalfOpen,
}

impl BreakerState {
    fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// Retryable failures in a row.
    failures: u32,
    opened_at: Option<Instant>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    cool_down: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker that opens after `failures` failures in a row (0: never) and stays
    /// open for `cool_down`.
    pub fn new(failures: u32, cool_down: Duration) -> Breaker {
        Breaker {
            failures,
            cool_down,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: None,
            }),
        }
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// Whether a request may be made now (`now`: the clock, for tests). An open breaker
    /// whose cool-down is over lets one trial through and is half open meanwhile.
    pub fn admit(&self, now: Instant) -> bool {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => false,
            BreakerState::Open => {
                if inner
                    .opened_at
                    .is_some_and(|at| now.saturating_duration_since(at) >= self.cool_down)
                {
                    set(&mut inner, BreakerState::HalfOpen);
                    true
                } else {
                    false
                }
            }
        }
    }

    /// The server answered (any answer that is not the server's failure: a 4xx too).
    pub fn succeeded(&self) {
        let mut inner = self.lock();
        inner.failures = 0;
        inner.opened_at = None;
        set(&mut inner, BreakerState::Closed);
    }

    /// The server failed in a retryable way (down, timed out, 5xx, 429, garbage).
    pub fn failed(&self, now: Instant) {
        let mut inner = self.lock();
        inner.failures = inner.failures.saturating_add(1);
        let trip = inner.state == BreakerState::HalfOpen
            || (self.failures > 0 && inner.failures >= self.failures);
        if trip {
            inner.opened_at = Some(now);
            set(&mut inner, BreakerState::Open);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn set(inner: &mut Inner, state: BreakerState) {
    inner.state = state;
    crate::metrics::METRICS.model_breaker.set(state.gauge());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_opens_after_failures_in_a_row_and_a_success_in_between_resets_the_count() {
        let breaker = Breaker::new(3, Duration::from_secs(30));
        let now = Instant::now();
        breaker.failed(now);
        breaker.failed(now);
        breaker.succeeded();
        breaker.failed(now);
        breaker.failed(now);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.admit(now));
        breaker.failed(now);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.admit(now + Duration::from_secs(29)));
    }

    #[test]
    fn after_the_cool_down_one_trial_goes_through_and_decides() {
        let breaker = Breaker::new(1, Duration::from_secs(30));
        let now = Instant::now();
        breaker.failed(now);
        let later = now + Duration::from_secs(30);
        assert!(breaker.admit(later), "the trial");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(!breaker.admit(later), "only one trial at a time");
        breaker.failed(later);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.admit(later + Duration::from_secs(1)));
        assert!(breaker.admit(later + Duration::from_secs(30)));
        breaker.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.admit(later + Duration::from_secs(31)));
    }

    #[test]
    fn zero_failures_never_opens() {
        let breaker = Breaker::new(0, Duration::from_secs(30));
        for _ in 0..100 {
            breaker.failed(Instant::now());
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
