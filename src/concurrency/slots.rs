//! Where commands wait to start: [`Slots`], a semaphore the controller can shrink at
//! once, and [`StartOrder`], which starts them in selection order at `-j 1`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A semaphore that can shrink at once. Taking permits away by acquiring them would
/// wait behind every task already queued for one (the semaphore is fair), so a shrink
/// would take effect only after up to `--portal-concurrency` more commands had started.
/// Instead, free permits are forgotten at once and the rest are owed: the next permits
/// released are forgotten instead of handed on. A running command is never stopped.
#[derive(Debug)]
pub struct Slots {
    semaphore: Arc<Semaphore>,
    owed: AtomicUsize,
}

impl Slots {
    pub fn new(permits: usize) -> Arc<Self> {
        Arc::new(Slots { semaphore: Arc::new(Semaphore::new(permits)), owed: AtomicUsize::new(0) })
    }

    /// Waits for a free slot.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        let permit = Arc::clone(&self.semaphore).acquire_owned().await.expect("the semaphore is never closed");
        Slot { permit: Some(permit), slots: Arc::clone(self) }
    }

    /// Gives a slot back, or forgets it while a shrink is owed.
    fn release(&self, permit: OwnedSemaphorePermit) {
        if self.owed.fetch_update(Ordering::AcqRel, Ordering::Acquire, |owed| owed.checked_sub(1)).is_ok() {
            permit.forget();
        }
    }

    /// From `from` slots to `to`: growing pays what is owed first, shrinking forgets
    /// the free permits at once and owes the rest.
    pub(super) fn resize(&self, from: usize, to: usize) {
        if to > from {
            let mut grow = to - from;
            let _ = self.owed.fetch_update(Ordering::AcqRel, Ordering::Acquire, |owed| {
                grow = (to - from).saturating_sub(owed);
                Some(owed.saturating_sub(to - from))
            });
            self.semaphore.add_permits(grow);
        } else {
            let forgotten = self.semaphore.forget_permits(from - to);
            self.owed.fetch_add(from - to - forgotten, Ordering::AcqRel);
        }
    }
}

/// A slot held: given back when dropped (or forgotten, while a shrink is owed), so no
/// path out of a task can keep it.
#[derive(Debug)]
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    slots: Arc<Slots>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.slots.release(permit);
        }
    }
}

/// At `-j 1`, commands start in selection order (issue 16, point 11), as xargs `-P 1`
/// and GNU parallel `-j 1` start jobs in input order: the (account, region) selected
/// `i`-th waits for its turn before it asks for the command slot, and its turn comes
/// once every one before it has ended (run or not). Credentials are still fetched ahead
/// by the live tasks; only the start waits. Not used above `-j 1`: there one slow or
/// throttled account would hold back every other, so commands start as credentials
/// arrive.
///
/// The lowest index not yet ended always has a live task (tasks start in selection
/// order), so a turn never waits on a task that cannot run. Endings may be reported out
/// of turn (a run being stopped lets every waiter through) and are counted all the same.
#[derive(Debug, Default)]
pub struct StartOrder {
    turn: std::sync::Mutex<Turn>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Turn {
    /// The index whose (account, region)s may start now.
    next: usize,
    /// Indices at or past `next` with some ended: how many ended, of how many share it
    /// (`--regions enabled` gives one account's regions one index).
    ended: std::collections::BTreeMap<usize, (usize, usize)>,
}

impl StartOrder {
    /// Waits until the (account, region)s before `index` have all ended.
    pub async fn turn(&self, index: usize) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so an ending between the two is not missed.
            notified.as_mut().enable();
            if self.lock().next >= index {
                return;
            }
            notified.await;
        }
    }

    /// One of the `of` (account, region)s at `index` ended: the turn moves on past every
    /// index whose (account, region)s have all ended.
    pub fn ended(&self, index: usize, of: usize) {
        let mut turn = self.lock();
        if index < turn.next {
            return;
        }
        turn.ended.entry(index).or_insert((0, of.max(1))).0 += 1;
        let before = turn.next;
        while let Some(&(ended, of)) = turn.ended.get(&turn.next)
            && ended >= of
        {
            let next = turn.next;
            turn.ended.remove(&next);
            turn.next += 1;
        }
        if turn.next != before {
            self.changed.notify_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Turn> {
        // A panic elsewhere cannot leave `Turn` half-updated: each update is one step.
        self.turn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_turn_moves_past_every_index_that_has_ended() {
        let order = StartOrder::default();
        order.ended(2, 1);
        assert_eq!(order.lock().next, 0, "an ending out of turn waits for those before it");
        order.ended(0, 1);
        assert_eq!(order.lock().next, 1);
        order.ended(1, 1);
        assert_eq!(order.lock().next, 3);
        order.ended(3, 2);
        assert_eq!(order.lock().next, 3, "one of two regions sharing index 3");
        order.ended(3, 2);
        assert_eq!(order.lock().next, 4);
        order.ended(1, 1);
        assert_eq!(order.lock().next, 4);
    }

    #[tokio::test]
    async fn a_turn_waits_for_the_ones_before_it() {
        let order = Arc::new(StartOrder::default());
        order.turn(0).await;
        let waiter = tokio::spawn({
            let order = Arc::clone(&order);
            async move { order.turn(2).await }
        });
        order.ended(0, 1);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        order.ended(1, 1);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn slots_shrink_at_once_and_never_below_the_running() {
        let slots = Slots::new(4);
        let held: Vec<_> = [slots.acquire().await, slots.acquire().await, slots.acquire().await].into();
        slots.resize(4, 1);
        // One free permit forgotten at once, two owed by the three running.
        assert_eq!((slots.semaphore.available_permits(), slots.owed.load(Ordering::Relaxed)), (0, 2));
        let mut held = held.into_iter();
        drop(held.next());
        drop(held.next());
        assert_eq!(slots.semaphore.available_permits(), 0);
        drop(held.next());
        assert_eq!(slots.semaphore.available_permits(), 1);
        // Growing pays what is owed first.
        let running = slots.acquire().await;
        slots.resize(1, 3);
        slots.resize(3, 2);
        assert_eq!((slots.semaphore.available_permits(), slots.owed.load(Ordering::Relaxed)), (1, 0));
        slots.resize(2, 1);
        slots.resize(1, 4);
        assert_eq!((slots.semaphore.available_permits(), slots.owed.load(Ordering::Relaxed)), (3, 0));
        drop(running);
        assert_eq!(slots.semaphore.available_permits(), 4);
    }
}
