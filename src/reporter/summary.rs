//! The summary sink: every (account, region)'s [`Outcome`] counted into a [`Tally`], the
//! summary on stderr, and the exit code, derived from the tally by a pure function.

use std::fmt::Write as _;
use std::time::Duration;

use crate::concurrency::Range;
use crate::events::Ended;
use crate::exit_code;
use crate::gate::Halt;
use crate::outcome::{AccountReport, FailureClass, Outcome};
use crate::reporter::coverage::Coverage;
use crate::text;

/// Accounts named one by one for each kind of ending; past this, a count.
const NAMED: usize = 20;

/// Everything the summary shows; kept small (counts, and names only for failures,
/// stops and skips) so memory stays flat in the number of accounts.
#[derive(Debug, Default)]
pub struct Tally {
    pub selected: usize,
    pub succeeded: usize,
    /// `(account, class, reason)`.
    pub failed: Vec<(String, FailureClass, String)>,
    /// `(account, how it ended)`.
    pub interrupted: Vec<(String, String)>,
    /// `(account, why, when the roles it was decided on were cached)`.
    pub no_role: Vec<(String, Option<String>)>,
    pub not_started: Vec<String>,
    /// Accounts the filters chose but the organization lists as suspended, closing or
    /// closed (`--accounts-meta`): skipped without a portal call, and counted here.
    pub inactive: usize,
    /// With organization facts: the accounts in scope and how far the run got into
    /// each; `None` without facts (nothing says what should have been reached).
    pub coverage: Option<Coverage>,
    /// The selected accounts whose roles came from the inventory cache.
    pub roles_from_cache: CachedRolesUse,
    /// The portal rejected the token mid-run: the user must log in again.
    pub login_rejected: bool,
    /// Why the account listing stopped early, after commands had started.
    pub listing_error: Option<String>,
    /// A stop came before the listing was complete: accounts not listed yet are not
    /// counted anywhere.
    pub listing_stopped: bool,
    /// Why the run stopped starting accounts (`--max-failures`, a failed canary).
    pub halt: Option<Halt>,
    pub throttles: u64,
    pub portal_calls: u64,
    /// Accounts whose credentials arrived from the portal.
    pub credentials: usize,
    /// `--regions`: what is counted is each (account, region), named `id/region`.
    pub regions: bool,
    /// The commands-at-once a real run used (`-j N`, or the range `-j auto` went through).
    pub concurrency: Option<Range>,
    /// With several logins, one each in the order given; empty with one login.
    pub logins: Vec<LoginTally>,
    /// How long the confirmation prompt waited for its answer: not part of the run's
    /// duration, which measures fanout's work, not the reader's.
    pub at_prompt: Duration,
}

/// What one of several logins contributed to the run.
#[derive(Debug, Default)]
pub struct LoginTally {
    pub name: String,
    /// Selected accounts that run through this login.
    pub selected: usize,
    /// Of those, how many a later login lists too.
    pub shared: usize,
}

impl LoginTally {
    pub fn new(name: &str) -> Self {
        LoginTally { name: name.to_owned(), ..LoginTally::default() }
    }
}

impl Tally {
    /// One (account, region) has ended.
    pub fn ended(&mut self, end: &Ended<'_>) {
        if let Some(coverage) = &mut self.coverage {
            coverage.ended(end.account_id, end.account_name, end.outcome);
        }
        self.record(AccountReport {
            account_id: end.account_id.to_owned(),
            account_name: end.account_name.to_owned(),
            region: end.region.map(str::to_owned),
            outcome: end.outcome.clone(),
        });
    }

    pub fn record(&mut self, report: AccountReport) {
        let name = || match &report.region {
            Some(region) => format!("{}/{region} ({})", report.account_id, text::show(&report.account_name)),
            None => format!("{} ({})", report.account_id, text::show(&report.account_name)),
        };
        match report.outcome {
            Outcome::Succeeded => self.succeeded += 1,
            Outcome::Failed { class, reason } => self.failed.push((name(), class, reason)),
            Outcome::Interrupted(how) => self.interrupted.push((name(), how)),
            Outcome::NoRole { reason } => self.no_role.push((name(), reason)),
            Outcome::NotStarted => self.not_started.push(name()),
        }
    }

    /// The exit code a CI job sees; see `exit_code.rs`.
    pub fn exit_code(&self, signal: Option<i32>) -> u8 {
        if let Some(signal) = signal {
            return exit_code::for_signal(signal);
        }
        if self.login_rejected {
            exit_code::NO_LOGIN
        } else if self.listing_error.is_some() {
            exit_code::PORTAL_UNAVAILABLE
        } else if !self.failed.is_empty()
            || !self.interrupted.is_empty()
            || !self.not_started.is_empty()
            || self.missed_required() > 0
        {
            exit_code::ACCOUNT_FAILED
        } else if self.succeeded == 0 {
            exit_code::NOTHING_SELECTED
        } else {
            exit_code::SUCCESS
        }
    }

    /// With `--require-all`, how many accounts in scope the run did not reach: each
    /// fails it.
    fn missed_required(&self) -> usize {
        match &self.coverage {
            Some(coverage) if coverage.required => coverage.in_scope() - coverage.reached(),
            _ => 0,
        }
    }

    /// The coverage line, each account not reached (the first [`NAMED`] unless
    /// `verbose`), and why `--require-all` failed the run.
    fn render_coverage(&self, text: &mut String, roles: &[String], dry_run: bool, verbose: bool) {
        let Some(coverage) = &self.coverage else { return };
        let _ = writeln!(text, "  {}", coverage.line(roles, dry_run));
        name_some(text, "not reached ", &coverage.named(roles), verbose);
        let missed = self.missed_required();
        if missed > 0 {
            let _ = writeln!(
                text,
                "  --require-all: {} in scope {} not reached, so the run fails",
                text::plural(missed, "account"),
                if missed == 1 { "was" } else { "were" }
            );
        }
    }

    /// The summary, one fact a line. `roles` names what skipped accounts lacked;
    /// `verbose` also lists the skipped accounts and portal figures.
    pub fn render(&self, roles: &[String], elapsed: Duration, dry_run: bool, verbose: bool) -> String {
        let mut text = format!(
            "fanout: {}{} selected: {} {}, {} failed, {} skipped (no role {}){}{} in {:.2}s{}\n",
            if dry_run { "dry run: " } else { "" },
            text::plural(self.selected, if self.regions { "account-region" } else { "account" }),
            self.succeeded,
            if dry_run { "would run" } else { "succeeded" },
            self.failed.len(),
            self.no_role.len(),
            roles.join(" or "),
            count_if_any(self.interrupted.len(), "interrupted"),
            count_if_any(self.not_started.len(), "not started"),
            elapsed.as_secs_f64(),
            self.roles_from_cache.describe(),
        );
        if let Some(line) = logins_line(&self.logins) {
            let _ = writeln!(text, "  {line}");
        }
        if let Some(halt) = &self.halt {
            let _ = writeln!(text, "  {halt}");
        }
        if self.inactive > 0 {
            let _ = writeln!(
                text,
                "  skipped      {} the organization lists as suspended or closed",
                text::plural(self.inactive, "account")
            );
        }
        self.render_coverage(&mut text, roles, dry_run, verbose);
        for (account, class, reason) in &self.failed {
            let _ = writeln!(
                text,
                "  failed       {account} [{}]: {}",
                class.name(),
                text::show_at_most(reason, text::MAX_LINE)
            );
        }
        for (account, how) in &self.interrupted {
            let _ = writeln!(text, "  interrupted  {account}: {how}");
        }
        name_some(&mut text, "not started ", &self.not_started, verbose);
        // A skip the cache decided is named even without -v: the account may have been
        // granted the role since, and the run must not pass for complete.
        let cached_skips: Vec<String> = self
            .no_role
            .iter()
            .filter_map(|(account, reason)| Some(format!("{account}: {}", reason.as_deref()?)))
            .collect();
        name_some(&mut text, "skipped     ", &cached_skips, verbose);
        if let Some(error) = &self.listing_error {
            let _ =
                writeln!(text, "  the account listing stopped early: {}", text::show_at_most(error, text::MAX_LINE));
        }
        if self.listing_stopped {
            let _ = writeln!(text, "  the run was stopped before the account listing was complete");
        }
        if verbose {
            for (account, _) in self.no_role.iter().filter(|(_, reason)| reason.is_none()) {
                let _ = writeln!(text, "  skipped      {account}: has no role {}", roles.join(" or "));
            }
            let _ = writeln!(
                text,
                "  portal: {}, {} throttled, credentials for {}",
                text::plural(usize::try_from(self.portal_calls).unwrap_or(usize::MAX), "call"),
                self.throttles,
                text::plural(self.credentials, "account")
            );
            if let Some(range) = &self.concurrency {
                let _ = writeln!(text, "  {range}");
            }
        }
        text
    }
}

/// How many selected accounts ran on roles from the inventory cache, and the oldest
/// such roles' age: the summary says so, as the roles may have changed since.
#[derive(Debug, Default)]
pub struct CachedRolesUse {
    pub accounts: usize,
    pub oldest: Duration,
}

impl CachedRolesUse {
    pub fn note(&mut self, age: Duration) {
        self.accounts += 1;
        self.oldest = self.oldest.max(age);
    }

    /// `; roles of 30 from the inventory cache (12 min old; --refresh lists them)`, or nothing.
    fn describe(&self) -> String {
        if self.accounts == 0 {
            return String::new();
        }
        let age = text::ago(self.oldest);
        format!(
            "; roles of {} from the inventory cache (listed {age}; --refresh lists them again)",
            text::plural(self.accounts, "account")
        )
    }
}

/// With several logins: `accounts: 30 via corp, 12 via lab; 3 reachable through both
/// ran via corp`, names sanitized (a legacy login's name is its start URL).
fn logins_line(logins: &[LoginTally]) -> Option<String> {
    if logins.len() < 2 {
        return None;
    }
    let via: Vec<String> = logins.iter().map(|l| format!("{} via {}", l.selected, text::show(&l.name))).collect();
    let through = if logins.len() == 2 { "both" } else { "more than one login" };
    let mut line = format!("accounts: {}", via.join(", "));
    for login in logins.iter().filter(|l| l.shared > 0) {
        let _ = write!(line, "; {} reachable through {through} ran via {}", login.shared, text::show(&login.name));
    }
    Some(line)
}

fn count_if_any(count: usize, what: &str) -> String {
    if count > 0 { format!(", {count} {what}") } else { String::new() }
}

/// One line an account, the first [`NAMED`] unless `all`, then how many more.
fn name_some(text: &mut String, label: &str, accounts: &[String], all: bool) {
    let shown = if all { accounts.len() } else { accounts.len().min(NAMED) };
    for account in &accounts[..shown] {
        let _ = writeln!(text, "  {label} {account}");
    }
    if shown < accounts.len() {
        let _ = writeln!(text, "  {label} … and {} more (-v lists them all)", accounts.len() - shown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: Outcome) -> AccountReport {
        AccountReport { account_id: "1".to_owned(), account_name: "a".to_owned(), region: None, outcome }
    }

    fn exit_failure() -> Outcome {
        Outcome::Failed { class: FailureClass::Exit, reason: "exit code 3".to_owned() }
    }

    #[test]
    fn all_succeeded_is_zero() {
        let mut tally = Tally { selected: 2, ..Tally::default() };
        tally.record(report(Outcome::Succeeded));
        tally.record(report(Outcome::NoRole { reason: None }));
        assert_eq!(tally.exit_code(None), exit_code::SUCCESS);
    }

    #[test]
    fn several_logins_are_counted_on_one_line() {
        let login = |name: &str, selected, shared| LoginTally { name: name.to_owned(), selected, shared };
        assert_eq!(logins_line(&[login("corp", 3, 0)]), None, "one login: no line");
        assert_eq!(
            logins_line(&[login("corp", 30, 3), login("lab", 12, 0)]).unwrap(),
            "accounts: 30 via corp, 12 via lab; 3 reachable through both ran via corp"
        );
        assert_eq!(
            logins_line(&[login("a", 1, 0), login("b", 2, 1), login("c", 0, 0)]).unwrap(),
            "accounts: 1 via a, 2 via b, 0 via c; 1 reachable through more than one login ran via b"
        );
    }

    #[test]
    fn any_failure_is_never_zero() {
        for bad in [exit_failure(), Outcome::NotStarted, Outcome::Interrupted("exit code 0".to_owned())] {
            let mut tally = Tally::default();
            for _ in 0..5 {
                tally.record(report(Outcome::Succeeded));
            }
            tally.record(report(bad));
            assert_eq!(tally.exit_code(None), exit_code::ACCOUNT_FAILED);
        }
    }

    #[test]
    fn require_all_makes_a_gap_in_coverage_a_failure_even_when_nothing_ran() {
        let gap = |required| {
            let mut coverage = Coverage::new(required);
            coverage.listed("111111111111", true);
            coverage.ended("111111111111", "a", &Outcome::NoRole { reason: None });
            Tally { coverage: Some(coverage), ..Tally::default() }
        };
        assert_eq!(gap(false).exit_code(None), exit_code::NOTHING_SELECTED, "reported, not failed");
        let required = gap(true);
        assert_eq!(required.exit_code(None), exit_code::ACCOUNT_FAILED);
        let text = required.render(&["ReadOnly".to_owned()], Duration::ZERO, false, false);
        assert!(text.contains("  --require-all: 1 account in scope was not reached, so the run fails\n"), "{text}");
        let mut reached = Coverage::new(true);
        reached.listed("111111111111", true);
        reached.ended("111111111111", "a", &Outcome::Succeeded);
        let mut tally = Tally { coverage: Some(reached), ..Tally::default() };
        tally.record(report(Outcome::Succeeded));
        assert_eq!(tally.exit_code(None), exit_code::SUCCESS);
    }

    #[test]
    fn nothing_run_is_five_and_signals_logins_and_listings_win() {
        let mut tally = Tally::default();
        tally.record(report(Outcome::NoRole { reason: None }));
        assert_eq!(tally.exit_code(None), exit_code::NOTHING_SELECTED);
        tally.record(report(exit_failure()));
        tally.listing_error = Some("loops".to_owned());
        assert_eq!(tally.exit_code(None), exit_code::PORTAL_UNAVAILABLE);
        tally.login_rejected = true;
        assert_eq!(tally.exit_code(None), exit_code::NO_LOGIN);
        assert_eq!(tally.exit_code(Some(libc::SIGINT)), exit_code::INTERRUPTED);
        assert_eq!(tally.exit_code(Some(libc::SIGTERM)), exit_code::TERMINATED);
        assert_eq!(tally.exit_code(Some(libc::SIGHUP)), exit_code::HUNG_UP);
    }

    #[test]
    fn the_summary_names_failures_with_their_class_and_escapes_names() {
        let mut tally = Tally { selected: 2, ..Tally::default() };
        tally.record(report(Outcome::Succeeded));
        tally.record(AccountReport {
            account_id: "1".to_owned(),
            account_name: "a\n2 (b)\x1b[2J".to_owned(),
            region: None,
            outcome: exit_failure(),
        });
        let text = tally.render(&["ReadOnly".to_owned()], Duration::from_millis(1500), false, false);
        assert_eq!(
            text,
            "fanout: 2 accounts selected: 1 succeeded, 1 failed, 0 skipped (no role ReadOnly) in 1.50s\n  failed       1 (a\\n2 (b)\\u{1b}[2J) [exit]: exit code 3\n"
        );
    }

    #[test]
    fn with_regions_each_account_region_is_counted_and_named() {
        let mut tally = Tally { selected: 2, regions: true, ..Tally::default() };
        tally.record(AccountReport { region: Some("us-east-1".to_owned()), ..report(Outcome::Succeeded) });
        tally.record(AccountReport { region: Some("eu-west-1".to_owned()), ..report(exit_failure()) });
        let text = tally.render(&[], Duration::ZERO, false, false);
        assert!(text.starts_with("fanout: 2 account-regions selected: 1 succeeded, 1 failed"), "{text}");
        assert!(text.contains("  failed       1/eu-west-1 (a) [exit]: exit code 3\n"), "{text}");
    }

    #[test]
    fn stopped_accounts_are_named_then_counted() {
        let mut tally = Tally { selected: 30, ..Tally::default() };
        for _ in 0..25 {
            tally.record(report(Outcome::NotStarted));
        }
        tally.record(report(Outcome::Interrupted("exit code 130".to_owned())));
        let text = tally.render(&[], Duration::ZERO, false, false);
        assert!(text.contains(", 1 interrupted, 25 not started in"), "{text}");
        assert!(text.contains("  interrupted  1 (a): exit code 130\n"), "{text}");
        assert_eq!(text.matches("  not started  1 (a)\n").count(), NAMED, "{text}");
        assert!(text.contains("… and 5 more"), "{text}");
    }

    #[test]
    fn a_skip_decided_from_cached_roles_is_named_and_the_cache_is_said() {
        let mut tally = Tally { selected: 3, ..Tally::default() };
        tally.record(report(Outcome::Succeeded));
        tally.record(report(Outcome::NoRole { reason: None }));
        let reason = "no role ReadOnly, as cached 12 min ago; --refresh asks again".to_owned();
        tally.record(report(Outcome::NoRole { reason: Some(reason) }));
        tally.roles_from_cache.note(Duration::from_mins(12));
        tally.roles_from_cache.note(Duration::from_mins(3));
        let text = tally.render(&["ReadOnly".to_owned()], Duration::from_secs(1), false, false);
        assert_eq!(
            text,
            "fanout: 3 accounts selected: 1 succeeded, 0 failed, 2 skipped (no role ReadOnly) in 1.00s; roles of 2 accounts from the inventory cache (listed 12 min ago; --refresh lists them again)\n  skipped      1 (a): no role ReadOnly, as cached 12 min ago; --refresh asks again\n"
        );
    }
}
