//! `conversation`: one row per thread with its lifecycle and counters.

use common::events::{Envelope, Payload};
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

/// Longest preview kept.
const PREVIEW_CHARS: usize = 200;

/// What a batch changes in one conversation row.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub thread_id: String,
    pub first_at: OffsetDateTime,
    pub last_at: OffsetDateTime,
    pub messages: i32,
    pub turns: i32,
    /// Agent of the batch's latest reply.
    pub agent: Option<String>,
    /// The batch's latest message or reply text.
    pub preview: Option<String>,
    pub first_seq: i64,
    pub last_seq: i64,
}

/// Folds new events (in stream order) into one delta per conversation. Pure: the
/// rules of the fold are tested without a database.
pub fn fold(events: &[(u64, &Envelope)]) -> Vec<Delta> {
    let mut deltas: Vec<Delta> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (seq, event) in events {
        let slot = *index.entry(event.thread_id.as_str()).or_insert_with(|| {
            deltas.push(Delta {
                thread_id: event.thread_id.to_string(),
                first_at: event.occurred_at,
                last_at: event.occurred_at,
                messages: 0,
                turns: 0,
                agent: None,
                preview: None,
                first_seq: *seq as i64,
                last_seq: *seq as i64,
            });
            deltas.len() - 1
        });
        let delta = &mut deltas[slot];
        delta.first_at = delta.first_at.min(event.occurred_at);
        delta.last_at = delta.last_at.max(event.occurred_at);
        delta.last_seq = *seq as i64;
        match &event.payload {
            Payload::MessageReceived(m) => {
                delta.messages += 1;
                delta.preview = Some(cut(&m.content));
            }
            Payload::AgentReplied(r) => {
                delta.agent = Some(r.agent.clone());
                delta.preview = Some(cut(&r.text));
            }
            Payload::TurnCompleted(_) | Payload::TurnFailed(_) => delta.turns += 1,
            // The lifecycle (statuses, tool calls) is folded by the read models of the
            // projections issue; until then these only show in the replay.
            Payload::MessageRedriven(_)
            | Payload::TurnStarted(_)
            | Payload::AgentRouted(_)
            | Payload::ToolCalled(_)
            | Payload::ToolSucceeded(_)
            | Payload::ToolFailed(_)
            | Payload::ConfirmationRequested(_)
            | Payload::ConversationEscalated(_) => {}
        }
    }
    deltas
}

/// Applies the deltas of a batch in one statement.
pub async fn apply(tx: &mut Transaction<'_, Postgres>, deltas: &[Delta]) -> sqlx::Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into conversation (thread_id, status, started_at, last_activity_at, message_count,
                                   turn_count, agent, preview, first_seq, last_seq)
         select thread_id, 'open', first_at, last_at, messages, turns, agent,
                coalesce(preview, ''), first_seq, last_seq
         from unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::int[], $5::int[],
                     $6::text[], $7::text[], $8::bigint[], $9::bigint[])
              as d(thread_id, first_at, last_at, messages, turns, agent, preview, first_seq, last_seq)
         on conflict (thread_id) do update set
             last_activity_at = greatest(conversation.last_activity_at, excluded.last_activity_at),
             message_count = conversation.message_count + excluded.message_count,
             turn_count = conversation.turn_count + excluded.turn_count,
             agent = coalesce(excluded.agent, conversation.agent),
             preview = case when excluded.preview = '' then conversation.preview
                            else excluded.preview end,
             last_seq = greatest(conversation.last_seq, excluded.last_seq)",
    )
    .bind(deltas.iter().map(|d| d.thread_id.clone()).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.first_at).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.last_at).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.messages).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.turns).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.agent.clone()).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.preview.clone()).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.first_seq).collect::<Vec<_>>())
    .bind(deltas.iter().map(|d| d.last_seq).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn cut(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

/// A conversation as the REST API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Summary {
    pub thread_id: String,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
    pub message_count: i32,
    pub turn_count: i32,
    pub agent: Option<String>,
    pub preview: String,
}

/// Where a page starts: just after this conversation in newest-first order.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub started_at: OffsetDateTime,
    pub thread_id: String,
}

/// One page, newest first (by start time, then thread id), optionally of one status.
pub async fn page(
    pool: &PgPool,
    status: Option<&str>,
    after: Option<&After>,
    limit: i64,
) -> sqlx::Result<Vec<Summary>> {
    sqlx::query_as(
        "select thread_id, status, started_at, last_activity_at, message_count, turn_count, agent, preview
         from conversation
         where ($1::text is null or status = $1)
           and ($2::timestamptz is null or (started_at, thread_id) < ($2, $3))
         order by started_at desc, thread_id desc
         limit $4",
    )
    .bind(status)
    .bind(after.map(|a| a.started_at))
    .bind(after.map(|a| a.thread_id.as_str()))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One conversation.
pub async fn find(pool: &PgPool, thread_id: &str) -> sqlx::Result<Option<Summary>> {
    sqlx::query_as(
        "select thread_id, status, started_at, last_activity_at, message_count, turn_count, agent, preview
         from conversation where thread_id = $1",
    )
    .bind(thread_id)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::events::{
        AgentReplied, MessageReceived, ThreadId, TurnCompleted, TurnId, TurnOutcome,
    };
    use time::macros::datetime;
    use uuid::Uuid;

    fn event(thread: &str, minute: u8, payload: impl Into<Payload>) -> Envelope {
        Envelope::new(
            Uuid::new_v4(),
            ThreadId::parse(thread).unwrap(),
            TurnId::from_uuid(Uuid::nil()),
            datetime!(2026-11-25 10:00 UTC) + time::Duration::minutes(minute.into()),
            payload,
        )
    }

    #[test]
    fn a_batch_folds_into_one_delta_per_conversation_with_the_latest_reply_winning() {
        let events = [
            event(
                "a",
                0,
                MessageReceived {
                    content: "first".into(),
                    client_msg_id: None,
                },
            ),
            event(
                "b",
                1,
                MessageReceived {
                    content: "other".into(),
                    client_msg_id: None,
                },
            ),
            event(
                "a",
                2,
                AgentReplied {
                    text: "reply 1".into(),
                    agent: "orders".into(),
                    engine: "rules".into(),
                },
            ),
            event(
                "a",
                3,
                TurnCompleted {
                    outcome: TurnOutcome::Replied,
                    latency_ms: 5,
                    message_seq: 1,
                    pending: None,
                },
            ),
            event(
                "a",
                4,
                MessageReceived {
                    content: "second".into(),
                    client_msg_id: None,
                },
            ),
            event(
                "a",
                5,
                AgentReplied {
                    text: "reply 2".into(),
                    agent: "billing".into(),
                    engine: "rules".into(),
                },
            ),
        ];
        let with_seqs: Vec<(u64, &Envelope)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (i as u64 + 10, e))
            .collect();
        let deltas = fold(&with_seqs);
        assert_eq!(deltas.len(), 2);
        let a = &deltas[0];
        assert_eq!((a.thread_id.as_str(), a.messages, a.turns), ("a", 2, 1));
        assert_eq!(a.agent.as_deref(), Some("billing"));
        assert_eq!(a.preview.as_deref(), Some("reply 2"));
        assert_eq!((a.first_seq, a.last_seq), (10, 15));
        assert_eq!(a.last_at - a.first_at, time::Duration::minutes(5));
        let b = &deltas[1];
        assert_eq!((b.messages, b.turns, b.agent.as_deref()), (1, 0, None));
    }

    #[test]
    fn a_long_message_is_cut_to_the_preview_length() {
        let long = "é".repeat(500);
        let events = [event(
            "a",
            0,
            MessageReceived {
                content: long,
                client_msg_id: None,
            },
        )];
        let deltas = fold(&[(1, &events[0])]);
        assert_eq!(
            deltas[0].preview.as_ref().unwrap().chars().count(),
            PREVIEW_CHARS
        );
    }
}
