//! The SSRF guard as a tool call and an OpenAPI import by URL meet it: a private address
//! in any encoding, a name that resolves privately, a redirect to one, a DNS answer that
//! turns private (rebinding) is refused before any connection. The proof is a tripwire: a
//! listener on 127.0.0.2 (no allow-list here names it) that counts the TCP connections it
//! accepts and must count none; `localhost` is aimed at a second one on 127.0.0.1. Names
//! are answered by a scripted resolver injected into the guard, so the test decides what
//! each lookup returns. A control allow-lists 127.0.0.2 and sees the same URLs connect.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use common::events::ErrorCategory;
use serde_json::{Value, json};
use testkit::Tripwire;
use tools::import::ImportError;
use tools::import::fetch::fetch_through;
use tools::ssrf::{Guard, Lookingup, Lookup, SystemLookup};
use tools::{ToolArgs, Toolbox};

const DOC: &str = r#"
openapi: 3.0.3
info: { title: probe, version: "1" }
servers: [{ url: "http://api.invalid" }]
paths:
  /probe:
    get:
      operationId: probe
      responses: { "200": { description: ok } }
"#;

const PRIVATE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A resolver that answers scripted names from their queue (the last answer repeats) and
/// every other name with the system resolver; it counts the lookups of scripted names.
#[derive(Debug, Default)]
struct TestDns {
    answers: Mutex<HashMap<String, VecDeque<Vec<IpAddr>>>>,
    lookups: AtomicUsize,
}

impl TestDns {
    fn with(names: &[(&str, &[&[&str]])]) -> Arc<TestDns> {
        let dns = TestDns::default();
        for (name, answers) in names {
            let queue = answers
                .iter()
                .map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect())
                .collect();
            dns.answers.lock().unwrap().insert(name.to_string(), queue);
        }
        Arc::new(dns)
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl Lookup for TestDns {
    fn lookup(&self, host: &str) -> Lookingup {
        let mut answers = self.answers.lock().unwrap();
        let Some(queue) = answers.get_mut(host) else {
            return SystemLookup.lookup(host);
        };
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let next = if queue.len() > 1 {
            queue.pop_front().unwrap()
        } else {
            queue[0].clone()
        };
        Box::pin(async move { Ok(next) })
    }
}

/// The names the scripted resolver knows, all private: one of them only among public ones.
fn private_names() -> Arc<TestDns> {
    TestDns::with(&[
        ("internal.example", &[&["127.0.0.2"]]),
        ("127.0.0.2.nip.io", &[&["127.0.0.2"]]),
        ("mixed.example", &[&["93.184.216.34", "127.0.0.2"]]),
        ("mapped.example", &[&["::ffff:127.0.0.2"]]),
        ("metadata.example", &[&["169.254.169.254"]]),
    ])
}

/// 127.0.0.2 written every way a URL parser or a socket accepts it.
fn encodings_of_127_0_0_2() -> [&'static str; 12] {
    [
        "127.0.0.2",
        "2130706434",
        "0x7f000002",
        "0x7f.0.0.2",
        "0177.0.0.2",
        "017700000002",
        "127.2",
        "127.0.2",
        "127.0.0.2.",
        "[::ffff:127.0.0.2]",
        "[::ffff:7f00:2]",
        "[::127.0.0.2]",
    ]
}

/// Every URL that must be refused: the encodings and the names on the tripwire's port,
/// `localhost` on the loopback tripwire's port, and the metadata address.
fn refused_urls(private: &Tripwire, loopback: &Tripwire) -> Vec<String> {
    let port = private.port();
    let mut urls: Vec<String> = encodings_of_127_0_0_2()
        .iter()
        .map(|host| format!("http://{host}:{port}/"))
        .collect();
    for name in [
        "internal.example",
        "127.0.0.2.nip.io",
        "mixed.example",
        "mapped.example",
        "metadata.example",
    ] {
        urls.push(format!("http://{name}:{port}/"));
    }
    urls.push(format!("http://localhost:{}/", loopback.port()));
    urls.push("http://169.254.169.254/latest/meta-data/".into());
    urls.push("http://[fd00:ec2::254]/latest/meta-data/".into());
    urls
}

fn args(base: &str, allow: &[&str]) -> ToolArgs {
    ToolArgs {
        tools_base_url: Some(base.to_owned()),
        tools_allow_hosts: allow.iter().map(|h| h.to_string()).collect(),
        tools_timeout: Duration::from_millis(500),
        tools_max_response_bytes: 64 * 1024,
        tools_attempts: 2,
        tools_retry_delay: Duration::from_millis(1),
    }
}

fn toolbox(base: &str, allow: &[&str], dns: Arc<TestDns>) -> Toolbox {
    Toolbox::from_openapi(DOC, &args(base, allow))
        .unwrap()
        .with_lookup(dns)
        .unwrap()
}

fn guard(allow: &[&str], dns: Arc<TestDns>) -> Guard {
    let allow: Vec<String> = allow.iter().map(|h| h.to_string()).collect();
    Guard::new(&allow).unwrap().with_lookup(dns)
}

async fn tripwires() -> (Tripwire, Tripwire) {
    (
        Tripwire::start(PRIVATE).await,
        Tripwire::start(IpAddr::V4(Ipv4Addr::LOCALHOST)).await,
    )
}

/// Asserts an import's fetch was refused by the guard.
fn assert_fetch_refused(url: &str, result: &Result<String, ImportError>) {
    assert!(
        matches!(result, Err(ImportError::UrlRefused(_))),
        "{url}: {result:?}"
    );
}

/// Asserts a tool call was refused by the guard (not retried, no answer).
fn assert_refused(url: &str, report: &tools::CallReport) {
    let error = report.result.as_ref().expect_err(url);
    assert_eq!(
        error.category,
        ErrorCategory::NotRetryable,
        "{url}: {error}"
    );
    assert!(
        error.message.starts_with("refused by the SSRF guard"),
        "{url}: {}",
        error.message
    );
    assert!(report.attempts <= 1, "{url}: {} attempts", report.attempts);
}

#[tokio::test]
async fn a_tool_aimed_at_a_private_address_in_any_encoding_or_name_connects_nowhere() {
    let (private, loopback) = tripwires().await;
    for url in refused_urls(&private, &loopback) {
        let report = toolbox(&url, &[], private_names())
            .call("probe", &json!({}), None)
            .await;
        assert_refused(&url, &report);
    }
    assert_eq!(private.connections(), 0);
    assert_eq!(loopback.connections(), 0);
}

#[tokio::test]
async fn an_import_url_aimed_at_a_private_address_in_any_encoding_or_name_connects_nowhere() {
    let (private, loopback) = tripwires().await;
    for url in refused_urls(&private, &loopback) {
        let result = fetch_through(&url, &guard(&[], private_names())).await;
        assert_fetch_refused(&url, &result);
    }
    assert_eq!(private.connections(), 0);
    assert_eq!(loopback.connections(), 0);
}

#[tokio::test]
async fn allow_listed_the_same_urls_do_connect_so_the_tripwire_would_have_seen_them() {
    let (private, _loopback) = tripwires().await;
    let port = private.port();
    // The allow-list names hosts as the URL writes them; the name as well as the address.
    let allow = ["127.0.0.2", "internal.example"];
    for host in [
        "2130706434",
        "0x7f.0.0.2",
        "0177.0.0.2",
        "127.2",
        "internal.example",
    ] {
        let url = format!("http://{host}:{port}/");
        let report = toolbox(&url, &allow, private_names())
            .call("probe", &json!({}), None)
            .await;
        assert_eq!(
            report.result.expect(&url).body,
            json!({"tripped": true}),
            "{url}"
        );
    }
    let url = format!("http://2130706434:{port}/openapi.json");
    let text = fetch_through(&url, &guard(&allow, private_names()))
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["tripped"],
        true
    );
    assert_eq!(private.connections(), 6);
}

/// A server on 127.0.0.1 (allow-listed by its `host:port` only) that answers every
/// request with a redirect to the URL in `target`.
async fn redirector(target: Arc<Mutex<String>>) -> String {
    let app = Router::new().fallback(move || {
        let location = target.lock().unwrap().clone();
        async move { (StatusCode::FOUND, [(header::LOCATION, location)]).into_response() }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

#[tokio::test]
async fn a_redirect_to_a_private_address_in_any_encoding_or_name_connects_nowhere() {
    let (private, loopback) = tripwires().await;
    let target = Arc::new(Mutex::new(String::new()));
    let redirector = redirector(target.clone()).await;
    let base = format!("http://{redirector}");
    let allow = [redirector.as_str()];
    let mut targets = refused_urls(&private, &loopback);
    // The redirector's host on another port: its allow-list entry names one port only.
    targets.push(format!("http://127.0.0.1:{}/", loopback.port()));
    for url in targets {
        *target.lock().unwrap() = url.clone();
        let report = toolbox(&base, &allow, private_names())
            .call("probe", &json!({}), None)
            .await;
        assert_refused(&url, &report);
        let fetched = fetch_through(&format!("{base}/doc"), &guard(&allow, private_names())).await;
        assert_fetch_refused(&url, &fetched);
    }
    assert_eq!(private.connections(), 0);
    assert_eq!(loopback.connections(), 0);
}

#[tokio::test]
async fn a_name_that_turns_private_on_the_next_lookup_never_reaches_the_private_address() {
    // DNS rebinding: public on the first lookup (an address not reached here: the attempt
    // fails or times out and is retried), the tripwire's address on every later one.
    let private = Tripwire::start(PRIVATE).await;
    let dns = || TestDns::with(&[("rebind.example", &[&["203.0.113.7"], &["127.0.0.2"]])]);
    let url = format!("http://rebind.example:{}/", private.port());

    let tool_dns = dns();
    let report = toolbox(&url, &[], tool_dns.clone())
        .call("probe", &json!({}), None)
        .await;
    let error = report.result.unwrap_err();
    assert_eq!(error.category, ErrorCategory::NotRetryable, "{error}");
    assert!(error.message.contains("127.0.0.2"), "{}", error.message);
    assert_eq!(report.attempts, 2, "the second attempt looked up again");
    assert_eq!(tool_dns.lookups(), 2);

    let import_dns = dns();
    let import_guard = guard(&[], import_dns.clone());
    let first = fetch_through(&url, &import_guard).await;
    assert!(
        matches!(&first, Err(ImportError::FetchFailed(_))),
        "{first:?}"
    );
    let second = fetch_through(&url, &import_guard).await;
    assert_fetch_refused(&url, &second);
    assert_eq!(import_dns.lookups(), 2);

    assert_eq!(private.connections(), 0);
}

#[tokio::test]
async fn a_name_allow_listed_on_another_port_is_refused_before_any_lookup() {
    // Were it checked with a lookup of its own, a rebinding name would pass that check
    // with its public answer and then connect with its private one: the resolver does not
    // check a name allow-listed on some port.
    let private = Tripwire::start(PRIVATE).await;
    let dns = TestDns::with(&[("rebind.example", &[&["93.184.216.34"], &["127.0.0.2"]])]);
    let url = format!("http://rebind.example:{}/", private.port());
    let allow = ["rebind.example:1"];

    let report = toolbox(&url, &allow, dns.clone())
        .call("probe", &json!({}), None)
        .await;
    assert_refused(&url, &report);
    assert_eq!(report.attempts, 0);
    let fetched = fetch_through(&url, &guard(&allow, dns.clone())).await;
    assert_fetch_refused(&url, &fetched);

    assert_eq!(dns.lookups(), 0);
    assert_eq!(private.connections(), 0);
}
