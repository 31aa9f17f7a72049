//! `GET /api/analytics` on a small stream whose numbers are worked out by hand below.

use std::time::Duration as StdDuration;

use common::events::{
    AgentReplied, AgentRouted, ConversationEscalated, ConversationResolved, Envelope,
    ErrorCategory, EscalationReason, MessageReceived, Permission, ThreadId, ToolCalled, ToolFailed,
    ToolSucceeded, TurnCompleted, TurnFailed, TurnId, TurnOutcome,
};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, macros::datetime};
use uuid::Uuid;

use crate::server::{Server, event};

fn new_turn() -> TurnId {
    TurnId::from_uuid(Uuid::new_v4())
}

fn received(thread: &ThreadId, turn: TurnId, at: OffsetDateTime) -> Envelope {
    let message = MessageReceived {
        content: "hello".into(),
        client_msg_id: None,
        backdated_ms: None,
    };
    event(thread, turn, at, message)
}

fn routed(thread: &ThreadId, turn: TurnId, at: OffsetDateTime, agent: &str) -> Envelope {
    let routed = AgentRouted {
        agent: agent.into(),
        reason: "keyword".into(),
    };
    event(thread, turn, at, routed)
}

fn replied(thread: &ThreadId, turn: TurnId, at: OffsetDateTime, agent: &str) -> Envelope {
    replied_using(thread, turn, at, agent, None)
}

/// A reply with the model's token use (`usage`).
fn replied_using(
    thread: &ThreadId,
    turn: TurnId,
    at: OffsetDateTime,
    agent: &str,
    usage: Option<(u64, u64)>,
) -> Envelope {
    let reply = AgentReplied {
        end: None,
        escalation: None,
        text: "done".into(),
        agent: agent.into(),
        engine: if usage.is_some() { "openai" } else { "rules" }.into(),
        usage: usage.map(
            |(prompt_tokens, completion_tokens)| common::events::TokenUsage {
                prompt_tokens,
                completion_tokens,
            },
        ),
    };
    event(thread, turn, at, reply)
}

fn completed(
    thread: &ThreadId,
    turn: TurnId,
    at: OffsetDateTime,
    outcome: TurnOutcome,
    latency_ms: u64,
) -> Envelope {
    let done = TurnCompleted {
        outcome,
        latency_ms,
        message_seq: 0,
        pending: None,
    };
    event(thread, turn, at, done)
}

fn called(thread: &ThreadId, turn: TurnId, at: OffsetDateTime) -> Envelope {
    let call = ToolCalled {
        call_id: "tool-1".into(),
        tool: "getOrder".into(),
        params: json!({ "id": "ORD-1001" }),
        permission: Permission::Read,
    };
    event(thread, turn, at, call)
}

/// The fixture, on 2026-11-25 (every time UTC). Two agents, `orders` and `billing`;
/// reply latencies under a second are kept to the millisecond, longer ones in buckets
/// (ms) ≤2500, ≤5000, …; a conversation counts for the agent it is first routed to.
///
/// conversation A, 10:00–10:30
///   A1 10:00 message; orders; tool-1 fails; reply; completed, replied, 40 ms
///   A2 10:05 message; orders; tool-1 succeeds; reply; completed, replied, 300 ms
///      10:30 resolved by an operator (the conversation's agent: orders)
/// conversation B, 10:40 and 12:10
///   B1 10:40 message; billing; reply; completed, replied, 90 ms
///   B2 12:10 message; billing; escalated by billing; reply; completed, escalated, 1200 ms
/// conversation C, 12:20
///   C1 12:20 message; orders; turn failed (no latency)
///
/// Nothing happens between 11:00 and 12:00.
fn fixture() -> (ThreadId, ThreadId, ThreadId, Vec<Envelope>, Vec<Envelope>) {
    let day = datetime!(2026-11-25 00:00 UTC);
    let at = |h: i64, m: i64, s: i64| {
        day + Duration::hours(h) + Duration::minutes(m) + Duration::seconds(s)
    };
    let (a, b, c) = (
        ThreadId::generate(),
        ThreadId::generate(),
        ThreadId::generate(),
    );
    let (a1, a2, resolve, b1, b2, c1) = (
        new_turn(),
        new_turn(),
        new_turn(),
        new_turn(),
        new_turn(),
        new_turn(),
    );
    let first = vec![
        received(&a, a1, at(10, 0, 0)),
        routed(&a, a1, at(10, 0, 1), "orders"),
        called(&a, a1, at(10, 0, 2)),
        event(
            &a,
            a1,
            at(10, 0, 3),
            ToolFailed {
                call: None,
                call_id: "tool-1".into(),
                tool: "getOrder".into(),
                category: ErrorCategory::NotRetryable,
                error: "HTTP 404".into(),
                reason: None,
                status: Some(404),
                latency_ms: 12,
                attempts: 1,
            },
        ),
        replied(&a, a1, at(10, 0, 4), "orders"),
        completed(&a, a1, at(10, 0, 4), TurnOutcome::Replied, 40),
        received(&a, a2, at(10, 5, 0)),
        routed(&a, a2, at(10, 5, 1), "orders"),
        called(&a, a2, at(10, 5, 2)),
        event(
            &a,
            a2,
            at(10, 5, 3),
            ToolSucceeded {
                call: None,
                call_id: "tool-1".into(),
                tool: "getOrder".into(),
                status: 200,
                result: json!({ "status": "shipped" }),
                latency_ms: 30,
                attempts: 1,
            },
        ),
        replied(&a, a2, at(10, 5, 4), "orders"),
        completed(&a, a2, at(10, 5, 4), TurnOutcome::Replied, 300),
    ];
    // A second batch: the resolution finds A's agent in the table, not in the batch.
    let second = vec![
        event(
            &a,
            resolve,
            at(10, 30, 0),
            ConversationResolved {
                resolved_by: "operator".into(),
                operator: None,
                note: Some("shipped".into()),
            },
        ),
        received(&b, b1, at(10, 40, 0)),
        routed(&b, b1, at(10, 40, 1), "billing"),
        replied_using(&b, b1, at(10, 40, 2), "billing", Some((100, 10))),
        completed(&b, b1, at(10, 40, 2), TurnOutcome::Replied, 90),
        received(&b, b2, at(12, 10, 0)),
        routed(&b, b2, at(12, 10, 1), "billing"),
        event(
            &b,
            b2,
            at(12, 10, 2),
            ConversationEscalated {
                reason: EscalationReason::UserRequest,
                detail: "asked for a human".into(),
                agent: "billing".into(),
            },
        ),
        replied_using(&b, b2, at(12, 10, 3), "billing", Some((200, 20))),
        completed(&b, b2, at(12, 10, 3), TurnOutcome::Escalated, 1200),
        received(&c, c1, at(12, 20, 0)),
        routed(&c, c1, at(12, 20, 1), "orders"),
        event(
            &c,
            c1,
            at(12, 20, 2),
            TurnFailed {
                message_seq: 0,
                category: ErrorCategory::Retryable,
                error: "engine unavailable".into(),
                attempts: 5,
                text: "sorry".into(),
                dead_letter_id: Some(1),
            },
        ),
    ];
    (a, b, c, first, second)
}

/// A summary as the report writes it: the counters, then the derived numbers.
#[allow(clippy::too_many_arguments)]
fn summary(
    counts: [i64; 11],
    resolution_rate: Option<f64>,
    escalation_rate: Option<f64>,
    tool_error_rate: Option<f64>,
    p50: Option<i64>,
    p95: Option<i64>,
    mean: Option<f64>,
) -> Value {
    let [
        conversations,
        messages,
        turns,
        replies,
        resolutions,
        escalations,
        failures,
        tool_calls,
        tool_errors,
        prompt_tokens,
        completion_tokens,
    ] = counts;
    json!({
        "conversations": conversations, "messages": messages, "turns": turns,
        "replies": replies, "resolutions": resolutions, "escalations": escalations,
        "failures": failures, "tool_calls": tool_calls, "tool_errors": tool_errors,
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "resolution_rate": resolution_rate, "escalation_rate": escalation_rate,
        "tool_error_rate": tool_error_rate, "reply_latency_p50_ms": p50,
        "reply_latency_p95_ms": p95, "reply_latency_mean_ms": mean,
    })
}

/// `summary` with `key: value` pairs added (the agent's name, a bucket's start).
fn with(mut summary: Value, key: &str, value: &str) -> Value {
    summary[key] = value.into();
    summary
}

#[tokio::test]
async fn the_report_of_a_known_stream_has_the_numbers_worked_out_by_hand() {
    let server = Server::start(StdDuration::from_secs(2)).await;
    let (a, b, c, first, second) = fixture();
    let last = server.apply(1, &first).await;
    let last = server.apply(last + 1, &second).await;

    let (status, report) = server
        .get(&format!(
            "/analytics?from=2026-11-25T10:00:00Z&to=2026-11-25T13:00:00Z&min_seq={last}"
        ))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["from"], "2026-11-25T10:00:00Z");
    assert_eq!(report["to"], "2026-11-25T13:00:00Z");
    assert_eq!(report["bucket"], "hour");

    // Totals. counts = [conversations, messages, turns, replies, resolutions, escalations,
    // failures, tool_calls, tool_errors, prompt_tokens, completion_tokens]:
    //   conversations 3 (A, B, C); messages 5 (A1 A2 B1 B2 C1); turns 5 (4 completed + C1
    //   failed); replies 4 (A1 A2 B1 B2); resolutions 1 (A); escalations 1 (B2);
    //   failures 1 (C1); tool calls 2 (A1 failed, A2 succeeded), tool errors 1.
    //   Tokens: billing's model replies B1 (100 + 10) and B2 (200 + 20): 300 and 30.
    //   Rates: resolutions 1/3, escalations 1/3, tool errors 1/2.
    //   Latencies in order 40, 90, 300 (exact) and 1200 (≤2500): 4 of them.
    //   p50: rank ceil(0.5·4) = 2 → 90.
    //   p95: rank ceil(0.95·4) = 4 → ≤2500 → 2500. Mean (40+300+90+1200)/4 = 407.5.
    assert_eq!(
        report["totals"],
        summary(
            [3, 5, 5, 4, 1, 1, 1, 2, 1, 300, 30],
            Some(1.0 / 3.0),
            Some(1.0 / 3.0),
            Some(0.5),
            Some(90),
            Some(2500),
            Some(407.5)
        )
    );

    // Per agent, by name. A conversation counts for the agent it is first routed to
    // (A and C: orders, B: billing), so the agents' conversations add up to the total;
    // messages belong to no agent ('', no line).
    //   billing: conversations 1 (B), turns 2 (B1 B2), replies 2, escalations 1 (rate
    //   1/1, resolutions 0/1); latencies 90, 1200 (≤2500): p50 rank ceil(1) = 1 → 90,
    //   p95 rank ceil(1.9) = 2 → 2500, mean 645.
    //   orders: conversations 2 (A, C), turns 3 (A1 A2 C1), replies 2, resolutions 1
    //   (A's agent; rate 1/2), escalations 0/2, failures 1 (C1), tool calls 2, errors 1
    //   (rate 0.5); latencies 40, 300: p50 rank 1 → 40, p95 rank 2 → 300, mean 170.
    assert_eq!(
        report["agents"],
        json!([
            with(
                summary(
                    [1, 0, 2, 2, 0, 1, 0, 0, 0, 300, 30],
                    Some(0.0),
                    Some(1.0),
                    None,
                    Some(90),
                    Some(2500),
                    Some(645.0)
                ),
                "agent",
                "billing"
            ),
            with(
                summary(
                    [2, 0, 3, 2, 1, 0, 1, 2, 1, 0, 0],
                    Some(0.5),
                    Some(0.0),
                    Some(0.5),
                    Some(40),
                    Some(300),
                    Some(170.0)
                ),
                "agent",
                "orders"
            ),
        ])
    );

    // The series: 10:00, 11:00 (empty) and 12:00.
    //   10:00: conversations 2 (A, B), messages 3 (A1 A2 B1), turns 3, replies 3,
    //   resolutions 1, tool calls 2, errors 1; rates 1/2, 0/2, 1/2; latencies in order
    //   40, 90, 300: p50 rank ceil(1.5) = 2 → 90; p95 rank ceil(2.85) = 3 → 300;
    //   mean 430/3.
    //   11:00: nothing; every rate and percentile null.
    //   12:00: conversations 1 (C), messages 2 (B2 C1), turns 2 (B2 C1), replies 1 (B2),
    //   escalations 1, failures 1; rates 0/1, 1/1, no tool calls; latency 1200 → 2500.
    assert_eq!(
        report["series"],
        json!([
            with(
                summary(
                    [2, 3, 3, 3, 1, 0, 0, 2, 1, 100, 10],
                    Some(0.5),
                    Some(0.0),
                    Some(0.5),
                    Some(90),
                    Some(300),
                    Some(430.0 / 3.0)
                ),
                "start",
                "2026-11-25T10:00:00Z"
            ),
            with(
                summary([0; 11], None, None, None, None, None, None),
                "start",
                "2026-11-25T11:00:00Z"
            ),
            with(
                summary(
                    [1, 2, 2, 1, 0, 1, 1, 0, 0, 200, 20],
                    Some(0.0),
                    Some(1.0),
                    None,
                    Some(2500),
                    Some(2500),
                    Some(1200.0)
                ),
                "start",
                "2026-11-25T12:00:00Z"
            ),
        ])
    );

    // The same stream seen from the conversations.
    for (thread, status) in [(&a, "resolved"), (&b, "escalated"), (&c, "failed")] {
        let (code, body) = server.get(&format!("/conversations/{thread}")).await;
        assert_eq!(
            (code, body["status"].as_str()),
            (200, Some(status)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_window_over_48_hours_is_reported_per_day() {
    let server = Server::start(StdDuration::from_secs(2)).await;
    let (_, _, _, first, second) = fixture();
    let last = server.apply(1, &first).await;
    server.apply(last + 1, &second).await;

    // From 24 Nov 18:00 to 26 Nov 19:00 is 49 h: daily buckets from 24 Nov 00:00; every
    // event is on the 25th.
    let (status, report) = server
        .get("/analytics?from=2026-11-24T18:00:00Z&to=2026-11-26T19:00:00Z")
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["bucket"], "day");
    assert_eq!(report["from"], "2026-11-24T00:00:00Z");
    let series: Vec<(&str, i64)> = report["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_str().unwrap(),
                p["messages"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        series,
        [
            ("2026-11-24T00:00:00Z", 0),
            ("2026-11-25T00:00:00Z", 5),
            ("2026-11-26T00:00:00Z", 0),
        ]
    );
    assert_eq!(report["totals"]["conversations"], 3);
}

#[tokio::test]
async fn each_bad_analytics_parameter_is_answered_with_its_code() {
    let server = Server::start(StdDuration::from_secs(2)).await;
    for (query, code) in [
        ("range=1y", "invalid_range"),
        ("range=24h&from=2026-11-25T00:00:00Z", "range_and_dates"),
        ("from=2026-11-25T00:00:00Z", "missing_to"),
        ("to=2026-11-25T00:00:00Z", "missing_from"),
        ("from=noon&to=2026-11-25T00:00:00Z", "invalid_from"),
        ("from=2026-11-25T00:00:00Z&to=tomorrow", "invalid_to"),
        (
            "from=2026-11-25T00:00:00Z&to=2026-11-24T00:00:00Z",
            "from_not_before_to",
        ),
        (
            "from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z",
            "range_too_long",
        ),
        ("range=7d&min_seq=soon", "invalid_min_seq"),
    ] {
        let (status, body) = server.get(&format!("/analytics?{query}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn each_range_answers_with_its_buckets() {
    let server = Server::start(StdDuration::from_secs(2)).await;
    // 7 or 8 days: 7 × 24 h back from the next hour, down to midnight (7 when the next
    // hour is itself a midnight).
    for (range, bucket, points) in [
        ("24h", "hour", 24..=24),
        ("7d", "day", 7..=8),
        ("30d", "day", 30..=31),
    ] {
        let (status, report) = server.get(&format!("/analytics?range={range}")).await;
        assert_eq!(status, 200, "{range}: {report}");
        assert_eq!(report["bucket"], bucket, "{range}");
        let n = report["series"].as_array().unwrap().len();
        assert!(points.contains(&n), "{range}: {n} points");
        assert!(report["totals"]["reply_latency_p50_ms"].is_null());
    }
}
