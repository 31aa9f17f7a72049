//! The command line, parsed once into a [`Plan`]: nothing past this module sees a raw flag.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

/// Longest message the ingress accepts, in characters (API.md); longer ones are answered
/// with `content_too_long`, which is sometimes what a run wants to measure.
pub const MAX_CONTENT_CHARS: usize = 10_000;

const AFTER_HELP: &str = "\
Rate limits:
  The server limits each thread, and every connection here is its own thread, to
  RATE_LIMIT_MESSAGES (default 10) messages per RATE_LIMIT_WINDOW (default 10s). With default
  server settings a per-connection rate above 1 msg/s (--rate divided by --connections), and
  any run with --rate 0, will be answered with `rate_limited`. Spread load over more
  connections, or raise the limit on the server for throughput runs.

Many connections:
  Each connection is a file descriptor. 10,000 connections need `ulimit -n` above 10,000 in
  the shell that starts loadgen (and in the one that starts the server): run
  `ulimit -n 65536` first.

Examples:
  loadgen --connections 200 --rate 150 --duration 30s
  loadgen --connections 1000 --rate 800 --warmup 5s --duration 1m --json
  loadgen --idle --connections 10000 --duration 2m";

/// Drives the smart-support WebSocket ingress with many concurrent conversations and
/// reports throughput and latency (send→ack, send→first agent reply).
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version, after_help = AFTER_HELP)]
pub struct Args {
    /// WebSocket endpoint of the ingress (ws:// only). Only loopback hosts (127.0.0.0/8,
    /// ::1, localhost) are allowed unless --allow-remote is given.
    #[arg(long, env = "LOADGEN_URL", default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,

    /// Allow a --url whose host is not loopback. Load tests hurt: point them only at
    /// systems you are responsible for.
    #[arg(long, env = "LOADGEN_ALLOW_REMOTE")]
    pub allow_remote: bool,

    /// WebSocket connections to open; each one is its own conversation (thread).
    #[arg(long, short = 'c', env = "LOADGEN_CONNECTIONS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,

    /// Most connection handshakes in progress at once while connecting.
    #[arg(long, env = "LOADGEN_CONNECT_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_concurrency: u32,

    /// Total messages per second over all connections, spread evenly: each connection
    /// sends every connections/rate seconds, their schedules staggered. Over 1 msg/s per
    /// connection is refused with `rate_limited` by a server with default settings (see
    /// below). 0: as fast as acks allow, each connection keeping --in-flight unacked.
    #[arg(long, short = 'r', env = "LOADGEN_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub rate: f64,

    /// Most unacked messages per connection. With --rate a connection at this limit
    /// waits, so the achieved rate can fall short of --rate (the report shows it).
    #[arg(long, env = "LOADGEN_IN_FLIGHT", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub in_flight: u32,

    /// How long to send (after --warmup), e.g. 30s, 2m, 1m30s, 500ms; in --idle mode how
    /// long to hold the connections. Default 10s. Excludes --messages.
    #[arg(long, short = 'd', env = "LOADGEN_DURATION", value_parser = parse_duration,
          conflicts_with = "messages")]
    pub duration: Option<Duration>,

    /// Send this many messages in total (after --warmup) instead of sending for a duration.
    #[arg(long, short = 'n', env = "LOADGEN_MESSAGES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: Option<u64>,

    /// Send for this long first without counting: messages sent during the warmup are
    /// left out of every number in the report.
    #[arg(long, env = "LOADGEN_WARMUP", default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// After sending stops, wait up to this long for outstanding acks and replies; what
    /// is still missing then is reported as unacked / unanswered.
    #[arg(long, env = "LOADGEN_DRAIN", default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,

    /// Send this text as every message. Default: short order questions that vary per
    /// message ("Where is my order ORD-004217?").
    #[arg(long, env = "LOADGEN_CONTENT", conflicts_with = "content_size")]
    pub content: Option<String>,

    /// Send messages of exactly this many characters (over 10000 is answered with
    /// `content_too_long`).
    #[arg(long, env = "LOADGEN_CONTENT_SIZE",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub content_size: Option<u64>,

    /// Open the connections, send nothing (a ping a minute keeps them past the server's
    /// idle timeout), hold them for --duration and report how many stayed open. For
    /// measuring the server's memory per idle connection (read its RSS separately).
    #[arg(long, env = "LOADGEN_IDLE",
          conflicts_with_all = ["messages", "rate", "in_flight", "content", "content_size", "warmup"])]
    pub idle: bool,

    /// Print the final report as JSON on stdout instead of text.
    #[arg(long, env = "LOADGEN_JSON")]
    pub json: bool,
}

/// A run, checked: what to connect to, how many times, and what to do then.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub url: String,
    pub connections: usize,
    pub connect_concurrency: usize,
    pub mode: Mode,
    pub json: bool,
}

/// Hold idle connections, or send load.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Idle { hold: Duration },
    Load(Load),
}

/// How to send load.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Messages per second over all connections; `None`: as fast as acks allow.
    pub rate: Option<f64>,
    pub in_flight: usize,
    pub stop: Stop,
    pub warmup: Duration,
    pub drain: Duration,
    pub content: Content,
}

impl Load {
    /// Seconds between two messages of one connection, when paced.
    pub fn period(&self, connections: usize) -> Option<Duration> {
        self.rate.map(|rate| {
            Duration::from_secs_f64(connections as f64 / rate).max(Duration::from_nanos(1))
        })
    }

    /// Whether the default server rate limit (10 messages per 10 s per thread) will refuse
    /// some of this load.
    pub fn exceeds_default_rate_limit(&self, connections: usize) -> bool {
        match self.rate {
            None => true,
            Some(rate) => rate / connections as f64 > 1.0,
        }
    }
}

/// When sending stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    After(Duration),
    Messages(u64),
}

/// What the messages say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Order questions that vary per message.
    Varied,
    /// This text every time.
    Fixed(String),
    /// Filler of this many characters.
    Size(usize),
}

impl Args {
    /// Checks the flags that clap cannot: the URL and its host.
    pub fn plan(self) -> Result<Plan, ConfigError> {
        let host = ws_host(&self.url)?;
        if !self.allow_remote && !is_loopback_host(host) {
            return Err(ConfigError::Remote(host.to_owned()));
        }
        let duration = self.duration.unwrap_or(Duration::from_secs(10));
        let mode = if self.idle {
            Mode::Idle { hold: duration }
        } else {
            let content = match (self.content, self.content_size) {
                (Some(text), _) if text.trim().is_empty() => return Err(ConfigError::EmptyContent),
                (Some(text), _) => Content::Fixed(text),
                (None, Some(size)) => Content::Size(usize::try_from(size).unwrap_or(usize::MAX)),
                (None, None) => Content::Varied,
            };
            Mode::Load(Load {
                rate: (self.rate > 0.0).then_some(self.rate),
                in_flight: self.in_flight as usize,
                stop: match self.messages {
                    Some(count) => Stop::Messages(count),
                    None => Stop::After(duration),
                },
                warmup: self.warmup,
                drain: self.drain,
                content,
            })
        };
        Ok(Plan {
            url: self.url,
            connections: self.connections as usize,
            connect_concurrency: self.connect_concurrency as usize,
            mode,
            json: self.json,
        })
    }
}

/// Flags that parse but do not make a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    NotWs(String),
    NoHost(String),
    Remote(String),
    EmptyContent,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::NotWs(url) => write!(
                f,
                "--url {url:?} is not a ws:// URL (wss:// is not supported: the ingress is reached in plain text on loopback)"
            ),
            ConfigError::NoHost(url) => write!(f, "--url {url:?} has no host"),
            ConfigError::Remote(host) => write!(
                f,
                "{host:?} is not a loopback host; pass --allow-remote to load a system elsewhere"
            ),
            ConfigError::EmptyContent => write!(
                f,
                "--content is empty; the server would refuse every message"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The host of a `ws://` URL, without brackets, port or user info.
pub fn ws_host(url: &str) -> Result<&str, ConfigError> {
    let rest = url
        .get(..5)
        .filter(|scheme| scheme.eq_ignore_ascii_case("ws://"))
        .map(|_| &url[5..])
        .ok_or_else(|| ConfigError::NotWs(url.to_owned()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed
            .split_once(']')
            .map(|(host, _)| host)
            .unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(ConfigError::NoHost(url.to_owned()));
    }
    Ok(host)
}

/// `localhost`, any 127.0.0.0/8 address, or ::1 (also as an IPv4-mapped address).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// A duration like `30s`, `2m`, `1m30s`, `500ms`, `1.5h`; a bare number is seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds, raw);
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{raw:?}: the last number has no unit (ms, s, m or h)"))?;
        let unit_len = rest[number_len..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - number_len);
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("{raw:?} is not a duration like 30s, 2m, 1m30s or 500ms"))?;
        let unit = match &rest[number_len..number_len + unit_len] {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(format!(
                    "{raw:?}: unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        total += number * unit;
        rest = &rest[number_len + unit_len..];
    }
    seconds_to_duration(total, raw)
}

fn seconds_to_duration(seconds: f64, raw: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{raw:?} is not a duration of zero or more"))
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "{raw:?} is not a rate of zero or more messages per second"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let args = Args::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
            .map_err(|err| err.to_string())?;
        args.plan().map_err(|err| err.to_string())
    }

    #[test]
    fn the_loopback_names_and_addresses_are_loopback() {
        for host in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn other_hosts_are_not_loopback() {
        for host in [
            "10.0.0.1",
            "128.0.0.1",
            "::2",
            "example.com",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn the_host_is_read_from_a_ws_url() {
        assert_eq!(ws_host("ws://127.0.0.1:8080/ws"), Ok("127.0.0.1"));
        assert_eq!(ws_host("ws://[::1]:8080/ws"), Ok("::1"));
        assert_eq!(ws_host("WS://localhost/ws?x=1"), Ok("localhost"));
        assert_eq!(ws_host("ws://user:pw@example.com:80/ws"), Ok("example.com"));
        assert_eq!(ws_host("ws://evil.com#@127.0.0.1/"), Ok("evil.com"));
    }

    #[test]
    fn urls_that_are_not_ws_or_have_no_host_are_rejected() {
        assert!(matches!(
            ws_host("http://127.0.0.1:8080/ws"),
            Err(ConfigError::NotWs(_))
        ));
        assert!(matches!(
            ws_host("wss://127.0.0.1/ws"),
            Err(ConfigError::NotWs(_))
        ));
        assert!(matches!(
            ws_host("ws://:8080/ws"),
            Err(ConfigError::NoHost(_))
        ));
    }

    #[test]
    fn a_remote_url_is_refused_unless_allowed() {
        let refused = plan(&["--url", "ws://10.1.2.3:8080/ws"]).unwrap_err();
        assert!(refused.contains("--allow-remote"), "{refused}");
        assert!(plan(&["--url", "ws://10.1.2.3:8080/ws", "--allow-remote"]).is_ok());
    }

    #[test]
    fn durations_take_ms_s_m_h_and_combinations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for raw in ["", "s", "10x", "1m30", "-5s", "1..2s", "abc"] {
            assert!(parse_duration(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn the_defaults_send_unpaced_for_ten_seconds_over_a_hundred_connections() {
        let plan = plan(&[]).unwrap();
        assert_eq!(plan.connections, 100);
        let Mode::Load(load) = plan.mode else {
            panic!("not a load plan")
        };
        assert_eq!(load.rate, None);
        assert_eq!(load.in_flight, 1);
        assert_eq!(load.stop, Stop::After(Duration::from_secs(10)));
        assert_eq!(load.content, Content::Varied);
    }

    #[test]
    fn a_message_count_replaces_the_duration_and_excludes_it() {
        let Mode::Load(load) = plan(&["--messages", "500"]).unwrap().mode else {
            panic!()
        };
        assert_eq!(load.stop, Stop::Messages(500));
        assert!(plan(&["--messages", "500", "--duration", "5s"]).is_err());
    }

    #[test]
    fn idle_mode_holds_for_the_duration_and_refuses_load_flags() {
        let plan = plan(&["--idle", "--duration", "2m", "-c", "10000"]).unwrap();
        assert_eq!(
            plan.mode,
            Mode::Idle {
                hold: Duration::from_secs(120)
            }
        );
        assert!(super::tests::plan(&["--idle", "--rate", "10"]).is_err());
    }

    #[test]
    fn the_pace_of_one_connection_is_connections_over_rate() {
        let Mode::Load(load) = plan(&["--rate", "50", "-c", "100"]).unwrap().mode else {
            panic!()
        };
        assert_eq!(load.period(100), Some(Duration::from_secs(2)));
        assert!(!load.exceeds_default_rate_limit(100));
        assert!(load.exceeds_default_rate_limit(20));
    }

    #[test]
    fn negative_rates_and_zero_connections_are_rejected() {
        assert!(plan(&["--rate", "-1"]).is_err());
        assert!(plan(&["--connections", "0"]).is_err());
    }
}
