//! Tracing set-up shared by the binaries: key/value logs to stderr, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides the default of `info`.
pub fn init() {
    init_with_default("info");
}

/// [`init`] with another default filter than `info` (e.g. `warn` for a one-off command,
/// whose output is its own lines, not the libraries' connection notices).
pub fn init_with_default(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A second call (tests running several services in one process) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
