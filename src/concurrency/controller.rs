//! The adaptive limit behind `-j auto`: [`Controller`] is pure arithmetic over
//! [`Sample`]s, with no clock and no OS access, so that tests drive it with simulated
//! children.
//!
//! The controller follows the shape of Netflix's concurrency-limits (its `VegasLimit`,
//! with the slow start and multiplicative back-off of its `AIMDLimit`), with the
//! children's runtime and the machine's CPU in place of request latency and drops:
//!
//! - Each window (at least [`MIN_WINDOW`] and a few finished children) yields the
//!   throughput (children finished a second), the average number running, the runtime
//!   Little's law gives from those two (`running / throughput`, so no per-child timing is
//!   needed), the share of the machine's CPU that was busy, and the cores the children
//!   used (their rusage).
//! - Vegas's queue estimate, `running × (1 − shortest runtime / runtime)`, is how many
//!   children wait rather than work: CPU-bound children past the cores slow each other
//!   down and it grows; sleeping children keep their runtime and it stays near 0. Above
//!   `beta` the limit backs off (multiplicatively when the children saturate the CPU).
//! - The limit grows (doubling until the first back-off, then by √limit) while the
//!   children do not saturate the CPU, or while the last increase raised the throughput
//!   in step; a step up that left the throughput flat at a saturated CPU is taken back.
//!   At a saturated CPU a limit above the cores now and then probes down (never below
//!   them), and takes the step back if the throughput fell with it.
//!
//! "Saturated" means the machine is at least 90% busy, whoever keeps it busy: a server
//! the children call on the same machine takes its CPU from theirs. On a machine busy
//! from the start one step up is tried, and the throughput that follows tells children
//! that wait (a build next door does not stop them growing) from children that share the
//! cores. While the machine is under half busy, a window of one tick decides and slow
//! start quadruples the limit, so children that wait on the network reach a high
//! concurrency within a second or so.

use std::fmt;
use std::time::Duration;

/// How often the controller looks at the children.
pub(super) const TICK: Duration = Duration::from_millis(250);
/// The shortest window a decision is made on.
const MIN_WINDOW: Duration = Duration::from_millis(600);
/// A window ends once this many children finished in it (or at [`MAX_WINDOW`]).
const MIN_FINISHED: u64 = 3;
/// The longest window: long-running children finish rarely, and the CPU alone decides.
const MAX_WINDOW: Duration = Duration::from_secs(5);
/// The machine counts as saturated from this busy share on.
const SATURATED: f64 = 0.9;
/// Below this busy share the machine is idle enough that a window of one tick decides,
/// and slow start quadruples: children that wait should not wait for the limit.
const IDLE: f64 = 0.5;
/// Below this busy share, with every slot in use, slow start grows sixteenfold.
const ALMOST_IDLE: f64 = 0.1;
/// Windows held at a saturated CPU before probing down, and after a step taken back.
const PROBE_AFTER: u32 = 8;

/// What the sampler saw at one instant; counters are totals since the run began.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Time since the run began.
    pub at: Duration,
    /// Children finished so far.
    pub finished: u64,
    /// CPU time (user + system) of the children finished so far.
    pub children_cpu: Duration,
    /// The share of the machine's CPU busy since the previous sample, when the OS says.
    pub busy: Option<f64>,
    /// Children running now.
    pub running: usize,
}

/// A change of the limit, and why: what `-v` logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub from: usize,
    pub to: usize,
    pub reason: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "concurrency {} → {}: {}", self.from, self.to, self.reason)
    }
}

/// The limits a run used, for the summary at `-v`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub low: usize,
    pub high: usize,
    pub auto: bool,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.auto, self.low == self.high) {
            (true, true) => write!(f, "concurrency {} (auto)", self.low),
            (true, false) => write!(f, "concurrency {}–{} (auto)", self.low, self.high),
            (false, _) => write!(f, "concurrency {} (-j {})", self.high, self.high),
        }
    }
}

/// What the last change was, to judge it by the next window.
#[derive(Clone, Copy, Debug, PartialEq)]
enum StepKind {
    Grow,
    BackOff,
    /// A step taken back: not judged again.
    Revert,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Step {
    kind: StepKind,
    /// The limit before the step, and the throughput measured at it.
    from: usize,
    throughput: f64,
}

/// The running sums of the current window.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Sample,
    /// ∫ running dt, ∫ busy dt and the time `busy` was known, in seconds.
    running_secs: f64,
    busy_secs: f64,
    busy_known_secs: f64,
}

/// What one window measured.
#[derive(Clone, Copy, Debug)]
struct Measured {
    throughput: f64,
    running: f64,
    /// The machine's busy share (the children's cores over all cores when the OS does
    /// not say).
    busy: f64,
    /// Cores' worth of CPU the finished children used over the window.
    children_cores: f64,
}

/// The adaptive limit; see the module doc.
#[derive(Clone, Debug)]
pub struct Controller {
    cores: usize,
    max: usize,
    limit: usize,
    range: (usize, usize),
    last: Option<Sample>,
    window: Option<Window>,
    /// The shortest runtime seen, Vegas's "no load" runtime.
    min_runtime: Option<f64>,
    step: Option<Step>,
    /// Doubling, until the first back-off.
    slow_start: bool,
    /// Windows since the last change.
    holds: u32,
    /// Windows left before probing again, after a step taken back.
    cooldown: u32,
}

impl Controller {
    /// Starts at the number of cores, within `1..=max`.
    pub fn new(cores: usize, max: usize) -> Self {
        let max = max.max(1);
        let limit = cores.clamp(1, max);
        Controller {
            cores: cores.max(1),
            max,
            limit,
            range: (limit, limit),
            last: None,
            window: None,
            min_runtime: None,
            step: None,
            slow_start: true,
            holds: 0,
            cooldown: 0,
        }
    }

    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn range(&self) -> Range {
        Range { low: self.range.0, high: self.range.1, auto: true }
    }

    /// Takes in a sample; returns the change of the limit it leads to, if any.
    pub fn tick(&mut self, sample: Sample) -> Option<Change> {
        let previous = self.last.replace(sample)?;
        let window = self.window.get_or_insert(Window {
            start: previous,
            running_secs: 0.0,
            busy_secs: 0.0,
            busy_known_secs: 0.0,
        });
        let dt = sample.at.saturating_sub(previous.at).as_secs_f64();
        window.running_secs += dt * count(previous.running + sample.running) / 2.0;
        if let Some(busy) = sample.busy {
            window.busy_secs += dt * busy.clamp(0.0, 1.0);
            window.busy_known_secs += dt;
        }
        let measured = self.measure(&sample)?;
        self.window = None;
        let from = self.limit;
        let decided = self.decide(&measured).map(|(to, kind, reason)| (to.clamp(1, self.max), kind, reason));
        let Some((to, kind, reason)) = decided.filter(|(to, ..)| *to != from) else {
            self.holds += 1;
            return None;
        };
        self.step = Some(Step { kind, from, throughput: measured.throughput });
        if kind != StepKind::Grow {
            self.slow_start = false;
        }
        self.holds = 0;
        self.limit = to;
        self.range = (self.range.0.min(to), self.range.1.max(to));
        Some(Change { from, to, reason })
    }

    /// The window's figures, once it is long enough to decide on.
    fn measure(&self, now: &Sample) -> Option<Measured> {
        let window = self.window.as_ref()?;
        let elapsed = now.at.saturating_sub(window.start.at);
        let finished = now.finished.saturating_sub(window.start.finished);
        let idle = window.busy_known_secs > 0.0 && window.busy_secs / window.busy_known_secs < IDLE;
        let long_enough = if idle { elapsed >= TICK } else { elapsed >= MIN_WINDOW && finished >= MIN_FINISHED };
        if !long_enough && elapsed < MAX_WINDOW {
            return None;
        }
        let secs = elapsed.as_secs_f64();
        let children_cores = now.children_cpu.saturating_sub(window.start.children_cpu).as_secs_f64() / secs;
        let busy = if window.busy_known_secs > 0.0 {
            window.busy_secs / window.busy_known_secs
        } else {
            (children_cores / count(self.cores)).min(1.0)
        };
        Some(Measured {
            throughput: count_u64(finished) / secs,
            running: window.running_secs / secs,
            busy,
            children_cores,
        })
    }

    /// The next limit, the kind of step and its reason; `None` to hold.
    fn decide(&mut self, m: &Measured) -> Option<(usize, StepKind, String)> {
        let limit = self.limit;
        let cpu = format!("CPU {:.0}% busy, children use {:.1} cores", m.busy * 100.0, m.children_cores);
        // A busy machine is saturated whoever keeps it busy: a server the children call on
        // the same machine (a local emulator, a database) takes its CPU from theirs. The
        // children's own rusage cannot tell, as it counts finished children only.
        let saturated = m.busy >= SATURATED;
        // On an idle machine nothing queues for the CPU; and its windows are a tick long,
        // too short for Little's law to give a runtime (the limit just changed).
        let idle = m.busy < IDLE;
        let runtime = (m.throughput > 0.0 && !idle).then(|| m.running / m.throughput);
        if let Some(runtime) = runtime.filter(|r| *r > 0.0) {
            self.min_runtime = Some(self.min_runtime.map_or(runtime, |min| min.min(runtime)));
        }
        let slowdown = match (runtime, self.min_runtime) {
            (Some(runtime), Some(min)) if min > 0.0 => runtime / min,
            _ => 1.0,
        };
        let queue = m.running * (1.0 - 1.0 / slowdown);
        let log = count(limit).log10();
        let (alpha, beta) = ((3.0 * log).max(1.0), (6.0 * log).max(2.0));
        let judged = self.step.map(|step| (step, elasticity(step.from, step.throughput, limit, m.throughput)));
        match judged {
            Some((step, gain)) if step.kind == StepKind::Grow && gain < 0.5 && saturated => {
                self.cooldown = PROBE_AFTER;
                return Some((step.from, StepKind::Revert, format!("throughput flat at {limit}, {cpu}")));
            }
            Some((step, gain)) if step.kind == StepKind::BackOff && gain >= 0.5 => {
                self.cooldown = PROBE_AFTER;
                return Some((step.from, StepKind::Revert, format!("throughput fell with fewer, {cpu}")));
            }
            _ => {}
        }
        if queue > beta {
            let to = if saturated {
                (limit * 3 / 4).max(self.cores.min(limit))
            } else {
                limit.saturating_sub(usize::try_from(limit.ilog10()).unwrap_or(1).max(1))
            };
            return Some((to, StepKind::BackOff, format!("children take {slowdown:.1}× their unloaded time, {cpu}")));
        }
        if self.cooldown > 0 {
            self.cooldown -= 1;
            return None;
        }
        let rising = matches!(judged, Some((step, gain)) if step.kind == StepKind::Grow && gain >= 0.5);
        // On a machine busy from the start, one step up is tried: the throughput that
        // follows it tells children that wait (they rise with it) from children that
        // share the cores (it stays flat, and the step is taken back).
        let explore = self.step.is_none() && m.throughput > 0.0;
        let demand = m.running >= 0.8 * count(limit);
        if !saturated || rising || explore {
            if !demand || queue > alpha {
                return None;
            }
            let to = match (self.slow_start, idle) {
                // A machine almost all idle with every slot in use: the children wait.
                (true, true) if m.busy < ALMOST_IDLE => limit * 16,
                (true, true) => limit * 4,
                (true, false) => limit * 2,
                (false, _) => limit + limit.isqrt().max(1),
            };
            let why = if rising { format!("throughput rising, {cpu}") } else { cpu };
            return Some((to, StepKind::Grow, why));
        }
        let no_loss = matches!(judged, Some((step, gain)) if step.kind == StepKind::BackOff && gain < 0.5);
        // Probing needs a throughput to compare: long children give none. It stops at the
        // cores: fewer children than cores cannot finish CPU-bound children sooner.
        (m.throughput > 0.0 && limit > self.cores && (no_loss || self.holds >= PROBE_AFTER)).then(|| {
            let to = (limit * 3 / 4).max(self.cores);
            (to, StepKind::BackOff, format!("CPU saturated, probing down: {cpu}"))
        })
    }
}

/// How the throughput followed the limit from `(from, before)` to `(to, after)`: 1 when
/// in proportion (children that wait), 0 when flat (children that share the cores).
fn elasticity(from: usize, before: f64, to: usize, after: f64) -> f64 {
    if from == to {
        return 0.0;
    }
    if before <= 0.0 || after <= 0.0 {
        return if after > before { 1.0 } else { 0.0 };
    }
    (after / before).ln() / (count(to) / count(from)).ln()
}

#[expect(clippy::cast_precision_loss, reason = "counts of children are far below 2^52")]
fn count(n: usize) -> f64 {
    n as f64
}

#[expect(clippy::cast_precision_loss, reason = "counts of children are far below 2^52")]
pub(super) fn count_u64(n: u64) -> f64 {
    n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulated children on `cores` cores, ticking every 250 ms for `secs`: each costs
    /// `cpu` CPU-seconds and waits `wait` seconds. Returns the limit at each tick.
    fn simulate(controller: &mut Controller, cores: usize, cpu: f64, wait: f64, secs: u64) -> Vec<usize> {
        let tick = TICK.as_secs_f64();
        let (mut finished, mut children_cpu, mut limits) = (0.0_f64, 0.0_f64, Vec::new());
        for n in 0..=(secs * 4) {
            let running = count(controller.limit());
            // Each child gets at most one core; the cores are shared when oversubscribed.
            let share = (count(cores) / running).min(1.0);
            let runtime = wait + cpu / share;
            let done = running / runtime * tick;
            finished += done;
            children_cpu += done * cpu;
            let busy = (running * cpu / runtime / count(cores)).clamp(0.02, 1.0);
            let sample = Sample {
                at: Duration::from_millis(250 * n),
                #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a small positive count")]
                finished: finished as u64,
                children_cpu: Duration::from_secs_f64(children_cpu),
                busy: Some(busy),
                running: controller.limit(),
            };
            controller.tick(sample);
            limits.push(controller.limit());
        }
        limits
    }

    #[test]
    fn cpu_bound_children_settle_near_the_cores() {
        for cores in [2, 4, 8] {
            let mut controller = Controller::new(cores, 256);
            let limits = simulate(&mut controller, cores, 1.0, 0.0, 120);
            let late = &limits[limits.len() / 2..];
            // It may try a step up, and comes back.
            assert!(late.iter().all(|l| *l >= cores * 3 / 4 && *l <= cores + cores.isqrt()), "{cores}: {late:?}");
            assert!(late.iter().filter(|l| **l == cores).count() * 4 >= late.len() * 3, "{cores}: {late:?}");
        }
    }

    #[test]
    fn cpu_bound_children_bring_a_high_limit_down() {
        let mut controller = Controller::new(2, 256);
        controller.limit = 40;
        controller.min_runtime = Some(1.0);
        let limits = simulate(&mut controller, 2, 1.0, 0.0, 120);
        assert!(limits[limits.len() - 40..].iter().all(|l| (1..=3).contains(l)), "{limits:?}");
    }

    #[test]
    fn sleeping_children_rise_to_the_bound_and_never_past_it() {
        for max in [3, 64, 256] {
            let mut controller = Controller::new(2, max);
            let limits = simulate(&mut controller, 2, 0.0, 0.3, 60);
            assert!(limits.iter().all(|l| *l <= max), "{limits:?}");
            assert_eq!(*limits.last().unwrap(), max, "{limits:?}");
            assert_eq!(controller.range(), Range { low: 2, high: max, auto: true });
        }
    }

    #[test]
    fn mostly_waiting_children_rise_above_the_cores() {
        let mut controller = Controller::new(2, 256);
        let limits = simulate(&mut controller, 2, 0.05, 0.5, 60);
        assert!(*limits.last().unwrap() > 8, "{limits:?}");
    }

    #[test]
    fn a_busy_machine_does_not_stop_sleeping_children() {
        let mut controller = Controller::new(2, 64);
        let mut finished = 0.0;
        for n in 0..=240_u64 {
            finished += count(controller.limit()) / 0.3 * 0.25;
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a small positive count")]
            let sample = Sample {
                at: Duration::from_millis(250 * n),
                finished: finished as u64,
                children_cpu: Duration::ZERO,
                busy: Some(1.0),
                running: controller.limit(),
            };
            controller.tick(sample);
        }
        assert_eq!(controller.limit(), 64);
    }

    #[test]
    fn long_children_on_a_saturated_machine_do_not_grow() {
        let mut controller = Controller::new(2, 256);
        for n in 0..=480_u64 {
            let running = controller.limit();
            let sample = Sample {
                at: Duration::from_millis(250 * n),
                finished: 0,
                children_cpu: Duration::ZERO,
                busy: Some(1.0),
                running,
            };
            controller.tick(sample);
            assert_eq!(controller.limit(), 2);
        }
    }

    #[test]
    fn the_limit_starts_at_the_cores_and_stays_at_least_one() {
        assert_eq!(Controller::new(8, 256).limit(), 8);
        assert_eq!(Controller::new(8, 3).limit(), 3);
        assert_eq!(Controller::new(0, 0).limit(), 1);
        let mut controller = Controller::new(1, 256);
        let limits = simulate(&mut controller, 1, 1.0, 0.0, 60);
        assert!(limits.iter().all(|l| *l >= 1));
    }

    #[test]
    fn changes_and_ranges_read_as_documented() {
        let change = Change { from: 4, to: 6, reason: "throughput rising, CPU 55% busy".to_owned() };
        assert_eq!(change.to_string(), "concurrency 4 → 6: throughput rising, CPU 55% busy");
        assert_eq!(Range { low: 2, high: 12, auto: true }.to_string(), "concurrency 2–12 (auto)");
        assert_eq!(Range { low: 4, high: 4, auto: false }.to_string(), "concurrency 4 (-j 4)");
    }
}
