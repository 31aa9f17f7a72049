use clap::Parser;

// glibc's malloc was a fifth of the ingress's CPU time under load (perf); mimalloc
// keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = cli::Cli::parse();
    // The services `up` runs log at `info`; a one-off command prints its own result, and
    // logs only warnings and errors unless RUST_LOG says otherwise.
    let _telemetry = common::telemetry::init_with_default(match cli.command {
        cli::Command::Up(_) => "info",
        _ => "warn",
    });
    cli::run(cli).await
}
