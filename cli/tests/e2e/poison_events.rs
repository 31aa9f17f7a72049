//! Poison events: bytes published straight to the chat stream, by a bug or by hand, that
//! are not events this version can read — garbage, a newer `schema_version`, the wrong
//! shape — on a thread's user, turn and operator subjects. The workers dead-letter each
//! poison user message once and tell the user; the projector skips what does not decode;
//! neither stops, so the customer's next message is answered and projected, and a replay of
//! the stream gets the same tables.

use async_nats::jetstream;
use common::events::SCHEMA_VERSION;
use serde_json::{Value, json};

use crate::support::{Stack, completes, message_contents, next_frame, send_json};

/// A `message.received` of `thread` as the ingress writes it, for editing into a poison.
fn message(thread: &str, content: &str) -> Value {
    json!({
        "event_id": uuid::Uuid::new_v4(),
        "schema_version": 1,
        "thread_id": thread,
        "turn_id": uuid::Uuid::new_v4(),
        "occurred_at": "2026-11-25T12:00:00Z",
        "kind": "message.received",
        "content": content,
    })
}

/// `event` with the members of `set` set (or removed, for `Value::Null`), as bytes.
fn edited(event: &Value, set: &[(&str, Value)]) -> Vec<u8> {
    let mut event = event.clone();
    let object = event.as_object_mut().unwrap();
    for (name, value) in set {
        match value {
            Value::Null => object.remove(*name),
            value => object.insert((*name).to_owned(), value.clone()),
        };
    }
    event.to_string().into_bytes()
}

/// Publishes `payload` on `subject` and returns its stream sequence.
async fn publish(js: &jetstream::Context, subject: String, payload: Vec<u8>) -> u64 {
    js.publish(subject, payload.into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_events_are_dead_lettered_once_and_the_workers_and_projector_keep_going() {
    let stack = Stack::start().await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let thread = session["thread_id"].as_str().unwrap().to_owned();
    let js = jetstream::new(stack.nats_client().await);
    let (user, turn, operator) = (
        format!("chat.{thread}.user"),
        format!("chat.{thread}.turn"),
        format!("chat.{thread}.operator"),
    );

    // Turn and operator subjects first: the workers do not consume them, the projector does.
    let reply = json!({
        "event_id": uuid::Uuid::new_v4(), "schema_version": 1, "thread_id": thread,
        "turn_id": uuid::Uuid::new_v4(), "occurred_at": "2026-11-25T12:00:00Z",
        "kind": "agent.replied", "agent": "triage", "engine": "rules", "text": "hi",
    });
    let undecodable_elsewhere = [
        (turn.clone(), b"\xff\x00 not json".to_vec()),
        (
            turn.clone(),
            edited(&reply, &[("schema_version", json!(SCHEMA_VERSION + 1))]),
        ),
        (
            turn.clone(),
            edited(&reply, &[("kind", json!("agent.sang"))]),
        ),
        (turn.clone(), edited(&reply, &[("text", Value::Null)])),
        (
            turn.clone(),
            edited(&reply, &[("occurred_at", json!("yesterday"))]),
        ),
        (
            operator.clone(),
            edited(
                &message(&thread, ""),
                &[
                    ("kind", json!("conversation.resolved")),
                    ("resolved_by", json!("operator")),
                    ("schema_version", json!(99)),
                ],
            ),
        ),
    ];
    for (subject, payload) in undecodable_elsewhere.clone() {
        publish(&js, subject, payload).await;
    }
    // A reply that decodes but holds NUL, which PostgreSQL cannot store (a model or a tool
    // could send one): projected with U+FFFD instead.
    let nul_reply = publish(
        &js,
        turn.clone(),
        edited(&reply, &[("text", json!("before\u{0}after"))]),
    )
    .await;

    let poison = |content: &str, set: &[(&str, Value)]| edited(&message(&thread, content), set);
    let undecodable_user = [
        b"garbage \xc3\x28 \x00".to_vec(),
        poison(
            "from the future",
            &[("schema_version", json!(SCHEMA_VERSION + 1))],
        ),
        poison("no content", &[("content", Value::Null)]),
        poison("wrong types", &[("content", json!(42))]),
        poison("no thread", &[("thread_id", json!(["a"]))]),
    ];
    let mut poison_seqs = Vec::new();
    for payload in undecodable_user.clone() {
        poison_seqs.push(publish(&js, user.clone(), payload).await);
    }
    // Decodes, but is not a user message.
    poison_seqs.push(publish(&js, user.clone(), reply.to_string().into_bytes()).await);

    // Each poison user message: one turn.failed that tells the user, naming its dead letter.
    let mut failures = Vec::new();
    while failures.len() < poison_seqs.len() {
        let frame = next_frame(&mut socket).await;
        if frame["type"] == "event" && frame["event"]["kind"] == "turn.failed" {
            failures.push(frame["event"].clone());
        }
    }
    let failed_seqs: Vec<u64> = failures
        .iter()
        .map(|f| f["message_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(failed_seqs, poison_seqs);
    for failure in &failures {
        assert_eq!(failure["category"], "fatal", "{failure}");
        assert!(failure["text"].as_str().unwrap().starts_with("Sorry"));
    }

    // The customer's next message is answered.
    send_json(
        &mut socket,
        json!({"type": "message", "content": "hello after the poison", "client_msg_id": "m-1"}),
    )
    .await;
    // Its ack and its turn's events travel separately (websocket.md): wait for both.
    let mut frames = Vec::new();
    let completed = loop {
        frames.push(next_frame(&mut socket).await);
        let Some(ack) = frames.iter().find(|f| f["type"] == "ack") else {
            continue;
        };
        let good = ack["seq"].as_u64().unwrap();
        if let Some(completed) = frames
            .iter()
            .find(|f| completes(f) && f["event"]["message_seq"] == good)
        {
            break completed.clone();
        }
    };
    let last = completed["seq"].as_u64().unwrap();

    // One dead letter per poison message, each once, none still waiting for redelivery.
    let (status, page) = stack
        .get(&format!("/api/dead-letters?thread_id={thread}"))
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    let mut dead_seqs: Vec<u64> = items
        .iter()
        .map(|d| d["source_seq"].as_u64().unwrap())
        .collect();
    dead_seqs.sort_unstable();
    assert_eq!(dead_seqs, poison_seqs, "{page}");
    assert!(
        items
            .iter()
            .all(|d| d["category"] == "fatal" && d["attempts"] == 1),
        "{page}"
    );
    let ids: Vec<u64> = failures
        .iter()
        .map(|f| f["dead_letter_id"].as_u64().unwrap())
        .collect();
    let mut listed: Vec<u64> = items.iter().map(|d| d["id"].as_u64().unwrap()).collect();
    listed.sort_unstable();
    assert_eq!(ids, listed);
    let mut workers = js
        .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
            common::subjects::WORKERS_CONSUMER,
            common::subjects::CHAT_STREAM,
        )
        .await
        .unwrap();
    let info = workers.info().await.unwrap();
    assert_eq!(
        (info.num_pending, info.num_ack_pending, info.num_redelivered),
        (0, 0, 0),
        "every message was settled on its first delivery"
    );

    // The projector went past every poison: the thread's read model has the good message
    // and its reply, the NUL reply with U+FFFD, and nothing of what did not decode.
    let steps = stack.replay_through(&thread, last).await;
    let nul_step = steps
        .iter()
        .find(|s| s["seq"] == nul_reply)
        .expect("the NUL reply is projected");
    assert_eq!(nul_step["text"], "before\u{fffd}after");
    assert_eq!(message_contents(&steps), ["hello after the poison"]);
    let undecodable = undecodable_elsewhere.len() + undecodable_user.len();
    let stored = steps.len();
    let (_, conversation) = stack.get(&format!("/api/conversations/{thread}")).await;
    assert_eq!(conversation["status"], "open", "{conversation}");
    assert_eq!(conversation["message_count"], 1);
    stack
        .metric_until("smart_support_projection_checkpoint", last as f64)
        .await;
    stack
        .metric_until(
            "smart_support_projection_events_skipped_total",
            undecodable as f64,
        )
        .await;
    assert_eq!(
        stored as u64 + undecodable as u64,
        last,
        "every other event is a step"
    );

    // A replay of the whole stream, poison included, gets the same tables (`verify`).
    let verify = cli::rebuild::VerifyArgs {
        limit: 5,
        replay: cli::rebuild::ReplayArgs {
            batch: 4,
            reader: projections::projector::rebuild::Reader::Pull,
            quiet: true,
        },
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
    };
    assert!(
        cli::rebuild::verify(&verify).await.unwrap(),
        "a replay equals the live projection"
    );
}
