//! Builds the projector (composable start-up: [`common::startup`]): migrations, then the
//! projector's pull loop as a task; it serves no HTTP of its own.

use common::config::{DatabaseArgs, NatsArgs};
use common::shutdown::CancellationToken;
use common::startup::Service;

use crate::config::ProjectionArgs;

/// Runs the migrations and starts the projector on a NATS connection of its own; it
/// stops when `shutdown` is cancelled.
pub async fn service(
    nats: &NatsArgs,
    database: &DatabaseArgs,
    args: &ProjectionArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<Service> {
    crate::migrate(database).await?;
    let pool = crate::connect(database).await?;
    // A connection of its own: shared, its large pulls would queue in front of other
    // services' acknowledgements (docs/benchmarks.md, run A14).
    let (_client, js) = common::jetstream::connect(nats).await?;
    let stream = common::jetstream::chat_stream(&js).await?;
    let projector = tokio::spawn(crate::projector::run(
        pool,
        stream,
        args.projector_batch,
        args.projector_standby_poll,
        shutdown,
    ));
    Ok(Service::new(axum::Router::new()).with_task(projector))
}
