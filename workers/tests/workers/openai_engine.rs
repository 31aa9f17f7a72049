//! The OpenAI-compatible engine against a fake chat-completions server: what it sends,
//! how answers become steps, and how failures are classified.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::FakeLlm;
use workers::agents::{
    AgentCard, CallOutcome, CallRecord, Engine, EngineError, EngineSettings, OpenAiArgs,
    OpenAiEngine, Step, ToolDef, TurnView,
};

const KEY: &str = "sk-test-secret-0123456789";

fn engine(llm: &FakeLlm) -> OpenAiEngine {
    engine_with(llm, Some(KEY), Duration::from_secs(10))
}

fn engine_with(llm: &FakeLlm, key: Option<&str>, timeout: Duration) -> OpenAiEngine {
    OpenAiEngine::new(OpenAiArgs {
        // A trailing slash, as people write it; the engine trims it.
        openai_base_url: format!("{}/", llm.url()),
        openai_model: "test-model".into(),
        openai_api_key: key.map(str::to_owned),
        openai_timeout: timeout,
        openai_memory_tokens: 4000,
        openai_breaker_failures: 0,
        openai_breaker_cool_down: Duration::from_secs(30),
        openai_stream: true,
    })
    .expect("engine")
}

fn orders_agent() -> AgentCard {
    AgentCard {
        name: "orders".into(),
        description: "Answers questions about orders and deliveries.".into(),
        instructions: "Look the order up before you answer.".into(),
    }
}

fn billing_agent() -> AgentCard {
    AgentCard {
        name: "billing".into(),
        description: "Answers questions about charges and refunds.".into(),
        instructions: "Be precise about amounts.".into(),
    }
}

fn get_order_tool() -> ToolDef {
    ToolDef {
        name: "getOrder".into(),
        description: "Fetch one order by its id.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"order_id": {"type": "string", "pattern": "^ORD-[0-9]+$"}},
            "required": ["order_id"],
        }),
    }
}

async fn first_step(engine: &OpenAiEngine) -> Result<Step, EngineError> {
    let agent = orders_agent();
    let tools = [get_order_tool()];
    engine
        .next_step(TurnView {
            agent: &agent,
            settings: &EngineSettings::default(),
            tools: &tools,
            message: "Where is my order ORD-1001?",
            calls: &[],
            earlier: &[],
            deltas: None,
        })
        .await
}

fn assert_malformed(result: Result<Step, EngineError>) {
    match result {
        Err(EngineError::Retryable(message)) => assert!(
            message.starts_with("malformed response:"),
            "unexpected message: {message}"
        ),
        other => panic!("expected a retryable malformed response, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tool_call_round_trip_sends_the_call_and_its_result_back_and_returns_the_reply() {
    let llm = FakeLlm::start().await;
    llm.push_tool_call("getOrder", r#"{"order_id":"ORD-1001"}"#);
    llm.push_reply("Your order ORD-1001 has shipped.");
    let engine = engine(&llm);
    let agent = orders_agent();
    let tools = [get_order_tool()];
    let message = "Where is my order ORD-1001?";

    let step = engine
        .next_step(TurnView {
            agent: &agent,
            settings: &EngineSettings::default(),
            tools: &tools,
            message,
            calls: &[],
            earlier: &[],
            deltas: None,
        })
        .await
        .expect("first step");
    let Step::CallTool { tool, params } = step else {
        panic!("expected a tool call, got {step:?}");
    };
    assert_eq!(tool, "getOrder");
    assert_eq!(params, json!({"order_id": "ORD-1001"}));

    let calls = [CallRecord {
        tool,
        params,
        outcome: CallOutcome::Succeeded {
            status: 200,
            result: json!({"order_id": "ORD-1001", "status": "shipped"}),
        },
    }];
    let step = engine
        .next_step(TurnView {
            agent: &agent,
            settings: &EngineSettings::default(),
            tools: &tools,
            message,
            calls: &calls,
            earlier: &[],
            deltas: None,
        })
        .await
        .expect("second step");
    assert_eq!(step, Step::Reply("Your order ORD-1001 has shipped.".into()));

    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    let messages = requests[1]["messages"].as_array().expect("messages");
    assert_eq!(
        messages.len(),
        4,
        "system, user, assistant, tool: {messages:?}"
    );
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap();
    assert!(system.contains("orders"), "{system}");
    assert!(
        system.contains("Look the order up before you answer."),
        "{system}"
    );
    assert_eq!(messages[1], json!({"role": "user", "content": message}));
    assert_eq!(
        messages[2],
        json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": "call_1",
                "type": "function",
                "function": {"name": "getOrder", "arguments": r#"{"order_id":"ORD-1001"}"#},
            }],
        })
    );
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_call_id"], "call_1");
    let content: Value = serde_json::from_str(
        messages[3]["content"]
            .as_str()
            .expect("content is a string"),
    )
    .expect("content is JSON");
    assert_eq!(
        content,
        json!({"status": 200, "result": {"order_id": "ORD-1001", "status": "shipped"}})
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_retryable_malformed_response() {
    let llm = FakeLlm::start().await;
    llm.push_raw("<html>upstream error</html>");
    assert_malformed(first_step(&engine(&llm)).await);
}

#[tokio::test]
async fn json_without_choices_is_a_retryable_malformed_response() {
    let llm = FakeLlm::start().await;
    llm.push_json(json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": []}));
    assert_malformed(first_step(&engine(&llm)).await);
}

#[tokio::test]
async fn a_tool_call_whose_arguments_are_not_an_object_is_a_retryable_malformed_response() {
    let llm = FakeLlm::start().await;
    llm.push_tool_call("getOrder", r#"["ORD-1001"]"#);
    llm.push_tool_call("getOrder", "{not json");
    let engine = engine(&llm);
    assert_malformed(first_step(&engine).await);
    assert_malformed(first_step(&engine).await);
}

#[tokio::test]
async fn a_message_without_tool_calls_or_content_is_a_retryable_malformed_response() {
    let llm = FakeLlm::start().await;
    llm.push_json(
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": ""}}]}),
    );
    assert_malformed(first_step(&engine(&llm)).await);
}

#[tokio::test]
async fn a_503_is_retryable() {
    let llm = FakeLlm::start().await;
    llm.push_status(503, r#"{"error":{"message":"overloaded"}}"#);
    match first_step(&engine(&llm)).await {
        Err(EngineError::Retryable(message)) => assert!(message.contains("503"), "{message}"),
        other => panic!("expected retryable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_429_is_retryable() {
    let llm = FakeLlm::start().await;
    llm.push_status(429, r#"{"error":{"message":"rate limited"}}"#);
    assert!(matches!(
        first_step(&engine(&llm)).await,
        Err(EngineError::Retryable(_))
    ));
}

#[tokio::test]
async fn a_401_is_permanent_and_the_error_does_not_contain_the_key() {
    let llm = FakeLlm::start().await;
    // Servers like to echo the key they rejected.
    llm.push_status(
        401,
        &json!({"error": {"message": format!("Incorrect API key provided: {KEY}")}}).to_string(),
    );
    match first_step(&engine(&llm)).await {
        Err(err @ EngineError::Permanent(_)) => {
            let text = format!("{err} {err:?}");
            assert!(text.contains("401"), "{text}");
            assert!(text.contains("Incorrect API key"), "{text}");
            assert!(!text.contains(KEY), "the key leaked: {text}");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_retryable_every_time() {
    let llm = FakeLlm::start().await;
    llm.set_default_status(500);
    let engine = engine(&llm);
    for _ in 0..3 {
        assert!(matches!(
            first_step(&engine).await,
            Err(EngineError::Retryable(_))
        ));
    }
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let engine = OpenAiEngine::new(OpenAiArgs {
        // Nothing listens there: free_port binds and closes it.
        openai_base_url: format!("http://127.0.0.1:{}/v1", testkit::free_port()),
        openai_model: "test-model".into(),
        openai_api_key: None,
        openai_timeout: Duration::from_secs(10),
        openai_memory_tokens: 4000,
        openai_breaker_failures: 0,
        openai_breaker_cool_down: Duration::from_secs(30),
        openai_stream: true,
    })
    .expect("engine");
    match first_step(&engine).await {
        Err(EngineError::Retryable(message)) => {
            assert!(message.contains("unreachable"), "{message}")
        }
        other => panic!("expected retryable, got {other:?}"),
    }
}

#[tokio::test]
async fn the_api_key_is_sent_as_a_bearer_token() {
    let llm = FakeLlm::start().await;
    first_step(&engine(&llm)).await.expect("default reply");
    first_step(&engine_with(&llm, None, Duration::from_secs(10)))
        .await
        .expect("default reply");
    assert_eq!(llm.authorizations(), [Some(format!("Bearer {KEY}")), None]);
}

#[tokio::test]
async fn the_agents_tools_are_listed_with_their_json_schema_parameters() {
    let llm = FakeLlm::start().await;
    first_step(&engine(&llm)).await.expect("default reply");
    let request = &llm.requests()[0];
    assert_eq!(request["model"], "test-model");
    assert_eq!(
        request["tools"],
        json!([{
            "type": "function",
            "function": {
                "name": "getOrder",
                "description": "Fetch one order by its id.",
                "parameters": get_order_tool().parameters,
            },
        }])
    );
}

#[tokio::test]
async fn an_agent_without_tools_sends_no_tools() {
    let llm = FakeLlm::start().await;
    let agent = orders_agent();
    engine(&llm)
        .next_step(TurnView {
            agent: &agent,
            settings: &EngineSettings::default(),
            tools: &[],
            message: "hello",
            calls: &[],
            earlier: &[],
            deltas: None,
        })
        .await
        .expect("default reply");
    assert!(llm.requests()[0].get("tools").is_none());
}

#[tokio::test]
async fn choose_agent_picks_a_listed_agent() {
    let llm = FakeLlm::start().await;
    llm.push_tool_call("choose_agent", r#"{"agent":"billing"}"#);
    let agents = [orders_agent(), billing_agent()];
    let chosen = engine(&llm)
        .choose_agent(&agents, "I was charged twice")
        .await
        .expect("choice");
    assert_eq!(chosen.as_deref(), Some("billing"));

    let request = &llm.requests()[0];
    assert_eq!(
        request["tool_choice"],
        json!({"type": "function", "function": {"name": "choose_agent"}})
    );
    assert_eq!(
        request["tools"][0]["function"]["parameters"],
        json!({
            "type": "object",
            "properties": {"agent": {"type": "string", "enum": ["orders", "billing"]}},
            "required": ["agent"],
        })
    );
    let system = request["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("billing: Answers questions about charges and refunds."),
        "{system}"
    );
    assert_eq!(request["messages"][1]["content"], "I was charged twice");
}

#[tokio::test]
async fn choose_agent_falls_back_to_none_for_an_unknown_agent_or_no_tool_call() {
    let llm = FakeLlm::start().await;
    llm.push_tool_call("choose_agent", r#"{"agent":"sales"}"#);
    llm.push_reply("billing");
    let agents = [orders_agent(), billing_agent()];
    let engine = engine(&llm);
    assert_eq!(
        engine.choose_agent(&agents, "hi").await.expect("choice"),
        None
    );
    assert_eq!(
        engine.choose_agent(&agents, "hi").await.expect("choice"),
        None
    );
}

#[tokio::test]
async fn choose_agent_failures_are_classified_like_steps() {
    let llm = FakeLlm::start().await;
    llm.push_status(502, "bad gateway");
    llm.push_status(400, r#"{"error":{"message":"tool_choice not supported"}}"#);
    let agents = [orders_agent()];
    let engine = engine(&llm);
    assert!(matches!(
        engine.choose_agent(&agents, "hi").await,
        Err(EngineError::Retryable(_))
    ));
    assert!(matches!(
        engine.choose_agent(&agents, "hi").await,
        Err(EngineError::Permanent(_))
    ));
}

#[tokio::test]
async fn a_server_slower_than_the_time_out_is_retryable() {
    let llm = FakeLlm::start().await;
    llm.push_stall();
    let engine = engine_with(&llm, Some(KEY), Duration::from_millis(200));
    match first_step(&engine).await {
        Err(EngineError::Retryable(message)) => {
            assert!(message.contains("timed out"), "{message}")
        }
        other => panic!("expected a retryable time-out, got {other:?}"),
    }
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_a_retryable_malformed_response() {
    let llm = FakeLlm::start().await;
    llm.push_reply(&"x".repeat(1024 * 1024 + 1));
    assert_malformed(first_step(&engine(&llm)).await);
}

#[tokio::test]
async fn a_key_that_cannot_be_a_header_is_permanent_and_not_shown() {
    let llm = FakeLlm::start().await;
    let key = "sk-broken\nkey";
    match first_step(&engine_with(&llm, Some(key), Duration::from_secs(10))).await {
        Err(err @ EngineError::Permanent(_)) => {
            let text = format!("{err} {err:?}");
            assert!(!text.contains("sk-broken"), "the key leaked: {text}");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    assert!(llm.requests().is_empty(), "nothing was sent");
}
