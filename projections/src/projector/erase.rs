//! A tombstone (`conversation.erased`) in a batch: the thread's rows leave every table, and
//! what its events added to the counters (`analytics_*`, `desk_*`) is taken back, so the
//! live tables equal a replay of the stream, which no longer holds those events. Events of
//! an erased thread that come after its tombstone are not projected.

use common::events::{ConversationErased, Envelope};

use super::fold;
use crate::read_models::{analytics, desk, erasure, replay_step};

/// Applies the tombstone at `seq`: the counts of the thread's stored events are subtracted
/// (its events folded alone, from nothing, are exactly what they added: every counter
/// depends only on the thread's own earlier events), then its rows are deleted and the
/// erasure recorded. Idempotent: a second tombstone finds no rows and subtracts nothing.
pub async fn apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    seq: u64,
    tombstone: &Envelope,
    erased: &ConversationErased,
) -> sqlx::Result<()> {
    let stored = replay_step::events_of(tx, tombstone.thread_id.as_str()).await?;
    if !stored.is_empty() {
        let events: Vec<(u64, &Envelope)> = stored.iter().map(|(seq, e)| (*seq, e)).collect();
        let added = fold::fold(&events, &fold::Context::default());
        let analytics: Vec<analytics::Delta> = added
            .analytics
            .iter()
            .map(analytics::Delta::negated)
            .collect();
        analytics::apply(tx, &analytics).await?;
        desk::apply(tx, &added.desk.negated()).await?;
        erasure::remove_empty_counters(tx).await?;
    }
    erasure::remove_thread(tx, seq, tombstone, erased).await
}
