//! Rebuild the read models from the whole CHAT stream into a fresh schema while the live
//! tables keep serving, then swap the two schemas in one transaction
//! (docs/adr/004-rebuild-into-a-fresh-schema.md). [`verify`] does the same into a scratch
//! schema it never swaps, and compares the two copies row by row.
//!
//! The steps of [`rebuild`]:
//! 1. [`create_schema`]: `read_model_rebuild`, every table of `read_model` cloned empty;
//! 2. [`replay`]: the stream from sequence 1 up to its last sequence as read at the start,
//!    through a pool whose `search_path` is the new schema, with the projector's own fold
//!    ([`apply_batch_to_fresh_copy`]: large batches, `replay_step` (with `COPY`) and the
//!    other tables written at the same time on two connections, `synchronous_commit = off`, secondary
//!    indexes built once at the end — a lost or interrupted rebuild is redone);
//! 3. [`swap`]: one transaction on the live pool locks the live tables against writes,
//!    applies the events between the rebuild's checkpoint and the live one to the new
//!    tables, renames `read_model` away and the new schema to `read_model`, drops the old.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{
    self,
    consumer::{self, AckPolicy, DeliverPolicy},
    stream::Stream,
};
use common::config::DatabaseArgs;
use futures::{StreamExt, stream::BoxStream};
use sqlx::{PgPool, Postgres, Transaction};

use super::progress::Progress;
use super::replaced::{self, Replaced, StreamIdentity, Verdict};
use super::{CONVERSATIONS, Delivered, apply_batch_to_fresh_copy, apply_in};
use crate::READ_MODEL_SCHEMA;
use crate::read_models::checkpoint::{self, Position};
use crate::read_models::snapshot;

/// Where a rebuild fills its copy of the read models before the swap.
pub const REBUILD_SCHEMA: &str = "read_model_rebuild";
/// Where `verify` fills its copy; never swapped, dropped at the end.
pub const VERIFY_SCHEMA: &str = "read_model_verify";
/// The name the live schema has for the instant between the two renames of a swap.
const OLD_SCHEMA: &str = "read_model_old";
/// The table every batch of the projector writes first (see [`lock_live_tables`]).
const FIRST_WRITTEN: &str = "replay_step";
/// The table a batch writes last, in the same transaction.
const CHECKPOINT_TABLE: &str = "projection_checkpoint";

/// How the stream is read during a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reader {
    /// An ephemeral pull consumer without acks, fetching `batch` messages a time.
    Pull,
    /// The client's ordered consumer (ephemeral, flow-controlled, 500 messages a pull).
    Ordered,
}

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most events applied in one transaction.
    pub batch: usize,
    /// How the stream is read.
    pub reader: Reader,
    /// No progress lines on stderr.
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            batch: 5_000,
            reader: Reader::Pull,
            quiet: true,
        }
    }
}

/// Where the time of a replay went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Waiting for the next decoded batch (reading the stream and decoding JSON, where
    /// they are slower than applying).
    pub waiting_for_events: Duration,
    /// Applying batches: the fold and every statement of the batch, commits included.
    pub applying: Duration,
    /// Batches applied.
    pub batches: u64,
}

/// What a replay did.
#[derive(Debug, Clone, Copy)]
pub struct Replayed {
    /// Events read from the stream and handed to the batch writer.
    pub events: u64,
    /// The copy's checkpoint at the end.
    pub checkpoint: u64,
    pub elapsed: Duration,
    pub timings: Timings,
}

impl Replayed {
    /// Events per second of the replay.
    pub fn rate(&self) -> u64 {
        super::progress::rate(self.events, self.elapsed)
    }
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    pub replayed: Replayed,
    /// The live checkpoint at the swap: the new tables are exactly this far.
    pub live_checkpoint: u64,
    /// Events applied inside the swap's transaction (what the live projector applied
    /// during the replay beyond the replay's end).
    pub caught_up: u64,
    /// How long the swap's transaction held the live tables against writes.
    pub swap: Duration,
    /// Set when the live tables belonged to another stream (`stream_replaced`): they were
    /// replaced whole, nothing caught up from them.
    pub replaced: Option<Replaced>,
}

/// What a rebuild would do: `rebuild --dry-run`.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Events in the stream now.
    pub events: u64,
    pub first_seq: u64,
    /// Where the replay would stop.
    pub last_seq: u64,
    /// The live projection's checkpoint.
    pub live_checkpoint: u64,
    /// The live tables that would be cloned.
    pub tables: Vec<String>,
    /// A schema left by an interrupted rebuild, which would be dropped first.
    pub leftover: bool,
    /// Set when the live tables belong to another stream (`stream_replaced`).
    pub replaced: Option<Replaced>,
}

/// Reads what a rebuild would do, changing nothing.
pub async fn plan(live: &PgPool, stream: &Stream) -> anyhow::Result<Plan> {
    let state = stream_state(stream).await?;
    let identity = StreamIdentity::of(stream).await?;
    let position = checkpoint::position(live, CONVERSATIONS).await?;
    let leftover: bool = sqlx::query_scalar(
        "select exists (select 1 from information_schema.schemata where schema_name = $1)",
    )
    .bind(REBUILD_SCHEMA)
    .fetch_one(live)
    .await?;
    Ok(Plan {
        events: state.messages,
        first_seq: state.first_sequence,
        last_seq: state.last_sequence,
        live_checkpoint: position.last_seq,
        tables: live_tables(live).await?,
        leftover,
        replaced: match replaced::judge(&position, &identity) {
            Verdict::Replaced(replaced) => Some(replaced),
            Verdict::Same | Verdict::Unrecorded => None,
        },
    })
}

/// Rebuilds the read models from the whole stream and swaps them in; see the module
/// documentation for the steps.
pub async fn rebuild(
    live: &PgPool,
    database: &DatabaseArgs,
    stream: &Stream,
    options: &Options,
) -> anyhow::Result<Rebuilt> {
    let start = StreamIdentity::of(stream).await?;
    let last = start.last_seq;
    create_schema(live, REBUILD_SCHEMA).await?;
    let scratch = connect_scratch(database, REBUILD_SCHEMA).await?;
    let replayed = replay(&scratch, stream, 0, last, options, "rebuild").await;
    // Closed before the swap: its connections name a schema that is about to be renamed.
    scratch.close().await;
    let replayed = replayed?;
    let started = Instant::now();
    let (live_checkpoint, caught_up, replaced) =
        swap(live, stream, replayed.checkpoint, start, options).await?;
    Ok(Rebuilt {
        replayed,
        live_checkpoint,
        caught_up,
        swap: started.elapsed(),
        replaced,
    })
}

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct Verified {
    pub replayed: Replayed,
    /// The checkpoint both copies were compared at.
    pub checkpoint: u64,
    /// One line per difference (`snapshot::diff`); empty when the copies are equal.
    pub differences: Vec<String>,
}

/// Replays the stream into a scratch schema and compares it with the live tables once
/// both have applied the same events; drops the scratch schema.
///
/// The comparison holds `projection_checkpoint` in exclusive mode: the live projector's
/// next commit waits until both snapshots are read (REST keeps answering).
pub async fn verify(
    live: &PgPool,
    database: &DatabaseArgs,
    stream: &Stream,
    options: &Options,
    limit: usize,
) -> anyhow::Result<Verified> {
    create_schema(live, VERIFY_SCHEMA).await?;
    let scratch = connect_scratch(database, VERIFY_SCHEMA).await?;
    let result = verify_into(live, &scratch, stream, options, limit).await;
    scratch.close().await;
    drop_schema(live, VERIFY_SCHEMA).await?;
    result
}

async fn verify_into(
    live: &PgPool,
    scratch: &PgPool,
    stream: &Stream,
    options: &Options,
    limit: usize,
) -> anyhow::Result<Verified> {
    // Up to the live checkpoint, not the stream's end: the live tables are compared there.
    let position = checkpoint::position(live, CONVERSATIONS).await?;
    if let Verdict::Replaced(replaced) =
        replaced::judge(&position, &StreamIdentity::of(stream).await?)
    {
        anyhow::bail!(
            "{} ({}): there is nothing to compare; {}",
            replaced.describe(),
            replaced::REASON,
            replaced::REMEDY
        );
    }
    let start = position.last_seq;
    let mut replayed = replay(scratch, stream, 0, start, options, "verify").await?;
    let mut lock = live.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "lock table {READ_MODEL_SCHEMA}.{CHECKPOINT_TABLE} in exclusive mode"
    )))
    .execute(&mut *lock)
    .await?;
    let at = live_checkpoint(&mut lock).await?;
    if at > replayed.checkpoint {
        let quiet = Options {
            quiet: true,
            ..options.clone()
        };
        let more = replay(scratch, stream, replayed.checkpoint, at, &quiet, "verify").await?;
        replayed.events += more.events;
        replayed.checkpoint = more.checkpoint;
    }
    // Other connections of the live pool: they see what is committed, which the lock
    // keeps at `at`.
    let left = snapshot::take(live).await?;
    let right = snapshot::take(scratch).await?;
    lock.rollback().await?;
    Ok(Verified {
        replayed,
        checkpoint: at,
        differences: snapshot::diff(&left, &right, limit),
    })
}

/// The base tables of the live schema, from the catalogue.
pub async fn live_tables(live: &PgPool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select table_name::text from information_schema.tables
         where table_schema = $1 and table_type = 'BASE TABLE' order by table_name",
    )
    .bind(READ_MODEL_SCHEMA)
    .fetch_all(live)
    .await
}

/// Creates `schema` (dropping a leftover one first) with an empty clone of every live
/// table: columns, defaults, constraints, indexes (`like … including all`).
pub async fn create_schema(live: &PgPool, schema: &str) -> anyhow::Result<()> {
    let tables = live_tables(live).await?;
    anyhow::ensure!(
        !tables.is_empty(),
        "schema {READ_MODEL_SCHEMA} has no tables; run `smart-support migrate` first"
    );
    let mut tx = live.begin().await?;
    // Names are this module's constants and the catalogue's table names, quoted.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop schema if exists {schema} cascade"
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create schema {schema}")))
        .execute(&mut *tx)
        .await?;
    for table in &tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create table {schema}.\"{table}\" (like {READ_MODEL_SCHEMA}.\"{table}\" including all)"
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Drops `schema` and everything in it, if it exists.
pub async fn drop_schema(live: &PgPool, schema: &str) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop schema if exists {schema} cascade"
    )))
    .execute(live)
    .await?;
    Ok(())
}

/// A small pool on `schema` for a replay. `synchronous_commit = off`: a commit returns
/// before its WAL is flushed, so a crash may lose the last batches of the copy, which is
/// only ever swapped in after a complete replay (and redone otherwise).
pub async fn connect_scratch(database: &DatabaseArgs, schema: &str) -> anyhow::Result<PgPool> {
    let options = sqlx::postgres::PgConnectOptions::from_str(&database.database_url)
        .map_err(|err| anyhow::anyhow!("DATABASE_URL is not a PostgreSQL URL: {err}"))?
        .options([
            ("search_path", format!("{schema},public")),
            ("synchronous_commit", "off".to_owned()),
        ]);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("cannot connect to PostgreSQL")
}

/// Applies the stream's events after `from` up to `to` (inclusive) into the tables of
/// `pool`, in batches of `options.batch`; reading and decoding run in a task of their
/// own, a few batches ahead of the transactions.
pub async fn replay(
    pool: &PgPool,
    stream: &Stream,
    from: u64,
    to: u64,
    options: &Options,
    what: &'static str,
) -> anyhow::Result<Replayed> {
    let mut progress = Progress::new(what, to.saturating_sub(from), options.quiet);
    let mut timings = Timings::default();
    let mut applied = from;
    // Secondary indexes are built once at the end instead of row by row.
    let deferred = drop_secondary_indexes(pool).await?;
    if to > from {
        let (sender, mut batches) = tokio::sync::mpsc::channel::<Vec<Delivered>>(4);
        let reader = tokio::spawn(read(
            stream.clone(),
            from,
            to,
            options.batch,
            options.reader,
            sender,
        ));
        loop {
            let waited = Instant::now();
            let Some(batch) = batches.recv().await else {
                break;
            };
            timings.waiting_for_events += waited.elapsed();
            let started = Instant::now();
            applied = apply_batch_to_fresh_copy(pool, applied, &batch).await?;
            timings.applying += started.elapsed();
            timings.batches += 1;
            progress.advance(batch.len() as u64);
        }
        reader.await??;
        anyhow::ensure!(
            applied >= to,
            "the stream ended at {applied} before sequence {to}"
        );
    }
    for definition in deferred {
        sqlx::query(sqlx::AssertSqlSafe(definition))
            .execute(pool)
            .await?;
    }
    Ok(Replayed {
        events: progress.done(),
        checkpoint: applied,
        elapsed: progress.elapsed(),
        timings,
    })
}

/// Drops the indexes of the pool's schema that back no constraint (the keys and unique
/// constraints stay: the writes' `on conflict` needs them) and returns the definitions to
/// create after the replay: the live schema's own, so the copy's indexes get the live
/// names (`like … including all` would generate other names, and a migration that names
/// an index would miss it after a swap).
async fn drop_secondary_indexes(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    let secondary = |schema: &'static str| {
        sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(format!(
            "select i.indexname::text, i.indexdef::text from pg_indexes i
             where i.schemaname = {schema}
               and not exists (select 1 from pg_constraint c
                               join pg_class k on k.oid = c.conindid
                               join pg_namespace n on n.oid = k.relnamespace
                               where n.nspname = i.schemaname and k.relname = i.indexname)
             order by i.indexname"
        )))
    };
    let schema: String = sqlx::query_scalar("select current_schema()::text")
        .fetch_one(pool)
        .await?;
    for (name, _) in secondary("current_schema()").fetch_all(pool).await? {
        // The name comes from the catalogue; quoted.
        sqlx::query(sqlx::AssertSqlSafe(format!("drop index \"{name}\"")))
            .execute(pool)
            .await?;
    }
    let live = secondary("'read_model'").fetch_all(pool).await?;
    let from = format!(" ON {READ_MODEL_SCHEMA}.");
    let to = format!(" ON {schema}.");
    Ok(live
        .into_iter()
        .map(|(_, definition)| definition.replacen(&from, &to, 1))
        .collect())
}

/// Reads the events after `from` up to `to` and sends them decoded, in batches.
///
/// A read that breaks (the server restarted and took the ephemeral consumer with it, the
/// connection dropped, heartbeats stopped) is started again after the last event read,
/// up to [`READ_ATTEMPTS`] times in a row with growing pauses, so a long replay survives
/// a NATS restart instead of starting over.
async fn read(
    stream: Stream,
    from: u64,
    to: u64,
    batch: usize,
    reader: Reader,
    batches: tokio::sync::mpsc::Sender<Vec<Delivered>>,
) -> anyhow::Result<()> {
    let mut last = from;
    let mut out = Vec::with_capacity(batch);
    let mut failures = 0;
    loop {
        let broke = match messages(&stream, last, batch, reader).await {
            Ok(mut messages) => loop {
                let message = match messages.next().await {
                    Some(Ok(message)) => message,
                    Some(Err(err)) => break err,
                    None => break anyhow::anyhow!("the stream's messages ended"),
                };
                failures = 0;
                let seq = message
                    .info()
                    .map_err(|err| anyhow::anyhow!("a message without JetStream info: {err}"))?
                    .stream_sequence;
                if seq <= last {
                    continue; // already read before the read broke
                }
                last = seq;
                if seq <= to {
                    out.push(Delivered::from_stored(seq, &message.payload));
                }
                // Full batches, not whatever is ready: the end (`to`) is known, so waiting
                // for the rest of a batch never waits for events that may not come. (Chunks
                // of what was ready averaged 127 events in the first measured rebuild.)
                if out.len() == batch || seq >= to {
                    let full = std::mem::replace(&mut out, Vec::with_capacity(batch));
                    if !full.is_empty() && batches.send(full).await.is_err() {
                        return Ok(()); // the applier stopped; its error is the one reported
                    }
                }
                if seq >= to {
                    return Ok(());
                }
            },
            Err(err) => err,
        };
        failures += 1;
        if failures >= READ_ATTEMPTS {
            return Err(broke.context(format!(
                "reading the stream after sequence {last} failed {failures} times in a row"
            )));
        }
        tracing::warn!(
            error = %format!("{broke:#}"),
            after = last,
            "the replay's read broke; reading on after the last event read"
        );
        tokio::time::sleep(READ_PAUSE * 2u32.pow(failures - 1)).await;
    }
}

/// Reads in a row that may break before a replay gives up (see [`read`]).
const READ_ATTEMPTS: u32 = 6;
/// The pause after the first broken read; it doubles with each one after (0.5 s to 8 s).
const READ_PAUSE: Duration = Duration::from_millis(500);
/// How often the server tells the replay's pull that it is alive: a read hears of a
/// consumer lost in a restart after two missed heartbeats.
const READ_HEARTBEAT: Duration = Duration::from_secs(2);

/// The stream's messages from `from + 1` on, through an ephemeral consumer.
async fn messages(
    stream: &Stream,
    from: u64,
    batch: usize,
    reader: Reader,
) -> anyhow::Result<BoxStream<'static, anyhow::Result<jetstream::Message>>> {
    let deliver_policy = DeliverPolicy::ByStartSequence {
        start_sequence: from + 1,
    };
    let filter_subject = common::subjects::CHAT_SUBJECTS.to_owned();
    Ok(match reader {
        Reader::Pull => {
            let consumer = stream
                .create_consumer(consumer::pull::Config {
                    description: Some("rebuild: a replay of the whole stream".into()),
                    filter_subject,
                    deliver_policy,
                    ack_policy: AckPolicy::None,
                    memory_storage: true,
                    inactive_threshold: Duration::from_secs(60),
                    ..Default::default()
                })
                .await
                .map_err(|err| anyhow::anyhow!("cannot create the replay consumer: {err}"))?;
            consumer
                .stream()
                .max_messages_per_batch(batch)
                .heartbeat(READ_HEARTBEAT)
                .messages()
                .await?
                .map(|m| m.map_err(anyhow::Error::from))
                .boxed()
        }
        Reader::Ordered => stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject,
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|err| anyhow::anyhow!("cannot create the replay consumer: {err}"))?
            .messages()
            .await?
            .map(|m| m.map_err(anyhow::Error::from))
            .boxed(),
    })
}

/// The stream's counters now.
async fn stream_state(stream: &Stream) -> anyhow::Result<jetstream::stream::State> {
    let mut stream = stream.clone();
    Ok(stream
        .info()
        .await
        .map_err(|err| anyhow::anyhow!("cannot read the stream's state: {err}"))?
        .state
        .clone())
}

/// The swap, in one transaction on the live pool: lock the live tables against writes,
/// bring the rebuilt tables to the live checkpoint, record the stream they were replayed
/// from, rename the schemas, drop the old one. Returns the live checkpoint, how many
/// events were applied to catch up, and the live tables' [`Replaced`] when they belonged
/// to another stream.
///
/// A rebuild that is ahead of the live projector (it replayed events the projector has
/// not applied yet) is swapped in as it is: the projector's next batches find those
/// events already stored (`replay_step` dedupes by sequence) and change nothing twice.
///
/// Live tables of another stream (`stream_replaced`: the stream was deleted and created
/// again since they were projected) are not caught up from: their checkpoint counts in the
/// old stream. The rebuilt tables replace them whole, and the projector, stopped while
/// they did not match, goes on from the rebuilt checkpoint.
pub async fn swap(
    live: &PgPool,
    stream: &Stream,
    rebuilt: u64,
    replayed_from: StreamIdentity,
    options: &Options,
) -> anyhow::Result<(u64, u64, Option<Replaced>)> {
    let mut tx = live.begin().await?;
    lock_live_tables(live, &mut tx).await?;
    let now = StreamIdentity::of(stream).await?;
    anyhow::ensure!(
        now.created == replayed_from.created,
        "the CHAT stream was replaced during the rebuild (created {} at the start, {} now): \
         nothing was swapped; run the rebuild again",
        replayed_from.created,
        now.created
    );
    let position = live_position(&mut tx).await?;
    let replaced = match replaced::judge(&position, &now) {
        Verdict::Replaced(replaced) => Some(replaced),
        Verdict::Same | Verdict::Unrecorded => None,
    };
    let at = if replaced.is_some() {
        rebuilt
    } else {
        position.last_seq
    };
    let mut caught_up = 0;
    // The rest of this transaction writes the rebuilt tables; the live ones stay locked
    // until the commit.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "set local search_path = {REBUILD_SCHEMA}, public"
    )))
    .execute(&mut *tx)
    .await?;
    if at > rebuilt {
        let (sender, mut batches) = tokio::sync::mpsc::channel(4);
        let reader = tokio::spawn(read(
            stream.clone(),
            rebuilt,
            at,
            options.batch,
            options.reader,
            sender,
        ));
        let mut applied = rebuilt;
        while let Some(batch) = batches.recv().await {
            caught_up += batch.len() as u64;
            applied = apply_in(&mut tx, applied, &batch).await?.0;
        }
        reader.await??;
        anyhow::ensure!(applied == at, "the catch-up stopped at {applied}, not {at}");
    }
    checkpoint::record_stream(&mut *tx, CONVERSATIONS, now.created).await?;
    for statement in [
        format!("alter schema {READ_MODEL_SCHEMA} rename to {OLD_SCHEMA}"),
        format!("alter schema {REBUILD_SCHEMA} rename to {READ_MODEL_SCHEMA}"),
        format!("drop schema {OLD_SCHEMA} cascade"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    match &replaced {
        Some(replaced) => tracing::warn!(
            checkpoint = at,
            old_checkpoint = replaced.checkpoint,
            "rebuilt read models swapped in for tables of another stream ({})",
            replaced.describe()
        ),
        None => tracing::info!(checkpoint = at, caught_up, "rebuilt read models swapped in"),
    }
    Ok((at, caught_up, replaced))
}

/// Locks every live table in `exclusive` mode (reads go on, writes wait), in the order a
/// projector batch writes them: `replay_step` first, `projection_checkpoint` last. A batch
/// in flight already holds `replay_step`, so the lock waits for its commit instead of
/// taking the checkpoint first and deadlocking with it at the `drop schema`.
async fn lock_live_tables(live: &PgPool, tx: &mut Transaction<'_, Postgres>) -> sqlx::Result<()> {
    let mut tables = live_tables(live).await?;
    tables.sort_by_key(|t| match t.as_str() {
        FIRST_WRITTEN => 0,
        CHECKPOINT_TABLE => 2,
        _ => 1,
    });
    let list = tables
        .iter()
        .map(|t| format!("{READ_MODEL_SCHEMA}.\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "lock table {list} in exclusive mode"
    )))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The live checkpoint and its stream, read inside `tx` (schema-qualified).
async fn live_position(tx: &mut Transaction<'_, Postgres>) -> sqlx::Result<Position> {
    let row: Option<(i64, Option<time::OffsetDateTime>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select last_seq, stream_created_at from {READ_MODEL_SCHEMA}.{CHECKPOINT_TABLE} where projection = $1"
    )))
    .bind(CONVERSATIONS)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(
        row.map_or_else(Position::default, |(seq, created)| Position {
            last_seq: seq as u64,
            stream_created: created,
        }),
    )
}

/// The live checkpoint, read inside `tx` (schema-qualified: `tx` may have moved its
/// `search_path`).
async fn live_checkpoint(tx: &mut Transaction<'_, Postgres>) -> sqlx::Result<u64> {
    let seq: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select last_seq from {READ_MODEL_SCHEMA}.{CHECKPOINT_TABLE} where projection = $1"
    )))
    .bind(CONVERSATIONS)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(seq.unwrap_or(0) as u64)
}
