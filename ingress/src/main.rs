use clap::Parser;

// glibc's malloc was a fifth of the ingress's CPU time under load (perf); mimalloc
// keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = common::telemetry::init();
    let cli = ingress::Cli::parse();
    let shutdown = common::shutdown::on_signal();
    common::metrics::serve(&cli.metrics, shutdown.clone()).await?;
    ingress::startup::build(cli.listen, &cli.nats, cli.ingress, shutdown)
        .await?
        .run_until_stopped()
        .await
}
