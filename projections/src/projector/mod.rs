//! The projector: pull a batch, apply it in one transaction with the checkpoint, then
//! acknowledge. The checkpoint in Postgres is the truth: events at or below it are
//! skipped, so a redelivered batch changes nothing twice, and a batch that failed to
//! commit is simply applied again.

use std::time::{Duration, Instant};

use async_nats::jetstream::{Message, stream::Stream};
use common::events::Envelope;
use common::shutdown::CancellationToken;
use futures::StreamExt;
use sqlx::PgPool;

pub mod fold;
pub mod progress;
pub mod rebuild;

use crate::metrics::METRICS;
use crate::read_models::{analytics, checkpoint, conversation, replay_step, tool_call, turn};

/// Name of the conversation projection (its checkpoint row and consumer).
pub const CONVERSATIONS: &str = common::subjects::PROJECTOR_CONSUMER;

/// One event read from the stream: its sequence and, when it decodes, the event.
pub struct Delivered {
    pub seq: u64,
    pub event: Result<Envelope, common::events::DecodeError>,
}

/// Applies `batch` (in stream order) in one transaction and moves the checkpoint to its
/// last sequence. Events at or below `applied` are skipped. Returns the new checkpoint.
pub async fn apply_batch(pool: &PgPool, applied: u64, batch: &[Delivered]) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let (last, stored) = apply_in(&mut tx, applied, batch).await?;
    tx.commit().await?;
    METRICS.events_applied.inc_by(stored);
    Ok(last)
}

/// [`apply_batch`] inside a transaction the caller owns and commits (a rebuild's swap
/// applies its last events in the transaction that renames the schemas). Returns the new
/// checkpoint and how many events were stored for the first time.
pub async fn apply_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    applied: u64,
    batch: &[Delivered],
) -> sqlx::Result<(u64, u64)> {
    let Some(last) = batch.last().map(|d| d.seq) else {
        return Ok((applied, 0));
    };
    if last <= applied {
        return Ok((applied, 0));
    }
    let mut events: Vec<(u64, &Envelope)> = Vec::with_capacity(batch.len());
    for delivered in batch.iter().filter(|d| d.seq > applied) {
        match &delivered.event {
            Ok(event) => events.push((delivered.seq, event)),
            // Never a crash loop: the event is skipped and the checkpoint moves on.
            Err(err) => {
                tracing::error!(seq = delivered.seq, error = %err, "event skipped: it does not decode")
            }
        }
    }
    if !events.is_empty() {
        let new = replay_step::insert_many(tx, &events).await?;
        // Only events stored for the first time change the counters.
        if new.len() < events.len() {
            let new: std::collections::HashSet<u64> = new.into_iter().collect();
            events.retain(|(seq, _)| new.contains(seq));
        }
        let context = context(tx, &events).await?;
        let effects = fold::fold(&events, &context);
        conversation::apply(tx, &effects.conversations).await?;
        turn::apply(tx, &effects.turns).await?;
        tool_call::apply(tx, &effects.tool_calls).await?;
        analytics::apply(tx, &effects.analytics).await?;
    }
    checkpoint::save(tx, CONVERSATIONS, last).await?;
    // `events` now holds only the events stored for the first time.
    Ok((last, events.len() as u64))
}

/// What the tables already say about the batch's conversations and turns (two queries).
async fn context(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    events: &[(u64, &Envelope)],
) -> sqlx::Result<fold::Context> {
    let mut threads: Vec<&str> = events.iter().map(|(_, e)| e.thread_id.as_str()).collect();
    threads.sort_unstable();
    threads.dedup();
    let mut turns: Vec<uuid::Uuid> = events.iter().map(|(_, e)| *e.turn_id.as_uuid()).collect();
    turns.sort_unstable();
    turns.dedup();
    Ok(fold::Context {
        conversations: conversation::known(tx, &threads)
            .await?
            .into_iter()
            .map(|(thread, status, agent)| (thread, (status, agent)))
            .collect(),
        turn_agents: turn::agents(tx, &turns).await?.into_iter().collect(),
    })
}

/// Runs the projector until `shutdown`.
pub async fn run(
    pool: PgPool,
    stream: Stream,
    batch_size: usize,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut applied = checkpoint::load(&pool, CONVERSATIONS).await?;
    tracing::info!(checkpoint = applied, "projector running");
    'connect: while !shutdown.is_cancelled() {
        // Recreated at the checkpoint on every (re)connect: events a broken pull had in
        // flight would otherwise come back only after ack_wait, behind newer ones, and be
        // skipped as already applied.
        let consumer =
            match common::jetstream::ensure_projector_consumer(&stream, CONVERSATIONS, applied)
                .await
            {
                Ok(consumer) => consumer,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot create the projector consumer; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
        // Events flow continuously; whatever has arrived when the projector is ready is
        // one batch (up to `batch_size`): small batches when idle, large under load.
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch_size)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await;
        let mut batches = match messages {
            Ok(messages) => messages.ready_chunks(batch_size),
            Err(err) => {
                tracing::warn!(error = %err, "cannot pull events; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => break 'connect,
                chunk = batches.next() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let mut messages = Vec::with_capacity(chunk.len());
            let mut broken = false;
            for message in chunk {
                match message {
                    Ok(message) => messages.push(message),
                    Err(err) => {
                        tracing::warn!(error = %err, "pull error; reconnecting");
                        broken = true;
                    }
                }
            }
            if let Some(last) = messages.last() {
                let started = Instant::now();
                applied = apply_with_retry(&pool, applied, &messages, &shutdown).await;
                METRICS
                    .batch_seconds
                    .observe(started.elapsed().as_secs_f64());
                METRICS.checkpoint.set(applied as i64);
                if let Ok(info) = last.info() {
                    METRICS.lag_events.set(info.pending as i64);
                }
                if last.info().is_ok_and(|info| info.stream_sequence > applied) {
                    break 'connect; // shutdown came before the commit
                }
                // AckPolicy::All: acknowledging the last message acknowledges the batch.
                if let Err(err) = last.ack().await {
                    tracing::warn!(error = %err, "batch ack not sent; it will be redelivered and skipped");
                }
            }
            if broken {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Applies a batch, retrying while Postgres is unavailable: a batch is never dropped.
/// Returns the new checkpoint (the old one if shutdown came first).
async fn apply_with_retry(
    pool: &PgPool,
    applied: u64,
    messages: &[Message],
    shutdown: &CancellationToken,
) -> u64 {
    let batch: Vec<Delivered> = messages
        .iter()
        .filter_map(|m| {
            let seq = m.info().ok()?.stream_sequence;
            Some(Delivered {
                seq,
                event: Envelope::from_json(&m.payload),
            })
        })
        .collect();
    let mut delay = Duration::from_millis(100);
    loop {
        match apply_batch(pool, applied, &batch).await {
            Ok(seq) => return seq,
            Err(err) => {
                tracing::warn!(error = %err, "batch not applied; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return applied,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
