//! Walking the document (3.0 and 3.1 alike): every operation of every path, with its
//! parameters (path-level ones merged in), request body and servers, `$ref`s inlined.

use std::collections::HashSet;

use common::events::Permission;
use serde_json::Value;

use super::document::{Document, Refs, escape};
use super::{ImportError, Imported, ImportedOperation, MAX_OPERATIONS, Parameter, RequestBody};
use crate::operation::is_json;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn invalid(at: &str, message: &str) -> ImportError {
    ImportError::InvalidDocument(format!("{at}: {message}"))
}

/// The operations of a document, not yet classified (class `read`, no reasons).
pub fn operations(document: &Document) -> Result<Imported, ImportError> {
    let root = &document.root;
    let refs = Refs::new(root);
    let title = root
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let root_servers = servers(root.get("servers"), "/servers")?;
    let mut notes = Vec::new();
    let paths = match root.get("paths") {
        Some(Value::Object(paths)) => Some(paths),
        Some(_) => return Err(invalid("/paths", "is not an object")),
        None if document.is_3_1() => None,
        None => return Err(invalid("/paths", "missing (OpenAPI 3.0 requires it)")),
    };
    let webhooks = root
        .get("webhooks")
        .and_then(Value::as_object)
        .map_or(0, |w| w.len());

    let mut operations = Vec::new();
    let mut ids = HashSet::new();
    for (path, item) in paths
        .into_iter()
        .flat_map(|paths| document.ordered_paths(paths))
    {
        let at = format!("/paths/{}", escape(path));
        if !path.starts_with('/') {
            return Err(invalid(&at, "a path must start with `/`"));
        }
        // A path item by `$ref` to nothing: its operations cannot even be listed; the
        // other paths import and a note says which path was left out.
        let item = match refs.follow(item, &at) {
            Ok(followed) => followed.value,
            Err(ImportError::RefNotFound { at, reference }) => {
                notes.push(format!(
                    "{path}: not imported: `{reference}` does not exist (at {at})"
                ));
                continue;
            }
            Err(error) => return Err(error),
        };
        let Some(item) = item.as_object() else {
            return Err(invalid(&at, "a path item is not an object"));
        };
        let path_servers = match item.get("servers") {
            Some(list) => servers(Some(list), &format!("{at}/servers"))?,
            None => root_servers.clone(),
        };
        let shared = item.get("parameters");
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let op_at = format!("{at}/{method}");
            if operations.len() >= MAX_OPERATIONS {
                return Err(ImportError::TooManyOperations);
            }
            let Some(op) = op.as_object() else {
                return Err(invalid(&op_at, "an operation is not an object"));
            };
            let (operation_id, generated_id) = match op.get("operationId") {
                Some(Value::String(id)) if !id.trim().is_empty() => (id.clone(), false),
                Some(Value::String(_)) | None => (generated_name(method, path), true),
                Some(_) => return Err(invalid(&op_at, "`operationId` is not a string")),
            };
            let operation_id = if generated_id {
                // A generated id never clashes: the first free `_2`, `_3`, … suffix.
                (1..)
                    .map(|n| match n {
                        1 => operation_id.clone(),
                        n => format!("{operation_id}_{n}"),
                    })
                    .find(|id| !ids.contains(id))
                    .unwrap_or(operation_id)
            } else {
                if ids.contains(&operation_id) {
                    return Err(ImportError::DuplicateOperationId {
                        at: op_at,
                        id: operation_id,
                    });
                }
                operation_id
            };
            ids.insert(operation_id.clone());
            let text = |key: &str| op.get(key).and_then(Value::as_str).map(str::to_owned);
            let tags = match op.get("tags") {
                None => Vec::new(),
                Some(Value::Array(tags)) => tags
                    .iter()
                    .map(|t| t.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid(&format!("{op_at}/tags"), "a tag is not a string"))?,
                Some(_) => return Err(invalid(&format!("{op_at}/tags"), "is not a list")),
            };
            let op_servers = match op.get("servers") {
                Some(list) => servers(Some(list), &format!("{op_at}/servers"))?,
                None => path_servers.clone(),
            };
            // A `$ref` to nothing inside one operation spoils that operation only.
            let inputs = parameters(&refs, shared, op.get("parameters"), &at, &op_at).and_then(
                |parameters| {
                    Ok((
                        parameters,
                        request_body(&refs, op.get("requestBody"), &op_at)?,
                    ))
                },
            );
            let (parameters, request_body, unusable) = match inputs {
                Ok((parameters, request_body)) => (parameters, request_body, None),
                Err(ImportError::RefNotFound { at, reference }) => (
                    Vec::new(),
                    None,
                    Some(format!("`{reference}` does not exist (at {at})")),
                ),
                Err(error) => return Err(error),
            };
            operations.push(ImportedOperation {
                operation_id,
                generated_id,
                method: method.to_uppercase(),
                path: path.clone(),
                summary: text("summary"),
                description: text("description"),
                tags,
                parameters,
                request_body,
                servers: op_servers,
                class: Permission::Read,
                reasons: Vec::new(),
                suggested_agent: None,
                agent_reason: None,
                unusable,
            });
        }
    }
    if webhooks > 0 {
        notes.push(if operations.is_empty() {
            format!(
                "the document describes only webhooks ({webhooks}): requests the API sends, not operations an agent can call; nothing to import"
            )
        } else {
            format!("{webhooks} webhooks are requests the API sends, not operations: not imported")
        });
    } else if operations.is_empty() {
        notes.push("the document has no operations".into());
    }
    Ok(Imported {
        version: document.version.clone(),
        title,
        notes,
        operations,
    })
}

/// `<method>_<path>` with every run of non-alphanumerics as one `_`:
/// `GET /orders/{order_id}` → `get_orders_order_id`.
pub(super) fn generated_name(method: &str, path: &str) -> String {
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

/// The URLs of a `servers` list, `{variables}` replaced by their defaults.
pub(crate) fn servers(list: Option<&Value>, at: &str) -> Result<Vec<String>, ImportError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err(invalid(at, "is not a list"));
    };
    let mut urls = Vec::new();
    for (i, server) in list.iter().enumerate() {
        let Some(url) = server.get("url").and_then(Value::as_str) else {
            return Err(invalid(&format!("{at}/{i}"), "a server needs a `url`"));
        };
        let mut url = url.to_owned();
        for (name, variable) in server
            .get("variables")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(default) = variable.get("default").and_then(Value::as_str) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
        urls.push(url);
    }
    Ok(urls)
}

/// Path-level parameters, overridden by operation-level ones of the same name and place.
fn parameters(
    refs: &Refs,
    shared: Option<&Value>,
    own: Option<&Value>,
    path_at: &str,
    op_at: &str,
) -> Result<Vec<Parameter>, ImportError> {
    let mut resolved: Vec<Parameter> = Vec::new();
    for (list, at) in [(shared, path_at), (own, op_at)] {
        let Some(list) = list else { continue };
        let at = format!("{at}/parameters");
        let Some(list) = list.as_array() else {
            return Err(invalid(&at, "is not a list"));
        };
        for (i, raw) in list.iter().enumerate() {
            let at = format!("{at}/{i}");
            let value = refs.follow(raw, &at)?.value;
            let (Some(name), Some(location)) = (
                value.get("name").and_then(Value::as_str),
                value.get("in").and_then(Value::as_str),
            ) else {
                return Err(invalid(&at, "a parameter needs `name` and `in`"));
            };
            if !matches!(location, "path" | "query" | "header" | "cookie") {
                return Err(invalid(
                    &at,
                    &format!("`in: {location}` is not path, query, header or cookie"),
                ));
            }
            let schema = match (value.get("schema"), value.get("content")) {
                (Some(schema), _) => refs.inline(schema, &format!("{at}/schema"))?,
                (None, Some(Value::Object(content))) => match content.values().next() {
                    Some(media) => match media.get("schema") {
                        Some(schema) => refs.inline(schema, &at)?,
                        None => Value::Object(Default::default()),
                    },
                    None => Value::Object(Default::default()),
                },
                _ => Value::Object(Default::default()),
            };
            let parameter = Parameter {
                name: name.to_owned(),
                location: location.to_owned(),
                required: location == "path"
                    || value.get("required").and_then(Value::as_bool) == Some(true),
                description: value
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                schema,
            };
            resolved.retain(|p| (&p.name, &p.location) != (&parameter.name, &parameter.location));
            resolved.push(parameter);
        }
    }
    Ok(resolved)
}

fn request_body(
    refs: &Refs,
    body: Option<&Value>,
    op_at: &str,
) -> Result<Option<RequestBody>, ImportError> {
    let Some(body) = body else { return Ok(None) };
    let at = format!("{op_at}/requestBody");
    let body = refs.follow(body, &at)?.value;
    let Some(content) = body.get("content").and_then(Value::as_object) else {
        return Err(invalid(&at, "a request body needs `content`"));
    };
    let chosen = content
        .iter()
        .find(|(kind, _)| is_json(kind))
        .or_else(|| content.iter().next());
    let Some((content_type, media)) = chosen else {
        return Ok(None);
    };
    let mut schema = match media.get("schema") {
        Some(schema) => refs.inline(
            schema,
            &format!("{at}/content/{}/schema", escape(content_type)),
        )?,
        None => Value::Object(Default::default()),
    };
    // The body's description says what the argument `body` is: it goes with its schema.
    if let (Some(description), Some(schema)) = (body.get("description"), schema.as_object_mut()) {
        schema.insert("description".into(), description.clone());
    }
    Ok(Some(RequestBody {
        required: body.get("required").and_then(Value::as_bool) == Some(true),
        content_type: content_type.clone(),
        schema,
    }))
}
