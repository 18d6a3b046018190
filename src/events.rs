//! What happens in a run, in the past tense: the runner says it, and the reporter hands
//! it to the sinks the command line chose (the progress bar, the joblog, the summary,
//! the CI reports, the dry run's table, the saved plan). The two meet here and nowhere
//! else, so a new sink is a new file under `reporter/` and the runner does not change.
//!
//! Child output is not an event: its bytes go from the pipe to the writer thread through
//! one account's output ([`crate::reporter::account_output`]), batched and with reused
//! buffers, which a message per line could not keep up with.

use std::time::Duration;

use crate::gate::Halt;
use crate::org::AccountFacts;
use crate::outcome::{Outcome, Trace};

/// A step of the run, as its sinks take it: the progress bar counts them, and the
/// summary keeps the throttles, the credentials and the halt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A listed account was selected: the run's total grows by one.
    Selected,
    /// Every login's listing has ended: the total is known.
    ListingComplete,
    /// An account's task was given a live slot (or was found never to start).
    TaskBegun,
    /// An account's task ended, in all its regions; `failed` if any of them failed.
    TaskEnded { failed: bool },
    /// An account's credentials arrived from the portal.
    CredentialsFetched,
    /// The portal answered a call with a 429: the limiter slows down, and the call is
    /// tried again.
    Throttled,
    /// The run stopped starting accounts (`--max-failures`, a failed canary); said once,
    /// with the first reason.
    Halted(Halt),
}

/// Where events go. The reporter is one; a stage that sees something the run should
/// show (the portal, its throttles) is handed one, so that it emits into the run's
/// stream without knowing the reporter.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// One (account, region) has ended: everything a sink records of it.
#[derive(Debug)]
pub struct Ended<'a> {
    pub account_id: &'a str,
    pub account_name: &'a str,
    /// What the organization says of the account (`--accounts-meta`), when it knows it.
    pub org: Option<&'a AccountFacts>,
    /// With `--regions`: the region this ending is for; each is counted on its own.
    pub region: Option<&'a str>,
    /// The region its command ran (or would run) in, `--regions` or not.
    pub child_region: &'a str,
    /// Its place in the selection: the order a dry run prints in.
    pub index: usize,
    pub outcome: &'a Outcome,
    pub trace: &'a Trace,
    pub dry_run: bool,
}

impl Ended<'_> {
    /// From its task's start to its end; zero for an account never started.
    pub fn duration(&self) -> Duration {
        match (self.trace.began, self.trace.ended) {
            (Some(began), Some(ended)) => ended.duration_since(began).unwrap_or_default(),
            _ => self.trace.runtime,
        }
    }

    /// Its OU path, when the organization gives it one (`--accounts-meta`).
    pub fn ou_path(&self) -> Option<String> {
        self.org.map(AccountFacts::ou_path).filter(|path| !path.is_empty())
    }

    /// `id (name)`, or `id/region (name)` with `--regions`, as the summary names them.
    pub fn label(&self) -> String {
        match self.region {
            Some(region) => format!("{}/{region} ({})", self.account_id, self.account_name),
            None => format!("{} ({})", self.account_id, self.account_name),
        }
    }
}
