//! The projector against a real PostgreSQL: batches commit with their checkpoint, and a
//! redelivered or replayed event changes nothing twice. The REST endpoints are tested in
//! `api/tests/`. The fault tests that run the real `projections` binary and kill it (`failover`,
//! `crash`), whose shared pieces are in `process` below. `v1_fixture`: a stream recorded by
//! version 1 of the events still projects into the read models recorded with it.

mod crash;
mod failover;
mod rebuild;
mod v1_fixture;

use common::events::{
    AgentReplied, Envelope, MessageReceived, ThreadId, TurnCompleted, TurnId, TurnOutcome,
};
use projections::projector::{CONVERSATIONS, Delivered, apply_batch};
use projections::read_models::{checkpoint, conversation};
use time::OffsetDateTime;
use uuid::Uuid;

/// A real PostgreSQL with a database migrated as the services migrate it.
async fn database() -> (
    testkit::Postgres,
    common::config::DatabaseArgs,
    sqlx::PgPool,
) {
    let postgres = testkit::Postgres::start();
    let args = common::config::DatabaseArgs {
        database_url: postgres.create_database(),
        database_max_connections: 5,
    };
    projections::migrate(&args).await.unwrap();
    let pool = projections::connect(&args).await.unwrap();
    (postgres, args, pool)
}

/// What the rebuild tests run against: [`database`], and a real NATS with the
/// chat stream.
struct Infra {
    nats: testkit::NatsServer,
    postgres: testkit::Postgres,
    database: common::config::DatabaseArgs,
    pool: sqlx::PgPool,
    js: async_nats::jetstream::Context,
    stream: async_nats::jetstream::stream::Stream,
}

async fn infra() -> Infra {
    let nats = testkit::NatsServer::start();
    let (postgres, database, pool) = database().await;
    let nats_args = common::config::NatsArgs {
        nats_url: nats.url(),
        stream_replicas: 1,
        duplicate_window: std::time::Duration::from_secs(600),
        client_name: "test".into(),
        nats_user: Some("admin".into()),
        nats_password: Some(testkit::nats_password("admin")),
        nats_tls_ca: None,
    };
    let (_client, js) = common::jetstream::connect(&nats_args).await.unwrap();
    let stream = common::jetstream::setup(&js, &nats_args).await.unwrap();
    Infra {
        nats,
        postgres,
        database,
        pool,
        js,
        stream,
    }
}

/// One answered turn of `thread`: message, reply, completion. The message has the
/// characters a rebuild's `COPY` must escape, so the rebuild tests check them stored alike.
fn turn_events(thread: &ThreadId) -> [Envelope; 3] {
    let turn_id = TurnId::from_uuid(Uuid::new_v4());
    let at = OffsetDateTime::now_utc();
    [
        Envelope::new(
            Uuid::new_v4(),
            thread.clone(),
            turn_id,
            at,
            MessageReceived {
                content: "hello\tthere\\ \"you\"\r\nnew line, ünïcode".into(),
                client_msg_id: None,
                backdated_ms: None,
            },
        ),
        Envelope::new(
            Uuid::new_v4(),
            thread.clone(),
            turn_id,
            at,
            AgentReplied {
                end: None,
                escalation: None,
                text: "hi!".into(),
                agent: "triage".into(),
                engine: "rules".into(),
                usage: None,
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
    ]
}

/// [`turn_events`] as delivered at sequences `first_seq`, `first_seq + 1`, ….
fn turn(thread: &ThreadId, first_seq: u64) -> Vec<Delivered> {
    turn_events(thread)
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
    let (_pg, _, pool) = database().await;
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
    let (_pg, _, pool) = database().await;
    let thread = ThreadId::generate();
    let batch = turn(&thread, 1);
    apply_batch(&pool, 0, &batch).await.unwrap();
    // Redelivered while the checkpoint is known: skipped outright.
    assert_eq!(apply_batch(&pool, 3, &batch).await.unwrap(), 3);
    // Replayed with a stale checkpoint (e.g. a lost ack): the rows dedupe by sequence.
    apply_batch(&pool, 0, &batch).await.unwrap();
    // And again, followed by a turn never seen: only that one counts.
    let mut longer = turn(&thread, 1);
    longer.extend(turn(&thread, 4));
    assert_eq!(apply_batch(&pool, 0, &longer).await.unwrap(), 6);
    let row = conversation::find(&pool, thread.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.message_count, row.turn_count), (2, 2));
    let steps: i64 = sqlx::query_scalar("select count(*) from replay_step")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(steps, 6);
}

#[tokio::test]
async fn an_event_that_does_not_decode_is_skipped_without_stalling_the_projection() {
    let (_pg, _, pool) = database().await;
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

#[tokio::test]
async fn an_event_with_a_nul_character_is_stored_with_the_replacement_character() {
    let (_pg, _, pool) = database().await;
    let thread = ThreadId::generate();
    // PostgreSQL refuses NUL in text and jsonb: without the replacement this batch would be
    // retried for ever, and the projection would stall behind it.
    let mut events = turn_events(&thread);
    if let common::events::Payload::AgentReplied(reply) = &mut events[1].payload {
        reply.text = "nul\0in a reply".into();
    }
    let batch: Vec<Delivered> = events
        .iter()
        .enumerate()
        .map(|(i, event)| Delivered::from_stored(i as u64 + 1, &event.to_json()))
        .collect();
    assert_eq!(apply_batch(&pool, 0, &batch).await.unwrap(), 3);
    let row = conversation::find(&pool, thread.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.preview, "nul\u{fffd}in a reply");
    let text: String = sqlx::query_scalar("select fields->>'text' from replay_step where seq = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(text, "nul\u{fffd}in a reply");
}

/// A version-2 write turn: message, start (routed to `orders`), `tool.called`, its result,
/// and the reply that ends the turn, at sequences from `first_seq`.
fn write_turn(thread: &ThreadId, first_seq: u64) -> Vec<Delivered> {
    use common::events::{
        AgentRouted, CallArgs, Permission, ToolCalled, ToolSucceeded, TurnStarted,
    };
    let turn_id = TurnId::from_uuid(Uuid::new_v4());
    let at = OffsetDateTime::now_utc();
    let event = |payload: common::events::Payload| {
        Envelope::new(Uuid::new_v4(), thread.clone(), turn_id, at, payload)
    };
    let params = serde_json::json!({"order_id": "ORD-1"});
    let events = [
        event(
            MessageReceived {
                content: "yes, cancel it".into(),
                client_msg_id: None,
                backdated_ms: None,
            }
            .into(),
        ),
        event(
            TurnStarted {
                message_seq: first_seq,
                confirming: None,
                routed: Some(AgentRouted {
                    agent: "orders".into(),
                    reason: "confirmed".into(),
                }),
            }
            .into(),
        ),
        event(
            ToolCalled {
                call_id: "tool-1".into(),
                tool: "cancelOrder".into(),
                params: params.clone(),
                permission: Permission::Write,
            }
            .into(),
        ),
        event(
            ToolSucceeded {
                call_id: "tool-1".into(),
                tool: "cancelOrder".into(),
                call: Some(CallArgs {
                    params,
                    permission: Some(Permission::Write),
                }),
                status: 200,
                result: serde_json::json!({"status": "cancelled"}),
                latency_ms: 12,
                attempts: 1,
            }
            .into(),
        ),
        event(
            AgentReplied {
                end: Some(TurnCompleted {
                    outcome: TurnOutcome::Replied,
                    latency_ms: 20,
                    message_seq: first_seq,
                    pending: None,
                }),
                escalation: None,
                text: "Cancelled.".into(),
                agent: "orders".into(),
                engine: "rules".into(),
                usage: None,
            }
            .into(),
        ),
    ];
    events
        .iter()
        .enumerate()
        .map(|(i, event)| Delivered::from_stored(first_seq + i as u64, &event.to_json()))
        .collect()
}

/// A call whose result comes in a later batch than its `tool.called` (and its turn's
/// start) ends as the same row as one whose events share a batch, and counts for the agent
/// the earlier batch routed the turn to.
#[tokio::test]
async fn a_call_finished_in_a_later_batch_is_the_same_row_and_counts_for_its_turns_agent() {
    let (_pg, _, pool) = database().await;
    let (whole, split) = (ThreadId::generate(), ThreadId::generate());
    apply_batch(&pool, 0, &write_turn(&whole, 1)).await.unwrap();
    let events = write_turn(&split, 6);
    apply_batch(&pool, 5, &events[..3]).await.unwrap();
    assert_eq!(apply_batch(&pool, 8, &events[3..]).await.unwrap(), 10);
    let row = |thread: ThreadId| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<
                _,
                (
                    serde_json::Value,
                    Option<String>,
                    String,
                    Option<i32>,
                    Option<serde_json::Value>,
                    Option<i64>,
                    Option<i32>,
                    bool,
                ),
            >(
                "select params, permission, status, http_status, result, latency_ms, attempts,
                        finished_at is not null
                 from tool_call where thread_id = $1",
            )
            .bind(thread.as_str())
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let whole_rows = row(whole).await;
    assert_eq!(
        whole_rows,
        [(
            serde_json::json!({"order_id": "ORD-1"}),
            Some("write".to_owned()),
            "succeeded".to_owned(),
            Some(200),
            Some(serde_json::json!({"status": "cancelled"})),
            Some(12),
            Some(1),
            true
        )]
    );
    assert_eq!(row(split).await, whole_rows);
    let (agent_calls, unrouted_calls): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(tool_calls) filter (where agent = 'orders'), 0),
                coalesce(sum(tool_calls) filter (where agent = ''), 0)
         from analytics_hourly",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((agent_calls, unrouted_calls), (2, 0));
}

/// The real `projections` binary against a real NATS and PostgreSQL, the events a
/// conversation writes, and a fresh projection of the whole stream to compare with.
mod process {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use async_nats::jetstream::{self, message::PublishMessage, stream::Stream};
    use common::config::NatsArgs;
    use common::events::{
        AgentReplied, AgentRouted, Envelope, MessageReceived, ThreadId, TurnCompleted, TurnId,
        TurnOutcome, TurnStarted,
    };
    use projections::projector::{CONVERSATIONS, Delivered, apply_batch};
    use projections::read_models::{checkpoint, snapshot};
    use time::OffsetDateTime;
    use uuid::Uuid;

    /// NATS, PostgreSQL with one database, the chat stream and a pool on the read models.
    pub struct Stack {
        pub nats: testkit::NatsServer,
        pub postgres: testkit::Postgres,
        pub database_url: String,
        pub pool: sqlx::PgPool,
        pub js: jetstream::Context,
        pub stream: Stream,
        pub logs: tempfile::TempDir,
    }

    impl Stack {
        pub async fn start() -> Stack {
            let nats = testkit::NatsServer::start();
            let postgres = testkit::Postgres::start();
            let database_url = postgres.create_database();
            let pool = pool(&database_url).await;
            let args = NatsArgs {
                nats_url: nats.url(),
                stream_replicas: 1,
                // The binary's default, so its `ensure` finds the same stream.
                duplicate_window: Duration::from_secs(600),
                client_name: "fault-test".into(),
                nats_user: Some("admin".into()),
                nats_password: Some(testkit::nats_password("admin")),
                nats_tls_ca: None,
            };
            let (_client, js) = common::jetstream::connect(&args).await.unwrap();
            let stream = common::jetstream::setup(&js, &args).await.unwrap();
            Stack {
                nats,
                postgres,
                database_url,
                pool,
                js,
                stream,
                logs: tempfile::tempdir().unwrap(),
            }
        }

        /// Starts a `projections` process named `name` (its log file's name).
        pub fn spawn(&self, name: &str, batch: usize) -> Projections {
            let addr: SocketAddr = ([127, 0, 0, 1], testkit::free_port()).into();
            let metrics_addr: SocketAddr = ([127, 0, 0, 1], testkit::free_port()).into();
            let log = self.logs.path().join(format!("{name}.log"));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            let child = Command::new(super::projections_binary())
                .env("NATS_URL", self.nats.url())
                .envs(testkit::nats_env("admin"))
                .env("DATABASE_URL", &self.database_url)
                .env("DATABASE_MAX_CONNECTIONS", "4")
                .env("LISTEN_ADDR", addr.to_string())
                .env("METRICS_ADDR", metrics_addr.to_string())
                .env("PROJECTOR_BATCH", batch.to_string())
                .env("PROJECTOR_STANDBY_POLL", "100ms")
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info,async_nats=warn".into()),
                )
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("the projections binary starts");
            Projections {
                child,
                metrics_addr,
                log,
                http: testkit::http_client(),
            }
        }

        /// Stream sequence of the last event (0 when empty).
        pub async fn last_seq(&self) -> u64 {
            self.stream.get_info().await.unwrap().state.last_sequence
        }

        pub async fn checkpoint(&self) -> u64 {
            checkpoint::load(&self.pool, CONVERSATIONS).await.unwrap()
        }

        /// Waits until the live projection has applied every event in the stream.
        pub async fn caught_up(&self, timeout: Duration) {
            let last = self.last_seq().await;
            eventually(
                &format!("the checkpoint reaches {last}"),
                timeout,
                || async { self.checkpoint().await >= last },
            )
            .await;
        }

        /// Every read-model table of the live projection next to a fresh projection of
        /// the whole stream (every event applied with `apply_batch` into a new database):
        /// their differences, empty when equal.
        pub async fn diff_with_a_fresh_projection(&self) -> Vec<String> {
            let fresh = pool(&self.postgres.create_database()).await;
            let last = self.last_seq().await;
            let mut applied = 0;
            let mut batch = Vec::new();
            for seq in 1..=last {
                let message = self.stream.direct_get(seq).await.unwrap();
                batch.push(Delivered {
                    seq,
                    event: Envelope::from_json(&message.payload),
                });
                if batch.len() == 500 || seq == last {
                    applied = apply_batch(&fresh, applied, &batch).await.unwrap();
                    batch.clear();
                }
            }
            assert_eq!(applied, last);
            let live = snapshot::take(&self.pool).await.unwrap();
            let fresh = snapshot::take(&fresh).await.unwrap();
            assert!(
                live.values().any(|rows| !rows.is_empty()),
                "the live projection is empty"
            );
            snapshot::diff(&live, &fresh, 5)
        }
    }

    impl Drop for Stack {
        /// A failing test shows the end of every process's log.
        fn drop(&mut self) {
            if !std::thread::panicking() {
                return;
            }
            for entry in std::fs::read_dir(self.logs.path()).into_iter().flatten() {
                let path = entry.unwrap().path();
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- {} (end) ---", path.display());
                tail.iter().rev().for_each(|line| eprintln!("{line}"));
            }
        }
    }

    async fn pool(url: &str) -> sqlx::PgPool {
        let args = common::config::DatabaseArgs {
            database_url: url.to_owned(),
            database_max_connections: 3,
        };
        projections::migrate(&args).await.unwrap();
        projections::connect(&args).await.unwrap()
    }

    /// A `projections` process; killed (SIGKILL) when dropped.
    pub struct Projections {
        child: Child,
        /// Where it serves `/metrics` (`METRICS_ADDR`, a listener of its own).
        metrics_addr: SocketAddr,
        log: PathBuf,
        http: reqwest::Client,
    }

    impl Projections {
        /// `kill -9`, and reap it.
        pub fn kill(&mut self) {
            self.child.kill().unwrap();
            self.child.wait().unwrap();
        }

        /// `smart_support_projector_active` from its `/metrics`; `None` while it does not
        /// answer (starting) or has not decided yet.
        pub async fn active(&self) -> Option<bool> {
            let text = self
                .http
                .get(format!("http://{}/metrics", self.metrics_addr))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.lines()
                .find_map(|line| line.strip_prefix("smart_support_projector_active "))
                .map(|value| value.trim() == "1")
        }

        pub fn log(&self) -> String {
            std::fs::read_to_string(&self.log).unwrap_or_default()
        }
    }

    impl Drop for Projections {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Polls `cond` until it holds; panics naming `what` after `timeout`.
    pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        while !cond().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes `event` with its id as `Nats-Msg-Id`; returns its stream sequence once
    /// the PubAck is in.
    pub async fn publish(js: &jetstream::Context, event: &Envelope) -> u64 {
        let message = PublishMessage::build()
            .payload(event.to_json().into())
            .message_id(event.event_id.to_string());
        js.send_publish(event.subject(), message)
            .await
            .unwrap()
            .await
            .unwrap()
            .sequence
    }

    /// One turn of `thread` as a worker writes it: the user message, then (once it is
    /// stored) `turn.started`, `agent.routed`, `agent.replied`, `turn.completed`. Returns
    /// the sequence of its last event.
    pub async fn publish_turn(js: &jetstream::Context, thread: &ThreadId, n: usize) -> u64 {
        let turn = TurnId::from_uuid(Uuid::new_v4());
        let at = OffsetDateTime::now_utc();
        let event = |step: &str, payload: common::events::Payload| {
            Envelope::new(
                common::events::step_event_id(&turn, step),
                thread.clone(),
                turn,
                at,
                payload,
            )
        };
        let message_seq = publish(
            js,
            &event(
                "message",
                MessageReceived {
                    content: format!("question {n}"),
                    client_msg_id: None,
                    backdated_ms: None,
                }
                .into(),
            ),
        )
        .await;
        let agent = ["billing", "shipping", "triage"][n % 3];
        let steps = [
            event(
                "started",
                TurnStarted {
                    routed: None,
                    message_seq,
                    confirming: None,
                }
                .into(),
            ),
            event(
                "routed",
                AgentRouted {
                    agent: agent.into(),
                    reason: "default".into(),
                }
                .into(),
            ),
            event(
                "replied",
                AgentReplied {
                    end: None,
                    escalation: None,
                    text: format!("answer {n}"),
                    agent: agent.into(),
                    engine: "rules".into(),
                    usage: None,
                }
                .into(),
            ),
            event(
                "completed",
                TurnCompleted {
                    outcome: TurnOutcome::Replied,
                    latency_ms: 5 + n as u64 % 40,
                    message_seq,
                    pending: None,
                }
                .into(),
            ),
        ];
        // Pipelined: all four in flight, then their acks.
        let mut acks = Vec::new();
        for step in &steps {
            let message = PublishMessage::build()
                .payload(step.to_json().into())
                .message_id(step.event_id.to_string());
            acks.push(js.send_publish(step.subject(), message).await.unwrap());
        }
        let mut last = message_seq;
        for ack in acks {
            last = ack.await.unwrap().sequence;
        }
        last
    }
}

#[tokio::test]
async fn migrating_again_on_every_start_finds_the_migrations_already_applied() {
    let postgres = testkit::Postgres::start();
    let args = common::config::DatabaseArgs {
        database_url: postgres.create_database(),
        database_max_connections: 2,
    };
    // A fresh database, then two restarts (the demo, compose's `migrate` and every
    // service start migrate).
    for _ in 0..3 {
        projections::migrate(&args).await.unwrap();
    }
    let pool = projections::connect(&args).await.unwrap();
    assert_eq!(checkpoint::load(&pool, CONVERSATIONS).await.unwrap(), 0);
}

/// The `projections` binary (built by the `cli` crate, the composition root, so not
/// `CARGO_BIN_EXE_…` here): beside this test's folder, `target/<profile>/`.
fn projections_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the path of this test");
    let dir = exe.parent().expect("target/<profile>/deps");
    let path = dir.parent().expect("target/<profile>").join("projections");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (`make test` does)",
        path.display()
    );
    path
}

#[tokio::test]
async fn every_read_model_table_but_the_checkpoint_is_compared_by_verify() {
    let (_postgres, _args, pool) = database().await;
    let mut live = projections::projector::rebuild::live_tables(&pool)
        .await
        .unwrap();
    live.retain(|table| table != "projection_checkpoint");
    let mut compared: Vec<String> = projections::read_models::snapshot::TABLES
        .iter()
        .map(|(table, _)| table.to_string())
        .collect();
    live.sort();
    compared.sort();
    assert_eq!(
        compared, live,
        "a table the projector writes is not in snapshot::TABLES"
    );
}

#[tokio::test]
async fn a_tombstone_leaves_the_tables_as_a_replay_of_the_stream_without_the_thread() {
    use common::events::{
        ConversationAssigned, ConversationErased, OperatorRef, OperatorReplied, Payload,
    };
    use projections::read_models::snapshot;

    let postgres = testkit::Postgres::start();
    let mut pools = Vec::new();
    for _ in 0..2 {
        let args = common::config::DatabaseArgs {
            database_url: postgres.create_database(),
            database_max_connections: 5,
        };
        projections::migrate(&args).await.unwrap();
        pools.push(projections::connect(&args).await.unwrap());
    }
    let (erased, kept) = (ThreadId::generate(), ThreadId::generate());
    let anna = OperatorRef {
        operator_id: Uuid::new_v4(),
        name: "Anna".into(),
    };
    let event = |thread: &ThreadId, payload: Payload| {
        Envelope::new(
            Uuid::new_v4(),
            thread.clone(),
            TurnId::from_uuid(Uuid::new_v4()),
            OffsetDateTime::now_utc(),
            payload,
        )
    };
    let mut stream: Vec<Envelope> = turn_events(&erased).into();
    stream.extend(turn_events(&kept));
    stream.push(event(
        &erased,
        Payload::ConversationAssigned(ConversationAssigned {
            operator: anna.clone(),
            assigned_by: None,
        }),
    ));
    stream.push(event(
        &erased,
        Payload::OperatorReplied(OperatorReplied {
            text: "a person here".into(),
            operator: anna.clone(),
            client_msg_id: None,
        }),
    ));
    stream.push(event(
        &erased,
        Payload::ConversationErased(ConversationErased {
            erased_by: "operator".into(),
            operator: Some(anna.clone()),
        }),
    ));
    // A late event of the erased thread (a turn that was running), after its tombstone.
    stream.push(turn_events(&erased)[1].clone());
    let delivered = |seqs: &[u64]| -> Vec<Delivered> {
        seqs.iter()
            .map(|&seq| Delivered::from_stored(seq, &stream[seq as usize - 1].to_json()))
            .collect()
    };
    // Live: everything, in batches that split before and after the tombstone.
    let live = &pools[0];
    apply_batch(live, 0, &delivered(&[1, 2, 3, 4]))
        .await
        .unwrap();
    apply_batch(live, 4, &delivered(&[5, 6, 7, 8, 9]))
        .await
        .unwrap();
    apply_batch(live, 9, &delivered(&[10])).await.unwrap();
    // A replay of the stream after the erasure: the thread's events are gone but the
    // tombstone and what came after it.
    let replay = &pools[1];
    apply_batch(replay, 0, &delivered(&[4, 5, 6, 9, 10]))
        .await
        .unwrap();

    let (live_rows, replay_rows) = (
        snapshot::take(live).await.unwrap(),
        snapshot::take(replay).await.unwrap(),
    );
    assert_eq!(live_rows, replay_rows);
    assert!(
        conversation::find(live, erased.as_str())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        conversation::find(live, kept.as_str())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(live_rows["erasure"].len(), 1, "{:?}", live_rows["erasure"]);
    assert!(!live_rows["analytics_hourly"].is_empty());
    assert!(
        live_rows["desk_hourly"].is_empty(),
        "only the erased thread had desk events: {:?}",
        live_rows["desk_hourly"]
    );
    // A second tombstone of the thread changes nothing but the record.
    let mut again = delivered(&[9]);
    again[0].seq = 11;
    apply_batch(live, 10, &again).await.unwrap();
    let after = snapshot::take(live).await.unwrap();
    for table in [
        "conversation",
        "replay_step",
        "analytics_hourly",
        "desk_hourly",
    ] {
        assert_eq!(after[table], live_rows[table], "{table}");
    }
}

#[tokio::test]
async fn another_event_at_a_sequence_already_applied_is_reported_and_changes_nothing() {
    let (_pg, _, pool) = database().await;
    let thread = ThreadId::generate();
    let delivered = |events: &[Envelope]| -> Vec<Delivered> {
        events
            .iter()
            .enumerate()
            .map(|(i, event)| Delivered {
                seq: 1 + i as u64,
                event: Envelope::from_json(&event.to_json()),
            })
            .collect()
    };
    let first = turn_events(&thread);
    apply_batch(&pool, 0, &delivered(&first)).await.unwrap();
    let conflicts = || projections::metrics::METRICS.sequence_conflicts.get();
    let before = conflicts();
    // The same events again (a lost ack): not a conflict.
    apply_batch(&pool, 0, &delivered(&first)).await.unwrap();
    assert_eq!(conflicts(), before);
    // Other events at those sequences: the stream was rewritten under the read models.
    let other = turn_events(&thread);
    apply_batch(&pool, 0, &delivered(&other)).await.unwrap();
    assert_eq!(conflicts(), before + 3);
    let row = conversation::find(&pool, thread.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.message_count, row.turn_count), (1, 1));
}
