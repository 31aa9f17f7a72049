//! The projector: pull a batch, apply it in one transaction with the checkpoint, then
//! acknowledge. The checkpoint in Postgres is the truth: events at or below it are
//! skipped, so a redelivered batch changes nothing twice, and a batch that failed to
//! commit is simply applied again.

use std::time::{Duration, Instant};

use async_nats::jetstream::{
    Message,
    stream::{LastRawMessageErrorKind, Stream},
};
use std::borrow::Cow;

use common::events::{DecodeError, Envelope, Payload};
use common::shutdown::CancellationToken;
use futures::StreamExt;
use sqlx::PgPool;
use tokio_util::task::AbortOnDropHandle;

pub mod erase;
pub mod fold;
pub mod leader;
pub mod progress;
pub mod rebuild;
pub mod replaced;
pub mod trace;

use crate::metrics::METRICS;
use crate::read_models::{
    analytics, checkpoint, conversation, desk, erasure, handoff, replay_step, tool_call, turn,
};
use leader::Leadership;
use replaced::{Replaced, StreamIdentity, Verdict};

/// Name of the conversation projection (its checkpoint row and consumer).
pub const CONVERSATIONS: &str = common::subjects::PROJECTOR_CONSUMER;

/// One event read from the stream: its sequence and, when it decodes, the event.
pub struct Delivered {
    pub seq: u64,
    pub event: Result<Envelope, DecodeError>,
}

impl Delivered {
    /// The event stored at `seq`, decoded for the read models ([`decode`]).
    pub fn from_stored(seq: u64, payload: &[u8]) -> Delivered {
        Delivered {
            seq,
            event: decode(payload),
        }
    }
}

/// Decodes an event read from the stream for the read models. PostgreSQL cannot store the
/// NUL character (U+0000) in `text` or `jsonb`, and a batch it refuses would be retried for
/// ever, so the projection's copy of an event has each NUL replaced by U+FFFD (the stream
/// keeps the original). The ingress refuses NUL in chat content (`content_contains_nul`);
/// a NUL can still come from a tool's result, a model's reply or an event published by hand.
pub fn decode(payload: &[u8]) -> Result<Envelope, DecodeError> {
    Envelope::from_json(&without_nul(payload))
}

/// `json` with every `\u0000` escape written as `\ufffd`. In valid JSON a NUL can only be
/// that escape, inside a string (a raw control character is not JSON).
fn without_nul(json: &[u8]) -> Cow<'_, [u8]> {
    const NUL: &[u8] = b"\\u0000";
    if !json.windows(NUL.len()).any(|window| window == NUL) {
        return Cow::Borrowed(json);
    }
    let mut out = Vec::with_capacity(json.len());
    let mut rest = json;
    while let Some((&byte, after)) = rest.split_first() {
        if byte != b'\\' {
            out.push(byte);
            rest = after;
        } else if rest.starts_with(NUL) {
            out.extend_from_slice(b"\\ufffd");
            rest = &rest[NUL.len()..];
        } else {
            // Any other escape, `\\` included, is copied whole: its second byte is never
            // the start of an escape.
            let escape = rest.len().min(2);
            out.extend_from_slice(&rest[..escape]);
            rest = &rest[escape..];
        }
    }
    Cow::Owned(out)
}

/// Applies `batch` (in stream order) in one transaction and moves the checkpoint to its
/// last sequence. Events at or below `applied` are skipped. Returns the new checkpoint.
/// `db` is a pool or a connection (the active projector's, which holds its lock).
pub async fn apply_batch<'c, A>(db: A, applied: u64, batch: &[Delivered]) -> sqlx::Result<u64>
where
    A: sqlx::Acquire<'c, Database = sqlx::Postgres>,
{
    let mut tx = db.begin().await?;
    let (last, stored) = apply_in(&mut tx, applied, batch).await?;
    tx.commit().await?;
    METRICS.events_applied.inc_by(stored);
    let skipped = batch
        .iter()
        .filter(|d| d.seq > applied && d.event.is_err())
        .count();
    METRICS.events_skipped.inc_by(skipped as u64);
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
                // A decode error may quote the event (a value of the wrong type): not its text.
                tracing::error!(seq = delivered.seq, error = %common::text::log_safe(&err.to_string()), "event skipped: it does not decode")
            }
        }
    }
    let stored = if events.is_empty() {
        0
    } else {
        apply_events(tx, events).await?
    };
    checkpoint::save(tx, CONVERSATIONS, last).await?;
    Ok((last, stored))
}

/// Stores and folds decoded events (in stream order, all new to the checkpoint); returns
/// how many were stored for the first time. A tombstone (`conversation.erased`) splits the
/// batch: what comes before it is applied first, then the thread is erased
/// ([`erase::apply`]); events of an erased thread are left out, before the
/// tombstone as after it (one query per batch finds the threads erased earlier).
async fn apply_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    events: Vec<(u64, &Envelope)>,
) -> sqlx::Result<u64> {
    let mut threads: Vec<&str> = events.iter().map(|(_, e)| e.thread_id.as_str()).collect();
    threads.sort_unstable();
    threads.dedup();
    let mut erased = erasure::erased(tx, &threads).await?;
    let mut stored = 0;
    let mut pending: Vec<(u64, &Envelope)> = Vec::with_capacity(events.len());
    for (seq, event) in events {
        if let Payload::ConversationErased(tombstone) = &event.payload {
            stored += apply_stored(tx, std::mem::take(&mut pending)).await?;
            erase::apply(tx, seq, event, tombstone).await?;
            erased.insert(event.thread_id.to_string());
            stored += 1;
        } else if !erased.contains(event.thread_id.as_str()) {
            pending.push((seq, event));
        }
    }
    Ok(stored + apply_stored(tx, pending).await?)
}

/// `replay_step` first, then every other table for the events stored for the first time.
async fn apply_stored(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    mut events: Vec<(u64, &Envelope)>,
) -> sqlx::Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let new = replay_step::store(tx, &events).await?;
    // Only events stored for the first time change the counters.
    if new.len() < events.len() {
        let new: std::collections::HashSet<u64> = new.into_iter().collect();
        let (fresh, again): (Vec<_>, Vec<_>) =
            events.into_iter().partition(|(seq, _)| new.contains(seq));
        report_conflicts(tx, &again).await?;
        events = fresh;
    }
    apply_folded(tx, &events).await?;
    Ok(events.len() as u64)
}

/// Events delivered again are the same events at the same sequences. Another event at a
/// sequence the projection holds means the stream was rewritten under it (a server that
/// lost what it had delivered and stored new messages at those sequences): the read models
/// no longer match the stream, and only a rebuild makes them. Logged and counted
/// (`smart_support_projection_sequence_conflicts_total`); the batch goes on as before.
async fn report_conflicts(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    again: &[(u64, &Envelope)],
) -> sqlx::Result<()> {
    let conflicts = replay_step::conflicts(tx, again).await?;
    for (seq, stored, delivered) in &conflicts {
        tracing::error!(
            seq,
            %stored,
            %delivered,
            "the stream holds another event at a sequence the read models already applied: they no longer match the stream; run smart-support rebuild"
        );
    }
    METRICS.sequence_conflicts.inc_by(conflicts.len() as u64);
    Ok(())
}

/// Every table but `replay_step`: reads what the tables know, folds, writes the deltas.
async fn apply_folded(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    events: &[(u64, &Envelope)],
) -> sqlx::Result<()> {
    let context = context(tx, events).await?;
    let effects = fold::fold(events, &context);
    conversation::apply(tx, &effects.conversations).await?;
    turn::apply(tx, &effects.turns).await?;
    tool_call::apply(tx, &effects.tool_calls).await?;
    handoff::apply(tx, &effects.handoffs).await?;
    desk::apply(tx, &effects.desk).await?;
    analytics::apply(tx, &effects.analytics).await
}

/// [`apply_batch`] for a copy that only a rebuild writes, from an empty start: every
/// event is new, so `replay_step` and the other tables are written at the same time on
/// two connections (two transactions), which lets PostgreSQL use both cores. The two
/// commits are not atomic together: a crash between them leaves the copy half-written,
/// which is fine only because an interrupted rebuild is thrown away and redone.
pub async fn apply_batch_to_fresh_copy(
    pool: &PgPool,
    applied: u64,
    batch: &[Delivered],
) -> sqlx::Result<u64> {
    let Some(last) = batch.last().map(|d| d.seq).filter(|&last| last > applied) else {
        return Ok(applied);
    };
    let mut events: Vec<(u64, &Envelope)> = batch
        .iter()
        .filter(|d| d.seq > applied)
        .filter_map(|d| d.event.as_ref().ok().map(|event| (d.seq, event)))
        .collect();
    // A tombstone deletes rows the other transaction may be writing: the batch goes in one.
    if events
        .iter()
        .any(|(_, e)| matches!(e.payload, Payload::ConversationErased(_)))
    {
        return apply_batch(pool, applied, batch).await;
    }
    let mut threads: Vec<&str> = events.iter().map(|(_, e)| e.thread_id.as_str()).collect();
    threads.sort_unstable();
    threads.dedup();
    let erased = erasure::erased(&mut *pool.acquire().await?, &threads).await?;
    events.retain(|(_, e)| !erased.contains(e.thread_id.as_str()));
    let steps = async {
        let mut tx = pool.begin().await?;
        replay_step::copy_many(&mut tx, &events).await?;
        tx.commit().await
    };
    let rest = async {
        let mut tx = pool.begin().await?;
        apply_folded(&mut tx, &events).await?;
        checkpoint::save(&mut tx, CONVERSATIONS, last).await?;
        tx.commit().await
    };
    let (steps, rest) = tokio::join!(steps, rest);
    steps?;
    rest?;
    Ok(last)
}

/// What the tables already say about the batch's conversations and turns (two queries).
async fn context(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    events: &[(u64, &Envelope)],
) -> sqlx::Result<fold::Context> {
    let mut threads: Vec<&str> = events.iter().map(|(_, e)| e.thread_id.as_str()).collect();
    threads.sort_unstable();
    threads.dedup();
    let turns = fold::turns_to_look_up(events);
    Ok(fold::Context {
        conversations: conversation::known(tx, &threads)
            .await?
            .into_iter()
            .map(|(thread, status, agent)| (thread, (status, agent)))
            .collect(),
        turn_agents: turn::agents(tx, &turns).await?.into_iter().collect(),
        // Only an operator's reply needs the running wait: the agents' batches skip the read.
        waits: if events
            .iter()
            .any(|(_, e)| matches!(e.payload, common::events::Payload::OperatorReplied(_)))
        {
            handoff::waits(tx, &threads).await?.into_iter().collect()
        } else {
            Default::default()
        },
    })
}

/// Longest a batch waits, from its first event, for more events to fill it.
const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// Runs the projector until `shutdown`: standby until this instance holds the
/// projection's lock (see [`leader`]), then active until the lock is lost, and again.
pub async fn run(
    pool: PgPool,
    stream: Stream,
    batch_size: usize,
    standby_poll: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    while let Some(mut leader) =
        Leadership::acquire(&pool, CONVERSATIONS, standby_poll, &shutdown).await
    {
        match project(&pool, &stream, &mut leader, batch_size, &shutdown).await {
            Stop::Shutdown => {
                leader.release().await;
                break;
            }
            Stop::LostLock => leader.step_down(),
        }
    }
    Ok(())
}

/// Why an active projector stopped.
enum Stop {
    Shutdown,
    /// The lock session broke or may have: another instance may be active now.
    LostLock,
}

/// The active projector's pull loop, while `leader` holds the lock.
async fn project(
    pool: &PgPool,
    stream: &Stream,
    leader: &mut Leadership,
    batch_size: usize,
    shutdown: &CancellationToken,
) -> Stop {
    let mut check = tokio::time::interval(leader.check_every());
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running = false;
    'connect: while !shutdown.is_cancelled() {
        if !leader.holds().await {
            return Stop::LostLock;
        }
        // Loaded after the lock is taken (the previous holder's last commit is visible) and
        // again on every reconnect: a rebuild may have swapped in another checkpoint.
        let mut applied = match our_stream(pool, stream, leader, shutdown).await {
            Ok(applied) => applied,
            Err(stop) => return stop,
        };
        if !running {
            running = true;
            tracing::info!(checkpoint = applied, "projector running");
        }
        // Recreated at the checkpoint on every (re)connect: events a broken pull had in
        // flight would otherwise come back only after ack_wait, behind newer ones, and be
        // skipped as already applied.
        let consumer = match common::jetstream::ensure_projector_consumer(
            stream,
            CONVERSATIONS,
            applied,
        )
        .await
        {
            Ok(consumer) => consumer,
            Err(err) => {
                tracing::warn!(error = %err, "cannot create the projector consumer; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // Events flow continuously. A batch is what arrives within BATCH_WINDOW of its first
        // event, up to `batch_size`: one event when idle, full batches when behind. Taking
        // only what was ready at once gave batches of ~130 events while catching up, and a
        // batch costs seven statements whatever its size: the projector fell behind at
        // 2,500 messages/s (docs/benchmarks.md).
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch_size)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await;
        let batches = match messages {
            Ok(messages) => Box::pin(tokio_stream::StreamExt::chunks_timeout(
                messages,
                batch_size,
                BATCH_WINDOW,
            )),
            Err(err) => {
                tracing::warn!(error = %err, "cannot pull events; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // The next batch is pulled and decoded while this one is applied: waiting for the
        // pull after each commit left PostgreSQL idle for half of every batch under load.
        let (ready, mut pulled) = tokio::sync::mpsc::channel(PULL_AHEAD);
        let _reader = AbortOnDropHandle::new(tokio::spawn(pull(batches, ready)));
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break 'connect,
                // Idle or not, a lost lock stops the projector within one interval.
                _ = check.tick() => {
                    if !leader.holds().await {
                        return Stop::LostLock;
                    }
                    // A stream deleted and created again under a running projector: stop
                    // before its events are applied against the old checkpoint.
                    if let Ok(now) = StreamIdentity::of(stream).await
                        && let Ok(position) = checkpoint::position(pool, CONVERSATIONS).await
                        && matches!(replaced::judge(&position, &now), Verdict::Replaced(_))
                    {
                        break;
                    }
                    continue;
                }
                next = pulled.recv() => next,
            };
            // The pull ended or broke: reconnect, from the checkpoint.
            let Some(next) = next else { break };
            // Deliveries can be lost in flight, e.g. when the consumer's leader changes on a
            // NATS cluster (found by cli/tests/e2e/cluster_failover.rs): the next batch then
            // starts past the gap, and acknowledging it (AckPolicy::All) would skip the lost
            // events for good. The consumer delivers every sequence after the checkpoint, so
            // a gap is either a lost delivery or a message removed from the stream.
            if let Some(missing) = first_missing(applied, &next.batch)
                && !removed_from_stream(stream, missing).await
            {
                tracing::warn!(
                    missing,
                    checkpoint = applied,
                    "an event never arrived; pulling again from the checkpoint"
                );
                break;
            }
            let started = Instant::now();
            applied = match apply_with_retry(leader, applied, &next.batch, shutdown).await {
                Ok(applied) => applied,
                Err(stop) => return stop,
            };
            METRICS
                .batch_seconds
                .observe(started.elapsed().as_secs_f64());
            METRICS.checkpoint.set(applied as i64);
            if let Some(pending) = next.pending {
                METRICS.lag_events.set(pending as i64);
            }
            // AckPolicy::All: acknowledging the last message acknowledges the batch.
            if let Err(err) = next.last.ack().await {
                tracing::warn!(error = %err, "batch ack not sent; it will be redelivered and skipped");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Stop::Shutdown
}

/// Waits until the checkpoint counts in `stream` ([`replaced`]) and returns it. A checkpoint
/// that records no stream yet is given this one; one of another stream stops the projector
/// here (`projection_stream_replaced` 1, an error in the log naming the remedy) until a
/// rebuild has replayed the stream and recorded it, checked every `check_every`.
async fn our_stream(
    pool: &PgPool,
    stream: &Stream,
    leader: &mut Leadership,
    shutdown: &CancellationToken,
) -> Result<u64, Stop> {
    let mut said: Option<Replaced> = None;
    loop {
        let checked = async {
            let position = checkpoint::position(pool, CONVERSATIONS).await?;
            let now = StreamIdentity::of(stream).await?;
            anyhow::Ok((position, now))
        };
        match checked.await {
            Ok((position, now)) => match replaced::judge(&position, &now) {
                Verdict::Same => {
                    if said.is_some() {
                        tracing::info!(
                            checkpoint = position.last_seq,
                            "the read models belong to the stream again; projecting"
                        );
                    }
                    METRICS.stream_replaced.set(0);
                    return Ok(position.last_seq);
                }
                // On the lock's connection: a projector that lost its lock records nothing.
                Verdict::Unrecorded => {
                    match checkpoint::record_stream(leader.connection(), CONVERSATIONS, now.created)
                        .await
                    {
                        Ok(()) => {
                            tracing::info!(
                                checkpoint = position.last_seq,
                                stream_created = %now.created,
                                "the checkpoint now records the stream it counts in"
                            );
                            continue;
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "cannot record the checkpoint's stream");
                            if !leader.holds().await {
                                return Err(Stop::LostLock);
                            }
                        }
                    }
                }
                Verdict::Replaced(replaced) => {
                    METRICS.stream_replaced.set(1);
                    // Said once, and again only when something changed.
                    if said.as_ref() != Some(&replaced) {
                        tracing::error!(
                            reason = replaced::REASON,
                            checkpoint = replaced.checkpoint,
                            stream_last_seq = replaced.stream.last_seq,
                            "{}; {}",
                            replaced.describe(),
                            replaced::REMEDY
                        );
                        said = Some(replaced);
                    }
                }
            },
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot check the checkpoint against the stream; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(Stop::Shutdown),
            _ = tokio::time::sleep(leader.check_every()) => {}
        }
        if !leader.holds().await {
            return Err(Stop::LostLock);
        }
    }
}

/// The first sequence after `applied` that `batch` (in stream order) skips, if any.
fn first_missing(applied: u64, batch: &[Delivered]) -> Option<u64> {
    let mut expected = applied + 1;
    for delivered in batch {
        if delivered.seq > expected {
            return Some(expected);
        }
        expected = expected.max(delivered.seq + 1);
    }
    None
}

/// Whether the stream no longer holds message `seq` (removed by a limit, a purge or a
/// delete). Asked of the stream's leader (not a direct get, which a lagging replica may
/// answer); when the answer is unclear the message counts as present, so the projector
/// pulls again rather than skip it.
async fn removed_from_stream(stream: &Stream, seq: u64) -> bool {
    match stream.get_raw_message(seq).await {
        Ok(_) => false,
        Err(err) => matches!(err.kind(), LastRawMessageErrorKind::NoMessageFound),
    }
}

/// Batches pulled ahead of the one being applied.
const PULL_AHEAD: usize = 2;

/// A batch pulled and decoded, waiting to be applied.
struct Pulled {
    batch: Vec<Delivered>,
    /// Its last message, acknowledged once the batch is committed.
    last: Message,
    /// Messages the consumer still had for this projector when the last one was sent.
    pending: Option<u64>,
    /// Its events' spans while spans are exported; they end once the batch is acknowledged.
    _spans: trace::EventSpans,
}

/// Reads batches from the pull and hands them over decoded, until the pull ends, breaks
/// (what it read before the error is handed over first) or the receiver is gone.
async fn pull<S, E>(mut batches: S, ready: tokio::sync::mpsc::Sender<Pulled>)
where
    S: futures::Stream<Item = Vec<Result<Message, E>>> + Unpin,
    E: std::fmt::Display,
{
    while let Some(chunk) = batches.next().await {
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
        let batch: Vec<Delivered> = messages
            .iter()
            .filter_map(|m| {
                let seq = m.info().ok()?.stream_sequence;
                Some(Delivered::from_stored(seq, &m.payload))
            })
            .collect();
        let spans = trace::EventSpans::of(&messages);
        if let Some(last) = messages.pop() {
            let pending = last.info().ok().map(|info| info.pending);
            let pulled = Pulled {
                batch,
                last,
                pending,
                _spans: spans,
            };
            if ready.send(pulled).await.is_err() {
                return;
            }
        }
        if broken {
            return;
        }
    }
}

/// Applies a batch on the lock's connection, retrying while the lock is held: a batch is
/// never dropped. Returns the new checkpoint, or why it stopped first.
async fn apply_with_retry(
    leader: &mut Leadership,
    applied: u64,
    batch: &[Delivered],
    shutdown: &CancellationToken,
) -> Result<u64, Stop> {
    let mut delay = Duration::from_millis(100);
    loop {
        match apply_batch(leader.connection(), applied, batch).await {
            Ok(seq) => return Ok(seq),
            Err(err) => {
                if !leader.holds().await {
                    return Err(Stop::LostLock);
                }
                tracing::warn!(error = %err, "batch not applied; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(Stop::Shutdown),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(seqs: &[u64]) -> Vec<Delivered> {
        seqs.iter()
            .map(|&seq| Delivered {
                seq,
                event: Envelope::from_json(b"{}"),
            })
            .collect()
    }

    fn content(payload: &[u8]) -> String {
        match decode(payload).unwrap().payload {
            common::events::Payload::MessageReceived(message) => message.content,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn message(content_json: &str) -> Vec<u8> {
        format!(
            r#"{{"event_id":"00000000-0000-0000-0000-000000000001","schema_version":1,"thread_id":"t","turn_id":"00000000-0000-0000-0000-000000000002","occurred_at":"2026-11-25T12:00:00Z","kind":"message.received","content":{content_json}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_nul_character_is_stored_as_the_replacement_character() {
        assert_eq!(
            content(&message(r#""a\u0000b\u0000""#)),
            "a\u{fffd}b\u{fffd}"
        );
    }

    #[test]
    fn an_escaped_backslash_before_u0000_is_text_not_a_nul() {
        assert_eq!(
            content(&message(r#""a\\u0000 \\\u0000""#)),
            "a\\u0000 \\\u{fffd}"
        );
    }

    #[test]
    fn events_without_a_nul_are_decoded_unchanged() {
        let payload = message(r#""tab\t quote\" \ud83d\ude00 \u00e9""#);
        assert!(matches!(without_nul(&payload), Cow::Borrowed(_)));
        assert_eq!(content(&payload), "tab\t quote\" \u{1f600} \u{e9}");
    }

    #[test]
    fn a_batch_that_follows_the_checkpoint_misses_nothing() {
        assert_eq!(first_missing(4, &delivered(&[5, 6, 7])), None);
        assert_eq!(first_missing(0, &delivered(&[])), None);
    }

    #[test]
    fn events_at_or_below_the_checkpoint_are_no_gap() {
        assert_eq!(first_missing(6, &delivered(&[5, 6, 7, 8])), None);
    }

    #[test]
    fn a_batch_that_starts_past_the_checkpoint_misses_the_next_event() {
        assert_eq!(first_missing(514, &delivered(&[519, 520])), Some(515));
    }

    #[test]
    fn a_hole_inside_a_batch_is_found() {
        assert_eq!(first_missing(4, &delivered(&[5, 6, 9, 10])), Some(7));
    }
}
