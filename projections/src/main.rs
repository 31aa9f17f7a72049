use clap::Parser;

// glibc's malloc was a fifth of the ingress's CPU time under load (perf); mimalloc
// keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::telemetry::init();
    let cli = projections::Cli::parse();
    projections::startup::run(cli.listen, cli.nats, cli.database, cli.projection).await
}
