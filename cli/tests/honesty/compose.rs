//! `docker-compose.yml` cannot be run here (CI has no Docker engine), so these tests keep it
//! honest against the code: every Rust service runs a binary the image really has, with
//! flags and environment variables that binary reads (its clap definition, the same one
//! `--help` prints); every long-running service has a health check on the port it listens
//! on; the published ports are the ones `docs/deployment.md` lists, and only the web port is
//! published (nothing open by default); every `${VAR}` the file interpolates is in
//! `.env.example`.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use crate::{binary, repo_file, variables_read};

/// The services of the compose file, `<<` merge keys applied.
fn services() -> Vec<(String, Value)> {
    let mut compose: Value = serde_yaml_ng::from_str(&repo_file("docker-compose.yml")).unwrap();
    compose.apply_merge().unwrap();
    let services = compose["services"].as_mapping().expect("services").clone();
    services
        .into_iter()
        .map(|(name, service)| (name.as_str().unwrap().to_owned(), service))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|item| item.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A Rust service: it runs the image the root Dockerfile builds.
fn is_rust(service: &Value) -> bool {
    service["build"].as_str() == Some(".")
}

/// The binaries the root Dockerfile copies into its runtime image.
fn image_binaries() -> BTreeSet<String> {
    repo_file("Dockerfile")
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("target/release/"))
        .map(str::to_owned)
        .collect()
}

/// What a service's `command` runs: the binary's (or its subcommand's) definition.
fn command_of(service_name: &str, service: &Value) -> clap::Command {
    let command = strings(&service["command"]);
    let program = command
        .first()
        .unwrap_or_else(|| panic!("{service_name}: no command"));
    assert!(
        image_binaries().contains(program),
        "{service_name}: runs {program}, which the Dockerfile does not copy into the image \
         (it has {:?})",
        image_binaries()
    );
    let mut definition =
        binary(program).unwrap_or_else(|| panic!("{service_name}: {program} is not ours"));
    let mut words = command[1..].iter();
    while let Some(word) = words.next() {
        if let Some(flag) = word.strip_prefix("--") {
            let (flag, inline_value) = match flag.split_once('=') {
                Some((flag, _)) => (flag, true),
                None => (flag, false),
            };
            let arg = definition
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .unwrap_or_else(|| panic!("{service_name}: {program} has no --{flag}"));
            if arg.get_action().takes_values() && !inline_value {
                assert!(
                    words.next().is_some(),
                    "{service_name}: --{flag} needs a value"
                );
            }
        } else if !word.starts_with('-') {
            definition = definition
                .find_subcommand(word)
                .unwrap_or_else(|| panic!("{service_name}: {program} has no subcommand {word}"))
                .clone();
        }
    }
    definition
}

fn environment(service: &Value) -> Vec<(String, String)> {
    service["environment"]
        .as_mapping()
        .map(|env| {
            env.iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::String(text) => text.clone(),
                        Value::Number(number) => number.to_string(),
                        other => panic!("{key:?}: not a scalar: {other:?}"),
                    };
                    (key.as_str().unwrap().to_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_rust_service_runs_a_binary_of_the_image_with_flags_it_has() {
    let rust: Vec<_> = services().into_iter().filter(|(_, s)| is_rust(s)).collect();
    assert!(rust.len() >= 5, "the Rust services: {rust:?}");
    for (name, service) in &rust {
        command_of(name, service);
    }
}

#[test]
fn every_environment_variable_a_rust_service_sets_is_read_by_its_binary() {
    for (name, service) in services().into_iter().filter(|(_, s)| is_rust(s)) {
        let read = variables_read(&command_of(&name, &service));
        let set = environment(&service);
        assert!(
            set.iter().any(|(key, _)| key == "RUST_LOG"),
            "{name}: no RUST_LOG (did a merge key go unapplied?): {set:?}"
        );
        for (variable, _) in set {
            assert!(
                read.contains(&variable),
                "{name} sets {variable}, which its command does not read (it reads {read:?})"
            );
        }
    }
}

#[test]
fn every_long_running_service_has_a_health_check_on_the_port_it_listens_on() {
    for (name, service) in services() {
        if service["restart"].as_str() == Some("no") {
            continue; // one-shot, e.g. the migrations
        }
        let check = strings(&service["healthcheck"]["test"]).join(" ");
        if check.is_empty() {
            // Only acceptable when the image it builds declares one.
            let context = service["build"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no health check"));
            let dockerfile = repo_file(&format!("{context}/Dockerfile"));
            assert!(
                dockerfile.lines().any(|l| l.starts_with("HEALTHCHECK")),
                "{name}: no health check, in the compose file or its image"
            );
            continue;
        }
        let listens: Vec<String> = environment(&service)
            .into_iter()
            .filter(|(key, _)| key.ends_with("_ADDR") || key.ends_with("_BIND"))
            .filter_map(|(_, value)| value.rsplit(':').next().map(str::to_owned))
            .collect();
        if is_rust(&service) {
            assert!(
                listens
                    .iter()
                    .any(|port| check.contains(&format!("127.0.0.1:{port}/"))),
                "{name}: the health check `{check}` is not on a port it listens on {listens:?}"
            );
        }
    }
}

#[test]
fn the_published_ports_are_the_ones_the_deployment_doc_lists() {
    let doc = repo_file("docs/deployment.md");
    for (name, service) in services() {
        let row = doc
            .lines()
            .find(|line| line.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("docs/deployment.md has no row for the service {name}"));
        for mapping in strings(&service["ports"]) {
            assert!(
                row.contains(&format!("`{mapping}`")),
                "{name} publishes {mapping}, which its row in docs/deployment.md does not say: {row}"
            );
        }
    }
}

#[test]
fn only_the_web_port_is_published_and_nats_postgres_and_metrics_stay_on_the_network() {
    let mut published = Vec::new();
    for (name, service) in services() {
        for key in ["network_mode", "expose"] {
            assert!(
                service[key].is_null(),
                "{name}: `{key}` (host networking or extra ports) is not expected: {:?}",
                service[key]
            );
        }
        for mapping in strings(&service["ports"]) {
            published.push((name.clone(), mapping));
        }
        // NATS' own monitoring and the services' metrics listen on the network only.
        let command = strings(&service["command"]).join(" ");
        for (key, value) in environment(&service) {
            if key == "METRICS_ADDR" || key == "WORKER_METRICS_ADDR" {
                let port = value.rsplit(':').next().unwrap();
                assert!(
                    strings(&service["ports"])
                        .iter()
                        .all(|m| !m.split(':').any(|p| p == port)),
                    "{name} publishes its metrics port {port}"
                );
            }
        }
        if name == "nats" {
            assert!(command.contains("-m 8222"), "{name}: {command}");
        }
    }
    assert_eq!(
        published,
        [("web".to_owned(), "8080:8080".to_owned())],
        "only the web pages, /ws and /api are published on the host"
    );
}

#[test]
fn every_variable_the_compose_file_interpolates_is_in_env_example() {
    let compose = repo_file("docker-compose.yml");
    let example = repo_file(".env.example");
    let listed: BTreeSet<&str> = example
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(key, _)| key.trim()))
        .collect();
    let interpolated: BTreeSet<&str> = compose
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split([':', '}', '-', '?']).next())
        .collect();
    assert!(!interpolated.is_empty());
    let missing: Vec<_> = interpolated.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "docker-compose.yml uses {missing:?}, which .env.example does not list"
    );
}

/// The NATS user a compose service connects as: `NATS_USER`'s value, or the users whose
/// `<USER>_NATS_PASSWORD` it sets (the `projections` binary's projector and API).
fn nats_users_of(service: &Value) -> BTreeSet<String> {
    let env = environment(service);
    let mut users: BTreeSet<String> = env
        .iter()
        .filter(|(key, _)| key == "NATS_USER")
        .map(|(_, value)| value.clone())
        .collect();
    users.extend(env.iter().filter_map(|(key, _)| {
        key.strip_suffix("_NATS_PASSWORD")
            .map(str::to_ascii_lowercase)
    }));
    users
}

#[test]
fn every_service_that_talks_to_nats_connects_as_its_own_user_with_its_own_password() {
    let expected = [
        ("nats-setup", vec!["admin"]),
        ("seed", vec!["admin"]),
        ("ingress", vec!["ingress"]),
        ("workers", vec!["worker"]),
        ("projections", vec!["api", "projector"]),
    ];
    let services = services();
    for (name, users) in expected {
        let (_, service) = services
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no service {name}"));
        let found: Vec<String> = nats_users_of(service).into_iter().collect();
        assert_eq!(found, users, "{name} connects to NATS as");
        // Its password is its own user's, from .env.
        for (key, value) in environment(service) {
            if key == "NATS_PASSWORD" {
                let variable = format!("{}_NATS_PASSWORD", users[0].to_ascii_uppercase());
                assert!(
                    value.starts_with(&format!("${{{variable}:?")),
                    "{name}: NATS_PASSWORD is {value}, not ${{{variable}:?…}}"
                );
            } else if let Some(user) = key.strip_suffix("_NATS_PASSWORD") {
                assert!(
                    value.starts_with(&format!("${{{key}:?")),
                    "{name}: {user}'s password is {value}"
                );
            }
        }
    }
    for (name, service) in &services {
        if environment(service)
            .iter()
            .any(|(key, _)| key == "NATS_URL")
        {
            assert!(
                !nats_users_of(service).is_empty(),
                "{name} talks to NATS without a user"
            );
        }
    }
}

#[test]
fn the_nats_service_has_the_users_file_and_every_password_it_reads() {
    let services = services();
    let (_, nats) = services.iter().find(|(n, _)| n == "nats").expect("nats");
    let volumes = strings(&nats["volumes"]);
    assert!(
        volumes.contains(&"./nats/users.conf:/etc/nats/users.conf:ro".to_owned()),
        "{volumes:?}"
    );
    let config = repo_file("nats/nats-server.conf");
    assert!(config.contains("include ./users.conf"), "{config}");
    let users = repo_file("nats/users.conf");
    let read: BTreeSet<&str> = users
        .split("password: $")
        .skip(1)
        .filter_map(|rest| rest.split([' ', ',', '}']).next())
        .collect();
    assert_eq!(read.len(), 5, "{read:?}");
    let set: BTreeSet<String> = environment(nats).into_iter().map(|(k, _)| k).collect();
    for variable in read {
        assert!(
            set.contains(variable),
            "nats does not get {variable}: {set:?}"
        );
    }
}
