//! `smart-support regress`: tries a changed agents config on real past conversations
//! before it goes live. [`recorded`] reads the recorded turns from the chat stream (the log,
//! never the read models); [`replay`] runs each one again through the workers' own turn
//! with the new config, offline: tool calls are answered from the recorded results of the
//! same call and nothing is sent anywhere or published; [`report`] compares what the replay
//! decided with what happened (agent, tool calls, confirmation, escalation, reply) and
//! prints the summary and the changed turns side by side. [`rest`] is the same run for
//! `POST /api/regress` (the runner the REST service is given).
//!
//! Exit status as `diff`'s: 0 nothing changed, 1 more turns changed than `--allow`, 2 the
//! config does not load (its `file:line: reason`, as the workers report it) or the run
//! could not compare every turn.

mod progress;
pub mod recorded;
pub mod replay;
pub mod report;
pub mod rest;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use common::config::NatsArgs;
use common::events::ThreadId;
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tools::ToolArgs;
use workers::agents::OpenAiArgs;
use workers::config::EngineKind;
use workers::turn::Agents;

use api::regress::Progress;
use recorded::{Read, Selection};
use report::Report;

/// `smart-support regress`.
#[derive(Debug, Clone, Args)]
pub struct RegressArgs {
    /// The agents config to try (YAML, as `AGENTS_CONFIG`), e.g. a changed copy of the one
    /// in use.
    #[arg(long)]
    pub config: PathBuf,
    /// Only turns whose customer message is at most this old: `7d`, `12h`, `30m`.
    #[arg(long, value_parser = parse_since)]
    pub since: Option<Duration>,
    /// Only the turns of these threads (conversations).
    #[arg(long, num_args = 1.., value_parser = parse_thread)]
    pub thread: Vec<ThreadId>,
    /// Only the last N turns (of the ones selected by `--since` and `--thread`).
    #[arg(long)]
    pub limit: Option<usize>,
    /// How the report is printed (on stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Changed turns tolerated: the exit status is 1 only with more.
    #[arg(long, default_value_t = 0)]
    pub allow: u64,
    /// The engine that proposes each turn's steps, as the workers'. With `openai` the model
    /// server is asked (see the `OPENAI_*` settings); tools are still not called.
    #[arg(long, env = "AGENT_ENGINE", value_enum, default_value_t = EngineKind::Rules)]
    pub engine: EngineKind,
    /// Turns replayed at once (the model engine's requests overlap; the rule engine needs
    /// none).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1_024))]
    pub concurrency: u64,
    /// No progress bar (there is one on stderr only when it is a terminal).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub openai: OpenAiArgs,
    /// Read for the tool definitions (the OpenAPI document's operations) only: a replay
    /// calls no tool.
    #[command(flatten)]
    pub tools: ToolArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The summary, then the changed turns side by side.
    Text,
    /// The summary and the changed turns with both decisions, for scripts.
    Json,
    /// A page of its own with the summary and a table per changed turn.
    Html,
}

/// `7d`, or a duration as every other setting takes it (`12h`, `30m`).
fn parse_since(raw: &str) -> Result<Duration, String> {
    match raw.trim().strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .map(|d| Duration::from_secs(d * 86_400))
            .map_err(|_| format!("`{raw}` is not a duration like 7d, 12h or 30m")),
        None => common::config::parse_duration(raw),
    }
}

fn parse_thread(raw: &str) -> Result<ThreadId, String> {
    ThreadId::parse(raw).map_err(|err| err.to_string())
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// The process's exit status.
    pub status: u8,
}

/// Runs `regress` and prints the report; the exit status says whether anything changed.
pub async fn main(args: &RegressArgs) -> ExitCode {
    let outcome = match run(args).await {
        Ok(outcome) => outcome,
        Err(err) => {
            eprintln!("Error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let printed = match args.format {
        Format::Text => outcome.report.text(),
        Format::Json => outcome.report.json() + "\n",
        Format::Html => outcome.report.html(),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(printed.as_bytes()).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::from(outcome.status)
}

/// Loads the config, replays the selected turns and compares them; prints nothing but the
/// progress bar.
pub async fn run(args: &RegressArgs) -> anyhow::Result<Outcome> {
    let agents = load(args)?;
    replay_all(args, agents, &Progress::default()).await
}

/// Replays the selected turns with `agents` (the config `args.config` names, loaded) and
/// compares them; `progress` follows the read and the replays (the REST run's).
pub async fn replay_all(
    args: &RegressArgs,
    agents: Agents,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let (_client, js) = common::jetstream::connect(&args.nats).await?;
    // Looked up, not created or updated: a run changes nothing on the server.
    let stream = js
        .get_stream(common::subjects::CHAT_STREAM)
        .await
        .with_context(|| format!("no chat stream {}", common::subjects::CHAT_STREAM))?;
    let agents = with_published_tools(&js, agents, args).await?;
    let selection = Selection {
        since: args.since.map(|age| OffsetDateTime::now_utc() - age),
        threads: args.thread.clone(),
        limit: args.limit,
    };
    let counts = Arc::new(recorded::Counts::default());
    let (sender, receiver) = mpsc::channel(1_024);
    let reader = tokio::spawn(recorded::read(stream, selection, counts.clone(), sender));
    let mut bar = progress::Bar::new(args.quiet);

    let mut report = Report::new(
        args.config.display().to_string(),
        match args.engine {
            EngineKind::Rules => "rules",
            EngineKind::Openai => "openai",
        }
        .to_owned(),
    );
    let reads = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|read| (read, receiver))
    });
    let mut replays = std::pin::pin!(
        reads
            .map(|read| {
                let agents = agents.clone();
                async move {
                    match read {
                        Read::Turn(turn) => {
                            let replayed = replay::replay(&agents, &turn).await;
                            Replayed::Turn(turn, replayed)
                        }
                        Read::Done(skipped) => Replayed::Done(skipped),
                    }
                }
            })
            .buffered(args.concurrency as usize)
    );
    // The bar moves while the reader reads, also when no turn is ready (`--limit`).
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        let done = tokio::select! {
            done = replays.next() => match done {
                Some(done) => done,
                None => break,
            },
            _ = tick.tick() => {
                let (read, total) = (counts.read.load(Ordering::Relaxed), counts.total.load(Ordering::Relaxed));
                bar.update(read, total, report.summary.replayed);
                progress.events_read.store(read, Ordering::Relaxed);
                progress.events_total.store(total, Ordering::Relaxed);
                progress.turns_replayed.store(report.summary.replayed, Ordering::Relaxed);
                continue;
            }
        };
        match done {
            Replayed::Turn(turn, Ok(decision)) => report.add(&turn, decision),
            Replayed::Turn(turn, Err(err)) => report.failed(&turn, err.to_string()),
            Replayed::Done(skipped) => report.summary.skipped = skipped,
        }
    }
    bar.finish();
    reader.await.context("the stream reader stopped")??;
    progress
        .events_read
        .store(counts.read.load(Ordering::Relaxed), Ordering::Relaxed);
    progress
        .events_total
        .store(counts.total.load(Ordering::Relaxed), Ordering::Relaxed);
    progress
        .turns_replayed
        .store(report.summary.replayed, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    report.summary.seconds = seconds;
    report.summary.turns_per_second = report.summary.replayed as f64 / seconds.max(1e-9);
    let status = if report.summary.errors > 0 {
        2
    } else if report.summary.changed > args.allow {
        1
    } else {
        0
    };
    Ok(Outcome { report, status })
}

/// A replayed turn, or the end of the read.
enum Replayed {
    Turn(
        Box<recorded::RecordedTurn>,
        Result<recorded::Decision, workers::turn::TurnError>,
    ),
    Done(recorded::Skipped),
}

/// The new config as the workers load it (the same checks, the same errors: `file:line:
/// reason`), with its engine and its tool definitions.
pub fn load(args: &RegressArgs) -> anyhow::Result<Agents> {
    workers::startup::load_agents(&worker_args(args)?)
}

/// The workers' settings a replay needs: the config, the engine, the tool definitions.
fn worker_args(args: &RegressArgs) -> anyhow::Result<workers::WorkerArgs> {
    let mut worker = workers::WorkerArgs::from_flags([
        std::ffi::OsString::from("--agents-config"),
        args.config.clone().into_os_string(),
    ])?;
    worker.engine = args.engine;
    worker.openai = args.openai.clone();
    worker.tools = args.tools.clone();
    Ok(worker)
}

/// The config with the tools published by an OpenAPI import merged in, as the workers use
/// it (read from the key-value bucket when it exists; never created).
async fn with_published_tools(
    js: &async_nats::jetstream::Context,
    agents: Agents,
    args: &RegressArgs,
) -> anyhow::Result<Agents> {
    use tools::published::{BUCKET, KEY, PublishedTools};
    let Ok(store) = js.get_key_value(BUCKET).await else {
        return Ok(agents);
    };
    let entry = store
        .get(KEY)
        .await
        .map_err(|err| anyhow::anyhow!("cannot read {BUCKET}/{KEY}: {err}"))?;
    let Some(bytes) = entry else {
        return Ok(agents);
    };
    let published: PublishedTools = serde_json::from_slice(&bytes)
        .with_context(|| format!("the published tool set {BUCKET}/{KEY} cannot be read"))?;
    let base = workers::published::Base {
        agents,
        rules: matches!(args.engine, EngineKind::Rules),
        tools: args.tools.clone(),
    };
    Ok(workers::published::merge(&base, &published))
}
