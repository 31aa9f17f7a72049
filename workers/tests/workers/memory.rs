//! The model engine's memory, end to end: a worker answering with `AGENT_ENGINE=openai`
//! against `testkit::FakeLlm` reads the thread's earlier events from the stream and sends
//! them as messages of their own role; a redelivery asks the same question again.

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::HeaderMap;
use axum::{Json, Router, routing::get};
use common::events::{
    ConversationAssigned, ConversationReleased, Envelope, OperatorRef, OperatorReplied, Payload,
    ThreadId, TurnId,
};
use serde_json::{Value, json};
use testkit::{FakeLlm, NatsServer};
use workers::consumer::{Outcome, RetryPolicy, Worker, step};

use crate::fixture::{chat_stream, status_worker, store, unordered};

async fn status_api() -> SocketAddr {
    let app = Router::new().route("/status", get(|| async { Json(json!({"state": "fine"})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn operator_event(thread: &ThreadId, payload: impl Into<Payload>) -> Envelope {
    Envelope::new(
        uuid::Uuid::new_v4(),
        thread.clone(),
        TurnId::from_uuid(uuid::Uuid::new_v4()),
        time::OffsetDateTime::now_utc(),
        payload,
    )
}

fn anna() -> OperatorRef {
    OperatorRef {
        operator_id: uuid::Uuid::new_v4(),
        name: "Anna".into(),
    }
}

/// `role: content` of each message of a request (`role[name]` for a named one; tool calls
/// as `assistant: call <tool> <arguments>`).
fn lines(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role = match m.get("name").and_then(Value::as_str) {
                Some(name) => format!("{}[{name}]", m["role"].as_str().unwrap()),
                None => m["role"].as_str().unwrap().to_owned(),
            };
            match m.get("tool_calls") {
                Some(calls) => format!(
                    "{role}: call {} {}",
                    calls[0]["function"]["name"].as_str().unwrap(),
                    calls[0]["function"]["arguments"].as_str().unwrap()
                ),
                None => format!("{role}: {}", m["content"].as_str().unwrap_or("")),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earlier_messages_tool_results_and_operator_text_are_sent_as_messages_of_their_own_role() {
    let nats = NatsServer::start();
    let llm = FakeLlm::start().await;
    let api = status_api().await;
    let dir = tempfile::tempdir().unwrap();
    let args = status_worker(
        dir.path(),
        api,
        &["--engine", "openai", "--openai-base-url", &llm.url()],
    );
    // Routed by a rule, so that every request is a step of the agent (no choose_agent).
    let config = std::fs::read_to_string(&args.agents_config).unwrap();
    std::fs::write(
        &args.agents_config,
        config.replace(
            "description: All\n",
            "description: All\n    route: {patterns: ['.']}\n",
        ),
    )
    .unwrap();
    let agents = workers::startup::load_agents(&args).unwrap();
    let (_client, js, stream) = chat_stream(&nats, "memory-test").await;
    let policy = RetryPolicy {
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        max_deliveries: 5,
        ack_wait: Duration::from_secs(30),
        order_wait: Duration::from_secs(30),
    };
    let worker = Worker::new(js.clone(), stream.clone(), agents, policy);
    let thread = ThreadId::generate();

    // The first message: the model calls the tool, then replies.
    let first = Envelope::user_message(&thread, "how are things?").to_json();
    let first_seq = store(&js, &Envelope::from_json(&first).unwrap(), HeaderMap::new()).await;
    llm.push_tool_call("getStatus", "{}");
    llm.push_reply("All is fine.");
    assert_eq!(
        step(&worker, unordered(first_seq, 1, &first)).await,
        Outcome::Done
    );

    // A person steps in, says something, and hands back.
    for payload in [
        Payload::ConversationAssigned(ConversationAssigned {
            operator: anna(),
            assigned_by: None,
        }),
        Payload::OperatorReplied(OperatorReplied {
            text: "Anna here: I checked it too.".into(),
            operator: anna(),
            client_msg_id: None,
        }),
        Payload::ConversationReleased(ConversationReleased { operator: anna() }),
    ] {
        store(&js, &operator_event(&thread, payload), HeaderMap::new()).await;
    }

    // The second message: the model server fails the first delivery.
    let second = Envelope::user_message(&thread, "and tomorrow?").to_json();
    let second_seq = store(
        &js,
        &Envelope::from_json(&second).unwrap(),
        HeaderMap::new(),
    )
    .await;
    llm.push_status(503, "{}");
    assert!(matches!(
        step(&worker, unordered(second_seq, 1, &second)).await,
        Outcome::Retry { .. }
    ));
    let asked = llm.requests().last().unwrap().clone();
    let expected = [
        "user: how are things?",
        "assistant: call getStatus {}",
        r#"tool: {"result":{"state":"fine"},"status":200}"#,
        "assistant: All is fine.",
        "assistant[operator]: Anna here: I checked it too.",
        "user: and tomorrow?",
    ];
    let got = lines(&asked);
    assert!(got[0].starts_with("system: "), "{got:?}");
    assert_eq!(got[1..], expected, "{got:#?}");
    let system = asked["messages"][0]["content"].as_str().unwrap();
    for earlier in ["how are things", "All is fine", "Anna here", "fine\""] {
        assert!(
            !system.contains(earlier),
            "{earlier:?} is pasted into the system prompt: {system}"
        );
    }

    // Something happens in the thread after the message (a later message); the redelivery
    // asks exactly the same question.
    let later = Envelope::user_message(&thread, "hello?");
    store(&js, &later, HeaderMap::new()).await;
    llm.push_reply("Tomorrow too.");
    assert_eq!(
        step(&worker, unordered(second_seq, 2, &second)).await,
        Outcome::Done
    );
    assert_eq!(
        llm.requests().last().unwrap()["messages"],
        asked["messages"]
    );
}
