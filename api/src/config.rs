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

    /// Erase conversations inactive for this long (no event since: e.g. `90d`, `720h`), in
    /// the background, as `DELETE /api/conversations/{thread_id}` does, recorded as by
    /// `retention`. `off` (the default): conversations are kept until erased by hand.
    // Spelled `std::option::Option` so clap takes the parser's `Option` as the value (`off` is a
    // value, not an absent flag) instead of making the flag optional around a `Duration`.
    #[arg(long, env = "CONVERSATION_RETENTION", default_value = "off", value_parser = parse_retention)]
    pub conversation_retention: std::option::Option<Duration>,
}

/// `off`, or a duration of at least a second.
fn parse_retention(raw: &str) -> Result<Option<Duration>, String> {
    if raw.trim() == "off" {
        return Ok(None);
    }
    let retention = parse_duration(raw)?;
    if retention < Duration::from_secs(1) {
        return Err(format!(
            "`{raw}` is shorter than a second; use off to keep everything"
        ));
    }
    Ok(Some(retention))
}

impl ApiArgs {
    /// How often the retention sweep looks for inactive conversations: a tenth of the
    /// retention, between a second and ten minutes.
    pub fn retention_check(retention: Duration) -> Duration {
        (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(600))
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        api: ApiArgs,
    }

    #[test]
    fn retention_is_read_from_the_command_line_off_by_default() {
        let off = Cli::try_parse_from(["api"]).unwrap();
        assert_eq!(off.api.conversation_retention, None);
        let on = Cli::try_parse_from(["api", "--conversation-retention", "90d"]).unwrap();
        assert_eq!(
            on.api.conversation_retention,
            Some(Duration::from_secs(90 * 86_400))
        );
        assert!(Cli::try_parse_from(["api", "--conversation-retention", "soon"]).is_err());
    }

    #[test]
    fn retention_is_off_or_a_duration_of_a_second_or_more() {
        assert_eq!(parse_retention("off"), Ok(None));
        assert_eq!(
            parse_retention("90d"),
            Ok(Some(Duration::from_secs(90 * 86_400)))
        );
        assert!(parse_retention("500ms").is_err());
        assert!(parse_retention("forever").is_err());
    }

    #[test]
    fn the_sweep_runs_ten_times_per_retention_between_a_second_and_ten_minutes() {
        assert_eq!(
            ApiArgs::retention_check(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            ApiArgs::retention_check(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            ApiArgs::retention_check(Duration::from_secs(90 * 86_400)),
            Duration::from_secs(600)
        );
    }
}
