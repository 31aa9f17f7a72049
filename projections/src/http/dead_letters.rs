//! `GET /api/dead-letters`, `GET /api/dead-letters/{id}`,
//! `POST /api/dead-letters/{id}/redrive`, `DELETE /api/dead-letters/{id}` and the bulk
//! `POST /api/dead-letters/redrive`. The dead letters live in JetStream, not in Postgres:
//! each handler parses its input and calls one function of [`common::dead_letters`].

use std::collections::HashMap;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post},
};
use common::dead_letters::{self, DeadLetter, DeadLetterError, Filter};
use common::events::{ErrorCategory, ThreadId};
use serde::Deserialize;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{ApiState, error::ApiError};

/// Page size when `limit` is not given, and the most a page may hold.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/dead-letters", get(list))
        .route("/dead-letters/redrive", post(redrive_matching))
        .route("/dead-letters/{id}", get(show).delete(discard))
        .route("/dead-letters/{id}/redrive", post(redrive))
}

impl From<DeadLetterError> for ApiError {
    fn from(err: DeadLetterError) -> ApiError {
        match err {
            DeadLetterError::NotFound(id) => ApiError::NotFound {
                code: "not_found",
                message: format!("no dead letter {id}"),
            },
            DeadLetterError::NotRedrivable(reason) => ApiError::Conflict {
                code: "not_redrivable",
                message: format!("cannot be redriven: {reason}; discard it instead"),
            },
            DeadLetterError::Unavailable(cause) => ApiError::Unavailable(cause),
        }
    }
}

fn jetstream(state: &ApiState) -> async_nats::jetstream::Context {
    async_nats::jetstream::new(state.client.clone())
}

/// A list request, parsed from the query string.
#[derive(Debug, PartialEq)]
struct ListQuery {
    filter: Filter,
    after: Option<u64>,
    limit: usize,
}

fn parse_list_query(query: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
    let limit = super::error::parse_limit(query, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = query
        .get("cursor")
        .map(|raw| {
            raw.parse::<u64>().map_err(|_| {
                ApiError::bad_request("invalid_cursor", "cursor is not one this API returned")
            })
        })
        .transpose()?;
    let filter = parse_filter(
        query.get("category").map(String::as_str),
        query.get("since").map(String::as_str),
        query.get("until").map(String::as_str),
        query.get("thread_id").map(String::as_str),
    )?;
    Ok(ListQuery {
        filter,
        after,
        limit,
    })
}

fn parse_filter(
    category: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
    thread_id: Option<&str>,
) -> Result<Filter, ApiError> {
    let category = category
        .map(|raw| {
            ErrorCategory::parse(raw).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_category",
                    "category must be one of retryable, not_retryable, fatal",
                )
            })
        })
        .transpose()?;
    let time = |raw: Option<&str>, code: &'static str, name: &str| {
        raw.map(|raw| {
            OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
                ApiError::bad_request(
                    code,
                    format!("{name} must be an RFC 3339 time like 2026-01-31T12:00:00Z"),
                )
            })
        })
        .transpose()
    };
    let thread_id = thread_id
        .map(|raw| {
            ThreadId::parse(raw)
                .map_err(|err| ApiError::bad_request("invalid_thread_id", err.to_string()))
        })
        .transpose()?;
    Ok(Filter {
        category,
        since: time(since, "invalid_since", "since")?,
        until: time(until, "invalid_until", "until")?,
        thread_id,
    })
}

fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().ok().filter(|&id| id > 0).ok_or_else(|| {
        ApiError::bad_request("invalid_id", "a dead letter id is a positive whole number")
    })
}

/// Oldest first, paged: `{"items":[…],"next_cursor":…}`.
async fn list(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let query = parse_list_query(&query)?;
    let page =
        dead_letters::list(&jetstream(&state), &query.filter, query.after, query.limit).await?;
    Ok(Json(json!({
        "items": page.items,
        "next_cursor": page.next_cursor.map(|id| id.to_string()),
    })))
}

async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetter>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(dead_letters::get(&jetstream(&state), id).await?))
}

async fn discard(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    dead_letters::discard(&jetstream(&state), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"id":…,"seq":…}`: `seq` is the `message.redriven` event's sequence in the chat stream.
async fn redrive(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let seq = dead_letters::redrive(&jetstream(&state), id).await?;
    Ok(Json(json!({ "id": id, "seq": seq })))
}

/// Body of the bulk redrive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveMatching {
    category: Option<String>,
    since: Option<String>,
    until: Option<String>,
    thread_id: Option<String>,
    #[serde(default)]
    dry_run: bool,
    /// The count a dry run answered: the redrive happens only if it still holds.
    expected_count: Option<usize>,
}

/// Redrives every dead letter matching the filter: a dry run answers how many would be;
/// the real run needs that count back as `expected_count`, so an operator never acts on
/// more than they saw.
async fn redrive_matching(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: RedriveMatching = serde_json::from_slice(&body).map_err(|err| {
        ApiError::bad_request("invalid_body", format!("not a bulk redrive request: {err}"))
    })?;
    let filter = parse_filter(
        request.category.as_deref(),
        request.since.as_deref(),
        request.until.as_deref(),
        request.thread_id.as_deref(),
    )?;
    let js = jetstream(&state);
    let matching = dead_letters::matching(&js, &filter).await?;
    if request.dry_run {
        return Ok(Json(json!({ "would_redrive": matching.len() })));
    }
    let Some(expected) = request.expected_count else {
        return Err(ApiError::bad_request(
            "confirmation_required",
            "set expected_count to the count a dry run answered",
        ));
    };
    if expected != matching.len() {
        return Err(ApiError::Conflict {
            code: "count_changed",
            message: format!(
                "{} dead letters match now, not {expected}; check again with a dry run",
                matching.len()
            ),
        });
    }
    let mut redriven = 0;
    let mut failed = Vec::new();
    for letter in matching {
        match dead_letters::redrive(&js, letter.id).await {
            Ok(_) => redriven += 1,
            Err(err) => {
                let code = match &err {
                    DeadLetterError::NotFound(_) => "not_found",
                    DeadLetterError::NotRedrivable(_) => "not_redrivable",
                    DeadLetterError::Unavailable(_) => "unavailable",
                };
                failed.push(json!({ "id": letter.id, "code": code, "message": err.to_string() }));
            }
        }
    }
    Ok(Json(json!({ "redriven": redriven, "failed": failed })))
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

    fn code<T: std::fmt::Debug>(result: Result<T, ApiError>) -> &'static str {
        match result {
            Err(ApiError::BadRequest { code, .. }) => code,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        assert_eq!(
            parse_list_query(&query(&[])).unwrap(),
            ListQuery {
                filter: Filter::default(),
                after: None,
                limit: 50
            }
        );
    }

    #[test]
    fn every_filter_is_read_from_the_query() {
        let parsed = parse_list_query(&query(&[
            ("category", "not_retryable"),
            ("since", "2026-01-01T00:00:00Z"),
            ("until", "2026-01-02T00:00:00+01:00"),
            ("thread_id", "t-1"),
            ("cursor", "12"),
            ("limit", "100"),
        ]))
        .unwrap();
        assert_eq!(parsed.filter.category, Some(ErrorCategory::NotRetryable));
        assert_eq!(parsed.filter.thread_id.unwrap().as_str(), "t-1");
        assert!(parsed.filter.since.unwrap() < parsed.filter.until.unwrap());
        assert_eq!((parsed.after, parsed.limit), (Some(12), 100));
    }

    #[test]
    fn each_bad_parameter_has_its_own_code() {
        for (name, bad, expected) in [
            ("limit", "0", "invalid_limit"),
            ("limit", "101", "invalid_limit"),
            ("cursor", "abc", "invalid_cursor"),
            ("category", "sad", "invalid_category"),
            ("since", "yesterday", "invalid_since"),
            ("until", "2026-01-01", "invalid_until"),
            ("thread_id", "a.b", "invalid_thread_id"),
        ] {
            assert_eq!(
                code(parse_list_query(&query(&[(name, bad)]))),
                expected,
                "{name}={bad}"
            );
        }
    }

    #[test]
    fn an_id_is_a_positive_whole_number() {
        assert_eq!(parse_id("42").unwrap(), 42);
        for bad in ["0", "-1", "x", ""] {
            assert_eq!(code(parse_id(bad)), "invalid_id");
        }
    }
}
