use clap::Parser;

// glibc's malloc was a fifth of the ingress's CPU time under load (perf); mimalloc
// keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = common::telemetry::init();
    let cli = workers::Cli::parse();
    let shutdown = common::shutdown::on_signal();
    workers::startup::build(&cli.nats, &cli.worker, shutdown)
        .await?
        .run_until_stopped()
        .await
}
