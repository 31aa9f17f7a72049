//! `smart-support rebuild` and `verify` against the running stack: REST keeps answering
//! through a rebuild, the swapped-in tables hold the same data, the live projector goes
//! on into them; verify tells a healthy projection from a corrupted one; a dry run
//! changes nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cli::rebuild::{RebuildArgs, ReplayArgs, VerifyArgs};
use projections::projector::rebuild::Reader;
use projections::read_models::snapshot;
use serde_json::{Value, json};

use crate::support::{Stack, completes, frames_until, next_frame, send_json};

fn replay() -> ReplayArgs {
    ReplayArgs {
        batch: 7,
        reader: Reader::Pull,
        quiet: true,
    }
}

fn rebuild_args(stack: &Stack, dry_run: bool) -> RebuildArgs {
    RebuildArgs {
        dry_run,
        replay: replay(),
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
    }
}

/// Chats one message in a new conversation, until its turn completes.
async fn chat(stack: &Stack, content: &str) {
    let mut socket = stack.connect("").await;
    next_frame(&mut socket).await; // the session
    send_json(&mut socket, json!({"type": "message", "content": content})).await;
    frames_until(&mut socket, completes).await;
}

/// The list once it has `count` conversations, each with every message's turn projected
/// (the projector applies a turn's events in more than one batch: a list that only has the
/// rows may still change under a snapshot taken now).
async fn conversations(stack: &Stack, count: usize) -> Value {
    stack
        .get_until("/api/conversations?limit=100", |body| {
            body["items"].as_array().is_some_and(|items| {
                items.len() == count
                    && items.iter().all(|c| {
                        c["message_count"].as_u64().is_some_and(|m| m >= 1)
                            && c["turn_count"] == c["message_count"]
                    })
            })
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_while_rest_keeps_answering_swaps_in_the_same_data_and_the_projector_goes_on() {
    let stack = Stack::start().await;
    for content in ["Where is my order?", "I need a refund", "Hello"] {
        chat(&stack, content).await;
    }
    let before = conversations(&stack, 3).await;

    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (http, addr, stop) = (stack.http.clone(), stack.addr, stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let response = http
                    .get(format!("http://{addr}/api/conversations?limit=100"))
                    .send()
                    .await
                    .expect("REST answers");
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    };
    cli::rebuild::rebuild(&rebuild_args(&stack, false))
        .await
        .expect("the rebuild succeeds");
    // Some answers after the swap too.
    for _ in 0..20 {
        assert_eq!(stack.get("/api/conversations?limit=100").await.0, 200);
    }
    stop.store(true, Ordering::Relaxed);
    let statuses = hammer.await.unwrap();
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every answer during the rebuild is 200: {statuses:?}"
    );

    let after = conversations(&stack, 3).await;
    assert_eq!(
        after, before,
        "the rebuilt tables hold the same conversations"
    );
    chat(&stack, "One more question").await;
    conversations(&stack, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_equal_on_a_healthy_projection_and_a_difference_after_a_row_is_corrupted() {
    let stack = Stack::start().await;
    chat(&stack, "Where is my order?").await;
    chat(&stack, "Hello").await;
    conversations(&stack, 2).await;
    let args = VerifyArgs {
        limit: 5,
        replay: replay(),
        nats: stack.args.nats.clone(),
        database: stack.args.database.clone(),
    };
    assert!(cli::rebuild::verify(&args).await.unwrap(), "equal");

    let pool = projections::connect(&stack.args.database).await.unwrap();
    sqlx::query("update turn set tool_calls = tool_calls + 5")
        .execute(&pool)
        .await
        .unwrap();
    assert!(!cli::rebuild::verify(&args).await.unwrap(), "different");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing() {
    let stack = Stack::start().await;
    chat(&stack, "Where is my order?").await;
    conversations(&stack, 1).await;
    let pool = projections::connect(&stack.args.database).await.unwrap();
    let schemas = || async {
        sqlx::query_scalar::<_, String>(
            "select schema_name::text from information_schema.schemata order by 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let (tables, names) = (snapshot::take(&pool).await.unwrap(), schemas().await);

    cli::rebuild::rebuild(&rebuild_args(&stack, true))
        .await
        .unwrap();

    assert_eq!(snapshot::take(&pool).await.unwrap(), tables);
    assert_eq!(schemas().await, names);
}
