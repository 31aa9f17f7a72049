//! Builds the REST service: connects its pool and NATS, resumes import jobs left pending,
//! and serves `/api` (composable start-up: [`common::startup`]).

use std::net::SocketAddr;
use std::sync::Arc;

use common::config::{DatabaseArgs, NatsArgs};
use common::shutdown::CancellationToken;
use common::startup::{App, Service};

use crate::config::ApiArgs;
use crate::imports::ImportSettings;
use crate::regress::RegressRunner;
use crate::{ApiState, router};

/// The REST service, not yet bound: `/api` over the live read models (migrated by the
/// projector's start-up). `imports` are the agents and allow-list of OpenAPI imports
/// (usually [`ApiArgs::import_settings`]); `regress` runs `POST /api/regress` (the
/// composition root's, which sees the workers; `None`: 503 `regress_unavailable`). With
/// `CONVERSATION_RETENTION`, its retention sweep runs as a task until `shutdown`.
pub async fn service(
    nats: &NatsArgs,
    database: &DatabaseArgs,
    args: &ApiArgs,
    imports: ImportSettings,
    regress: Option<Arc<dyn RegressRunner>>,
    shutdown: CancellationToken,
) -> anyhow::Result<Service> {
    let pool = projections::connect(database).await?;
    let (client, js) = common::jetstream::connect(nats).await?;
    let stream = common::jetstream::chat_stream(&js).await?;
    let state = ApiState {
        pool,
        client,
        stream,
        api_token: args.api_token.clone().map(Arc::new),
        projection_wait: args.projection_wait,
        imports: Arc::new(imports),
        throttle: Arc::default(),
        session_lifetime: args.operator_session_ttl,
        regress,
    };
    tokio::spawn(crate::imports::resume_pending(state.clone()));
    let mut service = Service::new(router(state.clone()));
    if let Some(retention) = args.conversation_retention {
        service = service.with_task(tokio::spawn(async move {
            crate::erasure::retention_sweep(
                state.pool,
                state.client,
                retention,
                ApiArgs::retention_check(retention),
                shutdown,
            )
            .await;
            Ok(())
        }));
    }
    Ok(service)
}

/// The REST service bound on `listen`, serving until `shutdown` is cancelled.
pub async fn build(
    listen: SocketAddr,
    nats: &NatsArgs,
    database: &DatabaseArgs,
    args: &ApiArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let imports = args.import_settings()?;
    let app = service(nats, database, args, imports, None, shutdown.clone())
        .await?
        .route(common::metrics::router())
        .bind(Some(listen), shutdown)
        .await?;
    tracing::info!(addr = ?app.addr(), "api listening");
    Ok(app)
}
