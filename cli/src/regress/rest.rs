//! `regress` for `POST /api/regress`: [`Runner`] is the `api::regress::RegressRunner` the
//! composition root hands the REST service (which may not depend on the workers). A run is
//! the command's run: the config loaded with the workers' checks, the same read of the
//! stream, the same offline replay, the report converted to the API's types.

use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use api::regress::{Progress, RegressRunner, Report as ApiReport, RunFailure, RunRequest};
use common::config::NatsArgs;
use tools::agents_config::{AgentsConfig, ConfigError};
use workers::WorkerArgs;
use workers::turn::Agents;

use super::report::Report;
use super::{Format, RegressArgs, replay_all, worker_args};

/// Runs a config sent over REST as `smart-support regress --config <it>` would, with the
/// engine and tool settings of the running workers.
pub struct Runner {
    /// What every run starts from: the engine, the tool definitions, NATS.
    template: RegressArgs,
    /// The running agents config's folder: a config sent over REST is read as if it were a
    /// file there, so its `openapi` names the document the running one names.
    dir: PathBuf,
}

impl Runner {
    /// A runner with the workers' settings (`AGENTS_CONFIG` anchors the configs it is sent).
    pub fn new(worker: &WorkerArgs, nats: &NatsArgs) -> Runner {
        Runner {
            template: RegressArgs {
                config: PathBuf::new(),
                since: None,
                thread: Vec::new(),
                limit: None,
                format: Format::Json,
                allow: 0,
                engine: worker.engine,
                concurrency: 8,
                quiet: true,
                openai: worker.openai.clone(),
                tools: worker.tools.clone(),
                nats: nats.clone(),
            },
            dir: worker
                .agents_config
                .parent()
                .map(Path::to_owned)
                .unwrap_or_default(),
        }
    }

    /// [`Runner::new`] as the injected trait object.
    pub fn shared(worker: &WorkerArgs, nats: &NatsArgs) -> Arc<dyn RegressRunner> {
        Arc::new(Runner::new(worker, nats))
    }
}

impl RegressRunner for Runner {
    fn run(
        &self,
        request: RunRequest,
        progress: Arc<Progress>,
    ) -> Pin<Box<dyn Future<Output = Result<ApiReport, RunFailure>> + Send>> {
        let mut args = self.template.clone();
        // The report names the config as it was sent.
        args.config = PathBuf::from(&request.name);
        args.since = request.since;
        args.thread = request.threads;
        args.limit = request.limit;
        let dir = self.dir.clone();
        let path = dir.join(&request.name);
        let text = request.config;
        Box::pin(async move {
            let failed = |err: anyhow::Error| RunFailure::Failed(format!("{err:#}"));
            let mut worker = worker_args(&args).map_err(failed)?;
            worker.agents_config = path.clone();
            // Reads the OpenAPI document and compiles patterns: off the async threads.
            let agents = tokio::task::spawn_blocking(move || load_text(&path, &text, &worker))
                .await
                .map_err(|err| failed(err.into()))?
                .map_err(|err| RunFailure::Config(shown(&err, &dir)))?;
            let outcome = replay_all(&args, agents, &progress).await.map_err(failed)?;
            to_api(&outcome.report).map_err(failed)
        })
    }
}

/// A config's text read as the file `path`, with the workers' checks; its `openapi` must be
/// a file beside it (a config sent over REST names no other file of the server).
fn load_text(path: &Path, text: &str, worker: &WorkerArgs) -> anyhow::Result<Agents> {
    let config = AgentsConfig::parse(path, text)?;
    if let Some(document) = &config.openapi {
        let dir = path.parent().unwrap_or(Path::new(""));
        let beside = document.strip_prefix(dir).is_ok_and(|rest| {
            let mut parts = rest.components();
            matches!(
                (parts.next(), parts.next()),
                (Some(Component::Normal(_)), None)
            )
        });
        if !beside {
            return Err(ConfigError {
                file: path.to_owned(),
                line: text
                    .lines()
                    .position(|line| line.trim_start().starts_with("openapi"))
                    .map(|index| index + 1),
                reason: "`openapi` must name a file beside the running config (no folder, no `..`)"
                    .into(),
            }
            .into());
        }
    }
    workers::startup::agents_of(config, worker)
}

/// The error as the workers say it (`file:line: reason`), with the config's name instead of
/// the server's path of its folder.
fn shown(err: &anyhow::Error, dir: &Path) -> String {
    let message = format!("{err:#}");
    if dir.as_os_str().is_empty() {
        return message;
    }
    let prefix = format!("{}{}", dir.display(), std::path::MAIN_SEPARATOR);
    match message.strip_prefix(&prefix) {
        Some(rest) => rest.to_owned(),
        None => message,
    }
}

/// The command's report in the API's types: the same JSON.
fn to_api(report: &Report) -> anyhow::Result<ApiReport> {
    Ok(serde_json::from_value(serde_json::to_value(report)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regress::recorded::{Call, Confirmation, Decision, Escalation};
    use crate::regress::report::{ChangedTurn, Unreplayed};
    use serde_json::json;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
    }

    fn worker(path: &Path) -> WorkerArgs {
        WorkerArgs::from_flags([std::ffi::OsString::from("--agents-config"), path.into()]).unwrap()
    }

    #[test]
    fn the_api_report_holds_every_field_of_the_commands_report() {
        let decision = |refused, new| Decision {
            agent: Some("orders".into()),
            tool_calls: vec![Call {
                tool: "getOrder".into(),
                params: json!({"order_id": "ORD-1"}),
                refused,
                new,
            }],
            confirmation: Some(Confirmation {
                tool: "cancelOrder".into(),
                params: json!({"order_id": "ORD-1"}),
            }),
            escalation: Some(Escalation {
                reason: "keyword".into(),
                detail: "lawyer".into(),
            }),
            reply: Some("Order ORD-1 is shipped.".into()),
        };
        let mut report = Report::new("new.yaml".into(), "rules".into());
        report.summary.replayed = 3;
        report.summary.changed = 1;
        report.summary.skipped.held = 2;
        report.changed.push(ChangedTurn {
            thread_id: "t1".into(),
            turn_id: "u1".into(),
            seq: 7,
            occurred_at: "2026-12-01T00:00:00Z".into(),
            message: "Where is ORD-1?".into(),
            changes: vec!["tool_calls", "reply"],
            recorded: decision(true, false),
            replayed: decision(false, true),
        });
        report.errors.push(Unreplayed {
            thread_id: "t2".into(),
            seq: 9,
            error: "engine unavailable".into(),
        });
        let converted = to_api(&report).unwrap();
        assert_eq!(
            serde_json::to_value(&converted).unwrap(),
            serde_json::to_value(&report).unwrap()
        );
    }

    #[test]
    fn a_config_is_read_as_a_file_beside_the_running_one() {
        let running = fixtures().join("agents.yaml");
        let text = std::fs::read_to_string(&running).unwrap();
        let path = fixtures().join("new.yaml");
        let agents = load_text(&path, &text, &worker(&path)).expect("the demo config loads");
        assert!(
            agents
                .config
                .openapi
                .as_ref()
                .unwrap()
                .ends_with("shop-openapi.yaml")
        );
    }

    #[test]
    fn a_config_naming_a_document_elsewhere_is_refused_with_its_line() {
        let running = fixtures().join("agents.yaml");
        let text = std::fs::read_to_string(&running)
            .unwrap()
            .replace("openapi: shop-openapi.yaml", "openapi: ../secret.yaml");
        let path = fixtures().join("new.yaml");
        let Err(err) = load_text(&path, &text, &worker(&path)) else {
            panic!("a document outside the folder is refused")
        };
        let message = shown(&err, &fixtures());
        assert!(
            message.starts_with("new.yaml:5: `openapi` must name a file beside"),
            "{message}"
        );
    }

    #[test]
    fn an_error_names_the_config_not_the_servers_folder() {
        let path = fixtures().join("new.yaml");
        let Err(err) = load_text(&path, "agents: []\n", &worker(&path)) else {
            panic!("a config without agents is refused")
        };
        assert_eq!(
            shown(&err, &fixtures()),
            "new.yaml:1: missing field `default_agent`"
        );
    }
}
