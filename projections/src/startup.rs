//! Builds the projections service (migrations, projector, REST), binds first so port 0
//! works in tests, and serves until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;

use common::config::{DatabaseArgs, NatsArgs};

use crate::config::ProjectionArgs;
use crate::http::{self, ApiState};

/// Runs migrations, the projector and the REST API until Ctrl-C or SIGTERM.
pub async fn run(
    listen: SocketAddr,
    nats: NatsArgs,
    database: DatabaseArgs,
    args: ProjectionArgs,
) -> anyhow::Result<()> {
    let shutdown = common::shutdown::on_signal();
    let imports = Arc::new(args.import_settings()?);
    crate::migrate(&database).await?;
    let pool = crate::connect(&database).await?;
    let (client, js) = common::jetstream::connect(&nats).await?;
    let stream = common::jetstream::ensure_chat_stream(&js, &nats).await?;
    common::dead_letters::ensure_stream(&js, &nats).await?;
    let projector = tokio::spawn(crate::projector::run(
        pool.clone(),
        stream.clone(),
        args.projector_batch,
        args.projector_standby_poll,
        shutdown.clone(),
    ));
    let state = ApiState {
        pool,
        client,
        stream,
        api_token: args.api_token.map(Arc::from),
        projection_wait: args.projection_wait,
        imports,
    };
    tokio::spawn(http::imports::resume_pending(state.clone()));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "projections listening");
    axum::serve(
        listener,
        http::router(state).merge(common::metrics::router()),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await?;
    projector.await??;
    Ok(())
}
