//! Tracing set-up shared by the binaries: key/value logs to stderr, filtered by `RUST_LOG`;
//! and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the stage spans of [`crate::trace`]
//! exported over OTLP/HTTP (protobuf) to that collector.
//!
//! Three layers on one registry, each with its own filter:
//! - the log lines (`RUST_LOG`, default `info`); a line inside a stage span shows the span's
//!   fields, its `trace_id` among them;
//! - a layer that only keeps the stage spans alive whatever `RUST_LOG` says, so the
//!   `traceparent` headers of [`crate::trace`] do not depend on the log level;
//! - with an endpoint, the OpenTelemetry layer, which sees the stage spans only (no library
//!   spans, no log events), so an exported trace is a handful of spans per message.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::filter::{FilterFn, LevelFilter};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::trace;

/// The environment variables read here (beside the services' clap arguments).
pub const VARIABLES: [&str; 3] = ["RUST_LOG", OTLP_ENDPOINT, SERVICE_NAME];

/// Base URL of an OTLP/HTTP collector (e.g. `http://127.0.0.1:4318`); spans go to
/// `<it>/v1/traces`. Unset or empty: nothing is exported.
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The `service.name` of the exported spans; default: the executable's file name.
pub const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";

/// Keeps the exporter alive; dropping it sends the spans still waiting (at most 5 s).
#[must_use = "dropping it stops the export of spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans ended so far now rather than at the next export (every 5 s).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(err) = provider.force_flush()
        {
            tracing::warn!(error = %err, "spans not exported");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("spans not exported at exit: {err}");
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the default of `info`.
pub fn init() -> Telemetry {
    init_with_default("info")
}

/// [`init`] with another default filter than `info` (e.g. `warn` for a one-off command,
/// whose output is its own lines, not the libraries' connection notices).
pub fn init_with_default(default: &str) -> Telemetry {
    let endpoint = std::env::var(OTLP_ENDPOINT).ok();
    init_with(default, endpoint.as_deref())
}

/// [`init_with_default`] with the OTLP endpoint given rather than read (tests).
pub fn init_with(default: &str, otlp_endpoint: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let keep = KeepStageSpans.with_filter(stage_spans());
    let (exported, provider) = match otlp_endpoint.filter(|e| !e.trim().is_empty()) {
        Some(endpoint) => match provider(endpoint) {
            Ok(provider) => {
                let tracer = provider.tracer("smart-support");
                let layer = tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_tracked_inactivity(false)
                    .with_filter(stage_spans());
                (Some(layer), Some(provider))
            }
            Err(err) => {
                eprintln!("{OTLP_ENDPOINT}: {err}; spans are not exported");
                (None, None)
            }
        },
        None => (None, None),
    };
    // A second call (tests running several services in one process) is harmless.
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(keep)
        .with(exported)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        trace::set_exporting(true);
        tracing::info!(endpoint = otlp_endpoint, "exporting spans over OTLP");
    }
    Telemetry {
        provider: provider.filter(|_| installed),
    }
}

fn provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    // Where reqwest has rustls (features unified with `tools`), it has no crypto provider
    // of its own; installing one again is refused, harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(format!(
            "{}/v1/traces",
            endpoint.trim().trim_end_matches('/')
        ))
        .build()?;
    let service = std::env::var(SERVICE_NAME)
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.file_stem()?.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "smart-support".into());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}

/// A stage span of [`crate::trace`]: a span that declares the `trace_id` field.
fn is_stage_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.fields().field(trace::TRACE_ID_FIELD).is_some()
}

/// The filter of the layers that see only the stage spans. Its level hint (the stage spans'
/// `info`) keeps the subscriber's most verbose level that of `RUST_LOG` or `info`: without
/// it the subscriber could not rule out any level, and every `debug!`/`trace!` of the
/// libraries (and every `log` record, through `tracing-log`) would be built and then
/// filtered out, message by message.
fn stage_spans() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    FilterFn::new(is_stage_span as fn(&Metadata<'_>) -> bool).with_max_level_hint(LevelFilter::INFO)
}

/// Does nothing; its filter lets the stage spans exist when no other layer wants them.
struct KeepStageSpans;

impl<S: Subscriber> Layer<S> for KeepStageSpans {}

/// The subscriber of [`init`] without export or log lines, for a test that needs stage spans.
#[cfg(test)]
pub(crate) fn subscriber_for_tests() -> impl Subscriber + Send + Sync {
    tracing_subscriber::registry().with(KeepStageSpans.with_filter(stage_spans()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeping_the_stage_spans_lets_no_debug_or_trace_line_be_built() {
        // The layers of `init` with `RUST_LOG=warn`: the most verbose level the subscriber
        // admits is the stage spans' `info`, not every level.
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_filter(EnvFilter::new("warn")))
            .with(KeepStageSpans.with_filter(stage_spans()));
        assert_eq!(subscriber.max_level_hint(), Some(LevelFilter::INFO));
    }
}
