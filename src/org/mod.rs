//! What the organization says about each account: the OUs it sits in, its tags and its
//! state. These facts choose accounts (`--ou`, `--exclude-ou`, `--tag` in `select.rs`),
//! skip the suspended and closed ones, and travel with each account to its results, its
//! plan, its joblog line, the reports and its child (`FANOUT_OU_PATH`, `{ou_path}`).
//!
//! They come from one of two sources: a local file (`--accounts-meta`, [`meta_file`]), or
//! the organization itself, listed through a role (`--org-role`, the `organizations`
//! stage) into the raw shape of [`tree`], which checks it with the file's own checks.
//! The organization knows each OU's id and name from the root down, so [`AccountFacts`]
//! holds exactly that chain, and a source that knows less (the file knows an OU's id only
//! where some account sits in it directly) leaves ids out.
//!
//! Every value here is chosen by whoever administers the organization, so it is checked
//! once where it enters (no control or format characters, bounded lengths and counts)
//! and still escaped wherever it is printed.

pub mod meta_file;
pub mod tree;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

/// How AWS Organizations says an account stands. Only an active account is run: the
/// others cannot be signed in to, or soon will not be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccountState {
    #[default]
    Active,
    Suspended,
    PendingClosure,
    Closed,
}

impl AccountState {
    /// The names Organizations' `State` field uses.
    const NAMES: [(&'static str, AccountState); 4] = [
        ("ACTIVE", AccountState::Active),
        ("SUSPENDED", AccountState::Suspended),
        ("PENDING_CLOSURE", AccountState::PendingClosure),
        ("CLOSED", AccountState::Closed),
    ];

    /// Organizations' spelling, in any case (`suspended` is `SUSPENDED`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(text.trim())).map(|&(_, state)| state)
    }
}

/// One OU of an account's path: its name, and its id when the source knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ou {
    pub name: String,
    /// `ou-abcd-12345678` (or the root's `r-abcd`).
    pub id: Option<String>,
}

/// What the organization says about one account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountFacts {
    /// The OUs from the root (usually named `Root`) down to the one the account sits in
    /// directly; empty when the source does not say.
    pub ous: Vec<Ou>,
    /// Its tags, sorted by key.
    pub tags: BTreeMap<String, String>,
    pub state: AccountState,
}

/// The separator of an OU path's names, as the AWS console writes paths.
pub const OU_SEPARATOR: char = '/';

impl AccountFacts {
    /// `Root/Workloads/Prod`: what `FANOUT_OU_PATH`, `{ou_path}` and every record show.
    pub fn ou_path(&self) -> String {
        let names: Vec<&str> = self.ous.iter().map(|ou| ou.name.as_str()).collect();
        names.join(&OU_SEPARATOR.to_string())
    }

    /// Whether the account sits in the OU `selector` names, or in one under it.
    pub fn is_within(&self, selector: &OuSelector) -> bool {
        match selector {
            OuSelector::Id(id) => self.ous.iter().any(|ou| ou.id.as_ref() == Some(id)),
            OuSelector::Path(names) => {
                names.len() <= self.ous.len() && names.iter().zip(&self.ous).all(|(name, ou)| *name == ou.name)
            }
        }
    }

    /// The tags as `k=v;k2=v2`, the meta file's own spelling: the joblog's column.
    pub fn tags_text(&self) -> String {
        let pairs: Vec<String> = self.tags.iter().map(|(key, value)| format!("{key}={value}")).collect();
        pairs.join(";")
    }
}

/// What `--ou` and `--exclude-ou` name: an OU by its id, or by its path of names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OuSelector {
    Id(String),
    Path(Vec<String>),
}

impl OuSelector {
    /// An OU id (`ou-…`, or a root's `r-…`) when it reads as one, else a path of names
    /// separated by `/` (a trailing `/` ignored): `Root/Workloads/Prod`.
    pub fn parse(text: &str) -> Result<Self, OuSelectorError> {
        let text = text.trim();
        if is_ou_id(text) {
            return Ok(OuSelector::Id(text.to_owned()));
        }
        let names: Vec<String> =
            text.trim_end_matches(OU_SEPARATOR).split(OU_SEPARATOR).map(|name| name.trim().to_owned()).collect();
        if names.iter().any(String::is_empty) {
            return Err(OuSelectorError(text.to_owned()));
        }
        Ok(OuSelector::Path(names))
    }
}

impl fmt::Display for OuSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OuSelector::Id(id) => f.write_str(id),
            OuSelector::Path(names) => f.write_str(&names.join(&OU_SEPARATOR.to_string())),
        }
    }
}

/// `--org-role ACCOUNT:ROLE`: the role, reached through the SSO login like any other,
/// that may read the organization (in its management account or a delegated
/// administrator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgRole {
    pub account_id: String,
    pub role: String,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid --org-role {0:?}: give the 12-digit account id and the role's name, e.g. --org-role 111122223333:OrganizationsReadOnly"
)]
pub struct OrgRoleError(String);

/// IAM's role name characters (`[\w+=,.@-]`, 1-64), so the name is safe in every message.
fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_".contains(&b))
}

impl OrgRole {
    pub fn parse(text: &str) -> Result<Self, OrgRoleError> {
        let error = || OrgRoleError(text.to_owned());
        let (account_id, role) = text.trim().split_once(':').ok_or_else(error)?;
        if !meta_file::is_account_id(account_id) || !is_role_name(role) {
            return Err(error());
        }
        Ok(OrgRole { account_id: account_id.to_owned(), role: role.to_owned() })
    }
}

impl fmt::Display for OrgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.account_id, self.role)
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid OU {0:?}: give an OU id (ou-abcd-12345678) or a path of OU names from the root, e.g. --ou Root/Workloads/Prod"
)]
pub struct OuSelectorError(String);

/// Organizations' OU id pattern, `ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}`, or a root's,
/// `r-[0-9a-z]{4,32}`.
pub fn is_ou_id(text: &str) -> bool {
    let part = |s: &str, min: usize| {
        (min..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    if let Some(rest) = text.strip_prefix("ou-") {
        return rest.split_once('-').is_some_and(|(root, ou)| part(root, 4) && part(ou, 8));
    }
    text.strip_prefix("r-").is_some_and(|root| part(root, 4))
}

/// The facts of every account a source knows, by account id. An account it does not
/// know has no facts: an `--ou` or `--tag` never selects it, and it is not skipped.
#[derive(Debug, Default)]
pub struct OrgFacts {
    accounts: HashMap<String, Arc<AccountFacts>>,
    /// Where the facts came from (the file's path), for the messages that name it.
    pub source: String,
}

impl OrgFacts {
    pub fn new(accounts: HashMap<String, Arc<AccountFacts>>, source: String) -> Self {
        OrgFacts { accounts, source }
    }

    pub fn get(&self, account_id: &str) -> Option<&Arc<AccountFacts>> {
        self.accounts.get(account_id)
    }

    /// Every account the source knows, by id, in no order: the organization's side of
    /// coverage, which names the accounts in scope that no portal listed.
    pub fn accounts(&self) -> impl Iterator<Item = (&str, &AccountFacts)> {
        self.accounts.iter().map(|(id, facts)| (id.as_str(), facts.as_ref()))
    }

    /// Whether any account sits in the OU `selector` names: a selector that names none is
    /// a typo (or an OU whose id the source does not know) the user must hear of.
    pub fn knows(&self, selector: &OuSelector) -> bool {
        self.accounts.values().any(|facts| facts.is_within(selector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(path: &[(&str, Option<&str>)]) -> AccountFacts {
        let ous = path.iter().map(|(name, id)| Ou { name: (*name).to_owned(), id: id.map(str::to_owned) }).collect();
        AccountFacts { ous, ..AccountFacts::default() }
    }

    #[test]
    fn an_ou_holds_the_accounts_under_it_by_path_or_id() {
        let prod = facts(&[("Root", None), ("Workloads", Some("ou-ab12-11111111")), ("Prod", None)]);
        let within = |text: &str| prod.is_within(&OuSelector::parse(text).unwrap());
        assert!(within("Root"));
        assert!(within("Root/Workloads/"));
        assert!(within("Root/Workloads/Prod"));
        assert!(within("ou-ab12-11111111"));
        assert!(!within("Root/Workloads/Prod/Deeper"));
        assert!(!within("Root/Work"), "whole names, not prefixes");
        assert!(!within("Workloads"), "paths start at the root");
        assert!(!within("root/workloads"), "OU names are case-sensitive");
        assert!(!within("ou-ab12-22222222"));
        assert_eq!(prod.ou_path(), "Root/Workloads/Prod");
    }

    #[test]
    fn selectors_are_checked() {
        assert_eq!(OuSelector::parse("ou-ab12-12345678").unwrap(), OuSelector::Id("ou-ab12-12345678".into()));
        assert_eq!(OuSelector::parse("r-ab12").unwrap(), OuSelector::Id("r-ab12".into()));
        assert!(matches!(OuSelector::parse("ou-AB12-12345678").unwrap(), OuSelector::Path(_)));
        for bad in ["", "/", "Root//Prod", "/Root"] {
            assert!(OuSelector::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_org_role_is_an_account_and_a_role_name() {
        let role = OrgRole::parse("111122223333:OrgReader").unwrap();
        assert_eq!((role.account_id.as_str(), role.role.as_str()), ("111122223333", "OrgReader"));
        assert_eq!(role.to_string(), "111122223333:OrgReader");
        for bad in ["111122223333", "1111:Role", "111122223333:", "111122223333:a b", ":Role"] {
            assert!(OrgRole::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn states_read_as_organizations_writes_them() {
        assert_eq!(AccountState::parse("PENDING_CLOSURE"), Some(AccountState::PendingClosure));
        assert_eq!(AccountState::parse("suspended"), Some(AccountState::Suspended));
        assert_eq!(AccountState::parse("gone"), None);
    }
}
