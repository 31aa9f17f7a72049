//! The dead-letter endpoints against a real JetStream and PostgreSQL, over real HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::{ApiState, router};
use async_nats::jetstream::Context;
use common::dead_letters::{self, Failure, Source};
use common::events::{Envelope, ErrorCategory, ThreadId};
use serde_json::{Value, json};
use testkit::{NatsServer, Postgres};

const TOKEN: &str = "operator-secret";

struct Api {
    addr: SocketAddr,
    http: reqwest::Client,
    js: Context,
    nats: NatsServer,
    _postgres: Postgres,
}

impl Api {
    async fn start() -> Api {
        let super::Infra {
            nats,
            postgres,
            pool,
            nats_args: args,
            client,
            js,
            stream,
            ..
        } = super::infra().await;
        dead_letters::ensure_stream(&js, &args).await.unwrap();
        let state = ApiState {
            pool,
            client,
            stream,
            api_token: Some(Arc::new(TOKEN.into())),
            projection_wait: Duration::from_secs(2),
            imports: Default::default(),
            throttle: std::sync::Arc::default(),
            session_lifetime: std::time::Duration::from_secs(3600),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Api {
            addr,
            http: testkit::http_client(),
            js,
            nats,
            _postgres: postgres,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("http://{}/api{path}", self.addr))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("a JSON body")
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Stores a user message (or any payload) on a thread and dead-letters it.
    async fn dead_letter(
        &self,
        thread: &ThreadId,
        payload: Vec<u8>,
        category: ErrorCategory,
    ) -> u64 {
        let subject = common::subjects::user_message(thread);
        let seq = self
            .js
            .publish(subject.clone(), payload.clone().into())
            .await
            .unwrap()
            .await
            .unwrap()
            .sequence;
        let source = Source {
            subject: &subject,
            seq,
            payload: &payload,
            headers: None,
        };
        let failure = Failure {
            category,
            error: "the engine timed out".into(),
            attempts: 5,
        };
        dead_letters::publish(&self.js, source, &failure)
            .await
            .unwrap()
    }
}

fn message(thread: &ThreadId, content: &str) -> Vec<u8> {
    Envelope::user_message(thread, content).to_json()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn dead_letter_endpoints_require_the_operator_token() {
    let api = Api::start().await;
    for (method, path) in [
        (reqwest::Method::GET, "/api/dead-letters"),
        (reqwest::Method::GET, "/api/dead-letters/1"),
        (reqwest::Method::DELETE, "/api/dead-letters/1"),
        (reqwest::Method::POST, "/api/dead-letters/1/redrive"),
        (reqwest::Method::POST, "/api/dead-letters/redrive"),
    ] {
        let response = api
            .http
            .request(method.clone(), format!("http://{}{path}", api.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{method} {path}");
    }
}

#[tokio::test]
async fn dead_letters_are_listed_with_filters_and_pages_and_shown_one_by_one() {
    let api = Api::start().await;
    let thread = ThreadId::generate();
    let first = api
        .dead_letter(&thread, message(&thread, "a"), ErrorCategory::Retryable)
        .await;
    let second = api
        .dead_letter(&thread, b"garbage".to_vec(), ErrorCategory::Fatal)
        .await;
    let third = api
        .dead_letter(&thread, message(&thread, "c"), ErrorCategory::Retryable)
        .await;

    let (status, body) = api.get("/dead-letters").await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<u64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [first, second, third]);
    assert_eq!(body["next_cursor"], Value::Null);

    let (_, body) = api.get("/dead-letters?category=fatal").await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["id"], second);
    assert_eq!(body["items"][0]["original"], "garbage");

    let (_, page) = api.get("/dead-letters?limit=1&category=retryable").await;
    assert_eq!(page["items"][0]["id"], first);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (_, page) = api
        .get(&format!(
            "/dead-letters?limit=1&category=retryable&cursor={cursor}"
        ))
        .await;
    assert_eq!(page["items"][0]["id"], third);
    assert_eq!(page["next_cursor"], Value::Null);

    let (_, page) = api.get("/dead-letters?until=2000-01-01T00:00:00Z").await;
    assert_eq!(page["items"], json!([]));

    let (status, letter) = api.get(&format!("/dead-letters/{first}")).await;
    assert_eq!(status, 200);
    assert_eq!(letter["category"], "retryable");
    assert_eq!(letter["error"], "the engine timed out");
    assert_eq!(letter["attempts"], 5);
    assert_eq!(letter["thread_id"], thread.as_str());
    assert_eq!(letter["original"]["content"], "a");
    assert!(letter["failed_at"].is_string());

    for (path, code) in [
        ("/dead-letters?limit=0", "invalid_limit"),
        ("/dead-letters?category=sad", "invalid_category"),
        ("/dead-letters?since=yesterday", "invalid_since"),
        ("/dead-letters?cursor=abc", "invalid_cursor"),
        ("/dead-letters/abc", "invalid_id"),
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!((status, error_code(&body)), (400, code), "{path}");
    }
    let (status, body) = api.get("/dead-letters/999").await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
}

#[tokio::test]
async fn a_redrive_answers_the_new_sequence_and_a_discard_removes() {
    let api = Api::start().await;
    let thread = ThreadId::generate();
    let good = api
        .dead_letter(
            &thread,
            message(&thread, "refund"),
            ErrorCategory::Retryable,
        )
        .await;
    let poison = api
        .dead_letter(&thread, b"{oops".to_vec(), ErrorCategory::Fatal)
        .await;

    let (status, body) = api
        .post(&format!("/dead-letters/{good}/redrive"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], good);
    let seq = body["seq"].as_u64().unwrap();
    let stored = api
        .js
        .get_stream("CHAT")
        .await
        .unwrap()
        .direct_get(seq)
        .await
        .unwrap();
    let event = Envelope::from_json(&stored.payload).unwrap();
    assert_eq!(event.payload.kind(), "message.redriven");

    let (status, body) = api
        .post(&format!("/dead-letters/{good}/redrive"), json!({}))
        .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));

    let (status, body) = api
        .post(&format!("/dead-letters/{poison}/redrive"), json!({}))
        .await;
    assert_eq!((status, error_code(&body)), (409, "not_redrivable"));

    let (status, _) = api.delete(&format!("/dead-letters/{poison}")).await;
    assert_eq!(status, 204);
    let (status, body) = api.delete(&format!("/dead-letters/{poison}")).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (_, body) = api.get("/dead-letters").await;
    assert_eq!(body["items"], json!([]));
}

#[tokio::test]
async fn a_bulk_redrive_acts_only_on_the_count_the_operator_confirmed() {
    let api = Api::start().await;
    let thread = ThreadId::generate();
    for text in ["a", "b"] {
        api.dead_letter(&thread, message(&thread, text), ErrorCategory::Retryable)
            .await;
    }
    let poison = api
        .dead_letter(&thread, b"nope".to_vec(), ErrorCategory::Retryable)
        .await;
    api.dead_letter(&thread, message(&thread, "c"), ErrorCategory::NotRetryable)
        .await;

    let (status, body) = api
        .post(
            "/dead-letters/redrive",
            json!({"category": "retryable", "dry_run": true}),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({"would_redrive": 3})));

    let (status, body) = api
        .post("/dead-letters/redrive", json!({"category": "retryable"}))
        .await;
    assert_eq!((status, error_code(&body)), (400, "confirmation_required"));
    let (status, body) = api
        .post(
            "/dead-letters/redrive",
            json!({"category": "retryable", "expected_count": 2}),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, "count_changed"));
    let (status, body) = api
        .post(
            "/dead-letters/redrive",
            json!({"category": "fatalistic", "dry_run": true}),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "invalid_category"));
    let (status, body) = api
        .post("/dead-letters/redrive", json!({"dryrun": true}))
        .await;
    assert_eq!((status, error_code(&body)), (400, "invalid_body"));

    let (status, body) = api
        .post(
            "/dead-letters/redrive",
            json!({"category": "retryable", "expected_count": 3}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redriven"], 2);
    assert_eq!(body["failed"][0]["id"], poison);
    assert_eq!(body["failed"][0]["code"], "not_redrivable");

    let (_, body) = api.get("/dead-letters").await;
    let left: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        ["retryable", "not_retryable"],
        "the poison and the other category stay"
    );
}

#[tokio::test]
async fn when_nats_is_down_the_answer_is_unavailable() {
    let mut api = Api::start().await;
    api.nats.kill();
    let (status, body) = api.get("/dead-letters").await;
    assert_eq!((status, error_code(&body)), (503, "unavailable"));
}
