//! Each agent may name its own engine and model settings in the agents config: a worker
//! whose `AGENT_ENGINE` is `rules` answers one agent by rules and another by a model.

use common::events::{Envelope, Payload, ThreadId, TokenUsage};
use testkit::FakeLlm;
use workers::WorkerArgs;
use workers::turn::{Incoming, Prior};

const CONFIG: &str = "\
default_agent: general
agents:
  - name: triage
    description: Greetings
    route: {keywords: [hello]}
    fallback_reply: Hello from the rules.
  - name: general
    description: Everything else
    engine: openai
    model: big-model
    temperature: 0.3
    max_tokens: 120
";

async fn answer(agents: &workers::turn::Agents, text: &str) -> Vec<Envelope> {
    let thread = ThreadId::generate();
    let incoming = Incoming {
        event: Envelope::user_message(&thread, text),
        seq: 1,
    };
    let mut events = Vec::new();
    workers::turn::run(agents, &incoming, Prior::default(), &mut events, || {
        time::OffsetDateTime::now_utc()
    })
    .await
    .unwrap();
    events
}

fn replied(events: &[Envelope]) -> (String, String, String) {
    let reply = reply(events);
    (
        reply.agent.clone(),
        reply.engine.clone(),
        reply.text.clone(),
    )
}

fn reply(events: &[Envelope]) -> &common::events::AgentReplied {
    events
        .iter()
        .find_map(|e| match &e.payload {
            Payload::AgentReplied(r) => Some(r),
            _ => None,
        })
        .expect("a reply")
}

#[tokio::test]
async fn an_agent_answers_with_the_engine_and_model_settings_it_names_and_its_tokens_are_on_the_reply()
 {
    let llm = FakeLlm::start().await;
    llm.set_default_reply("From the model.");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agents.yaml");
    std::fs::write(&path, CONFIG).unwrap();
    let args = WorkerArgs::from_flags([
        "--agents-config",
        path.to_str().unwrap(),
        "--engine",
        "rules",
        "--openai-base-url",
        &llm.url(),
        "--openai-model",
        "small-model",
    ])
    .unwrap();
    let agents = workers::startup::load_agents(&args).unwrap();

    let events = answer(&agents, "hello there").await;
    assert_eq!(
        replied(&events),
        (
            "triage".into(),
            "rules".into(),
            "Hello from the rules.".into()
        )
    );
    assert!(llm.requests().is_empty(), "the rules agent asks no model");
    assert_eq!(reply(&events).usage, None, "no model, no tokens");

    let events = answer(&agents, "my parcel is late").await;
    assert_eq!(
        replied(&events),
        ("general".into(), "openai".into(), "From the model.".into())
    );
    // The fake reports 42 prompt and 7 completion tokens per answer.
    assert_eq!(
        reply(&events).usage,
        Some(TokenUsage {
            prompt_tokens: 42,
            completion_tokens: 7
        })
    );
    let requests = llm.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request["model"], "big-model");
    assert_eq!(request["temperature"], 0.3);
    assert_eq!(request["max_tokens"], 120);
}

#[tokio::test]
async fn a_worker_refuses_to_start_with_a_wrong_agent_engine_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agents.yaml");
    std::fs::write(&path, CONFIG.replace("temperature: 0.3", "temperature: 7")).unwrap();
    let args = WorkerArgs::from_flags(["--agents-config", path.to_str().unwrap()]).unwrap();
    let err = workers::startup::load_agents(&args).err().expect("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:11: agent \"general\": temperature 7 is not between 0 and 2",
            path.display()
        )
    );
}
