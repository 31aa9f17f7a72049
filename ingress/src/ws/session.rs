//! One WebSocket connection: the session frame, then client frames → publish → ack, and
//! the thread's events → event frames, until the client leaves, idles out, reads too
//! slowly, or the service shuts down.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesOrdered;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use common::events::ThreadId;
use serde::Serialize;

use crate::live::LiveEvent;
use crate::metrics::METRICS;
use crate::publish;
use crate::rate_limit::{Decision, LimitUnavailable, ThreadLimiter};
use crate::startup::IngressState;
use crate::ws::frame::{self, ClientFrame, ErrorCode, FrameError};
use crate::ws::resume::History;

/// How long one event may take to reach the client's socket before the connection is
/// dropped (the client resumes with `after_seq`).
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest wait for the rate limit state before a message is refused as `unavailable`.
const LIMIT_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Close code for a client dropped because it read too slowly (RFC 6455 "try again later").
pub const CLOSE_SLOW_CLIENT: u16 = 1013;

/// Who this connection is, decided at the handshake.
#[derive(Debug, Clone)]
pub struct Session {
    pub thread_id: ThreadId,
    pub token: String,
    /// `Some` when the client resumes an existing thread.
    pub resume: Option<Resume>,
}

/// A resume request: replay after this sequence (everything when `None`).
#[derive(Debug, Clone, Copy)]
pub struct Resume {
    pub after_seq: Option<u64>,
}

/// Frames the server sends (see API.md).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Session {
        thread_id: &'a str,
        token: &'a str,
    },
    Ack {
        /// The client's id for the message; `null` when it sent none.
        client_msg_id: Option<&'a str>,
        seq: u64,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        /// The message the error is about, when the frame named one.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
        /// For `rate_limited`: milliseconds until a message would be accepted.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong,
}

impl ServerFrame<'_> {
    fn to_message(&self) -> Message {
        Message::Text(
            serde_json::to_string(self)
                .expect("server frames always serialize")
                .into(),
        )
    }
}

/// `{"type":"event","seq":N,"event":<the event as stored>}`, or `None` for bytes on the
/// stream that are not JSON (those never reach a client).
fn event_frame(event: &LiveEvent) -> Option<Message> {
    serde_json::from_slice::<serde::de::IgnoredAny>(&event.payload).ok()?;
    let payload = std::str::from_utf8(&event.payload).ok()?;
    Some(Message::Text(
        format!(
            r#"{{"type":"event","seq":{},"event":{payload}}}"#,
            event.seq
        )
        .into(),
    ))
}

fn error_frame(error: &FrameError, client_msg_id: Option<&str>) -> Message {
    ServerFrame::Error {
        code: error.code,
        message: &error.message,
        client_msg_id,
        retry_after_ms: error.retry_after_ms,
    }
    .to_message()
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Refuses a connection after the upgrade: an `unauthorized` frame, then a close.
pub async fn refuse(mut socket: WebSocket, error: FrameError) {
    METRICS.error(error.code);
    let _ = socket.send(error_frame(&error, None)).await;
    let _ = socket.send(close(close_code::POLICY, "unauthorized")).await;
}

/// Runs one connection to its end.
#[tracing::instrument(skip_all, fields(thread_id = %session.thread_id))]
pub async fn run(socket: WebSocket, state: IngressState, session: Session) {
    METRICS.connections_opened.inc();
    METRICS.connections.inc();
    serve(socket, &state, session).await;
    METRICS.connections.dec();
}

async fn serve(mut socket: WebSocket, state: &IngressState, session: Session) {
    let args = &state.args;
    let mut limiter = ThreadLimiter::new(
        state.js.clone(),
        state.replicas,
        state.limits.clone(),
        &session.thread_id,
        args.rate_limit(),
    );
    // Register before replaying, so nothing published meanwhile is missed.
    let mut live = state
        .live
        .subscribe(&session.thread_id, args.outbound_buffer);
    let hello = ServerFrame::Session {
        thread_id: session.thread_id.as_str(),
        token: &session.token,
    };
    if socket.send(hello.to_message()).await.is_err() {
        return;
    }
    let mut last_sent: u64 = 0;
    if let Some(resume) = session.resume {
        match replay(&mut socket, state, &session.thread_id, resume.after_seq).await {
            Ok(Some(last)) => last_sent = last,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot replay the thread");
                let error = FrameError::new(
                    ErrorCode::Unavailable,
                    "the conversation history cannot be read now; reconnect to retry",
                );
                METRICS.error(error.code);
                let _ = socket.send(error_frame(&error, None)).await;
                let _ = socket
                    .send(close(CLOSE_SLOW_CLIENT, "history unavailable"))
                    .await;
                return;
            }
        }
    }

    let mut pending: FuturesOrdered<PendingReply> = FuturesOrdered::new();
    let idle = args.idle_timeout;
    let mut deadline = tokio::time::Instant::now() + idle;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => {
                // Finish the messages in hand: their acks go out before the close.
                while let Some(reply) = pending.next().await {
                    let _ = socket.send(reply_frame(reply)).await;
                }
                let _ = socket.send(close(close_code::AWAY, "server shutting down")).await;
                return;
            }
            _ = tokio::time::sleep_until(deadline) => {
                let _ = socket.send(close(close_code::NORMAL, "idle timeout")).await;
                return;
            }
            event = live.events.recv() => match event {
                Some(event) if event.seq > last_sent => {
                    last_sent = event.seq;
                    if let Some(message) = event_frame(&event) {
                        // A client that does not read at all would hold this task forever.
                        match tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) | Err(_) => return,
                        }
                    }
                }
                Some(_) => {}
                None => {
                    METRICS.slow_clients.inc();
                    let _ = socket
                        .send(close(CLOSE_SLOW_CLIENT, "too slow; resume with after_seq"))
                        .await;
                    return;
                }
            },
            Some(reply) = pending.next(), if !pending.is_empty() => {
                if socket.send(reply_frame(reply)).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv(), if pending.len() < MAX_PENDING => {
                let Some(Ok(incoming)) = incoming else { return };
                deadline = tokio::time::Instant::now() + idle;
                let reply = match incoming {
                    Message::Text(text) => {
                        handle_text(state, &mut limiter, &session.thread_id, &text).await
                    }
                    Message::Binary(_) => Err((
                        FrameError::new(
                            ErrorCode::BinaryNotSupported,
                            "frames are UTF-8 JSON text; binary frames are not supported",
                        ),
                        None,
                    )),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                // Answers go out in the order the frames came in, after the acks of
                // earlier messages still waiting for JetStream.
                pending.push_back(match reply {
                    Ok(stored) => stored,
                    Err(rejected) => Box::pin(std::future::ready(Err(rejected))),
                });
            }
        }
    }
}

fn reply_frame(reply: Result<Reply, Rejection>) -> Message {
    match &reply {
        Ok(Reply::Ack { client_msg_id, seq }) => ServerFrame::Ack {
            client_msg_id: client_msg_id.as_deref(),
            seq: *seq,
        }
        .to_message(),
        Ok(Reply::Pong) => ServerFrame::Pong.to_message(),
        Err((error, client_msg_id)) => {
            METRICS.error(error.code);
            error_frame(error, client_msg_id.as_deref())
        }
    }
}

/// Sends the stored events after `after_seq`; returns the last sequence sent, or `None`
/// when the client went away.
async fn replay(
    socket: &mut WebSocket,
    state: &IngressState,
    thread: &ThreadId,
    after_seq: Option<u64>,
) -> anyhow::Result<Option<u64>> {
    let mut history = History::after(&state.stream, thread, after_seq).await?;
    let mut last = after_seq.unwrap_or(0);
    while let Some(event) = history.next().await? {
        last = event.seq;
        if let Some(message) = event_frame(&event)
            && socket.send(message).await.is_err()
        {
            return Ok(None);
        }
    }
    Ok(Some(last))
}

enum Reply {
    Ack {
        client_msg_id: Option<String>,
        seq: u64,
    },
    Pong,
}

/// A rejected frame, with the `client_msg_id` it named when it got that far.
type Rejection = (FrameError, Option<String>);

/// An answer still waiting for JetStream.
type PendingReply = Pin<Box<dyn Future<Output = Result<Reply, Rejection>> + Send>>;

/// Most messages of one connection waiting for their PubAck; past it the connection
/// reads no further frames until an ack is in (back-pressure on the client).
const MAX_PENDING: usize = 64;

/// One text frame: parse → rate limit, then the store → ack step as a future, so the
/// session keeps delivering events (and reading frames) while JetStream stores it.
#[tracing::instrument(skip_all)]
async fn handle_text(
    state: &IngressState,
    limiter: &mut ThreadLimiter,
    thread: &ThreadId,
    text: &str,
) -> Result<PendingReply, Rejection> {
    let frame = frame::parse(text, state.args.max_frame_bytes).map_err(|err| (err, None))?;
    let (content, client_msg_id) = match frame {
        ClientFrame::Ping => return Ok(Box::pin(std::future::ready(Ok(Reply::Pong)))),
        ClientFrame::Message {
            content,
            client_msg_id,
        } => (content, client_msg_id),
    };
    let named = client_msg_id.as_ref().map(|id| id.as_str().to_owned());
    let unavailable = |named: Option<String>| {
        (
            FrameError::new(
                ErrorCode::Unavailable,
                "the message could not be stored now; resend it with the same client_msg_id",
            ),
            named,
        )
    };
    // Without a connection every step below would only wait for its time-out.
    if state.client.connection_state() != async_nats::connection::State::Connected {
        return Err(unavailable(named));
    }
    let checked = tokio::time::timeout(LIMIT_CHECK_TIMEOUT, limiter.check())
        .await
        .unwrap_or_else(|_| Err(LimitUnavailable("timed out".into())));
    match checked {
        Ok(Decision::Allowed) => {}
        Ok(Decision::Limited { retry_after }) => {
            let limit = state.args.rate_limit();
            let mut error = FrameError::new(
                ErrorCode::RateLimited,
                format!(
                    "at most {} messages per {} s in a conversation; retry in {} ms",
                    limit.messages,
                    limit.window.as_secs(),
                    retry_after.as_millis()
                ),
            );
            error.retry_after_ms = Some(retry_after.as_millis() as u64);
            return Err((error, named));
        }
        Err(err) => {
            tracing::warn!(error = %err, "rate limit not checked");
            return Err(unavailable(named));
        }
    }
    let js = state.js.clone();
    let thread = thread.clone();
    Ok(Box::pin(async move {
        let started = Instant::now();
        let stored = publish::store_user_message(&js, &thread, content, client_msg_id.as_ref())
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "message not stored");
                unavailable(named.clone())
            })?;
        METRICS
            .publish_seconds
            .observe(started.elapsed().as_secs_f64());
        METRICS.messages.inc();
        tracing::debug!(
            seq = stored.seq,
            duplicate = stored.duplicate,
            "message stored"
        );
        Ok(Reply::Ack {
            client_msg_id: named,
            seq: stored.seq,
        })
    }))
}
