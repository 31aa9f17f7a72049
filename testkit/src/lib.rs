//! Real servers for integration tests, never mocks. [`NatsServer`] (in `nats`) starts a
//! JetStream-enabled `nats-server` and [`Postgres`] (in `postgres`) runs `initdb` and a
//! `postgres` postmaster, each on a free 127.0.0.1 port inside a fresh temporary directory;
//! [`NatsCluster`] (in `nats_cluster`) routes three such servers into one JetStream cluster
//! and tells which node leads a stream. Every server loads the users of `nats/users.conf`
//! (passwords: [`nats_password`]), so every test runs with the services' own permissions;
//! [`TestCa`] makes a certificate authority and a server certificate for TLS tests. They all lean on `process`, which finds the binaries, spawns them with their output in a log
//! file, waits until they are ready and tears their whole process tree down again. The helpers
//! are synchronous (std only), so sync and async tests alike can use them. Fault tests can
//! `kill` a server (SIGKILL, data kept) and `restart` it on the same port; dropping a server,
//! also while a test panics, kills it, waits for every process it started and removes its
//! directory. [`free_port`] and [`wait_until`] are the small pieces the servers are built on. [`http_client`] builds a
//! reqwest client the way this workspace needs (a rustls crypto provider installed first).
//! The one fake is [`FakeLlm`] (in `fake_llm`), since no model runs in a test: an async
//! OpenAI-compatible chat-completions server on 127.0.0.1 that answers from a script and
//! records every request. [`Tripwire`] (in `tripwire`) is a listener that counts the TCP
//! connections it accepts, for tests that prove a request was refused before connecting.
//! [`proptest_config`] is the one configuration of the property tests.

pub mod fake_llm;
mod nats;
mod nats_cluster;
mod postgres;
mod process;
mod tls;
mod tripwire;
pub mod v1_fixture;

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

pub use fake_llm::{Answer, FakeLlm};
pub use nats::{
    NATS_USERS, NatsOptions, NatsServer, ServerTls, nats_env, nats_password, nats_password_env,
};
pub use nats_cluster::NatsCluster;
pub use postgres::Postgres;
pub use tls::TestCa;
pub use tripwire::Tripwire;

/// A server process that fault tests freeze with SIGSTOP, its child processes too: it holds
/// its connections but answers nothing until [`Pausable::resume`] (SIGCONT).
pub trait Pausable {
    /// The server's process id (its wrapper's, when it runs under `runuser`), while it runs.
    fn pid(&self) -> Option<u32>;

    fn pause(&self) {
        if let Some(pid) = self.pid() {
            process::signal_tree(pid, "STOP");
        }
    }

    fn resume(&self) {
        if let Some(pid) = self.pid() {
            process::signal_tree(pid, "CONT");
        }
    }
}

/// How often [`wait_until`] and the servers' readiness checks poll.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A free TCP port on 127.0.0.1, for a server that binds it itself; no other caller of
/// `free_port`, in this process or any other, gets it while this process runs.
///
/// Picked at random below Linux's ephemeral range (32768–60999) and checked by binding it:
/// a port the kernel hands out for `bind(:0)` or an outgoing connection (as every client
/// and every other test does all the time) could be taken again before the server binds
/// it, which made servers fail with "address already in use" under a parallel test run.
/// The port is also reserved: an exclusive lock on a file named after it, in a folder of
/// the temporary directory, held until this process exits. Checking by binding alone let
/// two tests (each its own process under nextest) pick the same port in the same instant,
/// or one take the port of another's server while that server was down for a restart.
pub fn free_port() -> u16 {
    const LOW: u16 = 20_000;
    const HIGH: u16 = 32_000;
    for _ in 0..1_000 {
        let port = LOW + (random() % u64::from(HIGH - LOW)) as u16;
        if reserve(port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {HIGH} on 127.0.0.1")
}

/// Takes `port`'s lock file, keeping it locked for the rest of the process; false when
/// another holder (of this process or another) has it. The lock goes with the process,
/// however it ends, so nothing is left to clean up but empty files.
fn reserve(port: u16) -> bool {
    use std::fs::{File, OpenOptions};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Mutex;
    static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());
    let dir = ports_dir();
    if !dir.exists() {
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
        // Like /tmp: every user's tests reserve ports here, each removing only its own files.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
    }
    let path = dir.join(port.to_string());
    // A lock needs no write access: a file another user created is opened to read.
    let file = File::open(&path).or_else(|_| {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
    });
    let file = file.unwrap_or_else(|err| panic!("cannot open {}: {err}", path.display()));
    if file.try_lock().is_err() {
        return false;
    }
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
    true
}

/// Where [`free_port`] keeps its lock files, one per port, shared by every test process.
fn ports_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("smart-support-test-ports")
}

/// A random number, without a dependency: the std hasher is seeded randomly per process,
/// and the time and a counter make each call differ.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Polls `cond` every 20 ms until it returns true or `timeout` passes; panics with `what` in the
/// message on timeout.
///
/// `cond` is always called at least once, and once more after the deadline, so a condition that
/// became true during the last interval still counts.
pub fn wait_until(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, cond),
        "timed out after {timeout:?} waiting until {what}"
    );
}

/// [`wait_until`]'s polling, for a caller that says more than `what` when it times out:
/// whether `cond` held before `timeout` passed (or at the one look after it).
pub(crate) fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return cond();
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// An HTTP client for tests. The workspace builds reqwest with rustls but without a
/// default crypto provider (the workers install `ring` at start-up, avoiding aws-lc-rs and
/// its C build), so every client must be built after a provider is installed: this does
/// both. Build test clients with this, not `reqwest::Client::new()`, which panics.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client builds")
}

/// The configuration of a crate's property tests (`proptest!`): `default_cases` cases, brief
/// enough for `make test`, or `PROPTEST_CASES` of them for a longer search; a failure prints
/// its shrunk input and writes no regression file into the tree.
pub fn proptest_config(default_cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_can_be_bound_again() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the port handed out is free");
    }

    #[test]
    fn a_port_handed_out_is_not_handed_out_again_while_it_is_unbound() {
        // The ports are unbound between calls, so binding alone would let a repeat through:
        // among 500 picks from 12,000 ports, about ten pairs repeat (none with odds of 1 in 30,000),
        // and this process keeps each pick's lock file open: 500 descriptors.
        let ports: Vec<u16> = (0..500).map(|_| free_port()).collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    }

    #[test]
    fn a_port_reserved_by_another_process_is_not_handed_out() {
        // Another process (a `flock` child) holds one port's lock; the reservation refuses it.
        let dir = ports_dir();
        // Below the range `free_port` picks from, so no other test holds it.
        let port = 19_999;
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(port.to_string());
        std::fs::write(&path, "").unwrap();
        let mut holder = std::process::Command::new("flock")
            .args(["--exclusive", "--no-fork"])
            .arg(&path)
            .args(["sleep", "30"])
            .spawn()
            .expect("flock (util-linux) runs");
        wait_until(
            "the other process holds the lock",
            Duration::from_secs(5),
            || std::fs::File::open(&path).is_ok_and(|f| f.try_lock().is_err()),
        );
        assert!(
            !reserve(port),
            "a port another process reserved was reserved again"
        );
        holder.kill().unwrap();
        holder.wait().unwrap();
        wait_until("the lock is released", Duration::from_secs(5), || {
            reserve(port)
        });
    }

    #[test]
    fn wait_until_returns_once_the_condition_holds() {
        let mut calls = 0;
        wait_until("the third call", Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        });
        assert_eq!(calls, 3);
    }

    #[test]
    #[should_panic(expected = "waiting until the moon turns blue")]
    fn wait_until_names_the_condition_when_it_times_out() {
        wait_until("the moon turns blue", Duration::from_millis(50), || false);
    }
}
