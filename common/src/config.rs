//! Argument groups the services share. Every field is a flag with an environment
//! variable beside it, so `--help` documents both.

use std::time::Duration;

use clap::Args;

/// How to reach NATS JetStream and how the chat stream is set up.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated for a cluster. It may hold credentials, so
    /// `--help` names the variable without its value.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true
    )]
    pub nats_url: String,

    /// Replicas of the chat stream: 1 on one server, 3 on a cluster.
    #[arg(long, env = "NATS_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,

    /// How long JetStream remembers a message id: a client may resend a message with
    /// the same `client_msg_id` for this long without it becoming a second message.
    #[arg(long, env = "NATS_DUPLICATE_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub duplicate_window: Duration,

    /// Name this process gives its NATS connection (shown by the server's monitoring).
    #[arg(long, env = "NATS_CLIENT_NAME", default_value = "smart-support")]
    pub client_name: String,
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g. postgres://user@127.0.0.1:5432/smart_support. It may hold a
    /// password, so `--help` names the variable without its value.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Largest number of connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
}

/// Where `/metrics` is served: a listener of its own, apart from the service's port, so that
/// publishing the service (the web and API port) never publishes its metrics.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Address of the listener that serves `GET /metrics` (Prometheus text), apart from the
    /// service's own port. Default 127.0.0.1:9464 (loopback only); when that default is taken
    /// (another service on the same host) the service starts without /metrics and logs an
    /// error. An address set here must be free, or the service does not start. `off`: no
    /// /metrics at all.
    #[arg(long, env = "METRICS_ADDR", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<MetricsAddr>,
}

/// Where the metrics listener binds when `METRICS_ADDR` is not set.
pub const DEFAULT_METRICS_ADDR: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

/// A `METRICS_ADDR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAddr {
    /// No `/metrics`.
    Off,
    /// A listener on this address.
    At(std::net::SocketAddr),
}

/// Parses `off` or a socket address (`127.0.0.1:9464`, `0.0.0.0:9464`, `[::1]:9464`).
pub fn parse_metrics_addr(raw: &str) -> Result<MetricsAddr, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("off") {
        return Ok(MetricsAddr::Off);
    }
    raw.parse()
        .map(MetricsAddr::At)
        .map_err(|_| format!("`{raw}` is not an address like 127.0.0.1:9464, nor `off`"))
}

impl MetricsArgs {
    /// Settings that bind the metrics listener on `addr` (tests: `127.0.0.1:0`).
    pub fn at(addr: std::net::SocketAddr) -> MetricsArgs {
        MetricsArgs {
            metrics_addr: Some(MetricsAddr::At(addr)),
        }
    }
}

/// Parses `500ms`, `30s`, `10m`, `2h` (or a bare number of seconds).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{raw}` is not a duration like 500ms, 30s, 10m, 2h or 90d"))?;
    let millis = match unit {
        "ms" => Some(number),
        "" | "s" => number.checked_mul(1_000),
        "m" => number.checked_mul(60_000),
        "h" => number.checked_mul(3_600_000),
        "d" => number.checked_mul(86_400_000),
        _ => return Err(format!("`{raw}` has an unknown unit; use ms, s, m, h or d")),
    };
    let millis = millis.ok_or_else(|| format!("`{raw}` is too long"))?;
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
    }

    #[test]
    fn a_metrics_address_is_an_address_or_off() {
        assert_eq!(
            parse_metrics_addr("0.0.0.0:9464"),
            Ok(MetricsAddr::At("0.0.0.0:9464".parse().unwrap()))
        );
        assert_eq!(parse_metrics_addr("off"), Ok(MetricsAddr::Off));
        assert!(parse_metrics_addr("9464").is_err());
        assert_eq!(DEFAULT_METRICS_ADDR.to_string(), "127.0.0.1:9464");
    }

    #[test]
    fn a_duration_without_a_number_or_with_an_odd_unit_is_refused() {
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("10 weeks").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }
}
