//! Publishing an OpenAPI import: the reviewed operation becomes a tool of its agent and is
//! called in a conversation by the running workers, without a restart; a publish that
//! cannot be done is refused with a named error.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Stack, next_frame, turn};

/// The demo shop's `GET /products` under an operation id the demo config does not have.
const DOCUMENT: &str = "openapi: 3.0.3
info: { title: Catalogue, version: '1' }
servers: [{ url: 'https://catalogue.example' }]
paths:
  /products:
    get:
      operationId: browseCatalog
      summary: The products the shop sells
      responses: { '200': { description: the products } }
";

/// The demo agents, with an intent of `general` that calls `browseCatalog`, a tool the
/// config does not define: only a publish gives it to the agent.
fn agents_config(dir: &std::path::Path) -> std::path::PathBuf {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");
    let text = std::fs::read_to_string(format!("{fixtures}/agents.yaml"))
        .unwrap()
        .replace(
            "openapi: shop-openapi.yaml",
            &format!("openapi: {fixtures}/shop-openapi.yaml"),
        )
        .replace(
            "      - name: products\n",
            "      - name: bestsellers\n        patterns: ['\\bbestsellers?\\b']\n        \
             tool: browseCatalog\n        reply: \"Our bestseller: {result.products.0.name}.\"\n        \
             error_reply: \"I cannot browse the catalogue: {error}\"\n      - name: products\n",
        );
    assert!(text.contains("browseCatalog"), "the fixture changed");
    let path = dir.join("agents.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn find<'a>(events: &'a [Value], kind: &str) -> Option<&'a Value> {
    events.iter().find(|e| e["kind"] == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_operation_is_called_by_the_running_workers() {
    let dir = tempfile::tempdir().unwrap();
    let config = agents_config(dir.path());
    let stack = Stack::start_with(|args| args.worker.agents_config = config).await;
    let mut socket = stack.connect("").await;
    next_frame(&mut socket).await; // the session

    // Before the publish the agent does not have the tool: the call is refused.
    let before = turn(&mut socket, "Which product is a bestseller?").await;
    let refused = find(&before, "tool.failed").expect("the call is refused");
    assert_eq!(refused["tool"], "browseCatalog");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not one of agent general's tools"),
        "{refused}"
    );
    assert!(find(&before, "tool.succeeded").is_none());

    let (id, job) = stack.import(DOCUMENT).await;
    assert_eq!(job["status"], "ready", "{job}");
    assert_eq!(job["operations"][0]["operation_id"], "browseCatalog");
    assert_eq!(job["operations"][0]["class"], "read");
    let (status, edited) = stack
        .api(
            Method::PATCH,
            &format!("/openapi/imports/{id}/operations/browseCatalog"),
            Some(json!({"agent": "general", "enabled": true}).to_string()),
        )
        .await;
    assert_eq!(status, 200, "{edited}");

    let (status, published) = stack
        .api(
            Method::POST,
            &format!("/openapi/imports/{id}/publish"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["operations"], 1);
    assert!(published["version"].as_u64().unwrap() >= 1, "{published}");

    // The same workers (no restart) pick the new tools up from the KV watch: the next turns
    // call the published operation against the shop (TOOLS_BASE_URL replaces the
    // document's server, as for the configured tools).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let events = loop {
        let events = turn(&mut socket, "Which product is a bestseller?").await;
        if find(&events, "tool.succeeded").is_some() {
            break events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the published tool was never called: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let succeeded = find(&events, "tool.succeeded").expect("the call succeeds");
    assert_eq!(succeeded["tool"], "browseCatalog");
    assert_eq!(succeeded["permission"], "read");
    let first = succeeded["result"]["products"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = find(&events, "agent.replied").unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reply, format!("Our bestseller: {first}."));

    // The configured tools keep working beside it.
    let events = turn(&mut socket, "Where is ORD-1002?").await;
    assert_eq!(find(&events, "tool.succeeded").unwrap()["tool"], "getOrder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_cannot_be_done_is_refused_with_a_named_error() {
    let stack = Stack::start().await;

    let (status, body) = stack
        .api(
            Method::POST,
            "/openapi/imports/00000000-0000-0000-0000-000000000000/publish",
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "import_not_found");

    let (failed, job) = stack
        .import("swagger: '2.0'\ninfo: { title: t, version: '1' }\n")
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    let (status, body) = stack
        .api(
            Method::POST,
            &format!("/openapi/imports/{failed}/publish"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "import_not_ready");

    // An enabled operation without an agent cannot become anyone's tool.
    let (id, job) = stack.import(DOCUMENT).await;
    assert_eq!(job["status"], "ready", "{job}");
    let (status, _) = stack
        .api(
            Method::PATCH,
            &format!("/openapi/imports/{id}/operations/browseCatalog"),
            Some(json!({"agent": null, "enabled": true}).to_string()),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = stack
        .api(
            Method::POST,
            &format!("/openapi/imports/{id}/publish"),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "unknown_agent");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("browseCatalog"),
        "{body}"
    );
}
