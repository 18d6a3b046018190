//! Stage 4: run one account's command and stream its output.
//!
//! The child runs directly (no shell), with stdin closed, in its own process group, and
//! with its environment from [`super::env`]. Both pipes are drained while it runs: a
//! child blocked on a full pipe never exits.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::env::{AccountEnv, REMOVED_VARS, child_env};
use super::stop::{StopState, Stopper, signal_group};
use crate::output::lines::LineSplitter;
use crate::output::writer::{Output, Stream};

/// After the child exits, how long its pipes may stay open: a process it left in the
/// background can hold them forever (nextest's `detect_fd_leaks`), and is then stopped.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Bytes read from a pipe at once: one record for the writer.
const READ_SIZE: usize = 64 * 1024;

/// How one account's command ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ChildExit {
    Code(i32),
    Signal(i32),
}

impl ChildExit {
    pub fn success(&self) -> bool {
        *self == ChildExit::Code(0)
    }

    fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => ChildExit::Code(code),
            (None, Some(signal)) => ChildExit::Signal(signal),
            (None, None) => ChildExit::Code(-1),
        }
    }
}

/// Spawns `argv` in `account`'s environment and streams its output, each line prefixed
/// with `prefix`, until it exits and its pipes close.
pub async fn run(
    argv: &[String],
    account: &AccountEnv<'_>,
    prefix: &str,
    output: &Output,
    stopper: &Stopper,
) -> std::io::Result<ChildExit> {
    let (program, arguments) = argv.split_first().expect("the command is never empty");
    let mut command = std::process::Command::new(program);
    command.args(arguments).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    for name in REMOVED_VARS {
        command.env_remove(name);
    }
    command.envs(child_env(account));
    let mut child = tokio::process::Command::from(command).kill_on_drop(true).spawn()?;
    let pid = child.id().expect("a child that was just spawned has a pid");
    tracing::debug!(account = account.account_id, pid, "started");

    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut out_lines, mut err_lines) = (LineSplitter::new(prefix), LineSplitter::new(prefix));
    let (mut out_buf, mut err_buf) = (vec![0; READ_SIZE], vec![0; READ_SIZE]);
    let mut stop = stopper.subscribe();
    let mut exit = None;
    let pipes_deadline = tokio::time::sleep(Duration::MAX);
    tokio::pin!(pipes_deadline);
    while exit.is_none() || stdout.is_some() || stderr.is_some() {
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => {
                forward(read, &mut stdout, &out_buf, &mut out_lines, output, Stream::Stdout).await;
            }
            read = read_some(&mut stderr, &mut err_buf) => {
                forward(read, &mut stderr, &err_buf, &mut err_lines, output, Stream::Stderr).await;
            }
            status = child.wait(), if exit.is_none() => {
                exit = Some(ChildExit::from_status(status?));
                pipes_deadline.as_mut().reset(tokio::time::Instant::now() + PIPE_GRACE);
            }
            Ok(()) = stop.changed() => match *stop.borrow_and_update() {
                StopState::Running => {}
                StopState::Forward(signal) => signal_group(pid, signal),
                StopState::Kill => signal_group(pid, libc::SIGKILL),
            },
            () = &mut pipes_deadline => {
                // Something the command left in the background holds its output open. It
                // runs with this account's credentials, so it goes too: fanout leaves
                // nothing behind.
                tracing::warn!(
                    account = account.account_id,
                    "the command exited but a process it started kept its output open; stopping that process group"
                );
                signal_group(pid, libc::SIGTERM);
                break;
            }
        }
    }
    Ok(exit.expect("the loop ends only after the child exits"))
}

/// Reads from `pipe`, or waits forever once it is closed.
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Sends the lines a read completed; at EOF (or a read error) sends the last partial
/// line and closes the pipe.
async fn forward<R>(
    read: std::io::Result<usize>,
    pipe: &mut Option<R>,
    buf: &[u8],
    lines: &mut LineSplitter,
    output: &Output,
    stream: Stream,
) {
    let mut record = output.buffer();
    match read {
        Ok(n) if n > 0 => {
            record.reserve(n + n / 8);
            lines.push(&buf[..n], &mut record);
        }
        _ => {
            lines.finish(&mut record);
            *pipe = None;
        }
    }
    if !record.is_empty() {
        output.send(stream, record).await;
    }
    // An empty buffer is simply dropped: rare (a read that completed no line).
}
