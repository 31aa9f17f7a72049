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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
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
    /// 200 `text/event-stream` with these pieces of body, each written (and flushed) on
    /// its own, so an event may be split over pieces as on a real network. [`sse`] makes
    /// the pieces of a completion.
    Sse(Vec<String>),
    /// [`Answer::Sse`], then the connection breaks before the stream's end (no `[DONE]`).
    BrokenSse(Vec<String>),
    /// This answer after a delay (a slow first byte).
    Slow(Duration, Box<Answer>),
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

/// How [`sse`] cuts a completion into chunks.
const CONTENT_PIECE_CHARS: usize = 4;
const ARGUMENTS_PIECE_CHARS: usize = 5;

/// A chat completion (as [`Answer::reply`] and [`Answer::tool_call`] make them) streamed
/// the way the public API streams it: `data: {chunk}\n\n` events of
/// `chat.completion.chunk`s — a keep-alive comment first, the role, the content in pieces
/// of a few characters, each tool call's id and name then its arguments in pieces (by
/// `index`), the `finish_reason`, then with `include_usage` a last chunk with `usage` and
/// empty `choices` — and `data: [DONE]`. Each event is one piece of body.
pub fn sse(completion: &Value, include_usage: bool) -> Vec<String> {
    let id = completion["id"]
        .as_str()
        .unwrap_or("chatcmpl-fake")
        .to_owned();
    let created = completion["created"].as_u64().unwrap_or(0);
    let chunk = |choices: Value, usage: Option<&Value>| {
        let mut chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": MODEL,
            "choices": choices,
        });
        if include_usage {
            chunk["usage"] = usage.cloned().unwrap_or(Value::Null);
        }
        format!("data: {chunk}\n\n")
    };
    let delta = |delta: Value, finish: Value| {
        chunk(
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]),
            None,
        )
    };
    let message = &completion["choices"][0]["message"];
    let mut events = vec![": keep-alive\n\n".to_owned()];
    events.push(delta(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ));
    if let Some(content) = message["content"].as_str() {
        for piece in pieces(content, CONTENT_PIECE_CHARS) {
            events.push(delta(json!({"content": piece}), Value::Null));
        }
    }
    for (index, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let function = &call["function"];
        events.push(delta(
            json!({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                "function": {"name": function["name"], "arguments": ""}}]}),
            Value::Null,
        ));
        let arguments = function["arguments"].as_str().unwrap_or("");
        for piece in pieces(arguments, ARGUMENTS_PIECE_CHARS) {
            events.push(delta(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    events.push(delta(
        json!({}),
        completion["choices"][0]["finish_reason"].clone(),
    ));
    if include_usage {
        events.push(chunk(json!([]), Some(&completion["usage"])));
    }
    events.push("data: [DONE]\n\n".to_owned());
    events
}

/// `text` in pieces of `chars` characters.
fn pieces(text: &str, chars: usize) -> Vec<String> {
    let all: Vec<char> = text.chars().collect();
    all.chunks(chars.max(1))
        .map(|piece| piece.iter().collect())
        .collect()
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

    /// Queues a stream of these body pieces (raw SSE text).
    pub fn push_sse(&self, pieces: Vec<String>) {
        self.push(Answer::Sse(pieces));
    }

    /// Queues a stream of these pieces that then breaks off without `[DONE]`.
    pub fn push_broken_sse(&self, pieces: Vec<String>) {
        self.push(Answer::BrokenSse(pieces));
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

/// 200 `text/event-stream` with `pieces`, each its own write (`paced`: a millisecond
/// after the last, so the client reads them as separate chunks; scripted streams are);
/// `broken`: then the connection fails instead of ending.
fn event_stream(pieces: Vec<String>, broken: bool, paced: bool) -> Response {
    let items = pieces
        .into_iter()
        .map(|piece| Ok(axum::body::Bytes::from(piece)))
        .chain(broken.then(|| Err(std::io::Error::other("the fake model server broke off"))));
    let body = futures::stream::iter(items).then(move |item| async move {
        if paced {
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            tokio::task::yield_now().await;
        }
        item
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, streamed, include_usage) = {
        let mut script = lock(&shared);
        let body: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let streamed = body["stream"] == true;
        let include_usage = body["stream_options"]["include_usage"] == true;
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        script.requests.push(Recorded {
            body,
            authorization,
        });
        let default = script.default.clone();
        let answer = script.answers.pop_front().unwrap_or(default);
        (answer, streamed, include_usage)
    };
    answer_with(&shared, answer, streamed, include_usage).await
}

/// The response to one request: a completion as SSE when the request asked for a stream
/// (`"stream": true`), as the public API does.
async fn answer_with(
    shared: &Arc<Shared>,
    answer: Answer,
    streamed: bool,
    include_usage: bool,
) -> Response {
    match answer {
        Answer::Json(body) if streamed && body["object"] == "chat.completion" => {
            event_stream(sse(&body, include_usage), false, false)
        }
        Answer::Sse(pieces) => event_stream(pieces, false, true),
        Answer::BrokenSse(pieces) => event_stream(pieces, true, true),
        Answer::Slow(delay, answer) => {
            tokio::time::sleep(delay).await;
            Box::pin(answer_with(shared, *answer, streamed, include_usage)).await
        }
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
