//! Settings of the REST service; every one a flag with an environment variable.

use std::time::Duration;

use clap::Args;
use common::config::parse_duration;
use common::secrets::Secrets;

use crate::imports::ImportSettings;

/// What the REST API requires and how its reads and imports behave.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Bearer token the operator endpoints (everything under /api but health and the
    /// OpenAPI document) require. Unset: no token is required (for local use only). To
    /// rotate it, list the new one first (`new,old`): every one is accepted until removed.
    #[arg(long, env = "API_TOKEN", hide_env_values = true, value_parser = Secrets::parse)]
    pub api_token: Option<Secrets>,

    /// Longest a read with `min_seq` waits for the projection to reach that stream
    /// sequence before it answers 503 `projection_behind` (e.g. `2s`, `500ms`).
    #[arg(long, env = "PROJECTION_WAIT", default_value = "2s", value_parser = parse_duration)]
    pub projection_wait: Duration,

    /// Agents config (YAML) whose agents an OpenAPI import suggests and a review may choose;
    /// usually the workers' AGENTS_CONFIG. Unset: no agent is suggested or accepted.
    #[arg(long, env = "IMPORT_AGENTS_CONFIG")]
    pub import_agents_config: Option<std::path::PathBuf>,

    /// How long an operator's session lasts after sign-in (e.g. `12h`, `30m`).
    #[arg(long, env = "OPERATOR_SESSION_TTL", default_value = "12h", value_parser = parse_duration)]
    pub operator_session_ttl: Duration,

    /// Hosts an OpenAPI import by URL may fetch from although they resolve to private or
    /// loopback addresses: comma-separated `host` or `host:port`.
    #[arg(long, env = "IMPORT_ALLOW_HOSTS", value_delimiter = ',')]
    pub import_allow_hosts: Vec<String>,
}

impl ApiArgs {
    /// What OpenAPI imports need from the settings (the agents config read now).
    pub fn import_settings(&self) -> anyhow::Result<ImportSettings> {
        let agents = match &self.import_agents_config {
            Some(path) => tools::import::AgentHint::from_config(
                &tools::agents_config::AgentsConfig::load(path)?,
            ),
            None => Vec::new(),
        };
        Ok(ImportSettings {
            agents,
            allow_hosts: self.import_allow_hosts.clone(),
        })
    }
}
