//! The reliability harness: the whole system from its real binaries against real
//! `nats-server` and PostgreSQL ([`system`]), driven by WebSocket conversations that record
//! every message as ok, failed or unknown ([`load`]) and, beside them, an operator at the
//! desk who takes those conversations over and hands them back, recording every command
//! ([`desk`]); a fault injected with real signals ([`Fault`]), then the promises checked
//! ([`invariants`]: I1–I8). `make test` runs every fault at a small scale
//! (`chaos/tests/faults/`); `make chaos` runs them long (`src/main.rs`). docs/reliability.md
//! has the promises and the latest results.

pub mod desk;
pub mod invariants;
pub mod load;
pub mod system;

use std::time::{Duration, Instant};

use anyhow::Context as _;

use desk::{Desk, DeskOptions};
use load::{Load, LoadOptions, Outcome};
use system::{Options, Pausable, System};

/// A fault, injected while the load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// No fault: the baseline.
    None,
    /// `kill -9` of a worker under load (mid-turn, mid-tool-call), restarted later.
    KillWorker,
    /// `kill -9` of the projector, three times, each restarted.
    KillProjector,
    /// `kill -9` of the ingress, restarted on the same port; clients reconnect and resend.
    KillIngress,
    /// `kill -9` of `nats-server`, restarted after 3 s on the same store.
    KillNats,
    /// `kill -9` of PostgreSQL, restarted after 3 s (crash recovery).
    KillPostgres,
    /// SIGSTOP of a worker for longer than the ack wait, then SIGCONT: its late ack must
    /// not make a second reply.
    StopWorker,
    /// SIGSTOP of `nats-server` for 5 s: bounded `unavailable` and 503, recovery without
    /// a restart of any service.
    StopNats,
    /// SIGSTOP of PostgreSQL for 5 s: REST answers 503 within its time-outs, the
    /// projector resumes without a restart.
    StopPostgres,
    /// SIGTERM of every service (each must exit 0 within 30 s), then all started again.
    TerminateAll,
    /// JetStream's store fills up (`max_file_store` of 2 MiB) under load: nothing is acked
    /// that was not stored. Messages stored before the store filled may stay unanswered (the
    /// workers cannot store their turns either), so I2 is not checked for this one.
    FullStore,
    /// A worker dies (a fail point aborts it, as `kill -9` would) right after storing a
    /// dead letter, before the `turn.failed` and the message's termination; unreadable
    /// messages are published until it has. The other worker redoes the dead-lettering:
    /// still one dead letter and one `turn.failed` per message (I2, I6).
    KillAfterDeadLetter,
}

/// How a run went.
#[derive(Debug)]
pub struct Report {
    pub fault: Fault,
    pub acked: usize,
    pub unknown: usize,
    pub refused: usize,
    /// `unavailable` answers the clients got (each followed by a resend).
    pub unavailable: u32,
    pub events: u64,
    /// Operator events the desk got a 202 for.
    pub operator_events: usize,
    /// Customer messages closed by `turn.held` (an operator had the conversation).
    pub held: usize,
    pub elapsed: Duration,
    /// What the fault itself promised and did not keep (e.g. a service that exited non-zero on
    /// SIGTERM), then the I1–I8 violations.
    pub violations: Vec<String>,
}

/// How long and how hard.
#[derive(Debug, Clone)]
pub struct Scale {
    pub load: LoadOptions,
    /// Load before the fault (the memory baseline is taken at its end).
    pub warm_up: Duration,
    /// Load after the fault.
    pub after: Duration,
}

impl Scale {
    /// The scale of `make test`: a few seconds of a dozen conversations.
    pub fn small() -> Scale {
        Scale {
            load: LoadOptions::default(),
            warm_up: Duration::from_secs(3),
            after: Duration::from_secs(3),
        }
    }
}

/// Starts a system, runs the load with the fault in the middle, stops the load, checks.
pub async fn run(fault: Fault, scale: &Scale) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut options = Options::default();
    let mut load_options = scale.load.clone();
    if fault == Fault::FullStore {
        options.max_file_store = Some(2 << 20);
        // Refusals go on for as long as the store is full: give up on a message sooner.
        load_options.message_deadline = Duration::from_secs(5);
    }
    if fault == Fault::KillAfterDeadLetter {
        options.first_worker_fail_point = Some("after-dead-letter");
    }
    let mut system = System::start(options).await?;
    let load = Load::start(system.ingress_addrs(), load_options);
    let desk = Desk::start(system.api(), load.threads(), DeskOptions::default());
    tokio::time::sleep(scale.warm_up).await;
    let baseline = invariants::memory(&system);
    let mut violations = inject(fault, &mut system).await?;
    tokio::time::sleep(scale.after).await;
    let (ops, desk) = tokio::join!(load.stop(), desk.stop());
    let expect = invariants::Expect {
        every_message_answered: fault != Fault::FullStore,
    };
    let findings = invariants::check(&system, &ops, &desk, &baseline, &expect).await?;
    violations.extend(findings.violations);
    let count = |f: fn(&Outcome) -> bool| ops.iter().filter(|op| f(&op.outcome)).count();
    let events = system.chat_state().await?.messages;
    let report = Report {
        fault,
        acked: count(|o| matches!(o, Outcome::Ok(_))),
        unknown: count(|o| matches!(o, Outcome::Unknown)),
        refused: count(|o| matches!(o, Outcome::Failed(_))),
        unavailable: ops.iter().map(|op| op.unavailable).sum(),
        events,
        operator_events: desk.accepted(),
        held: findings.held,
        elapsed: started.elapsed(),
        violations,
    };
    if !report.violations.is_empty() || report.acked == 0 {
        eprintln!("chaos {fault:?}:\n{}", system.error_lines());
        let logs = system.keep_logs();
        eprintln!(
            "chaos {fault:?}: the services' logs are kept in {}",
            logs.display()
        );
    }
    Ok(report)
}

/// Injects the fault; returns what the fault itself promised and did not keep.
async fn inject(fault: Fault, system: &mut System) -> anyhow::Result<Vec<String>> {
    let mut violations = Vec::new();
    match fault {
        Fault::None => {}
        Fault::KillAfterDeadLetter => {
            let js = &system.js;
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut n = 0;
            while !system.workers[0].exited() {
                if Instant::now() > deadline {
                    violations.push("the worker with the fail point never dead-lettered".into());
                    break;
                }
                let thread = common::events::ThreadId::generate();
                js.publish(
                    common::subjects::user_message(&thread),
                    format!("{{not an event #{n}").into(),
                )
                .await?
                .await?;
                n += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        Fault::FullStore => {
            // The load fills the store; keep it going until the clients meet refusals.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let full = system.chat_state().await?.bytes >= (2 << 20) * 9 / 10;
                if full || Instant::now() > deadline {
                    if !full {
                        violations.push("the store did not fill within 60 s".into());
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Fault::KillWorker => {
            system.workers[0].kill();
            tokio::time::sleep(Duration::from_secs(4)).await;
            system.workers[0].restart().await?;
        }
        Fault::KillProjector => {
            for _ in 0..3 {
                system.projections[0].kill();
                tokio::time::sleep(Duration::from_millis(500)).await;
                system.projections[0].restart().await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Fault::KillIngress => {
            system.ingresses[0].kill();
            tokio::time::sleep(Duration::from_secs(1)).await;
            system.ingresses[0].restart().await?;
        }
        Fault::KillNats => {
            system.nats.kill();
            tokio::time::sleep(Duration::from_secs(3)).await;
            system.nats.restart();
            for service in system.services() {
                service.wait_healthy(Duration::from_secs(60)).await?;
            }
        }
        Fault::KillPostgres => {
            system.postgres.kill();
            tokio::time::sleep(Duration::from_secs(3)).await;
            system.postgres.restart();
            system.projections[0]
                .wait_healthy(Duration::from_secs(60))
                .await?;
        }
        Fault::StopWorker => {
            system.workers[0].signal("STOP");
            // Beyond the ack wait (3 s): the other worker takes its messages over.
            tokio::time::sleep(Duration::from_secs(6)).await;
            system.workers[0].signal("CONT");
        }
        Fault::StopNats | Fault::StopPostgres => {
            let pids: Vec<_> = system.services().map(|s| s.pid()).collect();
            if fault == Fault::StopNats {
                system.nats.pause();
            } else {
                system.postgres.pause();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            // The health answers, within its own time-outs, that a dependency is down.
            let health = Instant::now();
            let answer = testkit::http_client()
                .get(format!("{}/api/health", system.api()))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match answer {
                Ok(response) if response.status().as_u16() == 503 => {
                    let body: serde_json::Value = response.json().await.unwrap_or_default();
                    if body["status"] != "unavailable" {
                        violations.push(format!("health answered 503 with {body}"));
                    }
                }
                Ok(response) => violations.push(format!(
                    "health answered {} while {fault:?}",
                    response.status()
                )),
                Err(err) => violations.push(format!(
                    "health did not answer within 10 s while {fault:?}: {err}"
                )),
            }
            let waited = health.elapsed();
            if waited > Duration::from_secs(5) {
                violations.push(format!("health took {waited:?} to say unavailable"));
            }
            tokio::time::sleep(Duration::from_secs(4)).await;
            if fault == Fault::StopNats {
                system.nats.resume();
            } else {
                system.postgres.resume();
            }
            for service in system.services() {
                service
                    .wait_healthy(Duration::from_secs(60))
                    .await
                    .with_context(|| format!("{} did not recover by itself", service.name))?;
            }
            let after: Vec<_> = system.services().map(|s| s.pid()).collect();
            if after != pids {
                violations.push("a service restarted (its pid changed)".into());
            }
        }
        Fault::TerminateAll => {
            for service in system.services_mut() {
                match service.terminate(Duration::from_secs(30)) {
                    Ok(status) if status.success() => {}
                    Ok(status) => {
                        violations.push(format!("{} exited with {status} on SIGTERM", service.name))
                    }
                    Err(err) => violations.push(format!("{err:#}")),
                }
            }
            for service in system.services_mut() {
                service.restart().await?;
            }
        }
    }
    Ok(violations)
}
