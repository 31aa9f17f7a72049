//! The workers' Prometheus metrics (served at `/metrics`: by the worker's own small HTTP
//! listener, or by `smart-support up` beside the other services).

use std::sync::LazyLock;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};

/// What became of a delivered user message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `done`, `retry`, `dead_letter` or `parked`.
    pub outcome: &'static str,
}

/// A tool call's result.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ToolLabel {
    pub tool: String,
    /// `succeeded` or the failure's category (`retryable`, `not_retryable`).
    pub result: &'static str,
}

/// Every worker metric.
pub struct WorkerMetrics {
    /// Delivered user messages by what became of them.
    pub messages: Family<OutcomeLabel, Counter>,
    /// Messages waiting for their thread's previous turn to end.
    pub parked: Gauge,
    /// User messages stored and not yet delivered to any worker (the `workers` consumer's
    /// pending count, read every few seconds).
    pub backlog: Gauge,
    /// Time from taking a message to settling it (turns that ran).
    pub turn_seconds: Histogram,
    /// Tool calls (after their retries) by tool and result.
    pub tool_calls: Family<ToolLabel, Counter>,
    /// The model server's circuit breaker: 0 closed, 1 open, 2 half open.
    pub model_breaker: Gauge,
}

pub static METRICS: LazyLock<WorkerMetrics> = LazyLock::new(|| {
    let metrics = WorkerMetrics {
        messages: Family::default(),
        parked: Gauge::default(),
        backlog: Gauge::default(),
        turn_seconds: Histogram::new([
            0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]),
        tool_calls: Family::default(),
        model_breaker: Gauge::default(),
    };
    common::metrics::register(|r| {
        r.register(
            "worker_messages",
            "User messages a worker settled, by outcome (done, retry, dead_letter, parked)",
            metrics.messages.clone(),
        );
        r.register(
            "worker_parked_messages",
            "Messages waiting for the previous turn of their thread to end",
            metrics.parked.clone(),
        );
        r.register(
            "worker_backlog_messages",
            "User messages stored and not yet delivered to any worker (the same in every worker)",
            metrics.backlog.clone(),
        );
        r.register(
            "worker_turn_seconds",
            "Seconds from taking a user message to settling it",
            metrics.turn_seconds.clone(),
        );
        r.register(
            "worker_tool_calls",
            "Tool calls by tool and result (succeeded, retryable, not_retryable)",
            metrics.tool_calls.clone(),
        );
        r.register(
            "model_breaker_state",
            "The model server's circuit breaker: 0 closed, 1 open (no request made), 2 half open (one trial)",
            metrics.model_breaker.clone(),
        );
    });
    metrics
});

/// Counts a settled message.
pub fn settled(outcome: &'static str) {
    METRICS
        .messages
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
}
