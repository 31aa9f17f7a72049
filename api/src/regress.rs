//! `POST /api/regress` and `GET /api/regress/{id}`: `smart-support regress` over REST
//! (docs/regress.md#over-rest-and-in-the-web-ui). An admin sends a changed agents config;
//! the POST stores a `running` run and answers 202; a spawned task runs it through the
//! injected [`RegressRunner`] (the read side never depends on the workers: `cli` implements
//! it on top of its `regress` command and hands it to [`crate::startup::service`]) and
//! stores the summary and the changed turns in `public.regress_run` / `regress_turn`, so
//! any instance answers the GET. Read-only and offline like the command: a run publishes
//! nothing and calls no tool.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use common::events::ThreadId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody, ErrorDetail, capped_body};
use crate::{ApiState, Routes};

/// Largest request body, in bytes (a config of [`MAX_CONFIG_CHARS`] characters, each
/// written as a JSON escape, fits).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Longest config, in characters.
pub const MAX_CONFIG_CHARS: usize = 262_144;
/// Most threads one run may name.
pub const MAX_THREADS: usize = 100;
/// Largest `limit`.
pub const MAX_LIMIT: u64 = 1_000_000;
/// Changed turns a run keeps (the summary counts them all).
pub const MAX_KEPT_TURNS: usize = 1_000;
/// How often the instance running a run says so (and writes its progress).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A `running` run not heard of for this long was interrupted (its instance stopped).
const HEARTBEAT_LOST_SECONDS: i64 = 30;

/// Runs on one instance run one at a time (each reads the stream and replays every turn it
/// selects); the others wait, `running`, meanwhile.
static RUNS: Semaphore = Semaphore::const_new(1);

pub fn routes() -> Routes {
    Routes::new()
        .post("/regress", create)
        .get("/regress/{id}", show)
}

/// Runs a changed agents config on the recorded turns: `smart-support regress` without its
/// printing, implemented by `cli` (the read side may not depend on the workers).
pub trait RegressRunner: Send + Sync {
    /// Loads `request.config` (the same checks as the workers' start) and replays the
    /// selected turns, updating `progress` as it goes.
    fn run(
        &self,
        request: RunRequest,
        progress: Arc<Progress>,
    ) -> Pin<Box<dyn Future<Output = Result<Report, RunFailure>> + Send>>;
}

/// What a run is asked to do, checked.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The name the config is shown under (errors `name:line: reason`, the report).
    pub name: String,
    /// The config's YAML text.
    pub config: String,
    /// Only turns whose customer message is at most this old.
    pub since: Option<Duration>,
    /// Only these threads (all when empty).
    pub threads: Vec<ThreadId>,
    /// Only the last N turns of the selection.
    pub limit: Option<usize>,
}

/// How far a run is.
#[derive(Debug, Default)]
pub struct Progress {
    pub events_total: AtomicU64,
    pub events_read: AtomicU64,
    pub turns_replayed: AtomicU64,
}

/// Why a run ended without a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunFailure {
    /// The config does not load: `name:line: reason`, as the workers' start says it.
    Config(String),
    /// The stream could not be read (or another cause), said in one line.
    Failed(String),
}

// The report, as `smart-support regress --format json` prints it. The command's own types
// borrow `'static` names and live in `cli`, which this crate may not see; `cli` converts
// its report into these through JSON, and a test there checks no field is lost.

/// A run's whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegressReport)]
pub struct Report {
    /// The config tried (its name).
    pub config: String,
    /// The engine that proposed the steps: `rules` or `openai`.
    pub engine: String,
    pub summary: Summary,
    /// The changed turns, in stream order.
    pub changed: Vec<ChangedTurn>,
    /// The turns that could not be replayed (an engine error).
    pub errors: Vec<Unreplayed>,
}

/// Counts of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegressSummary)]
pub struct Summary {
    /// Turns run again.
    pub replayed: u64,
    pub unchanged: u64,
    pub changed: u64,
    /// Changed turns by kind of change (`agent`, `tool_calls`, `confirmation`,
    /// `escalation`, `reply`; a turn may count under several).
    pub by_kind: BTreeMap<String, u64>,
    /// Tool calls of the replays that the recorded turns never made (sent nowhere).
    pub new_tool_calls: u64,
    /// Turns that could not be replayed (an engine error).
    pub errors: u64,
    pub skipped: Skipped,
    pub seconds: f64,
    pub turns_per_second: f64,
}

/// Turns read but not replayed, by why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegressSkipped)]
pub struct Skipped {
    /// Answered by a person (`turn.held`).
    pub held: u64,
    /// Dead-lettered (`turn.failed`).
    pub failed: u64,
    /// No end of turn on the stream yet.
    pub unfinished: u64,
    /// Stored bytes that are not an event this version reads.
    pub unreadable: u64,
}

/// A turn whose replay differs from the recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegressChangedTurn)]
pub struct ChangedTurn {
    pub thread_id: String,
    pub turn_id: String,
    /// The customer message's stream sequence.
    pub seq: u64,
    /// When the customer message was stored (RFC 3339).
    pub occurred_at: String,
    /// The customer's message.
    pub message: String,
    /// What changed: `agent`, `tool_calls`, `confirmation`, `escalation`, `reply`.
    pub changes: Vec<String>,
    /// What the recorded turn decided.
    pub recorded: Decision,
    /// What the replay with the new config decided.
    pub replayed: Decision,
}

/// What a turn decided: the five things compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegressDecision)]
pub struct Decision {
    /// The agent it was routed to.
    pub agent: Option<String>,
    pub tool_calls: Vec<Call>,
    /// The write it asked the customer to confirm.
    pub confirmation: Option<Confirmation>,
    pub escalation: Option<Escalation>,
    /// The reply's text.
    pub reply: Option<String>,
}

/// A tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegressToolCall)]
pub struct Call {
    /// The tool (the operation id).
    pub tool: String,
    /// Its arguments (null for a refused call: they are not recorded).
    pub params: Value,
    /// The turn refused it (not one of the agent's tools): nothing was called. Absent: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// Replay only: the recorded turn made no such call, so it was sent nowhere. Absent:
    /// false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new: bool,
}

/// A write waiting for the customer's "yes".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegressConfirmation)]
pub struct Confirmation {
    pub tool: String,
    pub params: Value,
}

/// An escalation to a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegressEscalation)]
pub struct Escalation {
    /// `user_request`, `keyword`, `tool_failures`, `destructive_action`.
    pub reason: String,
    /// Shown, not compared.
    pub detail: String,
}

/// A turn that could not be replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = RegressUnreplayed)]
pub struct Unreplayed {
    pub thread_id: String,
    pub seq: u64,
    pub error: String,
}

/// The body of `POST /api/regress`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegressRequest {
    /// The agents config to try: YAML text, as an `AGENTS_CONFIG` file holds it. Read as
    /// if it were a file beside the running config, so its `openapi` names a document there.
    #[schema(min_length = 1, max_length = 262144)]
    pub config: String,
    /// The file name it is shown under (`name:line: reason`, the report); default
    /// `config.yaml`.
    #[schema(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")]
    pub name: Option<String>,
    /// Only turns whose customer message is at most this old: days, hours or minutes
    /// (`7d`, `12h`, `30m`).
    #[schema(pattern = "^[1-9][0-9]{0,4}[dhm]$")]
    pub since: Option<String>,
    /// Only the turns of these conversations (at most 100).
    #[schema(max_items = 100)]
    pub thread_ids: Option<Vec<ThreadIdText>>,
    /// Only the last N turns of the selection (1 to 1000000). A whole number, also when
    /// written `500.0` (JSON Schema's integers include it; found by schemathesis).
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1_000_000)]
    pub limit: Option<serde_json::Number>,
}

/// A conversation's thread id.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = RegressThreadId)]
#[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
pub struct ThreadIdText(String);

/// The answer to a new run.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RegressAccepted)]
pub struct Accepted {
    pub id: Uuid,
    /// Always `running`: poll `GET /api/regress/{id}`.
    pub status: RunStatus,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = RegressStatus)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Done,
    Failed,
}

/// How far a running run is (the last the running instance wrote, every 5 s).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RegressProgress)]
pub struct ProgressView {
    /// Events of the selection to read.
    pub events_total: u64,
    pub events_read: u64,
    pub turns_replayed: u64,
}

/// A run: what it was asked, where it is, and once done its summary and changed turns.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RegressRun)]
pub struct RunView {
    pub id: Uuid,
    pub status: RunStatus,
    /// The config's name.
    pub config: String,
    /// The selection asked for.
    pub since: Option<String>,
    pub thread_ids: Vec<String>,
    pub limit: Option<u64>,
    pub progress: ProgressView,
    /// Done: the engine that proposed the steps (`rules`, `openai`).
    pub engine: Option<String>,
    /// Done: the counts.
    pub summary: Option<Summary>,
    /// Done: the changed turns, in stream order (the first 1000).
    pub changed: Vec<ChangedTurn>,
    /// Whether there were more changed turns than `changed` holds (see `summary.changed`).
    pub changed_truncated: bool,
    /// Done: the turns that could not be replayed.
    pub errors: Vec<Unreplayed>,
    /// Failed: `invalid_config` (the message is the config's `name:line: reason`),
    /// `run_failed` (e.g. the stream could not be read) or `interrupted` (the instance
    /// running it stopped).
    pub error: Option<ErrorDetail>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// The selection as stored with the run.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Selection {
    since: Option<String>,
    thread_ids: Vec<String>,
    limit: Option<u64>,
}

/// `7d`, `12h`, `30m` (the pattern of [`RegressRequest::since`]).
fn parse_since(raw: &str) -> Option<Duration> {
    let unit = match raw.chars().last()? {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        _ => return None,
    };
    let number = &raw[..raw.len() - 1];
    let valid = (1..=5).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
        && !number.starts_with('0');
    if !valid {
        return None;
    }
    Some(Duration::from_secs(number.parse::<u64>().ok()? * unit))
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    (1..=64).contains(&name.len())
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A JSON number that is a whole number at least 0 (`500` or `500.0`).
fn whole_number(number: &serde_json::Number) -> Option<u64> {
    number.as_u64().or_else(|| {
        let value = number.as_f64()?;
        (value.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&value)).then_some(value as u64)
    })
}

/// The body, checked: the run to start and the selection to store.
fn parse_request(body: &[u8]) -> Result<(RunRequest, Selection), ApiError> {
    let request: RegressRequest = serde_json::from_slice(body).map_err(|err| {
        ApiError::bad_request("invalid_body", format!("not a regress request: {err}"))
    })?;
    if request.config.is_empty() {
        return Err(ApiError::bad_request(
            "empty_config",
            "config is empty: send the agents config's YAML text",
        ));
    }
    if request.config.chars().count() > MAX_CONFIG_CHARS {
        return Err(ApiError::bad_request(
            "config_too_long",
            format!("config is over {MAX_CONFIG_CHARS} characters"),
        ));
    }
    let name = request.name.unwrap_or_else(|| "config.yaml".to_owned());
    if !valid_name(&name) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be a file name: 1 to 64 characters of A-Z a-z 0-9 . _ -, not starting with . or -",
        ));
    }
    let since = match &request.since {
        Some(raw) => Some(parse_since(raw).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_since",
                "since must be a whole number of days, hours or minutes: 7d, 12h, 30m",
            )
        })?),
        None => None,
    };
    let raw_threads: Vec<String> = request
        .thread_ids
        .unwrap_or_default()
        .into_iter()
        .map(|ThreadIdText(id)| id)
        .collect();
    if raw_threads.len() > MAX_THREADS {
        return Err(ApiError::bad_request(
            "too_many_threads",
            format!("at most {MAX_THREADS} thread_ids"),
        ));
    }
    let threads = raw_threads
        .iter()
        .map(|raw| {
            ThreadId::parse(raw).map_err(|_| {
                ApiError::bad_request(
                    "invalid_thread_id",
                    "a thread id is 1 to 64 characters of A-Z a-z 0-9 - _",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limit = match &request.limit {
        Some(number) => Some(
            whole_number(number)
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_limit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    )
                })?,
        ),
        None => None,
    };
    let selection = Selection {
        since: request.since,
        thread_ids: raw_threads,
        limit,
    };
    let run = RunRequest {
        name,
        config: request.config,
        since,
        threads,
        limit: limit.map(|n| n as usize),
    };
    Ok((run, selection))
}

/// Try a changed agents config on the recorded turns (admin). Answers 202 at once; the run
/// goes on in the background: poll `GET /api/regress/{id}`.
#[utoipa::path(
    post,
    path = "/api/regress",
    tag = "regress",
    request_body(content = RegressRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "The run is stored and started; poll it", body = Accepted),
        (status = 400, description = "`invalid_body` (not the JSON object described, unknown fields included), \
                                      `empty_config`, `config_too_long`, `invalid_name`, `invalid_since`, \
                                      `invalid_thread_id`, `too_many_threads`, `invalid_limit`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin role is needed", body = ErrorBody),
        (status = 413, description = "`body_too_large`: the body is over 4 MiB; nothing is stored", body = ErrorBody),
        (status = 503, description = "`regress_unavailable`: this instance runs no regress (see docs/regress.md)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let bytes = capped_body(&headers, body, MAX_BODY_BYTES, "body_too_large", "body").await?;
    let (request, selection) = parse_request(&bytes)?;
    let Some(runner) = state.regress.clone() else {
        return Err(ApiError::Disabled {
            code: "regress_unavailable",
            message: "this instance runs no regress: it needs the agents config in use \
                      (smart-support up, or the projections binary with IMPORT_AGENTS_CONFIG)"
                .into(),
        });
    };
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into public.regress_run (regress_run_id, config_name, selection) values ($1, $2, $3)",
    )
    .bind(id)
    .bind(&request.name)
    .bind(sqlx::types::Json(&selection))
    .execute(&state.pool)
    .await?;
    tokio::spawn(job(state.pool.clone(), runner, id, request));
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id,
            status: RunStatus::Running,
        }),
    ))
}

/// One run: waits its turn, runs, says it is alive every [`HEARTBEAT`] with its progress,
/// and stores the outcome.
#[tracing::instrument(skip_all, fields(regress_run_id = %id))]
async fn job(pool: sqlx::PgPool, runner: Arc<dyn RegressRunner>, id: Uuid, request: RunRequest) {
    let progress = Arc::new(Progress::default());
    let run = {
        let progress = progress.clone();
        async move {
            let _permit = RUNS.acquire().await.expect("the semaphore is never closed");
            runner.run(request, progress).await
        }
    };
    let mut run = std::pin::pin!(run);
    let mut beat = tokio::time::interval(HEARTBEAT);
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            _ = beat.tick() => {
                if let Err(error) = heartbeat(&pool, id, &progress).await {
                    tracing::warn!(%error, "cannot record a regress run's progress");
                }
            }
        }
    };
    if let Err(error) = finish(&pool, id, &progress, outcome).await {
        tracing::error!(error = ?error, "cannot store a regress run's outcome");
    }
}

async fn heartbeat(pool: &sqlx::PgPool, id: Uuid, progress: &Progress) -> sqlx::Result<()> {
    sqlx::query(
        "update public.regress_run set heartbeat_at = now(), events_total = $2, events_read = $3,
           turns_replayed = $4 where regress_run_id = $1 and status = 'running'",
    )
    .bind(id)
    .bind(progress.events_total.load(Ordering::Relaxed) as i64)
    .bind(progress.events_read.load(Ordering::Relaxed) as i64)
    .bind(progress.turns_replayed.load(Ordering::Relaxed) as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// PostgreSQL's `text` cannot hold U+0000; a message quoting the config might.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

/// What a done run stores beside its turns.
#[derive(Serialize, Deserialize)]
struct Stored {
    engine: String,
    summary: Summary,
    errors: Vec<Unreplayed>,
}

/// Stores the outcome in one transaction: the summary and the changed turns (each a row,
/// by thread, so an erasure can remove a conversation's), or the error.
async fn finish(
    pool: &sqlx::PgPool,
    id: Uuid,
    progress: &Progress,
    outcome: Result<Report, RunFailure>,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    match outcome {
        Ok(report) => {
            let kept = &report.changed[..report.changed.len().min(MAX_KEPT_TURNS)];
            // JSON text, not jsonb: jsonb refuses the escape `\u0000`, which a reply may hold.
            let details = kept
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<Vec<_>, _>>()?;
            let threads: Vec<&str> = kept.iter().map(|t| t.thread_id.as_str()).collect();
            let positions: Vec<i32> = (0..kept.len() as i32).collect();
            sqlx::query(
                "insert into public.regress_turn (regress_run_id, position, thread_id, detail)
                 select $1, * from unnest($2::int4[], $3::text[], $4::text[])",
            )
            .bind(id)
            .bind(&positions)
            .bind(&threads)
            .bind(&details)
            .execute(&mut *tx)
            .await?;
            let stored = Stored {
                engine: report.engine,
                summary: report.summary,
                errors: report.errors,
            };
            sqlx::query(
                "update public.regress_run set status = 'done', report = $2, events_total = $3,
                   events_read = $4, turns_replayed = $5, finished_at = now()
                 where regress_run_id = $1",
            )
            .bind(id)
            .bind(serde_json::to_string(&stored)?)
            .bind(progress.events_total.load(Ordering::Relaxed) as i64)
            .bind(progress.events_read.load(Ordering::Relaxed) as i64)
            .bind(stored.summary.replayed as i64)
            .execute(&mut *tx)
            .await?;
        }
        Err(failure) => {
            let (code, message) = match failure {
                RunFailure::Config(message) => ("invalid_config", message),
                RunFailure::Failed(message) => ("run_failed", message),
            };
            sqlx::query(
                "update public.regress_run set status = 'failed', error_code = $2,
                   error_message = $3, finished_at = now() where regress_run_id = $1",
            )
            .bind(id)
            .bind(code)
            .bind(storable(&message))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        code: "regress_not_found",
        message: format!("no regress run {id}"),
    }
}

/// A run: its status and progress, and once done its summary and changed turns side by side
/// (recorded and replayed).
#[utoipa::path(
    get,
    path = "/api/regress/{id}",
    tag = "regress",
    params(("id" = String, Path, format = Uuid, description = "The run id from the POST")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin role is needed", body = ErrorBody),
        (status = 404, description = "`regress_not_found` (also for an id that is not a UUID)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let uuid = Uuid::parse_str(&id).map_err(|_| not_found(&id))?;
    load(&state.pool, uuid)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

type RunRow = (
    String,
    String,
    sqlx::types::Json<Selection>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
    bool,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

/// A stored run, or `None`.
pub async fn load(pool: &sqlx::PgPool, id: Uuid) -> anyhow::Result<Option<RunView>> {
    let row: Option<RunRow> = sqlx::query_as(
        "select status, config_name, selection, report, error_code, error_message,
                events_total, events_read, turns_replayed,
                status = 'running' and heartbeat_at < now() - make_interval(secs => $2),
                created_at, finished_at
           from public.regress_run where regress_run_id = $1",
    )
    .bind(id)
    .bind(HEARTBEAT_LOST_SECONDS as f64)
    .fetch_optional(pool)
    .await?;
    let Some((
        status,
        config,
        selection,
        report,
        error_code,
        error_message,
        events_total,
        events_read,
        turns_replayed,
        lost,
        created_at,
        finished_at,
    )) = row
    else {
        return Ok(None);
    };
    let (mut status, mut error) = match status.as_str() {
        "done" => (RunStatus::Done, None),
        "failed" => (
            RunStatus::Failed,
            Some(ErrorDetail {
                code: error_code.unwrap_or_else(|| "run_failed".into()),
                message: error_message.unwrap_or_default(),
                retry_after_ms: None,
            }),
        ),
        _ => (RunStatus::Running, None),
    };
    if lost {
        status = RunStatus::Failed;
        error = Some(ErrorDetail {
            code: "interrupted".into(),
            message: "the instance running it stopped before it ended; start it again".into(),
            retry_after_ms: None,
        });
    }
    let stored: Option<Stored> = report.map(|text| serde_json::from_str(&text)).transpose()?;
    let details: Vec<String> = sqlx::query_scalar(
        "select detail from public.regress_turn where regress_run_id = $1 order by position",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let changed = details
        .iter()
        .map(|text| serde_json::from_str(text))
        .collect::<Result<Vec<ChangedTurn>, _>>()?;
    let (engine, summary, errors) = match stored {
        Some(stored) => (Some(stored.engine), Some(stored.summary), stored.errors),
        None => (None, None, Vec::new()),
    };
    let changed_truncated = summary
        .as_ref()
        .is_some_and(|s| s.changed > changed.len() as u64);
    let Selection {
        since,
        thread_ids,
        limit,
    } = selection.0;
    Ok(Some(RunView {
        id,
        status,
        config,
        since,
        thread_ids,
        limit,
        progress: ProgressView {
            events_total: events_total as u64,
            events_read: events_read as u64,
            turns_replayed: turns_replayed as u64,
        },
        engine,
        summary,
        changed,
        changed_truncated,
        errors,
        error,
        created_at,
        finished_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> &'static str {
        crate::error::testing::code(parse_request(body.as_bytes()))
    }

    #[test]
    fn since_takes_days_hours_and_minutes() {
        assert_eq!(parse_since("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_since("12h"), Some(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_since("30m"), Some(Duration::from_secs(30 * 60)));
        for bad in [
            "", "d", "0d", "07d", "7", "7s", "123456d", "+7d", "7 d", "٧d",
        ] {
            assert_eq!(parse_since(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_request_needs_a_config_and_nothing_unknown() {
        assert_eq!(code("{}"), "invalid_body");
        assert_eq!(code(r#"{"config":"a: 1","extra":1}"#), "invalid_body");
        assert_eq!(code(r#"{"config":""}"#), "empty_config");
        let long = format!(r#"{{"config":"{}"}}"#, "x".repeat(MAX_CONFIG_CHARS + 1));
        assert_eq!(code(&long), "config_too_long");
    }

    #[test]
    fn each_selection_field_has_its_rule() {
        assert_eq!(code(r#"{"config":"a","name":".x"}"#), "invalid_name");
        assert_eq!(code(r#"{"config":"a","name":"a/b"}"#), "invalid_name");
        assert_eq!(code(r#"{"config":"a","since":"0d"}"#), "invalid_since");
        assert_eq!(
            code(r#"{"config":"a","thread_ids":["a b"]}"#),
            "invalid_thread_id"
        );
        let many = format!(r#"{{"config":"a","thread_ids":{:?}}}"#, vec!["t"; 101]);
        assert_eq!(code(&many), "too_many_threads");
        assert_eq!(code(r#"{"config":"a","limit":0}"#), "invalid_limit");
        assert_eq!(code(r#"{"config":"a","limit":1000001}"#), "invalid_limit");
        assert_eq!(code(r#"{"config":"a","limit":1.5}"#), "invalid_limit");
        assert_eq!(code(r#"{"config":"a","limit":-3}"#), "invalid_limit");
        assert_eq!(code(r#"{"config":"a","limit":"5"}"#), "invalid_body");
    }

    #[test]
    fn a_full_request_is_read() {
        let (run, selection) = parse_request(
            br#"{"config":"agents: []","name":"new.yaml","since":"7d","thread_ids":["t-1"],"limit":5}"#,
        )
        .unwrap();
        assert_eq!(run.name, "new.yaml");
        assert_eq!(run.since, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(run.threads.len(), 1);
        assert_eq!(run.limit, Some(5));
        assert_eq!(selection.since.as_deref(), Some("7d"));
        let (run, _) = parse_request(br#"{"config":"x","since":null,"limit":null}"#).unwrap();
        assert_eq!(run.name, "config.yaml");
        // JSON Schema's integers include 187.0 (schemathesis sent it).
        let (run, selection) = parse_request(br#"{"config":"x","limit":187.0}"#).unwrap();
        assert_eq!((run.limit, selection.limit), (Some(187), Some(187)));
    }

    #[test]
    fn a_name_is_a_plain_file_name() {
        assert!(valid_name("new.yaml") && valid_name("_a-b.c") && valid_name("a"));
        for bad in ["", ".hidden", "-x", "a/b", "..", "a b", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
