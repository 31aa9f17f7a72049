//! An OpenAPI 3.0 document (JSON or YAML) becomes one [`Operation`] per HTTP operation:
//! the [`ToolSpec`] an engine sees (a JSON-schema object of the arguments) and what
//! [`super::http`] needs to build the request (which argument goes in the path, the query
//! or the body). Local `#/components/...` references are inlined, with a bounded depth
//! and a bounded number of expansions, so a hostile document cannot loop or explode.

use std::collections::HashSet;

use openapiv3::{OpenAPI, Parameter, ParameterSchemaOrContent, ReferenceOr, RequestBody};
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{ToolSpec, ToolsError};

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// Longest chain of `$ref`s followed from one place.
pub const MAX_REF_DEPTH: usize = 32;
/// Most `$ref`s inlined in one document: references that each reference others twice
/// would otherwise grow the schemas exponentially.
pub const MAX_REF_EXPANSIONS: usize = 10_000;

/// Where an argument goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

/// The JSON type a path or query argument must have, when its schema names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primitive {
    String,
    Integer,
    Number,
    Boolean,
    Array,
}

impl Primitive {
    fn from_schema(schema: &Value) -> Option<Primitive> {
        match schema.get("type")?.as_str()? {
            "string" => Some(Primitive::String),
            "integer" => Some(Primitive::Integer),
            "number" => Some(Primitive::Number),
            "boolean" => Some(Primitive::Boolean),
            "array" => Some(Primitive::Array),
            _ => None,
        }
    }

    /// Whether `value` has this type.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            Primitive::String => value.is_string(),
            Primitive::Integer => value.is_i64() || value.is_u64(),
            Primitive::Number => value.is_number(),
            Primitive::Boolean => value.is_boolean(),
            Primitive::Array => value.is_array(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Primitive::String => "a string",
            Primitive::Integer => "an integer",
            Primitive::Number => "a number",
            Primitive::Boolean => "a boolean",
            Primitive::Array => "an array",
        }
    }
}

/// A path or query parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub kind: Option<Primitive>,
}

/// One operation: what the engine sees and how to build its request.
#[derive(Debug, Clone)]
pub struct Operation {
    pub spec: ToolSpec,
    pub params: Vec<Param>,
    /// `Some(required)` when the operation takes a JSON body (argument `body`).
    pub body: Option<bool>,
}

/// A parsed document.
#[derive(Debug)]
pub struct Document {
    pub base_url: Url,
    pub operations: Vec<Operation>,
}

fn invalid(message: impl Into<String>) -> ToolsError {
    ToolsError::Invalid(message.into())
}

/// Parses `text`; `base_url` replaces the document's `servers` when given.
pub fn parse(text: &str, base_url: Option<&str>) -> Result<Document, ToolsError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(invalid(format!(
            "the document is {} bytes; the limit is {MAX_DOCUMENT_BYTES}",
            text.len()
        )));
    }
    // YAML is (nearly) a superset of JSON, but JSON parses faster and with better errors.
    let is_json = text.trim_start().starts_with('{');
    let raw: Value = if is_json {
        serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| invalid(format!("not YAML: {e}")))?
    };
    if !raw.is_object() {
        return Err(invalid("the document is not an object"));
    }
    if raw.get("swagger").is_some() {
        return Err(invalid(
            "Swagger 2.0 is not supported; convert it to OpenAPI 3.0 first",
        ));
    }
    match raw.get("openapi").and_then(Value::as_str) {
        Some(version) if version.starts_with("3.0") => {}
        Some(version) => {
            return Err(invalid(format!(
                "OpenAPI {version} is not supported; only 3.0.x is"
            )));
        }
        None => return Err(invalid("no `openapi` version field")),
    }
    // Parsed again from the text, not from `raw`: `serde_json::Value` sorts keys, and the
    // tools keep the document's order (`raw` only serves `$ref` lookups).
    let document: OpenAPI = if is_json {
        serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?
    };
    let base_url = match base_url {
        Some(url) => parse_base_url(url, "TOOLS_BASE_URL")?,
        None => {
            let server = document.servers.first().ok_or_else(|| {
                invalid("no `servers` entry; set TOOLS_BASE_URL to say where the API runs")
            })?;
            let mut url = server.url.clone();
            for (name, variable) in server.variables.iter().flatten() {
                url = url.replace(&format!("{{{name}}}"), &variable.default);
            }
            parse_base_url(&url, "the first `servers` URL")?
        }
    };

    let refs = Refs {
        raw: &raw,
        expansions: std::cell::Cell::new(0),
    };
    let mut operations = Vec::new();
    let mut names = HashSet::new();
    for (path, item) in document.paths.iter() {
        let ReferenceOr::Item(item) = item else {
            return Err(invalid(format!(
                "path `{path}`: path item references are not supported"
            )));
        };
        for (method, op) in item.iter() {
            let operation = operation(&refs, path, method, op, &item.parameters)?;
            if !names.insert(operation.spec.name.clone()) {
                return Err(invalid(format!(
                    "two operations are named `{}`",
                    operation.spec.name
                )));
            }
            operations.push(operation);
        }
    }
    Ok(Document {
        base_url,
        operations,
    })
}

fn parse_base_url(url: &str, what: &str) -> Result<Url, ToolsError> {
    let parsed = Url::parse(url).map_err(|e| {
        invalid(format!(
            "{what} `{url}` is not an absolute URL ({e}); set TOOLS_BASE_URL to say where the API runs"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(format!(
            "{what} `{url}` is not an http(s) URL with a host"
        )));
    }
    Ok(parsed)
}

/// `<method>_<path>` with every run of non-alphanumerics as one `_`:
/// `GET /orders/{order_id}` → `get_orders_order_id`.
pub fn generated_name(method: &str, path: &str) -> String {
    let mut name = String::new();
    for c in format!("{method}_{path}").chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name.trim_matches('_').to_owned()
}

fn operation(
    refs: &Refs,
    path: &str,
    method: &str,
    op: &openapiv3::Operation,
    shared: &[ReferenceOr<Parameter>],
) -> Result<Operation, ToolsError> {
    let name = op
        .operation_id
        .clone()
        .unwrap_or_else(|| generated_name(method, path));
    let context = |e: ToolsError| match e {
        ToolsError::Invalid(m) => invalid(format!("operation `{name}`: {m}")),
    };
    let description = op
        .summary
        .clone()
        .or_else(|| op.description.clone())
        .unwrap_or_else(|| format!("{} {path}", method.to_uppercase()));

    // Operation-level parameters override path-level ones with the same name and place.
    let mut resolved: Vec<Parameter> = Vec::new();
    for reference in shared.iter().chain(&op.parameters) {
        let parameter = refs
            .follow(reference, "#/components/parameters/")
            .map_err(context)?;
        let key = |p: &Parameter| {
            (
                p.parameter_data_ref().name.clone(),
                std::mem::discriminant(p),
            )
        };
        resolved.retain(|p| key(p) != key(&parameter));
        resolved.push(parameter);
    }

    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut params = Vec::new();
    for parameter in resolved {
        let location = match &parameter {
            Parameter::Path { .. } => Location::Path,
            Parameter::Query { .. } => Location::Query,
            // Headers and cookies are the caller's business (auth, tracing), not the
            // model's: they are not arguments.
            Parameter::Header { .. } | Parameter::Cookie { .. } => continue,
        };
        let data = parameter.parameter_data();
        let schema = match &data.format {
            ParameterSchemaOrContent::Schema(schema) => to_value(schema)?,
            ParameterSchemaOrContent::Content(content) => match content.values().next() {
                Some(media) => to_value(&media.schema)?,
                None => json!({}),
            },
        };
        let mut schema = refs.inline(&schema, &mut Vec::new()).map_err(context)?;
        if schema.is_null() {
            schema = json!({});
        }
        if let (Some(description), Some(object)) = (&data.description, schema.as_object_mut()) {
            object.insert("description".into(), Value::String(description.clone()));
        }
        let is_required = location == Location::Path || data.required;
        if properties.contains_key(&data.name) {
            return Err(context(invalid(format!(
                "parameter `{}` appears twice",
                data.name
            ))));
        }
        if is_required {
            required.push(Value::String(data.name.clone()));
        }
        params.push(Param {
            name: data.name.clone(),
            location,
            required: is_required,
            kind: Primitive::from_schema(&schema),
        });
        properties.insert(data.name, schema);
    }
    for param in params.iter().filter(|p| p.location == Location::Path) {
        if !path.contains(&format!("{{{}}}", param.name)) {
            return Err(context(invalid(format!(
                "path parameter `{}` is not in the path",
                param.name
            ))));
        }
    }

    let mut body = None;
    if let Some(reference) = &op.request_body {
        let request: RequestBody = refs
            .follow(reference, "#/components/requestBodies/")
            .map_err(context)?;
        // Only JSON bodies are arguments; an operation with another body type is
        // called without one.
        let json_media = request
            .content
            .iter()
            .find(|(kind, _)| is_json(kind))
            .map(|(_, media)| media);
        if let Some(media) = json_media {
            if properties.contains_key("body") {
                return Err(context(invalid(
                    "a parameter named `body` clashes with the request body",
                )));
            }
            let mut schema = refs
                .inline(&to_value(&media.schema)?, &mut Vec::new())
                .map_err(context)?;
            if schema.is_null() {
                schema = json!({});
            }
            if let (Some(description), Some(object)) =
                (&request.description, schema.as_object_mut())
            {
                object.insert("description".into(), Value::String(description.clone()));
            }
            if request.required {
                required.push(Value::String("body".into()));
            }
            properties.insert("body".into(), schema);
            body = Some(request.required);
        }
    }

    let mut parameters = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        parameters["required"] = Value::Array(required);
    }
    Ok(Operation {
        spec: ToolSpec {
            name,
            description,
            method: method.to_uppercase(),
            path: path.to_owned(),
            parameters,
        },
        params,
        body,
    })
}

/// Whether a media type is JSON (`application/json`, `…+json`, with or without parameters).
pub(crate) fn is_json(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, ToolsError> {
    serde_json::to_value(value).map_err(|e| invalid(e.to_string()))
}

/// Local references of one document.
struct Refs<'a> {
    raw: &'a Value,
    expansions: std::cell::Cell<usize>,
}

impl Refs<'_> {
    /// The value a local reference points at.
    fn target(&self, reference: &str) -> Result<&Value, ToolsError> {
        let pointer = reference.strip_prefix("#/components/").ok_or_else(|| {
            invalid(format!(
                "`$ref: {reference}`: only local `#/components/...` references are supported"
            ))
        })?;
        let spent = self.expansions.get() + 1;
        if spent > MAX_REF_EXPANSIONS {
            return Err(invalid(format!(
                "more than {MAX_REF_EXPANSIONS} `$ref` expansions"
            )));
        }
        self.expansions.set(spent);
        // `#/components/...` is a JSON pointer below the root.
        self.raw
            .pointer(&format!("/components/{pointer}"))
            .ok_or_else(|| invalid(format!("`$ref: {reference}` points at nothing")))
    }

    /// Follows a chain of references to a parameter or request body.
    fn follow<T: DeserializeOwned + Clone>(
        &self,
        item: &ReferenceOr<T>,
        expected: &str,
    ) -> Result<T, ToolsError> {
        let mut item = item.clone();
        let mut seen = Vec::new();
        loop {
            match item {
                ReferenceOr::Item(value) => return Ok(value),
                ReferenceOr::Reference { reference } => {
                    if !reference.starts_with(expected) {
                        return Err(invalid(format!(
                            "`$ref: {reference}` should point into `{expected}`"
                        )));
                    }
                    if seen.contains(&reference) {
                        return Err(invalid(format!("`$ref: {reference}` is a cycle")));
                    }
                    if seen.len() >= MAX_REF_DEPTH {
                        return Err(invalid(format!(
                            "more than {MAX_REF_DEPTH} `$ref`s in a chain"
                        )));
                    }
                    let target = self.target(&reference)?.clone();
                    item = serde_json::from_value(target)
                        .map_err(|e| invalid(format!("`$ref: {reference}`: {e}")))?;
                    seen.push(reference);
                }
            }
        }
    }

    /// A copy of a schema with every `$ref` replaced by its target. `stack` holds the
    /// references being inlined around this point: meeting one again is a cycle (a
    /// recursive schema cannot be inlined).
    fn inline(&self, schema: &Value, stack: &mut Vec<String>) -> Result<Value, ToolsError> {
        match schema {
            Value::Object(object) => {
                if let Some(Value::String(reference)) = object.get("$ref") {
                    if stack.contains(reference) {
                        return Err(invalid(format!(
                            "`$ref: {reference}` is a cycle (recursive schemas are not supported)"
                        )));
                    }
                    if stack.len() >= MAX_REF_DEPTH {
                        return Err(invalid(format!(
                            "`$ref`s nested more than {MAX_REF_DEPTH} deep"
                        )));
                    }
                    if !reference.starts_with('#') {
                        return Err(invalid(format!(
                            "`$ref: {reference}`: only local `#/components/...` references are supported"
                        )));
                    }
                    if !reference.starts_with("#/components/schemas/") {
                        return Err(invalid(format!(
                            "`$ref: {reference}` should point into `#/components/schemas/`"
                        )));
                    }
                    let target = self.target(reference)?;
                    stack.push(reference.clone());
                    let inlined = self.inline(target, stack);
                    stack.pop();
                    return inlined;
                }
                let mut copy = Map::with_capacity(object.len());
                for (key, value) in object {
                    copy.insert(key.clone(), self.inline(value, stack)?);
                }
                Ok(Value::Object(copy))
            }
            Value::Array(items) => items
                .iter()
                .map(|item| self.inline(item, stack))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
      required: true
      content: { application/json: { schema: { $ref: "#/components/schemas/Order" } } }
  schemas:
    Id: { type: string, pattern: "^ORD-[0-9]+$" }
    Order: { type: object, properties: { id: { $ref: "#/components/schemas/Id" } } }
"##;

    fn doc(text: &str) -> Result<Document, ToolsError> {
        parse(text, None)
    }

    fn error(text: &str) -> String {
        doc(text).unwrap_err().to_string()
    }

    #[test]
    fn every_operation_becomes_a_tool_in_document_order() {
        let doc = doc(DOC).unwrap();
        let names: Vec<_> = doc
            .operations
            .iter()
            .map(|o| o.spec.name.as_str())
            .collect();
        assert_eq!(names, ["getOrder", "post_orders_order_id"]);
        assert_eq!(doc.operations[0].spec.description, "Look up an order");
        assert_eq!(doc.operations[1].spec.description, "Replace an order");
        assert_eq!(doc.operations[1].spec.method, "POST");
    }

    #[test]
    fn path_and_query_parameters_become_properties_with_their_schema() {
        let doc = doc(DOC).unwrap();
        assert_eq!(
            doc.operations[0].spec.parameters,
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
        let doc = doc(DOC).unwrap();
        let parameters = &doc.operations[1].spec.parameters;
        assert_eq!(
            parameters["properties"]["body"],
            json!({ "type": "object", "properties": { "id": { "type": "string", "pattern": "^ORD-[0-9]+$" } } })
        );
        assert_eq!(parameters["required"], json!(["order_id", "body"]));
        assert_eq!(doc.operations[1].body, Some(true));
    }

    #[test]
    fn server_variables_take_their_default() {
        assert_eq!(
            doc(DOC).unwrap().base_url.as_str(),
            "https://eu.example.com/v1"
        );
    }

    #[test]
    fn the_base_url_setting_replaces_the_servers() {
        let doc = parse(DOC, Some("http://127.0.0.1:8090")).unwrap();
        assert_eq!(doc.base_url.as_str(), "http://127.0.0.1:8090/");
    }

    #[test]
    fn a_relative_server_url_is_invalid_and_names_the_setting() {
        let text = DOC.replace("https://{region}.example.com/v1", "/api");
        let message = error(&text);
        assert!(
            message.contains("/api") && message.contains("TOOLS_BASE_URL"),
            "{message}"
        );
    }

    #[test]
    fn a_document_without_servers_is_invalid() {
        let text = DOC.replace("servers: [{ url: \"https://{region}.example.com/v1\", variables: { region: { default: eu } } }]\n", "");
        assert!(error(&text).contains("no `servers`"));
    }

    #[test]
    fn a_json_document_is_read_too() {
        let text = r#"{"openapi":"3.0.0","info":{"title":"t","version":"1"},"servers":[{"url":"http://api.example.com"}],
            "paths":{"/ping":{"get":{"responses":{"200":{"description":"ok"}}}}}}"#;
        let doc = doc(text).unwrap();
        assert_eq!(doc.operations[0].spec.name, "get_ping");
        assert_eq!(
            doc.operations[0].spec.parameters,
            json!({"type": "object", "properties": {}})
        );
    }

    #[test]
    fn a_cyclic_schema_reference_is_invalid() {
        let text = DOC.replace(
            "Id: { type: string, pattern: \"^ORD-[0-9]+$\" }",
            "Id: { $ref: \"#/components/schemas/Loop\" }\n    Loop: { $ref: \"#/components/schemas/Id\" }",
        );
        assert!(error(&text).contains("cycle"));
    }

    #[test]
    fn a_cyclic_parameter_reference_is_invalid() {
        let text = DOC.replace(
            "OrderId: { name: order_id,",
            "OrderId: { $ref: \"#/components/parameters/OrderId\" }\n    Unused: { name: order_id,",
        );
        assert!(error(&text).contains("cycle"));
    }

    #[test]
    fn a_remote_reference_is_invalid() {
        let text = DOC.replace(
            "$ref: \"#/components/schemas/Id\" } }\n  requestBodies",
            "$ref: \"https://evil.example/s.json\" } }\n  requestBodies",
        );
        assert!(error(&text).contains("only local"));
    }

    #[test]
    fn an_exponential_reference_fan_out_is_cut_off() {
        let mut schemas = String::from("    S0: { type: string }\n");
        for i in 1..40 {
            let p = i - 1;
            schemas.push_str(&format!(
                "    S{i}: {{ type: object, properties: {{ a: {{ $ref: \"#/components/schemas/S{p}\" }}, b: {{ $ref: \"#/components/schemas/S{p}\" }} }} }}\n"
            ));
        }
        let text = format!(
            "openapi: 3.0.0\ninfo: {{ title: t, version: '1' }}\nservers: [{{ url: 'http://a.example' }}]\npaths:\n  /x:\n    get:\n      parameters: [{{ name: q, in: query, schema: {{ $ref: '#/components/schemas/S39' }} }}]\n      responses: {{ '200': {{ description: ok }} }}\ncomponents:\n  schemas:\n{schemas}"
        );
        let message = error(&text);
        assert!(
            message.contains("expansions") || message.contains("deep"),
            "{message}"
        );
    }

    #[test]
    fn swagger_2_and_openapi_3_1_get_a_clear_error() {
        assert!(error("swagger: '2.0'\ninfo: {}\npaths: {}").contains("Swagger 2.0"));
        assert!(error("openapi: 3.1.0\ninfo: {}\npaths: {}").contains("only 3.0.x"));
    }

    #[test]
    fn text_that_is_not_a_document_is_invalid() {
        assert!(error("- just\n- a list").contains("not an object"));
        assert!(error("{ nope").contains("not JSON"));
    }

    #[test]
    fn duplicate_operation_ids_are_invalid() {
        let text = DOC.replace("description: Replace an order", "operationId: getOrder");
        assert!(error(&text).contains("two operations"));
    }

    #[test]
    fn generated_names_are_stable_and_alphanumeric() {
        assert_eq!(
            generated_name("get", "/orders/{order_id}"),
            "get_orders_order_id"
        );
        assert_eq!(generated_name("delete", "/a-b/c.d/"), "delete_a_b_c_d");
    }
}
