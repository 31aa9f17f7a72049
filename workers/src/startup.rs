//! Connects, makes sure the stream and the shared consumer exist, and runs the pull loop
//! until a shutdown signal.

use std::sync::Arc;

use common::config::NatsArgs;

use crate::agents::RuleEngine;
use crate::config::WorkerArgs;

/// Runs a worker process until Ctrl-C or SIGTERM.
pub async fn run(nats: NatsArgs, args: WorkerArgs) -> anyhow::Result<()> {
    let shutdown = common::shutdown::on_signal();
    let (_client, js) = common::jetstream::connect(&nats).await?;
    let stream = common::jetstream::ensure_chat_stream(&js, &nats).await?;
    let consumer = common::jetstream::ensure_workers_consumer(&stream).await?;
    tracing::info!("worker pulling user messages");
    crate::consumer::run(
        consumer,
        js,
        Arc::new(RuleEngine),
        args.worker_batch,
        shutdown,
    )
    .await
}
