//! The projector against a real PostgreSQL: batches commit with their checkpoint, and a
//! redelivered or replayed event changes nothing twice. The REST endpoints of the
//! resources that live in JetStream are in their own files.

mod dead_letters;
mod rebuild;

use common::events::{
    AgentReplied, Envelope, MessageReceived, ThreadId, TurnCompleted, TurnId, TurnOutcome,
};
use projections::projector::{CONVERSATIONS, Delivered, apply_batch};
use projections::read_models::{checkpoint, conversation};
use time::OffsetDateTime;
use uuid::Uuid;

async fn database() -> (testkit::Postgres, sqlx::PgPool) {
    let postgres = testkit::Postgres::start();
    let args = common::config::DatabaseArgs {
        database_url: postgres.create_database(),
        database_max_connections: 5,
    };
    let pool = projections::connect(&args).await.unwrap();
    projections::MIGRATOR.run(&pool).await.unwrap();
    (postgres, pool)
}

fn turn(thread: &ThreadId, first_seq: u64) -> Vec<Delivered> {
    let turn_id = TurnId::from_uuid(Uuid::new_v4());
    let at = OffsetDateTime::now_utc();
    let events = [
        Envelope::new(
            Uuid::new_v4(),
            thread.clone(),
            turn_id,
            at,
            MessageReceived {
                content: "hello".into(),
                client_msg_id: None,
            },
        ),
        Envelope::new(
            Uuid::new_v4(),
            thread.clone(),
            turn_id,
            at,
            AgentReplied {
                text: "hi!".into(),
                agent: "triage".into(),
                engine: "rules".into(),
            },
        ),
        Envelope::new(
            Uuid::new_v4(),
            thread.clone(),
            turn_id,
            at,
            TurnCompleted {
                outcome: TurnOutcome::Replied,
                latency_ms: 3,
                message_seq: 1,
                pending: None,
            },
        ),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| Delivered {
            seq: first_seq + i as u64,
            event: Envelope::from_json(&event.to_json()),
        })
        .collect()
}

#[tokio::test]
async fn a_batch_moves_the_checkpoint_with_its_effects() {
    let (_pg, pool) = database().await;
    let thread = ThreadId::generate();
    let applied = apply_batch(&pool, 0, &turn(&thread, 1)).await.unwrap();
    assert_eq!(applied, 3);
    assert_eq!(checkpoint::load(&pool, CONVERSATIONS).await.unwrap(), 3);
    let row = conversation::find(&pool, thread.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.message_count, row.turn_count), (1, 1));
    assert_eq!(row.agent.as_deref(), Some("triage"));
}

#[tokio::test]
async fn a_redelivered_batch_changes_nothing_twice() {
    let (_pg, pool) = database().await;
    let thread = ThreadId::generate();
    let batch = turn(&thread, 1);
    apply_batch(&pool, 0, &batch).await.unwrap();
    // Redelivered while the checkpoint is known: skipped outright.
    assert_eq!(apply_batch(&pool, 3, &batch).await.unwrap(), 3);
    // Replayed with a stale checkpoint (e.g. a lost ack): the rows dedupe by event.
    apply_batch(&pool, 0, &batch).await.unwrap();
    let row = conversation::find(&pool, thread.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.message_count, row.turn_count), (1, 1));
    let steps: i64 = sqlx::query_scalar("select count(*) from replay_step")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(steps, 3);
}

#[tokio::test]
async fn an_event_that_does_not_decode_is_skipped_without_stalling_the_projection() {
    let (_pg, pool) = database().await;
    let thread = ThreadId::generate();
    let mut batch = turn(&thread, 2);
    batch.insert(
        0,
        Delivered {
            seq: 1,
            event: Envelope::from_json(b"{\"kind\":\"garbage\"}"),
        },
    );
    assert_eq!(apply_batch(&pool, 0, &batch).await.unwrap(), 4);
    let row = conversation::find(&pool, thread.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.message_count, 1);
}
