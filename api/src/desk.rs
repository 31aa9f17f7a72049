//! The operators' desk: the inbox (`GET /api/inbox`), the commands on a conversation —
//! take over (`assign`), answer the customer (`messages`), an internal note (`notes`),
//! hand back (`release`) — each stored as an event that names its operator, and the live
//! feed of every event for operators (`GET /api/desk/events`, server-sent events).
//!
//! Who holds a conversation is read from the stream, not the read models: the thread's
//! last event on `chat.<thread>.operator`. Each command that depends on it is published
//! with `Nats-Expected-Last-Subject-Sequence` set to that event's sequence, so two
//! operators who take over at once cannot both succeed (the second reads again and gets
//! 409 `already_assigned`), and a reply cannot slip in after a release.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::DirectGetErrorKind;
use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::sse::{Event, KeepAlive, Sse},
};
use common::events::{
    ConversationAssigned, ConversationReleased, Envelope, NoteAdded, OperatorRef, OperatorReplied,
    Payload, ThreadId, TurnId,
};
use common::{subjects, text};
use futures::{Stream, StreamExt};
use projections::read_models::{conversation, handoff};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::conversations::{self, parse_thread_id};
use crate::error::ErrorBody;
use crate::operators::{self, Role};
use crate::{ApiState, Routes, error::ApiError};

/// Most conversations an inbox view lists.
const INBOX_LIMIT: i64 = 200;
/// Attempts of a command whose expected operator-event sequence moved meanwhile.
const ATTEMPTS: usize = 3;

pub fn routes() -> Routes {
    Routes::new()
        .get("/inbox", inbox)
        .get("/desk/events", events)
        .post("/conversations/{thread_id}/assign", assign)
        .post("/conversations/{thread_id}/messages", reply)
        .post("/conversations/{thread_id}/notes", note)
        .post("/conversations/{thread_id}/release", release)
}

/// An inbox view and the size of every view.
#[derive(Debug, Serialize, ToSchema)]
pub struct Inbox {
    /// Oldest waiting first.
    pub items: Vec<handoff::InboxItem>,
    pub counts: handoff::Counts,
}

/// The conversations that need a person (escalated, or held and not yet resolved).
#[utoipa::path(
    get,
    path = "/api/inbox",
    tag = "desk",
    params(("view" = Option<String>, Query, description = "`unassigned` (escalated, nobody holds it), `mine` (held by me) or `all` (the default)", pattern = "^(unassigned|mine|all)$")),
    responses(
        (status = 200, description = "Oldest waiting first, with the size of every view", body = Inbox),
        (status = 400, description = "`invalid_view`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn inbox(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Inbox>, ApiError> {
    let view = match query.get("view").map(String::as_str) {
        None | Some("all") => handoff::View::All,
        Some("unassigned") => handoff::View::Unassigned,
        Some("mine") => handoff::View::Mine(caller.id),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_view",
                "view must be one of unassigned, mine, all",
            ));
        }
    };
    Ok(Json(Inbox {
        items: handoff::inbox(&state.pool, view, INBOX_LIMIT).await?,
        counts: handoff::counts(&state.pool, caller.id).await?,
    }))
}

/// The answer to a command: the sequence of the stored event (pass it as `min_seq` to a
/// read to see its effect).
#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    pub seq: u64,
}

fn accepted(seq: u64) -> (StatusCode, Json<Stored>) {
    (StatusCode::ACCEPTED, Json(Stored { seq }))
}

/// The request's JSON body; an optional one may be empty (the default then).
fn json_body<T: serde::de::DeserializeOwned + Default>(
    body: &Bytes,
    required: bool,
) -> Result<T, ApiError> {
    if body.is_empty() && !required {
        return Ok(T::default());
    }
    if required {
        return crate::error::json_body(body);
    }
    // An optional body may also be JSON `null`: the document's optional body is nullable.
    crate::error::json_body::<Option<T>>(body).map(Option::unwrap_or_default)
}

/// 404 unless the read models know the conversation.
async fn known_conversation(state: &ApiState, thread: &ThreadId) -> Result<(), ApiError> {
    match conversation::find(&state.pool, thread.as_str()).await? {
        Some(_) => Ok(()),
        None => Err(conversations::conversation_not_found(thread)),
    }
}

/// The thread's last operator event: its sequence (0: none) and who holds the
/// conversation after it.
async fn holder(
    state: &ApiState,
    thread: &ThreadId,
) -> Result<(u64, Option<OperatorRef>), ApiError> {
    match state
        .stream
        .direct_get_last_for_subject(subjects::operator_event(thread))
        .await
    {
        Ok(message) => {
            let held = match Envelope::from_json(&message.payload).map(|e| e.payload) {
                Ok(Payload::ConversationAssigned(a)) => Some(a.operator),
                Ok(Payload::OperatorReplied(r)) => Some(r.operator),
                _ => None,
            };
            Ok((message.sequence, held))
        }
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => Ok((0, None)),
        Err(err) => Err(ApiError::Unavailable(format!(
            "cannot read the thread's operator events: {err}"
        ))),
    }
}

/// Why a publish did not store the event.
enum NotStored {
    /// The thread's last operator event is no longer the one read: read again.
    Moved,
    Failed(ApiError),
}

/// Publishes an operator's event and waits for the PubAck; with `after`, only if the
/// thread's last operator event is still at that sequence.
async fn publish(state: &ApiState, event: &Envelope, after: Option<u64>) -> Result<u64, NotStored> {
    let js = async_nats::jetstream::new(state.client.clone());
    let mut publish = PublishMessage::build()
        .payload(event.to_json().into())
        .message_id(event.event_id.to_string())
        .expected_stream(subjects::CHAT_STREAM);
    if let Some(seq) = after {
        publish = publish.expected_last_subject_sequence(seq);
    }
    let ack = async { js.send_publish(event.subject(), publish).await?.await };
    match ack.await {
        Ok(ack) => Ok(ack.sequence),
        Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => Err(NotStored::Moved),
        Err(err) => Err(NotStored::Failed(ApiError::Unavailable(format!(
            "{} not stored: {err}",
            event.payload.kind()
        )))),
    }
}

fn envelope(thread: &ThreadId, event_id: Uuid, payload: impl Into<Payload>) -> Envelope {
    Envelope::new(
        event_id,
        thread.clone(),
        // Not a turn of the thread: an id of its own.
        TurnId::from_uuid(Uuid::new_v4()),
        OffsetDateTime::now_utc(),
        payload,
    )
}

/// Runs a command against who holds the conversation: `decide` looks at the holder and
/// returns the event to store (or the answer when nothing needs storing); it is asked
/// again when another operator event came in between.
async fn command(
    state: &ApiState,
    thread: &ThreadId,
    decide: impl Fn(u64, Option<&OperatorRef>) -> Result<Result<Envelope, u64>, ApiError>,
) -> Result<u64, ApiError> {
    for _ in 0..ATTEMPTS {
        let (seq, held) = holder(state, thread).await?;
        let event = match decide(seq, held.as_ref())? {
            Ok(event) => event,
            Err(done) => return Ok(done),
        };
        match publish(state, &event, Some(seq)).await {
            Ok(stored) => return Ok(stored),
            Err(NotStored::Moved) => continue,
            Err(NotStored::Failed(err)) => return Err(err),
        }
    }
    Err(ApiError::Conflict {
        code: "concurrent_change",
        message: "the conversation changed while this was stored; try again".into(),
    })
}

fn already_assigned(holder: &OperatorRef) -> ApiError {
    ApiError::Conflict {
        code: "already_assigned",
        message: format!("{} holds this conversation", holder.name),
    }
}

fn not_assigned(thread: &ThreadId) -> ApiError {
    ApiError::Conflict {
        code: "not_assigned",
        message: format!("you do not hold conversation {thread}; take it over first"),
    }
}

/// Whom to assign.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AssignRequest {
    /// The operator who takes the conversation (default: me). Only an admin may assign
    /// someone else.
    #[schema(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub operator_id: Option<Uuid>,
}

/// Takes a conversation over: the agents stop answering it until it is released or
/// resolved.
#[utoipa::path(
    post,
    path = "/api/conversations/{thread_id}/assign",
    tag = "desk",
    params(("thread_id" = String, Path, description = "The conversation", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body(content = Option<AssignRequest>, description = "Optional; default: me", content_type = "application/json"),
    responses(
        (status = 202, description = "`conversation.assigned` is stored (or the operator held it already)", body = Stored),
        (status = 400, description = "`invalid_thread_id`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only an admin may assign someone else", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`, `operator_not_found`", body = ErrorBody),
        (status = 409, description = "`already_assigned`: another operator holds it", body = ErrorBody),
        (status = 503, description = "`unavailable`: nothing was stored; try again", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn assign(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(thread): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    let thread = parse_thread_id(&thread)?;
    let request: AssignRequest = json_body(&body, false)?;
    let target = match request.operator_id {
        None => caller.as_ref(),
        Some(id) if id == caller.id => caller.as_ref(),
        Some(_) if caller.role != Role::Admin => {
            return Err(ApiError::Forbidden(
                "only an admin may assign someone else".into(),
            ));
        }
        Some(id) => match operators::find(&state.pool, id).await? {
            Some(operator) if operator.disabled_at.is_none() => OperatorRef {
                operator_id: operator.id,
                name: operator.name,
            },
            _ => {
                return Err(ApiError::NotFound {
                    code: "operator_not_found",
                    message: format!("no active operator {id}"),
                });
            }
        },
    };
    known_conversation(&state, &thread).await?;
    let assigned_by = (target.operator_id != caller.id).then(|| caller.as_ref());
    let seq = command(&state, &thread, |seq, held| match held {
        Some(h) if h.operator_id == target.operator_id => Ok(Err(seq)),
        Some(h) => Err(already_assigned(h)),
        None => Ok(Ok(envelope(
            &thread,
            Uuid::new_v4(),
            ConversationAssigned {
                operator: target.clone(),
                assigned_by: assigned_by.clone(),
            },
        ))),
    })
    .await?;
    tracing::info!(%thread, seq, operator_id = %target.operator_id, "conversation assigned");
    Ok(accepted(seq))
}

/// A reply to the customer.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReplyRequest {
    /// What the customer reads: non-empty, at most 10000 characters.
    /// Not only white space (Unicode `White_Space`: `empty_content`), and no NUL (`content_contains_nul`).
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*[^\\u0000\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub text: String,
    /// The operator client's id for this reply: a resend with the same id stores nothing
    /// new. 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    pub client_msg_id: Option<String>,
}

fn check_text(text: &str) -> Result<(), ApiError> {
    text::check_content(text).map_err(|err| ApiError::bad_request(err.code(), err.to_string()))
}

/// The operator who holds the conversation answers the customer, who sees it at once.
#[utoipa::path(
    post,
    path = "/api/conversations/{thread_id}/messages",
    tag = "desk",
    params(("thread_id" = String, Path, description = "The conversation", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body = ReplyRequest,
    responses(
        (status = 202, description = "`operator.replied` is stored (a resend with the same `client_msg_id` answers the first one's `seq`)", body = Stored),
        (status = 400, description = "`invalid_thread_id`, `invalid_body`, `empty_content`, `content_too_long`, `content_contains_nul`, `invalid_client_msg_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`not_assigned`: the caller does not hold the conversation", body = ErrorBody),
        (status = 503, description = "`unavailable`: nothing was stored; try again", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn reply(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(thread): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    let thread = parse_thread_id(&thread)?;
    let request: ReplyRequest = json_body(&body, true)?;
    check_text(&request.text)?;
    if let Some(id) = &request.client_msg_id {
        text::check_client_msg_id(id)
            .map_err(|err| ApiError::bad_request(err.code(), err.to_string()))?;
    }
    // The same client message id gives the same event id: JetStream's duplicate window
    // drops a resend and answers the first one's sequence.
    let event_id = match &request.client_msg_id {
        Some(id) => Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("operator.replied:{thread}:{}:{id}", caller.id).as_bytes(),
        ),
        None => Uuid::new_v4(),
    };
    let seq = command(&state, &thread, |_, held| match held {
        Some(h) if h.operator_id == caller.id => Ok(Ok(envelope(
            &thread,
            event_id,
            OperatorReplied {
                text: request.text.clone(),
                operator: caller.as_ref(),
                client_msg_id: request.client_msg_id.clone(),
            },
        ))),
        _ => Err(not_assigned(&thread)),
    })
    .await?;
    tracing::info!(%thread, seq, operator_id = %caller.id, "operator replied");
    Ok(accepted(seq))
}

/// An internal note.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NoteRequest {
    /// For operators only: non-empty, at most 10000 characters.
    /// Not only white space (Unicode `White_Space`: `empty_content`), and no NUL (`content_contains_nul`).
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = "^[^\\u0000]*[^\\u0000\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub text: String,
}

/// An internal note on a conversation: shown to operators, never sent to the customer (not
/// live, not in a resume).
#[utoipa::path(
    post,
    path = "/api/conversations/{thread_id}/notes",
    tag = "desk",
    params(("thread_id" = String, Path, description = "The conversation", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body = NoteRequest,
    responses(
        (status = 202, description = "`note.added` is stored", body = Stored),
        (status = 400, description = "`invalid_thread_id`, `invalid_body`, `empty_content`, `content_too_long`, `content_contains_nul`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable`: nothing was stored; try again", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn note(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(thread): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    let thread = parse_thread_id(&thread)?;
    let request: NoteRequest = json_body(&body, true)?;
    check_text(&request.text)?;
    known_conversation(&state, &thread).await?;
    let event = envelope(
        &thread,
        Uuid::new_v4(),
        NoteAdded {
            text: request.text,
            operator: caller.as_ref(),
        },
    );
    let seq = publish(&state, &event, None)
        .await
        .map_err(|err| match err {
            NotStored::Moved => ApiError::Unavailable("note not stored".into()),
            NotStored::Failed(err) => err,
        })?;
    tracing::info!(%thread, seq, operator_id = %caller.id, "note added");
    Ok(accepted(seq))
}

/// Hands the conversation back to the agents.
#[utoipa::path(
    post,
    path = "/api/conversations/{thread_id}/release",
    tag = "desk",
    params(("thread_id" = String, Path, description = "The conversation", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    responses(
        (status = 202, description = "`conversation.released` is stored: the agents answer the next message", body = Stored),
        (status = 400, description = "`invalid_thread_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`not_assigned`: the caller does not hold it (an admin may release anyone's)", body = ErrorBody),
        (status = 503, description = "`unavailable`: nothing was stored; try again", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn release(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(thread): Path<String>,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
    let thread = parse_thread_id(&thread)?;
    let seq = command(&state, &thread, |_, held| match held {
        Some(h) if h.operator_id == caller.id || caller.role == Role::Admin => Ok(Ok(envelope(
            &thread,
            Uuid::new_v4(),
            ConversationReleased {
                operator: caller.as_ref(),
            },
        ))),
        _ => Err(not_assigned(&thread)),
    })
    .await?;
    tracing::info!(%thread, seq, operator_id = %caller.id, "conversation released");
    Ok(accepted(seq))
}

/// The stream sequence after `raw` (an `after_seq` or `Last-Event-ID`): a whole number
/// from 0 to 2^63 - 1, the document's int64. After the last one there is nothing to send,
/// so the start stays there (JetStream takes no sequence past it).
fn start_after(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|&seq| seq <= i64::MAX as u64)
        .map(|seq| (seq + 1).min(i64::MAX as u64))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_after_seq",
                "after_seq and Last-Event-ID must be whole numbers from 0 to 9223372036854775807",
            )
        })
}

/// Every event of every conversation as it is stored (notes included), for operators:
/// server-sent events with `id: <seq>`, `event: event` and `data: {"seq":N,"event":{…}}`,
/// and a `:` keep-alive comment every 15 s. A reconnect resumes after the last id seen
/// (`Last-Event-ID`, which browsers send by themselves, or `after_seq`); without either it
/// starts with the next stored event.
#[utoipa::path(
    get,
    path = "/api/desk/events",
    tag = "desk",
    params(
        ("after_seq" = Option<i64>, Query, minimum = 0, description = "Replay every event after this stream sequence first"),
        ("Last-Event-ID" = Option<i64>, Header, minimum = 0, description = "The same, as a reconnecting browser sends it"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_after_seq`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn events(
    State(state): State<ApiState>,
    // A map, not a struct: a repeated parameter is then the last one, never the extractor's
    // plain-text 400.
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Both are checked when both are sent; `after_seq` wins. A map, so a repeated
    // parameter is the last one.
    let header = headers
        .get("last-event-id")
        .map(|v| start_after(v.to_str().unwrap_or("not text")))
        .transpose()?;
    let after = query
        .get("after_seq")
        .map(|raw| start_after(raw))
        .transpose()?
        .or(header);
    let deliver_policy = match after {
        Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        None => DeliverPolicy::New,
    };
    let consumer = state
        .stream
        .create_consumer(OrderedConfig {
            filter_subject: subjects::CHAT_SUBJECTS.into(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|err| ApiError::Unavailable(format!("cannot follow the stream: {err}")))?;
    let messages = consumer
        .messages()
        .await
        .map_err(|err| ApiError::Unavailable(format!("cannot follow the stream: {err}")))?;
    let feed = messages.filter_map(|message| async move {
        let message = message.ok()?;
        let seq = message.info().ok()?.stream_sequence;
        let event: serde_json::Value = serde_json::from_slice(&message.payload).ok()?;
        let data = serde_json::json!({"seq": seq, "event": event});
        Some(Ok(Event::default()
            .id(seq.to_string())
            .event("event")
            .data(data.to_string())))
    });
    Ok(Sse::new(feed).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_starts_after_the_given_sequence_and_refuses_what_is_no_int64() {
        assert_eq!(start_after("0").ok(), Some(1));
        assert_eq!(start_after("41").ok(), Some(42));
        // The last int64 is taken (the document's range) and starts where nothing comes.
        assert_eq!(
            start_after("9223372036854775807").ok(),
            Some(i64::MAX as u64)
        );
        for raw in ["", "-1", "x", "9223372036854775808", "18446744073709551615"] {
            assert!(
                matches!(
                    start_after(raw),
                    Err(ApiError::BadRequest {
                        code: "invalid_after_seq",
                        ..
                    })
                ),
                "{raw}"
            );
        }
    }
}
