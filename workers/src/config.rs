//! Settings of the workers; every one a flag with an environment variable beside it.

use clap::Args;

/// How a worker pulls and runs turns.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Most user messages in hand at once (and per pull request); their threads run in
    /// parallel, each thread's messages one after the other.
    #[arg(long, env = "WORKER_BATCH", default_value_t = 256)]
    pub worker_batch: usize,
}
