//! A fake OpenAI-compatible model server: `POST /v1/chat/completions` on 127.0.0.1,
//! answering from a script.
//!
//! A real model cannot run in tests, so this is the one fake in testkit. It speaks the
//! wire format of chat-completions closely enough for any client of that API: each
//! request takes the next scripted [`Answer`] (or the default answer once the script is
//! empty) and is recorded, body and `Authorization` header, for the test to inspect.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The model name written into scripted completions.
const MODEL: &str = "fake-llm";

/// The default answer of a fresh server.
const DEFAULT_REPLY: &str = "This is the fake model's default reply.";

/// What the fake server answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 200 with this JSON body.
    Json(Value),
    /// This status with this body (sent as JSON when it parses as JSON, else as text).
    Status(u16, String),
    /// 200 with this body, as is (for malformed answers).
    Raw(String),
    /// Never answers (until the server is dropped): a model server that hangs, for
    /// client time-outs.
    Stall,
}

impl Answer {
    /// A chat completion whose message is the text `text` (`finish_reason: stop`).
    pub fn reply(text: &str) -> Answer {
        Answer::Json(completion(
            json!({"role": "assistant", "content": text}),
            "stop",
        ))
    }

    /// A chat completion whose message calls the tool `name` with `args_json` (the JSON
    /// string of the arguments, as the API sends it; `finish_reason: tool_calls`).
    pub fn tool_call(name: &str, args_json: &str) -> Answer {
        let message = json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": format!("call_fake_{name}"),
                "type": "function",
                "function": {"name": name, "arguments": args_json},
            }],
        });
        Answer::Json(completion(message, "tool_calls"))
    }

    /// An error in the API's shape (`{"error": {"message", "type", "code"}}`) with this
    /// status.
    pub fn error(code: u16, message: &str) -> Answer {
        let body = json!({
            "error": {"message": message, "type": "fake_error", "param": null, "code": code},
        });
        Answer::Status(code, body.to_string())
    }
}

/// A realistic chat-completion body around `message`.
fn completion(message: Value, finish_reason: &str) -> Value {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default();
    json!({
        "id": format!("chatcmpl-fake-{created}"),
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
    })
}

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Recorded {
    /// The JSON body, or the raw text as a JSON string when it is not JSON.
    body: Value,
    authorization: Option<String>,
}

#[derive(Debug)]
struct Script {
    answers: VecDeque<Answer>,
    default: Answer,
    requests: Vec<Recorded>,
}

#[derive(Debug)]
struct Shared {
    script: Mutex<Script>,
    /// Flips to true on drop; stalled requests wait for it.
    shutdown: watch::Receiver<bool>,
}

/// A running fake chat-completions server on a free 127.0.0.1 port.
///
/// Needs a tokio runtime (it runs as a task on the caller's). Dropping it stops the server
/// and releases stalled requests.
#[derive(Debug)]
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FakeLlm {
    /// Starts a server with an empty script; every request gets the default answer (a
    /// fixed text reply) until answers are pushed.
    pub async fn start() -> FakeLlm {
        FakeLlm::start_with([]).await
    }

    /// Starts a server that gives `answers` in order, then the default answer.
    ///
    /// # Panics
    ///
    /// If 127.0.0.1:0 cannot be bound.
    pub async fn start_with(answers: impl IntoIterator<Item = Answer>) -> FakeLlm {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0 for the fake model server");
        let addr = listener.local_addr().expect("local address of a listener");
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            script: Mutex::new(Script {
                answers: answers.into_iter().collect(),
                default: Answer::reply(DEFAULT_REPLY),
                requests: Vec::new(),
            }),
            shutdown: shutdown_rx.clone(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(shared.clone());
        let mut stop = shutdown_rx;
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
                .expect("fake model server");
        });
        FakeLlm {
            addr,
            shared,
            shutdown,
            task,
        }
    }

    /// The base URL to configure a client with: `http://127.0.0.1:<port>/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues an answer.
    pub fn push(&self, answer: Answer) {
        self.script().answers.push_back(answer);
    }

    /// Queues a full chat-completion body (200).
    pub fn push_json(&self, body: Value) {
        self.push(Answer::Json(body));
    }

    /// Queues a completion replying `text`.
    pub fn push_reply(&self, text: &str) {
        self.push(Answer::reply(text));
    }

    /// Queues a completion calling tool `name` with `args_json` (a JSON string).
    pub fn push_tool_call(&self, name: &str, args_json: &str) {
        self.push(Answer::tool_call(name, args_json));
    }

    /// Queues an answer with status `code` and `body`.
    pub fn push_status(&self, code: u16, body: &str) {
        self.push(Answer::Status(code, body.to_owned()));
    }

    /// Queues a 200 with `body` as is (malformed answers).
    pub fn push_raw(&self, body: &str) {
        self.push(Answer::Raw(body.to_owned()));
    }

    /// Queues a request that is never answered (until the server is dropped).
    pub fn push_stall(&self) {
        self.push(Answer::Stall);
    }

    /// What every request gets once the queue is empty.
    pub fn set_default(&self, answer: Answer) {
        self.script().default = answer;
    }

    /// Once the queue is empty, reply `text` to every request.
    pub fn set_default_reply(&self, text: &str) {
        self.set_default(Answer::reply(text));
    }

    /// Once the queue is empty, answer every request with status `code` and an
    /// API-shaped error body: a model server that is down (503) or rejects the key (401).
    pub fn set_default_status(&self, code: u16) {
        self.set_default(Answer::error(code, "the fake model server is set to fail"));
    }

    /// The JSON bodies of all requests so far, in order (a body that is not JSON is
    /// recorded as a JSON string).
    pub fn requests(&self) -> Vec<Value> {
        self.script()
            .requests
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }

    /// The `Authorization` header of each request so far, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.script()
            .requests
            .iter()
            .map(|r| r.authorization.clone())
            .collect()
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        lock(&self.shared)
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        // Releases stalled requests and starts the graceful shutdown; aborting covers a
        // client that keeps a connection open.
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Script> {
    // A test that panicked while holding the lock leaves a usable script behind.
    shared
        .script
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let mut script = lock(&shared);
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        script.requests.push(Recorded {
            body,
            authorization,
        });
        let default = script.default.clone();
        script.answers.pop_front().unwrap_or(default)
    };
    match answer {
        Answer::Json(body) => axum::Json(body).into_response(),
        Answer::Status(code, body) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let content_type = if serde_json::from_str::<Value>(&body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Answer::Raw(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Answer::Stall => {
            let mut stop = shared.shutdown.clone();
            let _ = stop.wait_for(|stopped| *stopped).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
