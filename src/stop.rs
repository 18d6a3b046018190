//! Stopping a run: SIGINT, SIGTERM, SIGHUP or a broken stdout stop new starts and
//! cancel every portal call and backoff sleep at once; the signal goes to every running
//! child's process group; after a grace period, or at a second signal, the groups are
//! killed.
//!
//! Children lead their own process groups (so a terminal's Ctrl-C does not reach them
//! before fanout decides what to do), which is why fanout must forward: it sends the
//! signal that arrived, to the group, so `sh -c` pipelines stop too (as nextest does).
//! The groups are signalled from here, not by each account's task, so a task that is
//! blocked (on a full output queue, say) cannot hold a stop back.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// How long children get to exit after a forwarded signal before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// How far the stop of a process group has gone. Every stop in fanout climbs this one
/// ladder, whatever started it (a signal to fanout, `--timeout`, processes a command
/// left holding its pipes): a first signal, then SIGKILL once a grace period is up, or
/// at once when asked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escalation {
    /// Nothing sent yet.
    Running,
    /// The first signal went (forwarded, or SIGTERM); start nothing new.
    Signalled(i32),
    /// SIGKILL went; give up on anything still waiting.
    Killed,
}

impl Escalation {
    /// The step after this one: the first signal, then SIGKILL for good.
    pub fn next(self, first_signal: i32) -> Self {
        match self {
            Escalation::Running => Escalation::Signalled(first_signal),
            Escalation::Signalled(_) | Escalation::Killed => Escalation::Killed,
        }
    }

    /// The signal a group gets at this step (one that starts late gets it too).
    pub fn signal(self) -> Option<i32> {
        match self {
            Escalation::Running => None,
            Escalation::Signalled(signal) => Some(signal),
            Escalation::Killed => Some(libc::SIGKILL),
        }
    }

    /// Takes the next step on the group `group` leads, now.
    pub fn escalate(self, group: u32, first_signal: i32) -> Self {
        let next = self.next(first_signal);
        if let Some(signal) = next.signal() {
            signal_group(group, signal);
        }
        next
    }
}

/// Shared by the signal listener, the portal client, the writer and every account task.
#[derive(Clone, Debug)]
pub struct Stopper {
    state: Arc<watch::Sender<Escalation>>,
    /// The first signal received, 0 for none; decides the exit code.
    signal: Arc<AtomicI32>,
    /// The process groups of the children running now.
    groups: Arc<Mutex<HashSet<u32>>>,
    runtime: tokio::runtime::Handle,
}

impl Stopper {
    /// Not `Default`: it must be made inside the runtime that will run the grace timer.
    pub fn for_current_runtime() -> Self {
        Stopper {
            state: Arc::new(watch::Sender::new(Escalation::Running)),
            signal: Arc::new(AtomicI32::new(0)),
            groups: Arc::default(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    pub fn is_stopping(&self) -> bool {
        *self.state.borrow() != Escalation::Running
    }

    /// Resolves once a stop has begun (at once if it has).
    pub async fn stopped(&self) {
        let mut state = self.state.subscribe();
        let _ = state.wait_for(|s| *s != Escalation::Running).await;
    }

    /// Resolves once the children have been killed: what still waits then is abandoned.
    pub async fn killed(&self) {
        let mut state = self.state.subscribe();
        let _ = state.wait_for(|s| *s == Escalation::Killed).await;
    }

    /// The signal that stopped the run, if one did.
    pub fn received_signal(&self) -> Option<i32> {
        Some(self.signal.load(Ordering::Relaxed)).filter(|&s| s != 0)
    }

    /// First call: forward `signal` to every child's group and kill them after the grace
    /// period. Later calls: kill now. Safe to call from any thread.
    pub fn stop(&self, signal: i32) {
        let mut step = Escalation::Running;
        self.state.send_modify(|state| {
            *state = state.next(signal);
            step = *state;
        });
        self.signal_groups(step);
        if step == Escalation::Killed {
            return;
        }
        let stopper = self.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep(GRACE).await;
            stopper.state.send_replace(Escalation::Killed);
            stopper.signal_groups(Escalation::Killed);
        });
    }

    /// Records a running child's group until the guard drops, so a stop reaches it. A
    /// child that starts while a stop is under way gets the signal at once.
    pub fn track(&self, group: u32) -> TrackedGroup {
        self.lock_groups().insert(group);
        if let Some(signal) = self.state.borrow().signal() {
            signal_group(group, signal);
        }
        TrackedGroup { stopper: self.clone(), group }
    }

    /// Sends every running child's group the signal of `step`.
    fn signal_groups(&self, step: Escalation) {
        let Some(signal) = step.signal() else { return };
        for &group in self.lock_groups().iter() {
            signal_group(group, signal);
        }
    }

    fn lock_groups(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Listens for SIGINT, SIGTERM and SIGHUP (a dropped ssh session) for the rest of
    /// the run.
    pub fn listen_for_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let stopper = self.clone();
        self.runtime.spawn(async move {
            loop {
                let received = tokio::select! {
                    Some(()) = interrupt.recv() => libc::SIGINT,
                    Some(()) = terminate.recv() => libc::SIGTERM,
                    Some(()) = hangup.recv() => libc::SIGHUP,
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

/// A running child's process group, known to the [`Stopper`] while this lives.
#[derive(Debug)]
pub struct TrackedGroup {
    stopper: Stopper,
    group: u32,
}

impl Drop for TrackedGroup {
    fn drop(&mut self) {
        self.stopper.lock_groups().remove(&self.group);
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
