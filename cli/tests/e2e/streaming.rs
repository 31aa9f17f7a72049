//! A streamed reply as a customer sees it: `delta` frames while the model writes, then the
//! stored `agent.replied` with the whole text; a resume gets the stored events only.

use serde_json::{Value, json};
use testkit::fake_llm::FakeLlm;

use crate::support::{Stack, completes, frames_until, next_frame, resume_query, send_json};

const REPLY: &str = "Hello! I am the model, writing this reply a few characters at a time.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_sees_the_reply_grow_in_delta_frames_and_a_resume_gets_the_stored_reply() {
    let llm = FakeLlm::start().await;
    llm.set_default_reply(REPLY);
    let url = llm.url();
    let stack = Stack::start_with(|args| {
        args.worker.engine = workers::config::EngineKind::Openai;
        args.worker.openai.openai_base_url = url;
    })
    .await;
    let mut socket = stack.connect("").await;
    let session = next_frame(&mut socket).await;
    send_json(&mut socket, json!({"type": "message", "content": "hello"})).await;
    // The pieces travel on core NATS and the stored events through the stream: the last
    // pieces may come after the turn's end (a client drops those of a turn it has the reply of).
    let mut frames = Vec::new();
    let delta_text = |frames: &[Value]| -> String {
        frames
            .iter()
            .filter(|f| f["type"] == "delta")
            .map(|d| d["text"].as_str().unwrap())
            .collect()
    };
    while !(frames.iter().any(completes) && delta_text(&frames).len() >= REPLY.len()) {
        frames.push(next_frame(&mut socket).await);
    }
    let replied = frames
        .iter()
        .find(|f| f["type"] == "event" && f["event"]["kind"] == "agent.replied")
        .expect("the stored reply");
    assert_eq!(replied["event"]["text"], REPLY);
    let deltas: Vec<&Value> = frames.iter().filter(|f| f["type"] == "delta").collect();
    assert!(deltas.len() > 5, "{frames:#?}");
    for delta in &deltas {
        assert_eq!(delta["turn_id"], replied["event"]["turn_id"]);
        let keys: Vec<&String> = delta.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["text", "turn_id", "type"], "the frame of API.md");
    }
    assert_eq!(delta_text(&frames), REPLY);

    // A reconnect gets the stored events, never a delta.
    let ack_seq = frames
        .iter()
        .find(|f| f["type"] == "ack")
        .map(|f| f["seq"].as_u64().unwrap())
        .unwrap();
    let mut again = stack.connect(&resume_query(&session, Some(ack_seq))).await;
    let resumed = frames_until(&mut again, completes).await;
    assert!(resumed.iter().all(|f| f["type"] != "delta"), "{resumed:#?}");
    assert!(
        resumed
            .iter()
            .any(|f| f["type"] == "event" && f["event"]["text"] == REPLY)
    );
}
