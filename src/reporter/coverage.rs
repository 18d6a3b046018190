//! Coverage: of the accounts the organization lists that the filters draw in (the
//! scope), how many the run reached, and why each other one was not, so an audit never
//! covers fewer accounts than the organization has without saying so (c7n-org#2656:
//! denied accounts hidden behind exit 0).
//!
//! Only with organization facts (`--org-role`, `--accounts-meta`): without them nothing
//! says which accounts should have been reached. An account is *reached* when its command
//! ran there, whatever it then did (a failed, killed, timed-out or interrupted command
//! still ran in the account); it is not reached when the run never got a command into
//! it. Memory is one entry for each account in scope, which the facts already hold.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::org::AccountState;
use crate::outcome::{FailureClass, Outcome};
use crate::select::Selection;
use crate::text;

/// Why an account in scope was not reached, in the order the summary counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unreached {
    /// The organization lists it, and no login's portal did.
    NotInPortal,
    /// The portal's listing ended early (an error, a stop) before it could be seen.
    NotListed,
    Suspended,
    PendingClosure,
    Closed,
    /// The portal lists it, but without any of the roles asked for.
    NoRole,
    /// The portal refused credentials for the role it lists.
    Denied,
    NoCredentials,
    Throttled,
    Login,
    /// Its command could not be started.
    Spawn,
    /// The run was stopped or halted before it started.
    NotStarted,
}

impl Unreached {
    /// How `outcome` left its account: `None` when its command ran there.
    fn of(outcome: &Outcome) -> Option<Self> {
        match outcome {
            Outcome::Succeeded | Outcome::Interrupted(_) => None,
            Outcome::NoRole { .. } => Some(Unreached::NoRole),
            Outcome::NotStarted => Some(Unreached::NotStarted),
            Outcome::Failed { class, .. } => match class {
                FailureClass::Exit | FailureClass::Signal | FailureClass::Timeout => None,
                FailureClass::Denied => Some(Unreached::Denied),
                FailureClass::NoCredentials => Some(Unreached::NoCredentials),
                FailureClass::Throttled => Some(Unreached::Throttled),
                FailureClass::Login => Some(Unreached::Login),
                FailureClass::Spawn => Some(Unreached::Spawn),
            },
        }
    }

    /// An inactive state as a reason; `None` for an active account.
    fn of_state(state: AccountState) -> Option<Self> {
        match state {
            AccountState::Active => None,
            AccountState::Suspended => Some(Unreached::Suspended),
            AccountState::PendingClosure => Some(Unreached::PendingClosure),
            AccountState::Closed => Some(Unreached::Closed),
        }
    }

    /// The reason in a word, as the JSON `summary` record gives it.
    pub fn word(self) -> &'static str {
        match self {
            Unreached::NotInPortal => "not-in-portal",
            Unreached::NotListed => "not-listed",
            Unreached::Suspended => "suspended",
            Unreached::PendingClosure => "pending-closure",
            Unreached::Closed => "closed",
            Unreached::NoRole => "no-role",
            Unreached::Denied => "denied",
            Unreached::NoCredentials => "no-credentials",
            Unreached::Throttled => "throttled",
            Unreached::Login => "login",
            Unreached::Spawn => "spawn",
            Unreached::NotStarted => "not-started",
        }
    }

    /// The reason in words, for the summary; `roles` are those asked for.
    fn phrase(self, roles: &[String]) -> String {
        match self {
            Unreached::NotInPortal => "not in the portal".to_owned(),
            Unreached::NotListed => "not listed (the listing ended early)".to_owned(),
            Unreached::PendingClosure => "pending closure".to_owned(),
            Unreached::NoRole => format!("no role {}", roles.join(" or ")),
            Unreached::NoCredentials => "no credentials".to_owned(),
            Unreached::Login => "login rejected".to_owned(),
            Unreached::Spawn => "command could not start".to_owned(),
            Unreached::NotStarted => "not started".to_owned(),
            other => other.word().to_owned(),
        }
    }
}

/// Where one account the organization lists stands.
#[derive(Debug)]
enum Reach {
    /// A portal listed it, and the filters leave it out (by its name, which only the
    /// portal gives): remembered so it is not taken for an account no portal listed.
    OutOfScope,
    /// Listed by the portal, no ending yet.
    Listed,
    Reached,
    /// With its name when the portal gave one.
    NotReached(Unreached, Option<String>),
}

/// The accounts the organization lists that a portal listed or that are in scope, by
/// id, and how far the run got into each.
#[derive(Debug, Default)]
pub struct Coverage {
    accounts: HashMap<String, Reach>,
    /// `--require-all`: an account in scope not reached fails the run.
    pub required: bool,
}

impl Coverage {
    pub fn new(required: bool) -> Self {
        Coverage { accounts: HashMap::new(), required }
    }

    /// A portal listed `account_id`, which the organization lists too; `in_scope` says
    /// whether the filters draw it in. The first listing decides.
    pub fn listed(&mut self, account_id: &str, in_scope: bool) {
        let reach = if in_scope { Reach::Listed } else { Reach::OutOfScope };
        self.accounts.entry(account_id.to_owned()).or_insert(reach);
    }

    /// One (account, region) of an account in scope ended. With `--regions` an account
    /// is reached only if every region's command ran: the first region that did not
    /// reach it decides its reason.
    pub fn ended(&mut self, account_id: &str, account_name: &str, outcome: &Outcome) {
        let Some(reach) = self.accounts.get_mut(account_id) else { return };
        match (Unreached::of(outcome), &reach) {
            (_, Reach::NotReached(..) | Reach::OutOfScope) => {}
            (None, _) => *reach = Reach::Reached,
            (Some(why), _) => *reach = Reach::NotReached(why, Some(account_name.to_owned())),
        }
    }

    /// Adds the accounts in scope no portal listed, and gives each inactive account its
    /// state as its reason; an account listed that never ended was never started.
    /// `listing_complete` says whether an unlisted account is truly not in the portal.
    pub fn finish(&mut self, selection: &Selection, listing_complete: bool) {
        let Some(facts) = &selection.org.facts else { return };
        for (id, account) in facts.accounts() {
            let inactive = Unreached::of_state(account.state);
            match self.accounts.get_mut(id) {
                Some(Reach::OutOfScope) => {}
                Some(reach) => {
                    if let Some(why) = inactive {
                        *reach = Reach::NotReached(why, None);
                    } else if matches!(reach, Reach::Listed) {
                        *reach = Reach::NotReached(Unreached::NotStarted, None);
                    }
                }
                None if selection.in_scope_unlisted(id, account) => {
                    let unlisted = if listing_complete { Unreached::NotInPortal } else { Unreached::NotListed };
                    self.accounts.insert(id.to_owned(), Reach::NotReached(inactive.unwrap_or(unlisted), None));
                }
                None => {}
            }
        }
    }

    pub fn in_scope(&self) -> usize {
        self.accounts.values().filter(|reach| !matches!(reach, Reach::OutOfScope)).count()
    }

    pub fn reached(&self) -> usize {
        self.accounts.values().filter(|reach| matches!(reach, Reach::Reached)).count()
    }

    /// The accounts not reached, sorted by id: `(id, why, name when known)`.
    pub fn not_reached(&self) -> impl Iterator<Item = (&str, Unreached, Option<&str>)> {
        let mut missed: Vec<_> = self
            .accounts
            .iter()
            .filter_map(|(id, reach)| match reach {
                Reach::NotReached(why, name) => Some((id.as_str(), *why, name.as_deref())),
                Reach::OutOfScope | Reach::Listed | Reach::Reached => None,
            })
            .collect();
        missed.sort_unstable_by_key(|(id, ..)| *id);
        missed.into_iter()
    }

    /// `coverage: 40 of 43 accounts in scope reached; not reached: 3 (1 not in the
    /// portal, 2 suspended)`, without a newline.
    pub fn line(&self, roles: &[String], dry_run: bool) -> String {
        let (reached, not) = if dry_run { ("would be reached", "would not be") } else { ("reached", "not reached") };
        let mut line = format!(
            "coverage: {}{} of {} in scope {reached}",
            if dry_run { "dry run: " } else { "" },
            self.reached(),
            text::plural(self.in_scope(), "account")
        );
        let mut counts: BTreeMap<Unreached, usize> = BTreeMap::new();
        for (_, why, _) in self.not_reached() {
            *counts.entry(why).or_default() += 1;
        }
        if !counts.is_empty() {
            let parts: Vec<String> = counts.iter().map(|(why, n)| format!("{n} {}", why.phrase(roles))).collect();
            let _ = write!(line, "; {not}: {} ({})", self.in_scope() - self.reached(), parts.join(", "));
        }
        line
    }

    /// Each account not reached, `111111111111 (name): not in the portal`, names escaped.
    pub fn named(&self, roles: &[String]) -> Vec<String> {
        self.not_reached()
            .map(|(id, why, name)| match name {
                Some(name) => format!("{id} ({}): {}", text::show(name), why.phrase(roles)),
                None => format!("{id}: {}", why.phrase(roles)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(class: FailureClass) -> Outcome {
        Outcome::Failed { class, reason: String::new() }
    }

    #[test]
    fn a_command_that_ran_reached_its_account_whatever_it_did() {
        for ran in [Outcome::Succeeded, Outcome::Interrupted("x".into()), failed(FailureClass::Exit)] {
            assert_eq!(Unreached::of(&ran), None, "{ran:?}");
        }
        assert_eq!(Unreached::of(&failed(FailureClass::Timeout)), None);
        assert_eq!(Unreached::of(&failed(FailureClass::Denied)), Some(Unreached::Denied));
        assert_eq!(Unreached::of(&Outcome::NoRole { reason: None }), Some(Unreached::NoRole));
        assert_eq!(Unreached::of(&Outcome::NotStarted), Some(Unreached::NotStarted));
    }

    #[test]
    fn the_first_region_not_reached_decides_and_names_are_escaped() {
        let mut coverage = Coverage::new(false);
        for id in ["111111111111", "222222222222", "333333333333"] {
            coverage.listed(id, true);
        }
        coverage.listed("555555555555", false);
        coverage.ended("555555555555", "out of scope", &Outcome::NotStarted);
        coverage.ended("111111111111", "a", &Outcome::Succeeded);
        coverage.ended("222222222222", "b\n  forged", &failed(FailureClass::Denied));
        coverage.ended("222222222222", "b", &Outcome::Succeeded);
        coverage.ended("333333333333", "c", &Outcome::NoRole { reason: None });
        coverage.ended("444444444444", "not in scope", &Outcome::NotStarted);
        let roles = ["ReadOnly".to_owned()];
        assert_eq!((coverage.in_scope(), coverage.reached()), (3, 1));
        assert_eq!(
            coverage.line(&roles, false),
            "coverage: 1 of 3 accounts in scope reached; not reached: 2 (1 no role ReadOnly, 1 denied)"
        );
        assert_eq!(
            coverage.named(&roles),
            ["222222222222 (b\\n  forged): denied", "333333333333 (c): no role ReadOnly"]
        );
        assert_eq!(
            coverage.line(&roles, true),
            "coverage: dry run: 1 of 3 accounts in scope would be reached; would not be: 2 (1 no role ReadOnly, 1 denied)"
        );
    }
}
