//! Settings of the workers; every one a flag with an environment variable beside it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};
use common::config::parse_duration;

use crate::agents::OpenAiArgs;
use tools::ToolArgs;

/// Which engine proposes the steps of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// The deterministic rule engine: the agents config's intents, offline.
    Rules,
    /// An OpenAI-compatible chat-completions server (see the `OPENAI_*` settings).
    Openai,
}

/// How a worker pulls and runs turns.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Most user messages in hand at once (and per pull request); their threads run in
    /// parallel, each thread's messages one after the other.
    #[arg(long, env = "WORKER_BATCH", default_value_t = 256)]
    pub worker_batch: usize,
    /// The agents config (YAML): agents, routing, tools and permissions, escalation.
    #[arg(long, env = "AGENTS_CONFIG", default_value = "fixtures/agents.yaml")]
    pub agents_config: PathBuf,
    /// The engine that proposes each turn's steps.
    #[arg(long, env = "AGENT_ENGINE", value_enum, default_value_t = EngineKind::Rules)]
    pub engine: EngineKind,
    /// Delay before a failed turn's message is delivered again; doubles with each delivery.
    #[arg(long, env = "WORKER_RETRY_DELAY", default_value = "1s", value_parser = parse_duration)]
    pub worker_retry_delay: Duration,
    /// Longest delay between deliveries of a failing message.
    #[arg(long, env = "WORKER_RETRY_MAX_DELAY", default_value = "60s", value_parser = parse_duration)]
    pub worker_retry_max_delay: Duration,
    /// Deliveries of a message whose turn keeps failing before it is dead-lettered.
    #[arg(long, env = "WORKER_MAX_DELIVERIES", default_value_t = 5)]
    pub worker_max_deliveries: u32,
    /// How long a delivered message may go without an ack before JetStream gives it to
    /// another worker (a worker that died mid-turn).
    #[arg(long, env = "WORKER_ACK_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub worker_ack_wait: Duration,
    /// Longest a message waits for the turn of its thread's previous message to end;
    /// then it is answered anyway (and a warning logged).
    #[arg(long, env = "WORKER_ORDER_WAIT", default_value = "10m", value_parser = parse_duration)]
    pub worker_order_wait: Duration,
    /// Where the worker serves `/metrics` and `/healthz` (e.g. `0.0.0.0:9091`); none by
    /// default. (`smart-support up` serves the worker's metrics on its own port.)
    #[arg(long, env = "WORKER_METRICS_ADDR")]
    pub worker_metrics_addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub openai: OpenAiArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

impl WorkerArgs {
    /// Every setting at its default (as `--help` shows them) but those in `flags`, e.g.
    /// `["--agents-config", "fixtures/agents.yaml"]`. For tests and embedding.
    pub fn from_flags<I: IntoIterator<Item = S>, S: Into<std::ffi::OsString> + Clone>(
        flags: I,
    ) -> Result<WorkerArgs, clap::Error> {
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            worker: WorkerArgs,
        }
        let args = std::iter::once("workers".into()).chain(flags.into_iter().map(Into::into));
        Ok(Flags::try_parse_from(args)?.worker)
    }
}
