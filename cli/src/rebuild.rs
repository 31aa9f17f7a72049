//! `smart-support rebuild` and `smart-support verify`: replay the whole CHAT stream into
//! a fresh copy of the read models, then swap it in (`rebuild`) or compare it with the
//! live tables (`verify`). The work is [`projections::projector::rebuild`]'s; this parses
//! the flags and prints the outcome.

use anyhow::Context as _;
use clap::Args;
use common::config::{DatabaseArgs, NatsArgs};
use projections::projector::progress::{rate, thousands};
use projections::projector::rebuild::{self, Options, Reader};

/// How the replay runs (both commands).
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Most events applied in one transaction.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// How the stream is read: an ephemeral pull consumer fetching `--batch` messages a
    /// time, or the client's ordered consumer.
    #[arg(long, value_enum, default_value_t = Reader::Pull)]
    pub reader: Reader,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl ReplayArgs {
    fn options(&self) -> Options {
        Options {
            batch: self.batch as usize,
            reader: self.reader,
            quiet: self.quiet,
        }
    }
}

/// `smart-support rebuild`.
#[derive(Debug, Clone, Args)]
pub struct RebuildArgs {
    /// Count the events and say what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub replay: ReplayArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `smart-support verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Most differing rows printed per table and side.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub replay: ReplayArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

async fn chat_stream(nats: &NatsArgs) -> anyhow::Result<async_nats::jetstream::stream::Stream> {
    let (_client, js) = common::jetstream::connect(nats).await?;
    js.get_stream(common::subjects::CHAT_STREAM)
        .await
        .with_context(|| format!("cannot find stream {}", common::subjects::CHAT_STREAM))
}

/// Runs `rebuild`; prints what it did (or, with `--dry-run`, would do).
pub async fn rebuild(args: &RebuildArgs) -> anyhow::Result<()> {
    let live = projections::connect(&args.database).await?;
    let stream = chat_stream(&args.nats).await?;
    if args.dry_run {
        let plan = rebuild::plan(&live, &stream).await?;
        println!(
            "dry run: would replay {} events (sequences {}..={}) into schema {} in batches of {},",
            thousands(plan.events),
            plan.first_seq,
            plan.last_seq,
            rebuild::REBUILD_SCHEMA,
            args.replay.batch,
        );
        println!(
            "  cloning {} tables ({}), then swap it with {} (live checkpoint {}).",
            plan.tables.len(),
            plan.tables.join(", "),
            projections::READ_MODEL_SCHEMA,
            plan.live_checkpoint,
        );
        if let Some(replaced) = &plan.replaced {
            println!(
                "  {} ({}): the live tables would be replaced whole, nothing caught up from them.",
                replaced.describe(),
                projections::projector::replaced::REASON,
            );
        }
        if plan.leftover {
            println!(
                "  schema {} is left from an interrupted rebuild: it would be dropped first.",
                rebuild::REBUILD_SCHEMA
            );
        }
        println!("nothing was changed.");
        return Ok(());
    }
    let done = rebuild::rebuild(&live, &args.database, &stream, &args.replay.options()).await?;
    let replayed = done.replayed;
    println!(
        "rebuilt {} events in {:.1}s: {} events/s ({} batches; {:.1}s applying, {:.1}s waiting for the stream)",
        thousands(replayed.events),
        replayed.elapsed.as_secs_f64(),
        thousands(replayed.rate()),
        replayed.timings.batches,
        replayed.timings.applying.as_secs_f64(),
        replayed.timings.waiting_for_events.as_secs_f64(),
    );
    println!(
        "swapped in at checkpoint {} ({} events caught up in the swap, which held the live tables {} ms)",
        done.live_checkpoint,
        done.caught_up,
        done.swap.as_millis(),
    );
    if let Some(replaced) = &done.replaced {
        println!(
            "the old read models belonged to another stream ({}): replaced by this stream's; the projector goes on from checkpoint {}",
            replaced.describe(),
            done.live_checkpoint,
        );
    }
    Ok(())
}

/// Runs `verify`; prints the differences. Returns whether the copies are equal.
pub async fn verify(args: &VerifyArgs) -> anyhow::Result<bool> {
    let live = projections::connect(&args.database).await?;
    let stream = chat_stream(&args.nats).await?;
    let verified = rebuild::verify(
        &live,
        &args.database,
        &stream,
        &args.replay.options(),
        args.limit,
    )
    .await?;
    let replayed = verified.replayed;
    println!(
        "replayed {} events into {} in {:.1}s ({} events/s); compared at checkpoint {}",
        thousands(replayed.events),
        rebuild::VERIFY_SCHEMA,
        replayed.elapsed.as_secs_f64(),
        thousands(rate(replayed.events, replayed.elapsed)),
        verified.checkpoint,
    );
    if verified.differences.is_empty() {
        println!("equal: the live read models match a replay of the stream");
        return Ok(true);
    }
    println!("DIFFERENT: live (-) vs replayed (+):");
    for line in &verified.differences {
        println!("{line}");
    }
    Ok(false)
}
