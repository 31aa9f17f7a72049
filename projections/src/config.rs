//! Settings of the projections service; every one a flag with an environment variable.

use std::time::Duration;

use clap::Args;
use common::config::parse_duration;

/// How the projector reads and what the REST API requires.
#[derive(Debug, Clone, Args)]
pub struct ProjectionArgs {
    /// Most events applied in one transaction.
    #[arg(long, env = "PROJECTOR_BATCH", default_value_t = 5000)]
    pub projector_batch: usize,

    /// How often a standby instance tries to become the active projector (only one
    /// instance applies events; the others wait for its lock), and how often the active
    /// one checks that it still holds the lock. Also the longest a failover waits
    /// after the active instance's database session ends.
    #[arg(long, env = "PROJECTOR_STANDBY_POLL", default_value = "1s", value_parser = parse_duration)]
    pub projector_standby_poll: Duration,

    /// Bearer token the operator endpoints (everything under /api but health and the
    /// OpenAPI document) require. Unset: no token is required (for local use only).
    #[arg(long, env = "API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,

    /// Longest a read with `min_seq` waits for the projection to reach that stream
    /// sequence before it answers 503 `projection_behind` (e.g. `2s`, `500ms`).
    #[arg(long, env = "PROJECTION_WAIT", default_value = "2s", value_parser = parse_duration)]
    pub projection_wait: Duration,

    /// Agents config (YAML) whose agents an OpenAPI import suggests and a review may choose;
    /// usually the workers' AGENTS_CONFIG. Unset: no agent is suggested or accepted.
    #[arg(long, env = "IMPORT_AGENTS_CONFIG")]
    pub import_agents_config: Option<std::path::PathBuf>,

    /// Hosts an OpenAPI import by URL may fetch from although they resolve to private or
    /// loopback addresses: comma-separated `host` or `host:port`.
    #[arg(long, env = "IMPORT_ALLOW_HOSTS", value_delimiter = ',')]
    pub import_allow_hosts: Vec<String>,
}

impl ProjectionArgs {
    /// What OpenAPI imports need from the settings (the agents config read now).
    pub fn import_settings(&self) -> anyhow::Result<crate::http::imports::ImportSettings> {
        let agents = match &self.import_agents_config {
            Some(path) => workers::tools::import::AgentHint::from_config(
                &workers::agents::config::AgentsConfig::load(path)?,
            ),
            None => Vec::new(),
        };
        Ok(crate::http::imports::ImportSettings {
            agents,
            allow_hosts: self.import_allow_hosts.clone(),
        })
    }
}
