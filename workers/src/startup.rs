//! Builds the worker (composable start-up: [`common::startup`]): reads the agents config
//! and the tools, connects, finds the stream, makes sure the shared consumer exists, and runs
//! the pull loop until the shutdown token is cancelled.

use std::sync::Arc;

use async_nats::jetstream::{Context, consumer::PullConsumer, stream::Stream};
use common::config::NatsArgs;
use common::shutdown::CancellationToken;
use common::startup::{App, Service};
use serde_json::Value;

use crate::agents::config::{AgentsConfig, EngineName};
use crate::agents::{BoxFuture, Engine, OpenAiEngine, RuleEngine, ToolDef};
use crate::config::{EngineKind, WorkerArgs};
use crate::consumer::{RetryPolicy, Worker};
use crate::turn::{Agents, Tools};
use tools::{CallReport, ToolError, Toolbox};

/// The worker, not yet bound: reads the agents config and the tools, connects on a NATS
/// connection of its own, finds the stream, makes sure the shared consumer exists, and starts
/// the pull loop as a task (it stops when `shutdown` is cancelled).
pub async fn service(
    nats: &NatsArgs,
    agents: Agents,
    args: &WorkerArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<Service> {
    let (_client, js) = common::jetstream::connect(nats).await?;
    let stream = common::jetstream::chat_stream(&js).await?;
    let (consumer, worker) = consumer_and_state(js, stream, agents, args).await?;
    tracing::info!("worker pulling user messages");
    let pull = tokio::spawn(crate::consumer::run(
        consumer,
        worker,
        args.worker_batch,
        shutdown,
    ));
    Ok(Service::new(axum::Router::new()).with_task(pull))
}

/// The worker process: [`service`], with `/metrics` and `/healthz` on
/// `WORKER_METRICS_ADDR` when set.
pub async fn build(
    nats: &NatsArgs,
    args: &WorkerArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let agents = load_agents(args)?;
    let service = service(nats, agents, args, shutdown.clone())
        .await?
        .route(common::metrics::router().route("/healthz", axum::routing::get(|| async { "ok" })));
    let app = service.bind(args.worker_metrics_addr, shutdown).await?;
    if let Some(addr) = app.addr() {
        tracing::info!(%addr, "serving /metrics and /healthz");
    }
    Ok(app)
}

/// Reads the agents config and its OpenAPI document and builds the engine. Every mistake
/// in them is reported here, at start-up, with the file and line.
pub fn load_agents(args: &WorkerArgs) -> anyhow::Result<Agents> {
    agents_of(AgentsConfig::load(&args.agents_config)?, args)
}

/// The agents of a config already read (e.g. one sent to `regress` over REST): its tools
/// from its OpenAPI document, checked as [`load_agents`] checks them, and the engine.
pub fn agents_of(config: AgentsConfig, args: &WorkerArgs) -> anyhow::Result<Agents> {
    let config = Arc::new(config);
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
            config.check_tools(&|name| toolbox.lookup(name))?;
            // An unusable operation the config does not name is harmless: said, not fatal.
            for (operation, reason) in toolbox.unusable() {
                if !config.names_tool(operation) {
                    tracing::warn!(document = %path.display(), %operation, %reason, "OpenAPI operation skipped: it cannot be used");
                }
            }
            Arc::new(toolbox)
        }
        None => {
            config.check_tools(&|_| tools::agents_config::ToolLookup::Missing)?;
            Arc::new(NoTools)
        }
    };
    let build = |kind: EngineName| -> anyhow::Result<Arc<dyn Engine>> {
        Ok(match kind {
            EngineName::Rules => Arc::new(RuleEngine::new(config.clone())),
            EngineName::Openai => Arc::new(OpenAiEngine::new(args.openai.clone())?),
        })
    };
    let default = match args.engine {
        EngineKind::Rules => EngineName::Rules,
        EngineKind::Openai => EngineName::Openai,
    };
    let engine = build(default)?;
    // The engines agents name beside the worker's (`engine:` in the agents config).
    let mut named: Vec<EngineName> = config
        .agents
        .iter()
        .filter_map(|agent| agent.engine.name)
        .filter(|name| *name != default)
        .collect();
    named.dedup();
    let others = named
        .into_iter()
        .map(build)
        .collect::<anyhow::Result<_>>()?;
    Ok(Agents {
        config,
        engine,
        tools,
        others,
    })
}

/// The shared consumer (created or updated to these settings) and the worker state.
pub async fn consumer_and_state(
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
    let base = crate::published::Base {
        agents: agents.clone(),
        rules: matches!(args.engine, EngineKind::Rules),
        tools: args.tools.clone(),
    };
    let worker = Arc::new(
        Worker::new(js.clone(), stream, agents, policy)
            .watching_operators()
            .await?,
    );
    // The published tools now and on every publish, without a restart.
    crate::published::follow(&js, base, worker.agents.clone()).await?;
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
                    api_message: None,
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
