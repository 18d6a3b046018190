//! Stage 4: run one account's command and stream its output.
//!
//! The child runs directly (no shell), with stdin closed, in its own process group, and
//! with its environment from [`super::env`]. Both pipes are drained while it runs: a
//! child blocked on a full pipe never exits. Its group also dies with fanout (the
//! [`watchdog`](super::watchdog)), so even a fanout killed by SIGKILL leaves no child
//! holding keys.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::env::{AccountEnv, child_env, inherited_credential_vars};
use super::watchdog::{self, Watched};
use super::{Pipe, PipeSink};
use crate::config::Limits;
use crate::outcome::ChildExit;
use crate::stop::{Escalation, GRACE, Stopper};

/// After the child exits, how long its pipes may stay open: a process it left in the
/// background can hold them forever (nextest's `detect_fd_leaks`), and is then stopped.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Bytes read from a pipe at once: one record for the writer.
const READ_SIZE: usize = 64 * 1024;

/// The longest wait between two tries to spawn while the system is out of file
/// descriptors or processes.
const MAX_SPAWN_BACKOFF: Duration = Duration::from_secs(1);

/// How `status` reads as a [`ChildExit`].
fn exit_of(status: ExitStatus) -> ChildExit {
    match (status.code(), status.signal()) {
        (Some(code), _) => ChildExit::Code(code),
        (None, Some(signal)) => ChildExit::Signal(signal),
        (None, None) => ChildExit::Code(-1),
    }
}

/// Spawns `argv` in `account`'s environment and streams its output to `sink`,
/// until it exits and its pipes close. Past `limits.timeout` its group gets SIGTERM,
/// then SIGKILL after `limits.kill_after`, and it ends as [`ChildExit::TimedOut`].
/// `Ok(None)`: the run was stopped before the command could start.
pub async fn run(
    argv: &[String],
    account: &AccountEnv<'_>,
    sink: &mut impl PipeSink,
    stopper: &Stopper,
    limits: Limits,
) -> std::io::Result<Option<ChildExit>> {
    let Some(mut child) = spawn_when_possible(argv, account, stopper).await? else {
        return Ok(None);
    };
    let pid = child.id().expect("a child that was just spawned has a pid");
    let _tracked = stopper.track(pid);
    // Its group is its pid (`process_group(0)`).
    let _watched = Watched::new(pid);
    tracing::debug!(account = account.account_id, pid, "started");

    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_buf, mut err_buf) = (vec![0; READ_SIZE], vec![0; READ_SIZE]);
    let mut exit = None;
    // What has been done about processes the command left running after it exited.
    let mut leftovers = Escalation::Running;
    let pipes_deadline = tokio::time::sleep(Duration::MAX);
    tokio::pin!(pipes_deadline);
    // What has been done about a command that ran past `--timeout`.
    let mut overtime = Escalation::Running;
    let overtime_deadline = tokio::time::sleep(limits.timeout.unwrap_or(Duration::MAX));
    tokio::pin!(overtime_deadline);
    while exit.is_none() || stdout.is_some() || stderr.is_some() {
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => {
                forward(read, &mut stdout, &out_buf, sink, Pipe::Stdout).await;
            }
            read = read_some(&mut stderr, &mut err_buf) => {
                forward(read, &mut stderr, &err_buf, sink, Pipe::Stderr).await;
            }
            status = child.wait(), if exit.is_none() => {
                exit = Some(exit_of(status?));
                pipes_deadline.as_mut().reset(tokio::time::Instant::now() + PIPE_GRACE);
            }
            () = &mut pipes_deadline => {
                // Something the command left in the background holds its output open. It
                // runs with this account's credentials, so it goes too: SIGTERM, then
                // SIGKILL after the grace period. fanout leaves nothing behind.
                if leftovers == Escalation::Killed {
                    // It left the group (setsid) and holds the pipe still: stop reading.
                    break;
                }
                leftovers = stop_leftovers(leftovers, account.account_id, pid);
                let wait = if leftovers == Escalation::Killed { PIPE_GRACE } else { GRACE };
                pipes_deadline.as_mut().reset(tokio::time::Instant::now() + wait);
            }
            // The timeout runs until the command exits; once it has fired, the SIGKILL
            // follows whether the command exited meanwhile or not.
            () = &mut overtime_deadline, if limits.timeout.is_some() && overtime_pending(overtime, exit.is_some()) => {
                overtime = stop_overtime(overtime, account.account_id, pid, limits);
                if overtime == TERMINATED {
                    overtime_deadline.as_mut().reset(tokio::time::Instant::now() + limits.kill_after);
                }
            }
        }
    }
    // The command exited and its pipes closed after the SIGTERM: what is left of its group
    // (a grandchild that ignores SIGTERM, its output elsewhere) still gets the SIGKILL.
    while overtime == TERMINATED && group_alive(pid) {
        tokio::select! {
            () = &mut overtime_deadline => overtime = stop_overtime(overtime, account.account_id, pid, limits),
            () = tokio::time::sleep(GROUP_POLL) => {}
        }
    }
    // A line without its newline still leaves, even when the pipe never closed.
    sink.pipe_closed(Pipe::Stdout).await;
    sink.pipe_closed(Pipe::Stderr).await;
    let exit = exit.expect("the loop ends only after the child exits");
    Ok(Some(match (overtime, limits.timeout) {
        (Escalation::Signalled(_) | Escalation::Killed, Some(after)) => ChildExit::TimedOut { after },
        _ => exit,
    }))
}

/// How often a timed-out command's group is checked for survivors once the command
/// itself has exited.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// The timeout's first step: its group got SIGTERM; SIGKILL follows after `--kill-after`.
const TERMINATED: Escalation = Escalation::Signalled(libc::SIGTERM);

/// Whether the timeout still has a step to take: the SIGTERM, while the command runs;
/// the SIGKILL, once the SIGTERM went.
fn overtime_pending(overtime: Escalation, exited: bool) -> bool {
    match overtime {
        Escalation::Running => !exited,
        Escalation::Signalled(_) => true,
        Escalation::Killed => false,
    }
}

/// The timeout's next step, taken now: SIGTERM, then SIGKILL after `--kill-after` if
/// anything of the group is left.
fn stop_overtime(overtime: Escalation, account_id: &str, pid: u32, limits: Limits) -> Escalation {
    match overtime {
        Escalation::Running => {
            let timeout = humantime::format_duration(limits.timeout.unwrap_or_default());
            tracing::warn!(
                account = account_id,
                "the command ran longer than --timeout {timeout}; stopping its process group"
            );
            overtime.escalate(pid, libc::SIGTERM)
        }
        Escalation::Signalled(_) if group_alive(pid) => {
            let kill_after = humantime::format_duration(limits.kill_after);
            tracing::warn!(
                account = account_id,
                "the timed-out command's process group outlived SIGTERM by {kill_after}; killing it"
            );
            overtime.escalate(pid, libc::SIGTERM)
        }
        // The group is gone: nothing is left to kill.
        Escalation::Signalled(_) | Escalation::Killed => Escalation::Killed,
    }
}

/// Whether any process (a zombie not yet reaped included) is still in the group `pid`
/// led. The id cannot be reused meanwhile: Linux gives no new process the id of a live
/// process group.
fn group_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: killpg with signal 0 only checks that the group exists; no memory is involved.
    let found = unsafe { libc::killpg(pid, 0) } == 0;
    // EPERM: a member fanout may not signal (a setuid program), alive all the same.
    found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The next step against processes the command left holding its pipes, taken now:
/// SIGTERM, then SIGKILL.
fn stop_leftovers(leftovers: Escalation, account_id: &str, pid: u32) -> Escalation {
    if leftovers == Escalation::Running {
        tracing::warn!(
            account = account_id,
            "the command exited but a process it started kept its output open; stopping that process group"
        );
    } else {
        tracing::warn!(account = account_id, "a process the command left ignored SIGTERM; killing its group");
    }
    leftovers.escalate(pid, libc::SIGTERM)
}

/// Spawns the command, waiting and trying again while the system is out of file
/// descriptors or processes (EMFILE, ENFILE, EAGAIN): a busy machine is no account's
/// failure. `Ok(None)` when the run is stopped meanwhile.
async fn spawn_when_possible(
    argv: &[String],
    account: &AccountEnv<'_>,
    stopper: &Stopper,
) -> std::io::Result<Option<tokio::process::Child>> {
    let mut backoff = Duration::from_millis(10);
    loop {
        match command(argv, account).spawn() {
            Ok(child) => return Ok(Some(child)),
            Err(error) if is_out_of_resources(&error) => {
                tracing::debug!(account = account.account_id, "cannot spawn yet ({error}); waiting for a slot");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stopper.stopped() => return Ok(None),
                }
                backoff = (backoff * 2).min(MAX_SPAWN_BACKOFF);
            }
            Err(error) => return Err(error),
        }
    }
}

fn is_out_of_resources(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN))
}

fn command(argv: &[String], account: &AccountEnv<'_>) -> tokio::process::Command {
    let (program, arguments) = argv.split_first().expect("the command is never empty");
    let mut command = std::process::Command::new(program);
    command.args(arguments).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    for name in inherited_credential_vars() {
        command.env_remove(name);
    }
    command.envs(child_env(account));
    // With no closure to run before exec, std spawns with posix_spawn (no fork of fanout).
    if !watchdog::is_watching() {
        die_with_parent(&mut command);
    }
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    command
}

/// The child gets SIGKILL if fanout dies, however it dies (Linux's `PR_SET_PDEATHSIG`):
/// the fallback when the watchdog could not be started.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut std::process::Command) {
    // SAFETY: getpid is async-signal-safe, and read here before the fork.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // fanout may have died before the prctl: then nobody would send the signal.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut std::process::Command) {}

/// Reads from `pipe`, or waits forever once it is closed.
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Passes on what a read got; at EOF (or a read error) sends the last partial line and
/// closes the pipe.
async fn forward<R>(
    read: std::io::Result<usize>,
    pipe: &mut Option<R>,
    buf: &[u8],
    sink: &mut impl PipeSink,
    which: Pipe,
) {
    match read {
        Ok(n) if n > 0 => sink.pipe_bytes(which, &buf[..n]).await,
        _ => {
            sink.pipe_closed(which).await;
            *pipe = None;
        }
    }
}
