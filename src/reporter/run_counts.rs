//! The events the summary keeps: the reporter's [`EventSink`], shared by every task and
//! by the portals (which emit their throttles into it), counting what the summary and
//! the bar show. Counts only, so memory stays flat in the number of accounts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::events::{Event, EventSink};
use crate::gate::Halt;
use crate::reporter::progress::Progress;

/// The events of one run, as they were emitted; see the module doc.
#[derive(Debug, Default)]
pub struct RunCounts {
    progress: Progress,
    throttles: AtomicU64,
    credentials: AtomicUsize,
    halt: Mutex<Option<Halt>>,
}

/// What the summary takes of the run's events once it is over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counted {
    pub throttles: u64,
    pub credentials: usize,
    pub halt: Option<Halt>,
}

impl RunCounts {
    pub fn new(progress: Progress) -> Self {
        RunCounts { progress, ..RunCounts::default() }
    }

    pub fn counted(&self) -> Counted {
        Counted {
            throttles: self.throttles.load(Ordering::Relaxed),
            credentials: self.credentials.load(Ordering::Relaxed),
            halt: self.halt_slot().clone(),
        }
    }

    fn halt_slot(&self) -> std::sync::MutexGuard<'_, Option<Halt>> {
        self.halt.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl EventSink for RunCounts {
    fn emit(&self, event: Event) {
        match event {
            Event::Selected => self.progress.on_selected(),
            Event::ListingComplete => self.progress.on_listing_complete(),
            Event::TaskBegun => self.progress.begin(),
            Event::TaskEnded { failed } => self.progress.on_finished(failed),
            Event::CredentialsFetched => {
                self.credentials.fetch_add(1, Ordering::Relaxed);
            }
            Event::Throttled => {
                self.throttles.fetch_add(1, Ordering::Relaxed);
                self.progress.on_throttled();
            }
            Event::Halted(halt) => {
                self.progress.on_halted();
                self.halt_slot().get_or_insert(halt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_gets_what_was_emitted_and_the_first_halt() {
        let counts = RunCounts::default();
        for event in [Event::Throttled, Event::Throttled, Event::CredentialsFetched, Event::Selected] {
            counts.emit(event);
        }
        counts.emit(Event::Halted(Halt::NoCanary));
        counts.emit(Event::Halted(Halt::Failures { failed: 3, limit: 3 }));
        assert_eq!(counts.counted(), Counted { throttles: 2, credentials: 1, halt: Some(Halt::NoCanary) });
    }
}
