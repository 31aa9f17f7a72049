//! The published tools in use: the workers read the tool set that an OpenAPI import's
//! publish stored ([`tools::published`]) at start, watch its key, and merge it into the
//! configured agents, so a publish reaches them without a restart; each turn uses the tool
//! set current when it starts (docs/openapi-import.md#publish).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde_json::Value;
use tools::import::ImportedOperation;
use tools::published::{BUCKET, KEY, PublishedTools, bucket};
use tools::{CallReport, ToolArgs, Toolbox};

use crate::agents::config::{AgentTool, AgentsConfig};
use crate::agents::{BoxFuture, Engine, RuleEngine, ToolDef};
use crate::turn::{Agents, Tools};

/// What the published tools are merged into: the agents config, the configured tools and
/// the engine as loaded at start.
#[derive(Clone)]
pub struct Base {
    pub agents: Agents,
    /// Whether the engine is the rule engine (rebuilt on the merged config).
    pub rules: bool,
    pub tools: ToolArgs,
}

/// The configured agents with the published operations added: each becomes a tool of its
/// agent with its permission. A configured tool of the same name wins (the published one
/// is skipped with a warning), and so does an operation of the configured document.
pub fn merge(base: &Base, published: &PublishedTools) -> Agents {
    let mut config: AgentsConfig = (*base.agents.config).clone();
    // One toolbox per base URL (operations of one import may name different servers).
    let mut by_server: BTreeMap<Option<String>, Vec<ImportedOperation>> = BTreeMap::new();
    for op in &published.operations {
        let name = &op.operation.operation_id;
        let Some(agent) = config.agents.iter_mut().find(|a| a.card.name == op.agent) else {
            tracing::warn!(agent = %op.agent, tool = %name, "published tool of an unknown agent skipped");
            continue;
        };
        if agent.tool(name).is_some() || base.agents.tools.def(name).is_some() {
            tracing::warn!(agent = %op.agent, tool = %name, "published tool has the name of a configured one; the configured one is kept");
            continue;
        }
        agent.tools.push(AgentTool {
            operation: name.clone(),
            permission: op.permission,
            confirm: None,
        });
        let server = op
            .operation
            .servers
            .first()
            .cloned()
            .or_else(|| published.base_url.clone());
        by_server
            .entry(server)
            .or_default()
            .push(op.operation.clone());
    }
    let mut toolboxes = Vec::new();
    for (server, operations) in by_server {
        match Toolbox::from_operations(server.as_deref(), operations, &base.tools) {
            Ok(toolbox) => toolboxes.push(toolbox),
            Err(error) => {
                tracing::error!(%error, server = ?server, "published tools cannot be used")
            }
        }
    }
    let config = Arc::new(config);
    let engine: Arc<dyn Engine> = if base.rules {
        Arc::new(RuleEngine::new(config.clone()))
    } else {
        base.agents.engine.clone()
    };
    // A rule engine reads the config it was built on: the agents' own ones are rebuilt too.
    let others = base
        .agents
        .others
        .iter()
        .map(|engine| -> Arc<dyn Engine> {
            if engine.name() == RuleEngine::NAME {
                Arc::new(RuleEngine::new(config.clone()))
            } else {
                engine.clone()
            }
        })
        .collect();
    Agents {
        config,
        engine,
        others,
        tools: Arc::new(Merged {
            configured: base.agents.tools.clone(),
            published: toolboxes,
        }),
    }
}

/// The configured tools, then the published ones.
struct Merged {
    configured: Arc<dyn Tools>,
    published: Vec<Toolbox>,
}

impl Tools for Merged {
    fn call<'a>(
        &'a self,
        name: &'a str,
        params: &'a Value,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, CallReport> {
        if self.configured.def(name).is_none()
            && let Some(toolbox) = self.published.iter().find(|t| t.spec(name).is_some())
        {
            return Box::pin(toolbox.call(name, params, Some(idempotency_key)));
        }
        self.configured.call(name, params, idempotency_key)
    }

    fn def(&self, name: &str) -> Option<ToolDef> {
        self.configured.def(name).or_else(|| {
            self.published
                .iter()
                .find_map(|t| t.spec(name).map(|spec| spec.def()))
        })
    }
}

/// The agents a turn starts with: swapped whenever a new tool set is published.
#[derive(Clone)]
pub struct LiveAgents {
    current: Arc<RwLock<(u64, Agents)>>,
}

impl LiveAgents {
    pub fn new(agents: Agents) -> LiveAgents {
        LiveAgents {
            current: Arc::new(RwLock::new((0, agents))),
        }
    }

    /// The agents now (a turn keeps them to its end).
    pub fn current(&self) -> Agents {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// The published version in use (0: none).
    pub fn version(&self) -> u64 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Applies a published tool set of KV revision `version`, unless a newer one is in use.
    pub fn apply(&self, base: &Base, version: u64, published: Option<&PublishedTools>) {
        let agents = match published {
            Some(published) => merge(base, published),
            None => base.agents.clone(),
        };
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if version > current.0 {
            *current = (version, agents);
            tracing::info!(
                version,
                operations = published.map_or(0, |p| p.operations.len()),
                "published tools in use"
            );
        }
    }
}

fn decode(entry: &kv::Entry) -> Option<PublishedTools> {
    match entry.operation {
        kv::Operation::Put => match serde_json::from_slice(&entry.value) {
            Ok(published) => Some(published),
            Err(error) => {
                tracing::error!(%error, revision = entry.revision, "the published tool set cannot be read");
                None
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => None,
    }
}

/// Reads the published tool set into `live` now, then keeps following the key in a
/// task until the connection closes.
pub async fn follow(js: &jetstream::Context, base: Base, live: LiveAgents) -> anyhow::Result<()> {
    let store = bucket(js).await?;
    // Watch first, then read: an update between the two is seen by the watch, and an
    // older revision never replaces a newer one.
    let mut updates = store
        .watch(KEY)
        .await
        .map_err(|e| anyhow::anyhow!("cannot watch {BUCKET}/{KEY}: {e}"))?;
    if let Some(entry) = store
        .entry(KEY)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read {BUCKET}/{KEY}: {e}"))?
    {
        live.apply(&base, entry.revision, decode(&entry).as_ref());
    }
    tokio::spawn(async move {
        while let Some(entry) = updates.next().await {
            match entry {
                Ok(entry) => live.apply(&base, entry.revision, decode(&entry).as_ref()),
                Err(error) => tracing::warn!(%error, "watching the published tools"),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use common::events::Permission;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn tool_args() -> ToolArgs {
        ToolArgs {
            tools_base_url: Some("http://127.0.0.1:9".into()),
            tools_allow_hosts: vec![],
            tools_timeout: Duration::from_secs(1),
            tools_max_response_bytes: 1024,
            tools_attempts: 1,
            tools_retry_delay: Duration::from_millis(1),
        }
    }

    fn base() -> Base {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        let config = Arc::new(AgentsConfig::load(&root.join("agents.yaml")).unwrap());
        let document = std::fs::read_to_string(root.join("shop-openapi.yaml")).unwrap();
        let toolbox = Toolbox::from_openapi(&document, &tool_args()).unwrap();
        Base {
            agents: Agents {
                engine: Arc::new(RuleEngine::new(config.clone())),
                config,
                tools: Arc::new(toolbox),
                others: Vec::new(),
            },
            rules: true,
            tools: tool_args(),
        }
    }

    fn op(agent: &str, permission: &str, id: &str, method: &str, path: &str) -> Value {
        json!({
            "agent": agent,
            "permission": permission,
            "operation": {
                "operation_id": id, "generated_id": false, "method": method, "path": path,
                "summary": format!("{id} summary"), "description": null, "tags": [],
                "parameters": [], "request_body": null, "servers": ["https://api.example"],
                "class": permission, "reasons": [], "suggested_agent": null, "agent_reason": null,
            },
        })
    }

    fn published() -> PublishedTools {
        serde_json::from_value(json!({
            "import_id": Uuid::nil(),
            "base_url": "https://api.example",
            "operations": [
                op("general", "read", "browseCatalog", "GET", "/products"),
                op("billing", "write", "voidInvoice", "POST", "/invoices/{id}/void"),
                op("orders", "read", "getOrder", "GET", "/elsewhere"),
                op("nobody", "read", "ghost", "GET", "/ghost"),
            ],
        }))
        .unwrap()
    }

    #[test]
    fn published_operations_become_tools_of_their_agents_with_their_permission() {
        let base = base();
        let agents = merge(&base, &published());
        let general = agents.config.agent("general").unwrap();
        assert_eq!(
            general.tool("browseCatalog").unwrap().permission,
            Permission::Read
        );
        assert!(
            general.tool("listProducts").is_some(),
            "configured tools stay"
        );
        let billing = agents.config.agent("billing").unwrap();
        assert_eq!(
            billing.tool("voidInvoice").unwrap().permission,
            Permission::Write
        );
        let def = agents.tools.def("browseCatalog").unwrap();
        assert_eq!(def.description, "browseCatalog summary");
        // A configured tool of the same name wins; an unknown agent's operation is skipped.
        let orders = agents.config.agent("orders").unwrap();
        assert_eq!(
            orders
                .tools
                .iter()
                .filter(|t| t.operation == "getOrder")
                .count(),
            1
        );
        assert!(agents.tools.def("ghost").is_none());
        // The configured config is not changed.
        assert!(
            base.agents
                .config
                .agent("general")
                .unwrap()
                .tool("browseCatalog")
                .is_none()
        );
    }

    #[test]
    fn an_operation_from_a_3_1_document_becomes_a_tool() {
        let mut published = published();
        published.operations[0].operation.parameters = serde_json::from_value(json!([
            {"name": "q", "in": "query", "required": false, "description": null,
             "schema": {"type": ["string", "null"]}},
        ]))
        .unwrap();
        let agents = merge(&base(), &published);
        let def = agents.tools.def("browseCatalog").unwrap();
        assert_eq!(
            def.parameters["properties"]["q"],
            json!({"type": ["string", "null"]}),
            "the JSON Schema type list as the document wrote it"
        );
    }

    #[test]
    fn only_a_newer_version_replaces_the_tools_in_use() {
        let base = base();
        let live = LiveAgents::new(base.agents.clone());
        live.apply(&base, 2, Some(&published()));
        assert_eq!(live.version(), 2);
        live.apply(&base, 1, None);
        assert_eq!(live.version(), 2);
        assert!(live.current().tools.def("browseCatalog").is_some());
        // A withdrawn set (deleted key) is a newer version without published tools.
        live.apply(&base, 3, None);
        assert!(live.current().tools.def("browseCatalog").is_none());
        assert!(live.current().tools.def("getOrder").is_some());
    }
}
