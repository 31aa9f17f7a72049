//! The one error type of the REST API. Internal causes are logged with their chain and
//! answered with a plain 500; the client never sees a stack trace or an SQL message.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable name of the error (`invalid_limit`, `conversation_not_found`, …).
    #[schema(example = "conversation_not_found")]
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// With `rate_limited`: how long to wait before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// An error answer: an [`ErrorBody`] with a fitting status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is wrong; `code` names which and how.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{0}")]
    MethodNotAllowed(&'static str),
    /// The request body is over a size cap (413); it was not read further.
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    /// The request contradicts the current state (e.g. a count that changed meanwhile).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A dependency (NATS) did not answer; the cause is logged, the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A feature this instance was not set up for (503 with its own code); the message says
    /// what it needs.
    #[error("{message}")]
    Disabled { code: &'static str, message: String },
    /// The read models did not reach `min_seq` within `PROJECTION_WAIT`.
    #[error("the projection is at stream sequence {checkpoint}, not yet at {min_seq}; try again")]
    ProjectionBehind { min_seq: u64, checkpoint: u64 },
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// A sign-in with an unknown email or a wrong password (the same answer for both).
    #[error("the email or the password is wrong")]
    InvalidCredentials,
    /// Signed in, but the role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Too many attempts; try again after the delay.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_ms: u64,
    },
    #[error("{0}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> ApiError {
        ApiError::Internal(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, *code, message.clone())
            }
            ApiError::NotFound { code, message } => (StatusCode::NOT_FOUND, *code, message.clone()),
            ApiError::MethodNotAllowed(message) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                (*message).to_owned(),
            ),
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, *code, message.clone()),
            ApiError::TooLarge { code, message } => {
                (StatusCode::PAYLOAD_TOO_LARGE, *code, message.clone())
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", self.to_string()),
            ApiError::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                self.to_string(),
            ),
            ApiError::Forbidden(message) => (StatusCode::FORBIDDEN, "forbidden", message.clone()),
            ApiError::RateLimited { message, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                message.clone(),
            ),
            ApiError::Disabled { code, message } => {
                (StatusCode::SERVICE_UNAVAILABLE, *code, message.clone())
            }
            ApiError::ProjectionBehind { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "projection_behind",
                self.to_string(),
            ),
            ApiError::Unavailable(cause) => {
                tracing::warn!(cause = %common::text::log_safe(cause), "dependency unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the event log is unavailable; try again".to_owned(),
                )
            }
            ApiError::Internal(err) => {
                // With its chain, but not what it quotes: a failed write may quote its text.
                tracing::error!(error = %common::text::log_safe(&format!("{err:?}")), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                )
            }
        };
        let retry_after_ms = match &self {
            ApiError::RateLimited { retry_after_ms, .. } => Some(*retry_after_ms),
            _ => None,
        };
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
                retry_after_ms,
            },
        });
        let mut response = (status, body).into_response();
        match self {
            ApiError::Unauthorized => {
                response
                    .headers_mut()
                    .insert("www-authenticate", "Bearer".parse().expect("static header"));
            }
            ApiError::RateLimited { retry_after_ms, .. } => {
                let seconds = retry_after_ms.div_ceil(1000).max(1);
                response.headers_mut().insert(
                    "retry-after",
                    seconds
                        .to_string()
                        .parse()
                        .expect("a number is a header value"),
                );
            }
            // The projection usually catches up within a second.
            ApiError::ProjectionBehind { .. } => {
                response
                    .headers_mut()
                    .insert("retry-after", "1".parse().expect("static header"));
            }
            _ => {}
        }
        response
    }
}

/// Answer for any path under `/api` that does not exist.
pub async fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "not_found",
        message: "no such endpoint".into(),
    }
}

/// Answer for a known path under `/api` asked with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("this endpoint does not take that method")
}

/// The `limit` query parameter of a paged list: `default` when absent, else a whole number
/// from 1 to `max` (`400 invalid_limit` otherwise).
pub fn parse_limit(
    query: &std::collections::HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be a whole number from 1 to {max}"),
                )
            }),
    }
}

/// A request body of at most `cap` bytes: 413 `code` ("the {what} is … bytes; the limit is
/// …") before a byte is read when `Content-Length` says more, or as soon as reading passes
/// the cap (a body without a length is read no further).
pub async fn capped_body(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    cap: usize,
    code: &'static str,
    what: &str,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = |size: String| ApiError::TooLarge {
        code,
        message: format!("the {what} is {size}; the limit is {cap} bytes"),
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&length| length > cap as u64) {
        return Err(too_large(format!("{length} bytes")));
    }
    axum::body::to_bytes(body, cap)
        .await
        .map_err(|_| too_large(format!("over {cap} bytes")))
}

/// A required JSON request body: 400 `invalid_body` when it is empty or not the object the
/// endpoint takes.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "a JSON body is required",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request("invalid_body", format!("invalid body: {err}")))
}

/// Helpers of the handlers' unit tests.
#[cfg(test)]
pub mod testing {
    use std::collections::HashMap;

    use super::ApiError;

    /// A query string as the handlers receive it.
    pub fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The named code of a 400, failing the test on anything else.
    pub fn code<T: std::fmt::Debug>(result: Result<T, ApiError>) -> &'static str {
        match result {
            Err(ApiError::BadRequest { code, .. }) => code,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }
}
