//! `GET /api/conversations`, `GET /api/conversations/{thread_id}` and
//! `GET /api/conversations/{thread_id}/replay`.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    routing::get,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::events::ThreadId;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{ApiState, error::ApiError};
use crate::read_models::{
    conversation::{self, After, Summary},
    replay_step,
};

/// Statuses a conversation can have (the `status` filter accepts these).
pub const STATUSES: &[&str] = &[
    "open",
    "waiting_confirmation",
    "escalated",
    "resolved",
    "failed",
];
/// Page size when `limit` is not given, and the most a page may hold.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/conversations", get(list))
        .route("/conversations/{thread_id}", get(show))
        .route("/conversations/{thread_id}/replay", get(replay))
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

/// Newest first, paged: `{"items":[…],"next_cursor":…}`.
async fn list(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let page = parse_page_query(&query)?;
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
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

async fn show(
    State(state): State<ApiState>,
    Path(thread_id): Path<String>,
) -> Result<Json<Summary>, ApiError> {
    let thread_id = parse_thread_id(&thread_id)?;
    conversation::find(&state.pool, thread_id.as_str())
        .await?
        .map(Json)
        .ok_or_else(|| conversation_not_found(&thread_id))
}

/// Every step of the conversation in stream order: `seq`, `occurred_at`, `kind`,
/// `turn_id`, `event_id` and the kind's own fields beside them.
async fn replay(
    State(state): State<ApiState>,
    Path(thread_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let thread_id = parse_thread_id(&thread_id)?;
    let steps = replay_step::for_thread(&state.pool, thread_id.as_str()).await?;
    if steps.is_empty() {
        return Err(conversation_not_found(&thread_id));
    }
    let steps: Vec<Value> = steps
        .into_iter()
        .map(|step| {
            let mut object = match step.fields {
                Value::Object(fields) => fields,
                _ => Default::default(),
            };
            object.insert("seq".into(), step.seq.into());
            object.insert("event_id".into(), step.event_id.to_string().into());
            object.insert("turn_id".into(), step.turn_id.to_string().into());
            object.insert("kind".into(), step.kind.into());
            let at = step
                .occurred_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            object.insert("occurred_at".into(), at.into());
            Value::Object(object)
        })
        .collect();
    Ok(Json(json!({ "thread_id": thread_id, "steps": steps })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn code(result: Result<PageQuery, ApiError>) -> &'static str {
        match result {
            Err(ApiError::BadRequest { code, .. }) => code,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

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
    fn an_unknown_status_is_rejected() {
        assert_eq!(
            code(parse_page_query(&query(&[("status", "sleeping")]))),
            "invalid_status"
        );
        assert!(parse_page_query(&query(&[("status", "resolved")])).is_ok());
    }
}
