//! Stopping a run: SIGINT, SIGTERM or a closed stdout stop new starts and are forwarded
//! to every running child's process group; after a grace period, or at a second
//! signal, the groups are killed.
//!
//! Children lead their own process groups (so a terminal's Ctrl-C does not reach them
//! before fanout decides what to do), which is why fanout must forward: it sends the
//! signal that arrived, to the group, so `sh -c` pipelines stop too (as nextest does).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// How long children get to exit after a forwarded signal before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopState {
    Running,
    /// Forward this signal to every child's group; start nothing new.
    Forward(i32),
    /// SIGKILL every child's group.
    Kill,
}

/// Shared by the signal listener, the writer and every account task.
#[derive(Clone, Debug)]
pub struct Stopper {
    state: Arc<watch::Sender<StopState>>,
    /// The first signal received, 0 for none; decides the exit code.
    signal: Arc<AtomicI32>,
    runtime: tokio::runtime::Handle,
}

impl Stopper {
    /// Not `Default`: it must be made inside the runtime that will run the grace timer.
    pub fn for_current_runtime() -> Self {
        Stopper {
            state: Arc::new(watch::Sender::new(StopState::Running)),
            signal: Arc::new(AtomicI32::new(0)),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<StopState> {
        self.state.subscribe()
    }

    pub fn is_stopping(&self) -> bool {
        *self.state.borrow() != StopState::Running
    }

    /// The signal that stopped the run, if one did.
    pub fn received_signal(&self) -> Option<i32> {
        Some(self.signal.load(Ordering::Relaxed)).filter(|&s| s != 0)
    }

    /// First call: forward `signal` and kill after the grace period. Later calls: kill now.
    /// Safe to call from any thread.
    pub fn stop(&self, signal: i32) {
        let mut first = false;
        self.state.send_modify(|state| {
            first = *state == StopState::Running;
            *state = if first { StopState::Forward(signal) } else { StopState::Kill };
        });
        if !first {
            return;
        }
        let state = Arc::clone(&self.state);
        self.runtime.spawn(async move {
            tokio::time::sleep(GRACE).await;
            state.send_replace(StopState::Kill);
        });
    }

    /// Listens for SIGINT and SIGTERM for the rest of the run.
    pub fn listen_for_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let stopper = self.clone();
        self.runtime.spawn(async move {
            loop {
                let received = tokio::select! {
                    Some(()) = interrupt.recv() => libc::SIGINT,
                    Some(()) = terminate.recv() => libc::SIGTERM,
                    else => return,
                };
                let _ = stopper.signal.compare_exchange(0, received, Ordering::Relaxed, Ordering::Relaxed);
                tracing::info!(signal = received, "stopping: forwarding the signal to every command");
                stopper.stop(received);
            }
        });
        Ok(())
    }
}

/// Sends `signal` to the process group `pid` leads.
pub fn signal_group(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: killpg has no memory-safety preconditions; a group that already exited
    // gives ESRCH, which is fine to ignore.
    unsafe {
        libc::killpg(pid, signal);
    }
}
