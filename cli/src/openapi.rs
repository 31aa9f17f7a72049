//! `smart-support openapi import <file>` / `--url <url>`: the same import as
//! `POST /api/openapi/imports`, printed as a table (or JSON with `--json`); a refused
//! document exits 1 with its named error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tools::import::{self, AgentHint};

/// OpenAPI documents.
#[derive(Debug, Subcommand)]
pub enum OpenApiCommand {
    /// Read, extract and classify a document's operations (nothing is stored).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The document (JSON or YAML).
    #[arg(required_unless_present = "url", conflicts_with = "url")]
    pub file: Option<PathBuf>,
    /// Fetch the document from this URL (through the SSRF guard).
    #[arg(long)]
    pub url: Option<String>,
    /// Agents config whose agents are suggested.
    #[arg(long, env = "AGENTS_CONFIG", default_value = "fixtures/agents.yaml")]
    pub agents_config: PathBuf,
    /// Hosts the URL may resolve to although private (`host` or `host:port`, comma-separated).
    #[arg(long, env = "IMPORT_ALLOW_HOSTS", value_delimiter = ',')]
    pub allow_hosts: Vec<String>,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(command: OpenApiCommand) -> anyhow::Result<ExitCode> {
    let OpenApiCommand::Import(args) = command;
    let agents = AgentHint::from_config(&tools::agents_config::AgentsConfig::load(
        &args.agents_config,
    )?);
    let text = match (&args.file, &args.url) {
        (Some(file), _) => Ok(std::fs::read_to_string(file)?),
        (None, Some(url)) => import::fetch::fetch(url, &args.allow_hosts).await,
        (None, None) => unreachable!("clap requires a file or --url"),
    };
    match text.and_then(|text| import::import(&text, &agents)) {
        Ok(imported) if args.json => println!("{}", serde_json::to_string_pretty(&imported)?),
        Ok(imported) => {
            println!("OpenAPI {} — {}", imported.version, imported.title);
            for note in &imported.notes {
                println!("note: {note}");
            }
            println!(
                "{:<12} {:<7} {:<40} {:<28} {:<8} why",
                "class", "method", "path", "operation", "agent"
            );
            for op in &imported.operations {
                let class = serde_json::to_value(op.class)?;
                let why = match &op.unusable {
                    Some(reason) => format!("UNUSABLE: {reason}"),
                    None => op.reasons.join("; "),
                };
                println!(
                    "{:<12} {:<7} {:<40} {:<28} {:<8} {}",
                    class.as_str().unwrap_or_default(),
                    op.method,
                    op.path,
                    op.operation_id,
                    op.suggested_agent.as_deref().unwrap_or("-"),
                    why
                );
            }
        }
        Err(error) => {
            eprintln!("error: {}: {error}", error.code());
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
