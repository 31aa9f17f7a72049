//! `smart-support erase --thread ID`: erases a conversation as `DELETE
//! /api/conversations/{thread_id}` does (its events and dead letters deleted from JetStream,
//! a tombstone without content stored, recorded as by `cli`), then waits a little for the
//! projector to remove its rows.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use common::config::{DatabaseArgs, NatsArgs};
use common::erasure::Eraser;
use common::events::ThreadId;
use projections::projector::CONVERSATIONS;
use projections::read_models::checkpoint;

/// What `erase` needs: the stream (NATS) and the read models (PostgreSQL).
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The conversation to erase (its `thread_id`).
    #[arg(long)]
    pub thread: String,

    /// How long to wait for the projector to apply the tombstone before exiting (the rows
    /// go when it does, whether this command waits or not).
    #[arg(long, default_value = "10s", value_parser = common::config::parse_duration)]
    pub wait: Duration,

    #[command(flatten)]
    pub nats: NatsArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Erases the conversation; exit code 1 when there was nothing of it.
pub async fn run(args: &EraseArgs) -> anyhow::Result<ExitCode> {
    let thread = ThreadId::parse(&args.thread)
        .map_err(|err| anyhow::anyhow!("--thread {:?}: {err}", args.thread))?;
    let pool = projections::connect(&args.database).await?;
    let (client, _) = common::jetstream::connect(&args.nats).await?;
    let Some(erased) = api::erasure::erase_thread(&pool, &client, &thread, &Eraser::Cli).await?
    else {
        eprintln!("no conversation {thread}: no event, dead letter or row of it");
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "erased conversation {thread}: {} events and {} dead letters deleted from the streams, \
         tombstone at stream sequence {}",
        erased.events, erased.dead_letters, erased.seq
    );
    let deadline = Instant::now() + args.wait;
    loop {
        if checkpoint::position(&pool, CONVERSATIONS).await?.last_seq >= erased.seq {
            println!("the read models no longer hold it");
            break;
        }
        if Instant::now() >= deadline {
            println!(
                "the projector has not reached the tombstone yet; it removes the rows when it does"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(ExitCode::SUCCESS)
}
