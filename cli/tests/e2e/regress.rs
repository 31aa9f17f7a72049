//! `smart-support regress` tries a changed agents config on the recorded conversations: the
//! demo's own config against the seeded demo data changes nothing; a changed reply template
//! reports exactly the turns that used it; a new routing keyword reports the turns that
//! moved; a run sends no tool request and publishes nothing, even when the new config would
//! call a write or destructive operation at once; a config that does not load gets its
//! `file:line: reason` and exit status 2.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use api::operators::Role;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use cli::regress::{RegressArgs, run};
use cli::seed_demo::SeedDemoArgs;
use common::events::{Envelope, Payload};
use futures::StreamExt;

use crate::support::Stack;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The demo's config with `edit` applied, written beside a copy of the shop's document.
pub(crate) fn config(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(fixtures().join("agents.yaml")).unwrap();
    let changed = edit(text.clone());
    assert!(
        changed != text || name == "same.yaml",
        "the edit of {name} changed nothing"
    );
    std::fs::copy(
        fixtures().join("shop-openapi.yaml"),
        dir.join("shop-openapi.yaml"),
    )
    .unwrap();
    let path = dir.join(name);
    std::fs::write(&path, changed).unwrap();
    path
}

fn args(stack: &Stack, config: &Path, shop: SocketAddr) -> RegressArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        regress: RegressArgs,
    }
    let shop = shop.to_string();
    let mut args = Flags::try_parse_from([
        "regress",
        "--config",
        config.to_str().unwrap(),
        "--quiet",
        // Were a replay to call a tool, it would reach the counting shop.
        "--tools-base-url",
        &format!("http://{shop}"),
        "--tools-allow-hosts",
        &shop,
    ])
    .unwrap()
    .regress;
    args.nats = stack.args.nats.clone();
    args
}

/// The demo shop API counting the requests it gets.
pub(crate) async fn counting_shop() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = shop::router().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

/// The recorded turns' events, by kind, read straight from the stream: (turn id, event).
pub(crate) async fn recorded(stack: &Stack) -> Vec<Envelope> {
    let (_client, js) = common::jetstream::connect(&stack.args.nats).await.unwrap();
    let stream = js.get_stream("CHAT").await.unwrap();
    let mut consumer = stream
        .create_consumer(OrderedConfig {
            filter_subjects: vec!["chat.*.user".into(), "chat.*.turn".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let pending = consumer.info().await.unwrap().num_pending;
    let mut messages = consumer.messages().await.unwrap();
    let mut events = Vec::new();
    for _ in 0..pending {
        let message = messages.next().await.unwrap().unwrap();
        if let Ok(event) = Envelope::from_json(&message.payload) {
            events.push(event);
        }
    }
    events
}

pub(crate) async fn last_seq(stack: &Stack) -> u64 {
    let (_client, js) = common::jetstream::connect(&stack.args.nats).await.unwrap();
    let mut stream = js.get_stream("CHAT").await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

/// The turn ids of the recorded turns whose event matches `pick`.
pub(crate) fn turns_where(
    events: &[Envelope],
    pick: impl Fn(&Envelope) -> bool,
) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| pick(e))
        .map(|e| e.turn_id.to_string())
        .collect()
}

/// A stack whose agents call a counting shop, with the demo's data seeded by its workers:
/// the stack, the shop and its request count.
pub(crate) async fn demo_stack(
    tweak: impl FnOnce(&mut cli::up::UpArgs),
) -> (Stack, SocketAddr, Arc<AtomicUsize>) {
    let (shop, hits) = counting_shop().await;
    let stack = Stack::start_with(|args| {
        args.worker.tools.tools_base_url = Some(format!("http://{shop}"));
        args.worker.tools.tools_allow_hosts = vec![shop.to_string()];
        tweak(args);
    })
    .await;
    // The demo's operators, so escalated conversations are taken over (held turns) and
    // some handed back, as in the demo.
    let pool = projections::connect(&stack.args.database).await.unwrap();
    for (email, name, role) in [
        ("agent@demo.example", "Alex", Role::Agent),
        ("admin@demo.example", "Dana", Role::Admin),
    ] {
        api::operators::add(&pool, email, name, role, "a long enough password")
            .await
            .unwrap();
    }
    let seeded = cli::seed_demo::run(&SeedDemoArgs {
        conversations: 40,
        concurrency: 4,
        days: 30,
        dead_letters: 1,
        if_empty: false,
        seed: 1,
        unassigned: 1,
        database_url: Some(stack.args.database.database_url.clone()),
        nats: stack.args.nats.clone(),
    })
    .await
    .expect("the demo data is seeded");
    assert_eq!(seeded.failed_conversations, 0, "{seeded:?}");
    (stack, shop, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_reports_exactly_the_turns_it_changes_and_touches_nothing() {
    let (stack, shop, hits) = demo_stack(|_| {}).await;
    let events = recorded(&stack).await;
    let requests = hits.load(Ordering::SeqCst);
    assert!(requests > 0, "the demo's agents called the shop");
    let seq = last_seq(&stack).await;
    let dir = tempfile::tempdir().unwrap();

    // The demo's own config: every turn the agents answered is replayed and none changed.
    let same = config(dir.path(), "same.yaml", |text| text);
    let outcome = run(&args(&stack, &same, shop)).await.unwrap();
    let summary = &outcome.report.summary;
    let answered = events
        .iter()
        .filter(|e| e.payload.completion().is_some())
        .count() as u64;
    assert_eq!(summary.replayed, answered, "{summary:?}");
    assert!(summary.skipped.held > 0, "{summary:?}");
    assert_eq!(summary.changed, 0, "{}", outcome.report.text());
    assert_eq!(summary.new_tool_calls, 0, "{summary:?}");
    assert_eq!(outcome.status, 0);

    // A changed reply template: exactly the turns whose reply it wrote.
    let template = "Order {result.order_id} is {result.status} (total {result.total_cents|money}).";
    let reply = config(dir.path(), "reply.yaml", |text| {
        text.replace(template, "Your order {result.order_id} is {result.status}.")
    });
    let outcome = run(&args(&stack, &reply, shop)).await.unwrap();
    let written = regex::Regex::new(r"^Order ORD-\d+ is \w+ \(total \$\d+\.\d\d\)\.$").unwrap();
    let expected = turns_where(
        &events,
        |e| matches!(&e.payload, Payload::AgentReplied(r) if written.is_match(&r.text)),
    );
    assert!(!expected.is_empty());
    let changed: BTreeSet<String> = outcome
        .report
        .changed
        .iter()
        .map(|t| t.turn_id.clone())
        .collect();
    assert_eq!(changed, expected, "{}", outcome.report.text());
    assert!(
        outcome.report.changed.iter().all(|t| t.changes == ["reply"]
            && t.replayed
                .reply
                .as_deref()
                .unwrap()
                .starts_with("Your order ")),
        "{}",
        outcome.report.text()
    );
    assert_eq!(
        outcome.report.summary.by_kind["reply"],
        expected.len() as u64
    );
    // The text report: the summary, then each changed turn side by side.
    let text = outcome.report.text();
    assert!(
        text.contains(&format!("changed {}", expected.len()))
            && text.contains(" * reply")
            && text.contains("│ Your order "),
        "{text}"
    );
    assert_eq!(outcome.status, 1);

    // A new routing keyword: the turns it moves to another agent, and only those.
    let routing = config(dir.path(), "routing.yaml", |text| {
        text.replace(
            "keywords: [refund, invoice,",
            "keywords: [gift, refund, invoice,",
        )
    });
    let outcome = run(&args(&stack, &routing, shop)).await.unwrap();
    let moved = events
        .iter()
        .filter(|e| match &e.payload {
            Payload::MessageReceived(m) => m.content.to_lowercase().contains("gift"),
            _ => false,
        })
        .map(|e| e.turn_id.to_string())
        .collect::<BTreeSet<_>>();
    assert!(!moved.is_empty());
    let changed: BTreeSet<String> = outcome
        .report
        .changed
        .iter()
        .map(|t| t.turn_id.clone())
        .collect();
    assert_eq!(changed, moved, "{}", outcome.report.text());
    for turn in &outcome.report.changed {
        assert!(turn.changes.contains(&"agent"), "{:?}", turn.changes);
        assert_eq!(turn.recorded.agent.as_deref(), Some("general"));
        assert_eq!(turn.replayed.agent.as_deref(), Some("billing"));
    }

    // A config that would run a write and a destructive operation at once: the calls are
    // reported as new, with their arguments, and sent nowhere.
    let reckless = config(dir.path(), "reckless.yaml", |text| {
        text.replace("deleteOrder: destructive", "deleteOrder: read")
            .replace(
                "cancelOrder:\n        permission: write",
                "cancelOrder:\n        permission: read",
            )
    });
    let outcome = run(&args(&stack, &reckless, shop)).await.unwrap();
    let new_calls: Vec<_> = outcome
        .report
        .changed
        .iter()
        .flat_map(|t| &t.replayed.tool_calls)
        .filter(|c| c.new)
        .collect();
    assert!(
        new_calls.iter().any(|c| c.tool == "deleteOrder")
            && new_calls.iter().any(|c| c.tool == "cancelOrder"),
        "{}",
        outcome.report.text()
    );
    assert!(new_calls.iter().all(|c| c.params["order_id"].is_string()));
    assert_eq!(
        outcome.report.summary.new_tool_calls,
        new_calls.len() as u64
    );

    // None of the runs sent the shop a request or stored an event.
    assert_eq!(hits.load(Ordering::SeqCst), requests, "the shop was called");
    assert_eq!(last_seq(&stack).await, seq, "the stream moved");

    // The command: exit 1 with a change, 0 when --allow tolerates them; JSON and HTML.
    let binary = env!("CARGO_BIN_EXE_smart-support");
    let changed_turns = expected.len().to_string();
    let command = |format: &str, allow: &str| {
        Command::new(binary)
            .args([
                "regress",
                "--config",
                reply.to_str().unwrap(),
                "--format",
                format,
            ])
            .args(["--allow", allow, "--nats-url", &stack.args.nats.nats_url])
            .envs(testkit::nats_env("admin"))
            .output()
            .unwrap()
    };
    let json = command("json", "0");
    assert_eq!(json.status.code(), Some(1), "{json:?}");
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        report["summary"]["changed"],
        expected.len() as u64,
        "{report}"
    );
    let html = command("html", &changed_turns);
    assert_eq!(html.status.code(), Some(0), "{html:?}");
    let page = String::from_utf8(html.stdout).unwrap();
    assert!(
        page.starts_with("<!doctype html>") && page.contains("Your order "),
        "{page}"
    );
}

#[test]
fn a_config_that_does_not_load_gets_its_file_line_and_reason_and_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = config(dir.path(), "bad.yaml", |text| {
        text.replace("default_agent: general", "default_agent: nobody")
    });
    let output = Command::new(env!("CARGO_BIN_EXE_smart-support"))
        .args(["regress", "--config", bad.to_str().unwrap()])
        // Nothing listens there: the config is checked before anything is read.
        .args(["--nats-url", "nats://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "{}:8: default_agent \"nobody\" is not one of the agents",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_model_engine_the_model_is_asked_and_tools_are_still_not_called() {
    use testkit::fake_llm::{Answer, FakeLlm};
    let (shop, hits) = counting_shop().await;
    let stack = Stack::start_with(|args| {
        args.worker.tools.tools_base_url = Some(format!("http://{shop}"));
        args.worker.tools.tools_allow_hosts = vec![shop.to_string()];
    })
    .await;
    let mut socket = stack.connect("").await;
    let session = crate::support::next_frame(&mut socket).await;
    let thread = session["thread_id"].as_str().unwrap().to_owned();
    let events = crate::support::turn(&mut socket, "Where is ORD-1002?").await;
    let recorded = crate::support::find(&events, "tool.succeeded");
    let requests = hits.load(Ordering::SeqCst);
    assert_eq!(requests, 1);
    let seq = last_seq(&stack).await;

    // The model looks the order up (as recorded), then another one (never recorded), then
    // answers.
    let llm = FakeLlm::start_with([
        Answer::tool_call("getOrder", r#"{"order_id":"ORD-1002"}"#),
        Answer::tool_call("getOrder", r#"{"order_id":"ORD-1005"}"#),
        Answer::reply("ORD-1002 is on its way."),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let same = config(dir.path(), "same.yaml", |text| text);
    let mut args = args(&stack, &same, shop);
    args.engine = workers::config::EngineKind::Openai;
    args.openai.openai_base_url = llm.url();
    args.thread = vec![common::events::ThreadId::parse(&thread).unwrap()];
    args.concurrency = 1;
    let outcome = run(&args).await.unwrap();

    let asked = llm.requests();
    assert_eq!(asked.len(), 3, "{asked:?}");
    // The model got the recorded result of the recorded call, and no result for the other.
    let second = asked[1].to_string();
    assert!(
        second.contains(&recorded["result"]["status"].as_str().unwrap().to_string()),
        "{second}"
    );
    assert!(asked[2].to_string().contains("not made"), "{}", asked[2]);
    let summary = &outcome.report.summary;
    assert_eq!((summary.replayed, summary.changed), (1, 1), "{summary:?}");
    let turn = &outcome.report.changed[0];
    assert_eq!(
        turn.changes,
        ["tool_calls", "reply"],
        "{}",
        outcome.report.text()
    );
    let calls = &turn.replayed.tool_calls;
    assert_eq!(calls.len(), 2);
    assert!(!calls[0].new && calls[1].new, "{calls:?}");
    assert_eq!(calls[1].params, serde_json::json!({"order_id": "ORD-1005"}));
    assert_eq!(
        turn.replayed.reply.as_deref(),
        Some("ORD-1002 is on its way.")
    );
    assert_eq!(summary.new_tool_calls, 1);

    assert_eq!(hits.load(Ordering::SeqCst), requests, "the shop was called");
    assert_eq!(last_seq(&stack).await, seq, "the stream moved");
}
