//! The ingress's Prometheus metrics (served at `/metrics`).

use std::sync::LazyLock;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};

use crate::ws::wire::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: &'static str,
}

/// Every ingress metric.
pub struct IngressMetrics {
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// Connections accepted since start.
    pub connections_opened: Counter,
    /// User messages stored in JetStream (acked to the client).
    pub messages: Counter,
    /// Error frames sent, by code.
    pub errors: Family<CodeLabel, Counter>,
    /// Time to store a message: rate decision, publish and PubAck.
    pub publish_seconds: Histogram,
    /// Connections closed because the client read too slowly.
    pub slow_clients: Counter,
    /// From an event being stored to the live tail handing it to its connections.
    pub live_delay_seconds: Histogram,
}

pub static METRICS: LazyLock<IngressMetrics> = LazyLock::new(|| {
    let metrics = IngressMetrics {
        connections: Gauge::default(),
        connections_opened: Counter::default(),
        messages: Counter::default(),
        errors: Family::default(),
        publish_seconds: Histogram::new([
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
        ]),
        slow_clients: Counter::default(),
        live_delay_seconds: Histogram::new([
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
        ]),
    };
    common::metrics::register(|r| {
        r.register(
            "ws_connections",
            "Open WebSocket connections",
            metrics.connections.clone(),
        );
        r.register(
            "ws_connections_opened",
            "WebSocket connections accepted",
            metrics.connections_opened.clone(),
        );
        r.register(
            "ws_messages",
            "User messages stored in JetStream",
            metrics.messages.clone(),
        );
        r.register(
            "ws_errors",
            "Error frames sent, by code",
            metrics.errors.clone(),
        );
        r.register(
            "ws_publish_seconds",
            "Seconds to store a user message: rate decision, publish, PubAck",
            metrics.publish_seconds.clone(),
        );
        r.register(
            "ws_slow_clients",
            "Connections closed because the client read too slowly",
            metrics.slow_clients.clone(),
        );
        r.register(
            "ws_live_delay_seconds",
            "Seconds from an event being stored to the live tail handing it to its connections",
            metrics.live_delay_seconds.clone(),
        );
    });
    metrics
});

impl IngressMetrics {
    pub fn error(&self, code: ErrorCode) {
        self.errors
            .get_or_create(&CodeLabel {
                code: code.as_str(),
            })
            .inc();
    }
}
