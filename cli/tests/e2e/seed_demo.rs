//! `smart-support seed-demo` fills a running stack through its front doors: conversations
//! that were answered, escalated and resolved, and dead letters; `--if-empty` leaves a stack
//! with conversations alone.

use cli::seed_demo::{SeedDemoArgs, run};

use crate::support::Stack;

fn args(stack: &Stack, if_empty: bool) -> SeedDemoArgs {
    SeedDemoArgs {
        ws_url: stack.ws_url(""),
        api_url: format!("http://{}", stack.addr),
        api_token: None,
        conversations: 24,
        concurrency: 4,
        dead_letters: 2,
        if_empty,
        seed: 7,
        nats: stack.args.nats.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_conversations_and_dead_letters_show_in_the_api_and_a_second_run_adds_nothing() {
    let stack = Stack::start().await;
    let seeded = run(&args(&stack, true)).await.expect("the seeding runs");
    assert_eq!(seeded.conversations, 24);
    assert_eq!(seeded.failed_conversations, 0);
    assert!(seeded.replies >= 24, "{seeded:?}");
    assert!(seeded.escalated > 0 && seeded.resolved > 0, "{seeded:?}");

    // Every conversation is listed, the resolved ones as resolved; each unreadable message
    // is a failed conversation of its own, and a dead letter.
    let with_status = |page: &serde_json::Value, status: &str| {
        page["items"].as_array().map_or(0, |items| {
            items.iter().filter(|c| c["status"] == status).count() as u64
        })
    };
    let page = stack
        .get_until("/api/conversations?limit=100", |page| {
            page["items"]
                .as_array()
                .is_some_and(|items| items.len() == 26)
                && with_status(page, "resolved") == seeded.resolved
                && with_status(page, "failed") == 2
        })
        .await;
    assert_eq!(with_status(&page, "escalated"), seeded.escalated);
    stack
        .get_until("/api/dead-letters", |list| {
            list["items"]
                .as_array()
                .is_some_and(|items| items.len() == 2)
        })
        .await;

    let again = run(&args(&stack, true)).await.expect("the second run runs");
    assert_eq!(again.conversations, 0, "{again:?}");
    let (_, page) = stack.get("/api/conversations?limit=100").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 26);
}
