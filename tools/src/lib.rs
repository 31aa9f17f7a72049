//! Tools: the HTTP operations of an OpenAPI 3.0 document that agents may call.
//! [`openapi`] turns a document into [`ToolSpec`]s (JSON-schema parameters, how to build
//! the request); [`http`] makes one call (URL, query and body from the arguments,
//! time-outs, size caps, failures classified); [`ssrf`] refuses private, loopback,
//! link-local and metadata addresses (after DNS resolution and on every redirect) unless
//! the host is allow-listed; [`reason`] says why a call failed in words a customer can
//! read. [`Toolbox`] ties them together and retries retryable
//! failures with exponential back-off (`backon`).

pub mod agents_config;
pub mod http;
pub mod import;
pub mod openapi;
pub mod published;
pub mod reason;
pub mod ssrf;
pub mod tls;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use clap::Args;
use common::events::ErrorCategory;
use serde_json::Value;

/// How tools are called.
#[derive(Debug, Clone, Args)]
pub struct ToolArgs {
    /// Base URL that replaces the `servers` of the OpenAPI document (e.g. where the demo
    /// shop API runs).
    #[arg(long, env = "TOOLS_BASE_URL")]
    pub tools_base_url: Option<String>,
    /// Hosts the SSRF guard lets through although they resolve to private or loopback
    /// addresses: comma-separated `host` or `host:port`.
    #[arg(long, env = "TOOLS_ALLOW_HOSTS", value_delimiter = ',')]
    pub tools_allow_hosts: Vec<String>,
    /// Time-out of one HTTP attempt of a tool call.
    #[arg(long, env = "TOOLS_TIMEOUT", default_value = "10s", value_parser = common::config::parse_duration)]
    pub tools_timeout: Duration,
    /// Largest response body read from a tool, in bytes; a larger one is a failure.
    #[arg(long, env = "TOOLS_MAX_RESPONSE_BYTES", default_value_t = 1024 * 1024)]
    pub tools_max_response_bytes: usize,
    /// Attempts of one tool call when it fails in a retryable way (time-out, connection
    /// error, 429, 5xx), with exponential back-off and jitter between them.
    #[arg(long, env = "TOOLS_ATTEMPTS", default_value_t = 3)]
    pub tools_attempts: u32,
    /// First back-off delay between attempts of a tool call (doubles each time).
    #[arg(long, env = "TOOLS_RETRY_DELAY", default_value = "200ms", value_parser = common::config::parse_duration)]
    pub tools_retry_delay: Duration,
}

/// An agent as an engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentCard {
    pub name: String,
    pub description: String,
    /// The agent's instructions (a model engine's system prompt).
    pub instructions: String,
}

/// A tool an agent may call, as an engine sees it: a function with JSON-schema parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    /// The tool's name: the operation id.
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments: an object schema.
    pub parameters: Value,
}

/// One callable operation.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// Operation id (or a stable generated one: `<method>_<path>`).
    pub name: String,
    pub description: String,
    /// HTTP method, upper case.
    pub method: String,
    /// Path template, e.g. `/orders/{order_id}`.
    pub path: String,
    /// JSON schema of the arguments (an object; path and query parameters as properties,
    /// a JSON request body as property `body`).
    pub parameters: Value,
}

impl ToolSpec {
    /// The tool as an engine sees it.
    pub fn def(&self) -> ToolDef {
        ToolDef {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }
}

/// What a successful call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResponse {
    pub status: u16,
    /// The JSON body (a non-JSON body becomes a JSON string).
    pub body: Value,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub category: ErrorCategory,
    /// The HTTP status, when the operation answered.
    pub status: Option<u16>,
    /// What went wrong, for operators: `HTTP 409: <the body>`, `timed out after 10s`.
    pub message: String,
    /// The API's own error message, when a 4xx answer's JSON body had one
    /// ([`reason::api_message`]): what the customer may be told.
    pub api_message: Option<String>,
}

impl ToolError {
    /// Why it failed, in words for the customer ([`reason::in_words`]).
    pub fn reason(&self) -> String {
        reason::in_words(self.api_message.as_deref(), self.status, self.category)
    }
}

/// A call and its retries.
#[derive(Debug, Clone, PartialEq)]
pub struct CallReport {
    pub result: Result<ToolResponse, ToolError>,
    /// HTTP attempts made.
    pub attempts: u32,
    /// From the first attempt to the last answer.
    pub elapsed: Duration,
}

/// The tools of one OpenAPI document, ready to call.
#[derive(Debug)]
pub struct Toolbox {
    specs: Vec<ToolSpec>,
    /// How to build each spec's request, in the same order as `specs`.
    operations: Vec<openapi::Operation>,
    base_url: reqwest::Url,
    client: reqwest::Client,
    guard: ssrf::Guard,
    limits: http::Limits,
    attempts: u32,
    retry_delay: Duration,
}

/// Why a document cannot become tools.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error("invalid OpenAPI document: {0}")]
    Invalid(String),
}

/// An HTTP client whose every connection and redirect goes through `guard`.
pub fn guarded_client(guard: &ssrf::Guard) -> Result<reqwest::Client, String> {
    // https verifies with the system's root certificates (rustls platform verifier).
    crate::tls::install_crypto_provider();
    reqwest::Client::builder()
        // A proxy would connect on our behalf to addresses the guard never saw.
        .no_proxy()
        .dns_resolver(guard.resolver())
        .redirect(guard.redirect_policy())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

impl Toolbox {
    /// Reads an OpenAPI 3.0 document (JSON or YAML text).
    pub fn from_openapi(document: &str, args: &ToolArgs) -> Result<Toolbox, ToolsError> {
        let document = openapi::parse(document, args.tools_base_url.as_deref())?;
        let guard = ssrf::Guard::new(&args.tools_allow_hosts).map_err(ToolsError::Invalid)?;
        let client = guarded_client(&guard).map_err(ToolsError::Invalid)?;
        Ok(Toolbox {
            specs: document.operations.iter().map(|o| o.spec.clone()).collect(),
            operations: document.operations,
            base_url: document.base_url,
            client,
            guard,
            limits: http::Limits {
                timeout: args.tools_timeout,
                max_response_bytes: args.tools_max_response_bytes,
            },
            attempts: args.tools_attempts.max(1),
            retry_delay: args.tools_retry_delay,
        })
    }

    /// The same tools with names resolved by `lookup` instead of the system resolver
    /// (tests: scripted DNS answers, rebinding).
    pub fn with_lookup(
        self,
        lookup: std::sync::Arc<dyn ssrf::Lookup>,
    ) -> Result<Toolbox, ToolsError> {
        let guard = self.guard.with_lookup(lookup);
        let client = guarded_client(&guard).map_err(ToolsError::Invalid)?;
        Ok(Toolbox {
            guard,
            client,
            ..self
        })
    }

    /// The tool with this name.
    pub fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.specs.iter().find(|spec| spec.name == name)
    }

    /// Every tool, in document order.
    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        self.base_url.as_str()
    }

    /// Calls a tool, retrying retryable failures with back-off; `idempotency_key` is sent
    /// as `Idempotency-Key` (the same on every attempt).
    #[tracing::instrument(skip_all, fields(tool = name))]
    pub async fn call(
        &self,
        name: &str,
        params: &Value,
        idempotency_key: Option<&str>,
    ) -> CallReport {
        let refused = |error| CallReport {
            result: Err(error),
            attempts: 0,
            elapsed: Duration::ZERO,
        };
        let Some(operation) = self.operations.iter().find(|o| o.spec.name == name) else {
            return refused(http::not_retryable(format!("no tool named `{name}`")));
        };
        let request = match http::prepare(&self.base_url, operation, params) {
            Ok(request) => request,
            Err(error) => return refused(error),
        };
        // The URL is the same on every attempt: checked once, and a refused address gets
        // no request at all.
        if let Err(refusal) = self.guard.check_url(&request.url) {
            return refused(http::not_retryable(refusal.to_string()));
        }

        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry_delay)
            .with_max_times(self.attempts as usize - 1)
            .with_jitter();
        let started = Instant::now();
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            http::send(&self.client, &request, idempotency_key, self.limits).await
        })
        .retry(backoff)
        .when(|error: &ToolError| error.category == ErrorCategory::Retryable)
        .notify(|error, delay| {
            tracing::debug!(error = %error, ?delay, "tool call failed; retrying");
        })
        .await;
        CallReport {
            result,
            attempts: attempts.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        }
    }
}
