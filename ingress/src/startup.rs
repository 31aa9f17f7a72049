//! Builds the ingress (stream, live tail, router), binds first so port 0 works in tests,
//! and serves until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream::{Context, stream::Stream};
use axum::{
    Json, Router,
    extract::{Query, State, WebSocketUpgrade},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use common::startup::{App, Service};
use common::{config::NatsArgs, events::ThreadId, shutdown::CancellationToken};
use serde::Deserialize;
use tokio_util::task::TaskTracker;

use crate::backlog::Backlog;
use crate::config::IngressArgs;
use crate::live::LiveTail;
use crate::ws::{
    frame::{ErrorCode, FrameError},
    session::{self, Resume, Session},
    token::TokenSigner,
};

/// Everything a connection needs, cheap to clone.
#[derive(Clone)]
pub struct IngressState {
    pub js: Context,
    pub client: async_nats::Client,
    /// Shared, not cloned per connection: a `Stream` carries its whole info.
    pub stream: Arc<Stream>,
    pub live: LiveTail,
    pub signer: TokenSigner,
    pub args: Arc<IngressArgs>,
    pub shutdown: CancellationToken,
    /// Open sessions, so shutdown can wait for them to finish the message in hand.
    pub sessions: TaskTracker,
    /// The workers' backlog, against `--max-backlog`.
    pub backlog: Arc<Backlog>,
}

impl IngressState {
    /// Starts the live tail on `stream` (which must exist).
    pub async fn new(
        client: async_nats::Client,
        js: Context,
        stream: Stream,
        args: IngressArgs,
        shutdown: CancellationToken,
    ) -> anyhow::Result<IngressState> {
        let stream = Arc::new(stream);
        Ok(IngressState {
            live: LiveTail::start(client.clone(), (*stream).clone(), shutdown.clone()).await?,
            signer: TokenSigner::new(&args.thread_token_secret),
            backlog: Backlog::start(stream.clone(), args.max_backlog, shutdown.clone()),
            args: Arc::new(args),
            js,
            client,
            stream,
            shutdown,
            sessions: TaskTracker::new(),
        })
    }

    /// After shutdown was signalled: waits until every session has finished its message
    /// in hand and closed its socket with "going away".
    pub async fn drain(&self) {
        self.sessions.close();
        self.sessions.wait().await;
    }
}

/// The ingress routes: `GET /ws` and `GET /healthz`.
pub fn router(state: IngressState) -> Router {
    Router::new()
        .route("/ws", get(ws_handler))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// The ingress, not yet bound: connects, starts the live tail, and answers `/ws` and
/// `/healthz`; open sessions are drained after the listener stops.
pub async fn service(
    nats: &NatsArgs,
    args: IngressArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<Service> {
    let (client, js) = common::jetstream::connect(nats).await?;
    let stream = common::jetstream::ensure_chat_stream(&js, nats).await?;
    let state = IngressState::new(client, js, stream, args, shutdown).await?;
    let sessions = state.clone();
    Ok(Service::new(router(state)).with_drain(async move { sessions.drain().await }))
}

/// The ingress bound on `listen`, serving until `shutdown` is cancelled. (`/metrics` is on a
/// listener of its own: [`common::metrics::serve`].)
pub async fn build(
    listen: SocketAddr,
    nats: &NatsArgs,
    args: IngressArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<App> {
    let app = service(nats, args, shutdown.clone())
        .await?
        .bind(Some(listen), shutdown)
        .await?;
    tracing::info!(addr = ?app.addr(), "ingress listening");
    Ok(app)
}

#[derive(Debug, Deserialize)]
struct WsParams {
    thread_id: Option<String>,
    token: Option<String>,
    after_seq: Option<u64>,
}

async fn ws_handler(
    ws: WebSocketUpgrade,
    Query(params): Query<WsParams>,
    headers: HeaderMap,
    State(state): State<IngressState>,
) -> Response {
    if !origin_allowed(&headers, &state.args.allowed_origins) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let ws = ws
        // Small buffers: 10,000 idle connections must stay within 100 MiB. tungstenite
        // allocates the read buffer per connection up front: 512 bytes holds a typical chat
        // frame, and a larger one takes several reads (4 KiB cost 28 MB per 10,000 idle
        // connections and gave no more acks/s: benchmarks.md C4, C5).
        .read_buffer_size(512)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(256 * 1024)
        // The transport cap is above the frame cap, so an oversized frame is answered
        // with `frame_too_large` and the connection stays; past this cap the frame is not
        // read and the session closes the connection with 1009 (message too big).
        .max_message_size(state.args.max_frame_bytes * 4)
        .max_frame_size(state.args.max_frame_bytes * 4);
    let session = match params.thread_id {
        None => {
            let thread_id = ThreadId::generate();
            let token = state.signer.sign(&thread_id);
            Session {
                thread_id,
                token,
                resume: None,
            }
        }
        Some(raw) => {
            let token = params.token.unwrap_or_default();
            match ThreadId::parse(&raw) {
                Ok(thread_id) if state.signer.verify(&thread_id, &token) => Session {
                    // Signed anew: after a rotation of THREAD_TOKEN_SECRET, a token signed
                    // with an old secret is replaced by one under the current secret.
                    token: state.signer.sign(&thread_id),
                    thread_id,
                    resume: Some(Resume {
                        after_seq: params.after_seq,
                    }),
                },
                _ => {
                    let error = FrameError::new(
                        ErrorCode::Unauthorized,
                        "thread_id and token do not match; start a new conversation",
                    );
                    return ws.on_upgrade(move |socket| session::refuse(socket, error));
                }
            }
        }
    };
    let sessions = state.sessions.clone();
    ws.on_upgrade(move |socket| sessions.track_future(session::run(socket, state, session)))
}

/// An Origin header is allowed when it is listed, or, with no list, when it names the
/// same host as the Host header. Clients that send no Origin (not browsers) are allowed.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a.trim_end_matches('/') == origin);
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((host, origin_host), (Some(h), Some(o)) if h == o)
}

async fn healthz(State(state): State<IngressState>) -> Response {
    let connected = state.client.connection_state() == async_nats::connection::State::Connected;
    let status = if connected {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if connected { "ok" } else { "unavailable" },
        "checks": { "nats": if connected { "ok" } else { "disconnected" } },
    });
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn a_same_origin_page_is_allowed_and_a_foreign_one_is_not() {
        assert!(origin_allowed(
            &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"),
            &[]
        ));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example"), "127.0.0.1:8080"),
            &[]
        ));
        assert!(origin_allowed(&headers(None, "127.0.0.1:8080"), &[]));
    }

    #[test]
    fn a_listed_origin_is_allowed() {
        let allowed = vec!["https://chat.example.com".to_owned()];
        assert!(origin_allowed(
            &headers(Some("https://chat.example.com"), "internal:8080"),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080"),
            &allowed
        ));
    }
}
