//! One WebSocket connection: the session frame, then client frames → publish → ack, and
//! the thread's events → event frames, until the client leaves, idles out, reads too
//! slowly, or the service shuts down.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use futures::stream::FuturesOrdered;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use axum::extract::ws::{Message, WebSocket, close_code};
use common::events::ThreadId;

use crate::backlog::BACKLOG_EVERY;
use crate::metrics::METRICS;
use crate::publish::{Refusal, ThreadWriter};
use crate::startup::IngressState;
use crate::ws::frame::{self, ClientMsgId, FrameError, MessageContent};
use crate::ws::resume::History;
use crate::ws::wire::{CLOSE_SLOW_CLIENT, ClientFrame, ErrorCode, ServerFrame, close, error_frame};

/// How long one event may take to reach the client's socket before the connection is
/// dropped (the client resumes with `after_seq`).
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest wait for a message to be stored before it is refused as `unavailable`.
const STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    // Started at the first message: an idle connection costs no task for it.
    let mut store: Option<Storer> = None;
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
        // Boxed: the history read's futures are large and only a resume needs them; inline
        // they would enlarge every connection's task (10,000 idle connections, heaptrack).
        match Box::pin(replay(
            &mut socket,
            state,
            &session.thread_id,
            resume.after_seq,
        ))
        .await
        {
            Ok(Some(last)) => last_sent = last,
            Ok(None) => return,
            // Silence would be worse: every live event would be at or below `after_seq` and
            // dropped as already sent.
            Err(Replay::Beyond {
                after_seq,
                last_seq,
            }) => {
                tracing::warn!(
                    after_seq,
                    last_seq,
                    "a resume after a sequence the stream does not have"
                );
                let error = FrameError::new(
                    ErrorCode::InvalidAfterSeq,
                    format!(
                        "after_seq {after_seq} is beyond the last event stored (stream sequence \
                         {last_seq}): the conversation log was replaced or the sequence is wrong; \
                         start a new conversation, or resume without after_seq"
                    ),
                );
                METRICS.error(error.code);
                let _ = socket.send(error_frame(&error, None)).await;
                let _ = socket
                    .send(close(close_code::POLICY, "invalid_after_seq"))
                    .await;
                return;
            }
            Err(Replay::Unavailable(err)) => {
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
                let away = close(close_code::AWAY, "server shutting down");
                Box::pin(finish_and_close(&mut socket, &mut pending, away)).await;
                return;
            }
            _ = tokio::time::sleep_until(deadline) => {
                let _ = socket.send(close(close_code::NORMAL, "idle timeout")).await;
                return;
            }
            event = live.events.recv() => match event {
                Some(first) => {
                    // Write every event already waiting, then flush once: one syscall
                    // for a burst instead of one per frame.
                    let mut batch = Vec::new();
                    let mut next = Some(first);
                    while let Some(event) = next {
                        if event.live_only {
                            batch.push(Message::Text(event.frame.clone()));
                        } else if event.seq > last_sent {
                            last_sent = event.seq;
                            batch.push(Message::Text(event.frame.clone()));
                        }
                        next = if batch.len() < WRITE_BATCH {
                            live.events.try_recv().ok()
                        } else {
                            None
                        };
                    }
                    // A client that does not read at all would hold this task forever.
                    if !Box::pin(send_all(&mut socket, batch)).await {
                        return;
                    }
                }
                None => {
                    METRICS.slow_clients.inc();
                    let _ = socket
                        .send(close(CLOSE_SLOW_CLIENT, "too slow; resume with after_seq"))
                        .await;
                    return;
                }
            },
            Some(reply) = pending.next(), if !pending.is_empty() => {
                let mut batch = vec![reply_frame(reply)];
                while batch.len() < WRITE_BATCH {
                    match pending.next().now_or_never() {
                        Some(Some(reply)) => batch.push(reply_frame(reply)),
                        _ => break,
                    }
                }
                if !Box::pin(send_all(&mut socket, batch)).await {
                    return;
                }
            }
            incoming = socket.recv(), if pending.len() < MAX_PENDING => {
                let incoming = match incoming {
                    Some(Ok(incoming)) => incoming,
                    // Over the transport cap the frame is not read; the client hears why
                    // instead of seeing the connection drop.
                    Some(Err(error)) if too_big(&error) => {
                        let reason = format!(
                            "message too big: the limit is {} bytes",
                            args.max_frame_bytes
                        );
                        let too_big = close(close_code::SIZE, reason);
                        Box::pin(finish_and_close(&mut socket, &mut pending, too_big)).await;
                        // The rest of the frame is unread: closing the socket now would
                        // reset the connection, and a reset can discard the close frame
                        // before the client reads it.
                        tokio::select! {
                            _ = tokio::time::sleep(CLOSE_LINGER) => {}
                            _ = state.shutdown.cancelled() => {}
                        }
                        return;
                    }
                    _ => return,
                };
                deadline = tokio::time::Instant::now() + idle;
                let reply = match incoming {
                    Message::Text(text) => {
                        handle_text(state, &mut store, &session.thread_id, &text)
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

/// Sends the answers to the frames already read (their acks go out before the close),
/// then the close frame, each within [`SEND_TIMEOUT`].
async fn finish_and_close(
    socket: &mut WebSocket,
    pending: &mut FuturesOrdered<PendingReply>,
    close: Message,
) {
    while let Some(reply) = pending.next().await {
        if !send_all(socket, vec![reply_frame(reply)]).await {
            return;
        }
    }
    send_all(socket, vec![close]).await;
}

/// Whether a read failed because the client's frame or message is over the transport
/// cap (tungstenite's capacity error), rather than a broken connection or protocol.
fn too_big(error: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(Error::Capacity(_)) = cause.downcast_ref::<Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// How long a connection closed with 1009 stays open, unread, so the client reads the
/// close frame before the connection goes.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Most frames written before one flush.
const WRITE_BATCH: usize = 64;

/// Writes the frames and flushes once, within [`SEND_TIMEOUT`]; false when the client is
/// gone or stuck.
async fn send_all(socket: &mut WebSocket, frames: Vec<Message>) -> bool {
    if frames.is_empty() {
        return true;
    }
    let write = async {
        for frame in frames {
            socket.feed(frame).await?;
        }
        socket.flush().await
    };
    matches!(tokio::time::timeout(SEND_TIMEOUT, write).await, Ok(Ok(())))
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

/// Why a resume's replay did not happen.
enum Replay {
    /// `after_seq` is beyond the stream's last sequence.
    Beyond { after_seq: u64, last_seq: u64 },
    /// The history could not be read.
    Unavailable(anyhow::Error),
}

impl From<anyhow::Error> for Replay {
    fn from(err: anyhow::Error) -> Replay {
        Replay::Unavailable(err)
    }
}

/// Sends the stored events after `after_seq`; returns the last sequence sent, or `None`
/// when the client went away.
async fn replay(
    socket: &mut WebSocket,
    state: &IngressState,
    thread: &ThreadId,
    after_seq: Option<u64>,
) -> Result<Option<u64>, Replay> {
    let mut history = History::after(&state.stream, thread, after_seq).await?;
    // Only an empty history can be past the end (any event after `after_seq` proves the
    // stream reaches it), so the usual resume costs no extra request.
    if let Some(after_seq) = after_seq
        && history.is_empty()
    {
        let mut stream = (*state.stream).clone();
        let last_seq = stream
            .info()
            .await
            .map_err(|err| anyhow::anyhow!("cannot read the stream's info: {err}"))?
            .state
            .last_sequence;
        if after_seq > last_seq {
            return Err(Replay::Beyond {
                after_seq,
                last_seq,
            });
        }
    }
    let mut last = after_seq.unwrap_or(0);
    while let Some(event) = history.next().await? {
        last = event.seq;
        if socket.send(Message::Text(event.frame)).await.is_err() {
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

/// One text frame: parsed here; storing it (rate limit → publish → PubAck) is handed to
/// the connection's storer, and the answer is a future, so the session keeps delivering
/// events (and reading frames) while JetStream stores it.
fn handle_text(
    state: &IngressState,
    store: &mut Option<Storer>,
    thread: &ThreadId,
    text: &str,
) -> Result<PendingReply, Rejection> {
    let frame = frame::parse(text, state.args.max_frame_bytes).map_err(|err| (err, None))?;
    match frame {
        ClientFrame::Ping => Ok(Box::pin(std::future::ready(Ok(Reply::Pong)))),
        ClientFrame::Message {
            content,
            client_msg_id,
        } => Ok(store
            .get_or_insert_with(|| Storer::start(state, thread))
            .submit(content, client_msg_id)),
    }
}

/// A message for the storer, with where to send its answer.
struct StoreRequest {
    content: MessageContent,
    client_msg_id: Option<ClientMsgId>,
    answer: oneshot::Sender<Result<Reply, Rejection>>,
}

/// One task per connection that stores its messages one after the other (each publish
/// names the sequence of the thread's previous message; see [`crate::publish`]).
struct Storer {
    requests: mpsc::Sender<StoreRequest>,
}

impl Storer {
    fn start(state: &IngressState, thread: &ThreadId) -> Storer {
        let (requests, mut incoming) = mpsc::channel::<StoreRequest>(MAX_PENDING);
        let mut writer = ThreadWriter::new(
            state.js.clone(),
            state.stream.clone(),
            thread.clone(),
            state.args.rate_limit(),
        );
        let state = state.clone();
        let thread = thread.clone();
        tokio::spawn(async move {
            while let Some(request) = incoming.recv().await {
                let answer = store(
                    &state,
                    &thread,
                    &mut writer,
                    request.content,
                    request.client_msg_id,
                )
                .await;
                let _ = request.answer.send(answer);
            }
        });
        Storer { requests }
    }

    /// Queues a message; the session never has more than [`MAX_PENDING`] in flight, so
    /// the queue always has room.
    fn submit(&self, content: MessageContent, client_msg_id: Option<ClientMsgId>) -> PendingReply {
        let named = client_msg_id.as_ref().map(|id| id.as_str().to_owned());
        let (answer, answered) = oneshot::channel();
        let request = StoreRequest {
            content,
            client_msg_id,
            answer,
        };
        if self.requests.try_send(request).is_err() {
            return Box::pin(std::future::ready(Err(unavailable(named))));
        }
        Box::pin(async move { answered.await.unwrap_or_else(|_| Err(unavailable(named))) })
    }
}

fn unavailable(named: Option<String>) -> Rejection {
    (
        FrameError::new(
            ErrorCode::Unavailable,
            "the message could not be stored now; resend it with the same client_msg_id",
        ),
        named,
    )
}

/// Stores one message: refuses at once while NATS is disconnected, then rate limit →
/// publish → PubAck, bounded by [`STORE_TIMEOUT`]. Where a message's trace begins: its span
/// is a root, and the message is published with its `traceparent` (`common::trace`).
#[tracing::instrument(name = "message", parent = None, skip_all, fields(thread_id = %thread, seq, trace_id = tracing::field::Empty))]
async fn store(
    state: &IngressState,
    thread: &ThreadId,
    writer: &mut ThreadWriter,
    content: MessageContent,
    client_msg_id: Option<ClientMsgId>,
) -> Result<Reply, Rejection> {
    common::trace::start(&tracing::Span::current(), None);
    let named = client_msg_id.as_ref().map(|id| id.as_str().to_owned());
    // Without a connection every step below would only wait for its time-out.
    if state.client.connection_state() != async_nats::connection::State::Connected {
        return Err(unavailable(named));
    }
    if let Some(pending) = state.backlog.over_limit() {
        let mut error = FrameError::new(
            ErrorCode::Unavailable,
            format!(
                "{pending} messages are waiting for an agent; resend it with the same client_msg_id in a second"
            ),
        );
        error.retry_after_ms = Some(BACKLOG_EVERY.as_millis() as u64);
        return Err((error, named));
    }
    let started = Instant::now();
    let stored = tokio::time::timeout(STORE_TIMEOUT, writer.store(content, client_msg_id.as_ref()))
        .await
        .unwrap_or_else(|_| Err(Refusal::Unavailable("timed out".into())));
    match stored {
        Ok(stored) => {
            tracing::Span::current().record("seq", stored.seq);
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
        }
        Err(Refusal::Limited { retry_after }) => {
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
            Err((error, named))
        }
        Err(Refusal::Unavailable(reason)) => {
            tracing::warn!(reason = %common::text::log_safe(&reason), "message not stored");
            Err(unavailable(named))
        }
        Err(Refusal::Erased) => Err((
            FrameError::new(
                ErrorCode::ConversationErased,
                "this conversation was erased and takes no more messages; start a new conversation",
            ),
            named,
        )),
    }
}
