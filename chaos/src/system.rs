//! The whole system from its real binaries: `nats-server` with JetStream (fsync on every
//! write) and PostgreSQL from testkit, the demo shop API, and the services as separate
//! processes (`ingress`, `workers`, `projections`), each on its own free loopback port, so a
//! fault can hit one of them with a real signal. One operator account is added at the start
//! ([`OPERATOR_EMAIL`]), with the CLI an operator's set-up would use, for the desk actor.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
pub use testkit::Pausable;
use testkit::{NatsOptions, NatsServer, Postgres};

/// The secret the ingress signs thread tokens with, and the operator token of the REST API:
/// fixed, so a test can look for them where they must not be (logs, error bodies).
pub const THREAD_TOKEN_SECRET: &str = "chaos-thread-token-secret-0123456789";
pub const API_TOKEN: &str = "chaos-operator-token-0123456789";

/// The operator the desk actor signs in as (an `agent`: no more rights than a person at the
/// desk has).
pub const OPERATOR_EMAIL: &str = "desk@chaos.example";
pub const OPERATOR_NAME: &str = "Chaos Desk";
pub const OPERATOR_PASSWORD: &str = "chaos-desk-password-0123";

/// How the system is laid out.
#[derive(Debug, Clone)]
pub struct Options {
    pub ingresses: usize,
    pub workers: usize,
    pub projections: usize,
    /// The workers consumer's `ack_wait`: how long a frozen or dead worker keeps a message.
    pub ack_wait: Duration,
    /// `max_file_store` of JetStream, for the full-store fault.
    pub max_file_store: Option<u64>,
    /// `SMART_SUPPORT_FAIL_POINT` of the first worker (the others have none).
    pub first_worker_fail_point: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ingresses: 1,
            workers: 2,
            projections: 1,
            ack_wait: Duration::from_secs(3),
            max_file_store: None,
            first_worker_fail_point: None,
        }
    }
}

/// One service process: its binary, environment and log; restartable on the same port.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
    /// Where it serves HTTP (`/healthz` or `/api/health`), and its health path.
    pub addr: SocketAddr,
    health: &'static str,
}

impl Service {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let child = Command::new(&self.binary)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends a signal (`KILL`, `TERM`, `STOP`, `CONT`) with the `kill` binary.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-s", signal, "--", &pid.to_string()])
                .status();
        }
    }

    /// Whether the process has exited by itself (it is then reaped).
    pub fn exited(&mut self) -> bool {
        let gone = self
            .child
            .as_mut()
            .is_none_or(|child| child.try_wait().ok().flatten().is_some());
        if gone {
            self.child = None;
        }
        gone
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and waits (at most `within`) for the process to exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        self.signal("TERM");
        let mut child = self.child.take().context("not running")?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not exit within {within:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again (killing it first if it runs) and waits until it is healthy.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_healthy(Duration::from_secs(60)).await
    }

    /// Waits until its health endpoint answers 200.
    pub async fn wait_healthy(&self, within: Duration) -> anyhow::Result<()> {
        let http = testkit::http_client();
        let url = format!("http://{}{}", self.addr, self.health);
        let deadline = Instant::now() + within;
        loop {
            let ok = http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not healthy at {url} within {within:?}; its log ends:\n{}",
                    self.name,
                    tail(&self.log_text(), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything it logged, over all its starts.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident memory in KiB (`VmRSS`), while it runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill();
    }
}

/// How many of a service's error lines [`System::error_lines`] shows.
const ERROR_LINES: usize = 20;

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The folder of the workspace's binaries: the one this executable was built into
/// (`target/<profile>/`, or its parent for a test binary in `deps/`).
fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of this executable");
    let dir = exe.parent().expect("a folder").to_path_buf();
    if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir
    }
}

pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = binaries_dir().join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build the binaries first with `cargo build --workspace --bins` \
             (`make test` does)",
            path.display()
        );
    }
    Ok(path)
}

/// The checkout's root (for the demo's agents config).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running system.
pub struct System {
    pub nats: NatsServer,
    /// One JetStream client for the harness's own reads and publishes (it reconnects by
    /// itself across a restart of `nats-server`).
    pub js: async_nats::jetstream::Context,
    pub postgres: Postgres,
    pub database_url: String,
    pub shop: Service,
    pub ingresses: Vec<Service>,
    pub workers: Vec<Service>,
    pub projections: Vec<Service>,
    dir: tempfile::TempDir,
}

impl System {
    pub async fn start(options: Options) -> anyhow::Result<System> {
        let nats = NatsServer::start_with(NatsOptions {
            sync_always: true,
            max_file_store: options.max_file_store,
            tls: None,
        });
        // As the admin user, which sets the streams up; each service runs as its own user.
        let admin = common::config::NatsArgs::at(nats.url())
            .as_user("admin", &testkit::nats_password("admin"));
        let js = common::jetstream::connect_once(&admin).await?;
        common::jetstream::setup(&js, &admin).await?;
        let postgres = Postgres::start();
        let database_url = postgres.create_database();
        let dir = tempfile::Builder::new().prefix("chaos-").tempdir()?;
        let free = || SocketAddr::from(([127, 0, 0, 1], testkit::free_port()));
        let base = |name: &str, user: &str| -> Vec<(String, String)> {
            let mut env = testkit::nats_env(user);
            env.extend([
                ("NATS_URL".into(), nats.url()),
                ("NATS_CLIENT_NAME".into(), name.into()),
                (
                    "RUST_LOG".into(),
                    std::env::var("CHAOS_RUST_LOG").unwrap_or_else(|_| "warn".into()),
                ),
                ("RUST_BACKTRACE".into(), "1".into()),
                // Panics show their backtrace; an error logged while a dependency is down
                // does not capture one: symbolising it loads the debug build's debug info,
                // a few hundred MiB the process keeps, which I7 would take for a leak.
                ("RUST_LIB_BACKTRACE".into(), "0".into()),
                // Plain log lines: a failed run prints some of them (`System::error_lines`).
                ("NO_COLOR".into(), "1".into()),
            ]);
            env
        };
        let service = |name: String,
                       bin: &str,
                       addr: SocketAddr,
                       health: &'static str,
                       env: Vec<(String, String)>|
         -> anyhow::Result<Service> {
            Ok(Service {
                log: dir.path().join(format!("{name}.log")),
                name,
                binary: binary(bin)?,
                env,
                child: None,
                addr,
                health,
            })
        };

        let shop_addr = free();
        let mut shop = service(
            "shop".into(),
            "shop-api",
            shop_addr,
            "/healthz",
            vec![("SHOP_BIND".into(), shop_addr.to_string())],
        )?;
        shop.spawn()?;

        let mut projections = Vec::new();
        for n in 0..options.projections {
            let addr = free();
            let mut env = base(&format!("projections-{n}"), "admin");
            env.extend([
                ("LISTEN_ADDR".into(), addr.to_string()),
                // Every process on one host: none may take the default metrics port.
                ("METRICS_ADDR".into(), "127.0.0.1:0".into()),
                ("DATABASE_URL".into(), database_url.clone()),
                ("API_TOKEN".into(), API_TOKEN.into()),
            ]);
            projections.push(service(
                format!("projections-{n}"),
                "projections",
                addr,
                "/api/health",
                env,
            )?);
        }
        let mut workers = Vec::new();
        for n in 0..options.workers {
            let addr = free();
            let mut env = base(&format!("workers-{n}"), "worker");
            env.extend([
                (
                    "AGENTS_CONFIG".into(),
                    repo().join("fixtures/agents.yaml").display().to_string(),
                ),
                ("TOOLS_BASE_URL".into(), format!("http://{shop_addr}")),
                ("TOOLS_ALLOW_HOSTS".into(), shop_addr.to_string()),
                ("WORKER_METRICS_ADDR".into(), addr.to_string()),
                (
                    "WORKER_ACK_WAIT".into(),
                    format!("{}ms", options.ack_wait.as_millis()),
                ),
                ("WORKER_RETRY_DELAY".into(), "200ms".into()),
                ("WORKER_RETRY_MAX_DELAY".into(), "2s".into()),
            ]);
            if let (0, Some(point)) = (n, options.first_worker_fail_point) {
                env.push(("SMART_SUPPORT_FAIL_POINT".into(), point.into()));
            }
            workers.push(service(
                format!("workers-{n}"),
                "workers",
                addr,
                "/healthz",
                env,
            )?);
        }
        let mut ingresses = Vec::new();
        for n in 0..options.ingresses {
            let addr = free();
            let mut env = base(&format!("ingress-{n}"), "ingress");
            env.extend([
                ("LISTEN_ADDR".into(), addr.to_string()),
                // Every process on one host: none may take the default metrics port.
                ("METRICS_ADDR".into(), "127.0.0.1:0".into()),
                ("THREAD_TOKEN_SECRET".into(), THREAD_TOKEN_SECRET.into()),
                // The load is many messages per thread; the limit itself is tested elsewhere.
                ("RATE_LIMIT_MESSAGES".into(), "1000000".into()),
                ("RATE_LIMIT_WINDOW".into(), "1s".into()),
            ]);
            ingresses.push(service(
                format!("ingress-{n}"),
                "ingress",
                addr,
                "/healthz",
                env,
            )?);
        }
        let mut system = System {
            nats,
            js,
            postgres,
            database_url,
            shop,
            ingresses,
            workers,
            projections,
            dir,
        };
        for service in system.services_mut() {
            if service.child.is_none() {
                service.spawn()?;
            }
        }
        for service in system.services() {
            service.wait_healthy(Duration::from_secs(60)).await?;
        }
        // The projector has migrated the database by the time it is healthy.
        system.add_operator()?;
        Ok(system)
    }

    /// Adds the desk's operator with `smart-support operators add`, as docs/operators.md has
    /// it (the password from `OPERATOR_PASSWORD`, never a flag).
    fn add_operator(&self) -> anyhow::Result<()> {
        let output = Command::new(binary("smart-support")?)
            .args(["operators", "add", "--if-missing", "--role", "agent"])
            .args(["--email", OPERATOR_EMAIL, "--name", OPERATOR_NAME])
            .env("OPERATOR_PASSWORD", OPERATOR_PASSWORD)
            .env("DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .output()?;
        if !output.status.success() {
            bail!(
                "smart-support operators add failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Every service process, the shop included.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        std::iter::once(&self.shop)
            .chain(&self.ingresses)
            .chain(&self.workers)
            .chain(&self.projections)
    }

    pub fn services_mut(&mut self) -> impl Iterator<Item = &mut Service> {
        std::iter::once(&mut self.shop)
            .chain(&mut self.ingresses)
            .chain(&mut self.workers)
            .chain(&mut self.projections)
    }

    /// Where the load generator connects.
    pub fn ingress_addrs(&self) -> Vec<SocketAddr> {
        self.ingresses.iter().map(|i| i.addr).collect()
    }

    /// The chat stream's state now.
    pub async fn chat_state(&self) -> anyhow::Result<async_nats::jetstream::stream::State> {
        Ok(self
            .js
            .get_stream(common::subjects::CHAT_STREAM)
            .await?
            .info()
            .await?
            .state
            .clone())
    }

    /// The REST API's origin (the first projections instance).
    pub fn api(&self) -> String {
        format!("http://{}", self.projections[0].addr)
    }

    /// The folder of the logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What a run that broke a promise shows in its output, since CI keeps no files: each
    /// service's last error lines (a sequence conflict of the projector, say) and the end of
    /// nats-server's log.
    pub fn error_lines(&self) -> String {
        let mut out = String::new();
        for service in self.services() {
            let text = service.log_text();
            let errors: Vec<&str> = text.lines().filter(|line| line.contains("ERROR")).collect();
            if !errors.is_empty() {
                let last = &errors[errors.len().saturating_sub(ERROR_LINES)..];
                out += &format!(
                    "--- {}: {} error lines, the last ones ---\n",
                    service.name,
                    errors.len()
                );
                out += &(last.join("\n") + "\n");
            }
        }
        out + &format!("--- nats-server's log ends ---\n{}", self.nats.log_tail())
    }

    /// Keeps the logs (the folder is not removed) and says where they are: for a failed run.
    pub fn keep_logs(self) -> PathBuf {
        let System { dir, .. } = self;
        dir.keep()
    }
}
