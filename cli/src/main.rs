use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::telemetry::init();
    cli::run(cli::Cli::parse()).await
}
