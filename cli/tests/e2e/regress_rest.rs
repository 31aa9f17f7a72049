//! `regress` over REST (`POST /api/regress`, `GET /api/regress/{id}`) against the demo data
//! the real workers recorded: the demo's own config changes nothing; a changed reply
//! template reports exactly the turns that used it, each with the recorded and the new turn;
//! a selection is kept to; a config that does not load fails the run with its
//! `name:line: reason`; an agent operator gets 403 and a caller without a token 401; and no
//! run moves the stream or sends the shop a request. The `projections` binary runs them only
//! when it knows the agents config in use, and another instance answers for its runs.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::events::Payload;
use reqwest::Method;
use serde_json::{Value, json};

use crate::regress::{config, demo_stack, last_seq, recorded, turns_where};
use crate::support::Stack;

const TOKEN: &str = "the-api-token";
const PASSWORD: &str = "a long enough password";

/// `method` `/api{path}` with `token` (none: no `Authorization`): the status and the body.
async fn call(
    stack: &Stack,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    stack.call(method, path, token, body).await
}

/// Starts a run with `body` and waits until it is no longer `running`: the run.
async fn regress(stack: &Stack, body: Value) -> Value {
    let (status, accepted) = call(stack, Some(TOKEN), Method::POST, "/regress", Some(body)).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "running");
    finished(stack, accepted["id"].as_str().unwrap()).await
}

/// GETs run `id` from the stack until it is no longer `running`: the run.
async fn finished(stack: &Stack, id: &str) -> Value {
    let path = format!("/regress/{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, run) = call(stack, Some(TOKEN), Method::GET, &path, None).await;
        assert_eq!(status, 200, "{run}");
        if run["status"] != "running" {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running: {run}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn turn_ids(run: &Value) -> BTreeSet<String> {
    run["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["turn_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_tries_a_config_over_rest_and_sees_exactly_the_turns_it_changes() {
    let (stack, _shop, hits) = demo_stack(|args| args.api.api_token = Some(TOKEN.into())).await;
    let events = recorded(&stack).await;
    let requests = hits.load(Ordering::SeqCst);
    assert!(requests > 0, "the demo's agents called the shop");
    let seq = last_seq(&stack).await;
    let dir = tempfile::tempdir().unwrap();
    let text = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap();

    // The demo's own config: every turn the agents answered is replayed and none changed.
    let same = text(config(dir.path(), "same.yaml", |text| text));
    let run = regress(&stack, json!({"config": same, "name": "same.yaml"})).await;
    let answered = events
        .iter()
        .filter(|e| e.payload.completion().is_some())
        .count() as u64;
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(run["config"], "same.yaml");
    assert_eq!(run["engine"], "rules");
    assert_eq!(run["summary"]["replayed"], answered, "{run}");
    assert_eq!(run["summary"]["changed"], 0, "{run}");
    assert_eq!(run["changed"], json!([]));
    assert_eq!(run["progress"]["turns_replayed"], answered, "{run}");
    assert!(
        run["summary"]["skipped"]["held"].as_u64().unwrap() > 0,
        "{run}"
    );

    // A changed reply template: exactly the turns whose reply it wrote, each with the
    // recorded and the new turn.
    let template = "Order {result.order_id} is {result.status} (total {result.total_cents|money}).";
    let reply = text(config(dir.path(), "reply.yaml", |text| {
        text.replace(template, "Your order {result.order_id} is {result.status}.")
    }));
    let run = regress(&stack, json!({"config": reply, "name": "reply.yaml"})).await;
    let written = regex::Regex::new(r"^Order ORD-\d+ is \w+ \(total \$\d+\.\d\d\)\.$").unwrap();
    let expected = turns_where(
        &events,
        |e| matches!(&e.payload, Payload::AgentReplied(r) if written.is_match(&r.text)),
    );
    assert!(!expected.is_empty());
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(turn_ids(&run), expected, "{run}");
    assert_eq!(run["summary"]["changed"], expected.len() as u64);
    assert_eq!(run["summary"]["by_kind"]["reply"], expected.len() as u64);
    assert_eq!(run["changed_truncated"], false);
    for turn in run["changed"].as_array().unwrap() {
        assert_eq!(turn["changes"], json!(["reply"]), "{turn}");
        let (recorded, replayed) = (&turn["recorded"], &turn["replayed"]);
        assert!(
            written.is_match(recorded["reply"].as_str().unwrap()),
            "{turn}"
        );
        assert!(
            replayed["reply"]
                .as_str()
                .unwrap()
                .starts_with("Your order "),
            "{turn}"
        );
        assert_eq!(recorded["agent"], replayed["agent"], "{turn}");
        assert_eq!(recorded["tool_calls"], replayed["tool_calls"], "{turn}");
        assert_eq!(recorded["tool_calls"][0]["tool"], "getOrder", "{turn}");
        assert!(
            turn["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{turn}"
        );
    }

    // A selection: one thread's turns, as the command's `--thread` and `--limit`.
    let first = &run["changed"][0];
    let thread = first["thread_id"].as_str().unwrap();
    let one = regress(
        &stack,
        json!({"config": reply, "thread_ids": [thread], "limit": 1, "since": "60d"}),
    )
    .await;
    assert_eq!(one["summary"]["replayed"], 1, "{one}");
    assert_eq!(one["thread_ids"], json!([thread]));
    assert!(
        one["changed"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["thread_id"] == thread),
        "{one}"
    );

    // A config that does not load: the run fails with the workers' `name:line: reason`.
    let bad = text(config(dir.path(), "bad.yaml", |text| {
        text.replace("default_agent: general", "default_agent: nobody")
    }));
    let run = regress(&stack, json!({"config": bad, "name": "bad.yaml"})).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["code"], "invalid_config", "{run}");
    assert_eq!(
        run["error"]["message"], "bad.yaml:8: default_agent \"nobody\" is not one of the agents",
        "{run}"
    );
    assert!(run["summary"].is_null(), "{run}");

    // Admins only.
    let login = call(
        &stack,
        None,
        Method::POST,
        "/auth/login",
        Some(json!({"email": "agent@demo.example", "password": PASSWORD})),
    )
    .await
    .1;
    let agent = login["token"].as_str().unwrap();
    let path = format!("/regress/{}", run["id"].as_str().unwrap());
    for (method, path, body) in [
        (Method::POST, "/regress", Some(json!({"config": same}))),
        (Method::GET, path.as_str(), None),
    ] {
        let (status, answer) = call(&stack, Some(agent), method.clone(), path, body.clone()).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (403, &json!("forbidden")),
            "{method} {path}"
        );
        let (status, answer) = call(&stack, None, method.clone(), path, body).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (401, &json!("unauthorized")),
            "{method} {path}"
        );
    }

    // None of the runs sent the shop a request or stored an event.
    assert_eq!(hits.load(Ordering::SeqCst), requests, "the shop was called");
    assert_eq!(last_seq(&stack).await, seq, "the stream moved");
}

/// The `projections` binary's start-up on the stack's NATS and database, with `extra` flags:
/// its address (it serves until the stack stops).
async fn projections_instance(stack: &Stack, extra: &[&str]) -> std::net::SocketAddr {
    use clap::Parser;
    // The projector and the API as their own NATS users, as compose runs the binary.
    let projector_password = testkit::nats_password("projector");
    let api_password = testkit::nats_password("api");
    let mut flags = vec![
        "projections",
        "--projector-nats-password",
        &projector_password,
        "--api-nats-password",
        &api_password,
        "--listen",
        "127.0.0.1:0",
        "--metrics-addr",
        "off",
        "--nats-url",
        &stack.args.nats.nats_url,
        "--database-url",
        &stack.args.database.database_url,
        "--api-token",
        TOKEN,
    ];
    flags.extend_from_slice(extra);
    let cli = cli::projections_bin::Cli::try_parse_from(flags).unwrap();
    let app = cli::projections_bin::build(cli, stack.shutdown.clone())
        .await
        .expect("the projections binary starts");
    app.addr().expect("bound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projections_binary_runs_regress_when_it_knows_the_agents_config_and_any_instance_answers()
 {
    let stack = Stack::start_with(|args| args.api.api_token = Some(TOKEN.into())).await;
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/agents.yaml");
    let body = json!({"config": std::fs::read_to_string(config).unwrap(), "name": "same.yaml"});
    let post = |addr: std::net::SocketAddr| {
        let body = body.clone();
        let http = stack.http.clone();
        async move {
            let response = http
                .post(format!("http://{addr}/api/regress"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    // Without the agents config in use it cannot read a config as the workers would.
    let without = projections_instance(&stack, &[]).await;
    let (status, answer) = post(without).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (503, &json!("regress_unavailable")),
        "{answer}"
    );

    // With it (IMPORT_AGENTS_CONFIG), the run is stored and done; the stack's own API
    // instance, another process's as far as the database knows, answers for it.
    let with = projections_instance(&stack, &["--import-agents-config", config]).await;
    let (status, accepted) = post(with).await;
    assert_eq!(status, 202, "{accepted}");
    let run = finished(&stack, accepted["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(run["config"], "same.yaml");
    assert_eq!(run["summary"]["changed"], 0, "{run}");
}
