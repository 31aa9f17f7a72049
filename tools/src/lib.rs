//! Tools: the HTTP operations of an OpenAPI 3.0 or 3.1 document that agents may call.
//! [`import`] is the one OpenAPI reader: a document becomes `ImportedOperation`s (for the
//! agents config's document, an import for review and the published tools alike);
//! [`operation`] turns one into the [`ToolSpec`] an engine sees (JSON-schema parameters)
//! and says where each argument goes; [`http`] makes one call (URL, query and body from
//! the arguments, time-outs, size caps, failures classified); [`ssrf`] refuses private,
//! loopback, link-local and metadata addresses (after DNS resolution and on every
//! redirect) unless the host is allow-listed; [`reason`] says why a call failed in words a
//! customer can read. [`Toolbox`] ties them together and retries
//! retryable failures with exponential back-off (`backon`); [`published`] is the tool
//! set a publish stores, [`agents_config`] the agents that call the tools.

pub mod agents_config;
pub mod http;
pub mod import;
pub mod operation;
pub mod published;
pub mod reason;
pub mod ssrf;
pub mod tls;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use clap::Args;
use common::events::ErrorCategory;
use import::ImportedOperation;
use reqwest::Url;
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

/// The tools of one OpenAPI document (or of published operations), ready to call.
#[derive(Debug)]
pub struct Toolbox {
    specs: Vec<ToolSpec>,
    /// How to build each spec's request, in the same order as `specs`.
    operations: Vec<ImportedOperation>,
    /// Operations of the document that cannot be tools, and why (`(operation id, reason)`).
    unusable: Vec<(String, String)>,
    base_url: Url,
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
    /// Reads an OpenAPI 3.0 or 3.1 document (JSON or YAML text); requests go to
    /// `TOOLS_BASE_URL`, else to the document's first server.
    pub fn from_openapi(document: &str, args: &ToolArgs) -> Result<Toolbox, ToolsError> {
        let (document, server) =
            import::read(document).map_err(|e| ToolsError::Invalid(e.to_string()))?;
        Toolbox::from_operations(server.as_deref(), document.operations, args)
    }

    /// The tools of operations the reader produced (e.g. published ones), served at
    /// `base_url` unless `TOOLS_BASE_URL` replaces it.
    pub fn from_operations(
        base_url: Option<&str>,
        operations: Vec<ImportedOperation>,
        args: &ToolArgs,
    ) -> Result<Toolbox, ToolsError> {
        let base_url = match (&args.tools_base_url, base_url) {
            (Some(url), _) => parse_base_url(url, "TOOLS_BASE_URL")?,
            (None, Some(url)) => parse_base_url(url, "the first `servers` URL")?,
            (None, None) => {
                return Err(ToolsError::Invalid(
                    "no `servers` entry; set TOOLS_BASE_URL to say where the API runs".into(),
                ));
            }
        };
        // An unusable operation (a `$ref` to nothing) is no tool: its name is kept so a
        // config that names it is refused with the reason (`AgentsConfig::check_tools`).
        let (operations, unusable): (Vec<_>, Vec<_>) = operations
            .into_iter()
            .partition(ImportedOperation::is_usable);
        let unusable = unusable
            .into_iter()
            .map(|op| (op.operation_id, op.unusable.unwrap_or_default()))
            .collect();
        let mut specs: Vec<ToolSpec> = Vec::with_capacity(operations.len());
        for op in &operations {
            let spec = operation::spec(op).map_err(ToolsError::Invalid)?;
            if specs.iter().any(|s| s.name == spec.name) {
                return Err(ToolsError::Invalid(format!(
                    "two operations are named `{}`",
                    spec.name
                )));
            }
            specs.push(spec);
        }
        let guard = ssrf::Guard::new(&args.tools_allow_hosts).map_err(ToolsError::Invalid)?;
        let client = guarded_client(&guard).map_err(ToolsError::Invalid)?;
        Ok(Toolbox {
            specs,
            operations,
            unusable,
            base_url,
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

    /// What the agents config may say of one name: a tool, an unusable operation, nothing.
    pub fn lookup(&self, name: &str) -> agents_config::ToolLookup {
        if self.spec(name).is_some() {
            return agents_config::ToolLookup::Found;
        }
        match self.unusable.iter().find(|(id, _)| id == name) {
            Some((_, reason)) => agents_config::ToolLookup::Unusable(reason.clone()),
            None => agents_config::ToolLookup::Missing,
        }
    }

    /// The operations of the document that are not tools, with why: `(operation id, reason)`.
    pub fn unusable(&self) -> &[(String, String)] {
        &self.unusable
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
        let Some(operation) = self.operations.iter().find(|o| o.operation_id == name) else {
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

/// A base URL requests can go to: absolute, http(s), with a host.
fn parse_base_url(url: &str, what: &str) -> Result<Url, ToolsError> {
    let parsed = Url::parse(url).map_err(|e| {
        ToolsError::Invalid(format!(
            "{what} `{url}` is not an absolute URL ({e}); set TOOLS_BASE_URL to say where the API runs"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ToolsError::Invalid(format!(
            "{what} `{url}` is not an http(s) URL with a host"
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(base_url: Option<&str>) -> ToolArgs {
        ToolArgs {
            tools_base_url: base_url.map(str::to_owned),
            tools_allow_hosts: vec![],
            tools_timeout: Duration::from_secs(1),
            tools_max_response_bytes: 1024,
            tools_attempts: 1,
            tools_retry_delay: Duration::from_millis(1),
        }
    }

    const DOC: &str = r##"
openapi: 3.0.3
info: { title: t, version: "1" }
servers: [{ url: "https://{region}.example.com/v1", variables: { region: { default: eu } } }]
paths:
  /orders/{order_id}:
    parameters:
      - $ref: "#/components/parameters/OrderId"
    get:
      operationId: getOrder
      summary: Look up an order
      parameters:
        - { name: verbose, in: query, schema: { type: boolean } }
        - { name: X-Trace, in: header, schema: { type: string } }
      responses: { "200": { description: ok } }
    post:
      description: Replace an order
      requestBody:
        $ref: "#/components/requestBodies/Order"
      responses: { "200": { description: ok } }
components:
  parameters:
    OrderId: { name: order_id, in: path, required: true, description: The order, schema: { $ref: "#/components/schemas/Id" } }
  requestBodies:
    Order:
      description: The new order
      required: true
      content: { application/json: { schema: { $ref: "#/components/schemas/Order" } } }
  schemas:
    Id: { type: string, pattern: "^ORD-[0-9]+$" }
    Order: { type: object, properties: { id: { $ref: "#/components/schemas/Id" } } }
"##;

    const BILLING_3_1: &str = include_str!("../../fixtures/openapi/billing-3.1.yaml");

    fn error(text: &str) -> String {
        Toolbox::from_openapi(text, &args(None))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_unusable_operation_is_no_tool_and_its_reason_is_kept() {
        let vendor = include_str!("../../fixtures/openapi/vendor-missing-ref-3.0.yaml");
        let tools = Toolbox::from_openapi(vendor, &args(None)).unwrap();
        let names: Vec<&str> = tools.specs().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["listShipments", "getShipment", "getRates"]);
        assert_eq!(
            tools.lookup("getShipment"),
            agents_config::ToolLookup::Found
        );
        let agents_config::ToolLookup::Unusable(reason) = tools.lookup("createShipment") else {
            panic!("createShipment: {:?}", tools.lookup("createShipment"));
        };
        assert!(
            reason.starts_with(
                "`#/components/schemas/DoesNotExist` does not exist (at /paths/~1shipments/post/"
            ),
            "{reason}"
        );
        assert_eq!(tools.lookup("nothing"), agents_config::ToolLookup::Missing);
        assert_eq!(tools.unusable().len(), 1);
    }

    #[test]
    fn path_and_query_parameters_become_properties_with_their_schema() {
        let tools = Toolbox::from_openapi(DOC, &args(None)).unwrap();
        assert_eq!(
            tools.spec("getOrder").unwrap().parameters,
            json!({
                "type": "object",
                "properties": {
                    "order_id": { "type": "string", "pattern": "^ORD-[0-9]+$", "description": "The order" },
                    "verbose": { "type": "boolean" },
                },
                "required": ["order_id"],
            })
        );
    }

    #[test]
    fn a_json_request_body_becomes_the_body_property_with_refs_inlined() {
        let tools = Toolbox::from_openapi(DOC, &args(None)).unwrap();
        let spec = tools.spec("post_orders_order_id").unwrap();
        assert_eq!(spec.description, "Replace an order");
        assert_eq!(
            spec.parameters["properties"]["body"],
            json!({
                "type": "object",
                "properties": { "id": { "type": "string", "pattern": "^ORD-[0-9]+$" } },
                "description": "The new order",
            })
        );
        assert_eq!(spec.parameters["required"], json!(["order_id", "body"]));
    }

    #[test]
    fn the_base_url_is_the_first_server_or_the_setting() {
        let from_document = Toolbox::from_openapi(DOC, &args(None)).unwrap();
        assert_eq!(from_document.base_url(), "https://eu.example.com/v1");
        let from_setting =
            Toolbox::from_openapi(DOC, &args(Some("http://127.0.0.1:8090"))).unwrap();
        assert_eq!(from_setting.base_url(), "http://127.0.0.1:8090/");
    }

    #[test]
    fn a_relative_or_missing_server_url_names_the_setting() {
        let relative = error(&DOC.replace("https://{region}.example.com/v1", "/api"));
        assert!(
            relative.contains("`/api` is not an absolute URL")
                && relative.contains("TOOLS_BASE_URL"),
            "{relative}"
        );
        let servers = DOC.lines().find(|l| l.starts_with("servers:")).unwrap();
        let missing = error(&DOC.replace(servers, ""));
        assert!(
            missing.contains("no `servers` entry; set TOOLS_BASE_URL"),
            "{missing}"
        );
    }

    #[test]
    fn an_operation_whose_arguments_cannot_be_placed_is_invalid() {
        let twice = error(&DOC.replace("name: verbose, in: query", "name: order_id, in: query"));
        assert!(
            twice.contains("operation `getOrder`: parameter `order_id` appears twice"),
            "{twice}"
        );
        let outside = error(&DOC.replace("/orders/{order_id}:", "/orders:"));
        assert!(
            outside.contains("path parameter `order_id` is not in the path"),
            "{outside}"
        );
    }

    #[test]
    fn a_document_the_reader_refuses_is_invalid_with_its_reason() {
        assert!(error("swagger: '2.0'\ninfo: {}\npaths: {}").contains("Swagger 2.0"));
        assert!(error("- just\n- a list").contains("not an object"));
        let cycle = DOC.replace(
            "Id: { type: string, pattern: \"^ORD-[0-9]+$\" }",
            "Id: { $ref: \"#/components/schemas/Loop\" }\n    Loop: { $ref: \"#/components/schemas/Id\" }",
        );
        assert!(
            error(&cycle).contains("refers to itself"),
            "{}",
            error(&cycle)
        );
    }

    #[test]
    fn an_openapi_3_1_document_gives_tools() {
        let tools = Toolbox::from_openapi(BILLING_3_1, &args(None)).unwrap();
        assert_eq!(tools.base_url(), "https://api.billing.example/");
        let void = tools.spec("voidInvoice").unwrap();
        assert_eq!(
            (void.method.as_str(), void.path.as_str()),
            ("POST", "/invoices/{invoice_id}/void")
        );
        assert_eq!(void.parameters["required"], json!(["invoice_id"]));
    }

    #[test]
    fn a_3_1_nullable_type_list_is_a_tool_parameter_schema() {
        let tools = Toolbox::from_openapi(BILLING_3_1, &args(None)).unwrap();
        assert_eq!(
            tools.spec("listInvoices").unwrap().parameters,
            json!({
                "type": "object",
                "properties": { "customer": { "type": ["string", "null"] } },
            })
        );
    }

    /// What an engine sees of every tool: the OpenAI engine sends these as its functions.
    fn seen_by_engines(tools: &Toolbox) -> Value {
        tools
            .specs()
            .iter()
            .map(|s| json!([s.name, s.description, s.method, s.path, s.parameters]))
            .collect()
    }

    #[test]
    fn the_shop_tools_keep_their_names_order_and_parameters() {
        let shop = include_str!("../../fixtures/shop-openapi.yaml");
        let tools = Toolbox::from_openapi(shop, &args(None)).unwrap();
        let order_id = json!({
            "type": "string", "pattern": "^ORD-[0-9]+$",
            "description": "The order's id, e.g. ORD-1001",
        });
        let by_order = json!({
            "type": "object", "properties": {"order_id": order_id}, "required": ["order_id"],
        });
        assert_eq!(
            seen_by_engines(&tools),
            json!([
                ["listProducts", "List every product with its price and whether it is in stock",
                 "GET", "/products", {"type": "object", "properties": {}}],
                ["getProduct", "Look up one product by its id", "GET", "/products/{product_id}", {
                    "type": "object",
                    "properties": {"product_id": {
                        "type": "string", "pattern": "^PRD-[0-9]+$",
                        "description": "The product's id, e.g. PRD-1",
                    }},
                    "required": ["product_id"],
                }],
                ["getOrder", "Look up an order, its items, total and status",
                 "GET", "/orders/{order_id}", by_order],
                ["deleteOrder", "Delete an order for good (cannot be undone)",
                 "DELETE", "/orders/{order_id}", by_order],
                ["cancelOrder", "Cancel an order that has not shipped yet (status processing)",
                 "POST", "/orders/{order_id}/cancel", by_order],
                ["refundOrder", "Refund an order that was shipped or delivered",
                 "POST", "/orders/{order_id}/refund", {
                    "type": "object",
                    "properties": {
                        "order_id": order_id,
                        "body": {"type": "object", "properties": {"reason": {
                            "type": "string", "description": "Why the customer wants the refund",
                        }}},
                    },
                    "required": ["order_id"],
                }],
            ])
        );
    }
}
