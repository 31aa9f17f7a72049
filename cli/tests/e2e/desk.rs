//! The human handoff end to end, with the real workers: a customer asks for a person, the
//! agents escalate and then step aside (each message is stored, acked and closed by
//! `turn.held`), an operator takes over and answers live, notes never reach the customer,
//! and after a release the agents answer again. Around the switches no message is lost or
//! answered twice.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Stack, frames_until, is_completion, is_event, next_frame, resume_query, send_json, turn,
};

const PASSWORD: &str = "a long enough password";

/// Adds an operator and signs them in: the session token.
async fn operator(stack: &Stack, email: &str, name: &str, role: api::operators::Role) -> String {
    let pool = projections::connect(&stack.args.database).await.unwrap();
    api::operators::add(&pool, email, name, role, PASSWORD)
        .await
        .unwrap();
    let response = stack
        .http
        .post(format!("http://{}/api/auth/login", stack.addr))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn call(stack: &Stack, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = stack
        .http
        .post(format!("http://{}/api{path}", stack.addr))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until the read models know the conversation: the desk acts on those (404 before).
async fn known(stack: &Stack, thread: &str) {
    stack
        .get_until(&format!("/api/conversations/{thread}"), |c| {
            c["thread_id"] == thread
        })
        .await;
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_takes_over_answers_live_and_hands_back_to_the_agents() {
    let stack = Stack::start().await;
    let anna = operator(
        &stack,
        "anna@example.com",
        "Anna",
        api::operators::Role::Agent,
    )
    .await;
    let mut customer = stack.connect("").await;
    let session = next_frame(&mut customer).await;
    let thread = session["thread_id"].as_str().unwrap().to_owned();

    let escalation = turn(&mut customer, "I want to talk to a human please").await;
    assert!(
        escalation
            .iter()
            .any(|e| e["kind"] == "agent.replied" && e["escalation"]["reason"] == "user_request"),
        "{escalation:?}"
    );

    // Escalated: the agents do not answer; the turn is closed by `turn.held`.
    let held = turn(&mut customer, "Hello? Is anyone there?").await;
    assert_eq!(kinds(&held), ["message.received", "turn.held"], "{held:?}");
    assert_eq!(held[1]["reason"], "escalated");

    known(&stack, &thread).await;
    let (status, body) = call(
        &stack,
        &anna,
        &format!("/conversations/{thread}/assign"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let assigned = frames_until(&mut customer, |f| is_event(f, "conversation.assigned")).await;
    assert_eq!(assigned.last().unwrap()["event"]["name"], "Anna");

    let held = turn(&mut customer, "My parcel never arrived").await;
    assert_eq!(kinds(&held), ["message.received", "turn.held"], "{held:?}");
    assert_eq!(held[1]["reason"], "assigned");
    assert_eq!(held[1]["name"], "Anna");

    let (status, _) = call(
        &stack,
        &anna,
        &format!("/conversations/{thread}/notes"),
        Some(json!({"text": "NOTE-MARKER-7f3 check the courier"})),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = call(
        &stack,
        &anna,
        &format!("/conversations/{thread}/messages"),
        Some(json!({"text": "Hi, this is Anna. I am checking with the courier.", "client_msg_id": "a-1"})),
    )
    .await;
    assert_eq!(status, 202);
    let frames = frames_until(&mut customer, |f| is_event(f, "operator.replied")).await;
    let reply = &frames.last().unwrap()["event"];
    assert_eq!(
        reply["text"],
        "Hi, this is Anna. I am checking with the courier."
    );
    assert_eq!(reply["name"], "Anna");
    let live = serde_json::to_string(&frames).unwrap();
    assert!(
        !live.contains("anna@example.com"),
        "never the email: {live}"
    );
    assert!(
        !live.contains("NOTE-MARKER-7f3"),
        "a note reached the customer live: {live}"
    );

    // A reconnecting customer gets the whole conversation again, without the note.
    let mut again = stack.connect(&resume_query(&session, Some(0))).await;
    let resumed = frames_until(&mut again, |f| is_event(f, "operator.replied")).await;
    let resumed = serde_json::to_string(&resumed).unwrap();
    assert!(resumed.contains("Hi, this is Anna."));
    assert!(
        !resumed.contains("NOTE-MARKER-7f3"),
        "a note reached the customer in a resume"
    );

    // Operators see the note in the replay.
    let (_, replay) = stack
        .get(&format!("/api/conversations/{thread}/replay"))
        .await;
    let replay = serde_json::to_string(&replay).unwrap();
    // (The read may come before the projector applied the note: wait for it.)
    if !replay.contains("NOTE-MARKER-7f3") {
        stack
            .get_until(&format!("/api/conversations/{thread}/replay"), |r| {
                r.to_string().contains("NOTE-MARKER-7f3")
            })
            .await;
    }

    let (status, _) = call(
        &stack,
        &anna,
        &format!("/conversations/{thread}/release"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    frames_until(&mut customer, |f| is_event(f, "conversation.released")).await;
    let answered = turn(&mut customer, "Where is my order?").await;
    assert!(kinds(&answered).contains(&"agent.replied"), "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_closed_exactly_once_while_the_take_over_and_release_are_stored() {
    // 25 messages in a few seconds: above the default per-thread rate limit.
    let stack = Stack::start_with(|args| args.ingress.rate_limit_messages = 1000).await;
    let anna = operator(
        &stack,
        "anna@example.com",
        "Anna",
        api::operators::Role::Agent,
    )
    .await;
    let mut customer = stack.connect("").await;
    let session = next_frame(&mut customer).await;
    let thread = session["thread_id"].as_str().unwrap().to_owned();
    turn(&mut customer, "Hello").await;
    known(&stack, &thread).await;

    // Messages and switches at once: 3 rounds of take-over and release, 8 messages each.
    let assign_path = format!("/conversations/{thread}/assign");
    let mut sent = 0;
    for round in 0..3 {
        let assign = call(&stack, &anna, &assign_path, None);
        let mut messages = Vec::new();
        for n in 0..4 {
            messages.push(json!({"type": "message", "content": format!("round {round} message {n}"), "client_msg_id": format!("r{round}-m{n}")}));
        }
        for message in &messages {
            send_json(&mut customer, message.clone()).await;
        }
        let (status, _) = assign.await;
        assert_eq!(status, 202);
        for n in 4..8 {
            send_json(
                &mut customer,
                json!({"type": "message", "content": format!("round {round} message {n}"), "client_msg_id": format!("r{round}-m{n}")}),
            )
            .await;
        }
        let (status, _) = call(
            &stack,
            &anna,
            &format!("/conversations/{thread}/release"),
            None,
        )
        .await;
        assert_eq!(status, 202);
        sent += 8;
    }

    // Read the thread from the stream until every message has its closure.
    let js = async_nats::jetstream::new(stack.nats_client().await);
    let chat = js.get_stream("CHAT").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let events = thread_events(&chat, &thread).await;
        let messages: Vec<&Value> = events
            .iter()
            .filter(|e| e["kind"] == "message.received")
            .collect();
        let mut closures: HashMap<String, Vec<&str>> = HashMap::new();
        let mut replies: HashMap<String, usize> = HashMap::new();
        for event in &events {
            let turn = event["turn_id"].as_str().unwrap().to_owned();
            if is_completion(event) {
                closures.entry(turn.clone()).or_default().push("completion");
            }
            match event["kind"].as_str().unwrap() {
                kind @ ("turn.failed" | "turn.held") => {
                    closures.entry(turn).or_default().push(kind)
                }
                "agent.replied" => *replies.entry(turn).or_default() += 1,
                _ => {}
            }
        }
        let all_closed = messages
            .iter()
            .all(|m| closures.contains_key(m["turn_id"].as_str().unwrap()));
        if messages.len() == sent + 1 && all_closed {
            for message in &messages {
                let turn = message["turn_id"].as_str().unwrap();
                let closed = &closures[turn];
                assert_eq!(closed.len(), 1, "{turn} closed {closed:?}");
                if closed[0] == "turn.held" {
                    assert!(!replies.contains_key(turn), "held and answered: {turn}");
                } else {
                    assert_eq!(
                        replies.get(turn),
                        Some(&1),
                        "{turn} answered {:?} times",
                        replies.get(turn)
                    );
                }
            }
            let held = closures.values().filter(|c| c[0] == "turn.held").count();
            assert!(held > 0, "no message was held for the person");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} messages stored, closed: {all_closed}",
            messages.len(),
            sent + 1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every event of a thread on the stream, in order.
async fn thread_events(chat: &async_nats::jetstream::stream::Stream, thread: &str) -> Vec<Value> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    use futures::StreamExt;
    let consumer = chat
        .create_consumer(OrderedConfig {
            filter_subject: format!("chat.{thread}.>"),
            ..Default::default()
        })
        .await
        .unwrap();
    let pending = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.unwrap();
    let mut events = Vec::new();
    for _ in 0..pending {
        let message = messages.next().await.unwrap().unwrap();
        events.push(serde_json::from_slice(&message.payload).unwrap());
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_with_the_desks_events_equals_the_live_read_models() {
    let stack = Stack::start().await;
    let anna = operator(
        &stack,
        "anna@example.com",
        "Anna",
        api::operators::Role::Agent,
    )
    .await;
    let mut customer = stack.connect("").await;
    let session = next_frame(&mut customer).await;
    let thread = session["thread_id"].as_str().unwrap().to_owned();
    turn(&mut customer, "I want to talk to a human").await;
    turn(&mut customer, "Still there?").await;
    known(&stack, &thread).await;
    call(
        &stack,
        &anna,
        &format!("/conversations/{thread}/assign"),
        None,
    )
    .await;
    call(
        &stack,
        &anna,
        &format!("/conversations/{thread}/messages"),
        Some(json!({"text": "Anna here."})),
    )
    .await;
    call(
        &stack,
        &anna,
        &format!("/conversations/{thread}/notes"),
        Some(json!({"text": "called the courier"})),
    )
    .await;
    let (_, released) = call(
        &stack,
        &anna,
        &format!("/conversations/{thread}/release"),
        None,
    )
    .await;
    let seq = released["seq"].as_u64().unwrap();
    // The inbox is read from the projection: wait until it has applied the release.
    stack
        .get_until(&format!("/api/conversations/{thread}?min_seq={seq}"), |c| {
            c["status"] == "open"
        })
        .await;

    let args = cli::rebuild::VerifyArgs {
        limit: 5,
        replay: cli::rebuild::ReplayArgs {
            batch: 3,
            reader: projections::projector::rebuild::Reader::Pull,
            quiet: true,
        },
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
    };
    assert!(cli::rebuild::verify(&args).await.unwrap(), "equal");
    // The desk's table is compared too.
    let pool = projections::connect(&stack.args.database).await.unwrap();
    let changed = sqlx::query("update handoff set assignments = assignments + 1")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    assert!(!cli::rebuild::verify(&args).await.unwrap(), "different");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_thread_token_opens_no_operator_endpoint() {
    let stack = Stack::start_with(|args| args.api.api_token = Some("the-api-token".into())).await;
    let mut customer = stack.connect("").await;
    let session = next_frame(&mut customer).await;
    let token = session["token"].as_str().unwrap();
    let thread = session["thread_id"].as_str().unwrap();
    for path in [
        "/me".to_owned(),
        "/inbox".to_owned(),
        format!("/conversations/{thread}"),
        format!("/conversations/{thread}/replay"),
    ] {
        let response = stack
            .http
            .get(format!("http://{}/api{path}", stack.addr))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    let (status, body) = call(
        &stack,
        token,
        &format!("/conversations/{thread}/assign"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
}
