//! Every service in one process: the ingress router, the REST router and the web pages
//! merged on one listener, with the worker loop and the projector as tasks beside it, and
//! `/metrics` on a listener of its own (`METRICS_ADDR`).

use axum::{Router, http::StatusCode, response::IntoResponse, routing::get};
use clap::Args;
use common::{
    config::{DatabaseArgs, NatsArgs, NatsUser, ServicePasswords},
    shutdown::CancellationToken,
    startup::App,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use tower_http::services::{ServeDir, ServeFile};

/// Settings of `smart-support up`: the union of the services' settings.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Address of the one origin: web pages, `/ws` and `/api`.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder of the built web app (`npm --prefix web run build` writes `web/dist`).
    #[arg(long, env = "WEB_DIR", default_value = "web/dist")]
    pub web_dir: PathBuf,
    /// `NATS_USER` is the admin user, which sets the streams up before the services start.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Each service connects as its own NATS user with its password (unset: as `NATS_USER`).
    #[command(flatten)]
    pub nats_users: ServicePasswords,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub ingress: ingress::IngressArgs,
    #[command(flatten)]
    pub worker: workers::WorkerArgs,
    #[command(flatten)]
    pub projection: projections::ProjectionArgs,
    #[command(flatten)]
    pub api: api::ApiArgs,
    #[command(flatten)]
    pub metrics: common::config::MetricsArgs,
}

/// The running services.
pub struct Running {
    /// The address actually bound (port 0 becomes a real port).
    pub addr: SocketAddr,
    /// Where `/metrics` is served (`METRICS_ADDR`), when it is.
    pub metrics_addr: Option<SocketAddr>,
    app: App,
}

impl Running {
    /// Waits until every service has stopped (after the shutdown token is cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.app.run_until_stopped().await
    }
}

/// Sets the streams up, migrates, connects, binds and starts everything; returns once the port
/// is bound. Each service is built the way its own binary builds it (its `service`), on a NATS
/// connection of its own as its own NATS user, as separate processes would be; their routes are
/// merged on one listener.
pub async fn start(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let agents = workers::startup::load_agents(&args.worker)?;
    // Imports suggest the agents the workers run, unless told otherwise.
    let mut imports = args.api.import_settings()?;
    if args.api.import_agents_config.is_none() {
        imports.agents = tools::import::AgentHint::from_config(&agents.config);
    }
    // The streams and the tools bucket, as the admin user: the services' own users may only
    // find them (nats/users.conf).
    {
        let (_client, js) = common::jetstream::connect(&args.nats).await?;
        common::jetstream::setup(&js, &args.nats).await?;
    }
    let nats = |service| args.nats.for_service(service, &args.nats_users);
    // The projector migrates first: the API reads the tables it creates.
    let projector = projections::startup::service(
        &nats(NatsUser::Projector),
        &args.database,
        &args.projection,
        shutdown.clone(),
    )
    .await?;
    let worker = workers::startup::service(
        &nats(NatsUser::Worker),
        agents,
        &args.worker,
        shutdown.clone(),
    )
    .await?;
    let ingress =
        ingress::startup::service(&nats(NatsUser::Ingress), args.ingress, shutdown.clone()).await?;
    // `POST /api/regress` tries configs with the workers' engine and tool settings, reading the
    // stream as the API's NATS user.
    let api_nats = nats(NatsUser::Api);
    let regress = crate::regress::rest::Runner::shared(&args.worker, &api_nats);
    let api = api::startup::service(
        &api_nats,
        &args.database,
        &args.api,
        imports,
        Some(regress),
        shutdown.clone(),
    )
    .await?;
    // Not on LISTEN_ADDR: the one origin is the port people are given, the metrics are not.
    let metrics_addr = common::metrics::serve(&args.metrics, shutdown.clone()).await?;
    let app = ingress
        .merge(api)
        .merge(worker)
        .merge(projector)
        .route(web(&args.web_dir))
        .bind(Some(args.listen), shutdown)
        .await?;
    let addr = app.addr().expect("bound on LISTEN_ADDR");
    tracing::info!(url = %format!("http://{addr}"), "smart-support is up");
    Ok(Running {
        addr,
        metrics_addr,
        app,
    })
}

/// The web app's files, with `index.html` for every other path (client-side routes).
fn web(dir: &std::path::Path) -> Router {
    if dir.join("index.html").is_file() {
        let index = ServeFile::new(dir.join("index.html"));
        Router::new().fallback_service(ServeDir::new(dir).fallback(index))
    } else {
        tracing::warn!(dir = %dir.display(), "web app not built; serving a notice instead");
        Router::new().fallback(get(not_built))
    }
}

async fn not_built() -> impl IntoResponse {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "The web app is not built. Run `make demo`, or `npm --prefix web ci && npm --prefix web run build`.\n",
    )
}
