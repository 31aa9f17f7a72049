//! Rebuild and verify against a real JetStream and PostgreSQL, with the live projector
//! running beside them.

use std::time::Duration;

use async_nats::jetstream::{Context, message::PublishMessage, stream::Stream};
use common::config::DatabaseArgs;
use common::events::ThreadId;
use common::shutdown::CancellationToken;
use projections::projector::{self, CONVERSATIONS, rebuild};
use projections::read_models::{checkpoint, conversation, snapshot};
use sqlx::PgPool;
use testkit::{NatsServer, Postgres};

struct Live {
    js: Context,
    stream: Stream,
    pool: PgPool,
    database: DatabaseArgs,
    shutdown: CancellationToken,
    nats: NatsServer,
    _postgres: Postgres,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Live {
    /// NATS, PostgreSQL, the stream and the live projector, running.
    async fn start() -> Live {
        let super::Infra {
            nats,
            postgres,
            database,
            pool,
            js,
            stream,
            ..
        } = super::infra().await;
        let shutdown = CancellationToken::new();
        tokio::spawn(projector::run(
            pool.clone(),
            stream.clone(),
            100,
            std::time::Duration::from_millis(200),
            shutdown.clone(),
        ));
        Live {
            js,
            stream,
            pool,
            database,
            shutdown,
            nats,
            _postgres: postgres,
        }
    }

    /// Publishes one answered turn of `thread`; returns the last sequence.
    async fn turn(&self, thread: &ThreadId) -> u64 {
        let events = super::turn_events(thread);
        let mut last = 0;
        for event in events {
            let message = PublishMessage::build()
                .payload(event.to_json().into())
                .message_id(event.event_id.to_string());
            last = self
                .js
                .send_publish(event.subject(), message)
                .await
                .unwrap()
                .await
                .unwrap()
                .sequence;
        }
        last
    }

    /// Waits until the live projector has applied `seq`.
    async fn applied(&self, seq: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let at = checkpoint::load(&self.pool, CONVERSATIONS).await;
            if at.as_ref().is_ok_and(|at| *at >= seq) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the projector never reached {seq}: {at:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn schemas(&self) -> Vec<String> {
        sqlx::query_scalar(
            "select schema_name::text from information_schema.schemata
             where schema_name like 'read_model%' order by 1",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

fn options() -> rebuild::Options {
    rebuild::Options {
        batch: 4,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_swaps_in_tables_equal_to_the_live_ones_and_the_projector_goes_on_into_them() {
    let live = Live::start().await;
    let threads: Vec<ThreadId> = (0..3).map(|_| ThreadId::generate()).collect();
    let mut last = 0;
    for thread in &threads {
        last = live.turn(thread).await;
    }
    live.applied(last).await;
    let before = snapshot::take(&live.pool).await.unwrap();

    // A pool with one connection that has prepared its statements against the old tables.
    let one = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            std::str::FromStr::from_str(&live.database.database_url)
                .map(|o: sqlx::postgres::PgConnectOptions| {
                    o.options([("search_path", "read_model,public")])
                })
                .unwrap(),
        )
        .await
        .unwrap();
    // A hand-made difference in the live tables, which only the old tables have.
    sqlx::query("update conversation set preview = 'corrupted' where thread_id = $1")
        .bind(threads[0].as_str())
        .execute(&live.pool)
        .await
        .unwrap();
    let old = conversation::find(&one, threads[0].as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.preview, "corrupted");

    let indexes = || async {
        let names: Vec<String> = sqlx::query_scalar(
            "select indexdef::text from pg_indexes where schemaname = 'read_model' order by indexname",
        )
        .fetch_all(&live.pool)
        .await
        .unwrap();
        names
    };
    let indexes_before = indexes().await;
    let done = rebuild::rebuild(&live.pool, &live.database, &live.stream, &options())
        .await
        .unwrap();
    assert_eq!(done.live_checkpoint, last);
    assert_eq!(done.replayed.events, last);
    // The secondary indexes, dropped during the replay, are back, the same.
    assert_eq!(indexes().await, indexes_before);

    let after = snapshot::take(&live.pool).await.unwrap();
    assert_eq!(snapshot::diff(&before, &after, 5), Vec::<String>::new());
    let new = conversation::find(&one, threads[0].as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        new.preview, "hi!",
        "the pool's cached statements read the new tables"
    );
    assert_eq!(live.schemas().await, ["read_model"]);

    // The live projector's next batches land in the new tables.
    let fresh = ThreadId::generate();
    let last = live.turn(&fresh).await;
    live.applied(last).await;
    let row = conversation::find(&live.pool, fresh.as_str())
        .await
        .unwrap()
        .expect("the new conversation is projected after the swap");
    assert_eq!(row.message_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_reads_on_when_nats_restarts_in_the_middle_of_its_replay() {
    let mut live = Live::start().await;
    let mut last = 0;
    for _ in 0..400 {
        last = live.turn(&ThreadId::generate()).await;
    }
    live.applied(last).await;
    let before = snapshot::take(&live.pool).await.unwrap();

    let rebuilding = tokio::spawn({
        let (pool, database, stream) = (
            live.pool.clone(),
            live.database.clone(),
            live.stream.clone(),
        );
        async move {
            let options = rebuild::Options {
                quiet: true,
                ..options()
            };
            rebuild::rebuild(&pool, &database, &stream, &options).await
        }
    });
    // Once the replay has applied its first batches, the server goes away for a second and
    // comes back without the replay's (in-memory, ephemeral) consumer.
    let replayed = || async {
        sqlx::query_scalar::<_, i64>(
            "select last_seq from read_model_rebuild.projection_checkpoint",
        )
        .fetch_optional(&live.pool)
        .await
        .ok()
        .flatten()
        .unwrap_or(0) as u64
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while replayed().await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    live.nats.kill();
    let at_kill = replayed().await;
    assert!(
        at_kill < last,
        "the replay ended before the restart ({at_kill} of {last}): the test shows nothing"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    live.nats.restart();

    let done = tokio::time::timeout(Duration::from_secs(60), rebuilding)
        .await
        .expect("the rebuild ends")
        .unwrap()
        .unwrap();
    assert_eq!(done.replayed.events, last, "every event once");
    assert_eq!(done.live_checkpoint, last);
    let after = snapshot::take(&live.pool).await.unwrap();
    assert_eq!(snapshot::diff(&before, &after, 5), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_healthy_projection_equal_and_a_corrupted_row_different() {
    let live = Live::start().await;
    let thread = ThreadId::generate();
    live.turn(&thread).await;
    let last = live.turn(&ThreadId::generate()).await;
    live.applied(last).await;

    let verified = rebuild::verify(&live.pool, &live.database, &live.stream, &options(), 5)
        .await
        .unwrap();
    assert_eq!(verified.differences, Vec::<String>::new());
    assert_eq!(verified.checkpoint, last);

    sqlx::query("update conversation set message_count = 7 where thread_id = $1")
        .bind(thread.as_str())
        .execute(&live.pool)
        .await
        .unwrap();
    let verified = rebuild::verify(&live.pool, &live.database, &live.stream, &options(), 5)
        .await
        .unwrap();
    assert_eq!(verified.differences.len(), 3, "{:#?}", verified.differences);
    assert!(verified.differences[0].starts_with("conversation: 2 rows vs 2 rows"));
    assert!(verified.differences[1].contains("\"message_count\": 7"));
    assert_eq!(
        live.schemas().await,
        ["read_model"],
        "the scratch schema is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_take_over_makes_the_same_handoff_row_whether_or_not_its_release_was_in_its_batch()
{
    use common::events::{
        ConversationAssigned, ConversationReleased, OperatorRef, Payload, TurnId,
    };
    use time::OffsetDateTime;
    use uuid::Uuid;

    let live = Live::start().await;
    let thread = ThreadId::generate();
    let anna = OperatorRef {
        operator_id: Uuid::new_v4(),
        name: "Anna".into(),
    };
    let event = |payload: Payload| {
        common::events::Envelope::new(
            Uuid::new_v4(),
            thread.clone(),
            TurnId::from_uuid(Uuid::new_v4()),
            OffsetDateTime::now_utc(),
            payload,
        )
    };
    let assigned = || {
        event(Payload::ConversationAssigned(ConversationAssigned {
            operator: anna.clone(),
            assigned_by: None,
        }))
    };
    // Live, the second take-over comes in a batch of its own; the replay (4 events a
    // batch) has the release and the take-over in one.
    super::process::publish(&live.js, &assigned()).await;
    let released = event(Payload::ConversationReleased(ConversationReleased {
        operator: anna.clone(),
    }));
    live.applied(super::process::publish(&live.js, &released).await)
        .await;
    live.applied(super::process::publish(&live.js, &assigned()).await)
        .await;

    let verified = rebuild::verify(&live.pool, &live.database, &live.stream, &options(), 5)
        .await
        .unwrap();
    assert_eq!(verified.differences, Vec::<String>::new());
}
