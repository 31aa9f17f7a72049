//! Settings of the ingress; every one a flag with an environment variable beside it.

use std::time::Duration;

use clap::Args;

use crate::rate_limit::Limit;
use common::config::parse_duration;
use common::secrets::Secrets;

/// Settings of the WebSocket endpoint.
#[derive(Debug, Clone, Args)]
pub struct IngressArgs {
    /// Secret that signs thread tokens (HMAC-SHA256 of the thread id). Anyone who knows it
    /// can read every conversation: keep it secret, and the same on every ingress instance.
    /// To rotate it, list the new one first (`new,old`): the first signs, every one is
    /// accepted, and a customer who resumes with an old token gets one signed by the new.
    #[arg(long, env = "THREAD_TOKEN_SECRET", hide_env_values = true, value_parser = Secrets::parse)]
    pub thread_token_secret: Secrets,

    /// Largest text frame, in bytes, that is read; a larger one is answered with
    /// `frame_too_large` and the connection stays open.
    #[arg(long, env = "WS_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Events buffered per connection for a client that reads slowly; when full the
    /// connection is closed with code 1013 and the client resumes with `after_seq`.
    #[arg(long, env = "WS_OUTBOUND_BUFFER", default_value_t = 256)]
    pub outbound_buffer: usize,

    /// A connection that sends nothing (not even a ping) for this long is closed.
    #[arg(long, env = "WS_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Most messages one thread may send per window (over every connection and instance).
    #[arg(long, env = "RATE_LIMIT_MESSAGES", default_value_t = 10)]
    pub rate_limit_messages: usize,

    /// The rate limit's window.
    #[arg(long, env = "RATE_LIMIT_WINDOW", default_value = "10s", value_parser = parse_duration)]
    pub rate_limit_window: Duration,

    /// Refuse new messages with `unavailable` while more than this many user messages wait
    /// for a worker (the `workers` consumer's pending count, read every second); 0 turns it
    /// off. Nothing already acknowledged is affected.
    #[arg(long, env = "INGRESS_MAX_BACKLOG", default_value_t = 0)]
    pub max_backlog: u64,

    /// Origins allowed to open a WebSocket, comma-separated (e.g. https://chat.example.com).
    /// Empty: only requests without an Origin header or whose Origin matches the Host.
    #[arg(long, env = "WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
}

impl IngressArgs {
    /// The per-thread rate limit these settings describe.
    pub fn rate_limit(&self) -> Limit {
        Limit {
            messages: self.rate_limit_messages,
            window: self.rate_limit_window,
        }
    }
}
