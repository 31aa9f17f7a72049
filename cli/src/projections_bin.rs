//! The `projections` binary's command line and start-up: the projector
//! ([`projections::startup::service`]) and the REST API ([`api::startup::service`], with
//! `regress` when it knows the agents config) merged on one listener.

use common::config::NatsUser;
use common::shutdown::CancellationToken;
use common::startup::App;

/// smart-support projections: fold chat events into Postgres and serve the REST API.
///
/// The binary's command line; in the library so that tests can check what the compose file
/// runs against it (`cli/tests/honesty/compose.rs`).
#[derive(Debug, clap::Parser)]
#[command(name = "projections", version, about)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8081")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub nats: common::config::NatsArgs,
    /// The projector connects as NATS user `projector` with `PROJECTOR_NATS_PASSWORD`, the API
    /// as `api` with `API_NATS_PASSWORD` (each unset: as `NATS_USER`).
    #[command(flatten)]
    pub nats_users: common::config::ServicePasswords,
    #[command(flatten)]
    pub database: common::config::DatabaseArgs,
    #[command(flatten)]
    pub projection: projections::ProjectionArgs,
    #[command(flatten)]
    pub api: api::ApiArgs,
    #[command(flatten)]
    pub metrics: common::config::MetricsArgs,
}

/// Migrates, starts the projector, and serves `/api` on `LISTEN_ADDR` (and `/metrics` on
/// `METRICS_ADDR`) until `shutdown` is cancelled.
pub async fn build(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<App> {
    let imports = cli.api.import_settings()?;
    common::metrics::serve(&cli.metrics, shutdown.clone()).await?;
    let projector_nats = cli.nats.for_service(NatsUser::Projector, &cli.nats_users);
    let projector = projections::startup::service(
        &projector_nats,
        &cli.database,
        &cli.projection,
        shutdown.clone(),
    )
    .await?;
    // The API (and the regress runs it starts) as the NATS user `api`.
    let api_nats = cli.nats.for_service(NatsUser::Api, &cli.nats_users);
    let api = api::startup::service(
        &api_nats,
        &cli.database,
        &cli.api,
        imports,
        regress_runner(&cli, &api_nats)?,
        shutdown.clone(),
    )
    .await?;
    let app = projector
        .merge(api)
        .bind(Some(cli.listen), shutdown)
        .await?;
    tracing::info!(addr = ?app.addr(), "projections listening");
    Ok(app)
}

/// `POST /api/regress` needs the agents config in use, which this binary knows only as
/// `IMPORT_AGENTS_CONFIG` (usually the workers' `AGENTS_CONFIG`): with it, runs read configs
/// as files beside it, with the engine and tool settings of the environment (`AGENT_ENGINE`,
/// `OPENAI_*`, `TOOLS_*`, as the workers read them); without it, 503 `regress_unavailable`.
fn regress_runner(
    cli: &Cli,
    nats: &common::config::NatsArgs,
) -> anyhow::Result<Option<std::sync::Arc<dyn api::regress::RegressRunner>>> {
    let Some(config) = &cli.api.import_agents_config else {
        return Ok(None);
    };
    let worker = workers::WorkerArgs::from_flags([
        std::ffi::OsString::from("--agents-config"),
        config.clone().into_os_string(),
    ])?;
    Ok(Some(crate::regress::rest::Runner::shared(&worker, nats)))
}
