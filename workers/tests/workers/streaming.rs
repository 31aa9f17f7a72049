//! Streamed replies (`stream: true`) against `testkit::FakeLlm` speaking server-sent
//! events as the public API does: content and tool-call deltas in pieces, keep-alive
//! comments, the usage chunk, `[DONE]`, a stream that breaks midway or carries an error,
//! a slow first byte; and a worker's turn sending the pieces over core NATS.

use std::sync::Mutex;
use std::time::Duration;

use async_nats::HeaderMap;
use common::events::{Envelope, Payload, ThreadId, TokenUsage};
use futures::StreamExt;
use serde_json::{Value, json};
use testkit::fake_llm::{Answer, sse};
use testkit::{FakeLlm, NatsServer};
use workers::agents::{
    AgentCard, BoxFuture, Deltas, Engine, EngineError, EngineSettings, Metered, OpenAiArgs,
    OpenAiEngine, Step, ToolDef, TurnView,
};
use workers::consumer::{Outcome, RetryPolicy, Worker, step};

use crate::fixture::{chat_stream, status_worker, store, turn_events, unordered};

fn engine(llm: &FakeLlm, timeout: Duration) -> OpenAiEngine {
    OpenAiEngine::new(OpenAiArgs {
        openai_base_url: llm.url(),
        openai_model: "test-model".into(),
        openai_api_key: None,
        openai_timeout: timeout,
        openai_memory_tokens: 4000,
        openai_breaker_failures: 0,
        openai_breaker_cool_down: Duration::from_secs(30),
        openai_stream: true,
    })
    .unwrap()
}

/// Keeps the pieces it hears.
#[derive(Debug, Default)]
struct Heard(Mutex<Vec<String>>);

impl Deltas for Heard {
    fn send<'a>(&'a self, text: &'a str) -> BoxFuture<'a, ()> {
        self.0.lock().unwrap().push(text.to_owned());
        Box::pin(async {})
    }
}

impl Heard {
    fn pieces(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

async fn ask(engine: &OpenAiEngine, heard: &Heard) -> Result<Metered<Step>, EngineError> {
    let agent = AgentCard {
        name: "orders".into(),
        description: "Orders.".into(),
        instructions: "Look orders up.".into(),
    };
    let tools = [ToolDef {
        name: "getOrder".into(),
        description: "One order.".into(),
        parameters: json!({"type": "object"}),
    }];
    engine
        .next_step_metered(TurnView {
            agent: &agent,
            settings: &EngineSettings::default(),
            tools: &tools,
            message: "Where is ORD-1001?",
            calls: &[],
            earlier: &[],
            deltas: Some(heard),
        })
        .await
}

fn completion_of(answer: Answer) -> Value {
    match answer {
        Answer::Json(body) => body,
        other => panic!("{other:?}"),
    }
}

const REPLY: &str = "Your order ORD-1001 shipped yesterday and arrives tomorrow.";

#[tokio::test]
async fn a_streamed_reply_is_put_together_its_pieces_are_heard_in_order_and_its_usage_read() {
    let llm = FakeLlm::start().await;
    llm.push_reply(REPLY);
    let heard = Heard::default();
    let (step, usage) = ask(&engine(&llm, Duration::from_secs(10)), &heard)
        .await
        .unwrap();
    assert_eq!(step, Step::Reply(REPLY.into()));
    let pieces = heard.pieces();
    assert!(pieces.len() > 10, "{pieces:?}");
    assert_eq!(pieces.concat(), REPLY);
    assert_eq!(
        usage,
        Some(TokenUsage {
            prompt_tokens: 42,
            completion_tokens: 7
        }),
        "from the last chunk"
    );
    let request = &llm.requests()[0];
    assert_eq!(request["stream"], true);
    assert_eq!(request["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn tool_call_deltas_are_put_together_by_index_with_arguments_split_over_chunks() {
    let llm = FakeLlm::start().await;
    let chunk = |delta: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
        )
    };
    let call = |index: u64, id: Option<&str>, name: Option<&str>, arguments: &str| {
        let mut function = json!({"arguments": arguments});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut call = json!({"index": index, "function": function});
        if let Some(id) = id {
            call["id"] = json!(id);
            call["type"] = json!("function");
        }
        chunk(json!({"tool_calls": [call]}))
    };
    // Two calls, their pieces interleaved; one event cut in two across writes; keep-alives.
    let second = call(1, None, None, r#"RD-2"}"#);
    let (second_a, second_b) = second.split_at(20);
    llm.push_sse(vec![
        ": keep-alive\n\n".into(),
        chunk(json!({"role": "assistant", "content": null})),
        call(0, Some("call_a"), Some("getOrder"), ""),
        call(1, Some("call_b"), Some("getOrder"), r#"{"order_id":"O"#),
        call(0, None, None, r#"{"order_"#),
        ": keep-alive\n\n".into(),
        second_a.into(),
        second_b.into(),
        call(0, None, None, r#"id":"ORD-1"}"#),
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}})
        ),
        "data: [DONE]\n\n".into(),
    ]);
    let heard = Heard::default();
    let (step, usage) = ask(&engine(&llm, Duration::from_secs(10)), &heard)
        .await
        .unwrap();
    assert_eq!(
        step,
        Step::CallTool {
            tool: "getOrder".into(),
            params: json!({"order_id": "ORD-1"}),
        },
        "the first call, by index"
    );
    assert_eq!(usage.map(|u| u.prompt_tokens), Some(5));
    assert!(heard.pieces().is_empty(), "no content, nothing heard");
}

#[tokio::test]
async fn a_stream_that_breaks_midway_is_asked_again_as_a_whole() {
    let llm = FakeLlm::start().await;
    let whole = sse(&completion_of(Answer::reply(REPLY)), true);
    llm.push_broken_sse(whole[..whole.len() / 2].to_vec());
    llm.push_reply(REPLY);
    let heard = Heard::default();
    let (step, _) = ask(&engine(&llm, Duration::from_secs(10)), &heard)
        .await
        .unwrap();
    assert_eq!(step, Step::Reply(REPLY.into()), "only the whole answer");
    assert_eq!(llm.requests().len(), 2);
    assert_eq!(
        heard.pieces().concat(),
        REPLY,
        "each piece once: of the second attempt, what goes beyond the first"
    );
}

#[tokio::test]
async fn a_stream_that_ends_without_done_or_carries_an_error_every_time_is_retryable() {
    let llm = FakeLlm::start().await;
    let whole = sse(&completion_of(Answer::reply(REPLY)), true);
    // Ends cleanly, but before `[DONE]`.
    llm.push_sse(whole[..whole.len() - 1].to_vec());
    llm.push_sse(vec![
        whole[1].clone(),
        "data: {\"error\":{\"message\":\"the model is overloaded\",\"type\":\"server_error\"}}\n\n"
            .into(),
    ]);
    let heard = Heard::default();
    match ask(&engine(&llm, Duration::from_secs(10)), &heard).await {
        Err(EngineError::Retryable(message)) => {
            assert!(message.contains("stream broke 2 times"), "{message}");
            assert!(message.contains("overloaded"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(llm.requests().len(), 2);
}

#[tokio::test]
async fn a_slow_first_byte_is_waited_for_within_the_time_out_and_not_beyond() {
    let llm = FakeLlm::start().await;
    llm.push(Answer::Slow(
        Duration::from_millis(300),
        Box::new(Answer::reply(REPLY)),
    ));
    let heard = Heard::default();
    let (step, _) = ask(&engine(&llm, Duration::from_secs(10)), &heard)
        .await
        .unwrap();
    assert_eq!(step, Step::Reply(REPLY.into()));

    llm.push(Answer::Slow(
        Duration::from_secs(5),
        Box::new(Answer::reply(REPLY)),
    ));
    match ask(&engine(&llm, Duration::from_millis(300)), &heard).await {
        Err(EngineError::Retryable(message)) => assert!(message.contains("timed out"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_streamed_turn_sends_its_pieces_over_core_nats_and_stores_what_it_would_without()
{
    let nats = NatsServer::start();
    let llm = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = RetryPolicy {
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        max_deliveries: 5,
        ack_wait: Duration::from_secs(30),
        order_wait: Duration::from_secs(30),
    };
    let (client, js, stream) = chat_stream(&nats, "streaming-test").await;
    let mut kinds = Vec::new();
    for streamed in ["true", "false"] {
        let args = status_worker(
            dir.path(),
            "127.0.0.1:9".parse().unwrap(),
            &[
                "--engine",
                "openai",
                "--openai-base-url",
                &llm.url(),
                "--openai-stream",
                streamed,
            ],
        );
        let worker = Worker::new(
            js.clone(),
            stream.clone(),
            workers::startup::load_agents(&args).unwrap(),
            policy,
        );
        let thread = ThreadId::generate();
        let mut deltas = client
            .subscribe(common::subjects::reply_delta(&thread))
            .await
            .unwrap();
        client.flush().await.unwrap();
        let message = Envelope::user_message(&thread, "hello");
        let seq = store(&js, &message, HeaderMap::new()).await;
        llm.push_json(
            json!({"choices": [{"message": {"role": "assistant", "tool_calls": [{
            "id": "c", "type": "function",
            "function": {"name": "choose_agent", "arguments": "{\"agent\":\"general\"}"}}]}}]}),
        );
        llm.push_reply(REPLY);
        let payload = message.to_json();
        assert_eq!(
            step(&worker, unordered(seq, 1, &payload)).await,
            Outcome::Done
        );
        let events = turn_events(&stream, &thread).await;
        kinds.push(events.iter().map(|e| e.payload.kind()).collect::<Vec<_>>());
        let reply = events
            .iter()
            .find_map(|e| match &e.payload {
                Payload::AgentReplied(r) => Some(r.text.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(reply, REPLY);
        if streamed == "true" {
            let mut text = String::new();
            while text.len() < REPLY.len() {
                let frame = tokio::time::timeout(Duration::from_secs(5), deltas.next())
                    .await
                    .expect("a delta")
                    .unwrap();
                let frame: Value = serde_json::from_slice(&frame.payload).unwrap();
                assert_eq!(frame["type"], "delta");
                assert_eq!(frame["turn_id"], message.turn_id.to_string());
                text.push_str(frame["text"].as_str().unwrap());
            }
            assert_eq!(text, REPLY);
        } else {
            assert!(
                tokio::time::timeout(Duration::from_millis(200), deltas.next())
                    .await
                    .is_err(),
                "no delta without streaming"
            );
        }
    }
    assert_eq!(kinds[0], kinds[1], "the same events stored either way");
    let info = stream.clone().info().await.unwrap().clone();
    assert!(
        !info.config.subjects.iter().any(|s| s.starts_with("delta")),
        "deltas are never stored"
    );
}
