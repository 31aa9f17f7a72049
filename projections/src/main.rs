use clap::Parser;

// glibc's malloc was a fifth of the ingress's CPU time under load (perf); mimalloc
// keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// smart-support projections: fold chat events into Postgres and serve the REST API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    nats: common::config::NatsArgs,
    #[command(flatten)]
    database: common::config::DatabaseArgs,
    #[command(flatten)]
    projection: projections::ProjectionArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::telemetry::init();
    let cli = Cli::parse();
    projections::startup::run(cli.listen, cli.nats, cli.database, cli.projection).await
}
