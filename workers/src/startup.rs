//! Reads the agents config and the tools, connects, makes sure the streams and the shared
//! consumer exist, and runs the pull loop until a shutdown signal.

use std::sync::Arc;

use async_nats::jetstream::{Context, consumer::PullConsumer, stream::Stream};
use common::config::NatsArgs;
use serde_json::Value;

use crate::agents::config::AgentsConfig;
use crate::agents::{BoxFuture, Engine, OpenAiEngine, RuleEngine, ToolDef};
use crate::config::{EngineKind, WorkerArgs};
use crate::consumer::{RetryPolicy, Worker};
use crate::tools::{CallReport, ToolError, Toolbox};
use crate::turn::{Agents, Tools};

/// Runs a worker process until Ctrl-C or SIGTERM.
pub async fn run(nats: NatsArgs, args: WorkerArgs) -> anyhow::Result<()> {
    let shutdown = common::shutdown::on_signal();
    let agents = load_agents(&args)?;
    let (_client, js) = common::jetstream::connect(&nats).await?;
    let stream = common::jetstream::ensure_chat_stream(&js, &nats).await?;
    common::dead_letters::ensure_stream(&js, &nats).await?;
    let (consumer, worker) = build(js, stream, agents, &args).await?;
    if let Some(addr) = args.worker_metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}"))?;
        let app =
            common::metrics::router().route("/healthz", axum::routing::get(|| async { "ok" }));
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        tracing::info!(%addr, "serving /metrics and /healthz");
    }
    tracing::info!("worker pulling user messages");
    crate::consumer::run(consumer, worker, args.worker_batch, shutdown).await
}

/// Reads the agents config and its OpenAPI document and builds the engine. Every mistake
/// in them is reported here, at start-up, with the file and line.
pub fn load_agents(args: &WorkerArgs) -> anyhow::Result<Agents> {
    let config = Arc::new(AgentsConfig::load(&args.agents_config)?);
    let tools: Arc<dyn Tools> = match &config.openapi {
        Some(path) => {
            let document = std::fs::read_to_string(path).map_err(|err| {
                anyhow::anyhow!(
                    "{}: cannot read the OpenAPI document: {err}",
                    path.display()
                )
            })?;
            let toolbox = Toolbox::from_openapi(&document, &args.tools)
                .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
            config.check_tools(&|name| toolbox.spec(name).is_some())?;
            Arc::new(toolbox)
        }
        None => {
            config.check_tools(&|_| false)?;
            Arc::new(NoTools)
        }
    };
    let engine: Arc<dyn Engine> = match args.engine {
        EngineKind::Rules => Arc::new(RuleEngine::new(config.clone())),
        EngineKind::Openai => Arc::new(OpenAiEngine::new(args.openai.clone())?),
    };
    Ok(Agents {
        config,
        engine,
        tools,
    })
}

/// The shared consumer (created or updated to these settings) and the worker state.
pub async fn build(
    js: Context,
    stream: Stream,
    agents: Agents,
    args: &WorkerArgs,
) -> anyhow::Result<(PullConsumer, Arc<Worker>)> {
    let consumer =
        common::jetstream::ensure_workers_consumer(&stream, args.worker_ack_wait).await?;
    let policy = RetryPolicy {
        first_delay: args.worker_retry_delay,
        max_delay: args.worker_retry_max_delay,
        max_deliveries: args.worker_max_deliveries.max(1),
        ack_wait: args.worker_ack_wait,
        order_wait: args.worker_order_wait,
    };
    let base = crate::tools::published::Base {
        agents: agents.clone(),
        rules: matches!(args.engine, EngineKind::Rules),
        tools: args.tools.clone(),
    };
    let worker = Arc::new(Worker::new(js.clone(), stream, agents, policy));
    // The published tools now and on every publish, without a restart.
    crate::tools::published::follow(&js, base, worker.agents.clone()).await?;
    Ok((consumer, worker))
}

/// The tools of a config without an OpenAPI document: none.
struct NoTools;

impl Tools for NoTools {
    fn call<'a>(&'a self, name: &'a str, _: &'a Value, _: &'a str) -> BoxFuture<'a, CallReport> {
        Box::pin(async move {
            CallReport {
                result: Err(ToolError {
                    category: common::events::ErrorCategory::NotRetryable,
                    status: None,
                    message: format!("no tool {name}: the agents config names no OpenAPI document"),
                }),
                attempts: 0,
                elapsed: std::time::Duration::ZERO,
            }
        })
    }

    fn def(&self, _: &str) -> Option<ToolDef> {
        None
    }
}
