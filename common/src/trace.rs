//! One trace per message: a W3C `traceparent` header on every event a message causes, so one
//! trace id follows it from the WebSocket frame to its PostgreSQL rows
//! (docs/ARCHITECTURE.md#one-trace-per-message).
//!
//! Each stage opens one *stage span* for its work on a message (the ingress's `message`, the
//! worker's `turn`, the projector's `project`), declared with a `trace_id` field, and hands
//! it to [`start`] with the `traceparent` of the message it handles (none at the ingress,
//! where the trace begins). [`start`] records the trace id on the span, so the log lines
//! inside it show it, and keeps the span's place in the trace on the span itself, so
//! [`with_traceparent`] can put it on a publish made anywhere inside the span.
//!
//! The ids are the same whether spans are exported or not: without export a stage continues
//! the incoming trace id with a fresh span id (a random number, no other work); with export
//! ([`crate::telemetry`], `OTEL_EXPORTER_OTLP_ENDPOINT`) the span is an OpenTelemetry span
//! whose parent is the incoming `traceparent`, and its own ids go out.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan;

/// The W3C trace context header (lower case, as the recommendation writes it).
pub const TRACEPARENT: &str = "traceparent";

/// The field a stage span declares (`trace_id = tracing::field::Empty`) for [`start`] to
/// record; it is also how [`crate::telemetry`] recognises a stage span.
pub const TRACE_ID_FIELD: &str = "trace_id";

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (OTLP set up by [`crate::telemetry`]). Work done only for the
/// exported trace (the projector's span per event) is skipped when not.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

pub(crate) fn set_exporting(on: bool) {
    EXPORTING.store(on, Ordering::Relaxed);
}

/// A span's place in a trace, as a `traceparent` header carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    /// The id of the span that did the work (the parent of whatever continues it).
    pub span_id: SpanId,
    pub sampled: bool,
}

impl TraceParent {
    /// Parses a version-00 `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`); `None` for
    /// anything else, or all-zero ids, which the recommendation says to ignore.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !(lower_hex(trace) && lower_hex(span) && lower_hex(flags)) {
            return None;
        }
        let trace_id = TraceId::from_hex(trace).ok()?;
        let span_id = SpanId::from_hex(span).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header of a stored message, if it has a valid one.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Option<TraceParent> {
        TraceParent::parse(headers?.get(TRACEPARENT)?.as_str())
    }

    /// A new trace: random ids, sampled (the trace begins here, so later stages record it).
    fn root() -> TraceParent {
        let ids = RandomIdGenerator::default();
        TraceParent {
            trace_id: ids.new_trace_id(),
            span_id: ids.new_span_id(),
            sampled: true,
        }
    }

    /// The next span of the same trace.
    fn child(self) -> TraceParent {
        TraceParent {
            span_id: RandomIdGenerator::default().new_span_id(),
            ..self
        }
    }

    fn of_span_context(context: &SpanContext) -> Option<TraceParent> {
        context.is_valid().then(|| TraceParent {
            trace_id: context.trace_id(),
            span_id: context.span_id(),
            sampled: context.is_sampled(),
        })
    }

    fn span_context(self) -> SpanContext {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            self.trace_id,
            self.span_id,
            flags,
            true,
            TraceState::default(),
        )
    }
}

impl fmt::Display for TraceParent {
    /// The header value: `00-<trace id>-<span id>-<flags>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

/// Puts a stage span into its trace: the trace of `parent` (the `traceparent` of the message
/// it handles), or a new one. Records the trace id in the span's `trace_id` field and keeps
/// the span's own place in the trace for [`with_traceparent`]. Call it before the span is
/// first entered. A span no subscriber records (none installed, as in most tests) is left
/// alone, and publishes inside it carry no `traceparent`.
pub fn start(span: &Span, parent: Option<TraceParent>) {
    if span.is_disabled() {
        return;
    }
    let mut own = None;
    if exporting() {
        if let Some(parent) = parent {
            let remote =
                opentelemetry::Context::new().with_remote_span_context(parent.span_context());
            let _ = span.set_parent(remote);
        }
        own = TraceParent::of_span_context(span.context().span().span_context());
    }
    let own = own.unwrap_or_else(|| parent.map_or_else(TraceParent::root, TraceParent::child));
    span.record(TRACE_ID_FIELD, tracing::field::display(own.trace_id));
    span.with_subscriber(|(id, dispatch)| {
        if let Some(data) = dispatch
            .downcast_ref::<Registry>()
            .and_then(|registry| registry.span(id))
        {
            let mut extensions = data.extensions_mut();
            extensions.insert(own);
            // Written once per span, not once per publish (a turn publishes several events).
            extensions.insert(Header(own.to_string()));
        }
    });
}

/// A stage span's `traceparent` header value, as [`start`] wrote it.
#[derive(Clone)]
struct Header(String);

/// The place in the trace of the innermost stage span around the current one.
pub fn current() -> Option<TraceParent> {
    innermost::<TraceParent>()
}

/// The `traceparent` header value for a publish made in the current span.
pub fn traceparent_of_current_span() -> Option<String> {
    innermost::<Header>().map(|header| header.0)
}

/// What [`start`] kept on the innermost stage span around the current one.
fn innermost<T: Clone + Send + Sync + 'static>() -> Option<T> {
    Span::current()
        .with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let span = registry.span(id)?;
            span.scope()
                .find_map(|span| span.extensions().get::<T>().cloned())
        })
        .flatten()
}

/// `message` with the current span's `traceparent` header (unchanged outside a traced span).
pub fn with_traceparent(message: PublishMessage) -> PublishMessage {
    match traceparent_of_current_span() {
        Some(value) => message.header(TRACEPARENT, value.as_str()),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_round_trips() {
        let parsed = TraceParent::parse(EXAMPLE).unwrap();
        assert_eq!(
            parsed.trace_id,
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert!(parsed.sampled);
        assert_eq!(parsed.to_string(), EXAMPLE);
    }

    #[test]
    fn malformed_or_all_zero_traceparents_are_ignored() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_continued_trace_keeps_its_id_and_gets_a_new_span_id() {
        let parent = TraceParent::parse(EXAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
    }

    #[test]
    fn a_stage_span_gives_its_publishes_its_trace() {
        let subscriber = crate::telemetry::subscriber_for_tests();
        tracing::subscriber::with_default(subscriber, || {
            let parent = TraceParent::parse(EXAMPLE).unwrap();
            let span = tracing::info_span!("turn", trace_id = tracing::field::Empty);
            start(&span, Some(parent));
            assert_eq!(current(), None, "not entered yet");
            let inside = span.in_scope(|| {
                let _nested = tracing::info_span!("nested").entered();
                current()
            });
            let inside = inside.expect("the stage span's trace");
            assert_eq!(inside.trace_id, parent.trace_id);
            assert_ne!(inside.span_id, parent.span_id);
        });
    }
}
