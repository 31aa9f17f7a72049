use clap::Parser;

// glibc's malloc was a fifth of the ingress's CPU time under load (perf); mimalloc
// keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// smart-support workers: answer user messages with agent turns.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    nats: common::config::NatsArgs,
    #[command(flatten)]
    worker: workers::WorkerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::telemetry::init();
    let cli = Cli::parse();
    workers::startup::run(cli.nats, cli.worker).await
}
