//! Tool calls against small HTTP servers run in-process on 127.0.0.1 (allow-listed), and
//! against the demo shop described by `fixtures/shop-openapi.yaml`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use common::events::ErrorCategory;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tools::{ToolArgs, Toolbox};

/// One operation with every kind of argument; the servers below answer any path.
const DOC: &str = r##"
openapi: 3.0.3
info: { title: test, version: "1" }
servers: [{ url: "http://api.invalid" }]
paths:
  /orders/{order_id}/notes:
    post:
      operationId: addNote
      summary: Add a note to an order
      parameters:
        - { name: order_id, in: path, required: true, schema: { type: string } }
        - { name: notify, in: query, schema: { type: boolean } }
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Note" }
      responses: { "200": { description: ok } }
components:
  schemas:
    Note:
      type: object
      required: [text]
      properties: { text: { type: string } }
"##;

/// What a test server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

type Script = Arc<dyn Fn(usize) -> Response + Send + Sync>;

#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Script,
}

struct TestServer {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _stop: oneshot::Sender<()>,
}

impl TestServer {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn record(
    State(recorder): State<Recorder>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let attempt = {
        let mut seen = recorder.seen.lock().unwrap();
        seen.push(Seen {
            method,
            uri,
            headers,
            body,
        });
        seen.len()
    };
    (recorder.script)(attempt)
}

/// Serves `router` on a free port until the returned server is dropped.
async fn serve_router(router: Router, seen: Arc<Mutex<Vec<Seen>>>) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    TestServer {
        base,
        seen,
        _stop: stop,
    }
}

/// A server that records every request and answers attempt `n` (from 1) with `script(n)`.
async fn scripted(script: impl Fn(usize) -> Response + Send + Sync + 'static) -> TestServer {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        seen: seen.clone(),
        script: Arc::new(script),
    };
    serve_router(Router::new().fallback(record).with_state(recorder), seen).await
}

fn args(base: &str) -> ToolArgs {
    ToolArgs {
        tools_base_url: Some(base.to_owned()),
        tools_allow_hosts: vec!["127.0.0.1".into()],
        tools_timeout: Duration::from_secs(5),
        tools_max_response_bytes: 64 * 1024,
        tools_attempts: 3,
        tools_retry_delay: Duration::from_millis(1),
    }
}

fn toolbox(args: &ToolArgs) -> Toolbox {
    Toolbox::from_openapi(DOC, args).unwrap()
}

fn note() -> Value {
    json!({ "order_id": "ORD-1001", "notify": true, "body": { "text": "gift wrap" } })
}

fn ok_json() -> Response {
    (StatusCode::OK, axum::Json(json!({ "ok": true }))).into_response()
}

#[tokio::test]
async fn two_server_errors_then_a_success_take_three_attempts() {
    let server = scripted(|n| {
        if n <= 2 {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        } else {
            ok_json()
        }
    })
    .await;
    let report = toolbox(&args(&server.base))
        .call("addNote", &note(), None)
        .await;
    let response = report.result.unwrap();
    assert_eq!(
        (response.status, response.body),
        (200, json!({ "ok": true }))
    );
    assert_eq!(report.attempts, 3);
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn the_idempotency_key_arrives_and_is_the_same_on_every_attempt() {
    let server = scripted(|n| {
        if n <= 2 {
            StatusCode::BAD_GATEWAY.into_response()
        } else {
            ok_json()
        }
    })
    .await;
    let report = toolbox(&args(&server.base))
        .call("addNote", &note(), Some("turn-7:call-1"))
        .await;
    assert!(report.result.is_ok());
    let keys: Vec<_> = server
        .seen()
        .iter()
        .map(|s| s.headers["idempotency-key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["turn-7:call-1"; 3]);
}

#[tokio::test]
async fn a_400_fails_after_one_attempt_and_is_not_retryable() {
    let server =
        scripted(|_| (StatusCode::BAD_REQUEST, r#"{"error":"text is too long"}"#).into_response())
            .await;
    let report = toolbox(&args(&server.base))
        .call("addNote", &note(), None)
        .await;
    let error = report.result.unwrap_err();
    assert_eq!(
        (error.category, error.status),
        (ErrorCategory::NotRetryable, Some(400))
    );
    assert!(
        error.message.contains("text is too long"),
        "{}",
        error.message
    );
    assert_eq!(report.attempts, 1);
}

#[tokio::test]
async fn a_429_is_retryable_and_retried_until_the_attempts_run_out() {
    let server = scripted(|_| StatusCode::TOO_MANY_REQUESTS.into_response()).await;
    let report = toolbox(&args(&server.base))
        .call("addNote", &note(), None)
        .await;
    let error = report.result.unwrap_err();
    assert_eq!(
        (error.category, error.status),
        (ErrorCategory::Retryable, Some(429))
    );
    assert_eq!(report.attempts, 3);
}

#[tokio::test]
async fn a_slow_server_times_out_and_the_failure_is_retryable() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    // The handler sleeps to be slow; the test itself waits for nothing but the call.
    let router = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        ok_json()
    });
    let server = serve_router(router, seen).await;
    let args = ToolArgs {
        tools_timeout: Duration::from_millis(100),
        tools_attempts: 2,
        ..args(&server.base)
    };
    let report = toolbox(&args).call("addNote", &note(), None).await;
    let error = report.result.unwrap_err();
    assert_eq!(
        (error.category, error.status),
        (ErrorCategory::Retryable, None)
    );
    assert!(error.message.contains("timed out"), "{}", error.message);
    assert_eq!(report.attempts, 2);
}

#[tokio::test]
async fn a_response_over_the_size_cap_is_refused() {
    let server = scripted(|_| "x".repeat(2_000).into_response()).await;
    let args = ToolArgs {
        tools_max_response_bytes: 1_000,
        ..args(&server.base)
    };
    let error = toolbox(&args)
        .call("addNote", &note(), None)
        .await
        .result
        .unwrap_err();
    assert_eq!(error.category, ErrorCategory::NotRetryable);
    assert_eq!(error.message, "response larger than 1000 bytes");
}

#[tokio::test]
async fn a_streamed_response_over_the_size_cap_is_refused_while_reading() {
    // No Content-Length: the cap must hold while the chunks arrive.
    let server = scripted(|_| {
        let chunks = (0..20).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 100])));
        Body::from_stream(futures::stream::iter(chunks)).into_response()
    })
    .await;
    let args = ToolArgs {
        tools_max_response_bytes: 1_000,
        ..args(&server.base)
    };
    let error = toolbox(&args)
        .call("addNote", &note(), None)
        .await
        .result
        .unwrap_err();
    assert_eq!(error.message, "response larger than 1000 bytes");
}

#[tokio::test]
async fn a_redirect_to_the_metadata_address_is_refused() {
    let server = scripted(|_| {
        (
            StatusCode::FOUND,
            [(header::LOCATION, "http://169.254.169.254/latest/meta-data/")],
        )
            .into_response()
    })
    .await;
    let report = toolbox(&args(&server.base))
        .call("addNote", &note(), None)
        .await;
    let error = report.result.unwrap_err();
    assert_eq!(error.category, ErrorCategory::NotRetryable);
    assert!(
        error.message.contains("169.254.169.254"),
        "{}",
        error.message
    );
    assert_eq!(report.attempts, 1);
}

#[tokio::test]
async fn loopback_is_refused_when_not_allow_listed() {
    let server = scripted(|_| ok_json()).await;
    let args = ToolArgs {
        tools_allow_hosts: vec![],
        ..args(&server.base)
    };
    let report = toolbox(&args).call("addNote", &note(), None).await;
    let error = report.result.unwrap_err();
    assert_eq!(error.category, ErrorCategory::NotRetryable);
    assert!(error.message.contains("127.0.0.1"), "{}", error.message);
    assert_eq!(report.attempts, 0);
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_by_the_resolver() {
    let server = scripted(|_| ok_json()).await;
    let port = server.base.rsplit(':').next().unwrap();
    let args = ToolArgs {
        tools_allow_hosts: vec![],
        ..args(&format!("http://localhost:{port}"))
    };
    let error = toolbox(&args)
        .call("addNote", &note(), None)
        .await
        .result
        .unwrap_err();
    assert_eq!(error.category, ErrorCategory::NotRetryable);
    assert!(error.message.contains("localhost"), "{}", error.message);
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn path_query_and_body_are_built_as_the_schema_says() {
    let server = scripted(|_| ok_json()).await;
    let arguments =
        json!({ "order_id": "ORD 1/2", "notify": true, "body": { "text": "gift wrap" } });
    let report = toolbox(&args(&server.base))
        .call("addNote", &arguments, None)
        .await;
    assert!(report.result.is_ok());
    let seen = server.seen().remove(0);
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        seen.uri.to_string(),
        "/orders/ORD%201%2F2/notes?notify=true"
    );
    assert_eq!(seen.headers[header::ACCEPT], "application/json");
    assert_eq!(seen.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        serde_json::from_slice::<Value>(&seen.body).unwrap(),
        json!({ "text": "gift wrap" })
    );
    assert!(seen.headers.get("idempotency-key").is_none());
}

#[tokio::test]
async fn invalid_arguments_and_unknown_tools_make_no_request() {
    let server = scripted(|_| ok_json()).await;
    let tools = toolbox(&args(&server.base));
    for (name, arguments) in [
        ("addNote", json!({ "body": { "text": "x" } })),
        (
            "addNote",
            json!({ "order_id": "ORD-1", "notify": "yes", "body": {} }),
        ),
        ("addNote", json!("ORD-1")),
        ("noSuchTool", json!({})),
    ] {
        let report = tools.call(name, &arguments, None).await;
        assert_eq!(
            report.result.unwrap_err().category,
            ErrorCategory::NotRetryable,
            "{name} {arguments}"
        );
        assert_eq!(report.attempts, 0);
    }
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_non_json_body_becomes_a_string_and_an_empty_one_null() {
    let server = scripted(|n| {
        if n == 1 {
            "plain words".into_response()
        } else {
            StatusCode::NO_CONTENT.into_response()
        }
    })
    .await;
    let tools = toolbox(&args(&server.base));
    assert_eq!(
        tools
            .call("addNote", &note(), None)
            .await
            .result
            .unwrap()
            .body,
        json!("plain words")
    );
    assert_eq!(
        tools
            .call("addNote", &note(), None)
            .await
            .result
            .unwrap()
            .body,
        Value::Null
    );
}

// The demo shop, served in-process, through its own OpenAPI document.

const SHOP_DOC: &str = include_str!("../../../fixtures/shop-openapi.yaml");

async fn shop() -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(shop::serve(listener, async move {
        let _ = stopped.await;
    }));
    (base, stop)
}

#[tokio::test]
async fn the_shop_document_names_every_operation() {
    let args = ToolArgs {
        tools_base_url: None,
        ..args("")
    };
    let tools = Toolbox::from_openapi(SHOP_DOC, &args).unwrap();
    let names: Vec<_> = tools.specs().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "listProducts",
            "getProduct",
            "getOrder",
            "deleteOrder",
            "cancelOrder",
            "refundOrder"
        ]
    );
    assert_eq!(tools.base_url(), "http://127.0.0.1:8090/");
    assert_eq!(
        tools.spec("getOrder").unwrap().parameters["required"],
        json!(["order_id"])
    );
}

#[tokio::test]
async fn get_order_and_cancel_order_work_against_the_shop() {
    let (base, _stop) = shop().await;
    let tools = Toolbox::from_openapi(SHOP_DOC, &args(&base)).unwrap();

    let order = tools
        .call("getOrder", &json!({ "order_id": "ORD-1002" }), None)
        .await
        .result
        .unwrap();
    assert_eq!(order.body["status"], "shipped");

    let cancel = json!({ "order_id": "ORD-1001" });
    let first = tools
        .call("cancelOrder", &cancel, Some("turn-1:cancel"))
        .await
        .result
        .unwrap();
    assert_eq!(first.body["status"], "cancelled");
    // The same key again (a retried turn): the shop replays its answer, no second effect.
    let replay = tools
        .call("cancelOrder", &cancel, Some("turn-1:cancel"))
        .await
        .result
        .unwrap();
    assert_eq!(replay, first);
    // A new key is a new request: a cancelled order cannot be cancelled.
    let error = tools
        .call("cancelOrder", &cancel, Some("turn-2:cancel"))
        .await
        .result
        .unwrap_err();
    assert_eq!(
        (error.category, error.status),
        (ErrorCategory::NotRetryable, Some(409))
    );
    assert!(
        error.message.contains("not_cancellable"),
        "{}",
        error.message
    );
    // The customer is told the shop's own words, not the status or the JSON.
    assert_eq!(
        error.reason(),
        "order ORD-1001 is cancelled; only processing orders can be cancelled"
    );
}

// The agents config's `openapi:` document may be OpenAPI 3.1.

#[tokio::test]
async fn an_agents_config_with_an_openapi_3_1_document_calls_its_tools() {
    let server = scripted(|_| ok_json()).await;
    let tools = "      voidInvoice: write\n      listInvoices: read\n";
    let agents = load_over("billing-3.1.yaml", "billing", tools, &server.base).unwrap();
    let list = agents.tools.def("listInvoices").unwrap();
    assert_eq!(
        list.parameters["properties"]["customer"],
        json!({ "type": ["string", "null"] })
    );
    let report = agents
        .tools
        .call(
            "voidInvoice",
            &json!({ "invoice_id": "in_42" }),
            "turn-1:void",
        )
        .await;
    assert_eq!(report.result.unwrap().status, 200);
    let seen = server.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.path()),
        ("POST", "/invoices/in_42/void")
    );
}

/// Loads an agents config over `fixtures/openapi/<document>` whose one agent `agent` has
/// `tools` (YAML lines), its tools served at `base`.
fn load_over(
    document: &str,
    agent: &str,
    tools: &str,
    base: &str,
) -> anyhow::Result<workers::turn::Agents> {
    let dir = tempfile::tempdir().unwrap();
    let document = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/openapi")
        .join(document);
    let config = dir.path().join("agents.yaml");
    std::fs::write(
        &config,
        format!(
            "openapi: {}\ndefault_agent: {agent}\nagents:\n  - name: {agent}\n    description: Tools of {agent}\n    tools:\n{tools}",
            document.display()
        ),
    )
    .unwrap();
    let args = workers::config::WorkerArgs::from_flags([
        "--agents-config".to_owned(),
        config.display().to_string(),
        "--tools-base-url".to_owned(),
        base.to_owned(),
        "--tools-allow-hosts".to_owned(),
        "127.0.0.1".to_owned(),
    ])
    .unwrap();
    workers::startup::load_agents(&args)
}

/// The vendor-like document with a `$ref` to nothing in `createShipment`.
fn load_vendor(tools: &str) -> anyhow::Result<workers::turn::Agents> {
    load_over(
        "vendor-missing-ref-3.0.yaml",
        "shipping",
        tools,
        "http://127.0.0.1:9",
    )
}

#[test]
fn a_config_naming_an_unusable_operation_fails_start_up_with_the_reason() {
    let Err(error) = load_vendor("      getShipment: read\n      createShipment: write\n") else {
        panic!("an unusable operation was loaded as a tool");
    };
    let error = format!("{error:#}");
    assert!(error.contains("\"createShipment\""), "{error}");
    assert!(
        error.contains("`#/components/schemas/DoesNotExist` does not exist"),
        "{error}"
    );
}

#[test]
fn an_unusable_operation_the_config_does_not_name_is_skipped() {
    let agents = load_vendor("      getShipment: read\n      getRates: read\n").unwrap();
    assert!(agents.tools.def("getShipment").is_some());
    assert!(agents.tools.def("createShipment").is_none());
}
