//! Every service in one process: the ingress router, the REST router and the web pages
//! merged on one listener, with the worker loop and the projector as tasks beside it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::{Router, http::StatusCode, response::IntoResponse, routing::get};
use clap::Args;
use common::{
    config::{DatabaseArgs, NatsArgs},
    shutdown::CancellationToken,
};
use tokio::task::JoinHandle;
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
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub ingress: ingress::IngressArgs,
    #[command(flatten)]
    pub worker: workers::WorkerArgs,
    #[command(flatten)]
    pub projection: projections::ProjectionArgs,
}

/// The running services.
pub struct Running {
    /// The address actually bound (port 0 becomes a real port).
    pub addr: SocketAddr,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Waits until every service has stopped (after the shutdown token is cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}

/// Migrates, connects, binds and starts everything; returns once the port is bound.
pub async fn start(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let agents = workers::startup::load_agents(&args.worker)?;
    // Imports suggest the agents the workers run, unless told otherwise.
    let mut imports = args.projection.import_settings()?;
    if args.projection.import_agents_config.is_none() {
        imports.agents = workers::tools::import::AgentHint::from_config(&agents.config);
    }
    projections::migrate(&args.database).await?;
    let pool = projections::connect(&args.database).await?;
    let (client, js) = common::jetstream::connect(&args.nats).await?;
    let stream = common::jetstream::ensure_chat_stream(&js, &args.nats).await?;
    common::dead_letters::ensure_stream(&js, &args.nats).await?;
    // The worker and the projector have NATS connections of their own, as they do when they
    // run as separate processes. A connection is one socket that one task reads and writes:
    // shared, the projector's large pulls and the live tail queued in front of the workers'
    // and the ingress's acknowledgements (docs/benchmarks.md, run A14).
    let own_connection = || async {
        let (_, js) = common::jetstream::connect(&args.nats).await?;
        let stream = js.get_stream(common::subjects::CHAT_STREAM).await?;
        anyhow::Ok((js, stream))
    };
    let (worker_js, worker_stream) = own_connection().await?;
    let (_, projector_stream) = own_connection().await?;
    let (workers_consumer, worker_state) =
        workers::startup::build(worker_js, worker_stream, agents, &args.worker).await?;

    let worker = tokio::spawn(workers::consumer::run(
        workers_consumer,
        worker_state,
        args.worker.worker_batch,
        shutdown.clone(),
    ));
    let projector = tokio::spawn(projections::projector::run(
        pool.clone(),
        projector_stream,
        args.projection.projector_batch,
        args.projection.projector_standby_poll,
        shutdown.clone(),
    ));

    let ingress_state = ingress::IngressState::new(
        client.clone(),
        js,
        stream.clone(),
        args.ingress,
        shutdown.clone(),
    )
    .await?;
    let api_state = projections::http::ApiState {
        pool,
        client,
        stream,
        api_token: args.projection.api_token.map(Arc::from),
        projection_wait: args.projection.projection_wait,
        imports: Arc::new(imports),
    };
    tokio::spawn(projections::http::imports::resume_pending(
        api_state.clone(),
    ));
    let sessions = ingress_state.clone();
    let app = ingress::router(ingress_state)
        .merge(projections::http::router(api_state))
        .merge(common::metrics::router())
        .merge(web(&args.web_dir));

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(url = %format!("http://{addr}"), "smart-support is up");
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        sessions.drain().await;
        Ok(())
    });
    Ok(Running {
        addr,
        tasks: vec![server, worker, projector],
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
