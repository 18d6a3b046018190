//! What the controller is fed: the commands running and finished, counted by a
//! [`Gauge`] where they run, and what the OS says ([`Sampler`]): the CPU time of the
//! finished children (their rusage) and the machine's busy share (`/proc/stat`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::controller::{Sample, count_u64};

/// Children running and finished, counted where the commands run.
#[derive(Debug, Default)]
pub struct Gauge {
    running: AtomicUsize,
    finished: AtomicU64,
}

impl Gauge {
    /// Counts a command as running until the guard drops.
    pub fn start(self: &Arc<Self>) -> Counted {
        self.running.fetch_add(1, Ordering::Relaxed);
        Counted(Arc::clone(self))
    }
}

/// A running command, for [`Gauge`].
pub struct Counted(Arc<Gauge>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
        self.0.finished.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads the OS for [`Sample`]s.
pub struct Sampler {
    began: Instant,
    gauge: Arc<Gauge>,
    /// `(busy, total)` jiffies at the previous read of `/proc/stat`.
    cpu: Option<(u64, u64)>,
}

impl Sampler {
    pub fn new(gauge: Arc<Gauge>) -> Self {
        Sampler { began: Instant::now(), gauge, cpu: machine_cpu() }
    }

    pub fn sample(&mut self) -> Sample {
        let cpu = machine_cpu();
        let busy = match (self.cpu, cpu) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                Some(count_u64(busy1.saturating_sub(busy0)) / count_u64(total1 - total0))
            }
            _ => None,
        };
        self.cpu = cpu;
        Sample {
            at: self.began.elapsed(),
            finished: self.gauge.finished.load(Ordering::Relaxed),
            children_cpu: children_cpu(),
            busy,
            running: self.gauge.running.load(Ordering::Relaxed),
        }
    }
}

/// The CPU time of this process's finished children (`RUSAGE_CHILDREN`): the whole
/// process's, so no per-child `wait4` is needed.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage, RUSAGE_CHILDREN is a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// `(busy, total)` CPU jiffies of the whole machine, from `/proc/stat` (Linux). `None`
/// elsewhere: the controller then judges the CPU by the children's rusage alone.
fn machine_cpu() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_proc_stat(&text)
}

/// The first line, `cpu  user nice system idle iowait irq softirq steal …`: idle and
/// iowait are idle, the rest of the first eight busy.
fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = line.split_whitespace().take(8).map(str::parse).collect::<Result<_, _>>().ok()?;
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_gives_busy_and_total() {
        let text = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(parse_proc_stat(text), Some((150, 1000)));
        assert_eq!(parse_proc_stat("intr 1 2\n"), None);
        assert_eq!(parse_proc_stat("cpu  x y\n"), None);
    }
}
