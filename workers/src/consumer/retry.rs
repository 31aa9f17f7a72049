//! The retry policy: how redeliveries back off, and when the worker gives up.

use std::time::Duration;

use common::events::ErrorCategory;
use uuid::Uuid;

use super::{Outcome, Worker};

/// How redeliveries back off and when the worker gives up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay before the second delivery; doubles each time.
    pub first_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Deliveries before a message whose turn keeps failing is dead-lettered.
    pub max_deliveries: u32,
    /// The consumer's ack wait: a parked message sends progress well within it.
    pub ack_wait: Duration,
    /// Longest a message waits for the previous turn of its thread; then it runs anyway
    /// (the previous message may have been removed from the stream by hand).
    pub order_wait: Duration,
}

impl RetryPolicy {
    /// Delay before the next delivery after `delivered` failed ones: exponential with
    /// up to 20 % jitter (so messages that failed together do not come back together),
    /// capped at `max_delay`.
    pub fn delay(&self, delivered: u32) -> Duration {
        let exponent = delivered.clamp(1, 20) - 1;
        let base = self
            .first_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max_delay);
        let jitter = base.mul_f64(fastrand_fraction() * 0.2);
        (base + jitter).min(self.max_delay)
    }
}

/// A number in [0, 1) that differs between calls; enough for jitter.
fn fastrand_fraction() -> f64 {
    (Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

/// A retry, or a dead letter once the deliveries are used up.
pub(super) fn worker_retry(worker: &Worker, delivered: u32, error: String) -> Outcome {
    if delivered >= worker.policy.max_deliveries {
        Outcome::DeadLetter {
            category: ErrorCategory::Retryable,
            error: format!("gave up after {delivered} deliveries: {error}"),
        }
    } else {
        Outcome::Retry {
            after: worker.policy.delay(delivered),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_backs_off_exponentially_with_jitter_up_to_the_cap() {
        let policy = RetryPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_deliveries: 5,
            ack_wait: Duration::from_secs(30),
            order_wait: Duration::from_secs(600),
        };
        for (delivered, base) in [(1, 1), (2, 2), (3, 4), (4, 8), (7, 60), (9, 60)] {
            let delay = policy.delay(delivered);
            let base = Duration::from_secs(base);
            assert!(
                delay >= base && delay <= (base.mul_f64(1.2)).min(Duration::from_secs(60)),
                "{delivered}: {delay:?}"
            );
        }
    }
}
