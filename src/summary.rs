//! Stage 5: per-account outcomes → the summary on stderr and the exit code.
//!
//! A failing account is a result, not an error: each task returns an [`Outcome`] and
//! the exit code is derived from the [`Tally`] by a pure function.

use std::fmt::Write as _;
use std::time::Duration;

use crate::exit_code;

/// How one selected account ended.
#[derive(Debug)]
pub enum Outcome {
    Succeeded,
    /// The command exited non-zero or was killed, or it could not run at all.
    Failed(String),
    /// The account has none of the roles asked for.
    NoRole,
    /// The run was stopped (signal, closed stdout, rejected login) before it started.
    NotStarted,
}

/// An account's outcome, with what the summary needs to name it.
#[derive(Debug)]
pub struct AccountReport {
    pub account_id: String,
    pub account_name: String,
    pub outcome: Outcome,
}

/// Everything the summary shows; kept small (counts, and names only for failures and
/// skips) so memory stays flat in the number of accounts.
#[derive(Debug, Default)]
pub struct Tally {
    pub selected: usize,
    pub succeeded: usize,
    /// `(account, reason)`.
    pub failed: Vec<(String, String)>,
    pub no_role: Vec<String>,
    pub not_started: usize,
    /// The portal rejected the token mid-run: the user must log in again.
    pub login_rejected: bool,
    /// Why the account listing stopped early, after commands had started.
    pub listing_error: Option<String>,
    pub throttles: u64,
    pub portal_calls: u64,
}

impl Tally {
    pub fn record(&mut self, report: AccountReport) {
        let name = || format!("{} ({})", report.account_id, report.account_name);
        match report.outcome {
            Outcome::Succeeded => self.succeeded += 1,
            Outcome::Failed(reason) => self.failed.push((name(), reason)),
            Outcome::NoRole => self.no_role.push(name()),
            Outcome::NotStarted => self.not_started += 1,
        }
    }

    /// The exit code a CI job sees; see `exit_code.rs`.
    pub fn exit_code(&self, signal: Option<i32>) -> u8 {
        if let Some(signal) = signal {
            return if signal == libc::SIGINT { exit_code::INTERRUPTED } else { exit_code::TERMINATED };
        }
        if self.login_rejected {
            exit_code::NO_LOGIN
        } else if !self.failed.is_empty() || self.not_started > 0 || self.listing_error.is_some() {
            exit_code::ACCOUNT_FAILED
        } else if self.succeeded == 0 {
            exit_code::NOTHING_SELECTED
        } else {
            exit_code::SUCCESS
        }
    }

    /// The summary, one fact a line. `roles` names what skipped accounts lacked;
    /// `verbose` also lists the skipped accounts and portal figures.
    pub fn render(&self, roles: &[String], elapsed: Duration, dry_run: bool, verbose: bool) -> String {
        let mut text = format!(
            "fanout: {}{} selected: {} {}, {} failed, {} skipped (no role {}){} in {:.2}s\n",
            if dry_run { "dry run: " } else { "" },
            plural(self.selected, "account"),
            self.succeeded,
            if dry_run { "would run" } else { "succeeded" },
            self.failed.len(),
            self.no_role.len(),
            roles.join(" or "),
            if self.not_started > 0 { format!(", {} not started", self.not_started) } else { String::new() },
            elapsed.as_secs_f64(),
        );
        for (account, reason) in &self.failed {
            let _ = writeln!(text, "  failed  {account}: {reason}");
        }
        if let Some(error) = &self.listing_error {
            let _ = writeln!(text, "  the account listing stopped early: {error}");
        }
        if verbose {
            for account in &self.no_role {
                let _ = writeln!(text, "  skipped {account}: has no role {}", roles.join(" or "));
            }
            let _ = writeln!(
                text,
                "  portal: {}, {} throttled",
                plural(usize::try_from(self.portal_calls).unwrap_or(usize::MAX), "call"),
                self.throttles
            );
        }
        text
    }
}

/// `1 account`, `2 accounts`.
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: Outcome) -> AccountReport {
        AccountReport { account_id: "1".to_owned(), account_name: "a".to_owned(), outcome }
    }

    #[test]
    fn all_succeeded_is_zero() {
        let mut tally = Tally { selected: 2, ..Tally::default() };
        tally.record(report(Outcome::Succeeded));
        tally.record(report(Outcome::NoRole));
        assert_eq!(tally.exit_code(None), exit_code::SUCCESS);
    }

    #[test]
    fn any_failure_is_never_zero() {
        for bad in [Outcome::Failed("exit code 3".to_owned()), Outcome::NotStarted] {
            let mut tally = Tally::default();
            for _ in 0..5 {
                tally.record(report(Outcome::Succeeded));
            }
            tally.record(report(bad));
            assert_eq!(tally.exit_code(None), exit_code::ACCOUNT_FAILED);
        }
    }

    #[test]
    fn nothing_run_is_five_and_signals_and_logins_win() {
        let mut tally = Tally::default();
        tally.record(report(Outcome::NoRole));
        assert_eq!(tally.exit_code(None), exit_code::NOTHING_SELECTED);
        tally.login_rejected = true;
        assert_eq!(tally.exit_code(None), exit_code::NO_LOGIN);
        assert_eq!(tally.exit_code(Some(libc::SIGINT)), exit_code::INTERRUPTED);
        assert_eq!(tally.exit_code(Some(libc::SIGTERM)), exit_code::TERMINATED);
    }

    #[test]
    fn the_summary_names_failures() {
        let mut tally = Tally { selected: 2, ..Tally::default() };
        tally.record(report(Outcome::Succeeded));
        tally.record(report(Outcome::Failed("exit code 3".to_owned())));
        let text = tally.render(&["ReadOnly".to_owned()], Duration::from_millis(1500), false, false);
        assert_eq!(
            text,
            "fanout: 2 accounts selected: 1 succeeded, 1 failed, 0 skipped (no role ReadOnly) in 1.50s\n  failed  1 (a): exit code 3\n"
        );
    }
}
