//! The crate graph and the file map of `docs/ARCHITECTURE.md` kept true: each workspace
//! crate depends only on the crates the architecture allows (read from `cargo metadata`,
//! so a new `[dependencies]` line that breaks a direction fails here), and every path the
//! file map names exists.

use std::collections::{BTreeMap, BTreeSet};

use crate::{repo, repo_file};

/// The workspace crates each crate may depend on (normal dependencies). The flow has two
/// sides that meet only in the composition root (`cli`): `common` ← `tools` ← `workers`;
/// `common` ← `projections` ← `api`, and `api` may use `tools`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("common", &[]),
    ("tools", &["common"]),
    ("ingress", &["common"]),
    ("workers", &["common", "tools"]),
    ("projections", &["common"]),
    ("api", &["common", "projections", "tools"]),
    (
        "cli",
        &[
            "common",
            "tools",
            "ingress",
            "workers",
            "projections",
            "api",
        ],
    ),
    ("testkit", &[]),
    ("loadgen", &[]),
    ("shop", &["common"]),
    ("chaos", &["common", "testkit"]),
];

/// Crates that nothing but the composition root may depend on, not even in tests.
const ONLY_THE_ROOT_USES: [&str; 3] = ["ingress", "workers", "api"];

/// `(package, dependency, kind)` for every dependency of a workspace crate on another one;
/// kind is `normal`, `dev` or `build`.
fn workspace_edges() -> Vec<(String, String, String)> {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    let mut edges = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap();
        for dependency in package["dependencies"].as_array().unwrap() {
            let on = dependency["name"].as_str().unwrap();
            if members.contains(on) {
                let kind = dependency["kind"].as_str().unwrap_or("normal").to_owned();
                edges.push((name.to_owned(), on.to_owned(), kind));
            }
        }
    }
    edges
}

/// The rules applied to a list of edges: what breaks them, one line each.
fn violations(edges: &[(String, String, String)]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut found = Vec::new();
    for (package, on, kind) in edges {
        if ONLY_THE_ROOT_USES.contains(&on.as_str()) && package != "cli" && package != on {
            found.push(format!(
                "{package} depends on {on} ({kind}): only the composition root (cli) may"
            ));
            continue;
        }
        if kind != "normal" {
            continue;
        }
        match allowed.get(package.as_str()) {
            None => found.push(format!(
                "{package} is a new workspace crate: add it to ALLOWED here and to \
                 docs/ARCHITECTURE.md's crate graph"
            )),
            Some(may) if !may.contains(&on.as_str()) => found.push(format!(
                "{package} depends on {on}: not a direction docs/ARCHITECTURE.md allows"
            )),
            Some(_) => {}
        }
    }
    found
}

#[test]
fn every_crate_depends_only_in_the_allowed_directions() {
    let found = violations(&workspace_edges());
    assert!(
        found.is_empty(),
        "forbidden dependencies:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_forbidden_dependency_is_caught() {
    let edge = |a: &str, b: &str, kind: &str| (a.to_owned(), b.to_owned(), kind.to_owned());
    assert_eq!(
        violations(&[edge("projections", "workers", "normal")]),
        ["projections depends on workers (normal): only the composition root (cli) may"]
    );
    assert_eq!(
        violations(&[edge("api", "ingress", "dev")]),
        ["api depends on ingress (dev): only the composition root (cli) may"]
    );
    assert_eq!(
        violations(&[edge("tools", "projections", "normal")]),
        ["tools depends on projections: not a direction docs/ARCHITECTURE.md allows"]
    );
    assert!(
        violations(&[
            edge("api", "tools", "normal"),
            edge("cli", "workers", "normal")
        ])
        .is_empty()
    );
}

/// Every repository path in backticks in the architecture document (`dir/…` with a file
/// or folder of the checkout at its start) exists.
#[test]
fn every_path_in_the_architecture_document_exists() {
    let text = repo_file("docs/ARCHITECTURE.md");
    let roots: BTreeSet<String> = std::fs::read_dir(repo())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let mut missing = Vec::new();
    let mut checked = 0;
    for quoted in text.split('`').skip(1).step_by(2) {
        let path = quoted.trim_end_matches('/');
        let Some((first, _)) = path.split_once('/') else {
            continue;
        };
        if !roots.contains(first) || path.contains(' ') || path.contains('<') || path.contains('*')
        {
            continue;
        }
        checked += 1;
        if !repo().join(path).exists() {
            missing.push(path.to_owned());
        }
    }
    assert!(
        checked > 40,
        "only {checked} paths found: is the file map still there?"
    );
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}
