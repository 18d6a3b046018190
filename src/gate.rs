//! One question before each account starts: may it, or has the run been halted?
//!
//! A sweeping write across a thousand accounts has a large blast radius, so a run can be
//! halted before it is done: by `--max-failures` (`--fail-fast`) once that many accounts
//! have failed, or by a failed canary (`--canary`, decided in `runner/canary.rs`, which waits
//! for the canaries). Every account task asks [`Gate::is_halted`] before it fetches
//! credentials and again before its command starts, so a halt costs the accounts not yet
//! started nothing, not even a portal call. Running commands finish.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `--max-failures`: a count, or a percentage of the accounts selected.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FailureLimit {
    Count(usize),
    Percent(f64),
}

#[derive(Debug, thiserror::Error)]
#[error("invalid --max-failures {0:?}: expected a count (5) or a percentage (5%) above 0")]
pub struct FailureLimitError(String);

impl FailureLimit {
    pub fn parse(text: &str) -> Result<Self, FailureLimitError> {
        let error = || FailureLimitError(text.to_owned());
        let text = text.trim();
        match text.strip_suffix('%') {
            Some(percent) => {
                let percent: f64 = percent.trim().parse().map_err(|_| error())?;
                (percent > 0.0 && percent <= 100.0).then_some(FailureLimit::Percent(percent)).ok_or_else(error)
            }
            None => text.parse().ok().filter(|&n| n > 0).map(FailureLimit::Count).ok_or_else(error),
        }
    }

    /// How many failures halt a run that has selected `selected` accounts so far: at
    /// least one, so `1%` of a small run still allows its first failure to halt it.
    fn threshold(self, selected: usize) -> usize {
        match self {
            FailureLimit::Count(count) => count,
            #[expect(clippy::cast_precision_loss, reason = "account counts are far below 2^52")]
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a small positive count")]
            FailureLimit::Percent(percent) => ((selected as f64 * percent / 100.0).ceil() as usize).max(1),
        }
    }
}

/// Why a run stopped starting accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Halt {
    /// `--max-failures`: this many failed, the limit in force then.
    Failures { failed: usize, limit: usize },
    /// A canary failed: so many of the canaries.
    Canary { failed: usize, canaries: usize },
    /// `--canary-accounts` named no selected account: nothing was tried first.
    NoCanary,
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Halt::Failures { failed, limit } => {
                write!(f, "halted: {failed} accounts failed, the limit is {limit} (--max-failures)")
            }
            Halt::Canary { failed, canaries } => write!(
                f,
                "the canary failed: {failed} of {canaries} canary accounts failed, so no other account was started"
            ),
            Halt::NoCanary => {
                write!(f, "none of the --canary-accounts is among the selected accounts, so nothing was started")
            }
        }
    }
}

/// Shared by every account task of a run.
#[derive(Debug, Default)]
pub struct Gate {
    limit: Option<FailureLimit>,
    selected: AtomicUsize,
    failed: AtomicUsize,
    halt: Mutex<Option<Halt>>,
}

impl Gate {
    pub fn new(limit: Option<FailureLimit>) -> Self {
        Gate { limit, ..Gate::default() }
    }

    pub fn is_halted(&self) -> bool {
        self.lock().is_some()
    }

    /// One more account selected (a percentage limit grows with the selection).
    pub fn on_selected(&self) {
        self.selected.fetch_add(1, Ordering::Relaxed);
    }

    /// One more account failed; halts the run when that reaches the limit, and then
    /// says why (once: only the failure that halted it gets the reason back).
    #[must_use = "a halt is an event the run reports"]
    pub fn on_failure(&self) -> Option<Halt> {
        let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        let threshold = self.limit?.threshold(self.selected.load(Ordering::Relaxed));
        (failed >= threshold).then_some(Halt::Failures { failed, limit: threshold }).filter(|halt| self.halt_with(halt))
    }

    /// Halts the run, keeping the first reason given; whether this one halted it.
    #[must_use = "a halt is an event the run reports"]
    pub fn halt_with(&self, halt: &Halt) -> bool {
        let mut current = self.lock();
        if current.is_some() {
            return false;
        }
        tracing::warn!("{halt}");
        *current = Some(halt.clone());
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Halt>> {
        self.halt.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_counts_or_percentages() {
        assert_eq!(FailureLimit::parse("5").unwrap(), FailureLimit::Count(5));
        assert_eq!(FailureLimit::parse("2.5%").unwrap(), FailureLimit::Percent(2.5));
        for bad in ["0", "-1", "x", "0%", "101%", "%", ""] {
            assert!(FailureLimit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_count_halts_at_that_many_failures() {
        let gate = Gate::new(Some(FailureLimit::Count(2)));
        assert_eq!(gate.on_failure(), None);
        assert!(!gate.is_halted());
        assert_eq!(gate.on_failure(), Some(Halt::Failures { failed: 2, limit: 2 }));
        assert!(gate.is_halted());
        assert_eq!(gate.on_failure(), None, "the halt is said once");
    }

    #[test]
    fn a_percentage_is_of_the_accounts_selected_and_at_least_one() {
        let gate = Gate::new(Some(FailureLimit::Percent(10.0)));
        for _ in 0..30 {
            gate.on_selected();
        }
        assert_eq!((gate.on_failure(), gate.on_failure()), (None, None), "2 of 30 is under 10%");
        assert_eq!(gate.on_failure(), Some(Halt::Failures { failed: 3, limit: 3 }), "3 of 30 is 10%");
        assert_eq!(FailureLimit::Percent(1.0).threshold(5), 1);
    }

    #[test]
    fn no_limit_never_halts_and_the_first_reason_stays() {
        let gate = Gate::new(None);
        for _ in 0..100 {
            assert_eq!(gate.on_failure(), None);
        }
        assert!(!gate.is_halted());
        assert!(gate.halt_with(&Halt::Canary { failed: 1, canaries: 3 }));
        assert!(!gate.halt_with(&Halt::Failures { failed: 9, limit: 1 }), "the first reason stays");
    }
}
