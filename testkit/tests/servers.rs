//! The servers testkit starts are real, restartable, and gone once dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::panic;
use std::process::{Command, Output};
use std::time::Duration;

use testkit::{NatsCluster, NatsOptions, NatsServer, Postgres};

/// Connects to a NATS port and returns the first line the server sends.
fn nats_greeting(port: u16) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to nats-server");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set read timeout");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("read the INFO line");
    line
}

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Runs `sql` with psql against database `name`.
fn psql(postgres: &Postgres, name: &str, sql: &str) -> Output {
    Command::new(postgres.bin_dir().join("psql"))
        .args(["-h", "127.0.0.1", "-p", &postgres.port().to_string()])
        .args([
            "-U",
            "postgres",
            "-d",
            name,
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", sql])
        .output()
        .expect("run psql")
}

fn psql_ok(postgres: &Postgres, name: &str, sql: &str) -> String {
    let output = psql(postgres, name, sql);
    assert!(
        output.status.success(),
        "psql -c {sql:?} on {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn database_name(url: &str) -> &str {
    url.rsplit('/').next().expect("a database name in the URL")
}

#[test]
fn nats_server_accepts_connections_and_stops_on_drop() {
    let server = NatsServer::start();
    let port = server.port();
    assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));
    assert!(nats_greeting(port).starts_with("INFO "));
    let dir = server.store_dir().to_owned();

    drop(server);

    assert!(
        !accepts_connections(port),
        "port {port} still open after drop"
    );
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
}

#[test]
fn nats_server_restart_keeps_the_port() {
    let mut server = NatsServer::start();
    let port = server.port();

    server.kill();
    assert!(
        !accepts_connections(port),
        "port {port} still open after kill"
    );
    assert!(
        server.store_dir().exists(),
        "the store dir is kept after kill"
    );

    server.restart();
    assert_eq!(server.port(), port);
    assert!(nats_greeting(port).starts_with("INFO "));
}

#[test]
fn nats_server_starts_with_sync_always_and_a_store_limit() {
    let server = NatsServer::start_with(NatsOptions {
        sync_always: true,
        max_file_store: Some(64 * 1024 * 1024),
        tls: None,
    });
    let greeting = nats_greeting(server.port());
    assert!(greeting.starts_with("INFO "));
    assert!(greeting.contains("\"jetstream\":true"), "{greeting}");
}

#[test]
fn a_nats_cluster_of_three_survives_a_killed_node_and_takes_it_back() {
    let mut cluster = NatsCluster::start();
    let ports: Vec<u16> = cluster
        .urls()
        .split(',')
        .map(|url| url.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 3);
    for port in &ports {
        let greeting = nats_greeting(*port);
        assert!(
            greeting.contains("\"cluster\":\"smart-support\""),
            "{greeting}"
        );
        assert!(greeting.contains("\"jetstream\":true"), "{greeting}");
    }
    assert_eq!(cluster.name(1), "smart-support-2");
    assert_eq!(cluster.stream_leader("NO_SUCH_STREAM"), None);

    cluster.kill(0);
    assert!(!accepts_connections(ports[0]));
    cluster.restart(0);
    assert!(nats_greeting(ports[0]).starts_with("INFO "));
}

#[test]
fn postgres_creates_distinct_databases() {
    let postgres = Postgres::start();
    let first = postgres.create_database();
    let second = postgres.create_database();

    assert_ne!(first, second);
    let prefix = format!("postgres://postgres@127.0.0.1:{}/", postgres.port());
    for url in [&first, &second] {
        assert!(url.starts_with(&prefix), "{url}");
        assert_eq!(psql_ok(&postgres, database_name(url), "select 1"), "1");
    }
}

#[test]
fn postgres_keeps_committed_data_across_kill_and_restart() {
    let mut postgres = Postgres::start();
    let url = postgres.create_database();
    let name = database_name(&url);
    psql_ok(
        &postgres,
        name,
        "create table note (body text); insert into note values ('kept')",
    );

    postgres.kill();
    assert!(!psql(&postgres, name, "select 1").status.success());

    postgres.restart();
    assert_eq!(psql_ok(&postgres, name, "select body from note"), "kept");
    postgres.create_database();
}

#[test]
fn postgres_stops_on_drop() {
    let postgres = Postgres::start();
    let port = postgres.port();
    let bin_dir = postgres.bin_dir().to_owned();

    drop(postgres);

    assert!(
        !accepts_connections(port),
        "port {port} still open after drop"
    );
    let status = Command::new(bin_dir.join("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .status()
        .expect("run pg_isready");
    assert!(!status.success());
}

#[test]
fn servers_are_torn_down_when_a_test_panics() {
    let mut ports = (0, 0);
    let result = panic::catch_unwind(panic::AssertUnwindSafe(|| {
        let nats = NatsServer::start();
        let postgres = Postgres::start();
        ports = (nats.port(), postgres.port());
        panic!("the test failed");
    }));

    assert!(result.is_err());
    assert!(
        !accepts_connections(ports.0),
        "nats-server survived the panic"
    );
    assert!(!accepts_connections(ports.1), "postgres survived the panic");
}
