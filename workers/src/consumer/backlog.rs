//! The backlog gauge: how far the workers are behind.

use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use common::shutdown::CancellationToken;

use crate::metrics;

/// How often a worker reads the `workers` consumer's backlog.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// Keeps `worker_backlog_messages` at the user messages stored and not yet delivered to any
/// worker. Every worker instance reads the same shared consumer, so they all show the same
/// figure; a backlog that keeps growing means the workers answer slower than messages
/// arrive (docs/operations.md).
pub(super) async fn watch_backlog(stream: Stream, shutdown: CancellationToken) {
    loop {
        match common::jetstream::workers_backlog(&stream).await {
            Ok(pending) => {
                let pending = i64::try_from(pending).unwrap_or(i64::MAX);
                metrics::METRICS.backlog.set(pending);
            }
            Err(err) => tracing::debug!(%err, "backlog gauge not updated"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(BACKLOG_EVERY) => {}
        }
    }
}
