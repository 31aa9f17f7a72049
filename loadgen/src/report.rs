//! The final report on stdout: text for people, `--json` for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{Load, Plan};
use crate::run::Timing;
use crate::stats::{Counts, Percentiles, Summary};

/// What a run found.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Report {
    Load(Box<LoadReport>),
    Idle(IdleReport),
}

/// Connections asked for, opened, failed, and lost along the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Connections {
    pub requested: u64,
    pub opened: u64,
    pub failed: u64,
    /// Failed connects by reason.
    pub failures: BTreeMap<String, u64>,
    /// Connections the server (or the network) closed before the end, by reason.
    pub closed_early: BTreeMap<String, u64>,
}

/// A load run. Every count and latency is of messages sent after the warmup.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub url: String,
    pub connections: Connections,
    /// Messages per second asked for; `null`: as fast as acks allow.
    pub rate_target: Option<f64>,
    pub in_flight: usize,
    pub warmup_s: f64,
    /// Time spent sending after the warmup.
    pub duration_s: f64,
    /// Time from the end of sending until the last connection finished.
    pub drain_s: f64,
    #[serde(flatten)]
    pub counts: Counts,
    /// Acks per second, from the end of the warmup to the last ack.
    pub ack_rate: f64,
    /// Replies per second, from the end of the warmup to the last reply.
    pub reply_rate: f64,
    /// Error frames by code.
    pub errors: BTreeMap<String, u64>,
    pub ack_latency_ms: Option<Percentiles>,
    pub reply_latency_ms: Option<Percentiles>,
    /// Stored events per turn: `events` / `replied_events` (whole run); `null` before a reply.
    pub events_per_reply: Option<f64>,
    /// Model → customer latency of the `delta` frames whose text carried the model's send
    /// time (`[t=<Unix µs>]`, the fake model of `scripts/bench_deltas.sh`), whole run.
    pub delta_latency_ms: Option<Percentiles>,
}

/// An idle run: how many connections stayed open.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub url: String,
    pub connections: Connections,
    pub held_s: f64,
    /// Connections still open when the hold ended.
    pub open_at_end: u64,
}

impl LoadReport {
    pub fn new(
        plan: &Plan,
        load: &Load,
        connections: Connections,
        summary: &Summary,
        timing: Timing,
    ) -> LoadReport {
        let per_second = |count: u64, last: Option<std::time::Instant>| {
            let seconds = last.map_or(0.0, |last| {
                last.saturating_duration_since(timing.measure_from)
                    .as_secs_f64()
            });
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        LoadReport {
            url: plan.url.clone(),
            connections,
            rate_target: load.rate,
            in_flight: load.in_flight,
            warmup_s: load.warmup.as_secs_f64(),
            duration_s: timing
                .sending_stopped
                .saturating_duration_since(timing.measure_from)
                .as_secs_f64(),
            drain_s: timing
                .finished
                .saturating_duration_since(timing.sending_stopped)
                .as_secs_f64(),
            counts: summary.counts,
            ack_rate: per_second(summary.counts.acked, summary.last_ack),
            reply_rate: per_second(summary.counts.replied, summary.last_reply),
            errors: summary.errors.clone(),
            ack_latency_ms: summary.ack_latency(),
            reply_latency_ms: summary.reply_latency(),
            events_per_reply: (summary.counts.replied_events > 0)
                .then(|| summary.counts.events as f64 / summary.counts.replied_events as f64),
            delta_latency_ms: summary.delta_latency(),
        }
    }
}

impl Report {
    /// A load run succeeds when at least one message was acked; an idle run when at least
    /// one connection stayed open.
    pub fn succeeded(&self) -> bool {
        match self {
            Report::Load(report) => report.counts.acked > 0,
            Report::Idle(report) => report.open_at_end > 0,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match self {
            Report::Load(report) => load_text(&mut out, report),
            Report::Idle(report) => idle_text(&mut out, report),
        }
        out
    }
}

fn connections_text(out: &mut String, connections: &Connections) {
    let closed: u64 = connections.closed_early.values().sum();
    let _ = writeln!(
        out,
        "connections   {} opened of {} ({} failed, {closed} closed early)",
        connections.opened, connections.requested, connections.failed
    );
    for (reason, count) in &connections.failures {
        let _ = writeln!(out, "  failed       {count} × {reason}");
    }
    for (reason, count) in &connections.closed_early {
        let _ = writeln!(out, "  closed       {count} × {reason}");
    }
}

fn load_text(out: &mut String, report: &LoadReport) {
    let counts = &report.counts;
    let _ = writeln!(out, "loadgen → {}", report.url);
    connections_text(out, &report.connections);
    let pace = match report.rate_target {
        Some(rate) => format!("--rate {rate} msg/s"),
        None => "as fast as acks allow".to_owned(),
    };
    let _ = writeln!(
        out,
        "load          {pace}, at most {} unacked per connection",
        report.in_flight
    );
    let _ = writeln!(
        out,
        "time          {:.2} s sending after {:.2} s warmup, {:.2} s draining",
        report.duration_s, report.warmup_s, report.drain_s
    );
    let _ = writeln!(
        out,
        "messages      sent {}, acked {}, rejected {}, replied {}",
        counts.sent, counts.acked, counts.rejected, counts.replied
    );
    let _ = writeln!(
        out,
        "throughput    {:.1} acks/s, {:.1} replies/s",
        report.ack_rate, report.reply_rate
    );
    let _ = writeln!(
        out,
        "latency ms          p50        p95        p99        max"
    );
    for (name, latency) in [
        ("send→ack", report.ack_latency_ms),
        ("send→reply", report.reply_latency_ms),
    ] {
        match latency {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "  {name:<12} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
                    l.p50, l.p95, l.p99, l.max
                );
            }
            None => {
                let _ = writeln!(out, "  {name:<12} {:>10}", "-");
            }
        }
    }
    if let Some(l) = report.delta_latency_ms {
        let _ = writeln!(
            out,
            "  {:<12} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
            "model→delta", l.p50, l.p95, l.p99, l.max
        );
    }
    if counts.deltas > 0 || counts.events > 0 {
        let per_reply = report
            .events_per_reply
            .map_or("-".to_owned(), |per| format!("{per:.2}"));
        let _ = writeln!(
            out,
            "frames        {} events ({per_reply} per reply), {} deltas (whole run)",
            counts.events, counts.deltas
        );
    }
    if report.errors.is_empty() {
        let _ = writeln!(out, "errors        none");
    } else {
        let list: Vec<String> = report
            .errors
            .iter()
            .map(|(code, count)| format!("{code} {count}"))
            .collect();
        let _ = writeln!(out, "errors        {}", list.join(", "));
    }
    let _ = writeln!(
        out,
        "left over     unacked {}, unanswered {}",
        counts.unacked, counts.unanswered
    );
}

fn idle_text(out: &mut String, report: &IdleReport) {
    let _ = writeln!(out, "loadgen --idle → {}", report.url);
    connections_text(out, &report.connections);
    let _ = writeln!(
        out,
        "held          {:.1} s; {} of {} connections open at the end",
        report.held_s, report.open_at_end, report.connections.opened
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_report() -> LoadReport {
        LoadReport {
            url: "ws://127.0.0.1:8080/ws".to_owned(),
            connections: Connections {
                requested: 100,
                opened: 99,
                failed: 1,
                failures: BTreeMap::from([("connection refused".to_owned(), 1)]),
                closed_early: BTreeMap::new(),
            },
            rate_target: Some(90.0),
            in_flight: 1,
            warmup_s: 2.0,
            duration_s: 10.0,
            drain_s: 0.25,
            counts: Counts {
                sent: 900,
                acked: 897,
                rejected: 2,
                replied: 890,
                unacked: 1,
                unanswered: 7,
                events: 0,
                replied_events: 0,
                deltas: 0,
            },
            ack_rate: 89.7,
            reply_rate: 89.0,
            errors: BTreeMap::from([("rate_limited".to_owned(), 2)]),
            ack_latency_ms: Some(Percentiles {
                p50: 1.5,
                p95: 3.25,
                p99: 7.0,
                max: 12.125,
            }),
            reply_latency_ms: None,
            events_per_reply: None,
            delta_latency_ms: None,
        }
    }

    #[test]
    fn the_text_report_shows_every_number_in_its_place() {
        let text = Report::Load(Box::new(load_report())).to_text();
        let expected = "\
loadgen → ws://127.0.0.1:8080/ws
connections   99 opened of 100 (1 failed, 0 closed early)
  failed       1 × connection refused
load          --rate 90 msg/s, at most 1 unacked per connection
time          10.00 s sending after 2.00 s warmup, 0.25 s draining
messages      sent 900, acked 897, rejected 2, replied 890
throughput    89.7 acks/s, 89.0 replies/s
latency ms          p50        p95        p99        max
  send→ack          1.500      3.250      7.000     12.125
  send→reply            -
errors        rate_limited 2
left over     unacked 1, unanswered 7
";
        assert_eq!(text, expected);
    }

    #[test]
    fn the_json_report_is_flat_with_the_counts_beside_the_rates() {
        let json: serde_json::Value =
            serde_json::from_str(&Report::Load(Box::new(load_report())).to_json()).unwrap();
        assert_eq!(json["mode"], "load");
        assert_eq!(json["connections"]["opened"], 99);
        assert_eq!(json["sent"], 900);
        assert_eq!(json["unanswered"], 7);
        assert_eq!(json["ack_rate"], 89.7);
        assert_eq!(json["errors"]["rate_limited"], 2);
        assert_eq!(json["ack_latency_ms"]["p99"], 7.0);
        assert!(json["reply_latency_ms"].is_null());
    }

    #[test]
    fn a_run_without_any_ack_failed() {
        let mut report = load_report();
        assert!(Report::Load(Box::new(report.clone())).succeeded());
        report.counts.acked = 0;
        assert!(!Report::Load(Box::new(report)).succeeded());
    }

    #[test]
    fn the_idle_report_counts_connections_still_open() {
        let report = Report::Idle(IdleReport {
            url: "ws://127.0.0.1:8080/ws".to_owned(),
            connections: Connections {
                requested: 10_000,
                opened: 10_000,
                closed_early: BTreeMap::from([(
                    "closed by the server (1001: server shutting down)".to_owned(),
                    3,
                )]),
                ..Connections::default()
            },
            held_s: 120.0,
            open_at_end: 9_997,
        });
        assert!(report.succeeded());
        let text = report.to_text();
        assert!(
            text.contains("held          120.0 s; 9997 of 10000 connections open at the end"),
            "{text}"
        );
        assert!(
            text.contains("3 × closed by the server (1001: server shutting down)"),
            "{text}"
        );
    }
}
