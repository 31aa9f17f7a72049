//! Every command in the documentation's shell blocks names what exists: a binary of the
//! workspace with subcommands, flags and values its command line accepts (clap parses it, as
//! it would when run), a Makefile target, a script, a file, a function of `scripts/lib.sh`,
//! an npm script, a REST route with its method in the API's OpenAPI document, an environment
//! variable something reads. A command this test does not know fails it, so a new kind of
//! command gets a rule here. The commands of the walkthrough (`README.md`,
//! `docs/demo-script.md`) are also *run*, against a live stack, by `scripts/docs_check.py`
//! (from `scripts/e2e.sh`).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{binary, repo, repo_file, variables_read};

/// A command of a document: its words, and where it is.
#[derive(Debug)]
struct Command {
    doc: String,
    line: String,
    words: Vec<String>,
}

/// The documents whose commands are checked.
fn documents() -> Vec<String> {
    let mut docs = vec!["README.md".to_owned(), "web/README.md".to_owned()];
    for folder in ["docs", "docs/adr"] {
        let mut found: Vec<String> = std::fs::read_dir(repo().join(folder))
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                name.ends_with(".md").then(|| format!("{folder}/{name}"))
            })
            .collect();
        found.sort();
        docs.extend(found);
    }
    docs
}

/// The command lines of a document's `sh`/`bash`/`console` blocks (indented ones too): continuations
/// joined, comments dropped; in a transcript (lines with `$ ` prompts), only the prompted
/// lines.
fn command_lines(markdown: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut block: Option<(usize, Vec<&str>)> = None;
    for raw in markdown.lines() {
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        match &mut block {
            None if ["```sh", "```bash", "```console"].contains(&trimmed) => {
                block = Some((indent, vec![]))
            }
            Some((_, body)) if trimmed == "```" => {
                lines.extend(join_block(body));
                block = None;
            }
            Some((indent, body)) => body.push(raw.get(*indent..).unwrap_or("")),
            None => {}
        }
    }
    lines
}

fn join_block(body: &[&str]) -> Vec<String> {
    let prompted = body.iter().any(|line| line.starts_with("$ "));
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in body {
        let line = match line.strip_prefix("$ ") {
            Some(command) => command,
            None if prompted && current.is_empty() => continue, // output
            None => line,
        };
        let continued = line.trim_end().ends_with('\\');
        let line = if current.is_empty() {
            line
        } else {
            line.trim_start()
        };
        current.push_str(line.trim_end().trim_end_matches('\\').trim_end());
        current.push(' ');
        if !continued {
            joined.push(strip_comment(&current).trim().to_owned());
            current.clear();
        }
    }
    joined.retain(|line| !line.is_empty());
    joined
}

/// The line without a trailing ` # comment` (outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = line.as_bytes();
    for (i, &byte) in bytes.iter().enumerate() {
        match byte {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => {
                return &line[..i];
            }
            _ => {}
        }
    }
    line
}

/// Splits a line into commands (at `;`, `&&`, `||`, `|`, `&` outside quotes and `$(…)`) and
/// each command into words, quotes removed; redirections are dropped.
fn split_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = vec![];
    let mut words: Vec<String> = vec![];
    let mut word = String::new();
    let (mut single, mut double, mut depth) = (false, false, 0usize);
    let mut chars = line.chars().peekable();
    let end_word = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            // Quotes are removed but inside `$(…)`, which stays as written.
            '\'' if !double => {
                single = !single;
                if depth > 0 {
                    word.push(c);
                }
            }
            '"' if !single => {
                double = !double;
                if depth > 0 {
                    word.push(c);
                }
            }
            '$' if !single && chars.peek() == Some(&'(') => {
                depth += 1;
                word.push(c);
            }
            ')' if !single && depth > 0 => {
                depth -= 1;
                word.push(c);
            }
            ';' | '&' | '|' if !single && !double && depth == 0 => {
                // `2>&1` is a redirection, not a separator.
                if c == '&' && word.ends_with('>') {
                    word.push(c);
                    continue;
                }
                if matches!(chars.peek(), Some('&' | '|')) {
                    chars.next();
                }
                end_word(&mut word, &mut words);
                commands.push(std::mem::take(&mut words));
            }
            c if c.is_whitespace() && !single && !double && depth == 0 => {
                end_word(&mut word, &mut words)
            }
            c => word.push(c),
        }
    }
    end_word(&mut word, &mut words);
    commands.push(words);
    commands
        .into_iter()
        .map(drop_redirections)
        .filter(|words| !words.is_empty())
        .collect()
}

fn drop_redirections(words: Vec<String>) -> Vec<String> {
    let mut kept = vec![];
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let redirect = word.trim_start_matches(['0', '1', '2', '&']);
        if redirect.starts_with(['>', '<']) {
            if redirect.trim_start_matches(['>', '<', '&']).is_empty() {
                words.next(); // `> file`
            }
            continue;
        }
        kept.push(word);
    }
    kept
}

/// Every command of every document.
fn commands() -> Vec<Command> {
    let mut all = vec![];
    for doc in documents() {
        for line in command_lines(&repo_file(&doc)) {
            for words in split_commands(&line) {
                all.push(Command {
                    doc: doc.clone(),
                    line: line.clone(),
                    words,
                });
            }
        }
    }
    all
}

/// Placeholders of the docs (`<id>`, `<thread_id>`) as values clap accepts, and optional
/// parts (`[--seed 1]`) as written.
fn concrete(word: &str) -> String {
    let word = word.trim_start_matches('[').trim_end_matches(']');
    if word.starts_with('<') && word.ends_with('>') {
        "1".to_owned()
    } else {
        word.to_owned()
    }
}

/// What reads an environment variable: one of the binaries (clap `env`), a script, the
/// browser tests, cargo.
fn known_variables() -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    fn walk(command: &clap::Command, known: &mut BTreeSet<String>) {
        known.extend(variables_read(command));
        for sub in command.get_subcommands() {
            walk(sub, known);
        }
    }
    for name in [
        "smart-support",
        "ingress",
        "workers",
        "projections",
        "shop-api",
        "loadgen",
    ] {
        walk(&binary(name).unwrap(), &mut known);
    }
    let mut sources: Vec<String> = std::fs::read_dir(repo().join("scripts"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    sources.extend(
        std::fs::read_dir(repo().join("web/e2e"))
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap()),
    );
    for source in sources {
        let mut rest = source.as_str();
        while let Some(at) = rest.find(['$']) {
            rest = &rest[at + 1..];
            let name: String = rest
                .trim_start_matches('{')
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.len() > 1 {
                known.insert(name);
            }
        }
        // The browser tests read theirs with `env('E2E_…')` or `process.env.E2E_…`.
        for pattern in ["env('", "process.env."] {
            for (at, _) in source.match_indices(pattern) {
                let name: String = source[at + pattern.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                known.insert(name);
            }
        }
    }
    // Read by the workspace's own code outside clap (`std::env::var("…")`, e.g. the test kit's
    // `PROPTEST_CASES`).
    for crate_dir in [
        "common",
        "ingress",
        "workers",
        "projections",
        "cli",
        "testkit",
        "loadgen",
        "shop",
        "chaos",
    ] {
        rust_files(&repo().join(crate_dir).join("src"), &mut |source| {
            for pattern in ["var(\"", "var_os(\""] {
                for (at, _) in source.match_indices(pattern) {
                    let name: String = source[at + pattern.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        known.insert(name);
                    }
                }
            }
        });
    }
    known.extend(["CARGO_PROFILE_RELEASE_DEBUG".to_owned()]);
    known
}

/// Calls `visit` with the text of every `.rs` file under `dir`.
fn rust_files(dir: &std::path::Path, visit: &mut dyn FnMut(&str)) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, visit);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            visit(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The `(method, path)` of every route in the REST API's OpenAPI document, and the endpoints
/// outside `/api` that the services serve.
async fn routes() -> BTreeSet<(String, String)> {
    let axum::Json(document) = api::openapi::document().await;
    let document: Value = serde_json::to_value(document).unwrap();
    let mut routes: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    for path in ["/metrics", "/healthz"] {
        routes.insert(("GET".to_owned(), path.to_owned()));
    }
    routes
}

/// Whether a concrete path (`/api/dead-letters/7`) is a route template
/// (`/api/dead-letters/{id}`).
fn matches_route(path: &str, template: &str) -> bool {
    let (path, template): (Vec<&str>, Vec<&str>) =
        (path.split('/').collect(), template.split('/').collect());
    path.len() == template.len()
        && path
            .iter()
            .zip(&template)
            .all(|(part, pattern)| part == pattern || pattern.starts_with('{'))
}

struct Checker {
    variables: BTreeSet<String>,
    /// Shell variables the docs assign themselves (`D=…`, `TOKEN=$(…)`).
    assigned: BTreeSet<String>,
    routes: BTreeSet<(String, String)>,
}

impl Checker {
    /// Checks one command's words (a wrapper's, like `/usr/bin/time`, checks the command it
    /// wraps).
    fn check(&self, words: &[String]) -> Result<(), String> {
        let mut words: Vec<String> = words.iter().map(|w| concrete(w)).collect();
        if words[0] == "export" {
            words.remove(0);
        }
        // Leading assignments: each variable is read by something.
        while let Some((name, _)) = words.first().and_then(|w| w.split_once('=')) {
            if !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                break;
            }
            if !self.variables.contains(name) && !self.assigned.contains(name) {
                return Err(format!("nothing reads the variable {name}"));
            }
            words.remove(0);
        }
        let Some(program) = words.first().cloned() else {
            return Ok(());
        };
        let args = &words[1..];
        let name = program.rsplit('/').next().unwrap();
        if binary(name).is_some() && (program == name || program.starts_with("target/")) {
            return parses(name, args);
        }
        match program.as_str() {
            "cargo" => self.cargo(args),
            "make" => {
                let makefile = repo_file("Makefile");
                args.iter()
                    .all(|target| {
                        makefile
                            .lines()
                            .any(|l| l.starts_with(&format!("{target}:")))
                    })
                    .then_some(())
                    .ok_or_else(|| format!("no Makefile target {args:?}"))
            }
            "bash" | "python3" | "." | "cp" => exists(args.iter().find(|a| !a.starts_with('-'))),
            "nats-server" => exists(flag_value(args, "-c")),
            "docker" if args.first().map(String::as_str) == Some("compose") => {
                exists(Some(&"docker-compose.yml".to_owned()))
            }
            "curl" => self.curl(args),
            "npm" => npm(args),
            "/usr/bin/time" => {
                let wrapped: Vec<String> = args
                    .iter()
                    .skip_while(|a| a.starts_with('-'))
                    .cloned()
                    .collect();
                self.check(&wrapped)
            }
            "runuser" => {
                let wrapped: Vec<String> = args
                    .iter()
                    .skip_while(|a| *a != "--")
                    .skip(1)
                    .cloned()
                    .collect();
                self.check(&wrapped)
            }
            "set" | "mkdir" | "chown" | "cd" | "sed" | "head" | "echo" | "wait" => Ok(()),
            _ if program.starts_with("$(pg_bin_dir)/") => lib_function("pg_bin_dir"),
            _ if program.starts_with("ensure_") => lib_function(&program),
            _ => Err(format!("a command this test has no rule for: {program}")),
        }
    }

    fn cargo(&self, args: &[String]) -> Result<(), String> {
        let members = repo_file("Cargo.toml");
        for package in flag_values(args, "-p") {
            if !members.contains(&format!("\"{package}\"")) {
                return Err(format!("no workspace member {package}"));
            }
        }
        for test in flag_values(args, "--test") {
            let package = flag_value(args, "-p").ok_or("--test without -p")?;
            let dir = repo().join(package).join("tests");
            if !dir.join(format!("{test}.rs")).exists() && !dir.join(test).join("main.rs").exists()
            {
                return Err(format!("{package} has no test target {test}"));
            }
        }
        for example in flag_values(args, "--example") {
            let found = ["projections", "loadgen", "cli", "workers", "ingress"]
                .iter()
                .any(|p| {
                    repo()
                        .join(p)
                        .join("examples")
                        .join(format!("{example}.rs"))
                        .exists()
                });
            if !found {
                return Err(format!("no example {example}"));
            }
        }
        if args.first().map(String::as_str) == Some("run") {
            let bin = flag_value(args, "--bin")
                .or(flag_value(args, "-p"))
                .ok_or("cargo run without -p")?;
            let rest: Vec<String> = args
                .iter()
                .skip_while(|a| *a != "--")
                .skip(1)
                .cloned()
                .collect();
            return parses(bin, &rest);
        }
        Ok(())
    }

    fn curl(&self, args: &[String]) -> Result<(), String> {
        let method = flag_value(args, "-X").map_or("GET".to_owned(), |m| m.to_uppercase());
        let method = if method == "GET" && flag_value(args, "-d").is_some() {
            "POST".to_owned()
        } else {
            method
        };
        let url = args
            .iter()
            .find(|a| a.starts_with("http://"))
            .ok_or("curl without a URL")?;
        let path = url
            .trim_start_matches("http://")
            .split_once('/')
            .map_or("/".to_owned(), |(_, path)| format!("/{path}"));
        let path = path.split('?').next().unwrap();
        self.routes
            .iter()
            .any(|(m, template)| *m == method && matches_route(path, template))
            .then_some(())
            .ok_or_else(|| format!("no route {method} {path} in the OpenAPI document"))
    }
}

/// clap parses the arguments as the binary would (a missing required argument, which the
/// environment would give, or `--help` count as parsed).
fn parses(binary_name: &str, args: &[String]) -> Result<(), String> {
    let command = binary(binary_name).ok_or_else(|| format!("{binary_name} is not ours"))?;
    match command
        .try_get_matches_from(std::iter::once(binary_name.to_owned()).chain(args.iter().cloned()))
    {
        Ok(_) => Ok(()),
        Err(err)
            if matches!(
                err.kind(),
                clap::error::ErrorKind::MissingRequiredArgument
                    | clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            Ok(())
        }
        Err(err) => Err(format!("{binary_name} refuses {args:?}: {}", err.kind())),
    }
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a String> {
    flag_values(args, flag).into_iter().next()
}

fn flag_values<'a>(args: &'a [String], flag: &str) -> Vec<&'a String> {
    args.windows(2)
        .filter(|pair| pair[0] == flag)
        .map(|pair| &pair[1])
        .collect()
}

/// A file of the checkout (or a path the docs make elsewhere: `/tmp/…`, `$D/…`, `.data/…`).
fn exists(path: Option<&String>) -> Result<(), String> {
    let path = path.ok_or("no file named")?;
    if path.starts_with(['/', '$']) || path.starts_with(".data/") {
        return Ok(());
    }
    repo()
        .join(path)
        .exists()
        .then_some(())
        .ok_or_else(|| format!("no file {path}"))
}

fn lib_function(name: &str) -> Result<(), String> {
    repo_file("scripts/lib.sh")
        .lines()
        .any(|line| line.starts_with(&format!("{name}()")))
        .then_some(())
        .ok_or_else(|| format!("scripts/lib.sh has no function {name}"))
}

fn npm(args: &[String]) -> Result<(), String> {
    let package: Value = serde_json::from_str(&repo_file("web/package.json")).unwrap();
    match args.first().map(String::as_str) {
        Some("ci" | "install" | "test") => Ok(()),
        Some("run") => {
            let script = args.get(1).ok_or("npm run without a script")?;
            package["scripts"][script.as_str()]
                .as_str()
                .map(|_| ())
                .ok_or_else(|| format!("web/package.json has no script {script}"))?;
            // Files given to the script (`-- e2e/chat.e2e.ts`) exist in web/.
            for file in args.iter().skip_while(|a| *a != "--").skip(1) {
                exists(Some(&format!("web/{file}")))?;
            }
            Ok(())
        }
        other => Err(format!("npm {other:?}")),
    }
}

#[tokio::test]
async fn every_command_in_the_docs_names_what_exists() {
    let commands = commands();
    assert!(commands.len() > 60, "{} commands found", commands.len());
    let assigned = commands
        .iter()
        .flat_map(|c| c.words.iter())
        .filter_map(|w| w.split_once('=').map(|(name, _)| name.to_owned()))
        .filter(|name| name.chars().all(|c| c.is_ascii_uppercase()) && name.len() <= 5)
        .collect();
    let checker = Checker {
        variables: known_variables(),
        assigned,
        routes: routes().await,
    };
    let failures: Vec<String> = commands
        .iter()
        .filter_map(|command| {
            checker
                .check(&command.words)
                .err()
                .map(|err| format!("{}: `{}`: {err}", command.doc, command.line))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "stale commands:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_line_splits_into_commands_and_words_as_the_shell_would() {
    assert_eq!(
        split_commands(r#"set -a; . .data/secrets.env; set +a"#),
        vec![
            vec!["set", "-a"],
            vec![".", ".data/secrets.env"],
            vec!["set", "+a"]
        ]
    );
    assert_eq!(
        split_commands(
            r#"TOKEN=$(sed -n 's/^A=//p' x) && curl -H "A: b c" 'http://h/p?x=1&y=2' > out 2>&1 &"#
        ),
        vec![
            vec!["TOKEN=$(sed -n 's/^A=//p' x)"],
            vec!["curl", "-H", "A: b c", "http://h/p?x=1&y=2"],
        ]
    );
    assert_eq!(
        command_lines(
            "```sh\n$ smart-support verify \\\n  --limit 5   # at most 5\nequal: 3 tables\n```\n"
        ),
        vec!["smart-support verify --limit 5"]
    );
}

#[test]
fn a_stale_command_is_caught() {
    let checker = Checker {
        variables: BTreeSet::from(["NATS_URL".to_owned()]),
        assigned: BTreeSet::new(),
        routes: BTreeSet::from([("GET".to_owned(), "/api/dead-letters/{id}".to_owned())]),
    };
    let check = |line: &str| checker.check(&split_commands(line).remove(0));
    assert!(check("smart-support dead-letters show <id>").is_ok());
    assert!(check("curl -H 'x: y' http://127.0.0.1:8080/api/dead-letters/7").is_ok());
    assert!(check("NATS_URL=nats://x smart-support verify --limit 5").is_ok());
    assert!(check("smart-support dead-letters shows 7").is_err());
    assert!(check("smart-support verify --no-such-flag").is_err());
    assert!(check("curl -X DELETE http://127.0.0.1:8080/api/dead-letters/7").is_err());
    assert!(check("NO_SUCH_VAR=1 smart-support verify").is_err());
    assert!(check("make no-such-target").is_err());
    assert!(check("bash scripts/no-such.sh").is_err());
    assert!(check("frobnicate --now").is_err());
}
