//! `smart-support dead-letters …`: list, show, redrive and discard the user messages the
//! workers gave up on. Every subcommand parses its arguments, calls one function of
//! [`common::dead_letters`] and prints the result; the bulk forms (`--all`) count first
//! and act only on what the operator confirmed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use common::config::NatsArgs;
use common::dead_letters::{self, DeadLetter, DeadLetterError, Filter};
use common::events::{ErrorCategory, ThreadId};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// Longest error text a table row shows.
const ERROR_COLUMN_CHARS: usize = 60;

/// Dead letters: user messages the workers gave up on.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List dead letters, oldest first.
    List(ListArgs),
    /// Show one dead letter with its error, headers and original message.
    Show(ShowArgs),
    /// Send dead letters back to the workers as `message.redriven` events.
    Redrive(BulkArgs),
    /// Delete dead letters for good.
    Discard(BulkArgs),
}

/// Which dead letters (all of them when no filter is given).
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only this error category: retryable, not_retryable or fatal.
    #[arg(long, value_parser = parse_category)]
    pub category: Option<ErrorCategory>,
    /// Only dead letters that failed at or after this time (RFC 3339, e.g. 2026-01-31T12:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<OffsetDateTime>,
    /// Only dead letters that failed before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<OffsetDateTime>,
    /// Only dead letters of this conversation.
    #[arg(long, value_parser = parse_thread_id)]
    pub thread_id: Option<ThreadId>,
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            category: self.category,
            since: self.since,
            until: self.until,
            thread_id: self.thread_id.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.filter() == Filter::default()
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Most dead letters to print.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub limit: u64,
    /// Start after this dead-letter id (the `next_cursor` of a previous page).
    #[arg(long)]
    pub after: Option<u64>,
    /// Print `{"items":[…],"next_cursor":…}` as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub nats: NatsArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The dead letter's id.
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// Print it as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Act on the dead letters named by id, or on every one matching the filters (`--all`).
#[derive(Debug, Args)]
pub struct BulkArgs {
    /// Dead-letter ids.
    #[arg(
        value_parser = clap::value_parser!(u64).range(1..),
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub ids: Vec<u64>,
    /// Every dead letter matching the filters (all of them without filters).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only print how many dead letters match.
    #[arg(long, requires = "all")]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, requires = "all")]
    pub yes: bool,
    #[command(flatten)]
    pub nats: NatsArgs,
}

fn parse_category(raw: &str) -> Result<ErrorCategory, String> {
    ErrorCategory::parse(raw)
        .ok_or_else(|| "expected one of retryable, not_retryable, fatal".to_owned())
}

fn parse_time(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| "expected an RFC 3339 time like 2026-01-31T12:00:00Z".to_owned())
}

fn parse_thread_id(raw: &str) -> Result<ThreadId, String> {
    ThreadId::parse(raw).map_err(|err| err.to_string())
}

/// What a bulk command does, for its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Redrive,
    Discard,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Redrive => "redrive",
            Action::Discard => "discard",
        }
    }
}

/// Runs a `dead-letters` subcommand.
pub async fn run(command: DeadLettersCommand) -> anyhow::Result<()> {
    match command {
        DeadLettersCommand::List(args) => list(args).await,
        DeadLettersCommand::Show(args) => show(args).await,
        DeadLettersCommand::Redrive(args) => bulk(args, Action::Redrive).await,
        DeadLettersCommand::Discard(args) => bulk(args, Action::Discard).await,
    }
}

/// `1 dead letter`, `2 dead letters`.
fn dead_letters_count(n: usize) -> String {
    if n == 1 {
        "1 dead letter".to_owned()
    } else {
        format!("{n} dead letters")
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let js = common::jetstream::connect_once(&args.nats).await?;
    let page = dead_letters::list(
        &js,
        &args.filter.filter(),
        args.after,
        args.limit.try_into().unwrap_or(usize::MAX),
    )
    .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &page)?;
        writeln!(out)?;
        return Ok(());
    }
    if page.items.is_empty() {
        writeln!(out, "no dead letters")?;
        return Ok(());
    }
    write!(out, "{}", table(&page.items))?;
    if let Some(next) = page.next_cursor {
        writeln!(out, "more: smart-support dead-letters list --after {next}")?;
    }
    Ok(())
}

/// The rows of `list`, columns padded to their widest cell.
fn table(items: &[DeadLetter]) -> String {
    let mut rows = vec![[
        "ID".to_owned(),
        "FAILED AT".to_owned(),
        "CATEGORY".to_owned(),
        "ATTEMPTS".to_owned(),
        "THREAD".to_owned(),
        "ERROR".to_owned(),
    ]];
    for letter in items {
        rows.push([
            letter.id.to_string(),
            format_time(letter.failed_at),
            letter.category.as_str().to_owned(),
            letter.attempts.to_string(),
            letter.thread_id.clone().unwrap_or_else(|| "-".into()),
            shorten(&letter.error, ERROR_COLUMN_CHARS),
        ]);
    }
    let mut widths = [0; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

fn format_time(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max - 1).collect();
    short.push('…');
    short
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let js = common::jetstream::connect_once(&args.nats).await?;
    let letter = dead_letters::get(&js, args.id).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &letter)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "id:         {}", letter.id)?;
    writeln!(
        out,
        "thread:     {}",
        letter.thread_id.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "source:     {} (seq {})",
        letter.source_subject, letter.source_seq
    )?;
    writeln!(out, "category:   {}", letter.category.as_str())?;
    writeln!(out, "attempts:   {}", letter.attempts)?;
    writeln!(out, "failed at:  {}", format_time(letter.failed_at))?;
    writeln!(out, "error:      {}", letter.error)?;
    if !letter.headers.is_empty() {
        writeln!(out, "headers:")?;
        for (name, value) in &letter.headers {
            writeln!(out, "  {name}: {value}")?;
        }
    }
    writeln!(out, "original:")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&letter.original)?)?;
    Ok(())
}

async fn bulk(args: BulkArgs, action: Action) -> anyhow::Result<()> {
    if !args.all && !args.filter.is_empty() {
        use clap::CommandFactory;
        crate::Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--category, --since, --until and --thread-id only apply with --all",
            )
            .exit();
    }
    let js = common::jetstream::connect_once(&args.nats).await?;
    let ids = if args.all {
        let ids: Vec<u64> = dead_letters::matching(&js, &args.filter.filter())
            .await?
            .iter()
            .map(|letter| letter.id)
            .collect();
        if ids.is_empty() {
            println!("no dead letters match");
            return Ok(());
        }
        println!("would {} {}", action.verb(), dead_letters_count(ids.len()));
        if args.dry_run {
            return Ok(());
        }
        if !args.yes {
            confirm()?;
        }
        ids
    } else {
        args.ids
    };
    let mut failures = 0;
    for &id in &ids {
        let result = match action {
            Action::Redrive => dead_letters::redrive(&js, id).await.map(|seq| {
                println!("redrove dead letter {id}: message.redriven stored at chat seq {seq}")
            }),
            Action::Discard => dead_letters::discard(&js, id)
                .await
                .map(|()| println!("discarded dead letter {id}")),
        };
        if let Err(err) = result {
            failures += 1;
            eprintln!("dead letter {id}: {}", explain(&err));
        }
    }
    if failures > 0 {
        bail!(
            "{failures} of {} could not be {}",
            dead_letters_count(ids.len()),
            match action {
                Action::Redrive => "redriven",
                Action::Discard => "discarded",
            }
        );
    }
    Ok(())
}

fn explain(err: &DeadLetterError) -> String {
    match err {
        DeadLetterError::NotRedrivable(_) => format!("{err} (discard it instead)"),
        _ => err.to_string(),
    }
}

/// Asks `Proceed? [y/N]` on the terminal; anything but yes, no terminal or no answer
/// aborts.
fn confirm() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("aborted: stdin is not a terminal to confirm on; pass --yes to go ahead");
    }
    print!("Proceed? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    let read = stdin
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    if read == 0 {
        bail!("aborted: no answer");
    }
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        bail!("aborted: nothing was changed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    #[test]
    fn a_long_error_is_cut_with_an_ellipsis() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let letter = DeadLetter {
            id: 12,
            thread_id: Some("t-1".into()),
            source_subject: "chat.t-1.user".into(),
            source_seq: 3,
            category: ErrorCategory::NotRetryable,
            error: "HTTP 404".into(),
            attempts: 1,
            failed_at: datetime!(2026-01-31 12:00:00.123 UTC),
            original: serde_json::Value::Null,
            headers: BTreeMap::new(),
        };
        let text = table(&[letter]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "ID  FAILED AT             CATEGORY       ATTEMPTS  THREAD  ERROR",
                "12  2026-01-31T12:00:00Z  not_retryable  1         t-1     HTTP 404",
            ]
        );
    }
}
