//! `loadgen` drives the WebSocket ingress with many concurrent conversations and reports
//! throughput and latency. In the order data flows: [`config`] turns the command line into a
//! [`config::Plan`]; [`run`] connects with bounded concurrency and starts one task per
//! connection; [`connection`] sends that connection's share on its own schedule and reads
//! what comes back; [`frame`] writes message frames and reads server frames; [`tracker`]
//! matches acks, errors and agent replies to the messages they answer; [`stats`] gathers
//! counts and latency histograms from every connection; [`progress`] prints the live line
//! on stderr; [`report`] prints the final numbers on stdout, as text or JSON.

pub mod config;
pub mod connection;
pub mod frame;
pub mod progress;
pub mod report;
pub mod run;
pub mod stats;
pub mod tracker;

use std::process::ExitCode;

/// Runs `loadgen` with parsed arguments; the exit code is non-zero when nothing was acked
/// (or, with `--idle`, no connection stayed open).
pub async fn main(args: config::Args) -> ExitCode {
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let json = plan.json;
    match run::run(plan).await {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            if report.succeeded() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
