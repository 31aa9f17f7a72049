//! The `projections` binary: the projector and the REST service it feeds, in one process
//! on one port, as compose runs them. It lives in the composition root because it joins
//! two crates (`projections` and `api`) that do not depend on each other that way round.

use clap::Parser;

// glibc's malloc was a fifth of the ingress's CPU time under load (perf); mimalloc
// keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = common::telemetry::init();
    let cli = cli::projections_bin::Cli::parse();
    let shutdown = common::shutdown::on_signal();
    cli::projections_bin::build(cli, shutdown)
        .await?
        .run_until_stopped()
        .await
}
