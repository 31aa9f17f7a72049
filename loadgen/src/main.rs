use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    loadgen::main(loadgen::config::Args::parse()).await
}
