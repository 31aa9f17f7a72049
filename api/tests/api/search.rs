//! `GET /api/conversations?q=`: full-text search over the customer's messages and the
//! replies, ranked, with a snippet, combined with `status`, `agent` and `from`/`to`, paged;
//! and every list item titled by the customer's first message.

use std::time::Duration;

use common::events::{
    AgentReplied, ConversationResolved, Envelope, MessageReceived, ThreadId, TurnId,
};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use crate::server::{Server, event};

/// A conversation: the customer's message at `at`, then `agent`'s reply a second later.
fn exchange(
    thread: &ThreadId,
    at: OffsetDateTime,
    message: &str,
    agent: &str,
    reply: &str,
) -> Vec<Envelope> {
    let turn = TurnId::from_uuid(Uuid::new_v4());
    vec![
        event(
            thread,
            turn,
            at,
            MessageReceived {
                content: message.into(),
                client_msg_id: None,
                backdated_ms: None,
            },
        ),
        event(
            thread,
            turn,
            at + Duration::from_secs(1),
            AgentReplied {
                end: None,
                escalation: None,
                text: reply.into(),
                agent: agent.into(),
                engine: "rules".into(),
                usage: None,
            },
        ),
    ]
}

fn resolved(thread: &ThreadId, at: OffsetDateTime) -> Envelope {
    event(
        thread,
        TurnId::from_uuid(Uuid::new_v4()),
        at,
        ConversationResolved {
            resolved_by: "operator".into(),
            operator: None,
            note: None,
        },
    )
}

/// Applies `events` as one batch after what the server holds; returns its last sequence.
async fn apply(server: &Server, applied: &mut u64, events: &[Envelope]) {
    *applied = server.apply(*applied + 1, events).await;
}

/// The thread ids of a page, in order.
fn threads(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["thread_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn search(server: &Server, query: &str) -> Value {
    let (status, body) = server.get(&format!("/conversations?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

const T0: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

#[tokio::test]
async fn a_search_ranks_the_conversations_that_say_it_more_first_and_skips_the_others() {
    let server = Server::start(Duration::from_secs(2)).await;
    let (often, once, never, in_reply) = (
        ThreadId::generate(),
        ThreadId::generate(),
        ThreadId::generate(),
        ThreadId::generate(),
    );
    let mut applied = 0;
    let mut events = exchange(
        &often,
        T0,
        "I want a refund. The refund for order 12, a refund please",
        "billing",
        "I can help with billing.",
    );
    events.extend(exchange(
        &once,
        T0 + Duration::from_secs(60),
        "The parcel came broken, so I asked for a refund last week and nothing happened since then",
        "billing",
        "I can help with billing.",
    ));
    events.extend(exchange(
        &never,
        T0 + Duration::from_secs(120),
        "Where is my order?",
        "orders",
        "Send me your order number.",
    ));
    events.extend(exchange(
        &in_reply,
        T0 + Duration::from_secs(180),
        "My card was charged twice",
        "billing",
        "The second charge will be refunded within 5 days.",
    ));
    apply(&server, &mut applied, &events).await;

    let body = search(&server, "q=refund").await;
    let found = threads(&body);
    assert_eq!(found.len(), 3, "{body}");
    // Three mentions rank above one; a reply's "refunded" is found by its stem.
    assert_eq!(found[0], often.as_str(), "{body}");
    assert!(found.contains(&once.to_string()) && found.contains(&in_reply.to_string()));
    assert!(!found.contains(&never.to_string()));
    let ranks: Vec<f64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["rank"].as_f64().unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");
    assert!(ranks[0] > ranks[1], "{ranks:?}");
    assert_eq!(body["next_cursor"], Value::Null);

    // Words in any order, a phrase, an exclusion; stop words alone match nothing.
    assert_eq!(
        threads(&search(&server, "q=charged%20card").await),
        [in_reply.to_string()]
    );
    assert_eq!(
        threads(&search(&server, "q=%22order%2012%22").await),
        [often.to_string()]
    );
    let body = search(&server, "q=refund%20-parcel").await;
    assert!(!threads(&body).contains(&once.to_string()), "{body}");
    assert_eq!(
        threads(&search(&server, "q=the").await),
        Vec::<String>::new()
    );
    // A plain list has neither rank nor snippet.
    let body = search(&server, "limit=1").await;
    assert!(body["items"][0].get("rank").is_none() && body["items"][0].get("snippet").is_none());
}

#[tokio::test]
async fn the_snippet_marks_each_match_and_is_cut_around_it() {
    let server = Server::start(Duration::from_secs(2)).await;
    let (short, long) = (ThreadId::generate(), ThreadId::generate());
    let filler = "lorem ipsum dolor sit amet ".repeat(20);
    let mut applied = 0;
    let mut events = exchange(
        &short,
        T0,
        // The customer's own private-use characters must not read as markers.
        "Hello \u{E000}there\u{E001}, where is my parcel?",
        "orders",
        "Send me your order number.",
    );
    events.extend(exchange(
        &long,
        T0 + Duration::from_secs(60),
        "Hi",
        "orders",
        &format!("{filler}your parcel left the warehouse today {filler}"),
    ));
    apply(&server, &mut applied, &events).await;

    let body = search(&server, "q=parcel").await;
    let snippet = |thread: &ThreadId| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["thread_id"] == thread.as_str())
            .unwrap_or_else(|| panic!("{thread} not found: {body}"))["snippet"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Short enough to be shown whole (`ts_headline` leaves out the last punctuation).
    assert!(
        snippet(&short)
            .starts_with("Hello \u{FFFD}there\u{FFFD}, where is my \u{E000}parcel\u{E001}"),
        "{}",
        snippet(&short)
    );
    let long_snippet = snippet(&long);
    assert!(
        long_snippet.contains("your \u{E000}parcel\u{E001} left the warehouse"),
        "{long_snippet}"
    );
    assert!(
        long_snippet.split_whitespace().count() <= 40,
        "not cut: {long_snippet}"
    );
}

#[tokio::test]
async fn a_search_combines_with_status_agent_and_a_time_range() {
    let server = Server::start(Duration::from_secs(2)).await;
    let (early_billing, late_billing, late_orders) = (
        ThreadId::generate(),
        ThreadId::generate(),
        ThreadId::generate(),
    );
    let mut applied = 0;
    let mut events = exchange(
        &early_billing,
        T0,
        "invoice missing",
        "billing",
        "Here is your invoice.",
    );
    events.extend(exchange(
        &late_billing,
        T0 + Duration::from_secs(3600),
        "invoice wrong",
        "billing",
        "I corrected the invoice.",
    ));
    events.extend(exchange(
        &late_orders,
        T0 + Duration::from_secs(7200),
        "invoice for my order",
        "orders",
        "Your order has an invoice attached.",
    ));
    events.push(resolved(&late_billing, T0 + Duration::from_secs(3700)));
    apply(&server, &mut applied, &events).await;

    let all = threads(&search(&server, "q=invoice").await);
    assert_eq!(all.len(), 3);
    assert_eq!(
        threads(&search(&server, "q=invoice&agent=billing").await).len(),
        2
    );
    assert_eq!(
        threads(&search(&server, "q=invoice&agent=orders").await),
        [late_orders.to_string()]
    );
    assert_eq!(
        threads(&search(&server, "q=invoice&status=resolved").await),
        [late_billing.to_string()]
    );
    assert_eq!(
        threads(&search(&server, "q=invoice&agent=billing&status=open").await),
        [early_billing.to_string()]
    );
    // `from` inclusive, `to` exclusive, on the start time.
    assert_eq!(
        threads(
            &search(
                &server,
                "q=invoice&from=2026-11-25T11:00:00Z&to=2026-11-25T12:00:00Z"
            )
            .await
        ),
        [late_billing.to_string()]
    );
    assert_eq!(
        threads(&search(&server, "q=invoice&to=2026-11-25T11:30:00%2B01:00").await),
        [early_billing.to_string()]
    );
    // The same filters without `q`: newest first.
    assert_eq!(
        threads(&search(&server, "agent=billing&from=2026-11-25T10:00:00Z").await),
        [late_billing.to_string(), early_billing.to_string()]
    );
    assert_eq!(
        threads(&search(&server, "q=invoice&agent=nobody").await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_conversation_is_titled_by_the_customers_first_message_not_the_last_reply() {
    let server = Server::start(Duration::from_secs(2)).await;
    let thread = ThreadId::generate();
    let mut applied = 0;
    apply(
        &server,
        &mut applied,
        &exchange(
            &thread,
            T0,
            "Where is my order?",
            "orders",
            "Send me its number.",
        ),
    )
    .await;
    // A later batch: the title stays the first message's.
    let long = "é".repeat(250);
    apply(
        &server,
        &mut applied,
        &exchange(
            &thread,
            T0 + Duration::from_secs(60),
            &long,
            "orders",
            "It left the warehouse today.",
        ),
    )
    .await;
    let (_, body) = server.get("/conversations").await;
    let item = &body["items"][0];
    assert_eq!(item["title"], "Where is my order?", "{body}");
    assert_eq!(item["preview"], "It left the warehouse today.");
    let (_, body) = server.get(&format!("/conversations/{thread}")).await;
    assert_eq!(body["title"], "Where is my order?");
    let body = search(&server, "q=warehouse").await;
    assert_eq!(body["items"][0]["title"], "Where is my order?");

    // The title is cut to 200 characters, like the preview.
    let other = ThreadId::generate();
    apply(
        &server,
        &mut applied,
        &exchange(
            &other,
            T0 + Duration::from_secs(120),
            &long,
            "orders",
            "Hm.",
        ),
    )
    .await;
    let (_, body) = server.get(&format!("/conversations/{other}")).await;
    assert_eq!(body["title"], "é".repeat(200));
}

#[tokio::test]
async fn search_pages_follow_the_rank_then_the_newest_without_repeats() {
    let server = Server::start(Duration::from_secs(2)).await;
    let mut applied = 0;
    let mut events = Vec::new();
    let mut by_mentions = Vec::new();
    // 1 to 5 mentions, and two more with one mention each (equal ranks: newest first).
    for (i, mentions) in [1, 2, 3, 4, 5, 1, 1].into_iter().enumerate() {
        let thread = ThreadId::generate();
        let text = vec!["delivery late"; mentions].join(", ");
        events.extend(exchange(
            &thread,
            T0 + Duration::from_secs(60 * i as u64),
            &text,
            "orders",
            "Let me check.",
        ));
        by_mentions.push((mentions, i, thread.to_string()));
    }
    apply(&server, &mut applied, &events).await;
    by_mentions.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = by_mentions.into_iter().map(|(_, _, t)| t).collect();

    let mut seen = Vec::new();
    let mut query = "q=delivery&limit=2".to_owned();
    loop {
        let body = search(&server, &query).await;
        let page = threads(&body);
        assert!(page.len() <= 2);
        seen.extend(page);
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("q=delivery&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    // A search's cursor is not a plain list's.
    let body = search(&server, "q=delivery&limit=2").await;
    let cursor = body["next_cursor"].as_str().unwrap();
    let (status, body) = server.get(&format!("/conversations?cursor={cursor}")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
}

#[tokio::test]
async fn bad_search_parameters_get_named_errors() {
    let server = Server::start(Duration::from_secs(2)).await;
    let long = "a".repeat(201);
    for (query, code) in [
        ("q=".to_owned(), "invalid_q"),
        (format!("q={long}"), "invalid_q"),
        ("q=refund%00".to_owned(), "invalid_q"),
        ("agent=Billing".to_owned(), "invalid_agent"),
        ("q=x&agent=".to_owned(), "invalid_agent"),
        ("from=yesterday".to_owned(), "invalid_from"),
        ("to=2026-13-01T00:00:00Z".to_owned(), "invalid_to"),
        (
            "from=2026-11-25T00:00:00Z&to=2026-11-24T00:00:00Z".to_owned(),
            "from_not_before_to",
        ),
        ("q=x&cursor=abc".to_owned(), "invalid_cursor"),
    ] {
        let (status, body) = server.get(&format!("/conversations?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}");
    }
    // Punctuation and operators only: a query that matches nothing, not an error.
    for query in ["q=%26%7C!(", "q=-", "q=%22", "q=%20"] {
        let body = search(&server, query).await;
        assert_eq!(body["items"], serde_json::json!([]), "{query}");
    }
}

#[tokio::test]
async fn the_search_reads_the_index_of_migration_0005() {
    // The index serves only queries with its exact expression and predicate.
    use projections::read_models::search::{DOCUMENT, SEARCHED_STEPS};
    let server = Server::start(Duration::from_secs(2)).await;
    let mut tx = server.pool.begin().await.unwrap();
    sqlx::query("set local enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "explain select s.seq from replay_step s
         where {SEARCHED_STEPS} and {DOCUMENT} @@ websearch_to_tsquery('english', 'refund')"
    )))
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert!(
        plan.iter()
            .any(|line| line.contains("replay_step_search_idx")),
        "{plan:#?}"
    );
}
