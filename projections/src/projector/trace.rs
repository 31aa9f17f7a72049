//! The projector's part of a message's trace (`common::trace`): while spans are exported,
//! each event of a batch that carries a `traceparent` gets a `project` span in that trace,
//! from when it is pulled until its batch is committed and acknowledged. Without export
//! nothing is done per event: the projector is the hot path (thousands of events a
//! second), and its log lines are about batches, not messages.

use async_nats::jetstream::Message;
use common::subjects;
use common::trace::TraceParent;
use tracing::Span;
use tracing::field::Empty;

/// The spans of a batch's events; they end when it is dropped.
#[derive(Default)]
pub struct EventSpans {
    _spans: Vec<Span>,
}

impl EventSpans {
    pub fn of(messages: &[Message]) -> EventSpans {
        if !common::trace::exporting() {
            return EventSpans::default();
        }
        EventSpans {
            _spans: messages.iter().filter_map(event_span).collect(),
        }
    }
}

fn event_span(message: &Message) -> Option<Span> {
    let parent = TraceParent::from_headers(message.headers.as_ref())?;
    let span = tracing::info_span!(
        parent: None,
        "project",
        thread_id = subjects::thread_of(&message.subject).unwrap_or_default(),
        seq = message.info().ok()?.stream_sequence,
        trace_id = Empty,
    );
    common::trace::start(&span, Some(parent));
    Some(span)
}
