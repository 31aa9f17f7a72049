//! `GET /api/conversations`, `GET /api/conversations/{thread_id}`,
//! `GET /api/conversations/{thread_id}/replay` and
//! `POST /api/conversations/{thread_id}/resolve`. Reads take `min_seq` (read your writes);
//! the resolve is an event on the log like everything else, folded by the projector.

use std::collections::HashMap;

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::events::{ConversationResolved, Envelope, OperatorRef, ThreadId, TurnId, publish_of};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::consistency::{self, MinSeq};
use crate::error::ErrorBody;
use crate::{ApiState, Routes, error::ApiError};
use projections::read_models::{
    conversation::{self, After, Filter, Summary},
    replay_step,
    search::{self, AfterHit},
    turn,
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
/// The values of the `status` filter ([`STATUSES`]), for the document.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // only its schema is used
enum StatusFilter {
    Open,
    WaitingConfirmation,
    Escalated,
    Assigned,
    Resolved,
    Failed,
}

/// Page size when `limit` is not given, and the most a page may hold.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
/// Longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
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
    filter: Filter,
    /// What the page lists: newest first, or the matches of a search.
    order: Order,
}

/// The order of a page and where it starts.
#[derive(Debug, PartialEq)]
enum Order {
    Newest { after: Option<After> },
    Search { q: String, after: Option<AfterHit> },
}

fn parse_page_query(query: &HashMap<String, String>) -> Result<PageQuery, ApiError> {
    let limit = super::error::parse_limit(query, DEFAULT_LIMIT, MAX_LIMIT)? as i64;
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
    let agent = query.get("agent").map(|raw| parse_agent(raw)).transpose()?;
    let from = parse_time(query, "from", "invalid_from")?;
    let to = parse_time(query, "to", "invalid_to")?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(ApiError::bad_request(
            "from_not_before_to",
            "from must be before to",
        ));
    }
    // An empty cursor is the first page, as no cursor is: the document allows it.
    let cursor = query
        .get("cursor")
        .map(String::as_str)
        .filter(|cursor| !cursor.is_empty());
    let order = match query.get("q") {
        None => Order::Newest {
            after: cursor.map(decode_cursor).transpose()?,
        },
        Some(q) => Order::Search {
            q: parse_q(q)?,
            after: cursor.map(decode_search_cursor).transpose()?,
        },
    };
    Ok(PageQuery {
        limit,
        filter: Filter {
            status,
            agent,
            from,
            to,
        },
        order,
    })
}

/// `q`: 1 to 200 characters, without NUL (PostgreSQL text cannot hold it). Any other text
/// is a query: `websearch_to_tsquery` reads words, `"phrases"`, `or` and `-word`, and never
/// fails; a `q` of stop words only (`the`) matches nothing.
fn parse_q(raw: &str) -> Result<String, ApiError> {
    let chars = raw.chars().count();
    if chars == 0 || chars > MAX_QUERY_CHARS || raw.contains('\0') {
        return Err(ApiError::bad_request(
            "invalid_q",
            format!("q must be 1 to {MAX_QUERY_CHARS} characters, without NUL"),
        ));
    }
    Ok(raw.to_owned())
}

/// `agent`: a name as the agents config allows one (1 to 64 of `a-z 0-9 - _`).
fn parse_agent(raw: &str) -> Result<String, ApiError> {
    let valid = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        return Err(ApiError::bad_request(
            "invalid_agent",
            "agent must be 1 to 64 characters of a-z, 0-9, '-' and '_'",
        ));
    }
    Ok(raw.to_owned())
}

/// An optional RFC 3339 time parameter.
fn parse_time(
    query: &HashMap<String, String>,
    name: &str,
    code: &'static str,
) -> Result<Option<OffsetDateTime>, ApiError> {
    query
        .get(name)
        .map(|raw| {
            OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
                ApiError::bad_request(
                    code,
                    format!("{name} must be an RFC 3339 time, e.g. 2026-11-25T00:00:00Z"),
                )
            })
        })
        .transpose()
}

/// The cursor is opaque to clients: base64url of `<start time in ns>~<thread id>`.
fn encode_cursor(after: &After) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}~{}",
        after.started_at.unix_timestamp_nanos(),
        after.thread_id
    ))
}

fn invalid_cursor() -> ApiError {
    ApiError::bad_request("invalid_cursor", "cursor is not one this API returned")
}

fn decode_cursor(raw: &str) -> Result<After, ApiError> {
    let text = cursor_text(raw)?;
    let (nanos, thread_id) = text.split_once('~').ok_or_else(invalid_cursor)?;
    after_conversation(nanos, thread_id)
}

/// A search's cursor: base64url of `<rank as the bits of an f32>~<start time in ns>~<thread
/// id>`, the exact key of the last hit (a plain list's cursor has no rank, so neither is
/// taken for the other).
fn encode_search_cursor(after: &AfterHit) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}~{}~{}",
        after.rank.to_bits(),
        after.started_at.unix_timestamp_nanos(),
        after.thread_id
    ))
}

fn decode_search_cursor(raw: &str) -> Result<AfterHit, ApiError> {
    let text = cursor_text(raw)?;
    let mut parts = text.splitn(3, '~');
    let (Some(rank), Some(nanos), Some(thread_id)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_cursor());
    };
    let rank = rank
        .parse::<u32>()
        .map(f32::from_bits)
        .ok()
        .filter(|rank| rank.is_finite())
        .ok_or_else(invalid_cursor)?;
    let After {
        started_at,
        thread_id,
    } = after_conversation(nanos, thread_id)?;
    Ok(AfterHit {
        rank,
        started_at,
        thread_id,
    })
}

fn cursor_text(raw: &str) -> Result<String, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid_cursor())?;
    String::from_utf8(bytes).map_err(|_| invalid_cursor())
}

fn after_conversation(nanos: &str, thread_id: &str) -> Result<After, ApiError> {
    let nanos: i128 = nanos.parse().map_err(|_| invalid_cursor())?;
    Ok(After {
        started_at: OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map_err(|_| invalid_cursor())?,
        thread_id: ThreadId::parse(thread_id)
            .map_err(|_| invalid_cursor())?
            .to_string(),
    })
}

pub(crate) fn parse_thread_id(raw: &str) -> Result<ThreadId, ApiError> {
    ThreadId::parse(raw).map_err(|err| ApiError::bad_request("invalid_thread_id", err.to_string()))
}

pub(crate) fn conversation_not_found(thread_id: &ThreadId) -> ApiError {
    ApiError::NotFound {
        code: "conversation_not_found",
        message: format!("no conversation {thread_id}"),
    }
}

/// A page of conversations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationItem>,
    /// Pass it back as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A conversation in a list; in a search, with its rank and snippet.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationItem {
    #[serde(flatten)]
    pub summary: Summary,
    /// Search only: how well it matches `q` (the best `ts_rank` of its messages and
    /// replies); higher is better.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<f32>,
    /// Search only: the best-matching message or reply, cut around its matches (up to two
    /// fragments joined by ` … `), each match between U+E000 and U+E001. Those two
    /// characters mark matches only: the text's own are shown as U+FFFD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

/// Newest first, paged: `{"items":[…],"next_cursor":…}`. With `q`, a search: the
/// conversations whose customer messages or replies match, best first, each with a snippet.
#[utoipa::path(
    get,
    path = "/api/conversations",
    tag = "conversations",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]*$",
         description = "The `next_cursor` of the previous page, unchanged (with the same `q`, or none); empty: the first page. \
                        Any other value is `invalid_cursor`"),
        ("status" = inline(Option<StatusFilter>), Query,
         description = "Only conversations with this status"),
        ("q" = Option<String>, Query, min_length = 1, max_length = 200, pattern = "^[^\\u0000]*$",
         description = "Search: words of the customer's messages and the replies (English stemming; `\"a phrase\"`, `or`, `-word`). \
                        Orders the page by rank, then newest first"),
        ("agent" = Option<String>, Query, pattern = "^[a-z0-9_-]{1,64}$",
         description = "Only conversations whose latest reply is this agent's"),
        ("from" = Option<String>, Query, format = DateTime, description = "Only conversations started at or after (RFC 3339)"),
        ("to" = Option<String>, Query, format = DateTime, description = "Only conversations started before (RFC 3339); after `from`"),
        MinSeq,
    ),
    responses(
        (status = 200, description = "Newest first (by start time, then thread id); with `q`, best rank first", body = ConversationPage),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_status`, `invalid_q`, `invalid_agent`, \
                                      `invalid_from`, `invalid_to`, `from_not_before_to`, `invalid_min_seq`", body = ErrorBody),
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
    // One more than the page: whether there is a next one.
    let more = page.limit + 1;
    let (items, next_cursor) = match &page.order {
        Order::Newest { after } => {
            let rows = conversation::page(&state.pool, &page.filter, after.as_ref(), more).await?;
            let (rows, next_cursor) = cut_page(rows, page.limit, |last| {
                encode_cursor(&After {
                    started_at: last.started_at,
                    thread_id: last.thread_id.clone(),
                })
            });
            (
                rows.into_iter().map(ConversationItem::listed).collect(),
                next_cursor,
            )
        }
        Order::Search { q, after } => {
            let hits = search::page(&state.pool, q, &page.filter, after.as_ref(), more).await?;
            let (hits, next_cursor) = cut_page(hits, page.limit, |last| {
                encode_search_cursor(&AfterHit {
                    rank: last.rank,
                    started_at: last.summary.started_at,
                    thread_id: last.summary.thread_id.clone(),
                })
            });
            (
                hits.into_iter().map(ConversationItem::found).collect(),
                next_cursor,
            )
        }
    };
    Ok(Json(ConversationPage { items, next_cursor }))
}

/// The first `limit` of `rows` (read with one more), and the cursor after the last of them
/// when there was more.
fn cut_page<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor)
    } else {
        None
    };
    (rows, next_cursor)
}

impl ConversationItem {
    fn listed(summary: Summary) -> ConversationItem {
        ConversationItem {
            summary,
            rank: None,
            snippet: None,
        }
    }

    fn found(hit: search::Hit) -> ConversationItem {
        ConversationItem {
            summary: hit.summary,
            rank: Some(hit.rank),
            snippet: Some(hit.snippet),
        }
    }
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
    // JSON `null` is no note, as an empty body is: the document's optional body is nullable.
    let request: ResolveRequest = serde_json::from_slice::<Option<ResolveRequest>>(body)
        .map_err(|err| {
            ApiError::bad_request("invalid_body", format!("not a resolve request: {err}"))
        })?
        .unwrap_or_default();
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
    let (subject, publish) = publish_of(&event);
    let publish = publish.expected_stream(common::subjects::CHAT_STREAM);
    let ack = async { js.send_publish(subject, publish).await?.await };
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
                filter: Filter::default(),
                order: Order::Newest { after: None },
            }
        );
    }

    #[test]
    fn a_search_cursor_round_trips_and_is_no_list_cursor() {
        let after = AfterHit {
            rank: 0.0607927,
            started_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789)
                .unwrap(),
            thread_id: "abc".into(),
        };
        let cursor = encode_search_cursor(&after);
        assert_eq!(decode_search_cursor(&cursor).unwrap(), after);
        assert_eq!(
            code(parse_page_query(&query(&[("cursor", &cursor)]))),
            "invalid_cursor"
        );
        let list_cursor = encode_cursor(&After {
            started_at: after.started_at,
            thread_id: "abc".into(),
        });
        assert_eq!(
            code(parse_page_query(&query(&[
                ("q", "refund"),
                ("cursor", &list_cursor)
            ]))),
            "invalid_cursor"
        );
    }

    #[test]
    fn a_search_cursor_with_a_rank_that_is_not_a_number_is_rejected() {
        let cursor = URL_SAFE_NO_PAD.encode(format!("{}~1~abc", f32::NAN.to_bits()));
        assert_eq!(
            code(parse_page_query(&query(&[
                ("q", "refund"),
                ("cursor", &cursor)
            ]))),
            "invalid_cursor"
        );
    }

    #[test]
    fn q_is_a_search_with_the_filters_beside_it() {
        let page = parse_page_query(&query(&[
            ("q", "refund \"order 12\""),
            ("status", "open"),
            ("agent", "billing"),
            ("from", "2026-11-25T00:00:00Z"),
            ("to", "2026-11-26T00:00:00+01:00"),
        ]))
        .unwrap();
        assert_eq!(
            page.order,
            Order::Search {
                q: "refund \"order 12\"".into(),
                after: None
            }
        );
        assert_eq!(page.filter.status.as_deref(), Some("open"));
        assert_eq!(page.filter.agent.as_deref(), Some("billing"));
        assert!(page.filter.from.unwrap() < page.filter.to.unwrap());
    }

    #[test]
    fn q_empty_over_200_characters_or_with_nul_is_rejected() {
        for bad in ["".to_owned(), "é".repeat(201), "refund\0".to_owned()] {
            assert_eq!(
                code(parse_page_query(&query(&[("q", &bad)]))),
                "invalid_q",
                "{bad:?}"
            );
        }
        assert!(parse_page_query(&query(&[("q", &"é".repeat(200))])).is_ok());
        // Only stop words or punctuation: a valid query that matches nothing.
        assert!(parse_page_query(&query(&[("q", " the & ! ")])).is_ok());
    }

    #[test]
    fn an_agent_that_no_agents_config_could_name_is_rejected() {
        for bad in ["", "Billing", "a b", "billing;", &"a".repeat(65)] {
            assert_eq!(
                code(parse_page_query(&query(&[("agent", bad)]))),
                "invalid_agent",
                "{bad:?}"
            );
        }
        assert!(parse_page_query(&query(&[("agent", "order-desk_2")])).is_ok());
    }

    #[test]
    fn from_and_to_are_rfc_3339_times_from_before_to() {
        assert_eq!(
            code(parse_page_query(&query(&[("from", "yesterday")]))),
            "invalid_from"
        );
        assert_eq!(
            code(parse_page_query(&query(&[("to", "2026-11-25")]))),
            "invalid_to"
        );
        assert_eq!(
            code(parse_page_query(&query(&[
                ("from", "2026-11-25T00:00:00Z"),
                ("to", "2026-11-25T00:00:00Z")
            ]))),
            "from_not_before_to"
        );
        assert!(parse_page_query(&query(&[("from", "2026-11-25T00:00:00Z")])).is_ok());
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
