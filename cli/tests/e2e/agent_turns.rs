//! Agent turns as a user sees them: tool calls against the demo shop API, confirmation
//! of writes, escalation, retries, dead letters and their redrive, and the order of one
//! conversation's turns with two workers.

use std::sync::Arc;

use serde_json::{Value, json};
use testkit::fake_llm::FakeLlm;

use crate::support::{
    Socket, Stack, find, is_completion, kinds, next_frame, send_json, turn, turn_events,
};

async fn new_session(stack: &Stack) -> (Socket, String) {
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    let thread = session["thread_id"].as_str().unwrap().to_owned();
    (socket, thread)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_tool_call_is_answered_with_the_shops_data() {
    let stack = Stack::start().await;
    let (mut socket, _) = new_session(&stack).await;
    let events = turn(&mut socket, "Where is ORD-1002?").await;
    assert_eq!(
        kinds(&events),
        [
            "message.received",
            "turn.started",
            "tool.succeeded",
            "agent.replied"
        ],
        "a read call is its result alone, and the reply ends the turn"
    );
    assert_eq!(find(&events, "turn.started")["agent"], "orders");
    let called = find(&events, "tool.succeeded");
    assert_eq!(called["tool"], "getOrder");
    assert_eq!(called["params"], json!({"order_id": "ORD-1002"}));
    assert_eq!(called["permission"], "read");
    assert_eq!(called["result"]["status"], "shipped");
    assert_eq!(find(&events, "agent.replied")["outcome"], "replied");
    let reply = find(&events, "agent.replied")["text"].as_str().unwrap();
    assert!(reply.starts_with("Order ORD-1002 is shipped"), "{reply}");
    let calls = r#"smart_support_worker_tool_calls_total{tool="getOrder",result="succeeded"}"#;
    assert_eq!(stack.metric(calls).await, 1.0);
    let done = r#"smart_support_worker_messages_total{outcome="done"}"#;
    assert_eq!(stack.metric(done).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_number_written_as_customers_write_it_is_looked_up() {
    let stack = Stack::start().await;
    let (mut socket, _) = new_session(&stack).await;
    let events = turn(&mut socket, "what is the status of my order 1002?").await;
    let called = find(&events, "tool.succeeded");
    assert_eq!(called["tool"], "getOrder");
    assert_eq!(called["params"], json!({"order_id": "ORD-1002"}));
    let reply = find(&events, "agent.replied")["text"].as_str().unwrap();
    assert!(reply.starts_with("Order ORD-1002 is shipped"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_asks_for_confirmation_and_runs_only_after_yes() {
    let stack = Stack::start().await;
    let (mut socket, _) = new_session(&stack).await;
    let asked = turn(&mut socket, "Please cancel ORD-1001").await;
    assert!(
        !kinds(&asked).iter().any(|k| k.starts_with("tool.")),
        "{:?}",
        kinds(&asked)
    );
    let question = find(&asked, "agent.replied");
    assert_eq!(question["pending"]["tool"], "cancelOrder");
    assert_eq!(question["outcome"], "awaiting_confirmation");
    assert_eq!(stack.shop_order("ORD-1001").await.1["status"], "processing");

    let confirmed = turn(&mut socket, "yes").await;
    assert_eq!(
        kinds(&confirmed),
        [
            "message.received",
            "turn.started",
            "tool.called",
            "tool.succeeded",
            "agent.replied"
        ],
        "a write is on record before it runs"
    );
    assert_eq!(find(&confirmed, "tool.called")["tool"], "cancelOrder");
    assert_eq!(find(&confirmed, "tool.succeeded")["status"], 200);
    let reply = find(&confirmed, "agent.replied")["text"].as_str().unwrap();
    assert_eq!(reply, "Done: order ORD-1001 is now cancelled.");
    assert_eq!(stack.shop_order("ORD-1001").await.1["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destructive_request_escalates_and_changes_nothing() {
    let stack = Stack::start().await;
    let (mut socket, _) = new_session(&stack).await;
    let events = turn(&mut socket, "Delete ORD-1006 please").await;
    assert!(
        !kinds(&events).iter().any(|k| k.starts_with("tool.")),
        "{:?}",
        kinds(&events)
    );
    let escalated = find(&events, "agent.replied");
    assert_eq!(escalated["escalation"]["reason"], "destructive_action");
    assert_eq!(escalated["outcome"], "escalated");
    assert_eq!(stack.shop_order("ORD-1006").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_from_a_tool_is_not_retried() {
    let stack = Stack::start().await;
    let (mut socket, _) = new_session(&stack).await;
    let events = turn(&mut socket, "Where is ORD-9999?").await;
    let failed = find(&events, "tool.failed");
    assert_eq!(failed["status"], 404);
    assert_eq!(failed["category"], "not_retryable");
    assert_eq!(failed["attempts"], 1);
    let reply = find(&events, "agent.replied")["text"].as_str().unwrap();
    assert_eq!(
        reply,
        "I could not look up order ORD-9999: no order ORD-9999"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_is_answered_in_words_and_the_event_keeps_the_http_error() {
    let stack = Stack::start().await;
    let (mut socket, _) = new_session(&stack).await;
    turn(&mut socket, "Please cancel ORD-1002").await;
    let events = turn(&mut socket, "yes").await;
    let failed = find(&events, "tool.failed");
    assert_eq!(failed["status"], 409);
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.starts_with("HTTP 409: ") && error.contains("not_cancellable"),
        "{error}"
    );
    let reply = find(&events, "agent.replied")["text"].as_str().unwrap();
    assert_eq!(
        reply,
        "I could not cancel order ORD-1002: order ORD-1002 is shipped; only processing orders can be cancelled"
    );
    assert!(!reply.contains("409") && !reply.contains('{'), "{reply}");
}

/// A stand-in HTTP API whose `GET /status` answers 500 twice, then 200.
async fn flaky_api() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::{Json, Router, http::StatusCode, routing::get};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/status",
        get(move || {
            let hit = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if hit < 2 {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Json(json!({"error": "busy"})),
                    )
                } else {
                    (StatusCode::OK, Json(json!({"state": "all systems go"})))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_failing_twice_with_500_is_retried_and_answered() {
    let (api, hits) = flaky_api().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("status.yaml"),
        "openapi: 3.0.3\ninfo: {title: status, version: '1'}\nservers: [{url: 'http://example.invalid'}]\n\
         paths:\n  /status:\n    get:\n      operationId: getStatus\n      summary: Service status\n      \
         responses: {'200': {description: ok}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("agents.yaml"),
        "openapi: status.yaml\ndefault_agent: general\nagents:\n  - name: general\n    description: All\n    \
         tools: {getStatus: read}\n    intents:\n      - name: status\n        patterns: ['.']\n        \
         tool: getStatus\n        reply: 'Status: {result.state}'\n",
    )
    .unwrap();
    let config = dir.path().join("agents.yaml");
    let stack = Stack::start_with(|args| {
        args.worker.agents_config = config;
        args.worker.tools.tools_base_url = Some(format!("http://{api}"));
        args.worker.tools.tools_allow_hosts = vec![api.to_string()];
    })
    .await;
    let (mut socket, _) = new_session(&stack).await;
    let events = turn(&mut socket, "how are things?").await;
    let succeeded = find(&events, "tool.succeeded");
    assert_eq!(succeeded["attempts"], 3);
    assert!(!kinds(&events).contains(&"tool.failed"));
    assert_eq!(
        find(&events, "agent.replied")["text"],
        "Status: all systems go"
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparseable_event_is_dead_lettered_and_the_thread_goes_on() {
    let stack = Stack::start().await;
    let (mut socket, thread) = new_session(&stack).await;
    let client = stack.nats_client().await;
    let js = async_nats::jetstream::new(client);
    js.publish(format!("chat.{thread}.user"), "{not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let failed = turn_events(&mut socket).await;
    let failure = find(&failed, "turn.failed");
    assert_eq!(failure["category"], "fatal");
    assert!(failure["text"].as_str().unwrap().starts_with("Sorry"));
    let dead_letter = failure["dead_letter_id"].as_u64().unwrap();
    let record = common::dead_letters::get(&js, dead_letter).await.unwrap();
    assert_eq!(record.original, json!("{not json"));

    let events = turn(&mut socket, "hello").await;
    assert_eq!(find(&events, "agent.replied")["agent"], "triage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_model_server_rejects_is_dead_lettered_then_redriven_and_answered() {
    // A rejected request (a 4xx) fails the same way every time: dead-lettered at once. (A
    // model server that is down escalates to a person instead: workers'
    // `model_down.rs`.)
    let llm = FakeLlm::start().await;
    llm.set_default_status(400);
    let url = llm.url();
    let stack = Stack::start_with(|args| {
        args.worker.engine = workers::config::EngineKind::Openai;
        args.worker.openai.openai_base_url = url;
        args.worker.worker_max_deliveries = 3;
    })
    .await;
    let (mut socket, _) = new_session(&stack).await;
    let events = turn(&mut socket, "hello").await;
    let failure = find(&events, "turn.failed");
    assert_eq!(failure["category"], "not_retryable");
    assert_eq!(failure["attempts"], 1);
    assert!(
        failure["error"].as_str().unwrap().contains("400"),
        "{failure}"
    );
    assert!(!kinds(&events).contains(&"agent.replied"));

    llm.set_default_reply("Back on my feet: hello!");
    let js = async_nats::jetstream::new(stack.nats_client().await);
    let id = failure["dead_letter_id"].as_u64().unwrap();
    common::dead_letters::redrive(&js, id).await.unwrap();
    let redriven = turn_events(&mut socket).await;
    assert_eq!(kinds(&redriven)[0], "message.redriven");
    assert_eq!(
        find(&redriven, "agent.replied")["text"],
        "Back on my feet: hello!"
    );
    assert!(
        common::dead_letters::get(&js, id).await.is_err(),
        "the dead letter is gone"
    );
}

/// The rule engine under another name, so replies show which worker answered.
struct Named(Arc<dyn workers::agents::Engine>, &'static str);

impl workers::agents::Engine for Named {
    fn name(&self) -> &'static str {
        self.1
    }
    fn choose_agent<'a>(
        &'a self,
        agents: &'a [workers::agents::AgentCard],
        message: &'a str,
    ) -> workers::agents::BoxFuture<'a, Result<Option<String>, workers::agents::EngineError>> {
        self.0.choose_agent(agents, message)
    }
    fn next_step<'a>(
        &'a self,
        turn: workers::agents::TurnView<'a>,
    ) -> workers::agents::BoxFuture<'a, Result<workers::agents::Step, workers::agents::EngineError>>
    {
        self.0.next_step(turn)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_keep_one_conversations_turns_in_order() {
    let stack = Stack::start_with(|args| {
        args.ingress.rate_limit_messages = 10_000;
    })
    .await;
    // A second worker with its own NATS connection, as a second process would have.
    let mut agents = workers::startup::load_agents(&stack.args.worker).unwrap();
    agents.engine = Arc::new(Named(agents.engine.clone(), "second-worker"));
    let (_client, js) = common::jetstream::connect(&stack.args.nats).await.unwrap();
    let stream = common::jetstream::ensure_chat_stream(&js, &stack.args.nats)
        .await
        .unwrap();
    let (consumer, worker) =
        workers::startup::consumer_and_state(js, stream, agents, &stack.args.worker)
            .await
            .unwrap();
    tokio::spawn(workers::consumer::run(
        consumer,
        worker,
        64,
        stack.shutdown.clone(),
    ));

    let (mut socket, _) = new_session(&stack).await;
    // Other conversations run beside it.
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(new_session(&stack).await.0);
    }
    const MESSAGES: usize = 40;
    for i in 0..MESSAGES {
        let content = if i % 2 == 0 {
            format!("hello {i}")
        } else {
            format!("where is ORD-100{} ({i})", i % 9 + 1)
        };
        send_json(
            &mut socket,
            json!({"type": "message", "content": content, "client_msg_id": format!("m-{i}")}),
        )
        .await;
        for other in &mut others {
            send_json(other, json!({"type": "message", "content": "hi"})).await;
        }
    }
    let mut events = Vec::new();
    while events.iter().filter(|e: &&Value| is_completion(e)).count() < MESSAGES {
        events.extend(turn_events(&mut socket).await);
    }
    // Walking the thread's events in stream order: a turn starts only after the previous
    // one completed, and turns answer the messages in the order they were stored.
    let received = events
        .iter()
        .filter(|e| e["kind"] == "message.received")
        .count();
    assert_eq!(received, MESSAGES);
    let mut open: Option<String> = None;
    let mut answered = Vec::new();
    let mut engines = std::collections::HashSet::new();
    for event in &events {
        let turn = event["turn_id"].as_str().unwrap().to_owned();
        match event["kind"].as_str().unwrap() {
            "message.received" => {}
            "turn.started" => {
                assert!(
                    open.is_none(),
                    "turn {turn} started while {open:?} was running"
                );
                open = Some(turn.clone());
                answered.push(event["message_seq"].as_u64().unwrap());
            }
            "agent.replied" => {
                assert_eq!(open.as_deref(), Some(turn.as_str()));
                engines.insert(event["engine"].as_str().unwrap().to_owned());
                if is_completion(event) {
                    open = None;
                }
            }
            _ => assert_eq!(open.as_deref(), Some(turn.as_str()), "{event}"),
        }
    }
    assert!(
        answered.windows(2).all(|w| w[0] < w[1]),
        "answered out of order: {answered:?}"
    );
    assert_eq!(answered.len(), MESSAGES);
    assert_eq!(
        engines,
        ["rules", "second-worker"]
            .map(String::from)
            .into_iter()
            .collect(),
        "both workers answered messages of the conversation"
    );
}
