//! Where a rebuild's time goes, for docs/benchmarks.md. Two measurements:
//!
//! - `raw`: the floor — 1,000,000 rows shaped like `replay_step` (the widest write of a
//!   rebuild) inserted with one UNNEST statement per batch into a plain table, in fresh
//!   schema `bench_raw`, with `synchronous_commit = off` as the rebuild has;
//! - `phases`: the CHAT stream read into memory (timed), then applied into a fresh schema
//!   in batches with every step of `projector::apply_in` timed on its own (the same calls
//!   in the same order).
//!
//! ```sh
//! DATABASE_URL=… cargo run --release -p projections --example rebuild_profile -- raw [rows] [batch]
//! DATABASE_URL=… NATS_URL=… cargo run --release -p projections --example rebuild_profile -- phases [batch]
//! ```

use std::str::FromStr;
use std::time::{Duration, Instant};

use common::config::{DatabaseArgs, NatsArgs};
use common::events::Envelope;
use futures::StreamExt;
use projections::projector::{CONVERSATIONS, fold};
use projections::read_models::{analytics, checkpoint, conversation, replay_step, tool_call, turn};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let database = DatabaseArgs {
        database_url: std::env::var("DATABASE_URL")?,
        database_max_connections: 4,
    };
    match args.first().map(String::as_str) {
        Some("raw") => {
            let rows = args.get(1).map_or(Ok(1_000_000), |a| a.parse())?;
            let batch = args.get(2).map_or(Ok(5_000), |a| a.parse())?;
            raw(&database, rows, batch).await
        }
        Some("phases") => {
            let batch = args.get(1).map_or(Ok(5_000), |a| a.parse())?;
            phases(&database, batch).await
        }
        _ => anyhow::bail!("usage: rebuild_profile raw [rows] [batch] | phases [batch]"),
    }
}

async fn scratch(database: &DatabaseArgs, schema: &str) -> anyhow::Result<PgPool> {
    let options = sqlx::postgres::PgConnectOptions::from_str(&database.database_url)?.options([
        ("search_path", format!("{schema},public")),
        ("synchronous_commit", "off".to_owned()),
    ]);
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await?)
}

async fn raw(database: &DatabaseArgs, rows: u64, batch: u64) -> anyhow::Result<()> {
    let pool = scratch(database, "bench_raw").await?;
    for statement in [
        "drop schema if exists bench_raw cascade",
        "create schema bench_raw",
        "create table bench_raw.step (seq bigint primary key, event_id uuid not null,
             thread_id text not null, turn_id uuid not null, kind text not null,
             occurred_at timestamptz not null, fields jsonb not null)",
        "create index on bench_raw.step (thread_id, seq)",
    ] {
        sqlx::query(statement).execute(&pool).await?;
    }
    let fields = serde_json::json!({"text": "Thanks for waiting — here is what I found.",
                                    "agent": "orders", "engine": "rules"});
    let started = Instant::now();
    let mut seq = 0u64;
    while seq < rows {
        let n = batch.min(rows - seq);
        let seqs: Vec<i64> = (seq + 1..=seq + n).map(|s| s as i64).collect();
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let threads: Vec<String> = seqs.iter().map(|s| format!("t-{}", s % 20_000)).collect();
        let turns: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let kinds: Vec<&str> = vec!["agent.replied"; n as usize];
        let times: Vec<OffsetDateTime> = vec![OffsetDateTime::now_utc(); n as usize];
        let fields: Vec<serde_json::Value> = vec![fields.clone(); n as usize];
        let mut tx = pool.begin().await?;
        sqlx::query(
            "insert into step (seq, event_id, thread_id, turn_id, kind, occurred_at, fields)
             select * from unnest($1::bigint[], $2::uuid[], $3::text[], $4::uuid[], $5::text[],
                                  $6::timestamptz[], $7::jsonb[])",
        )
        .bind(seqs)
        .bind(ids)
        .bind(threads)
        .bind(turns)
        .bind(kinds)
        .bind(times)
        .bind(fields)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        seq += n;
    }
    let elapsed = started.elapsed();
    println!(
        "raw: {rows} rows in {:.2}s = {:.0} rows/s (batches of {batch}, one UNNEST insert each)",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
    sqlx::query("drop schema bench_raw cascade")
        .execute(&pool)
        .await?;
    Ok(())
}

#[derive(Default)]
struct Clock(Vec<(&'static str, Duration)>);

impl Clock {
    fn add(&mut self, what: &'static str, since: Instant) -> Instant {
        let now = Instant::now();
        match self.0.iter_mut().find(|(w, _)| *w == what) {
            Some((_, d)) => *d += now - since,
            None => self.0.push((what, now - since)),
        }
        now
    }
}

async fn phases(database: &DatabaseArgs, batch: usize) -> anyhow::Result<()> {
    let nats = NatsArgs {
        nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        stream_replicas: 1,
        duplicate_window: Duration::from_secs(600),
        client_name: "rebuild-profile".into(),
        nats_user: std::env::var("NATS_USER").ok(),
        nats_password: std::env::var("NATS_PASSWORD").ok(),
        nats_tls_ca: None,
    };
    let (_client, js) = common::jetstream::connect(&nats).await?;
    let mut stream = js.get_stream(common::subjects::CHAT_STREAM).await?;
    let last = stream.info().await?.state.last_sequence;
    let live = projections::connect(database).await?;
    let schema = "bench_phases";
    projections::projector::rebuild::create_schema(&live, schema).await?;
    let pool = scratch(database, schema).await?;

    // Read and decode everything first, so the two are timed apart from the writes.
    let started = Instant::now();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            memory_storage: true,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await?;
    let mut raw = Vec::with_capacity(last as usize);
    while let Some(message) = messages.next().await {
        let message = message?;
        let seq = message
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        raw.push((seq, message.payload.clone())); // Bytes: a reference count
        if seq >= last {
            break;
        }
    }
    let read = started.elapsed();
    let started = Instant::now();
    let events: Vec<(u64, Envelope)> = raw
        .iter()
        .filter_map(|(seq, bytes)| Some((*seq, Envelope::from_json(bytes).ok()?)))
        .collect();
    let decode = started.elapsed();
    drop(raw);

    let mut clock = Clock::default();
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let chunk: Vec<(u64, &Envelope)> = chunk.iter().map(|(s, e)| (*s, e)).collect();
        let mut t = Instant::now();
        let mut tx = pool.begin().await?;
        replay_step::insert_many(&mut tx, &chunk).await?;
        t = clock.add("replay_step insert (incl. building jsonb fields)", t);
        let mut threads: Vec<&str> = chunk.iter().map(|(_, e)| e.thread_id.as_str()).collect();
        threads.sort_unstable();
        threads.dedup();
        let mut turns: Vec<Uuid> = chunk.iter().map(|(_, e)| *e.turn_id.as_uuid()).collect();
        turns.sort_unstable();
        turns.dedup();
        let context = fold::Context {
            waits: Default::default(),
            conversations: conversation::known(&mut tx, &threads)
                .await?
                .into_iter()
                .map(|(thread, status, agent)| (thread, (status, agent)))
                .collect(),
            turn_agents: turn::agents(&mut tx, &turns).await?.into_iter().collect(),
        };
        t = clock.add("context reads (conversation, turn)", t);
        let effects = fold::fold(&chunk, &context);
        t = clock.add("fold (CPU)", t);
        conversation::apply(&mut tx, &effects.conversations).await?;
        t = clock.add("conversation upsert", t);
        turn::apply(&mut tx, &effects.turns).await?;
        t = clock.add("turn upsert", t);
        tool_call::apply(&mut tx, &effects.tool_calls).await?;
        t = clock.add("tool_call upsert", t);
        analytics::apply(&mut tx, &effects.analytics).await?;
        t = clock.add("analytics_hourly upsert", t);
        checkpoint::save(&mut tx, CONVERSATIONS, chunk.last().map_or(0, |(s, _)| *s)).await?;
        tx.commit().await?;
        clock.add("checkpoint + commit", t);
    }
    let apply = started.elapsed();
    let n = events.len() as f64;
    println!("phases: {} events, batches of {batch}", events.len());
    println!(
        "  read from JetStream  {:>7.2}s  ({:.0} events/s)",
        read.as_secs_f64(),
        n / read.as_secs_f64()
    );
    println!(
        "  decode JSON          {:>7.2}s  ({:.0} events/s)",
        decode.as_secs_f64(),
        n / decode.as_secs_f64()
    );
    println!(
        "  apply (all below)    {:>7.2}s  ({:.0} events/s)",
        apply.as_secs_f64(),
        n / apply.as_secs_f64()
    );
    for (what, d) in &clock.0 {
        println!(
            "    {what:<50} {:>7.2}s  {:>4.1}%",
            d.as_secs_f64(),
            100.0 * d.as_secs_f64() / apply.as_secs_f64()
        );
    }
    projections::projector::rebuild::drop_schema(&live, schema).await?;
    Ok(())
}
