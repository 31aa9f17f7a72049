//! The `smart-support` command line. [`up`] runs every service in one process on one
//! origin (the web pages, `/ws` and `/api` on one port) for local use and tests; the
//! crates `ingress`, `workers` and `projections` also build separate binaries for
//! deployment. [`Command`] lists the operations; [`dead_letters`] lists, shows,
//! redrives and discards dead letters.

pub mod dead_letters;
pub mod up;

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
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => {
            let shutdown = common::shutdown::on_signal();
            let running = up::start(*args, shutdown).await?;
            running.wait().await
        }
        Command::DeadLetters(command) => dead_letters::run(command).await,
        Command::Migrate { database } => {
            projections::migrate(&database).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
