use clap::Parser;

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
