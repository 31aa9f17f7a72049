//! How `fixtures/v1/` was recorded: with commit 51a233a (event schema v1), on real servers,
//! by the real services of that commit. It records the events the commit it runs on
//! writes, so it is not a check and never runs by itself (`#[ignore]`); it is run by hand:
//!
//! ```sh
//! cargo test --locked -p cli --test e2e record_v1_fixture -- --ignored --nocapture
//! ```
//!
//! It refuses to write over a recording unless `V1_FIXTURE_OVERWRITE=1` is set (the committed
//! one was written with it, over the tries made while this recorder was written), and to run
//! on code that writes another schema version than 1.
//!
//! The stream is the demo seeding (`smart-support seed-demo`, `cli/src/seed_demo.rs`: the
//! rule engine answering its scripts, the demo shop's tools, the demo operators taking over
//! escalated conversations, unreadable messages dead-lettered) and two conversations through
//! the ingress's WebSocket, for what the seeding does not write: the ingress's headers
//! (`Smart-Support-Arrivals`, `traceparent`), a read tool that fails, a write confirmed with
//! "yes" and made, another that the shop refuses, a turn the model server rejects (an agent
//! on the `openai` engine, answered by testkit's fake model server), its dead letter
//! redriven and answered, and a message held while the conversation waits for a person. No erasure: it deletes messages and leaves gaps in the sequences.
//!
//! Written: `chat-stream.jsonl` (every message of `CHAT` in sequence order: subject, stored
//! headers, payload) and `read-models.json` (every read-model table as the projector of the
//! commit built it from that stream, `snapshot::take`, timestamps in UTC).
//! `projections/tests/projector/v1_fixture.rs` replays the one and expects the other. The
//! dead letters are not written: no projection reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use api::operators::Role;
use async_nats::jetstream::stream::Stream;
use cli::seed_demo::{SeedDemoArgs, run};
use common::events::{Envelope, Payload};
use projections::projector::{CONVERSATIONS, rebuild};
use projections::read_models::{checkpoint, snapshot};
use serde::Serialize;
use serde_json::{Value, json};
use testkit::fake_llm::FakeLlm;

use crate::support::{Socket, Stack, find, send_json, turn_events};

/// Where the fixture goes.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/v1")
}

/// Every kind of the v1 catalogue (docs/events.md) the stream must hold at least once:
/// all but `conversation.erased`.
const KINDS: [&str; 18] = [
    "message.received",
    "message.redriven",
    "turn.started",
    "agent.routed",
    "tool.called",
    "tool.succeeded",
    "tool.failed",
    "confirmation.requested",
    "conversation.escalated",
    "agent.replied",
    "turn.completed",
    "turn.failed",
    "conversation.resolved",
    "conversation.assigned",
    "operator.replied",
    "note.added",
    "conversation.released",
    "turn.held",
];

/// One line of `chat-stream.jsonl`.
#[derive(Serialize)]
struct Line {
    seq: u64,
    subject: String,
    /// Every stored header, each name with its values in order.
    headers: BTreeMap<String, Vec<String>>,
    /// The stored payload (every payload of the recording is UTF-8; some are not JSON).
    payload: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records fixtures/v1 with the code it runs on: run by hand, once (see the module docs)"]
async fn record_v1_fixture() {
    assert_eq!(
        common::events::SCHEMA_VERSION,
        1,
        "this code writes another schema version: the v1 fixture must stay as recorded"
    );
    let dir = fixture_dir();
    assert!(
        std::env::var_os("V1_FIXTURE_OVERWRITE").is_some()
            || !dir.join("chat-stream.jsonl").exists(),
        "{} is recorded already; set V1_FIXTURE_OVERWRITE=1 to record it again",
        dir.display()
    );
    // A tracing subscriber, as every service has one: the stage spans then put `traceparent`
    // on what they publish (without one, as in other tests, nothing carries it). Logs: warn,
    // unless RUST_LOG says otherwise.
    std::mem::forget(common::telemetry::init_with_default("warn"));
    let config = tempfile::tempdir().unwrap();
    let agents_config = agents_config(config.path());
    let llm = FakeLlm::start().await;
    // Until the redrive, the model server rejects every request (a 4xx: dead-lettered at once).
    llm.set_default_status(400);
    let llm_url = llm.url();
    let stack = Stack::start_with(|args| {
        args.worker.agents_config = agents_config;
        args.worker.openai.openai_base_url = llm_url;
    })
    .await;
    let pool = projections::connect(&stack.args.database).await.unwrap();
    // The demo's operators, as scripts/demo.sh adds them.
    let password = "a long enough password";
    for (email, name, role) in [
        ("agent@demo.example", "Alex", Role::Agent),
        ("admin@demo.example", "Dana", Role::Admin),
    ] {
        api::operators::add(&pool, email, name, role, password)
            .await
            .unwrap();
    }

    let seeded = run(&SeedDemoArgs {
        conversations: 14,
        concurrency: 4,
        days: 30,
        dead_letters: 1,
        if_empty: false,
        seed: 1,
        unassigned: 1,
        database_url: Some(stack.args.database.database_url.clone()),
        nats: stack.args.nats.clone(),
    })
    .await
    .expect("the seeding runs");
    eprintln!("seed-demo: {seeded:?}");
    assert_eq!(seeded.failed_conversations, 0, "{seeded:?}");

    let js = async_nats::jetstream::new(stack.nats_client().await);
    // A conversation through the ingress: a greeting, a tool that fails, a message the model
    // server rejects (dead-lettered, then redriven and answered), a tool that answers.
    let (mut socket, _) = stack.open_thread().await;
    say(&mut socket, "Hello", Some("m-1")).await;
    let events = say(&mut socket, "Where is my order ORD-9999?", Some("m-2")).await;
    assert_eq!(find(&events, "tool.failed")["status"], 404);
    // A write confirmed and made, then one confirmed that the shop refuses (only a shipped
    // or delivered order can be refunded).
    let events = say(&mut socket, "Please cancel ORD-1011", Some("m-3")).await;
    find(&events, "confirmation.requested");
    let events = say(&mut socket, "yes", Some("m-4")).await;
    assert_eq!(find(&events, "tool.succeeded")["tool"], "cancelOrder");
    let events = say(&mut socket, "I want a refund for ORD-1011", Some("m-5")).await;
    find(&events, "confirmation.requested");
    let events = say(&mut socket, "yes", Some("m-6")).await;
    assert_eq!(find(&events, "tool.failed")["status"], 409);
    let events = say(&mut socket, "Can I use a voucher?", Some("m-7")).await;
    let failed = find(&events, "turn.failed");
    let dead_letter = failed["dead_letter_id"].as_u64().unwrap();
    llm.set_default_reply("Yes: a voucher code goes in the last step of the checkout.");
    common::dead_letters::redrive(&js, dead_letter)
        .await
        .unwrap();
    let events = turn_events(&mut socket).await;
    assert_eq!(events[0]["kind"], "message.redriven");
    find(&events, "turn.completed");
    say(&mut socket, "Where is my order ORD-1003?", None).await;
    // A conversation that waits for a person: escalated, then a message held for them.
    let (mut socket, _) = stack.open_thread().await;
    let events = say(&mut socket, "I want to talk to a human", Some("h-1")).await;
    find(&events, "conversation.escalated");
    let events = say(&mut socket, "Are you still there?", Some("h-2")).await;
    assert_eq!(find(&events, "turn.held")["reason"], "escalated");

    // Every user message's turn has ended and the projector has applied everything.
    let stream = js.get_stream(common::subjects::CHAT_STREAM).await.unwrap();
    let last = settled(&stream, &pool).await;
    let lines = dump(&stream, last).await;
    let snapshot = snapshot::take(&utc_pool(&stack.args.database.database_url).await)
        .await
        .unwrap();
    // The projection is the stream's alone: a replay of it into fresh tables is the same.
    let verified = rebuild::verify(
        &pool,
        &stack.args.database,
        &stream,
        &rebuild::Options::default(),
        10,
    )
    .await
    .unwrap();
    assert_eq!(verified.differences, Vec::<String>::new());
    assert_eq!(verified.checkpoint, last);
    assert_eq!(
        stream.get_info().await.unwrap().state.last_sequence,
        last,
        "nothing was written while the fixture was read"
    );

    let kinds = kinds(&lines);
    let missing: Vec<&str> = KINDS
        .into_iter()
        .filter(|kind| !kinds.contains_key(*kind))
        .collect();
    assert!(
        missing.is_empty(),
        "the recording lacks {missing:?}: {kinds:?}"
    );
    assert!(!kinds.contains_key("conversation.erased"));

    std::fs::create_dir_all(&dir).unwrap();
    let mut jsonl = String::new();
    for line in &lines {
        jsonl.push_str(&serde_json::to_string(line).unwrap());
        jsonl.push('\n');
    }
    std::fs::write(dir.join("chat-stream.jsonl"), jsonl).unwrap();
    let tables: BTreeMap<&str, Vec<Value>> = snapshot
        .iter()
        .map(|(table, rows)| {
            let rows = rows
                .iter()
                .map(|row| serde_json::from_str(row).unwrap())
                .collect();
            (*table, rows)
        })
        .collect();
    let mut pretty = serde_json::to_string_pretty(&tables).unwrap();
    pretty.push('\n');
    std::fs::write(dir.join("read-models.json"), pretty).unwrap();
    let threads: BTreeSet<&str> = lines
        .iter()
        .filter_map(|line| line.subject.split('.').nth(1))
        .collect();
    eprintln!(
        "recorded {} events of {} threads into {}: {kinds:?}",
        lines.len(),
        threads.len(),
        dir.display()
    );
}

/// The demo's agents config (`fixtures/agents.yaml`) in `dir`, with one more agent, on the
/// `openai` engine (the fake model server), for a turn the model server rejects. Its route
/// keyword is in none of the seeding's scripts, so their turns are answered as in the demo.
fn agents_config(dir: &Path) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let demo = std::fs::read_to_string(fixtures.join("agents.yaml")).unwrap();
    let openapi = fixtures.join("shop-openapi.yaml");
    let mut config = demo.replace(
        "openapi: shop-openapi.yaml",
        &format!("openapi: {}", openapi.display()),
    );
    assert_ne!(config, demo, "the demo config names its OpenAPI document");
    config.push_str(
        "
  - name: concierge
    description: Vouchers, answered by a model.
    engine: openai
    route:
      keywords: [voucher]
",
    );
    let path = dir.join("agents.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Sends a message (with `client_msg_id` when given) and returns its turn's events.
async fn say(socket: &mut Socket, content: &str, client_msg_id: Option<&str>) -> Vec<Value> {
    let mut frame = json!({"type": "message", "content": content});
    if let Some(id) = client_msg_id {
        frame["client_msg_id"] = json!(id);
    }
    send_json(socket, frame).await;
    turn_events(socket).await
}

/// Waits until every user message of the stream has its turn ended and the projector has
/// applied the whole stream, and the stream stays at that length; returns its last sequence.
async fn settled(stream: &Stream, pool: &sqlx::PgPool) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let open = unfinished(stream, last).await;
        let applied = checkpoint::load(pool, CONVERSATIONS).await.unwrap();
        if open.is_empty() && applied == last {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if stream.get_info().await.unwrap().state.last_sequence == last {
                return last;
            }
            continue;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not settled: turns without an end {open:?}, projector at {applied} of {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The user messages up to `last` whose turn has no end yet: a readable one needs a terminal
/// event of its turn, an unreadable one the `turn.failed` naming its sequence.
async fn unfinished(stream: &Stream, last: u64) -> Vec<u64> {
    let mut messages = Vec::new();
    let mut ended_turns = BTreeSet::new();
    let mut failed_seqs = BTreeSet::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.unwrap();
        let event = Envelope::from_json(&message.payload);
        if message.subject.ends_with(".user") {
            messages.push((seq, event.as_ref().ok().map(|e| *e.turn_id.as_uuid())));
        }
        if let Ok(event) = event {
            if event.payload.is_terminal() {
                ended_turns.insert(*event.turn_id.as_uuid());
            }
            if let Payload::TurnFailed(failed) = &event.payload {
                failed_seqs.insert(failed.message_seq);
            }
        }
    }
    messages
        .into_iter()
        .filter(|(seq, turn)| match turn {
            Some(turn) => !ended_turns.contains(turn),
            None => !failed_seqs.contains(seq),
        })
        .map(|(seq, _)| seq)
        .collect()
}

/// Every message of the stream, 1 to `last`, as stored (the stream API's get, not a direct
/// get, whose answer adds headers of its own).
async fn dump(stream: &Stream, last: u64) -> Vec<Line> {
    let mut lines = Vec::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.unwrap();
        assert_eq!(message.sequence, seq, "the stream has no gaps");
        let mut headers = BTreeMap::new();
        for (name, values) in message.headers.iter() {
            let values: Vec<String> = values.iter().map(|v| v.as_str().to_owned()).collect();
            headers.insert(name.to_string(), values);
        }
        let payload = String::from_utf8(message.payload.to_vec())
            .unwrap_or_else(|_| panic!("the payload at {seq} is not UTF-8"));
        lines.push(Line {
            seq,
            subject: message.subject.to_string(),
            headers,
            payload,
        });
    }
    lines
}

/// How many events of each kind; payloads that are not events count as `(unreadable)`.
fn kinds(lines: &[Line]) -> BTreeMap<&'static str, usize> {
    let mut kinds = BTreeMap::new();
    for line in lines {
        let kind = Envelope::from_json(line.payload.as_bytes())
            .map_or("(unreadable)", |event| event.payload.kind());
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

/// A pool on the read models whose sessions show timestamps in UTC, so the snapshot's text
/// is the same whatever the server's time zone.
async fn utc_pool(database_url: &str) -> sqlx::PgPool {
    let options = sqlx::postgres::PgConnectOptions::from_str(database_url)
        .unwrap()
        .options([
            (
                "search_path",
                format!("{},public", projections::READ_MODEL_SCHEMA),
            ),
            ("TimeZone", "UTC".to_owned()),
        ]);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}
