//! `smart-support seed-demo` fills a running stack through the real pipeline: conversations
//! spread over the last 30 days that were answered, escalated and resolved, escalated ones
//! taken over by the demo's operators (or left waiting in the desk's inbox), and dead letters;
//! `--if-empty` leaves a stack with events alone.

use api::operators::Role;
use cli::seed_demo::{SeedDemoArgs, run};
use time::format_description::well_known::Rfc3339;

use crate::support::Stack;

fn args(stack: &Stack, if_empty: bool) -> SeedDemoArgs {
    SeedDemoArgs {
        conversations: 24,
        concurrency: 4,
        days: 30,
        dead_letters: 2,
        if_empty,
        seed: 1,
        unassigned: 1,
        database_url: Some(stack.args.database.database_url.clone()),
        nats: stack.args.nats.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_conversations_and_dead_letters_show_in_the_api_and_a_second_run_adds_nothing() {
    let stack = Stack::start().await;
    // The demo's operators, as scripts/demo.sh adds them.
    let pool = projections::connect(&stack.args.database).await.unwrap();
    let password = "a long enough password";
    let agent = api::operators::add(&pool, "agent@demo.example", "Alex", Role::Agent, password)
        .await
        .unwrap();
    let admin = api::operators::add(&pool, "admin@demo.example", "Dana", Role::Admin, password)
        .await
        .unwrap();

    let seeded = run(&args(&stack, true)).await.expect("the seeding runs");
    assert_eq!(seeded.conversations, 24);
    assert_eq!(seeded.failed_conversations, 0);
    assert!(seeded.replies >= 24, "{seeded:?}");
    assert!(seeded.escalated > 0 && seeded.resolved > 0, "{seeded:?}");
    // People took over all escalated conversations but the latest one.
    assert_eq!(seeded.waiting, 1, "{seeded:?}");
    assert!(seeded.taken_over > 0, "{seeded:?}");
    assert_eq!(
        seeded.escalated,
        seeded.taken_over + seeded.waiting,
        "{seeded:?}"
    );

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
                && with_status(page, "escalated") == seeded.waiting
        })
        .await;
    assert_eq!(with_status(&page, "escalated"), seeded.waiting);
    let (_, inbox) = stack.get("/api/inbox?view=unassigned").await;
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1, "{inbox}");

    // The taken-over conversations name the demo operators by id and display name (never the
    // email), and each is handed back or resolved.
    let mut by_people = 0;
    for conversation in page["items"].as_array().unwrap() {
        let thread = conversation["thread_id"].as_str().unwrap();
        let (_, replay) = stack
            .get(&format!("/api/conversations/{thread}/replay"))
            .await;
        let text = serde_json::to_string(&replay).unwrap();
        if !text.contains("operator.replied") {
            continue;
        }
        by_people += 1;
        assert!(text.contains("conversation.assigned"), "{text}");
        assert!(
            text.contains("conversation.released") || conversation["status"] == "resolved",
            "{conversation} {text}"
        );
        assert!(
            (text.contains(&agent.id.to_string()) && text.contains("Alex"))
                || (text.contains(&admin.id.to_string()) && text.contains("Dana")),
            "{text}"
        );
        assert!(!text.contains("@demo.example"), "{text}");
    }
    assert_eq!(by_people, seeded.taken_over, "{seeded:?}");
    stack
        .get_until("/api/dead-letters", |list| {
            list["items"]
                .as_array()
                .is_some_and(|items| items.len() == 2)
        })
        .await;

    // Spread over the last 30 days, some in the last 24 hours; each turn keeps its real
    // duration (the workers date their events back as far as the message).
    let now = time::OffsetDateTime::now_utc();
    let ages: Vec<time::Duration> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "failed")
        .map(|c| {
            let started = c["started_at"].as_str().unwrap();
            now - time::OffsetDateTime::parse(started, &Rfc3339).unwrap()
        })
        .collect();
    assert!(
        ages.iter().all(|age| *age <= time::Duration::days(30)),
        "{ages:?}"
    );
    assert!(
        ages.iter().any(|age| *age < time::Duration::days(1)),
        "{ages:?}"
    );
    assert!(
        ages.iter().any(|age| *age > time::Duration::days(7)),
        "{ages:?}"
    );
    let (_, month) = stack.get("/api/analytics?range=30d").await;
    let (_, day) = stack.get("/api/analytics?range=24h").await;
    let conversations = |a: &serde_json::Value| a["totals"]["conversations"].as_u64().unwrap();
    assert_eq!(conversations(&month), 26, "{month}");
    assert!(conversations(&day) < conversations(&month), "{day}");
    let busy_days = month["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|bucket| bucket["conversations"].as_u64() > Some(0))
        .count();
    assert!(
        busy_days >= 10,
        "{busy_days} buckets with conversations: {month}"
    );
    assert!(
        month["totals"]["reply_latency_p95_ms"].as_u64() <= Some(5_000),
        "turns dated back keep their real latency: {month}"
    );

    let again = run(&args(&stack, true)).await.expect("the second run runs");
    assert_eq!(again.conversations, 0, "{again:?}");
    let (_, page) = stack.get("/api/conversations?limit=100").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 26);
}
