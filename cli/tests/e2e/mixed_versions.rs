//! An upgrade as it meets a real stream: the services of this version start on the chat
//! stream version 1 of the events recorded (`fixtures/v1/`), go on answering its
//! conversations with version-2 turns, and the projection of the mixed stream rebuilds and
//! verifies equal.

use cli::rebuild::{ReplayArgs, VerifyArgs};
use common::events::{Envelope, ThreadId};
use projections::projector::rebuild::Reader;
use serde_json::Value;

use crate::support::{Stack, completes, find, frames_until, kinds, next_frame, send_json};

/// A thread of the recording whose last turn version 1 ended with outcome `escalated`.
const ESCALATED_V1: &str = "ab2e79d19a6749e78a932a50bb41e28b";
/// A thread of the recording whose last turn version 1 ended with a plain reply.
const REPLIED_V1: &str = "c6d8c26d65c043568801a531d007c47f";

/// Stores a customer message on a recorded thread (as the ingress would) and returns the
/// events of its turn from the replay once the turn has ended.
async fn answer(stack: &Stack, thread: &str, text: &str) -> Vec<Value> {
    let js = async_nats::jetstream::new(stack.nats_client().await);
    let message = Envelope::user_message(&ThreadId::parse(thread).unwrap(), text);
    let seq = common::user_messages::store(&js, &message)
        .await
        .expect("the message is stored");
    let turn = message.turn_id.to_string();
    let replay = stack
        .get_until(&format!("/api/conversations/{thread}/replay"), |replay| {
            replay["steps"].as_array().is_some_and(|steps| {
                steps.iter().any(|s| {
                    s["turn_id"] == turn.as_str()
                        && (s["kind"] == "turn.held" || s["outcome"].is_string())
                })
            })
        })
        .await;
    let steps: Vec<Value> = replay["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["turn_id"] == turn.as_str())
        .cloned()
        .collect();
    assert_eq!(steps[0]["seq"].as_u64(), Some(seq), "{steps:?}");
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_stream_goes_on_in_version_2_and_the_mixed_projection_verifies_equal() {
    let stack = Stack::start_on_v1_stream().await;

    // Version 1 left the conversation with a person (`turn.completed`, outcome escalated):
    // the agents still do not answer it.
    let held = answer(&stack, ESCALATED_V1, "Hello? Anyone?").await;
    assert_eq!(kinds(&held), ["message.received", "turn.held"], "{held:?}");
    assert_eq!(held[1]["reason"], "escalated");

    // A conversation version 1 answered goes on in version 2: a write is asked for (the
    // question's `pending` on the reply), then confirmed and made.
    let asked = answer(&stack, REPLIED_V1, "Please cancel ORD-1001").await;
    assert_eq!(
        kinds(&asked),
        ["message.received", "turn.started", "agent.replied"]
    );
    assert_eq!(asked[2]["outcome"], "awaiting_confirmation");
    assert_eq!(asked[2]["pending"]["tool"], "cancelOrder");
    let done = answer(&stack, REPLIED_V1, "yes").await;
    assert_eq!(find(&done, "tool.succeeded")["tool"], "cancelOrder");
    assert_eq!(stack.shop_order("ORD-1001").await.1["status"], "cancelled");

    // A new conversation, over the WebSocket.
    let mut socket = stack.connect("").await;
    next_frame(&mut socket).await; // the session
    send_json(
        &mut socket,
        serde_json::json!({"type": "message", "content": "Where is ORD-1002?"}),
    )
    .await;
    frames_until(&mut socket, completes).await;

    // The replay of the mixed thread holds both versions' steps, in stream order: version
    // 1's routing and ends of turns, then version 2's turns without them.
    let (status, replay) = stack
        .get(&format!("/api/conversations/{REPLIED_V1}/replay"))
        .await;
    assert_eq!(status, 200);
    let steps = replay["steps"].as_array().unwrap();
    let last_v1 = steps.iter().rposition(|s| s["kind"] == "turn.completed");
    let first_v2 = steps
        .iter()
        .position(|s| s["turn_id"] == asked[0]["turn_id"]);
    assert!(
        kinds(steps).contains(&"agent.routed") && last_v1 < first_v2,
        "{:?}",
        kinds(steps)
    );

    // The projection of the mixed stream equals a rebuild of it.
    let args = VerifyArgs {
        replay: ReplayArgs {
            batch: 13,
            reader: Reader::Pull,
            quiet: true,
        },
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
        limit: 5,
    };
    assert!(cli::rebuild::verify(&args).await.unwrap(), "equal");
}
