//! `GET /api/conversations`, `GET /api/conversations/{thread_id}`,
//! `GET /api/conversations/{thread_id}/replay` and
//! `POST /api/conversations/{thread_id}/resolve`. Reads take `min_seq` (read your writes);
//! the resolve is an event on the log like everything else, folded by the projector.

use std::collections::HashMap;

use async_nats::jetstream::message::PublishMessage;
use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::events::{ConversationResolved, Envelope, OperatorRef, ThreadId, TurnId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::consistency::{self, MinSeq};
use crate::error::ErrorBody;
use crate::{ApiState, Routes, error::ApiError};
use projections::read_models::{
    conversation::{self, After, Summary},
    replay_step, turn,
};

/// Statuses a conversation can have (the `status` filter accepts these).
pub const STATUSES: &[&str] = &[
    "open",
    "waiting_confirmation",
    "escalated",
    "assigned",
    "resolved",
    "failed",
];
/// Page size when `limit` is not given, and the most a page may hold.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
/// Longest note a resolve may carry.
pub const MAX_NOTE_CHARS: usize = 2_000;

pub fn routes() -> Routes {
    Routes::new()
        .get("/conversations", list)
        .get("/conversations/{thread_id}", show)
        .get("/conversations/{thread_id}/replay", replay)
        .post("/conversations/{thread_id}/resolve", resolve)
}

/// A page request, parsed from the query string.
#[derive(Debug, PartialEq)]
struct PageQuery {
    limit: i64,
    after: Option<After>,
    status: Option<String>,
}

fn parse_page_query(query: &HashMap<String, String>) -> Result<PageQuery, ApiError> {
    let limit = super::error::parse_limit(query, DEFAULT_LIMIT, MAX_LIMIT)? as i64;
    let after = query
        .get("cursor")
        .map(|raw| decode_cursor(raw))
        .transpose()?;
    let status = match query.get("status") {
        None => None,
        Some(status) if STATUSES.contains(&status.as_str()) => Some(status.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_status",
                format!("status must be one of {}", STATUSES.join(", ")),
            ));
        }
    };
    Ok(PageQuery {
        limit,
        after,
        status,
    })
}

/// The cursor is opaque to clients: base64url of `<start time in ns>~<thread id>`.
fn encode_cursor(after: &After) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}~{}",
        after.started_at.unix_timestamp_nanos(),
        after.thread_id
    ))
}

fn decode_cursor(raw: &str) -> Result<After, ApiError> {
    let invalid = || ApiError::bad_request("invalid_cursor", "cursor is not one this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (nanos, thread_id) = text.split_once('~').ok_or_else(invalid)?;
    let nanos: i128 = nanos.parse().map_err(|_| invalid())?;
    Ok(After {
        started_at: OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid())?,
        thread_id: ThreadId::parse(thread_id)
            .map_err(|_| invalid())?
            .to_string(),
    })
}

fn parse_thread_id(raw: &str) -> Result<ThreadId, ApiError> {
    ThreadId::parse(raw).map_err(|err| ApiError::bad_request("invalid_thread_id", err.to_string()))
}

fn conversation_not_found(thread_id: &ThreadId) -> ApiError {
    ApiError::NotFound {
        code: "conversation_not_found",
        message: format!("no conversation {thread_id}"),
    }
}

/// A page of conversations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<Summary>,
    /// Pass it back as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Newest first, paged: `{"items":[…],"next_cursor":…}`.
#[utoipa::path(
    get,
    path = "/api/conversations",
    tag = "conversations",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page, unchanged"),
        ("status" = Option<String>, Query,
         description = "Only conversations with this status: `open`, `waiting_confirmation`, `escalated`, `assigned`, `resolved`, `failed`"),
        MinSeq,
    ),
    responses(
        (status = 200, description = "Newest first (by start time, then thread id)", body = ConversationPage),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_status`, `invalid_min_seq`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`projection_behind`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ConversationPage>, ApiError> {
    let page = parse_page_query(&query)?;
    consistency::read_after(&state, &query).await?;
    let mut items = conversation::page(
        &state.pool,
        page.status.as_deref(),
        page.after.as_ref(),
        page.limit + 1,
    )
    .await?;
    let next_cursor = if items.len() as i64 > page.limit {
        items.truncate(page.limit as usize);
        items.last().map(|last: &Summary| {
            encode_cursor(&After {
                started_at: last.started_at,
                thread_id: last.thread_id.clone(),
            })
        })
    } else {
        None
    };
    Ok(Json(ConversationPage { items, next_cursor }))
}

/// One conversation: its summary and its turns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub summary: Summary,
    /// Every turn, in the order of the messages they answer.
    pub turns: Vec<turn::Row>,
}

const THREAD_ID: &str = "1 to 64 characters of `A-Z a-z 0-9 - _`";

/// One conversation's summary, lifecycle and turns.
#[utoipa::path(
    get,
    path = "/api/conversations/{thread_id}",
    tag = "conversations",
    params(
        ("thread_id" = String, Path, description = THREAD_ID, pattern = "^[A-Za-z0-9_-]{1,64}$"),
        MinSeq,
    ),
    responses(
        (status = 200, description = "The summary fields of a list item, and `turns`", body = ConversationDetail),
        (status = 400, description = "`invalid_thread_id`, `invalid_min_seq`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 503, description = "`projection_behind`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn show(
    State(state): State<ApiState>,
    Path(thread_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ConversationDetail>, ApiError> {
    let thread_id = parse_thread_id(&thread_id)?;
    consistency::read_after(&state, &query).await?;
    let summary = conversation::find(&state.pool, thread_id.as_str())
        .await?
        .ok_or_else(|| conversation_not_found(&thread_id))?;
    let turns = turn::for_thread(&state.pool, thread_id.as_str()).await?;
    Ok(Json(ConversationDetail { summary, turns }))
}

/// A conversation's events in stream order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replay {
    pub thread_id: String,
    pub steps: Vec<ReplayStep>,
}

/// One step of a replay: the envelope fields below, and the event kind's own fields
/// beside them (see `docs/events.md`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayStep {
    /// Stream sequence.
    pub seq: i64,
    pub event_id: Uuid,
    pub turn_id: Uuid,
    /// The event kind (`message.received`, `agent.replied`, `tool.called`, …).
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The kind's own fields (`content`, `text`, `agent`, `params`, …).
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Value>)]
    pub fields: serde_json::Map<String, Value>,
}

/// Every step of the conversation in stream order: `seq`, `occurred_at`, `kind`,
/// `turn_id`, `event_id` and the kind's own fields beside them.
#[utoipa::path(
    get,
    path = "/api/conversations/{thread_id}/replay",
    tag = "conversations",
    params(
        ("thread_id" = String, Path, description = THREAD_ID, pattern = "^[A-Za-z0-9_-]{1,64}$"),
        MinSeq,
    ),
    responses(
        (status = 200, description = "Every stored event of the conversation, in stream order", body = Replay),
        (status = 400, description = "`invalid_thread_id`, `invalid_min_seq`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`: no stored step", body = ErrorBody),
        (status = 503, description = "`projection_behind`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn replay(
    State(state): State<ApiState>,
    Path(thread_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Replay>, ApiError> {
    let thread_id = parse_thread_id(&thread_id)?;
    consistency::read_after(&state, &query).await?;
    let steps = replay_step::for_thread(&state.pool, thread_id.as_str()).await?;
    if steps.is_empty() {
        return Err(conversation_not_found(&thread_id));
    }
    let steps = steps
        .into_iter()
        .map(|step| ReplayStep {
            seq: step.seq,
            event_id: step.event_id,
            turn_id: step.turn_id,
            kind: step.kind,
            occurred_at: step.occurred_at,
            fields: match step.fields {
                Value::Object(fields) => fields,
                _ => Default::default(),
            },
        })
        .collect();
    Ok(Json(Replay {
        thread_id: thread_id.to_string(),
        steps,
    }))
}

/// Body of a resolve (optional: an empty body is no note).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// Kept with the event (at most 2000 characters).
    #[schema(max_length = 2000, example = "refund sent by hand")]
    pub note: Option<String>,
}

/// The answer to a resolve: where the `conversation.resolved` event is in the stream.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Resolved {
    pub thread_id: String,
    /// Stream sequence of the event: pass it as `min_seq` to read the resolved status.
    pub seq: u64,
}

fn parse_resolve(body: &[u8]) -> Result<ResolveRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ResolveRequest::default());
    }
    let request: ResolveRequest = serde_json::from_slice(body).map_err(|err| {
        ApiError::bad_request("invalid_body", format!("not a resolve request: {err}"))
    })?;
    if request
        .note
        .as_ref()
        .is_some_and(|note| note.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(ApiError::bad_request(
            "note_too_long",
            format!("note may be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    // As for chat content: the read models could not store it exactly (PostgreSQL text).
    if request
        .note
        .as_ref()
        .is_some_and(|note| note.contains('\0'))
    {
        return Err(ApiError::bad_request(
            "note_contains_nul",
            "note contains the NUL character (U+0000), which cannot be stored",
        ));
    }
    Ok(request)
}

/// An operator marks the conversation resolved: a `conversation.resolved` event, answered
/// once JetStream has stored it. The status changes when the projector applies it; pass
/// the answer's `seq` as `min_seq` to a read to see it.
#[utoipa::path(
    post,
    path = "/api/conversations/{thread_id}/resolve",
    tag = "conversations",
    params(("thread_id" = String, Path, description = THREAD_ID, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body(content = Option<ResolveRequest>, description = "Optional; an empty body is no note", content_type = "application/json"),
    responses(
        (status = 202, description = "The `conversation.resolved` event is stored", body = Resolved),
        (status = 400, description = "`invalid_thread_id`, `invalid_body`, `note_too_long`, `note_contains_nul`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`conversation_not_found`", body = ErrorBody),
        (status = 409, description = "`already_resolved`: the conversation's status is `resolved`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the event log did not store it; nothing changed, try again", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn resolve(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(thread_id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Resolved>), ApiError> {
    let thread_id = parse_thread_id(&thread_id)?;
    let request = parse_resolve(&body)?;
    let conversation = conversation::find(&state.pool, thread_id.as_str())
        .await?
        .ok_or_else(|| conversation_not_found(&thread_id))?;
    // Read from the projection, so a resolve just sent may not show yet; two resolves that
    // race both get in, and the fold counts only the first.
    if conversation.status == "resolved" {
        return Err(ApiError::Conflict {
            code: "already_resolved",
            message: format!("conversation {thread_id} is already resolved"),
        });
    }
    let seq = publish_resolved(&state, &thread_id, request.note, caller.as_ref()).await?;
    tracing::info!(%thread_id, seq, "conversation resolved by an operator");
    Ok((
        StatusCode::ACCEPTED,
        Json(Resolved {
            thread_id: thread_id.to_string(),
            seq,
        }),
    ))
}

/// Publishes `conversation.resolved` and waits for the PubAck; returns its sequence.
async fn publish_resolved(
    state: &ApiState,
    thread_id: &ThreadId,
    note: Option<String>,
    operator: OperatorRef,
) -> Result<u64, ApiError> {
    let event = Envelope::new(
        Uuid::new_v4(),
        thread_id.clone(),
        // Not a turn of the thread: an id of its own (see `ConversationResolved`).
        TurnId::from_uuid(Uuid::new_v4()),
        OffsetDateTime::now_utc(),
        ConversationResolved {
            resolved_by: "operator".into(),
            operator: Some(operator),
            note,
        },
    );
    let js = async_nats::jetstream::new(state.client.clone());
    let publish = PublishMessage::build()
        .payload(event.to_json().into())
        .message_id(event.event_id.to_string())
        .expected_stream(common::subjects::CHAT_STREAM);
    let ack = async { js.send_publish(event.subject(), publish).await?.await };
    let ack = ack
        .await
        .map_err(|err| ApiError::Unavailable(format!("resolve not stored: {err}")))?;
    Ok(ack.sequence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::testing::*;

    #[test]
    fn a_cursor_round_trips() {
        let after = After {
            started_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789)
                .unwrap(),
            thread_id: "abc".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&after)).unwrap(), after);
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let page = parse_page_query(&query(&[])).unwrap();
        assert_eq!(
            page,
            PageQuery {
                limit: 20,
                after: None,
                status: None
            }
        );
    }

    #[test]
    fn a_limit_out_of_range_or_not_a_number_is_rejected() {
        for bad in ["0", "101", "-1", "ten"] {
            assert_eq!(
                code(parse_page_query(&query(&[("limit", bad)]))),
                "invalid_limit"
            );
        }
    }

    #[test]
    fn a_forged_cursor_is_rejected() {
        for bad in ["xyz", "!!", &URL_SAFE_NO_PAD.encode("12~a.b")] {
            assert_eq!(
                code(parse_page_query(&query(&[("cursor", bad)]))),
                "invalid_cursor"
            );
        }
    }

    #[test]
    fn a_resolve_body_is_optional() {
        assert_eq!(parse_resolve(b"").unwrap().note, None);
        assert_eq!(parse_resolve(b" \n").unwrap().note, None);
        assert_eq!(parse_resolve(b"{}").unwrap().note, None);
        assert_eq!(
            parse_resolve(br#"{"note":"done"}"#)
                .unwrap()
                .note
                .as_deref(),
            Some("done")
        );
    }

    #[test]
    fn a_resolve_body_that_is_not_the_request_is_rejected() {
        for bad in [&b"note"[..], br#"{"notes":"x"}"#, br#"{"note":1}"#, b"[]"] {
            assert_eq!(code(parse_resolve(bad)), "invalid_body");
        }
    }

    #[test]
    fn a_note_with_a_nul_character_is_rejected() {
        assert_eq!(
            code(parse_resolve(br#"{"note":"done\u0000"}"#)),
            "note_contains_nul"
        );
    }

    #[test]
    fn a_note_over_2000_characters_is_rejected() {
        let body = serde_json::json!({ "note": "é".repeat(2001) }).to_string();
        assert_eq!(code(parse_resolve(body.as_bytes())), "note_too_long");
        let body = serde_json::json!({ "note": "é".repeat(2000) }).to_string();
        assert!(parse_resolve(body.as_bytes()).is_ok());
    }

    #[test]
    fn an_unknown_status_is_rejected() {
        assert_eq!(
            code(parse_page_query(&query(&[("status", "sleeping")]))),
            "invalid_status"
        );
        assert!(parse_page_query(&query(&[("status", "resolved")])).is_ok());
    }
}
