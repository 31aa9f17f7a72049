//! The server processes themselves: finding binaries, spawning them with their output in a log
//! file, waiting until they are ready, and killing their whole process tree.
//!
//! Everything goes through `/proc` and the `kill`/`chown` binaries because the workspace forbids
//! `unsafe` (so no libc).

use std::collections::{BTreeSet, HashMap};
use std::env;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::POLL_INTERVAL;

/// How long tearing a server down may take before we give up on it.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How many lines of a server log a start failure shows.
const LOG_TAIL_LINES: usize = 40;

/// Whether this process runs with effective uid 0, read from the `Uid:` line of
/// `/proc/self/status` (real, effective, saved, filesystem).
pub(crate) fn effective_uid_is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    effective_uid(&status) == Some(0)
}

fn effective_uid(proc_status: &str) -> Option<u32> {
    let line = proc_status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The first executable file called `name` in a directory of `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Opens (creating it if needed) a log file for appending and returns it as stdout and stderr.
pub(crate) fn log_outputs(log: &Path) -> (Stdio, Stdio) {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|err| panic!("cannot open server log {}: {err}", log.display()));
    let err = file
        .try_clone()
        .unwrap_or_else(|err| panic!("cannot duplicate handle of {}: {err}", log.display()));
    (Stdio::from(file), Stdio::from(err))
}

/// The current length of a file, 0 if it does not exist yet; used to look only at the lines a
/// restarted server appends.
pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|meta| meta.len()).unwrap_or(0)
}

/// Whether the part of `log` after byte `from` contains `needle`.
pub(crate) fn log_contains_after(log: &Path, from: u64, needle: &str) -> bool {
    let Ok(bytes) = fs::read(log) else {
        return false;
    };
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
    String::from_utf8_lossy(&bytes[from..]).contains(needle)
}

/// The last lines of a log file, for panic messages.
pub(crate) fn log_tail(log: &Path) -> String {
    match fs::read(log) {
        Ok(bytes) => last_lines(&String::from_utf8_lossy(&bytes), LOG_TAIL_LINES),
        Err(err) => format!("(cannot read {}: {err})", log.display()),
    }
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Waits until `ready` holds for a freshly spawned server; panics with the log tail if the
/// process exits first or `timeout` passes.
pub(crate) fn wait_ready(
    what: &str,
    timeout: Duration,
    child: &mut Child,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before it was ready; last lines of {}:\n{}",
                log.display(),
                log_tail(log)
            );
        }
        if Instant::now() >= deadline {
            panic!(
                "{what} was not ready after {timeout:?}; last lines of {}:\n{}",
                log.display(),
                log_tail(log)
            );
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// What the spawned child is, which decides how [`kill_tree`] takes it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// The child is the server itself.
    Server,
    /// The child is a wrapper (`runuser`) that waits for the server below it. It must live to
    /// reap the server: an unreaped server stays a zombie whose pid still counts as running, and
    /// PostgreSQL then refuses to start again over its `postmaster.pid`.
    Wrapper,
}

/// Kills the server below `child` and every process below that with SIGKILL, then waits until
/// all of them are gone.
///
/// A tree, not one pid: as root PostgreSQL runs under `runuser`, and the postmaster's children
/// call `setsid`, so neither a process group nor the postmaster alone would catch them all. The
/// tree is frozen with SIGSTOP first so nothing forks between listing it and killing it.
pub(crate) fn kill_tree(mut child: Child, root: Root) -> Result<(), String> {
    if child.try_wait().map_err(|err| err.to_string())?.is_some() {
        // Already exited and reaped: its pid may belong to someone else now.
        return Ok(());
    }
    let root_pid = child.id();
    let mut frozen = BTreeSet::new();
    loop {
        let mut tree = descendants(root_pid);
        if root == Root::Server {
            tree.insert(root_pid);
        }
        let new: BTreeSet<u32> = tree.difference(&frozen).copied().collect();
        if new.is_empty() {
            break;
        }
        signal("STOP", &new);
        frozen.extend(new);
    }
    if !signal("KILL", &frozen) {
        // No usable `kill` binary: at least take the direct child down.
        child
            .kill()
            .map_err(|err| format!("cannot kill pid {root_pid}: {err}"))?;
    }
    if root == Root::Wrapper {
        // `runuser` stops itself when its child stops, and a stopped wrapper reaps nothing.
        signal("CONT", &BTreeSet::from([root_pid]));
    }
    let deadline = Instant::now() + TEARDOWN_TIMEOUT;
    // A wrapper exits by itself once its server is dead; give it until the deadline.
    while child.try_wait().map_err(|err| err.to_string())?.is_none() {
        if Instant::now() >= deadline {
            child
                .kill()
                .map_err(|err| format!("cannot kill pid {root_pid}: {err}"))?;
        }
        thread::sleep(POLL_INTERVAL);
    }
    // Orphaned grandchildren are reparented to pid 1, which may never reap them; a zombie
    // holds no ports, files or shared memory, so it counts as gone.
    loop {
        let alive: Vec<u32> = frozen
            .iter()
            .copied()
            .filter(|&pid| process_is_alive(pid))
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "processes {alive:?} still alive {TEARDOWN_TIMEOUT:?} after SIGKILL"
            ));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Sends `signal_name` (`STOP`, `CONT`) to a process and every process below it, for fault
/// tests that freeze a server without killing it.
pub(crate) fn signal_tree(root: u32, signal_name: &str) {
    let mut pids = descendants(root);
    pids.insert(root);
    assert!(
        signal(signal_name, &pids),
        "cannot run `kill -s {signal_name}`"
    );
}

/// Sends `signal` to `pids` with the `kill` binary; false if it could not be run at all.
/// Some pids may have exited meanwhile, so a non-zero exit status is expected and ignored.
fn signal(signal: &str, pids: &BTreeSet<u32>) -> bool {
    Command::new("kill")
        .arg("-s")
        .arg(signal)
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Every process below `root`, from a snapshot of `/proc`.
fn descendants(root: u32) -> BTreeSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, stat) in proc_stats() {
        children.entry(stat.ppid).or_default().push(pid);
    }
    let mut found = BTreeSet::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if found.insert(child) {
                queue.push(child);
            }
        }
    }
    found
}

fn proc_stats() -> Vec<(u32, ProcStat)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

fn process_is_alive(pid: u32) -> bool {
    read_stat(pid).is_some_and(|stat| !matches!(stat.state, 'Z' | 'X' | 'x'))
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The two fields of `/proc/PID/stat` we need.
#[derive(Debug, PartialEq)]
struct ProcStat {
    state: char,
    ppid: u32,
}

/// Parses `pid (comm) state ppid ...`; `comm` may contain spaces and parentheses, so the fields
/// start after the last `)`.
fn parse_stat(stat: &str) -> Option<ProcStat> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcStat { state, ppid })
}

/// Runs `command` to completion, returning its combined output on failure.
pub(crate) fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {command:?}: {err}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_uid_field() {
        let status = "Name:\tcargo\nUid:\t1000\t0\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(effective_uid(status), Some(0));
    }

    #[test]
    fn stat_fields_are_read_after_a_comm_with_spaces_and_parentheses() {
        let stat = "4242 (postgres: (wal) writer) S 4240 4242 4242 0 -1 4194560";
        assert_eq!(
            parse_stat(stat),
            Some(ProcStat {
                state: 'S',
                ppid: 4240
            })
        );
    }

    #[test]
    fn last_lines_keeps_only_the_end_of_the_log() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\n", 5), "a");
    }

    #[test]
    fn killing_a_tree_takes_down_grandchildren() {
        let child = Command::new("sh")
            .args(["-c", "sleep 600 & sleep 600 & wait"])
            .spawn()
            .expect("spawn sh");
        let root = child.id();
        crate::wait_until("sh has started both sleeps", Duration::from_secs(5), || {
            descendants(root).len() == 2
        });
        let sleeps = descendants(root);
        kill_tree(child, Root::Server).expect("kill the tree");
        assert!(sleeps.iter().all(|&pid| !process_is_alive(pid)));
    }

    #[test]
    fn a_wrapper_is_left_to_reap_its_server() {
        let child = Command::new("sh")
            .args(["-c", "sleep 600 & wait"])
            .spawn()
            .expect("spawn sh");
        let root = child.id();
        crate::wait_until("sh has started sleep", Duration::from_secs(5), || {
            descendants(root).len() == 1
        });
        let server = *descendants(root).first().expect("the sleep");
        kill_tree(child, Root::Wrapper).expect("kill the tree");
        // Reaped by the wrapper, so not even a zombie is left.
        assert!(!Path::new(&format!("/proc/{server}")).exists());
    }
}
