//! Settings of the projections service; every one a flag with an environment variable.

use clap::Args;

/// How the projector reads and what the REST API requires.
#[derive(Debug, Clone, Args)]
pub struct ProjectionArgs {
    /// Most events applied in one transaction.
    #[arg(long, env = "PROJECTOR_BATCH", default_value_t = 500)]
    pub projector_batch: usize,

    /// Bearer token the operator endpoints (everything under /api but health) require.
    /// Unset: no token is required (for local use only).
    #[arg(long, env = "API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}
