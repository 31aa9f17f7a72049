//! A fake chat-completions server for load runs (`scripts/bench_deltas.sh`), not for tests:
//! unlike `testkit::FakeLlm` it keeps no script and records no request, so it holds no
//! memory per request.
//!
//! Every `POST /v1/chat/completions` with `"stream": true` is answered with a streamed reply
//! of `--deltas` content deltas, one every `--delta-interval-ms`, each of them
//! `[t=<Unix micros when it was written>] ` so that a client on the same machine can tell
//! how long a piece took from the model to it; then the `finish_reason`, the usage chunk and
//! `data: [DONE]`. A request without `stream` gets the whole reply as one completion.
//!
//! ```text
//! cargo run --release -p testkit --example fake_llm_server -- \
//!     --addr 127.0.0.1:9300 --deltas 20 --delta-interval-ms 100
//! ```

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
struct Settings {
    deltas: u32,
    interval: Duration,
}

/// Streams open now and the most open at once: the turns in flight, printed every 5 s.
static OPEN: AtomicUsize = AtomicUsize::new(0);
static MOST_OPEN: AtomicUsize = AtomicUsize::new(0);
static STREAMS: AtomicUsize = AtomicUsize::new(0);

/// One open stream, counted in [`OPEN`] until the body is finished or dropped.
struct Open;

impl Open {
    fn new() -> Open {
        let now = OPEN.fetch_add(1, Ordering::Relaxed) + 1;
        MOST_OPEN.fetch_max(now, Ordering::Relaxed);
        STREAMS.fetch_add(1, Ordering::Relaxed);
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_micros())
        .unwrap_or_default()
}

fn usage() -> Value {
    json!({"prompt_tokens": 42, "completion_tokens": 20, "total_tokens": 62})
}

fn chunk(choices: Value, usage: Value) -> Bytes {
    let chunk = json!({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
        "model": "fake-llm", "choices": choices, "usage": usage,
    });
    Bytes::from(format!("data: {chunk}\n\n"))
}

fn delta(delta: Value, finish: Value) -> Bytes {
    chunk(
        json!([{"index": 0, "delta": delta, "finish_reason": finish}]),
        Value::Null,
    )
}

async fn chat_completions(State(settings): State<Settings>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if request["stream"] != Value::Bool(true) {
        let text: String = (0..settings.deltas)
            .map(|_| format!("[t={}] ", unix_micros()))
            .collect();
        let completion = json!({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "fake-llm",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": usage(),
        });
        return axum::Json(completion).into_response();
    }
    // 0: the role; 1..=deltas: the content; then the finish, the usage, [DONE].
    let last = settings.deltas + 3;
    let pieces = futures::stream::unfold((0_u32, Open::new()), move |(n, open)| async move {
        if n > last {
            return None;
        }
        if (2..=settings.deltas).contains(&n) && !settings.interval.is_zero() {
            tokio::time::sleep(settings.interval).await;
        }
        let piece = match n {
            0 => delta(json!({"role": "assistant", "content": ""}), Value::Null),
            n if n <= settings.deltas => delta(
                json!({"content": format!("[t={}] ", unix_micros())}),
                Value::Null,
            ),
            n if n == settings.deltas + 1 => delta(json!({}), json!("stop")),
            n if n == settings.deltas + 2 => chunk(json!([]), usage()),
            _ => Bytes::from_static(b"data: [DONE]\n\n"),
        };
        Some((Ok::<_, Infallible>(piece), (n + 1, open)))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(pieces),
    )
        .into_response()
}

fn usage_exit(message: &str) -> ! {
    eprintln!(
        "{message}\nusage: fake_llm_server [--addr HOST:PORT] [--deltas N] [--delta-interval-ms MS]"
    );
    std::process::exit(2)
}

fn main() {
    let mut addr = "127.0.0.1:9300".to_owned();
    let mut settings = Settings {
        deltas: 20,
        interval: Duration::from_millis(100),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            usage_exit(&format!("{flag} needs a value"))
        };
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| usage_exit(&format!("{flag}: not a number: {value}")))
        };
        match flag.as_str() {
            "--addr" => addr = value.clone(),
            "--deltas" => {
                settings.deltas =
                    u32::try_from(number()).unwrap_or_else(|_| usage_exit("--deltas: too large"))
            }
            "--delta-interval-ms" => settings.interval = Duration::from_millis(number()),
            other => usage_exit(&format!("unknown flag {other}")),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .unwrap_or_else(|error| usage_exit(&format!("cannot bind {addr}: {error}")));
        eprintln!(
            "fake_llm_server on http://{addr}/v1: {} deltas a reply, {} ms apart",
            settings.deltas,
            settings.interval.as_millis()
        );
        tokio::spawn(async {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                eprintln!(
                    "streams: {} in all, {} open now, at most {} open at once",
                    STREAMS.load(Ordering::Relaxed),
                    OPEN.load(Ordering::Relaxed),
                    MOST_OPEN.load(Ordering::Relaxed)
                );
            }
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(settings);
        axum::serve(listener, app).await.expect("serve");
    });
}
