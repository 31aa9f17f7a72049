use clap::Parser;

// The same allocator as the other binaries, so the demo runs what production runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// smart-support demo shop API: products and orders the demo's agents call as tools.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "SHOP_BIND", default_value = "127.0.0.1:8090")]
    bind: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::telemetry::init();
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "shop API listening");
    let shutdown = common::shutdown::on_signal();
    shop::serve(listener, async move { shutdown.cancelled().await }).await?;
    Ok(())
}
