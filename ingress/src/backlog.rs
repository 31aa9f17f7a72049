//! Load shedding: while the workers are more than `--max-backlog` user messages behind
//! (stored, not yet delivered to any worker), a new message is refused with `unavailable`
//! and a retry hint instead of being queued behind them to be answered many seconds late.
//! Nothing already acknowledged is affected; the client resends with the same
//! `client_msg_id`.
//!
//! The figure is the `workers` consumer's pending count, read every [`BACKLOG_EVERY`]. It
//! is the same for every ingress instance. Until a worker has created the consumer, or when
//! it cannot be read, nothing is refused for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use common::shutdown::CancellationToken;

/// How often the backlog is read.
pub const BACKLOG_EVERY: Duration = Duration::from_secs(1);

/// The workers' backlog as last read, against the limit.
#[derive(Debug)]
pub struct Backlog {
    limit: u64,
    pending: AtomicU64,
}

impl Backlog {
    /// Starts reading the backlog every [`BACKLOG_EVERY`] until `shutdown`; with `limit` 0
    /// nothing is read and nothing is ever refused.
    pub fn start(stream: Arc<Stream>, limit: u64, shutdown: CancellationToken) -> Arc<Backlog> {
        let backlog = Arc::new(Backlog {
            limit,
            pending: AtomicU64::new(0),
        });
        if limit > 0 {
            tokio::spawn(watch(stream, backlog.clone(), shutdown));
        }
        backlog
    }

    /// The workers' backlog when it is over the limit.
    pub fn over_limit(&self) -> Option<u64> {
        let pending = self.pending.load(Ordering::Relaxed);
        (self.limit > 0 && pending > self.limit).then_some(pending)
    }
}

async fn watch(stream: Arc<Stream>, backlog: Arc<Backlog>, shutdown: CancellationToken) {
    loop {
        let pending = common::jetstream::workers_backlog(&stream)
            .await
            .unwrap_or_else(|err| {
                tracing::debug!(%err, "no backlog to go by");
                0
            });
        backlog.pending.store(pending, Ordering::Relaxed);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(BACKLOG_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(limit: u64, pending: u64) -> Backlog {
        Backlog {
            limit,
            pending: AtomicU64::new(pending),
        }
    }

    #[test]
    fn only_a_backlog_over_a_set_limit_refuses() {
        assert_eq!(backlog(0, 1_000_000).over_limit(), None, "0 is off");
        assert_eq!(backlog(100, 100).over_limit(), None, "at the limit is fine");
        assert_eq!(backlog(100, 101).over_limit(), Some(101));
    }
}
