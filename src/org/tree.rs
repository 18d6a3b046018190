//! The organization as Organizations lists it (`--org-role`): its roots and OUs, each
//! with its parent, and its accounts, each with the OU it sits in directly, its state and
//! its tags. The listing is kept in this raw shape (it is what the inventory cache
//! stores) and turned into [`OrgFacts`] here, checked value by value with the meta
//! file's own checks, whether it comes from the network or from the cache: whoever
//! administers the organization chose these names, and a cache file is no more trusted.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::meta_file::{self, Problem, is_account_id};
use super::{AccountFacts, AccountState, OrgFacts, Ou, is_ou_id};
use crate::text;

/// As many accounts as a portal listing may hold (`portal::MAX_ACCOUNTS`).
pub const MAX_ACCOUNTS: usize = 100_000;
/// Organizations allows at most 2,000 OUs; a listing past this loops or lies.
pub const MAX_OUS: usize = 5_000;

/// A root (`parent` `None`) or an OU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedOu {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
}

/// An account, in the OU (or root) `parent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedAccount {
    pub id: String,
    pub parent: String,
    /// Organizations' `State`: `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`, `CLOSED`.
    pub state: String,
    pub tags: Vec<(String, String)>,
}

/// The whole listing, parents before their children (the order of a breadth-first walk).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub ous: Vec<ListedOu>,
    pub accounts: Vec<ListedAccount>,
}

/// A value of the listing that cannot be used, with its fix.
#[derive(Debug, thiserror::Error)]
#[error("{what}; {fix}")]
pub struct ListedError {
    pub what: String,
    pub fix: String,
}

impl From<Problem> for ListedError {
    fn from(problem: Problem) -> Self {
        ListedError { what: problem.what, fix: problem.fix }
    }
}

fn refused(what: String, fix: &str) -> ListedError {
    ListedError { what, fix: fix.to_owned() }
}

/// The facts of every account `listed` holds, each value checked; `source` names the
/// organization in messages.
pub fn facts(listed: &Listed, source: String) -> Result<OrgFacts, ListedError> {
    const BUG: &str = "Organizations answered something it never sends; try again, or report it";
    if listed.ous.len() > MAX_OUS || listed.accounts.len() > MAX_ACCOUNTS {
        return Err(refused(format!("the organization lists more than {MAX_OUS} OUs or {MAX_ACCOUNTS} accounts"), BUG));
    }
    let mut paths: HashMap<&str, Vec<Ou>> = HashMap::new();
    for ou in &listed.ous {
        let path = ou_path(ou, &paths)?;
        if paths.insert(&ou.id, path).is_some() {
            return Err(refused(format!("the OU {} is listed twice", ou.id), BUG));
        }
    }
    let mut accounts = HashMap::with_capacity(listed.accounts.len());
    for account in &listed.accounts {
        if !is_account_id(&account.id) {
            return Err(refused(format!("the account id \"{}\" is not 12 digits", text::show(&account.id)), BUG));
        }
        let ous = paths.get(account.parent.as_str()).ok_or_else(|| {
            refused(
                format!("the account {} sits in {}, an OU not listed", account.id, text::show(&account.parent)),
                BUG,
            )
        })?;
        let state = AccountState::parse(&account.state).ok_or_else(|| {
            let what = format!("the account {} has the state \"{}\"", account.id, text::show(&account.state));
            refused(what, "fanout knows ACTIVE, SUSPENDED, PENDING_CLOSURE and CLOSED; update fanout")
        })?;
        let tags = meta_file::check_tags(None, account.tags.clone())?;
        let facts = AccountFacts { ous: ous.clone(), tags, state };
        if accounts.insert(account.id.clone(), Arc::new(facts)).is_some() {
            return Err(refused(format!("the account {} is listed twice", account.id), BUG));
        }
    }
    Ok(OrgFacts::new(accounts, source))
}

/// The path from the root down to `ou`, its parent's path already known.
fn ou_path(ou: &ListedOu, paths: &HashMap<&str, Vec<Ou>>) -> Result<Vec<Ou>, ListedError> {
    let fix = "Organizations answered something it never sends; try again, or report it";
    let is_root = ou.id.starts_with("r-");
    if !is_ou_id(&ou.id) || is_root != ou.parent.is_none() {
        return Err(refused(format!("the OU id \"{}\" is not one", text::show(&ou.id)), fix));
    }
    meta_file::check_ou_name(&ou.name)?;
    let mut path = match &ou.parent {
        None => Vec::new(),
        Some(parent) => paths
            .get(parent.as_str())
            .ok_or_else(|| refused(format!("the OU {} is under {}, an OU not listed", ou.id, text::show(parent)), fix))?
            .clone(),
    };
    path.push(Ou { name: ou.name.clone(), id: Some(ou.id.clone()) });
    meta_file::ensure_shallow(None, path.len())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::OuSelector;

    fn ou(id: &str, name: &str, parent: Option<&str>) -> ListedOu {
        ListedOu { id: id.into(), name: name.into(), parent: parent.map(Into::into) }
    }

    fn account(id: &str, parent: &str, state: &str, tags: &[(&str, &str)]) -> ListedAccount {
        let tags = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ListedAccount { id: id.into(), parent: parent.into(), state: state.into(), tags }
    }

    fn org() -> Listed {
        Listed {
            ous: vec![
                ou("r-ab12", "Root", None),
                ou("ou-ab12-11111111", "Workloads", Some("r-ab12")),
                ou("ou-ab12-22222222", "Prod", Some("ou-ab12-11111111")),
            ],
            accounts: vec![
                account("111111111111", "ou-ab12-22222222", "ACTIVE", &[("env", "prod")]),
                account("222222222222", "r-ab12", "SUSPENDED", &[]),
            ],
        }
    }

    #[test]
    fn each_account_gets_its_path_of_names_and_ids() {
        let facts = facts(&org(), "the organization".into()).unwrap();
        let prod = facts.get("111111111111").unwrap();
        assert_eq!(prod.ou_path(), "Root/Workloads/Prod");
        assert!(prod.is_within(&OuSelector::Id("ou-ab12-11111111".into())), "an OU with no account of its own");
        assert_eq!(prod.tags_text(), "env=prod");
        assert_eq!(facts.get("222222222222").unwrap().state, AccountState::Suspended);
        assert_eq!(facts.get("222222222222").unwrap().ou_path(), "Root");
    }

    /// One way to spoil a good listing.
    type Spoil = fn(&mut Listed);

    #[test]
    fn every_hostile_value_is_refused() {
        let cases: [(Spoil, &str); 13] = [
            (|l| l.ous[1].name = "Work\u{1b}[31m".into(), "control"),
            (|l| l.ous[1].name = "a/b".into(), "`/`"),
            (|l| l.ous[1].name = "x".repeat(129), "too long"),
            (|l| l.ous[1].id = "ou-NOPE".into(), "not one"),
            (|l| l.ous[0].parent = Some("r-ab12".into()), "not one"),
            (|l| l.ous[2].parent = Some("ou-ab12-99999999".into()), "not listed"),
            (|l| l.ous.push(ou("ou-ab12-11111111", "Again", Some("r-ab12"))), "twice"),
            (|l| l.accounts[0].id = "1234".into(), "12 digits"),
            (|l| l.accounts[0].parent = "ou-ab12-99999999".into(), "not listed"),
            (|l| l.accounts[0].state = "GONE".into(), "state"),
            (|l| l.accounts[0].tags.push(("env".into(), "x".into())), "twice"),
            (|l| l.accounts[0].tags.push(("k".into(), "\u{202e}".into())), "format"),
            (|l| l.accounts.push(l.accounts[0].clone()), "twice"),
        ];
        for (spoil, words) in cases {
            let mut listed = org();
            spoil(&mut listed);
            let error = facts(&listed, String::new()).unwrap_err().to_string();
            assert!(error.contains(words), "{words}: {error}");
        }
        let mut deep = org();
        for depth in 0..8 {
            let parent = deep.ous.last().unwrap().id.clone();
            deep.ous.push(ou(&format!("ou-ab12-3333333{depth}"), "D", Some(&parent)));
        }
        assert!(facts(&deep, String::new()).unwrap_err().to_string().contains("too deep"));
    }
}
