//! Files that cannot be run here, or not in full, kept honest against the code: the compose
//! file ([`compose`]), the commands in the documentation ([`docs`]), and the crate graph
//! and file map of docs/ARCHITECTURE.md ([`architecture`]).

mod architecture;
mod compose;
mod docs;

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::CommandFactory;

/// The root of the checkout.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn repo_file(path: &str) -> String {
    let path = repo().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The command line definition of one of the workspace's binaries, by its file name.
fn binary(name: &str) -> Option<clap::Command> {
    Some(match name {
        "ingress" => ingress::Cli::command(),
        "workers" => workers::Cli::command(),
        "projections" => cli::projections_bin::Cli::command(),
        "shop-api" => shop::Cli::command(),
        "smart-support" => cli::Cli::command(),
        "loadgen" => loadgen::config::Args::command(),
        _ => return None,
    })
}

/// Every environment variable a command reads through clap, and those every binary's log
/// set-up (`common::telemetry::init`) reads: `RUST_LOG` and the OTLP export's.
fn variables_read(command: &clap::Command) -> BTreeSet<String> {
    command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .chain(common::telemetry::VARIABLES.map(str::to_owned))
        .collect()
}
