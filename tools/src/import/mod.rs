//! The one OpenAPI reader, and importing a document for review: the text (JSON or YAML,
//! OpenAPI 3.0.x or 3.1.x) becomes a list of [`ImportedOperation`]s — the operations the
//! agents config's tools, an import and the published tools all come from — each
//! classified `read`, `write` or `destructive` with the reasons, and with a suggested
//! agent ([`import`]; the tools use [`read`] alone). [`document`] reads the text
//! within the limits (size, YAML alias expansion, version) and resolves local `$ref`s;
//! [`extract`] walks `paths` (one version-neutral walker for 3.0 and 3.1); [`classify`]
//! applies the rule table of `docs/openapi-import.md`; [`fetch`] downloads a document
//! from a URL through the SSRF guard. Every refusal is an [`ImportError`] with a stable
//! code.

pub mod classify;
pub mod document;
pub mod extract;
pub mod fetch;

use common::events::Permission;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use classify::AgentHint;

/// Largest document accepted, in bytes (an import's, and the agents config's tools document).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// Most operations in one document.
pub const MAX_OPERATIONS: usize = 1000;
/// Longest chain of `$ref`s (reference to reference, or schema inside referenced schema).
pub const MAX_REF_DEPTH: usize = 32;
/// Most JSON values the inlined schemas of one document may add up to: references that
/// each reference others twice would otherwise grow exponentially.
pub const MAX_INLINED_VALUES: usize = 1_000_000;

/// A document read, its operations extracted and classified.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Imported {
    /// The document's `openapi` field, e.g. `3.0.3` or `3.1.0`.
    pub version: String,
    /// `info.title`.
    pub title: String,
    /// What the reviewer should know that is not an error (e.g. webhooks not imported).
    pub notes: Vec<String>,
    pub operations: Vec<ImportedOperation>,
}

/// One HTTP operation of an imported document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportedOperation {
    /// The document's `operationId`, or `<method>_<path>` when it has none.
    pub operation_id: String,
    /// Whether `operation_id` was generated.
    pub generated_id: bool,
    /// Upper case: `GET`, `POST`, …
    pub method: String,
    /// Path template, e.g. `/orders/{order_id}`.
    pub path: String,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Path, query, header and cookie parameters, `$ref`s inlined.
    pub parameters: Vec<Parameter>,
    /// The request body, `$ref`s inlined.
    pub request_body: Option<RequestBody>,
    /// Base URLs (the operation's, else its path's, else the document's), variables
    /// replaced by their defaults.
    pub servers: Vec<String>,
    /// The suggested class.
    pub class: Permission,
    /// Why it got its class, for people.
    pub reasons: Vec<String>,
    /// The agent whose name or routing keywords match a tag or path word.
    pub suggested_agent: Option<String>,
    /// Why that agent (empty when none).
    pub agent_reason: Option<String>,
    /// Why the operation cannot be called, when it cannot: a `$ref` in its parameters or
    /// request body points at nothing (vendors publish such documents). The rest of the
    /// document imports; this one is listed for review but never becomes a tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unusable: Option<String>,
}

impl ImportedOperation {
    /// Whether it can become a tool (no [`ImportedOperation::unusable`] reason).
    pub fn is_usable(&self) -> bool {
        self.unusable.is_none()
    }
}

/// One parameter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Parameter {
    pub name: String,
    /// `path`, `query`, `header` or `cookie`.
    #[serde(rename = "in")]
    pub location: String,
    pub required: bool,
    pub description: Option<String>,
    /// JSON schema (`{}` when the document gives none).
    pub schema: Value,
}

/// A request body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestBody {
    pub required: bool,
    /// The media type the schema is for (JSON preferred).
    pub content_type: String,
    pub schema: Value,
}

/// Why a document was refused. [`ImportError::code`] is the stable name clients see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// `size` says how large: `5000000 bytes`, or `larger` when a download was cut off.
    #[error("the document is {size}; the limit is {MAX_DOCUMENT_BYTES} bytes")]
    DocumentTooLarge { size: String },
    /// Not JSON/YAML, or not a valid OpenAPI document; the message names where.
    #[error("{0}")]
    InvalidDocument(String),
    #[error(
        "the YAML expands to far more than its text (anchors and aliases repeated): refused as an alias bomb"
    )]
    YamlAliasBomb,
    #[error("Swagger 2.0 is not supported; convert the document to OpenAPI 3.0 or 3.1 first")]
    Swagger2NotSupported,
    #[error("OpenAPI {0} is not supported; 3.0.x and 3.1.x are")]
    UnsupportedVersion(String),
    #[error(
        "{at}: `$ref: {reference}` points outside the document; only local `#/…` references are supported"
    )]
    ExternalRefNotSupported { at: String, reference: String },
    #[error("{at}: `$ref: {reference}` points at nothing")]
    RefNotFound { at: String, reference: String },
    #[error("{at}: `$ref: {reference}` refers to itself through other references only")]
    RefCycle { at: String, reference: String },
    #[error("{at}: more than {MAX_REF_DEPTH} nested `$ref`s")]
    RefTooDeep { at: String },
    #[error("the inlined schemas exceed {MAX_INLINED_VALUES} values (references that fan out)")]
    RefExpansionLimit,
    #[error("the document has more than {MAX_OPERATIONS} operations")]
    TooManyOperations,
    #[error("{at}: operation id `{id}` is used twice")]
    DuplicateOperationId { at: String, id: String },
    /// A URL import: the URL is not http(s) or the SSRF guard refused its address.
    #[error("{0}")]
    UrlRefused(String),
    /// A URL import: the fetch failed (connection, status, time-out, size).
    #[error("{0}")]
    FetchFailed(String),
}

impl ImportError {
    /// The stable name of the error (`docs/openapi-import.md` lists them all).
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::DocumentTooLarge { .. } => "document_too_large",
            ImportError::InvalidDocument(_) => "invalid_document",
            ImportError::YamlAliasBomb => "yaml_alias_bomb",
            ImportError::Swagger2NotSupported => "swagger_2_not_supported",
            ImportError::UnsupportedVersion(_) => "unsupported_version",
            ImportError::ExternalRefNotSupported { .. } => "external_ref_not_supported",
            ImportError::RefNotFound { .. } => "ref_not_found",
            ImportError::RefCycle { .. } => "ref_cycle",
            ImportError::RefTooDeep { .. } => "ref_too_deep",
            ImportError::RefExpansionLimit => "ref_expansion_limit",
            ImportError::TooManyOperations => "too_many_operations",
            ImportError::DuplicateOperationId { .. } => "duplicate_operation_id",
            ImportError::UrlRefused(_) => "url_refused",
            ImportError::FetchFailed(_) => "fetch_failed",
        }
    }

    /// Every code, for the docs test.
    pub const CODES: [&'static str; 14] = [
        "document_too_large",
        "invalid_document",
        "yaml_alias_bomb",
        "swagger_2_not_supported",
        "unsupported_version",
        "external_ref_not_supported",
        "ref_not_found",
        "ref_cycle",
        "ref_too_deep",
        "ref_expansion_limit",
        "too_many_operations",
        "duplicate_operation_id",
        "url_refused",
        "fetch_failed",
    ];
}

/// Reads a document and extracts its operations, not classified (no I/O: the text is
/// given); also the document's first server, when it has one.
pub fn read(text: &str) -> Result<(Imported, Option<String>), ImportError> {
    let document = document::read(text)?;
    let server = extract::servers(document.root.get("servers"), "/servers")?
        .into_iter()
        .next();
    Ok((extract::operations(&document)?, server))
}

/// Reads, extracts and classifies a document (no I/O: the text is given).
pub fn import(text: &str, agents: &[AgentHint]) -> Result<Imported, ImportError> {
    let (mut imported, _) = read(text)?;
    for operation in &mut imported.operations {
        classify::classify(operation, agents);
    }
    Ok(imported)
}

#[cfg(test)]
mod tests;
