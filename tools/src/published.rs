//! Published tools: the reviewed operations of an OpenAPI import
//! (`POST /api/openapi/imports/{id}/publish`), stored as one JSON value under key
//! [`KEY`] of the NATS KV bucket [`BUCKET`]. Every put is a new version (the KV
//! revision). The workers read it at start and watch the key, so a publish reaches them
//! without a restart; each turn uses the tool set current when it starts
//! (docs/openapi-import.md#publish).

use async_nats::jetstream::{self, kv};
use common::events::Permission;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::import::ImportedOperation;

/// The KV bucket of the published tool set.
pub const BUCKET: &str = common::subjects::TOOLS_BUCKET;
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

/// The KV bucket, as the API and the workers find it: created by `smart-support nats-setup`
/// (or `smart-support up`) as the NATS admin user, since their own users may not create it.
pub async fn bucket(js: &jetstream::Context) -> anyhow::Result<kv::Store> {
    js.get_key_value(BUCKET).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot find the KV bucket {BUCKET} ({e}); it is created by `smart-support nats-setup`"
        )
    })
}
