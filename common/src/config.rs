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

    /// NATS user this process connects as (nats/users.conf: `admin` for the operators'
    /// commands, `ingress`, `worker`, `projector`, `api` for the services). Unset: no user,
    /// for a server without authorization.
    #[arg(long, env = "NATS_USER")]
    pub nats_user: Option<String>,

    /// Password of `NATS_USER`. Hidden in `--help` and never logged.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,

    /// PEM file of the certificate authority that signed the NATS server's certificate. Set:
    /// the connection requires TLS and trusts this authority (besides the system's).
    #[arg(long, env = "NATS_TLS_CA")]
    pub nats_tls_ca: Option<std::path::PathBuf>,
}

/// A service's own NATS user (nats/users.conf), for a process that runs more than one
/// service (`smart-support up`, the `projections` binary): each connects as itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsUser {
    Ingress,
    Worker,
    Projector,
    Api,
}

impl NatsUser {
    /// The user's name in nats/users.conf.
    pub fn name(self) -> &'static str {
        match self {
            NatsUser::Ingress => "ingress",
            NatsUser::Worker => "worker",
            NatsUser::Projector => "projector",
            NatsUser::Api => "api",
        }
    }
}

/// The services' NATS passwords in a process that runs several services. A service whose
/// password is set connects as its own user ([`NatsUser`]); one whose password is unset
/// connects like the rest of the process (`NATS_USER`, or no user).
#[derive(Debug, Clone, Default, Args)]
pub struct ServicePasswords {
    /// Password of the NATS user `ingress`. Hidden in `--help` and never logged.
    #[arg(long, env = "INGRESS_NATS_PASSWORD", hide_env_values = true)]
    pub ingress_nats_password: Option<String>,
    /// Password of the NATS user `worker`. Hidden in `--help` and never logged.
    #[arg(long, env = "WORKER_NATS_PASSWORD", hide_env_values = true)]
    pub worker_nats_password: Option<String>,
    /// Password of the NATS user `projector`. Hidden in `--help` and never logged.
    #[arg(long, env = "PROJECTOR_NATS_PASSWORD", hide_env_values = true)]
    pub projector_nats_password: Option<String>,
    /// Password of the NATS user `api`. Hidden in `--help` and never logged.
    #[arg(long, env = "API_NATS_PASSWORD", hide_env_values = true)]
    pub api_nats_password: Option<String>,
}

impl ServicePasswords {
    /// The password of `user`, when set.
    pub fn of(&self, user: NatsUser) -> Option<&String> {
        match user {
            NatsUser::Ingress => self.ingress_nats_password.as_ref(),
            NatsUser::Worker => self.worker_nats_password.as_ref(),
            NatsUser::Projector => self.projector_nats_password.as_ref(),
            NatsUser::Api => self.api_nats_password.as_ref(),
        }
    }
}

impl NatsArgs {
    /// The flags' defaults with `url` (tools and tests that build their settings in code).
    pub fn at(url: impl Into<String>) -> NatsArgs {
        NatsArgs {
            nats_url: url.into(),
            stream_replicas: 1,
            duplicate_window: Duration::from_secs(600),
            client_name: "smart-support".into(),
            nats_user: None,
            nats_password: None,
            nats_tls_ca: None,
        }
    }

    /// These settings with `user` and `password` as the NATS identity.
    pub fn as_user(&self, user: &str, password: &str) -> NatsArgs {
        NatsArgs {
            nats_user: Some(user.to_owned()),
            nats_password: Some(password.to_owned()),
            ..self.clone()
        }
    }

    /// The settings `service` connects with: as its own user when `passwords` has its
    /// password, otherwise as these settings say.
    pub fn for_service(&self, service: NatsUser, passwords: &ServicePasswords) -> NatsArgs {
        match passwords.of(service) {
            Some(password) => self.as_user(service.name(), password),
            None => self.clone(),
        }
    }
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
