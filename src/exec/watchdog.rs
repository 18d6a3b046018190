//! Children die with fanout, however fanout dies, SIGKILL included: a child holds an
//! account's credentials, and nothing is meant to outlive the run that gave them.
//!
//! One watchdog process, started with the first child, reads a pipe whose write end only
//! fanout holds. fanout writes each child's process group to it when the child starts,
//! and again when it has ended. When fanout dies, the kernel closes the write end. The
//! watchdog then reads end-of-file and sends SIGKILL to every group still listed. That
//! reaches the command's whole group. `PR_SET_PDEATHSIG` only reached the direct child.
//!
//! Why not `PR_SET_PDEATHSIG`: it can only be set between fork and exec. That needs a
//! `pre_exec` closure, and then std forks all of fanout for every child instead of using
//! `posix_spawn`. At hundreds of accounts, copying fanout's page tables for each child
//! was about 40% of fanout's own CPU (docs/benchmarks.md). `PR_SET_PDEATHSIG` is still
//! used when the watchdog cannot be started.
//!
//! A group is listed only once its child has spawned. A fanout killed in the
//! microseconds between the spawn and that write leaves that one child unwatched.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{BufRead, Write as _};
use std::os::unix::process::CommandExt as _;
use std::process::{ChildStdin, Command, ExitCode, Stdio};
use std::sync::{Mutex, OnceLock};

/// The argument that makes a fanout binary the watchdog. It is not a flag anyone types,
/// and clap never sees it.
pub const ARG: &str = "--fanout-internal-watchdog";

/// The write end of the watchdog's pipe, or `None` if it could not be started.
static WATCHDOG: OnceLock<Option<Mutex<ChildStdin>>> = OnceLock::new();

/// Whether the children of this process are watched; starts the watchdog the first
/// time it is asked.
pub fn is_watching() -> bool {
    WATCHDOG.get_or_init(start).is_some()
}

/// The watchdog: this same binary, run with [`ARG`], in a process group of its own (so a
/// Ctrl-C or a signal to fanout's group does not end it first), with an empty
/// environment and no output. Spawned once, so its fork costs nothing per account.
fn start() -> Option<Mutex<ChildStdin>> {
    let exe = if cfg!(target_os = "linux") { "/proc/self/exe".into() } else { std::env::current_exe().ok()? };
    let spawned = Command::new(exe)
        .arg(ARG)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        // The watchdog outlives fanout: it is never waited for.
        Ok(mut watchdog) => watchdog.stdin.take().map(Mutex::new),
        Err(error) => {
            tracing::warn!("cannot start the watchdog ({error}); children die with fanout by PR_SET_PDEATHSIG instead");
            None
        }
    }
}

/// A child's process group, listed with the watchdog until this is dropped.
#[derive(Debug)]
pub struct Watched(u32);

impl Watched {
    /// Lists `group` with the watchdog, if there is one.
    pub fn new(group: u32) -> Option<Self> {
        send(Message::Watch, group).then_some(Watched(group))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        send(Message::Release, self.0);
    }
}

#[derive(Clone, Copy)]
enum Message {
    Watch,
    Release,
}

/// Writes one line to the watchdog. The line is far shorter than `PIPE_BUF`, so one
/// write is atomic and lines written from different threads never interleave. Returns
/// whether the watchdog has the line.
fn send(message: Message, group: u32) -> bool {
    let Some(Some(pipe)) = WATCHDOG.get() else { return false };
    let line = format!(
        "{}{group}\n",
        match message {
            Message::Watch => '+',
            Message::Release => '-',
        }
    );
    let mut pipe = pipe.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let written = pipe.write_all(line.as_bytes());
    if let Err(error) = &written {
        tracing::warn!("the watchdog is gone ({error}); process group {group} is not watched");
    }
    written.is_ok()
}

/// Whether this process was started as the watchdog.
pub fn is_requested(mut args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.nth(1).is_some_and(|arg| arg == OsStr::new(ARG))
}

/// The watchdog's life: read the groups listed and released until end-of-file, that is
/// until fanout is gone, then kill the groups still listed.
pub fn serve() -> ExitCode {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: setting a signal to be ignored involves no handler and no memory.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    for group in listed_at_end(std::io::stdin().lock()) {
        if let Ok(group) = libc::pid_t::try_from(group) {
            // SAFETY: killpg takes plain integers; a group already gone is ESRCH.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
    }
    ExitCode::SUCCESS
}

/// The groups listed and not released once `input` ends. A line that is not a message
/// (fanout's lines always are) is skipped. Group 0 and 1 are never listed: `killpg(0)`
/// would mean the watchdog's own group.
fn listed_at_end(input: impl BufRead) -> HashSet<u32> {
    let mut listed = HashSet::new();
    for line in input.split(b'\n').map_while(Result::ok) {
        let Some((&op, group)) = line.split_first() else { continue };
        let Some(group) = std::str::from_utf8(group).ok().and_then(|g| g.parse::<u32>().ok()).filter(|&g| g > 1) else {
            continue;
        };
        match op {
            b'+' => listed.insert(group),
            b'-' => listed.remove(&group),
            _ => false,
        };
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_listed_and_not_released_is_killed_at_the_end() {
        let input = b"+100\n+200\n-100\n+300\nx\n+0\n+1\n+\n+abc\n-999\n+400";
        assert_eq!(listed_at_end(&input[..]), HashSet::from([200, 300, 400]));
    }

    #[test]
    fn only_the_marker_as_first_argument_asks_for_the_watchdog() {
        let args = |list: &[&str]| list.iter().map(std::ffi::OsString::from).collect::<Vec<_>>().into_iter();
        assert!(is_requested(args(&["fanout", ARG])));
        assert!(!is_requested(args(&["fanout", "--role", ARG])));
        assert!(!is_requested(args(&["fanout"])));
    }
}
