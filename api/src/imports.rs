//! `POST /api/openapi/imports`, `GET /api/openapi/imports/{id}` and
//! `PATCH /api/openapi/imports/{id}/operations/{operation_id}` and
//! `POST /api/openapi/imports/{id}/publish`: OpenAPI documents imported
//! for review (docs/openapi-import.md). The POST stores a `pending` job and answers 202; a
//! spawned task reads, classifies and stores the operations (or the error) in one
//! transaction; jobs still pending at start-up (a crash mid-job) are run again by
//! [`resume_pending`]. The parsing and classification are `tools::import`. A
//! publish puts the enabled operations into the NATS KV bucket the workers watch
//! (`tools::published`).

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use common::events::Permission;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tools::import::{self, AgentHint, ImportError, ImportedOperation};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody, ErrorDetail, capped_body};
use crate::{ApiState, Routes};

/// What imports need besides the database.
#[derive(Debug, Clone, Default)]
pub struct ImportSettings {
    /// The agents a suggestion or a review may name.
    pub agents: Vec<AgentHint>,
    /// Hosts a URL import may fetch from although they are private (`host` or `host:port`).
    pub allow_hosts: Vec<String>,
}

pub fn routes() -> Routes {
    Routes::new()
        .post("/openapi/imports", create)
        .get("/openapi/imports/{id}", show)
        .patch("/openapi/imports/{id}/operations/{operation_id}", edit)
        .post("/openapi/imports/{id}/publish", publish)
}

/// The answer to a new import.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    /// Always `pending`: poll `GET /api/openapi/imports/{id}`.
    pub status: String,
}

/// An import job and, once ready, its operations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub id: Uuid,
    /// `pending`, `ready` or `failed`.
    pub status: String,
    /// The URL it was fetched from; null when the document came in the request body.
    pub url: Option<String>,
    /// The document's `openapi` version and title, once read.
    pub version: Option<String>,
    pub title: Option<String>,
    /// Notes for the reviewer (e.g. webhooks not imported).
    pub notes: Vec<String>,
    /// Why a failed import was refused (`code` from docs/openapi-import.md).
    pub error: Option<ErrorDetail>,
    // RFC 3339 like every time of this API: without these the `time` crate's own serde
    // format wrote them as arrays of numbers (found by schemathesis).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub operations: Vec<OperationView>,
}

/// One operation under review.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperationView {
    pub operation_id: String,
    /// Whether the id was generated from method and path (the document has none).
    pub generated_id: bool,
    pub method: String,
    pub path: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// `[{name, in, required, description, schema}]`, schemas with `$ref`s inlined.
    #[schema(value_type = Vec<Object>)]
    pub parameters: Value,
    /// `{required, content_type, schema}` or null.
    #[schema(value_type = Option<Object>)]
    pub request_body: Value,
    pub servers: Vec<String>,
    /// `read`, `write` or `destructive`: as reviewed (the suggestion until edited).
    #[schema(example = "write")]
    pub class: String,
    /// The class the import suggested.
    pub suggested_class: String,
    /// Why it was suggested that class.
    pub reasons: Vec<String>,
    /// The agent as reviewed (the suggestion until edited); null: none.
    pub agent: Option<String>,
    pub suggested_agent: Option<String>,
    pub agent_reason: Option<String>,
    /// Whether it is to be published; destructive and unusable operations start disabled.
    pub enabled: bool,
    /// False when the operation cannot become a tool (a `$ref` in its parameters or request
    /// body points at nothing): it cannot be enabled and is never published.
    pub usable: bool,
    /// Why it is not usable, e.g. "`#/components/schemas/Missing` does not exist (at
    /// /paths/~1orders/post/requestBody/content/application~1json/schema)"; null when usable.
    pub unusable_reason: Option<String>,
}

/// The request body of a new import: either the document itself (JSON or YAML text, any
/// content type), or a JSON object with one key, `url`. Neither may hold the NUL character,
/// which PostgreSQL cannot store in the job's `text` columns.
fn source(bytes: &[u8]) -> Result<Source, ImportError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ImportError::InvalidDocument(format!("the body is not UTF-8 text: {e}")))?;
    let no_nul = |what: &str, text: &str| {
        if text.contains('\0') {
            Err(ImportError::InvalidDocument(format!(
                "the {what} contains the NUL character (U+0000)"
            )))
        } else {
            Ok(())
        }
    };
    no_nul("body", text)?;
    if text.trim_start().starts_with('{')
        && let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text)
        && object.len() == 1
        && let Some(Value::String(url)) = object.get("url")
    {
        no_nul("url", url)?;
        return Ok(Source::Url(url.clone()));
    }
    Ok(Source::Text(text.to_owned()))
}

enum Source {
    Text(String),
    Url(String),
}

/// Import an OpenAPI document: the body is the document (JSON or YAML text), or
/// `{"url": "https://…"}`. Answers 202 at once; the job runs in the background.
#[utoipa::path(
    post,
    path = "/api/openapi/imports",
    tag = "openapi-imports",
    request_body(content = String, description = "The document (JSON or YAML), or `{\"url\": \"https://…\"}`. Required: an empty body is refused", content_type = "application/yaml"),
    responses(
        (status = 202, description = "The job is stored; poll it", body = Accepted),
        (status = 400, description = "`empty_body`: no document and no URL", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 413, description = "`document_too_large`: the body is over 4 MiB (said by `Content-Length` before it is read, or found while reading it); no job is stored", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let bytes = capped_body(
        &headers,
        body,
        import::MAX_DOCUMENT_BYTES,
        "document_too_large",
        "document",
    )
    .await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body is empty: send the OpenAPI document (JSON or YAML) or {\"url\": \"https://…\"}",
        ));
    }
    let id = Uuid::new_v4();
    let refused = match source(&bytes) {
        Ok(Source::Text(text)) => {
            insert(&state, id, None, Some(&text)).await?;
            None
        }
        Ok(Source::Url(url)) => {
            insert(&state, id, Some(&url), None).await?;
            None
        }
        Err(error) => Some(error),
    };
    match refused {
        Some(error) => {
            insert(&state, id, None, None).await?;
            finish(&state.pool, id, Err(error)).await?;
        }
        None => {
            tokio::spawn(run(state.clone(), id));
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id,
            status: "pending".into(),
        }),
    ))
}

async fn insert(
    state: &ApiState,
    id: Uuid,
    url: Option<&str>,
    document: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into public.openapi_import (openapi_import_id, url, document) values ($1, $2, $3)",
    )
    .bind(id)
    .bind(url)
    .bind(document)
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Runs every job left `pending` (the service stopped mid-job): the document is still
/// stored, or the URL is fetched again.
pub async fn resume_pending(state: ApiState) {
    let pending: Result<Vec<Uuid>, _> = sqlx::query_scalar(
        "select openapi_import_id from public.openapi_import where status = 'pending' order by created_at",
    )
    .fetch_all(&state.pool)
    .await;
    match pending {
        Ok(ids) => {
            for id in ids {
                run(state.clone(), id).await;
            }
        }
        Err(error) => tracing::error!(%error, "cannot list pending OpenAPI imports"),
    }
}

/// One job: fetch (for a URL), read and classify off the async threads, store.
#[tracing::instrument(skip_all, fields(import_id = %id))]
async fn run(state: ApiState, id: Uuid) {
    let outcome = async {
        let (url, document): (Option<String>, Option<String>) = sqlx::query_as(
            "select url, document from public.openapi_import where openapi_import_id = $1 and status = 'pending'",
        )
        .bind(id)
        .fetch_optional(&state.pool)
        .await?
        .unwrap_or_default();
        let text = match (url, document) {
            (_, Some(text)) => Ok(text),
            (Some(url), None) => import::fetch::fetch(&url, &state.imports.allow_hosts).await,
            (None, None) => return Ok(()),
        };
        let agents = state.imports.agents.clone();
        let result = match text {
            Ok(text) => tokio::task::spawn_blocking(move || import::import(&text, &agents))
                .await
                .map_err(|e| anyhow::anyhow!("the import task failed: {e}"))?,
            Err(error) => Err(error),
        };
        finish(&state.pool, id, result).await?;
        anyhow::Ok(())
    };
    if let Err(error) = outcome.await {
        tracing::error!(error = ?error, "OpenAPI import failed; it stays pending and runs again at start-up");
    }
}

/// Stores the outcome in one transaction: the operations and `ready`, or only the error
/// and `failed` (a refused document leaves nothing else behind).
async fn finish(
    pool: &sqlx::PgPool,
    id: Uuid,
    result: Result<import::Imported, ImportError>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    match result {
        Ok(imported) => {
            for (position, op) in imported.operations.iter().enumerate() {
                sqlx::query(
                    "insert into public.openapi_operation
                       (openapi_import_id, operation_id, position, detail, class, agent, enabled,
                        usable, unusable_reason)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     on conflict do nothing",
                )
                .bind(id)
                .bind(&op.operation_id)
                .bind(position as i32)
                .bind(sqlx::types::Json(op))
                .bind(class_name(op.class))
                .bind(&op.suggested_agent)
                .bind(op.class != Permission::Destructive && op.is_usable())
                .bind(op.is_usable())
                .bind(&op.unusable)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "update public.openapi_import set status = 'ready', document = null, version = $2,
                   title = $3, notes = $4, finished_at = now() where openapi_import_id = $1",
            )
            .bind(id)
            .bind(&imported.version)
            .bind(&imported.title)
            .bind(sqlx::types::Json(&imported.notes))
            .execute(&mut *tx)
            .await?;
        }
        Err(error) => {
            sqlx::query(
                "update public.openapi_import set status = 'failed', document = null, error_code = $2,
                   error_message = $3, finished_at = now() where openapi_import_id = $1",
            )
            .bind(id)
            .bind(error.code())
            .bind(error.to_string())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

fn class_name(class: Permission) -> &'static str {
    match class {
        Permission::Read => "read",
        Permission::Write => "write",
        Permission::Destructive => "destructive",
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        code: "import_not_found",
        message: format!("no OpenAPI import {id}"),
    }
}

/// `import_not_found`, or `import_not_ready` unless the import is `ready`.
async fn require_ready(pool: &sqlx::PgPool, id: Uuid, to_be: &str) -> Result<(), ApiError> {
    let status: Option<String> =
        sqlx::query_scalar("select status from public.openapi_import where openapi_import_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    match status.as_deref() {
        None => Err(not_found(&id.to_string())),
        Some("ready") => Ok(()),
        Some(other) => Err(ApiError::Conflict {
            code: "import_not_ready",
            message: format!("the import is {other}; only a ready import can be {to_be}"),
        }),
    }
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| not_found(id))
}

/// An import: its status, error, and operations with their classification.
#[utoipa::path(
    get,
    path = "/api/openapi/imports/{id}",
    tag = "openapi-imports",
    params(("id" = String, Path, format = Uuid, description = "The import id from the POST")),
    responses(
        (status = 200, description = "The import", body = ImportView),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 404, description = "`import_not_found`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ImportView>, ApiError> {
    let id = parse_id(&id)?;
    load(&state.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&id.to_string()))
}

type ImportRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    sqlx::types::Json<Vec<String>>,
    Option<String>,
    Option<String>,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

/// A stored operation: detail, class, agent, enabled, usable, unusable reason.
type OperationRow = (
    sqlx::types::Json<ImportedOperation>,
    String,
    Option<String>,
    bool,
    bool,
    Option<String>,
);

async fn load(pool: &sqlx::PgPool, id: Uuid) -> Result<Option<ImportView>, ApiError> {
    let row: Option<ImportRow> = sqlx::query_as(
        "select status, url, version, title, notes, error_code, error_message, created_at, finished_at
         from public.openapi_import where openapi_import_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some((status, url, version, title, notes, code, message, created_at, finished_at)) = row
    else {
        return Ok(None);
    };
    let rows: Vec<OperationRow> = sqlx::query_as(
        "select detail, class, agent, enabled, usable, unusable_reason from public.openapi_operation
             where openapi_import_id = $1 order by position",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let operations = rows
        .into_iter()
        .map(
            |(sqlx::types::Json(op), class, agent, enabled, usable, unusable_reason)| {
                OperationView {
                    parameters: serde_json::to_value(&op.parameters).unwrap_or_default(),
                    request_body: serde_json::to_value(&op.request_body).unwrap_or_default(),
                    suggested_class: class_name(op.class).to_owned(),
                    operation_id: op.operation_id,
                    generated_id: op.generated_id,
                    method: op.method,
                    path: op.path,
                    summary: op.summary,
                    description: op.description,
                    tags: op.tags,
                    servers: op.servers,
                    class,
                    reasons: op.reasons,
                    agent,
                    suggested_agent: op.suggested_agent,
                    agent_reason: op.agent_reason,
                    enabled,
                    usable,
                    unusable_reason,
                }
            },
        )
        .collect();
    Ok(Some(ImportView {
        id,
        status,
        url,
        version,
        title,
        notes: notes.0,
        error: code.map(|code| ErrorDetail {
            code,
            message: message.unwrap_or_default(),
            retry_after_ms: None,
        }),
        created_at,
        finished_at,
        operations,
    }))
}

/// The values of an operation's `class`, for the document.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // only its schema is used
enum ClassParam {
    Read,
    Write,
    Destructive,
}

/// The review of one operation: any of `class`, `agent` (null: none), `enabled`.
#[derive(Debug, ToSchema)]
pub struct OperationEdit {
    /// `read`, `write` or `destructive`.
    #[schema(value_type = Option<ClassParam>, inline)]
    pub class: Option<String>,
    /// An agent of the agents config, or null for none.
    pub agent: Option<String>,
    pub enabled: Option<bool>,
}

/// Edit an operation's class, agent or enabled flag.
#[utoipa::path(
    patch,
    path = "/api/openapi/imports/{id}/operations/{operation_id}",
    tag = "openapi-imports",
    params(
        ("id" = String, Path, format = Uuid, description = "The import id"),
        ("operation_id" = String, Path, description = "The operation's id in the import"),
    ),
    request_body = OperationEdit,
    responses(
        (status = 200, description = "The import with the edit applied", body = ImportView),
        (status = 400, description = "`invalid_body`, `unknown_class` or `unknown_agent`", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 404, description = "`import_not_found` or `operation_not_found`", body = ErrorBody),
        (status = 409, description = "`import_not_ready`: the import is pending or failed; `operation_unusable`: `enabled: true` for an operation that cannot be used (`usable: false`)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn edit(
    State(state): State<ApiState>,
    Path((id, operation_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<ImportView>, ApiError> {
    let id = parse_id(&id)?;
    let invalid = |message: &str| ApiError::bad_request("invalid_body", message.to_owned());
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return Err(invalid(
            "the body must be a JSON object with `class`, `agent` or `enabled`",
        ));
    };
    if fields.is_empty() {
        return Err(invalid(
            "nothing to change: give `class`, `agent` or `enabled`",
        ));
    }
    if let Some(key) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "class" | "agent" | "enabled"))
    {
        return Err(invalid(&format!(
            "unknown field `{key}`; the fields are `class`, `agent` and `enabled`"
        )));
    }
    let class = match fields.get("class") {
        None => None,
        Some(Value::String(c)) if matches!(c.as_str(), "read" | "write" | "destructive") => {
            Some(c.clone())
        }
        Some(other) => {
            return Err(ApiError::bad_request(
                "unknown_class",
                format!("class {other} is not `read`, `write` or `destructive`"),
            ));
        }
    };
    // Some(None) clears the agent.
    let agent = match fields.get("agent") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(name)) if state.imports.agents.iter().any(|a| a.name == *name) => {
            Some(Some(name.clone()))
        }
        Some(other) => {
            let known: Vec<&str> = state
                .imports
                .agents
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            return Err(ApiError::bad_request(
                "unknown_agent",
                format!(
                    "agent {other} is not one of the agents config ({})",
                    known.join(", ")
                ),
            ));
        }
    };
    let enabled = match fields.get("enabled") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(invalid("`enabled` must be true or false")),
    };
    require_ready(&state.pool, id, "reviewed").await?;
    if enabled == Some(true) {
        let unusable: Option<Option<String>> = sqlx::query_scalar(
            "select unusable_reason from public.openapi_operation
               where openapi_import_id = $1 and operation_id = $2 and not usable",
        )
        .bind(id)
        .bind(&operation_id)
        .fetch_optional(&state.pool)
        .await?;
        if let Some(reason) = unusable {
            return Err(ApiError::Conflict {
                code: "operation_unusable",
                message: format!(
                    "operation `{operation_id}` cannot be enabled: {}",
                    reason.unwrap_or_else(|| "it cannot be used".into())
                ),
            });
        }
    }
    let updated = sqlx::query(
        "update public.openapi_operation set
           class = coalesce($3, class),
           agent = case when $4 then $5 else agent end,
           enabled = coalesce($6, enabled)
         where openapi_import_id = $1 and operation_id = $2",
    )
    .bind(id)
    .bind(&operation_id)
    .bind(class)
    .bind(agent.is_some())
    .bind(agent.flatten())
    .bind(enabled)
    .execute(&state.pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ApiError::NotFound {
            code: "operation_not_found",
            message: format!("import {id} has no operation `{operation_id}`"),
        });
    }
    load(&state.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&id.to_string()))
}

/// The answer to a publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    /// The version of the published tool set (the revision of `TOOLS`/`published` in NATS KV).
    pub version: u64,
    /// How many operations became tools.
    pub operations: usize,
}

/// Publish the enabled operations of a ready import as the agents' tools: each becomes a
/// tool of its reviewed agent with its reviewed class as the permission. An unusable
/// operation is never among them (it cannot be enabled; publish skips it all the same). The workers pick
/// the new version up without a restart; it replaces the previously published set.
#[utoipa::path(
    post,
    path = "/api/openapi/imports/{id}/publish",
    tag = "openapi-imports",
    params(("id" = String, Path, format = Uuid, description = "The import id")),
    responses(
        (status = 200, description = "The new version of the published tools", body = Published),
        (status = 400, description = "`unknown_agent`: an enabled operation has no agent or one the agents config does not have", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 404, description = "`import_not_found`", body = ErrorBody),
        (status = 409, description = "`import_not_ready`: the import is pending or failed", body = ErrorBody),
        (status = 503, description = "NATS did not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn publish(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Published>, ApiError> {
    use tools::published::{self, PublishedOperation, PublishedTools};
    let id = parse_id(&id)?;
    require_ready(&state.pool, id, "published").await?;
    let rows: Vec<(sqlx::types::Json<ImportedOperation>, String, Option<String>)> = sqlx::query_as(
        "select detail, class, agent from public.openapi_operation
             where openapi_import_id = $1 and enabled and usable order by position",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let mut operations = Vec::with_capacity(rows.len());
    for (sqlx::types::Json(operation), class, agent) in rows {
        let known = |name: &str| state.imports.agents.iter().any(|a| a.name == name);
        let agent = match agent {
            Some(agent) if known(&agent) => agent,
            other => {
                let names: Vec<&str> = state
                    .imports
                    .agents
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect();
                return Err(ApiError::bad_request(
                    "unknown_agent",
                    format!(
                        "operation `{}` is enabled for {}, which is not one of the agents config ({}); set its agent or disable it",
                        operation.operation_id,
                        other.map_or("no agent".to_owned(), |a| format!("agent {a:?}")),
                        names.join(", ")
                    ),
                ));
            }
        };
        let permission = match class.as_str() {
            "read" => Permission::Read,
            "write" => Permission::Write,
            _ => Permission::Destructive,
        };
        operations.push(PublishedOperation {
            agent,
            permission,
            operation,
        });
    }
    let tools = PublishedTools {
        import_id: id,
        base_url: operations
            .iter()
            .find_map(|op| op.operation.servers.first().cloned()),
        operations,
    };
    let count = tools.operations.len();
    let value = serde_json::to_vec(&tools).map_err(anyhow::Error::from)?;
    let js = async_nats::jetstream::new(state.client.clone());
    let store = published::bucket(&js)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let version = store
        .put(published::KEY, value.into())
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot store the published tools: {e}")))?;
    tracing::info!(import_id = %id, version, operations = count, "tools published");
    Ok(Json(Published {
        version,
        operations: count,
    }))
}
