//! The projector's Prometheus metrics (served at `/metrics`).

use std::sync::LazyLock;

use prometheus_client::metrics::{counter::Counter, gauge::Gauge, histogram::Histogram};

/// Every projector metric.
pub struct ProjectionMetrics {
    /// Stream sequence of the last event applied (the checkpoint).
    pub checkpoint: Gauge,
    /// Events the consumer still had pending after the last batch: the projection's lag.
    pub lag_events: Gauge,
    /// Events applied (first time stored; redeliveries and replays not counted).
    pub events_applied: Counter,
    /// Events skipped because they do not decode (not JSON, a newer schema version, a wrong
    /// shape): logged, and the checkpoint moves past them.
    pub events_skipped: Counter,
    /// Time to apply one batch, commit included.
    pub batch_seconds: Histogram,
    /// 1 while this instance is the active projector (holds the projection's lock), 0
    /// while it is standby.
    pub projector_active: Gauge,
    /// 1 while the active projector has stopped because its checkpoint belongs to another
    /// stream (`stream_replaced`: run `smart-support rebuild`), 0 otherwise.
    pub stream_replaced: Gauge,
    /// Events delivered at a sequence the projection already holds another event at: the
    /// stream was rewritten under the read models (they no longer match it; rebuild).
    pub sequence_conflicts: Counter,
}

pub static METRICS: LazyLock<ProjectionMetrics> = LazyLock::new(|| {
    let metrics = ProjectionMetrics {
        checkpoint: Gauge::default(),
        lag_events: Gauge::default(),
        events_applied: Counter::default(),
        events_skipped: Counter::default(),
        batch_seconds: Histogram::new([
            0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
        projector_active: Gauge::default(),
        stream_replaced: Gauge::default(),
        sequence_conflicts: Counter::default(),
    };
    common::metrics::register(|r| {
        r.register(
            "projection_checkpoint",
            "Stream sequence of the last event the conversation projection applied",
            metrics.checkpoint.clone(),
        );
        r.register(
            "projection_lag_events",
            "Events still pending for the conversation projection after its last batch",
            metrics.lag_events.clone(),
        );
        r.register(
            "projection_events_applied",
            "Events applied by the conversation projection",
            metrics.events_applied.clone(),
        );
        r.register(
            "projection_events_skipped",
            "Events the conversation projection skipped because they do not decode",
            metrics.events_skipped.clone(),
        );
        r.register(
            "projection_batch_seconds",
            "Seconds to apply one batch, commit included",
            metrics.batch_seconds.clone(),
        );
        r.register(
            "projector_active",
            "1 while this instance is the active projector (holds the lock), 0 while standby",
            metrics.projector_active.clone(),
        );
        r.register(
            "projection_stream_replaced",
            "1 while the projector stopped because the read models belong to another stream (run smart-support rebuild)",
            metrics.stream_replaced.clone(),
        );
        r.register(
            "projection_sequence_conflicts",
            "Events delivered at a sequence where the projection already holds another event (the read models no longer match the stream: run smart-support rebuild)",
            metrics.sequence_conflicts.clone(),
        );
    });
    metrics
});
