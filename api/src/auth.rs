//! Who is asking: every request under `/api` but health, the OpenAPI document and the
//! sign-in is authenticated by [`authenticate`] (a session token as
//! `Authorization: Bearer …` or the browser's `smart_support_session` cookie, or the
//! static `API_TOKEN`, the bootstrap admin for scripts and CI) into a [`Caller`], and
//! each route group requires a role ([`require_admin`]). The routes: `POST /api/auth/login`
//! (throttled per email and per client address), `POST /api/auth/logout`, `GET /api/me`,
//! and the admin's `GET/POST /api/operators`, `PATCH /api/operators/{id}`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{ConnectInfo, Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use common::events::OperatorRef;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ErrorBody, json_body};
use crate::operators::{self, NewOperatorError, Operator, Role};
use crate::{ApiState, Routes, error::ApiError};

/// The browser's session cookie (`HttpOnly`, `SameSite=Strict`: page scripts never see it).
pub const SESSION_COOKIE: &str = "smart_support_session";
/// Display name of the static API token in events it causes.
pub const BOOTSTRAP_NAME: &str = "Support team";

/// Who is asking.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The operator's id (the nil id for the static API token).
    pub id: Uuid,
    pub name: String,
    /// Absent for the static API token.
    pub email: Option<String>,
    pub role: Role,
    /// The session token the request came with (to end it at sign-out).
    pub session: Option<String>,
}

impl Caller {
    fn bootstrap() -> Caller {
        Caller {
            id: Uuid::nil(),
            name: BOOTSTRAP_NAME.into(),
            email: None,
            role: Role::Admin,
            session: None,
        }
    }

    fn operator(operator: Operator, session: String) -> Caller {
        Caller {
            id: operator.id,
            name: operator.name,
            email: Some(operator.email),
            role: operator.role,
            session: Some(session),
        }
    }

    /// How events name this caller.
    pub fn as_ref(&self) -> OperatorRef {
        OperatorRef {
            operator_id: self.id,
            name: self.name.clone(),
        }
    }
}

/// The credentials of a request: the bearer token, else the session cookie.
fn credentials(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        // A header that is not exactly `Bearer <token>` counts as no credentials at all
        // (it must not fall back to the cookie).
        return Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or(""),
        );
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Resolves the caller and puts it in the request's extensions; 401 `unauthorized` when
/// the credentials are missing or no longer valid (a disabled operator's, a signed-out or
/// expired session's). Without `API_TOKEN` (local use), a request without credentials is
/// the bootstrap admin.
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = match credentials(request.headers()) {
        Some(given) => {
            if state.api_token.as_deref().is_some_and(|tokens| {
                // Every token is compared, so the time taken does not tell which one matched.
                tokens.all().fold(false, |matched, expected| {
                    constant_time_eq(given.as_bytes(), expected.as_bytes()) | matched
                })
            }) {
                Caller::bootstrap()
            } else if given.is_empty() || given.len() > 128 {
                return Err(ApiError::Unauthorized);
            } else {
                match operators::session_operator(&state.pool, given).await? {
                    Some(operator) => Caller::operator(operator, given.to_owned()),
                    None => return Err(ApiError::Unauthorized),
                }
            }
        }
        None if state.api_token.is_none() => Caller::bootstrap(),
        None => return Err(ApiError::Unauthorized),
    };
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// Refuses every role but `admin` with 403 `forbidden` (after [`authenticate`]).
pub async fn require_admin(request: Request, next: Next) -> Result<Response, ApiError> {
    match request.extensions().get::<Caller>() {
        Some(caller) if caller.role == Role::Admin => Ok(next.run(request).await),
        Some(_) => Err(ApiError::Forbidden("this needs the admin role".to_owned())),
        None => Err(ApiError::Unauthorized),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Failed sign-ins allowed per email within [`THROTTLE_WINDOW`].
pub const MAX_FAILURES_PER_EMAIL: usize = 5;
/// Failed sign-ins allowed per client address within [`THROTTLE_WINDOW`] (generous:
/// behind a proxy every browser has the proxy's address).
pub const MAX_FAILURES_PER_ADDRESS: usize = 30;
/// How long a failed sign-in counts.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// When each key's failed sign-ins happened, oldest first.
type Failures<K> = HashMap<K, VecDeque<Instant>>;

/// Failed sign-ins of the last [`THROTTLE_WINDOW`], per email and per client address, in
/// this API process.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<(Failures<String>, Failures<IpAddr>)>,
}

impl Throttle {
    /// How long to wait before this email may try again from this address (`None`: now).
    fn wait(&self, email: &str, addr: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (by_email, by_addr) = &mut *failures;
        let wait = |times: Option<&mut VecDeque<Instant>>, max: usize| {
            let times = times?;
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= THROTTLE_WINDOW)
            {
                times.pop_front();
            }
            (times.len() >= max).then(|| {
                THROTTLE_WINDOW.saturating_sub(now.duration_since(times[times.len() - max]))
            })
        };
        let by_email = wait(by_email.get_mut(email), MAX_FAILURES_PER_EMAIL);
        let by_addr = addr.and_then(|a| wait(by_addr.get_mut(&a), MAX_FAILURES_PER_ADDRESS));
        by_email.max(by_addr)
    }

    fn failed(&self, email: &str, addr: Option<IpAddr>, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (by_email, by_addr) = &mut *failures;
        by_email.entry(email.to_owned()).or_default().push_back(now);
        if let Some(addr) = addr {
            by_addr.entry(addr).or_default().push_back(now);
        }
    }

    fn succeeded(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.0.remove(email);
    }
}

pub fn public_routes() -> Routes {
    Routes::new().post("/auth/login", login)
}

pub fn agent_routes() -> Routes {
    Routes::new().post("/auth/logout", logout).get("/me", me)
}

pub fn admin_routes() -> Routes {
    Routes::new()
        .get("/operators", list_operators)
        .post("/operators", add_operator)
        .patch("/operators/{id}", patch_operator)
}

/// A sign-in.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    #[schema(max_length = 254)]
    pub email: String,
    #[schema(max_length = 256)]
    pub password: String,
}

/// A session: the token for scripts (`Authorization: Bearer …`); browsers get it as a
/// cookie as well.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginAnswer {
    pub token: String,
    pub operator: Operator,
}

/// Whether the request came over https (directly or through a proxy that says so).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn session_cookie(token: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        max_age.as_secs()
    )
    .parse()
    .expect("a token is a header value")
}

/// Signs an operator in.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session is also set as an `HttpOnly`, `SameSite=Strict` cookie", body = LoginAnswer),
        (status = 400, description = "`invalid_body`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: the same for an unknown email, a wrong password and a disabled operator", body = ErrorBody),
        (status = 429, description = "`rate_limited` with `retry_after_ms`: too many failed sign-ins for this email or from this address", body = ErrorBody),
    ),
)]
pub async fn login(State(state): State<ApiState>, request: Request) -> Result<Response, ApiError> {
    // The client's address, when the server was started with it (`common::startup` does).
    let addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::bad_request("invalid_body", "the body is too large"))?;
    let request: LoginRequest = json_body(&body)?;
    let email = request.email.trim().to_lowercase();
    if let Some(wait) = state.throttle.wait(&email, addr, Instant::now()) {
        let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        return Err(ApiError::RateLimited {
            message: format!(
                "too many failed sign-ins; try again in {} s",
                retry_after_ms.div_ceil(1000)
            ),
            retry_after_ms,
        });
    }
    let password = request
        .password
        .chars()
        .take(operators::MAX_PASSWORD_CHARS + 1)
        .collect::<String>();
    let Some(operator) = operators::check_sign_in(&state.pool, &email, &password).await? else {
        state.throttle.failed(&email, addr, Instant::now());
        tracing::info!("a sign-in failed");
        return Err(ApiError::InvalidCredentials);
    };
    state.throttle.succeeded(&email);
    let token = operators::start_session(&state.pool, operator.id, state.session_lifetime).await?;
    tracing::info!(operator_id = %operator.id, "operator signed in");
    let mut response = Json(LoginAnswer {
        token: token.clone(),
        operator,
    })
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&token, state.session_lifetime, over_https(&headers)),
    );
    Ok(response)
}

/// Ends the session the request came with (its token stops working at once).
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn logout(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(session) = &caller.session {
        operators::end_session(&state.pool, session).await?;
        tracing::info!(operator_id = %caller.id, "operator signed out");
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", Duration::ZERO, over_https(&headers)),
    );
    Ok(response)
}

/// The signed-in operator.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The nil id for the static API token.
    pub id: Uuid,
    pub name: String,
    /// Absent for the static API token.
    pub email: Option<String>,
    pub role: Role,
}

/// Who the credentials sign in.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "auth",
    responses(
        (status = 200, description = "The signed-in operator", body = Me),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn me(Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(Me {
        id: caller.id,
        name: caller.name,
        email: caller.email,
        role: caller.role,
    })
}

/// Every operator.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorList {
    pub items: Vec<Operator>,
}

/// Lists the operators (admin).
#[utoipa::path(
    get,
    path = "/api/operators",
    tag = "auth",
    responses(
        (status = 200, description = "Every operator, by email", body = OperatorList),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list_operators(State(state): State<ApiState>) -> Result<Json<OperatorList>, ApiError> {
    Ok(Json(OperatorList {
        items: operators::list(&state.pool).await?,
    }))
}

/// A new operator.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewOperator {
    /// `name@domain`: a non-empty name without `@`, a dot in the domain; no white space,
    /// control character or U+FEFF; at most 254 characters. Stored lower-cased.
    #[schema(
        max_length = 254,
        pattern = "^[^@\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]+@[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]*\\.[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]*$"
    )]
    pub email: String,
    /// Not only white space (Unicode `White_Space`); no NUL. Stored trimmed.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\u0000\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub name: String,
    pub role: Role,
    #[schema(min_length = 12, max_length = 256)]
    pub password: String,
}

/// Adds an operator (admin).
#[utoipa::path(
    post,
    path = "/api/operators",
    tag = "auth",
    request_body = NewOperator,
    responses(
        (status = 201, description = "Added", body = Operator),
        (status = 400, description = "`invalid_body`, `invalid_email`, `invalid_name`, `invalid_password`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
        (status = 409, description = "`email_taken`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn add_operator(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Operator>), ApiError> {
    let request: NewOperator = json_body(&body)?;
    match operators::add(
        &state.pool,
        &request.email,
        &request.name,
        request.role,
        &request.password,
    )
    .await
    {
        Ok(operator) => Ok((StatusCode::CREATED, Json(operator))),
        Err(err) => Err(match err.downcast::<NewOperatorError>() {
            Ok(NewOperatorError::EmailTaken) => ApiError::Conflict {
                code: "email_taken",
                message: NewOperatorError::EmailTaken.to_string(),
            },
            Ok(invalid) => ApiError::bad_request(
                match invalid {
                    NewOperatorError::InvalidEmail => "invalid_email",
                    NewOperatorError::InvalidName => "invalid_name",
                    _ => "invalid_password",
                },
                invalid.to_string(),
            ),
            Err(other) => ApiError::Internal(other),
        }),
    }
}

/// The schema of a boolean that may only be `true`.
fn only_true() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Boolean)
        .enum_values(Some([true]))
        .build()
}

/// A change to an operator: only disabling, for now.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct OperatorPatch {
    /// `true` disables the operator: their sessions end at once. Only `true` is taken
    /// (`cannot_enable`).
    #[schema(schema_with = only_true)]
    pub disabled: bool,
}

/// Disables an operator (admin); their tokens stop working at once.
#[utoipa::path(
    patch,
    path = "/api/operators/{id}",
    tag = "auth",
    params(("id" = Uuid, Path, description = "The operator's id")),
    request_body = OperatorPatch,
    responses(
        (status = 200, description = "The operator, disabled", body = Operator),
        (status = 400, description = "`invalid_body`, `invalid_operator_id`, `cannot_enable` (`disabled` must be true)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
        (status = 404, description = "`operator_not_found`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn patch_operator(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Operator>, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("invalid_operator_id", "id must be a UUID"))?;
    let request: OperatorPatch = json_body(&body)?;
    if !request.disabled {
        return Err(ApiError::bad_request(
            "cannot_enable",
            "only `{\"disabled\":true}` is supported",
        ));
    }
    let operator =
        operators::disable(&state.pool, id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                code: "operator_not_found",
                message: format!("no operator {id}"),
            })?;
    tracing::info!(operator_id = %id, "operator disabled");
    Ok(Json(operator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_wins_over_the_cookie_and_a_malformed_header_is_no_fallback() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=b; smart_support_session=from-cookie".parse().unwrap(),
        );
        assert_eq!(credentials(&headers), Some("from-cookie"));
        headers.insert(header::AUTHORIZATION, "Bearer from-header".parse().unwrap());
        assert_eq!(credentials(&headers), Some("from-header"));
        headers.insert(header::AUTHORIZATION, "bearer lower-case".parse().unwrap());
        assert_eq!(credentials(&headers), Some(""));
    }

    #[test]
    fn the_sixth_failure_of_an_email_waits_until_the_first_leaves_the_window() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for n in 0..MAX_FAILURES_PER_EMAIL {
            assert_eq!(throttle.wait("a@b.c", None, start), None, "attempt {n}");
            throttle.failed("a@b.c", None, start + Duration::from_secs(n as u64));
        }
        let now = start + Duration::from_secs(60);
        let wait = throttle.wait("a@b.c", None, now).expect("throttled");
        assert_eq!(wait, THROTTLE_WINDOW - Duration::from_secs(60));
        assert_eq!(throttle.wait("other@b.c", None, now), None);
        assert_eq!(throttle.wait("a@b.c", None, start + THROTTLE_WINDOW), None);
        throttle.succeeded("a@b.c");
        assert_eq!(throttle.wait("a@b.c", None, now), None);
    }

    #[test]
    fn failures_from_one_address_throttle_every_email_from_it() {
        let throttle = Throttle::default();
        let addr = Some(IpAddr::from([127, 0, 0, 9]));
        let now = Instant::now();
        for n in 0..MAX_FAILURES_PER_ADDRESS {
            throttle.failed(&format!("user{n}@b.c"), addr, now);
        }
        assert!(throttle.wait("new@b.c", addr, now).is_some());
        assert_eq!(
            throttle.wait("new@b.c", Some(IpAddr::from([127, 0, 0, 8])), now),
            None
        );
    }
}
