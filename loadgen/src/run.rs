//! A run from start to end: warn about limits that will spoil it, connect with bounded
//! concurrency, start every connection's task at one instant, stop sending, drain, and
//! turn what was measured into a [`Report`].

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Load, Mode, Plan, Stop};
use crate::connection::{self, ConnectError, LoadRun, Outcome, Socket};
use crate::frame::Composer;
use crate::progress::{self, Live, Phase, Progress};
use crate::report::{Connections, IdleReport, LoadReport, Report};
use crate::stats::Summary;

/// Runs the plan; Ctrl-C stops sending (and connecting) early, a second Ctrl-C exits.
pub async fn run(plan: Plan) -> anyhow::Result<Report> {
    // Read before connecting: once the descriptors run out, /proc cannot be opened.
    let file_limit = open_file_limit();
    warn_about_limits(&plan, file_limit);
    let (stop, _) = watch::channel(false);
    let stop = Arc::new(stop);
    tokio::spawn(stop_on_ctrl_c(stop.clone()));

    let live = Arc::new(Live::default());
    let progress = Progress::start(
        live.clone(),
        Phase::Connecting {
            total: plan.connections as u64,
        },
    );
    let (sockets, failures) = connect_all(&plan, &live, &stop, file_limit).await;
    let mut connections = Connections {
        requested: plan.connections as u64,
        opened: sockets.len() as u64,
        failed: failures.values().sum(),
        failures,
        closed_early: BTreeMap::new(),
    };

    let report = match &plan.mode {
        Mode::Idle { hold } => {
            let held_from = Instant::now();
            progress.set(Phase::Holding {
                started: held_from.into_std(),
                hold: *hold,
            });
            let mut tasks = JoinSet::new();
            for socket in sockets {
                tasks.spawn(connection::idle(
                    socket,
                    held_from + *hold,
                    live.clone(),
                    stop.subscribe(),
                ));
            }
            let outcomes = tasks.join_all().await;
            let held = held_from.elapsed();
            count_closed_early(&mut connections, &outcomes);
            let open_at_end = connections.opened - connections.closed_early.values().sum::<u64>();
            Report::Idle(IdleReport {
                url: plan.url.clone(),
                connections,
                held_s: held.as_secs_f64(),
                open_at_end,
            })
        }
        Mode::Load(load) => {
            let (outcomes, summary, timing) =
                send_load(&plan, load, sockets, &live, &stop, &progress).await;
            count_closed_early(&mut connections, &outcomes);
            Report::Load(Box::new(LoadReport::new(
                &plan,
                load,
                connections,
                &summary,
                timing,
            )))
        }
    };
    progress.finish().await;
    Ok(report)
}

/// When the measured part of a load run began and ended.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub measure_from: std::time::Instant,
    pub sending_stopped: std::time::Instant,
    pub finished: std::time::Instant,
}

async fn send_load(
    plan: &Plan,
    load: &Load,
    sockets: Vec<Socket>,
    live: &Arc<Live>,
    stop: &Arc<watch::Sender<bool>>,
    progress: &Progress,
) -> (Vec<Outcome>, Summary, Timing) {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let (send_until, budget) = match load.stop {
        Stop::After(duration) => (Some(measure_from + duration), None),
        Stop::Messages(count) => (None, Some(AtomicU64::new(count))),
    };
    let summary = Arc::new(Mutex::new(Summary::default()));
    let run = Arc::new(LoadRun {
        composer: Composer::new(&load.content, &run_id[..8]),
        live: live.clone(),
        summary: summary.clone(),
        connections: sockets.len(),
        in_flight: load.in_flight,
        period: load.period(sockets.len().max(1)),
        start,
        measure_from,
        send_until,
        budget,
        drain: load.drain,
        stop: stop.clone(),
    });
    progress.set(Phase::Sending {
        started: start.into_std(),
        measure_from: measure_from.into_std(),
    });

    let mut tasks = JoinSet::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        tasks.spawn(connection::load(socket, index, run.clone()));
    }
    let mut stopped = stop.subscribe();
    let sending_over = async {
        match send_until {
            Some(until) => tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = connection::stopped(&mut stopped) => {}
            },
            None => connection::stopped(&mut stopped).await,
        }
    };
    let mut outcomes = Vec::with_capacity(plan.connections);
    let mut sending_stopped = None;
    tokio::pin!(sending_over);
    loop {
        tokio::select! {
            () = &mut sending_over, if sending_stopped.is_none() => {
                let now = Instant::now();
                sending_stopped = Some(now);
                progress.set(Phase::Draining { started: now.into_std() });
            }
            joined = tasks.join_next() => match joined {
                Some(Ok(outcome)) => outcomes.push(outcome),
                Some(Err(error)) => outcomes.push(Outcome { closed_early: Some(format!("task failed: {error}")) }),
                None => break,
            },
        }
    }
    let finished = Instant::now();
    drop(run);
    let summary = std::mem::take(
        &mut *summary
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    let timing = Timing {
        measure_from: measure_from.into_std(),
        sending_stopped: sending_stopped
            .unwrap_or(finished)
            .max(measure_from)
            .into_std(),
        finished: finished.into_std(),
    };
    (outcomes, summary, timing)
}

/// Opens the connections, at most `connect_concurrency` handshakes at a time.
async fn connect_all(
    plan: &Plan,
    live: &Live,
    stop: &watch::Sender<bool>,
    file_limit: Option<u64>,
) -> (Vec<Socket>, BTreeMap<String, u64>) {
    let url = plan.url.as_str();
    let mut attempts = futures::stream::iter(0..plan.connections)
        .map(|_| connection::open(url))
        .buffer_unordered(plan.connect_concurrency);
    let mut stopped = stop.subscribe();
    let mut sockets = Vec::with_capacity(plan.connections);
    let mut failures = BTreeMap::new();
    let mut told_emfile = false;
    loop {
        let attempt = tokio::select! {
            attempt = attempts.next() => attempt,
            () = connection::stopped(&mut stopped) => None,
        };
        match attempt {
            None => break,
            Some(Ok(socket)) => {
                Live::bump(&live.connected);
                Live::bump(&live.open);
                sockets.push(socket);
            }
            Some(Err(error)) => {
                Live::bump(&live.failed);
                if error == ConnectError::TooManyOpenFiles && !told_emfile {
                    told_emfile = true;
                    let limit =
                        file_limit.map_or_else(|| "too few".to_owned(), |limit| limit.to_string());
                    progress::note(&format!(
                        "error: Too many open files (EMFILE) after {} connections: this shell allows {limit} \
                         open files. Run `ulimit -n 65536` first (the server needs the same).",
                        sockets.len()
                    ));
                }
                *failures.entry(error.label()).or_default() += 1;
            }
        }
    }
    (sockets, failures)
}

fn count_closed_early(connections: &mut Connections, outcomes: &[Outcome]) {
    for reason in outcomes
        .iter()
        .filter_map(|outcome| outcome.closed_early.as_ref())
    {
        *connections.closed_early.entry(reason.clone()).or_default() += 1;
    }
}

async fn stop_on_ctrl_c(stop: Arc<watch::Sender<bool>>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    progress::note("stopping: finishing outstanding messages (Ctrl-C again to quit now)");
    stop.send_replace(true);
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}

fn warn_about_limits(plan: &Plan, file_limit: Option<u64>) {
    // Sockets, plus a few for the runtime and stdio.
    let needed = plan.connections as u64 + 32;
    if let Some(limit) = file_limit
        && limit < needed
    {
        eprintln!(
            "warning: {} connections need about {needed} open files but this shell allows {limit}; \
             run `ulimit -n 65536` first",
            plan.connections
        );
    }
    if let Mode::Load(load) = &plan.mode
        && load.exceeds_default_rate_limit(plan.connections)
    {
        let per_connection = match load.rate {
            Some(rate) => format!("{:.2} msg/s per connection", rate / plan.connections as f64),
            None => "--rate 0 (as fast as acks allow)".to_owned(),
        };
        eprintln!(
            "note: {per_connection} is over the server's default limit of 10 messages per 10 s per \
             thread; expect `rate_limited` unless the server runs with a higher RATE_LIMIT_MESSAGES"
        );
    }
}

/// The soft limit on open files, from /proc/self/limits (Linux); `None` where unknown.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_file_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             127431               127431               processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(limits), Some(1024));
        assert_eq!(
            parse_open_file_limit("Max open files  unlimited unlimited files"),
            None
        );
    }

    #[test]
    fn connections_closed_early_are_counted_by_reason() {
        let mut connections = Connections::default();
        let outcomes = [
            Outcome {
                closed_early: Some("closed by the server (1013: too slow)".into()),
            },
            Outcome::default(),
            Outcome {
                closed_early: Some("closed by the server (1013: too slow)".into()),
            },
        ];
        count_closed_early(&mut connections, &outcomes);
        assert_eq!(
            connections
                .closed_early
                .get("closed by the server (1013: too slow)"),
            Some(&2)
        );
    }
}
