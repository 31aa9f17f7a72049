//! The worker's part of a message's trace (`common::trace`): each delivery of a user message
//! is handled (its step, then its ack, nak or dead letter) inside a `turn` span that
//! continues the message's `traceparent`, and every event the turn publishes carries the
//! span's own `traceparent`.

use common::events::TurnId;
use common::subjects;
use common::trace::TraceParent;
use tracing::Span;
use tracing::field::{Empty, display};

use crate::consumer::Delivery;

/// The span of one delivery, in the trace of the message delivered. A root span: the lane
/// that runs it is not part of the message's trace.
pub fn turn_span(delivery: &Delivery<'_>) -> Span {
    let span = tracing::info_span!(
        parent: None,
        "turn",
        thread_id = subjects::thread_of(delivery.subject).unwrap_or_default(),
        seq = delivery.seq,
        delivered = delivery.delivered,
        turn_id = Empty,
        trace_id = Empty,
    );
    common::trace::start(&span, TraceParent::from_headers(delivery.headers));
    span
}

/// Records the turn id on the current `turn` span, once the message is decoded.
pub fn record_turn(turn_id: &TurnId) {
    Span::current().record("turn_id", display(turn_id));
}
