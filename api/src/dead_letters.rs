//! `GET /api/dead-letters`, `GET /api/dead-letters/{id}`,
//! `POST /api/dead-letters/{id}/redrive`, `DELETE /api/dead-letters/{id}` and the bulk
//! `POST /api/dead-letters/redrive`. The dead letters live in JetStream, not in Postgres:
//! each handler parses its input and calls one function of [`common::dead_letters`].

use std::collections::HashMap;

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use common::dead_letters::{self, DeadLetter, DeadLetterError, Filter};
use common::events::{ErrorCategory, ThreadId};
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::{ApiState, Routes, error::ApiError};

/// Page size when `limit` is not given, and the most a page may hold.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

pub fn routes() -> Routes {
    Routes::new()
        .get("/dead-letters", list)
        .post("/dead-letters/redrive", redrive_matching)
        .get("/dead-letters/{id}", show)
        .delete("/dead-letters/{id}", discard)
        .post("/dead-letters/{id}/redrive", redrive)
}

/// A user message the workers gave up on: the JSON of
/// [`common::dead_letters::DeadLetter`], described here because that type lives in
/// `common` (a test checks the two have the same fields).
#[derive(Debug, ToSchema)]
#[schema(as = DeadLetter)]
pub struct DeadLetterSchema {
    /// Its id: its sequence in the `DEAD_LETTERS` stream.
    pub id: u64,
    /// The conversation, when the failed message's subject named one.
    pub thread_id: Option<String>,
    /// Where the failed message was stored in `CHAT`.
    pub source_subject: String,
    pub source_seq: u64,
    /// `retryable` (retries exhausted), `not_retryable` or `fatal` (did not parse).
    #[schema(example = "retryable")]
    pub category: String,
    /// The last error, one line.
    pub error: String,
    /// Deliveries to a worker.
    pub attempts: u32,
    /// When it was dead-lettered.
    pub failed_at: OffsetDateTime,
    /// The failed message's payload as JSON, or a JSON string of its text when it is not JSON.
    pub original: serde_json::Value,
    /// The failed message's headers (without the dead-letter and `Nats-*` ones).
    pub headers: BTreeMap<String, String>,
}

/// A page of dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterPage {
    #[schema(value_type = Vec<DeadLetterSchema>)]
    pub items: Vec<DeadLetter>,
    /// Pass it back as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The answer to a redrive.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Redriven {
    /// The dead letter (now deleted).
    pub id: u64,
    /// Sequence of the `message.redriven` event in the chat stream.
    pub seq: u64,
}

/// The answer to a bulk redrive: a count for a dry run, else what was done.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BulkRedriveAnswer {
    DryRun {
        /// How many dead letters match: send it back as `expected_count`.
        would_redrive: usize,
    },
    Done {
        redriven: usize,
        /// The ones that could not be redriven, with why.
        failed: Vec<BulkFailure>,
    },
}

/// One dead letter a bulk redrive could not send back.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkFailure {
    pub id: u64,
    /// `not_found`, `not_redrivable` or `unavailable`.
    pub code: String,
    pub message: String,
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
    // An empty cursor is the first page, as no cursor is: the document allows it.
    let after = query
        .get("cursor")
        .filter(|raw| !raw.is_empty())
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

const ID: &str = "The dead letter's id (a positive whole number)";

/// Oldest first, paged: `{"items":[…],"next_cursor":…}`.
#[utoipa::path(
    get,
    path = "/api/dead-letters",
    tag = "dead-letters",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 50)"),
        ("cursor" = Option<String>, Query, pattern = "^[0-9]{0,19}$",
         description = "The `next_cursor` of the previous page, unchanged; empty: the first page"),
        ("category" = inline(Option<CategoryFilter>), Query, description = "Only dead letters of this category"),
        ("since" = Option<String>, Query, format = DateTime, description = "Failed at or after (RFC 3339)"),
        ("until" = Option<String>, Query, format = DateTime, description = "Failed before (RFC 3339)"),
        ("thread_id" = Option<String>, Query, description = "One conversation's", pattern = "^[A-Za-z0-9_-]{1,64}$"),
    ),
    responses(
        (status = 200, description = "Oldest first (by id)", body = DeadLetterPage),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_category`, `invalid_since`, \
                                      `invalid_until`, `invalid_thread_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`: NATS did not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let query = parse_list_query(&query)?;
    let page =
        dead_letters::list(&jetstream(&state), &query.filter, query.after, query.limit).await?;
    Ok(Json(DeadLetterPage {
        items: page.items,
        next_cursor: page.next_cursor.map(|id| id.to_string()),
    }))
}

/// One dead letter.
#[utoipa::path(
    get,
    path = "/api/dead-letters/{id}",
    tag = "dead-letters",
    params(("id" = u64, Path, description = ID, minimum = 1)),
    responses(
        (status = 200, description = "The dead letter", body = DeadLetterSchema),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<DeadLetter>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(dead_letters::get(&jetstream(&state), id).await?))
}

/// Deletes the dead letter for good.
#[utoipa::path(
    delete,
    path = "/api/dead-letters/{id}",
    tag = "dead-letters",
    params(("id" = u64, Path, description = ID, minimum = 1)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn discard(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    dead_letters::discard(&jetstream(&state), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends the dead letter back through the workers as a `message.redriven` event, then
/// deletes it. `{"id":…,"seq":…}`: `seq` is that event's sequence in the chat stream.
#[utoipa::path(
    post,
    path = "/api/dead-letters/{id}/redrive",
    tag = "dead-letters",
    params(("id" = u64, Path, description = ID, minimum = 1)),
    responses(
        (status = 200, description = "Redriven", body = Redriven),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`not_redrivable`: the original is not a user message; discard it instead", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn redrive(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Redriven>, ApiError> {
    let id = parse_id(&id)?;
    let seq = dead_letters::redrive(&jetstream(&state), id).await?;
    Ok(Json(Redriven { id, seq }))
}

/// The values of the `category` filter, for the document.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // only its schema is used
enum CategoryFilter {
    Retryable,
    NotRetryable,
    Fatal,
}

/// Body of the bulk redrive: a filter (every field set must match), and the confirmation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveMatching {
    /// `retryable`, `not_retryable` or `fatal`.
    #[schema(value_type = Option<CategoryFilter>, inline)]
    pub category: Option<String>,
    /// Failed at or after (RFC 3339).
    #[schema(format = DateTime)]
    pub since: Option<String>,
    /// Failed before (RFC 3339).
    #[schema(format = DateTime)]
    pub until: Option<String>,
    /// One conversation's.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub thread_id: Option<String>,
    /// Only count the matching dead letters.
    #[serde(default)]
    pub dry_run: bool,
    /// The count a dry run answered: the redrive happens only if it still holds.
    pub expected_count: Option<usize>,
}

/// Redrives every dead letter matching the filter: a dry run answers how many would be;
/// the real run needs that count back as `expected_count`, so an operator never acts on
/// more than they saw.
#[utoipa::path(
    post,
    path = "/api/dead-letters/redrive",
    tag = "dead-letters",
    request_body(content = RedriveMatching, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"would_redrive\":n}` for a dry run, else `{\"redriven\":n,\"failed\":[…]}`", body = BulkRedriveAnswer),
        (status = 400, description = "`invalid_body`, `confirmation_required`, `invalid_category`, `invalid_since`, \
                                      `invalid_until`, `invalid_thread_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`count_changed`: `expected_count` is not the number matching now", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn redrive_matching(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<BulkRedriveAnswer>, ApiError> {
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
        return Ok(Json(BulkRedriveAnswer::DryRun {
            would_redrive: matching.len(),
        }));
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
                failed.push(BulkFailure {
                    id: letter.id,
                    code: code.to_owned(),
                    message: err.to_string(),
                });
            }
        }
    }
    Ok(Json(BulkRedriveAnswer::Done { redriven, failed }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::testing::*;

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
