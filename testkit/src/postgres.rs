//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory, then a `postgres`
//! postmaster on a free 127.0.0.1 port.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{
    Root, effective_uid_is_root, find_on_path, is_executable, kill_tree, log_outputs, log_tail,
    run, wait_ready,
};
use crate::{POLL_INTERVAL, free_port};

/// How long a (re)started server may take to accept connections, and `create_database` to
/// succeed.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The binaries this module runs; a directory counts only if it has all of them.
const REQUIRED_BINARIES: [&str; 4] = ["initdb", "postgres", "pg_isready", "createdb"];

/// The system user that owns the cluster when the tests run as root.
const SYSTEM_USER: &str = "postgres";

/// Numbers the databases of this process, for unique names.
static NEXT_DATABASE: AtomicU32 = AtomicU32::new(1);

/// A running PostgreSQL server on a free 127.0.0.1 port, its cluster in a fresh temporary
/// directory: trust authentication, superuser `postgres`, no fsync (a killed server keeps every
/// committed transaction; only a machine crash would lose them).
///
/// PostgreSQL refuses to run as root, so when the tests do (as in CI) the directory is handed to
/// the `postgres` system user and the server runs through `runuser -u postgres`.
///
/// Dropping it kills the postmaster and all its children (SIGKILL), waits for them and removes
/// the directory, also while a test panics.
#[derive(Debug)]
pub struct Postgres {
    child: Option<Child>,
    port: u16,
    bin_dir: PathBuf,
    as_system_user: bool,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

impl Postgres {
    /// initdb + postgres on a free 127.0.0.1 port in a fresh temp dir (trust auth, superuser
    /// `postgres`); returns once the server accepts connections.
    ///
    /// # Panics
    ///
    /// If the PostgreSQL binaries are not installed, `initdb` fails, or the server does not
    /// accept connections within 30 s (the message then shows the end of its log).
    pub fn start() -> Postgres {
        let bin_dir =
            postgres_bin_dir().unwrap_or_else(|| panic!("{}", missing_postgres_message()));
        let as_system_user = effective_uid_is_root();
        let dir = tempfile::Builder::new()
            .prefix("testkit-postgres-")
            .tempdir()
            .expect("create a temporary directory for PostgreSQL");
        let socket_dir = dir.path().join("socket");
        fs::create_dir(&socket_dir)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", socket_dir.display()));
        if as_system_user {
            // The temp dir is 0700 and root's; the server user must own it to get in.
            let owner = format!("{SYSTEM_USER}:{SYSTEM_USER}");
            run(Command::new("chown").arg("-R").arg(owner).arg(dir.path())).unwrap_or_else(|err| {
                panic!("cannot hand the cluster directory to the `{SYSTEM_USER}` user: {err}")
            });
        }
        let mut server = Postgres {
            child: None,
            port: free_port(),
            data_dir: dir.path().join("data"),
            socket_dir,
            log: dir.path().join("postgres.log"),
            bin_dir,
            as_system_user,
            dir,
        };
        server.initdb();
        // `server` already owns the directory, so a panic while waiting still cleans up.
        server.launch();
        server
    }

    /// The port the server listens on; it stays the same across [`Postgres::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the PostgreSQL binaries in use, for tests that need another client
    /// program from the same installation (`psql`, `pg_dump`).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Creates a fresh, uniquely named database and returns its URL:
    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    ///
    /// Retries until the server accepts the command, so it also works right after a restart.
    ///
    /// # Panics
    ///
    /// If `createdb` keeps failing for 30 s.
    pub fn create_database(&self) -> String {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
        );
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut createdb = self.client("createdb");
            createdb.arg(&name);
            match run(&mut createdb) {
                Ok(()) => break,
                // An earlier attempt got through although its client saw an error.
                Err(err) if err.contains("already exists") => break,
                Err(err) if Instant::now() >= deadline => panic!(
                    "cannot create database {name} within {READY_TIMEOUT:?}: {err}\n\
                     last lines of {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log)
                ),
                Err(_) => thread::sleep(POLL_INTERVAL),
            }
        }
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Kills the postmaster and its children with SIGKILL (for fault tests) and waits until they
    /// are gone; the data is kept. Does nothing if the server is not running.
    ///
    /// # Panics
    ///
    /// If the processes cannot be killed or do not go away within 10 s.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            kill_tree(child, self.root())
                .unwrap_or_else(|err| panic!("cannot kill postgres: {err}"));
            self.remove_shared_memory();
        }
    }

    /// Removes the small System V segment a postmaster keeps as an interlock, which a killed
    /// one leaves behind. Left, they add up over test runs to the system's limit (`shmmni`,
    /// 4096 by default), and then no PostgreSQL can start on the machine ("could not create
    /// shared memory segment: No space left on device"). Its id is on the 7th line of
    /// `postmaster.pid`, which a killed server leaves too. Best effort: errors are ignored.
    fn remove_shared_memory(&self) {
        let Ok(pid_file) = fs::read_to_string(self.data_dir.join("postmaster.pid")) else {
            return;
        };
        let Some(id) = pid_file
            .lines()
            .nth(6)
            .and_then(|line| line.split_whitespace().nth(1))
            .filter(|id| id.bytes().all(|b| b.is_ascii_digit()))
        else {
            return;
        };
        let _ = Command::new("ipcrm")
            .args(["-m", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts the server again on the same port and data (after [`Postgres::kill`]; a server
    /// that is still running is killed first) and waits until it accepts connections, crash
    /// recovery included.
    ///
    /// # Panics
    ///
    /// Like [`Postgres::start`].
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn initdb(&self) {
        // C.UTF-8 keeps sorting byte-wise yet classifies non-ASCII text; not every system has
        // it, and `--no-locale` (plain C) is the next best thing.
        let mut errors = Vec::new();
        for locale in ["--locale=C.UTF-8", "--no-locale"] {
            let mut initdb = self.server_command("initdb");
            initdb
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
                .arg(locale);
            match run(&mut initdb) {
                Ok(()) => return,
                Err(err) => {
                    errors.push(err);
                    // initdb removes what it created on failure; make sure, for the retry.
                    let _ = fs::remove_dir_all(&self.data_dir);
                }
            }
        }
        panic!("initdb failed:\n{}", errors.join("\n"));
    }

    fn launch(&mut self) {
        let (stdout, stderr) = log_outputs(&self.log);
        let mut postgres = self.server_command("postgres");
        postgres
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.socket_dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            // Skip what only protects against the machine crashing: the page cache outlives a
            // killed server. `synchronous_commit` stays on, because with it off a commit returns
            // before its WAL leaves shared memory, and `kill` would lose committed transactions.
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            // Dynamic shared memory as files in the data folder, which goes with the temporary
            // folder, instead of in /dev/shm, where a killed server would leave them.
            .args(["-c", "dynamic_shared_memory_type=mmap"])
            .stdout(stdout)
            .stderr(stderr);
        let child = postgres
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {postgres:?}: {err}"));
        let child = self.child.insert(child);
        let pg_isready = self.bin_dir.join("pg_isready");
        let port = self.port.to_string();
        wait_ready("postgres", READY_TIMEOUT, child, &self.log, || {
            Command::new(&pg_isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                .args(["-d", "postgres", "-t", "1"])
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        });
    }

    /// What the spawned child is: `runuser` when we are root.
    fn root(&self) -> Root {
        if self.as_system_user {
            Root::Wrapper
        } else {
            Root::Server
        }
    }

    /// A server program (`initdb`, `postgres`) from the bin dir, run as the `postgres` system
    /// user when we are root.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut command = if self.as_system_user {
            let mut command = Command::new(runuser());
            command.args(["-u", SYSTEM_USER, "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        // Where the postgres user may be; the test's own directory could be closed to it.
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        command
    }

    /// A client program from the bin dir, connected over TCP as superuser `postgres`.
    fn client(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .env("PGCONNECT_TIMEOUT", "5");
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // No panic here: this may run while a test is already unwinding.
            if let Err(err) = kill_tree(child, self.root()) {
                eprintln!("testkit: cannot stop postgres on port {}: {err}", self.port);
            }
            self.remove_shared_memory();
        }
    }
}

/// `runuser`, which lives in sbin and so may be missing from `PATH`.
fn runuser() -> PathBuf {
    find_on_path("runuser")
        .or_else(|| {
            ["/usr/sbin/runuser", "/sbin/runuser"]
                .into_iter()
                .map(PathBuf::from)
                .find(|path| is_executable(path))
        })
        .unwrap_or_else(|| {
            panic!(
                "running as root, so PostgreSQL must run as the `{SYSTEM_USER}` user, \
                 but `runuser` was not found (it is part of util-linux)"
            )
        })
}

/// Where the PostgreSQL binaries are: `$SMART_SUPPORT_PG_BIN`, else the highest version under
/// `/usr/lib/postgresql/*/bin` (Debian and Ubuntu), else the first directory of `PATH` that has
/// them.
fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = env::var_os("SMART_SUPPORT_PG_BIN") {
        let dir = PathBuf::from(dir);
        if has_server_binaries(&dir) {
            return Some(dir);
        }
    }
    if let Some(dir) = highest_version_bin_dir(Path::new("/usr/lib/postgresql")) {
        return Some(dir);
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path).find(|dir| has_server_binaries(dir))
}

fn highest_version_bin_dir(root: &Path) -> Option<PathBuf> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = parse_version(&entry.file_name())?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_server_binaries(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// `"16"` → `[16]`, `"9.6"` → `[9, 6]`; anything else is not a version directory.
fn parse_version(name: &OsStr) -> Option<Vec<u32>> {
    name.to_str()?
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

fn has_server_binaries(dir: &Path) -> bool {
    REQUIRED_BINARIES
        .iter()
        .all(|binary| is_executable(&dir.join(binary)))
}

/// The panic message when the PostgreSQL server binaries are not installed.
pub(crate) fn missing_postgres_message() -> String {
    "PostgreSQL server binaries not found (looked in $SMART_SUPPORT_PG_BIN, \
     /usr/lib/postgresql/*/bin, PATH): install them with `apt-get install postgresql` \
     (or run `make test`, which installs them)"
        .to_owned()
}

impl crate::Pausable for Postgres {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_postgres_message_names_the_install_command() {
        let message = missing_postgres_message();
        assert!(message.contains("PostgreSQL server binaries not found"));
        assert!(message.contains("$SMART_SUPPORT_PG_BIN"));
        assert!(message.contains("apt-get install postgresql"));
        assert!(message.contains("make test"));
    }

    #[test]
    fn versions_compare_numerically_not_as_text() {
        let mut versions = [
            parse_version(OsStr::new("9.6")),
            parse_version(OsStr::new("16")),
            parse_version(OsStr::new("15")),
        ];
        versions.sort();
        assert_eq!(versions.last(), Some(&Some(vec![16])));
    }

    #[test]
    fn directories_that_are_not_versions_are_ignored() {
        assert_eq!(parse_version(OsStr::new("common")), None);
        assert_eq!(parse_version(OsStr::new("15")), Some(vec![15]));
    }

    #[test]
    fn highest_version_with_all_binaries_wins() {
        let root = tempfile::tempdir().expect("temp dir");
        for (version, complete) in [("14", true), ("16", false), ("9.6", true)] {
            let bin = root.path().join(version).join("bin");
            fs::create_dir_all(&bin).expect("create bin dir");
            let binaries: &[&str] = if complete {
                &REQUIRED_BINARIES
            } else {
                &["psql"]
            };
            for binary in binaries {
                let path = bin.join(binary);
                fs::write(&path, "#!/bin/sh\n").expect("write binary");
                let mut permissions = fs::metadata(&path).expect("metadata").permissions();
                std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
                fs::set_permissions(&path, permissions).expect("chmod");
            }
        }
        assert_eq!(
            highest_version_bin_dir(root.path()),
            Some(root.path().join("14").join("bin"))
        );
    }
}
