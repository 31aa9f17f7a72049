//! Published tools: the reviewed operations of an OpenAPI import
//! (`POST /api/openapi/imports/{id}/publish`), stored as one JSON value under key
//! [`KEY`] of the NATS KV bucket [`BUCKET`]. Every put is a new version (the KV
//! revision). The workers read it at start and watch the key, so a publish reaches them
//! without a restart; each turn uses the tool set current when it starts
//! (docs/openapi-import.md#publish).

use async_nats::jetstream::{self, kv};
use common::events::Permission;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::import::ImportedOperation;

/// The KV bucket of the published tool set.
pub const BUCKET: &str = "TOOLS";
/// The key of the published tool set in [`BUCKET`].
pub const KEY: &str = "published";

/// What a publish stores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedTools {
    /// The import the operations come from.
    pub import_id: Uuid,
    /// The base URL of the document (the first operation's first server); the workers'
    /// `TOOLS_BASE_URL` replaces it when set.
    pub base_url: Option<String>,
    pub operations: Vec<PublishedOperation>,
}

/// One published operation: the tool `operation.operation_id` of `agent`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedOperation {
    pub agent: String,
    /// The reviewed class.
    pub permission: Permission,
    pub operation: ImportedOperation,
}

/// The KV bucket, created when missing.
pub async fn bucket(js: &jetstream::Context) -> anyhow::Result<kv::Store> {
    if let Ok(store) = js.get_key_value(BUCKET).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: BUCKET.into(),
        description: "the published OpenAPI tools (key `published`)".into(),
        history: 10,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot create the KV bucket {BUCKET}: {e}"))
}

/// An OpenAPI 3.0 document of `operations`, served at `base_url`: the workers read it
/// with the same parser as the configured document (3.1 `type` lists written the 3.0 way).
pub fn document(base_url: Option<&str>, operations: &[&ImportedOperation]) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in operations {
        let mut operation = json!({
            "operationId": op.operation_id,
            "parameters": op.parameters,
            "responses": {"200": {"description": "ok"}},
        });
        let description = op
            .summary
            .clone()
            .or_else(|| op.description.clone())
            .unwrap_or_default();
        operation["summary"] = json!(description);
        if let Some(body) = &op.request_body {
            operation["requestBody"] = json!({
                "required": body.required,
                "content": {body.content_type.clone(): {"schema": body.schema}},
            });
        }
        let item = paths.entry(op.path.clone()).or_insert_with(|| json!({}));
        item[op.method.to_lowercase()] = operation;
    }
    down_level(&mut paths);
    let mut document = json!({
        "openapi": "3.0.3",
        "info": {"title": "published tools", "version": "1"},
        "paths": paths,
    });
    if let Some(url) = base_url {
        document["servers"] = json!([{"url": url}]);
    }
    document
}

/// Writes JSON Schema 2020-12 `type` lists (from a 3.1 document) the 3.0 way, so the
/// 3.0 parser accepts them: `[X, "null"]` becomes `X` with `nullable: true`; a list of
/// several types becomes no `type` (any value).
fn down_level(object: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = object.get("type") {
        let nullable = types.iter().any(|t| t == "null");
        let others: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        match others.as_slice() {
            [one] => {
                object.insert("type".into(), one.clone());
            }
            _ => {
                object.remove("type");
            }
        }
        if nullable {
            object.insert("nullable".into(), Value::Bool(true));
        }
    }
    for value in object.values_mut() {
        match value {
            Value::Object(inner) => down_level(inner),
            Value::Array(items) => items.iter_mut().for_each(|item| {
                if let Value::Object(inner) = item {
                    down_level(inner);
                }
            }),
            _ => {}
        }
    }
}
