//! One HTTP attempt of a tool call: [`prepare`] checks the arguments against the
//! operation and builds the URL (path parameters percent-encoded, query parameters
//! appended) and the JSON body, once per call; [`send`] makes one attempt with a time-out,
//! reads the body in chunks up to a cap, and classifies the outcome.

use std::time::Duration;

use common::events::ErrorCategory;
use reqwest::{Client, Method, Url};
use serde_json::{Map, Value};

use super::import::ImportedOperation;
use super::operation::Location;
#[cfg(doc)]
use super::ssrf::Guard;
use super::ssrf::Refused;
use super::{ToolError, ToolResponse};

/// Characters of a 4xx body quoted in the error message.
const EXCERPT_CHARS: usize = 200;

/// A request ready to send (and to send again).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub method: Method,
    pub url: Url,
    pub body: Option<Value>,
}

/// Per-attempt limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

pub(crate) fn not_retryable(message: impl Into<String>) -> ToolError {
    ToolError {
        category: ErrorCategory::NotRetryable,
        status: None,
        message: message.into(),
        api_message: None,
    }
}

fn retryable(message: impl Into<String>) -> ToolError {
    ToolError {
        category: ErrorCategory::Retryable,
        status: None,
        message: message.into(),
        api_message: None,
    }
}

/// Checks `params` against the operation and builds its request. Invalid arguments are
/// the caller's mistake: not retryable, and no request is made.
pub fn prepare(base: &Url, op: &ImportedOperation, params: &Value) -> Result<Prepared, ToolError> {
    let name = &op.operation_id;
    let args: &Map<String, Value> = match params {
        Value::Object(args) => args,
        // A tool without arguments may be called with none.
        Value::Null => &Map::new(),
        other => {
            return Err(not_retryable(format!(
                "arguments of `{name}` must be a JSON object, not {other}"
            )));
        }
    };

    let mut path = op.path.clone();
    let mut query = Vec::new();
    for argument in op.arguments() {
        let param = argument.parameter;
        let value = match args.get(&param.name) {
            None | Some(Value::Null) if param.required => {
                return Err(not_retryable(format!(
                    "`{name}` needs argument `{}`",
                    param.name
                )));
            }
            None | Some(Value::Null) => continue,
            Some(value) => value,
        };
        if let Some(kind) = argument.kind
            && !kind.accepts(value)
        {
            return Err(not_retryable(format!(
                "argument `{}` of `{name}` must be {}, not {value}",
                param.name,
                kind.as_str()
            )));
        }
        match argument.location {
            Location::Path => {
                let text = scalar_text(value).ok_or_else(|| {
                    not_retryable(format!(
                        "argument `{}` of `{name}` must be a string, number or boolean",
                        param.name
                    ))
                })?;
                // URL parsing resolves `.` and `..` segments even percent-encoded
                // (WHATWG URL): they would climb out of the operation's path.
                if matches!(text.as_str(), "" | "." | "..") {
                    return Err(not_retryable(format!(
                        "argument `{}` of `{name}` cannot be empty, `.` or `..`",
                        param.name
                    )));
                }
                path = path.replace(&format!("{{{}}}", param.name), &encode_segment(&text));
            }
            Location::Query => match value {
                // `form` style, `explode: true` (the OpenAPI default): one pair per item.
                Value::Array(items) => {
                    for item in items {
                        query.push((param.name.clone(), text_of(item)));
                    }
                }
                other => query.push((param.name.clone(), text_of(other))),
            },
        }
    }

    let body = match (op.json_body().map(|b| b.required), args.get("body")) {
        (Some(true), None | Some(Value::Null)) => {
            return Err(not_retryable(format!("`{name}` needs argument `body`")));
        }
        (Some(_), Some(body)) if !body.is_null() => Some(body.clone()),
        _ => None,
    };

    // The base URL's path is a prefix: `http://h/api` + `/orders/1` → `http://h/api/orders/1`.
    let joined = format!("{}{path}", base.as_str().trim_end_matches('/'));
    let mut url = Url::parse(&joined)
        .map_err(|e| not_retryable(format!("cannot build a URL from `{joined}`: {e}")))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    let method = Method::from_bytes(op.method.as_bytes())
        .map_err(|e| not_retryable(format!("method `{}`: {e}", op.method)))?;
    Ok(Prepared { method, url, body })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text_of(value: &Value) -> String {
    scalar_text(value).unwrap_or_else(|| value.to_string())
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so an argument cannot
/// add path segments (`../admin`) or a query.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One attempt: the request and the body read up to the cap, within the time-out; the
/// outcome classified. The caller has checked the URL with [`Guard::check_url`]; names
/// and redirects are checked by the client's resolver and redirect policy.
pub async fn send(
    client: &Client,
    request: &Prepared,
    idempotency_key: Option<&str>,
    limits: Limits,
) -> Result<ToolResponse, ToolError> {
    let attempt = async {
        let mut builder = client
            .request(request.method.clone(), request.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let cap = limits.max_response_bytes;
        let too_large = || ToolError {
            status: Some(status),
            ..not_retryable(format!("response larger than {cap} bytes"))
        };
        if response.content_length().is_some_and(|n| n > cap as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if bytes.len() + chunk.len() > cap {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(limits.timeout, attempt)
        .await
        .map_err(|_| retryable(format!("timed out after {:?}", limits.timeout)))??;

    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    match status {
        200..=299 => Ok(ToolResponse { status, body }),
        429 | 500..=599 => Err(ToolError {
            status: Some(status),
            ..retryable(format!("HTTP {status}"))
        }),
        _ => Err(ToolError {
            status: Some(status),
            // A 4xx names the customer's request; its message may be shown to them. A 5xx
            // message describes the server's insides and is not.
            api_message: crate::reason::api_message(&body),
            ..not_retryable(format!("HTTP {status}: {}", excerpt(&bytes)))
        }),
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().count() > EXCERPT_CHARS {
        excerpt.push('…');
    }
    excerpt
}

/// A transport failure: refused by the guard (in the resolver or a redirect) → not
/// retryable; a time-out, connection or body read error → retryable.
fn classify(error: reqwest::Error) -> ToolError {
    let chain = chain(&error);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return not_retryable(refused.to_string());
        }
        source = cause.source();
    }
    if error.is_builder() || error.is_redirect() {
        not_retryable(chain)
    } else if error.is_timeout() {
        retryable(format!("timed out: {chain}"))
    } else if error.is_connect() {
        retryable(format!("connection failed: {chain}"))
    } else {
        retryable(chain)
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DOC: &str = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
servers: [{ url: "http://api.example.com/v1/" }]
paths:
  /orders/{order_id}/items:
    post:
      operationId: addItem
      parameters:
        - { name: order_id, in: path, required: true, schema: { type: string } }
        - { name: count, in: query, schema: { type: integer } }
        - { name: tag, in: query, schema: { type: array, items: { type: string } } }
      requestBody:
        required: true
        content: { application/json: { schema: { type: object } } }
      responses: { "200": { description: ok } }
"#;

    fn prepare_with(params: Value) -> Result<Prepared, ToolError> {
        prepare_in(DOC, params)
    }

    fn prepare_in(document: &str, params: Value) -> Result<Prepared, ToolError> {
        let (doc, server) = crate::import::read(document).unwrap();
        let base = Url::parse(&server.unwrap()).unwrap();
        prepare(&base, &doc.operations[0], &params)
    }

    #[test]
    fn path_query_and_body_are_built_from_the_arguments() {
        let request = prepare_with(json!({
            "order_id": "ORD 1/../x", "count": 2, "tag": ["a", "b&c"], "body": { "sku": "PRD-1" }
        }))
        .unwrap();
        assert_eq!(
            request.url.as_str(),
            "http://api.example.com/v1/orders/ORD%201%2F..%2Fx/items?count=2&tag=a&tag=b%26c"
        );
        assert_eq!(request.body, Some(json!({ "sku": "PRD-1" })));
        assert_eq!(request.method, Method::POST);
    }

    #[test]
    fn a_missing_required_argument_is_not_retryable() {
        let error = prepare_with(json!({ "body": {} })).unwrap_err();
        assert_eq!(error.category, ErrorCategory::NotRetryable);
        assert!(error.message.contains("order_id"));
        assert!(
            prepare_with(json!({ "order_id": "1" }))
                .unwrap_err()
                .message
                .contains("body")
        );
    }

    #[test]
    fn arguments_that_are_not_an_object_are_not_retryable() {
        let error = prepare_with(json!(["ORD-1"])).unwrap_err();
        assert!(error.message.contains("JSON object"));
    }

    #[test]
    fn a_query_argument_of_the_wrong_type_is_not_retryable() {
        let error =
            prepare_with(json!({ "order_id": "1", "count": "two", "body": {} })).unwrap_err();
        assert!(error.message.contains("an integer"), "{}", error.message);
    }

    #[test]
    fn a_3_1_nullable_type_list_checks_the_type_and_takes_null_as_absent() {
        let document = DOC
            .replace("openapi: 3.0.3", "openapi: 3.1.0")
            .replace("{ type: integer }", r#"{ type: [integer, "null"] }"#);
        let error = prepare_in(
            &document,
            json!({ "order_id": "1", "count": "two", "body": {} }),
        )
        .unwrap_err();
        assert!(error.message.contains("an integer"), "{}", error.message);
        let request = prepare_in(
            &document,
            json!({ "order_id": "1", "count": null, "body": {} }),
        )
        .unwrap();
        assert_eq!(request.url.query(), None);
    }

    #[test]
    fn a_path_argument_cannot_be_a_dot_segment_or_empty() {
        for value in ["..", ".", ""] {
            let error = prepare_with(json!({ "order_id": value, "body": {} })).unwrap_err();
            assert_eq!(error.category, ErrorCategory::NotRetryable);
        }
    }
}
