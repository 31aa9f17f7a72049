//! Settings of the projector; every one a flag with an environment variable.

use std::time::Duration;

use clap::Args;
use common::config::parse_duration;

/// How the projector reads.
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
}
