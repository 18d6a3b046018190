//! `-j auto`: how many commands run at once, adapted while the run goes.
//!
//! The right number depends on the children. A child that burns a CPU-second (the AWS
//! CLI starting up costs about half of one) gains nothing past the number of cores: more
//! of them only share the cores and each takes longer. A child that waits on the network
//! costs almost no CPU, and a hundred of them finish a hundred times faster than one.
//!
//! - [`controller`]: the adaptive limit, pure arithmetic over samples (after Netflix's
//!   concurrency-limits; its doc says how it decides), so tests drive it with simulated
//!   children.
//! - [`sampling`]: what it is fed: the [`Gauge`] counting commands where they run, and
//!   the children's and the machine's CPU, read from the OS.
//! - [`slots`]: the command [`Slots`] it resizes, and the [`StartOrder`] of `-j 1`.
//!
//! This file holds the `-j` option ([`Concurrency`]) and [`start`], which ticks the
//! sampler into the controller and resizes the slots.

mod controller;
mod sampling;
mod slots;

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use controller::TICK;
pub use controller::{Controller, Range};
pub use sampling::Gauge;
use sampling::Sampler;
pub use slots::{Slot, Slots, StartOrder};

/// `-j`: a fixed number of commands at once, or adapted up to a bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    Fixed(usize),
    /// `-j auto`, up to `max` (`--max-concurrency`, capped by the machine's limits).
    Auto {
        max: usize,
    },
}

impl Concurrency {
    /// Commands allowed at the start: the fixed number, or the cores (within the bound).
    pub fn initial(self, cores: usize) -> usize {
        match self {
            Concurrency::Fixed(n) => n,
            Concurrency::Auto { max } => cores.clamp(1, max.max(1)),
        }
    }

    /// The most commands that can ever run at once in this run.
    pub fn bound(self) -> usize {
        match self {
            Concurrency::Fixed(n) | Concurrency::Auto { max: n } => n,
        }
    }

    /// The same kind, with its number (or bound) capped to `cap`, never below 1.
    #[must_use]
    pub fn capped(self, cap: usize) -> Self {
        match self {
            Concurrency::Fixed(n) => Concurrency::Fixed(n.min(cap).max(1)),
            Concurrency::Auto { max } => Concurrency::Auto { max: max.min(cap).max(1) },
        }
    }
}

/// The command slots and the live task slots, resized together so that as many tasks as
/// before fetch credentials ahead of a free command slot.
pub struct RunSlots {
    pub commands: Arc<Slots>,
    pub live: Arc<Slots>,
}

/// The task adapting a run's command slots; [`Ticker::stop`] ends it.
pub struct Ticker {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Range>,
}

impl Ticker {
    /// The range of limits used.
    pub async fn stop(self) -> Option<Range> {
        let _ = self.stop.send(());
        self.task.await.ok()
    }
}

/// Starts adapting `slots` (sized for `controller.limit()`), logging each change.
pub fn start(mut controller: Controller, slots: RunSlots, gauge: Arc<Gauge>) -> Ticker {
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut sampler = Sampler::new(gauge);
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = ticks.tick() => {
                    if let Some(change) = controller.tick(sampler.sample()) {
                        tracing::info!("{change}");
                        slots.commands.resize(change.from, change.to);
                        slots.live.resize(change.from, change.to);
                    }
                }
            }
        }
        controller.range()
    });
    Ticker { stop, task }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_j_is_never_adapted() {
        let fixed = Concurrency::Fixed(4);
        assert_eq!((fixed.initial(16), fixed.bound()), (4, 4));
        assert_eq!(fixed.capped(2), Concurrency::Fixed(2));
        let auto = Concurrency::Auto { max: 256 };
        assert_eq!((auto.initial(2), auto.bound()), (2, 256));
        assert_eq!(auto.capped(28), Concurrency::Auto { max: 28 });
        assert_eq!(Concurrency::Auto { max: 1 }.initial(8), 1);
    }
}
