//! `smart-support operators add|list|disable`: the people who sign in to the desk
//! (docs/operators.md). The password of `add` comes from `--password-file` or the
//! `OPERATOR_PASSWORD` variable, never from a flag (flags show in `ps`).

use std::path::PathBuf;
use std::process::ExitCode;

use api::operators::{self, Role};
use clap::{Args, Subcommand, ValueEnum};
use common::config::DatabaseArgs;

/// Operators.
#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// Add an operator who signs in with an email and a password.
    Add(AddArgs),
    /// List the operators.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Disable an operator: they cannot sign in any more and their sessions end at once.
    Disable {
        /// The operator's email.
        email: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// A role, as the command line takes it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Conversations, replays, analytics and the desk.
    Agent,
    /// Everything, including dead letters, OpenAPI imports and operators.
    Admin,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The sign-in email (stored lower-cased).
    #[arg(long)]
    pub email: String,
    /// The name customers see with the operator's replies.
    #[arg(long)]
    pub name: String,
    #[arg(long, value_enum, default_value = "agent")]
    pub role: RoleArg,
    /// A file whose first line is the password (12 to 256 characters).
    #[arg(long, conflicts_with = "password_env")]
    pub password_file: Option<PathBuf>,
    /// The password, from the environment (12 to 256 characters).
    #[arg(
        long = "password-env",
        env = "OPERATOR_PASSWORD",
        hide_env_values = true
    )]
    pub password_env: Option<String>,
    /// Exit 0 without a change when an operator with this email exists (for set-up scripts).
    #[arg(long)]
    pub if_missing: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

pub async fn run(command: OperatorsCommand) -> anyhow::Result<ExitCode> {
    match command {
        OperatorsCommand::Add(args) => add(args).await,
        OperatorsCommand::List { database } => {
            let pool = projections::connect(&database).await?;
            for operator in operators::list(&pool).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    operator.id,
                    operator.email,
                    operator.name,
                    operator.role.as_str(),
                    if operator.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OperatorsCommand::Disable { email, database } => {
            let pool = projections::connect(&database).await?;
            let Some(operator) = operators::find_by_email(&pool, &email).await? else {
                eprintln!("no operator with email {email}");
                return Ok(ExitCode::FAILURE);
            };
            operators::disable(&pool, operator.id).await?;
            println!(
                "disabled {} ({}); their sessions ended",
                operator.email, operator.id
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let password = match (&args.password_file, &args.password_env) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        (None, Some(password)) => password.clone(),
        (None, None) => {
            anyhow::bail!("give the password with --password-file or OPERATOR_PASSWORD")
        }
    };
    let role = match args.role {
        RoleArg::Agent => Role::Agent,
        RoleArg::Admin => Role::Admin,
    };
    let pool = projections::connect(&args.database).await?;
    if args.if_missing
        && operators::find_by_email(&pool, &args.email)
            .await?
            .is_some()
    {
        println!("{} exists; unchanged", args.email.trim().to_lowercase());
        return Ok(ExitCode::SUCCESS);
    }
    let operator = operators::add(&pool, &args.email, &args.name, role, &password).await?;
    println!(
        "added {} ({}, {}) as {}",
        operator.email,
        operator.name,
        operator.role.as_str(),
        operator.id
    );
    Ok(ExitCode::SUCCESS)
}
