//! `chaos`: the long runs of the reliability suite, too slow for `make test` (`make chaos`).
//! Each fault in turn on a fresh system, under load (customers and an operator at the desk)
//! for as long as asked; prints one line per fault and every violation; exit 1 if any.

use std::time::Duration;

use chaos::{Fault, Scale, load::LoadOptions};
use clap::Parser;

/// Runs faults under load against the whole system and checks the promises after each.
#[derive(Debug, Parser)]
#[command(name = "chaos", version)]
struct Args {
    /// Faults to run (default: every one).
    #[arg(long, value_enum, value_delimiter = ',')]
    fault: Vec<Fault>,
    /// Conversations at once.
    #[arg(long, default_value_t = 50)]
    conversations: usize,
    /// Load before the fault.
    #[arg(long, default_value = "30s", value_parser = common::config::parse_duration)]
    warm_up: Duration,
    /// Load after the fault.
    #[arg(long, default_value = "30s", value_parser = common::config::parse_duration)]
    after: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let faults = if args.fault.is_empty() {
        <Fault as clap::ValueEnum>::value_variants().to_vec()
    } else {
        args.fault
    };
    let scale = Scale {
        load: LoadOptions {
            conversations: args.conversations,
            ..LoadOptions::default()
        },
        warm_up: args.warm_up,
        after: args.after,
    };
    let mut failed = false;
    println!(
        "| fault | acked | unknown | refused | `unavailable` answers | operator events | held | events | time | violations |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for fault in faults {
        let report = chaos::run(fault, &scale).await?;
        println!(
            "| {:?} | {} | {} | {} | {} | {} | {} | {} | {:.0} s | {} |",
            report.fault,
            report.acked,
            report.unknown,
            report.refused,
            report.unavailable,
            report.operator_events,
            report.held,
            report.events,
            report.elapsed.as_secs_f64(),
            report.violations.len()
        );
        for violation in &report.violations {
            eprintln!("  {fault:?}: {violation}");
        }
        failed |= !report.violations.is_empty();
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
