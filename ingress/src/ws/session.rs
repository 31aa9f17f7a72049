//! One WebSocket connection: the session frame, then client frames → publish → ack, and
//! the thread's events → event frames, until the client leaves, idles out, reads too
//! slowly, or the service shuts down.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use common::events::ThreadId;
use serde::Serialize;

use crate::live::LiveEvent;
use crate::publish;
use crate::startup::IngressState;
use crate::ws::frame::{self, ClientFrame, ErrorCode, FrameError};
use crate::ws::resume::History;

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
    Session { thread_id: &'a str, token: &'a str },
    Ack { client_msg_id: &'a str, seq: u64 },
    Error { code: ErrorCode, message: &'a str },
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

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Refuses a connection after the upgrade: an `unauthorized` frame, then a close.
pub async fn refuse(mut socket: WebSocket, error: FrameError) {
    let frame = ServerFrame::Error {
        code: error.code,
        message: &error.message,
    };
    let _ = socket.send(frame.to_message()).await;
    let _ = socket.send(close(close_code::POLICY, "unauthorized")).await;
}

/// Runs one connection to its end.
#[tracing::instrument(skip_all, fields(thread_id = %session.thread_id))]
pub async fn run(mut socket: WebSocket, state: IngressState, session: Session) {
    let args = &state.args;
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
        match replay(&mut socket, &state, &session.thread_id, resume.after_seq).await {
            Ok(Some(last)) => last_sent = last,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot replay the thread");
                let frame = ServerFrame::Error {
                    code: ErrorCode::Unavailable,
                    message: "the conversation history cannot be read now; reconnect to retry",
                };
                let _ = socket.send(frame.to_message()).await;
                let _ = socket
                    .send(close(CLOSE_SLOW_CLIENT, "history unavailable"))
                    .await;
                return;
            }
        }
    }

    let idle = args.idle_timeout;
    let mut deadline = tokio::time::Instant::now() + idle;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => {
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
                    if let Some(message) = event_frame(&event)
                        && socket.send(message).await.is_err()
                    {
                        return;
                    }
                }
                Some(_) => {}
                None => {
                    let _ = socket
                        .send(close(CLOSE_SLOW_CLIENT, "too slow; resume with after_seq"))
                        .await;
                    return;
                }
            },
            incoming = socket.recv() => {
                let Some(Ok(incoming)) = incoming else { return };
                deadline = tokio::time::Instant::now() + idle;
                let reply = match incoming {
                    Message::Text(text) => handle_text(&state, &session.thread_id, &text).await,
                    Message::Binary(_) => Err(FrameError::new(
                        ErrorCode::BinaryNotSupported,
                        "frames are UTF-8 JSON text; binary frames are not supported",
                    )),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                let message = match &reply {
                    Ok(Reply::Ack { client_msg_id, seq }) => ServerFrame::Ack {
                        client_msg_id,
                        seq: *seq,
                    }
                    .to_message(),
                    Ok(Reply::Pong) => ServerFrame::Pong.to_message(),
                    Err(error) => ServerFrame::Error {
                        code: error.code,
                        message: &error.message,
                    }
                    .to_message(),
                };
                if socket.send(message).await.is_err() {
                    return;
                }
            }
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
    Ack { client_msg_id: String, seq: u64 },
    Pong,
}

#[tracing::instrument(skip_all)]
async fn handle_text(
    state: &IngressState,
    thread: &ThreadId,
    text: &str,
) -> Result<Reply, FrameError> {
    match frame::parse(text, state.args.max_frame_bytes)? {
        ClientFrame::Ping => Ok(Reply::Pong),
        ClientFrame::Message {
            content,
            client_msg_id,
        } => {
            let stored = publish::store_user_message(
                &state.js,
                thread,
                content,
                client_msg_id.as_ref(),
            )
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "message not stored");
                FrameError::new(
                    ErrorCode::Unavailable,
                    "the message could not be stored now; resend it with the same client_msg_id",
                )
            })?;
            tracing::debug!(
                seq = stored.seq,
                duplicate = stored.duplicate,
                "message stored"
            );
            let client_msg_id = client_msg_id
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default();
            Ok(Reply::Ack {
                client_msg_id,
                seq: stored.seq,
            })
        }
    }
}
