//! Stage 2b: which accounts to reach and which role to use in each.
//!
//! Everything here is pure: filters are parsed once in `config/`, then applied to each
//! account as its page arrives, before any role is listed, so that unselected accounts
//! cost no portal call.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use glob::{MatchOptions, Pattern};

use crate::org::{AccountFacts, AccountState, OrgFacts, OuSelector};
use crate::portal::Account;
use crate::portal::validate::is_account_id;

const MATCH_OPTIONS: MatchOptions =
    MatchOptions { case_sensitive: false, require_literal_separator: false, require_literal_leading_dot: false };

/// The account filters from `--match`, `--exclude`, `--accounts` and `--accounts-file`.
#[derive(Debug, Default)]
pub struct Selection {
    /// Any must match an account's name, id or email; empty selects every account.
    pub matches: Vec<Pattern>,
    /// None may match.
    pub excludes: Vec<Pattern>,
    /// Ids or names, exactly; `None` when neither `--accounts` nor `--accounts-file` was given.
    pub listed: Option<AccountList>,
    /// `--shard I/N`; `None` keeps every account.
    pub shard: Option<Shard>,
    /// Account ids to leave out: those a `--resume`d joblog shows as done.
    pub done: HashSet<String>,
    /// Only these account ids, when `--retry-failed` names them.
    pub retry: Option<HashSet<String>>,
    /// `--ou`, `--exclude-ou`, `--tag`, and the facts they read (`--accounts-meta`).
    pub org: OrgSelection,
}

/// The selection by what the organization says of an account. An account the facts do
/// not know is in no OU and has no tags: `--ou` and `--tag` never select it, and
/// `--exclude-ou` never leaves it out.
#[derive(Debug, Default)]
pub struct OrgSelection {
    /// `--accounts-meta`'s facts, or the organization's (`--org-role`, attached once it
    /// is listed, before the portal's listing); `None` when no source was given (then the
    /// lists below are empty: `config/` refuses them without one).
    pub facts: Option<Arc<OrgFacts>>,
    /// Any must hold the account (it sits in that OU or one under it); empty selects
    /// every account.
    pub ous: Vec<OuSelector>,
    /// None may hold it.
    pub exclude_ous: Vec<OuSelector>,
    /// All must match.
    pub tags: Vec<TagFilter>,
}

/// Tags are case-sensitive in AWS (`env=Prod` is not `env=prod`), so their globs are too,
/// unlike `--match`'s.
const TAG_MATCH_OPTIONS: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: false, require_literal_leading_dot: false };

/// One `--tag`: `KEY=GLOB` (the account has the tag, its value matching), or `KEY` alone
/// (the account has the tag, whatever its value).
#[derive(Debug)]
pub struct TagFilter {
    key: String,
    value: Option<Pattern>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid --tag {0:?}: write KEY=VALUE (VALUE may be a glob: env=prod*) or KEY alone for any value")]
pub struct TagFilterError(String);

impl TagFilter {
    /// The first `=` ends the key, as in the meta file; the key is exact, the value a glob.
    pub fn parse(text: &str) -> Result<Self, TagFilterError> {
        let error = || TagFilterError(text.to_owned());
        let (key, value) = match text.split_once('=') {
            Some((key, value)) => (key.trim(), Some(Pattern::new(value.trim()).map_err(|_| error())?)),
            None => (text.trim(), None),
        };
        if key.is_empty() {
            return Err(error());
        }
        Ok(TagFilter { key: key.to_owned(), value })
    }

    fn matches(&self, facts: &AccountFacts) -> bool {
        facts
            .tags
            .get(&self.key)
            .is_some_and(|value| self.value.as_ref().is_none_or(|p| p.matches_with(value, TAG_MATCH_OPTIONS)))
    }
}

impl OrgSelection {
    /// Whether the OU and tag filters choose an account with these facts.
    fn selects(&self, facts: Option<&AccountFacts>) -> bool {
        let within = |selector: &OuSelector| facts.is_some_and(|f| f.is_within(selector));
        (self.ous.is_empty() || self.ous.iter().any(within))
            && !self.exclude_ous.iter().any(within)
            && self.tags.iter().all(|tag| facts.is_some_and(|f| tag.matches(f)))
    }

    fn facts_of(&self, account_id: &str) -> Option<&Arc<AccountFacts>> {
        self.facts.as_ref().and_then(|facts| facts.get(account_id))
    }

    /// An `--ou` or `--exclude-ou` no account of the facts is in: a typo that would
    /// quietly select nothing (or exclude nothing). `None` without facts.
    pub fn unknown_ou(&self) -> Option<&OuSelector> {
        let facts = self.facts.as_ref()?;
        self.ous.iter().chain(&self.exclude_ous).find(|ou| !facts.knows(ou))
    }
}

/// One of N disjoint slices of the accounts, by a hash of the account id.
///
/// Each account's shard depends on its own id alone (sha1, stable across versions and
/// machines), so adding an account moves only that account, and N workers that each run
/// one shard together reach every account exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based, as in `--shard 1/4`.
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid --shard {0:?}: expected I/N with 1 <= I <= N, e.g. --shard 1/4")]
pub struct ShardError(String);

impl Shard {
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let error = || ShardError(text.to_owned());
        let (index, count) = text.split_once('/').ok_or_else(error)?;
        let index: u32 = index.trim().parse().map_err(|_| error())?;
        let count: u32 = count.trim().parse().map_err(|_| error())?;
        if index == 0 || index > count {
            return Err(error());
        }
        Ok(Shard { index, count })
    }

    pub fn contains(self, account_id: &str) -> bool {
        use sha1::{Digest, Sha1};
        let digest = Sha1::digest(account_id.as_bytes());
        let hash = u64::from_be_bytes(digest[..8].try_into().expect("sha1 has 20 bytes"));
        hash % u64::from(self.count) == u64::from(self.index - 1)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid glob {glob:?}: {source}")]
pub struct GlobError {
    glob: String,
    #[source]
    source: glob::PatternError,
}

/// Parses one `--match`/`--exclude` glob.
pub fn parse_glob(glob: &str) -> Result<Pattern, GlobError> {
    Pattern::new(glob).map_err(|source| GlobError { glob: glob.to_owned(), source })
}

/// How an entry says it is a name, even one of 12 digits: `name:111111111111`.
pub const NAME_PREFIX: &str = "name:";
/// How an entry says it is an id (the default for 12 digits; accepted for symmetry).
pub const ID_PREFIX: &str = "id:";

/// One entry of `--accounts`, `--accounts-file` or `--canary-accounts`, resolved here
/// once for every flag. Twelve digits are an account id and match ids only: a name is
/// chosen by each account's own administrator, so an account renamed `111111111111`
/// must not be selected by the id of another (issue 16, point 1). A name made of 12
/// digits is still reachable as `name:111111111111`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AccountRef {
    Id(String),
    Name(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AccountRefError {
    #[error("invalid account {0:?}: `id:` takes a 12-digit account id, e.g. id:111122223333")]
    NotAnId(String),
    #[error("invalid account {0:?}: `name:` takes an account name, e.g. name:111122223333")]
    NoName(String),
}

impl AccountRef {
    /// `id:ID`, `name:NAME`, else an id if it is 12 digits and a name if not; the entry
    /// and what follows a prefix are trimmed.
    pub fn parse(entry: &str) -> Result<Self, AccountRefError> {
        let entry = entry.trim();
        if let Some(id) = entry.strip_prefix(ID_PREFIX) {
            let id = id.trim();
            return if is_account_id(id) {
                Ok(AccountRef::Id(id.to_owned()))
            } else {
                Err(AccountRefError::NotAnId(entry.to_owned()))
            };
        }
        if let Some(name) = entry.strip_prefix(NAME_PREFIX) {
            let name = name.trim();
            return if name.is_empty() {
                Err(AccountRefError::NoName(entry.to_owned()))
            } else {
                Ok(AccountRef::Name(name.to_owned()))
            };
        }
        Ok(if is_account_id(entry) { AccountRef::Id(entry.to_owned()) } else { AccountRef::Name(entry.to_owned()) })
    }
}

/// The entry as the user would write it again: a name that would read as an id or a
/// prefix keeps `name:`.
impl fmt::Display for AccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountRef::Id(id) => f.write_str(id),
            AccountRef::Name(name)
                if is_account_id(name) || name.starts_with(ID_PREFIX) || name.starts_with(NAME_PREFIX) =>
            {
                write!(f, "{NAME_PREFIX}{name}")
            }
            AccountRef::Name(name) => f.write_str(name),
        }
    }
}

/// Accounts named by id or name: what `--accounts`, `--accounts-file` and
/// `--canary-accounts` give, and what a run has seen of them. The one place an entry
/// is matched against an account, so every flag treats an id as an id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountList {
    ids: HashSet<String>,
    names: HashSet<String>,
}

impl AccountList {
    /// The entries parsed; blank ones are skipped.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, AccountRefError> {
        let mut list = AccountList::default();
        for entry in entries.into_iter().filter(|entry| !entry.trim().is_empty()) {
            list.insert(AccountRef::parse(entry)?);
        }
        Ok(list)
    }

    /// These account ids and nothing else (a saved plan's).
    pub fn of_ids(ids: impl IntoIterator<Item = String>) -> Self {
        AccountList { ids: ids.into_iter().collect(), names: HashSet::new() }
    }

    pub fn insert(&mut self, entry: AccountRef) {
        match entry {
            AccountRef::Id(id) => self.ids.insert(id),
            AccountRef::Name(name) => self.names.insert(name),
        };
    }

    /// Adds `other`'s entries.
    pub fn extend(&mut self, other: AccountList) {
        self.ids.extend(other.ids);
        self.names.extend(other.names);
    }

    /// Remembers `account` by its id and its name, for [`AccountList::unmatched`].
    pub fn note(&mut self, account: &Account) {
        self.ids.insert(account.id.clone());
        self.names.insert(account.name.clone());
    }

    /// Whether an entry names `account`: an id entry its id, a name entry its name.
    pub fn contains(&self, account: &Account) -> bool {
        self.ids.contains(&account.id) || self.names.contains(&account.name)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.names.is_empty()
    }

    /// Whether some entry is a name (which may name several accounts).
    pub fn has_names(&self) -> bool {
        !self.names.is_empty()
    }

    /// The entries `seen` (ids and names noted) has none of, as written, sorted.
    pub fn unmatched(&self, seen: &AccountList) -> Vec<String> {
        let ids = self.ids.difference(&seen.ids).map(|id| AccountRef::Id(id.clone()));
        let names = self.names.difference(&seen.names).map(|name| AccountRef::Name(name.clone()));
        let mut missing: Vec<String> = ids.chain(names).map(|entry| entry.to_string()).collect();
        missing.sort_unstable();
        missing
    }
}

/// The ids or names in an accounts file: one a line, blank lines and `#` comments skipped.
pub fn parse_account_list(text: &str) -> Result<AccountList, AccountRefError> {
    AccountList::parse(text.lines().map(|line| line.split_once('#').map_or(line, |(before, _)| before)))
}

impl Selection {
    /// Whether `account` runs: the filters choose it and the organization does not list
    /// it as suspended or closed.
    pub fn selects(&self, account: &Account) -> bool {
        self.filters_choose(account) && self.state_of(account) == AccountState::Active
    }

    /// Whether the filters choose `account` but the organization lists it as suspended,
    /// closing or closed: it is skipped, and counted as such.
    pub fn skips_as_inactive(&self, account: &Account) -> bool {
        self.filters_choose(account) && self.state_of(account) != AccountState::Active
    }

    fn state_of(&self, account: &Account) -> AccountState {
        self.org.facts_of(&account.id).map_or(AccountState::Active, |facts| facts.state)
    }

    fn filters_choose(&self, account: &Account) -> bool {
        let fields = [&account.name, &account.id, &account.email];
        let hit = |p: &Pattern| fields.iter().any(|f| p.matches_with(f, MATCH_OPTIONS));
        (self.matches.is_empty() || self.matches.iter().any(hit))
            && !self.excludes.iter().any(hit)
            && self.listed.as_ref().is_none_or(|listed| listed.contains(account))
            && self.shard.is_none_or(|shard| shard.contains(&account.id))
            && !self.done.contains(&account.id)
            && self.retry.as_ref().is_none_or(|ids| ids.contains(&account.id))
            && self.org.selects(self.org.facts_of(&account.id).map(Arc::as_ref))
    }

    /// Whether coverage counts `account`, which a portal listed, as in scope: the filters
    /// choose it, whatever its state (a suspended account in scope is named as not
    /// reached). `None` when the organization does not list it: it is outside the scope,
    /// and coverage need not remember it.
    pub fn in_scope(&self, account: &Account) -> Option<bool> {
        self.org.facts_of(&account.id).map(|_| self.filters_choose(account))
    }

    /// Whether coverage counts an account the organization lists but no portal did as in
    /// scope, judged on its id and facts alone (the organization gives no name or email).
    /// A filter that reads the name cannot rule it out, so it counts in: over-reporting
    /// an account as not reached is safer than an audit silently covering less. So
    /// `--match` is not applied, an `--exclude` glob leaves it out only when it matches
    /// the id, and `--accounts` keeps it out only when every entry is an id.
    pub fn in_scope_unlisted(&self, account_id: &str, facts: &AccountFacts) -> bool {
        !self.excludes.iter().any(|p| p.matches_with(account_id, MATCH_OPTIONS))
            && self.listed.as_ref().is_none_or(|listed| listed.ids.contains(account_id) || listed.has_names())
            && self.shard.is_none_or(|shard| shard.contains(account_id))
            && !self.done.contains(account_id)
            && self.retry.as_ref().is_none_or(|ids| ids.contains(account_id))
            && self.org.selects(Some(facts))
    }

    /// `account` with the facts the organization gives it, to travel with it to its
    /// results, plan, joblog line, reports and child.
    pub fn with_facts(&self, account: Account) -> Account {
        let org = self.org.facts_of(&account.id).cloned();
        Account { org, ..account }
    }

    /// Whether `--accounts`/`--accounts-file` name some account by name rather than id.
    pub fn names_listed(&self) -> bool {
        self.listed.as_ref().is_some_and(AccountList::has_names)
    }

    /// A listed name that more than one of `selected` bears, with their ids, sorted.
    /// Only name entries count: an id entry never matches a name.
    pub fn ambiguous_name<'a>(&self, selected: impl Iterator<Item = &'a Account>) -> Option<(String, Vec<String>)> {
        let listed = self.listed.as_ref()?;
        let mut ids_by_name: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
        for account in selected.filter(|a| listed.names.contains(&a.name)) {
            ids_by_name.entry(&account.name).or_default().push(account.id.clone());
        }
        ids_by_name.into_iter().find(|(_, ids)| ids.len() > 1).map(|(name, mut ids)| {
            ids.sort();
            (name.to_owned(), ids)
        })
    }

    /// Entries of `--accounts`/`--accounts-file` that named none of the accounts `seen`
    /// (the selected ones, noted), so the user hears of a typo or a lost account.
    pub fn unmatched_entries(&self, seen: &AccountList) -> Vec<String> {
        self.listed.as_ref().map(|listed| listed.unmatched(seen)).unwrap_or_default()
    }
}

/// The roles to try, in the user's order: those of `wanted` the account has when its
/// roles are known, else all of `wanted` (the portal will say which it has).
pub fn candidate_roles<'a>(wanted: &'a [String], available: Option<&[String]>) -> Vec<&'a str> {
    wanted.iter().filter(|w| available.is_none_or(|a| a.contains(w))).map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, name: &str) -> Account {
        Account { id: id.to_owned(), name: name.to_owned(), email: format!("{name}@corp.example"), login: 0, org: None }
    }

    fn globs(list: &[&str]) -> Vec<Pattern> {
        list.iter().map(|g| parse_glob(g).unwrap()).collect()
    }

    #[test]
    fn match_looks_at_name_id_and_email_without_case() {
        let selection = Selection { matches: globs(&["*-DEV"]), ..Selection::default() };
        assert!(selection.selects(&account("1", "payments-dev")));
        assert!(!selection.selects(&account("2", "payments-prod")));
        let by_id = Selection { matches: globs(&["1234*"]), ..Selection::default() };
        assert!(by_id.selects(&account("123456789012", "x")));
        let by_email = Selection { matches: globs(&["*@corp.example"]), ..Selection::default() };
        assert!(by_email.selects(&account("1", "x")));
    }

    #[test]
    fn exclude_wins_over_match() {
        let selection = Selection { matches: globs(&["*"]), excludes: globs(&["*prod*"]), ..Selection::default() };
        assert!(!selection.selects(&account("1", "payments-prod")));
        assert!(selection.selects(&account("2", "payments-dev")));
    }

    fn listed(entries: &[&str]) -> Selection {
        Selection { listed: Some(AccountList::parse(entries.iter().copied()).unwrap()), ..Selection::default() }
    }

    #[test]
    fn listed_accounts_match_by_id_or_name_and_report_the_unknown() {
        let list = parse_account_list("# ids\n111111111111 # first\n\n  beta  \nghost\n333333333333\n").unwrap();
        let selection = Selection { listed: Some(list), ..Selection::default() };
        let accounts =
            [account("111111111111", "alpha"), account("222222222222", "beta"), account("444444444444", "gamma")];
        let chosen: Vec<_> = accounts.iter().filter(|a| selection.selects(a)).collect();
        assert_eq!(chosen.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["111111111111", "222222222222"]);
        let mut seen = AccountList::default();
        for a in &chosen {
            seen.note(a);
        }
        assert_eq!(selection.unmatched_entries(&seen), ["333333333333", "ghost"]);
    }

    #[test]
    fn twelve_digits_match_an_id_only_and_name_prefix_matches_a_name() {
        // Issue 16, point 1: an account renamed to another's id.
        let accounts = [account("111111111111", "real"), account("222222222222", "111111111111")];
        let chosen = |selection: &Selection| {
            accounts.iter().filter(|a| selection.selects(a)).map(|a| a.id.as_str()).collect::<Vec<_>>()
        };
        assert_eq!(chosen(&listed(&["111111111111"])), ["111111111111"]);
        assert_eq!(chosen(&listed(&["id:111111111111"])), ["111111111111"]);
        assert_eq!(chosen(&listed(&["name:111111111111"])), ["222222222222"]);
        assert_eq!(chosen(&listed(&[" name: real "])), ["111111111111"]);
        assert!(!listed(&["111111111111"]).names_listed());
        assert!(listed(&["name:111111111111"]).names_listed());
        let nothing_seen = AccountList::default();
        assert_eq!(listed(&["name:111111111111"]).unmatched_entries(&nothing_seen), ["name:111111111111"]);
        assert_eq!(listed(&["name:id:x", "plain"]).unmatched_entries(&nothing_seen), ["name:id:x", "plain"]);
    }

    #[test]
    fn a_bad_prefixed_entry_is_an_error() {
        for bad in ["id:12345", "id:", "id:name", "name:", "name:  "] {
            assert!(AccountRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(AccountRef::parse("12345").unwrap(), AccountRef::Name("12345".to_owned()));
    }

    #[test]
    fn a_name_two_accounts_bear_is_ambiguous() {
        let selection = listed(&["prod", "222222222222"]);
        assert!(selection.names_listed());
        let accounts = [account("333333333333", "prod"), account("111111111111", "prod"), account("222222222222", "x")];
        assert_eq!(
            selection.ambiguous_name(accounts.iter()),
            Some(("prod".to_owned(), vec!["111111111111".to_owned(), "333333333333".to_owned()]))
        );
        assert_eq!(selection.ambiguous_name(accounts[1..].iter()), None);
        assert!(!listed(&["222222222222"]).names_listed());
        // Two accounts that bear a 12-digit name are no ambiguity for that id.
        let renamed = [account("111111111111", "a"), account("222222222222", "111111111111")];
        assert_eq!(listed(&["111111111111"]).ambiguous_name(renamed.iter()), None);
    }

    #[test]
    fn roles_are_tried_in_the_users_order() {
        let wanted = ["ReadOnly".to_owned(), "ViewOnly".to_owned()];
        assert_eq!(
            candidate_roles(&wanted, Some(&["ViewOnly".to_owned(), "ReadOnly".to_owned()])),
            ["ReadOnly", "ViewOnly"]
        );
        assert_eq!(candidate_roles(&wanted, Some(&["ViewOnly".to_owned()])), ["ViewOnly"]);
        assert!(candidate_roles(&wanted, Some(&["Admin".to_owned()])).is_empty());
        assert_eq!(candidate_roles(&wanted, None), ["ReadOnly", "ViewOnly"]);
    }

    fn ids(n: u64) -> Vec<String> {
        (0..n).map(|i| format!("{:012}", 100_000_000_000 + i * 7919)).collect()
    }

    #[test]
    fn shards_are_disjoint_complete_and_balanced() {
        let accounts = ids(3000);
        for count in [1, 2, 3, 7, 16] {
            let shards: Vec<Shard> = (1..=count).map(|index| Shard { index, count }).collect();
            let mut sizes = vec![0; shards.len()];
            for id in &accounts {
                let owners: Vec<usize> = (0..shards.len()).filter(|&s| shards[s].contains(id)).collect();
                assert_eq!(owners.len(), 1, "{id} is in {} of {count} shards", owners.len());
                sizes[owners[0]] += 1;
            }
            let fair = accounts.len() / shards.len();
            assert!(sizes.iter().all(|&n| n > fair * 8 / 10), "unbalanced: {sizes:?}");
        }
    }

    #[test]
    fn adding_an_account_moves_no_other() {
        let shard = Shard { index: 2, count: 5 };
        let before: Vec<bool> = ids(500).iter().map(|id| shard.contains(id)).collect();
        let after: Vec<bool> = ids(501).iter().map(|id| shard.contains(id)).collect();
        assert_eq!(before[..], after[..500]);
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["0/4", "5/4", "1", "a/b", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    fn org_selection(ous: &[&str], exclude_ous: &[&str], tags: &[&str]) -> Selection {
        let facts = |path: &str, tags: &[(&str, &str)], state| {
            let ous = path.split('/').map(|name| crate::org::Ou { name: name.to_owned(), id: None }).collect();
            let tags = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            Arc::new(AccountFacts { ous, tags, state })
        };
        let known = [
            ("111111111111", facts("Root/Workloads/Prod", &[("env", "prod"), ("team", "pay")], AccountState::Active)),
            ("222222222222", facts("Root/Workloads/Dev", &[("env", "dev")], AccountState::Active)),
            ("333333333333", facts("Root/Workloads/Prod/Eu", &[("env", "prod-eu")], AccountState::Suspended)),
        ];
        let facts = OrgFacts::new(known.into_iter().map(|(id, f)| (id.to_owned(), f)).collect(), "m.csv".into());
        let parse = |list: &[&str]| list.iter().map(|ou| OuSelector::parse(ou).unwrap()).collect();
        Selection {
            org: OrgSelection {
                facts: Some(Arc::new(facts)),
                ous: parse(ous),
                exclude_ous: parse(exclude_ous),
                tags: tags.iter().map(|t| TagFilter::parse(t).unwrap()).collect(),
            },
            ..Selection::default()
        }
    }

    fn org_chosen(selection: &Selection) -> (Vec<&'static str>, Vec<&'static str>) {
        let ids = ["111111111111", "222222222222", "333333333333", "444444444444"];
        let of = |pick: fn(&Selection, &Account) -> bool| {
            ids.into_iter().filter(|id| pick(selection, &account(id, "n"))).collect::<Vec<_>>()
        };
        (of(Selection::selects), of(Selection::skips_as_inactive))
    }

    #[test]
    fn ous_and_tags_choose_by_the_facts_and_inactive_accounts_are_skipped() {
        // No filter: every account the facts do not call inactive, known or not.
        assert_eq!(
            org_chosen(&org_selection(&[], &[], &[])),
            (vec!["111111111111", "222222222222", "444444444444"], vec!["333333333333"])
        );
        assert_eq!(
            org_chosen(&org_selection(&["Root/Workloads/Prod"], &[], &[])),
            (vec!["111111111111"], vec!["333333333333"])
        );
        assert_eq!(org_chosen(&org_selection(&["Root/Workloads"], &["Root/Workloads/Dev"], &[])).0, ["111111111111"]);
        assert_eq!(
            org_chosen(&org_selection(&["Root/Workloads/Dev", "Root/Workloads/Prod"], &[], &[])).0,
            ["111111111111", "222222222222"]
        );
        assert_eq!(org_chosen(&org_selection(&[], &[], &["env=prod*"])), (vec!["111111111111"], vec!["333333333333"]));
        assert_eq!(org_chosen(&org_selection(&[], &[], &["env=prod*", "team"])), (vec!["111111111111"], vec![]));
        assert!(org_chosen(&org_selection(&[], &[], &["env=PROD"])).0.is_empty(), "tags are case-sensitive");
        // --exclude-ou never leaves out an account the facts do not know.
        assert_eq!(org_chosen(&org_selection(&[], &["Root"], &[])).0, ["444444444444"]);
    }

    #[test]
    fn org_filters_compose_with_the_others() {
        let mut selection = org_selection(&["Root/Workloads"], &[], &[]);
        selection.excludes = globs(&["2222*"]);
        assert_eq!(org_chosen(&selection).0, ["111111111111"]);
        selection.excludes.clear();
        selection.listed = Some(AccountList::parse(["222222222222", "444444444444"]).unwrap());
        assert_eq!(org_chosen(&selection).0, ["222222222222"]);
    }

    #[test]
    fn the_scope_is_the_organizations_accounts_the_filters_choose() {
        let mut selection = org_selection(&["Root/Workloads"], &[], &[]);
        assert_eq!(selection.in_scope(&account("333333333333", "n")), Some(true), "a suspended account is in scope");
        assert_eq!(selection.in_scope(&account("222222222222", "n")), Some(true));
        selection.excludes = globs(&["n"]);
        assert_eq!(selection.in_scope(&account("222222222222", "n")), Some(false), "its name is excluded");
        selection.excludes.clear();
        assert_eq!(selection.in_scope(&account("444444444444", "n")), None, "the organization does not list it");
        let facts = AccountFacts {
            ous: vec![
                crate::org::Ou { name: "Root".into(), id: None },
                crate::org::Ou { name: "Workloads".into(), id: None },
            ],
            ..AccountFacts::default()
        };
        assert!(selection.in_scope_unlisted("555555555555", &facts));
        selection.matches = globs(&["prod-*"]);
        assert!(selection.in_scope_unlisted("555555555555", &facts), "its name may match");
        selection.excludes = globs(&["5555*"]);
        assert!(!selection.in_scope_unlisted("555555555555", &facts), "its id is excluded");
        selection.excludes.clear();
        selection.listed = Some(AccountList::parse(["111111111111"]).unwrap());
        assert!(!selection.in_scope_unlisted("555555555555", &facts), "only ids are listed");
        selection.listed = Some(AccountList::parse(["111111111111", "some-name"]).unwrap());
        assert!(selection.in_scope_unlisted("555555555555", &facts), "a listed name may be its");
        assert!(!selection.in_scope_unlisted("555555555555", &AccountFacts::default()), "outside the OU");
    }

    #[test]
    fn tag_filters_are_checked() {
        for bad in ["", "=x", " =x", "env=[oops"] {
            assert!(TagFilter::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_glob_is_an_error() {
        assert!(parse_glob("[oops").is_err());
    }
}
