use clap::Parser;

// The same allocator as the other binaries, so the demo runs what production runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = common::telemetry::init();
    let cli = shop::Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "shop API listening");
    let shutdown = common::shutdown::on_signal();
    shop::serve(listener, async move { shutdown.cancelled().await }).await?;
    Ok(())
}
