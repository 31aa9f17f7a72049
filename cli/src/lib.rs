//! The `smart-support` command line. [`up`] runs every service in one process on one
//! origin (the web pages, `/ws` and `/api` on one port) for local use and tests; the
//! crates `ingress` and `workers` also build separate binaries for deployment, and
//! [`projections_bin`] is the `projections` binary (the projector and the REST API). [`Command`] lists the operations; [`dead_letters`] lists, shows,
//! redrives and discards dead letters; [`rebuild`] replays the stream into fresh read
//! models and swaps them in (`rebuild`) or compares them with the live ones (`verify`);
//! [`erase`] erases a conversation (its events, dead letters and rows; a tombstone stays);
//! [`seed`] publishes a synthetic stream for benchmarks; [`seed_demo`] holds demo
//! conversations through a running stack; [`regress`] tries a changed agents config on
//! the recorded turns; [`openapi`] imports an OpenAPI document and
//! prints its classified operations.

pub mod dead_letters;
pub mod erase;
pub mod openapi;
pub mod operators;
pub mod projections_bin;
pub mod rebuild;
pub mod regress;
pub mod seed;
pub mod seed_demo;
pub mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// smart-support: an event-driven customer-support chat pipeline.
#[derive(Debug, Parser)]
#[command(name = "smart-support", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Operations.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run ingress, workers, projections and the web UI in one process, on one port.
    Up(Box<up::UpArgs>),
    /// List, show, redrive or discard dead letters: user messages the workers gave up on.
    #[command(subcommand)]
    DeadLetters(dead_letters::DeadLettersCommand),
    /// Apply the database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: common::config::DatabaseArgs,
    },
    /// Create or update the NATS streams (CHAT, DEAD_LETTERS) and the KV bucket TOOLS, with
    /// `NATS_STREAM_REPLICAS` and `NATS_DUPLICATE_WINDOW`, as the NATS admin user, and exit.
    /// The services' own NATS users may only find them (`smart-support up` does this itself).
    NatsSetup {
        #[command(flatten)]
        nats: common::config::NatsArgs,
    },
    /// Replay the whole event stream into fresh read models while the live ones keep
    /// serving, then swap them in atomically.
    Rebuild(Box<rebuild::RebuildArgs>),
    /// Replay the stream into a scratch copy and compare it with the live read models;
    /// exits 1 when they differ.
    Verify(Box<rebuild::VerifyArgs>),
    /// Erase a conversation: its events leave the stream, its dead letters go, a tombstone
    /// without content is stored and the projector removes its rows from every table.
    Erase(Box<erase::EraseArgs>),
    /// Add, list or disable the operators who sign in to the desk.
    #[command(subcommand)]
    Operators(operators::OperatorsCommand),
    /// Import an OpenAPI document: print its operations classified read/write/destructive.
    #[command(subcommand)]
    Openapi(openapi::OpenApiCommand),
    /// Try a changed agents config on the recorded conversations (read from the stream,
    /// offline: no tool is called, nothing is published): the turns whose agent, tool
    /// calls, confirmation, escalation or reply would change. Exits 0 when none changed, 1
    /// when some did (beyond `--allow`), 2 when the config does not load.
    Regress(Box<regress::RegressArgs>),
    /// Publish a synthetic chat stream for benchmarks (stop the workers first).
    SeedEvents(Box<seed::SeedArgs>),
    /// Hold demo conversations through the running stack (ingress, workers, shop API, REST
    /// API) and leave a few dead letters, so the pages have data.
    SeedDemo(Box<seed_demo::SeedDemoArgs>),
}

/// Runs a parsed command; the exit code is 1 when `verify` finds a difference.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Rebuild(args) => rebuild::rebuild(&args).await?,
        Command::Verify(args) => {
            if !rebuild::verify(&args).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Regress(args) => return Ok(regress::main(&args).await),
        Command::SeedEvents(args) => {
            seed::run(&args).await?;
        }
        Command::SeedDemo(args) => {
            seed_demo::run(&args).await?;
        }
        Command::Up(args) => {
            let shutdown = common::shutdown::on_signal();
            let running = up::start(*args, shutdown).await?;
            running.wait().await?
        }
        Command::DeadLetters(command) => dead_letters::run(command).await?,
        Command::Erase(args) => return erase::run(&args).await,
        Command::Openapi(command) => return openapi::run(command).await,
        Command::Operators(command) => return operators::run(command).await,
        Command::NatsSetup { nats } => {
            let js = common::jetstream::connect_once(&nats).await?;
            common::jetstream::setup(&js, &nats).await?;
            tracing::info!("NATS streams and bucket set up");
        }
        Command::Migrate { database } => {
            projections::migrate(&database).await?;
            tracing::info!("migrations applied");
        }
    }
    Ok(ExitCode::SUCCESS)
}
