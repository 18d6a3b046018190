//! A saved run (`--dry-run --save-plan FILE`) that a reviewer approves and `fanout apply`
//! runs exactly: the login, and per account its role, region and the argv as rendered.
//!
//! The plan is data only: built, serialized, hashed, read back and compared here; the
//! run itself is the runner's, and what a reviewer is shown is [`review`]'s.
//!
//! Two hashes, for two jobs. What `--approve` names is the SHA-256 of the file's bytes,
//! as `sha256sum FILE` prints it: the file applied is then byte for byte the one
//! reviewed, which anyone can check without fanout. The `sha256` field inside the file
//! is a checksum of a canonical serialization (the plan's fields in their fixed order,
//! compact JSON, no `sha256` field): it catches a hand edit that forgot it, and nothing
//! more, since whoever can edit the file can recompute it.

pub mod review;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files::{self, ReadLimitError};
use crate::login::SsoLogin;
use crate::org::{AccountFacts, AccountState, OU_SEPARATOR, Ou};

/// The plan format's version; a reader refuses any other.
pub const VERSION: u32 = 1;

/// A plan file larger than this is not one fanout wrote for a sane number of accounts.
const MAX_PLAN_BYTES: u64 = 64 << 20;

/// Which login a plan was made with: the sso-session's name (or, for a legacy profile,
/// the start URL), and the start URL it points at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLogin {
    pub name: String,
    pub start_url: String,
}

impl PlanLogin {
    pub fn of(login: &SsoLogin) -> Self {
        PlanLogin { name: login.cache_key().to_owned(), start_url: login.start_url.clone() }
    }
}

/// One account of a plan, as it will run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedAccount {
    pub account_id: String,
    pub account_name: String,
    pub role: String,
    pub region: String,
    /// The command with its placeholders filled, exactly as it will be run.
    pub argv: Vec<String>,
    /// What the organization said of the account when the plan was made
    /// (`--accounts-meta`), for the reviewer; absent when it said nothing, so a plan
    /// made without facts hashes as it always did. `apply` gives the child this OU path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ou_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

impl PlannedAccount {
    /// The organization's facts the plan recorded, as a run carries them to its records
    /// (the OU path's names, whose ids a plan does not keep, and the tags); `None` when it
    /// recorded none.
    pub fn facts(&self) -> Option<AccountFacts> {
        if self.ou_path.is_none() && self.tags.is_none() {
            return None;
        }
        let names = self.ou_path.iter().flat_map(|path| path.split(OU_SEPARATOR)).filter(|name| !name.is_empty());
        Some(AccountFacts {
            ous: names.map(|name| Ou { name: name.to_owned(), id: None }).collect(),
            tags: self.tags.clone().unwrap_or_default(),
            state: AccountState::Active,
        })
    }
}

/// What the hash covers, in this field order.
#[derive(Debug, Serialize)]
struct Body<'a> {
    version: u32,
    login: &'a PlanLogin,
    accounts: &'a [PlannedAccount],
}

/// A plan as written to and read from a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub version: u32,
    pub login: PlanLogin,
    /// Sorted by account id.
    pub accounts: Vec<PlannedAccount>,
    /// Lowercase hex SHA-256 of the canonical body.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read the plan {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: ReadLimitError,
    },
    #[error("{path} is not a fanout plan: {reason}")]
    Malformed { path: String, reason: String },
    #[error("{path} is a plan of format version {found}; this fanout reads version {VERSION}")]
    Version { path: String, found: u32 },
    #[error("{path} was changed after it was saved: its content no longer matches its sha256")]
    Tampered { path: String },
    #[error(
        "--approve {given} is not this plan's sha256; review it again (fanout apply FILE --dry-run) and approve the sha256 it shows"
    )]
    WrongApproval { given: String },
    #[error(
        "--approve names the checksum inside the plan, which anyone who edits the file can recompute; approve the file's sha256 (sha256sum FILE, or fanout apply FILE --dry-run)"
    )]
    ApprovedChecksum,
    #[error("the plan names account {0} twice")]
    DuplicateAccount(String),
    #[error("the plan holds no account")]
    Empty,
    #[error("the plan runs its accounts in more than one region, which fanout does not write")]
    MixedRegions,
    #[error("the plan was made for {planned}, but the login in force is {current}; use the plan's login")]
    OtherLogin { planned: String, current: String },
    #[error("cannot write the plan {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Plan {
    /// A plan of `accounts` (sorted here by id) under `login`, hashed.
    pub fn new(login: PlanLogin, mut accounts: Vec<PlannedAccount>) -> Self {
        accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        let sha256 = hash(&Body { version: VERSION, login: &login, accounts: &accounts });
        Plan { version: VERSION, login, accounts, sha256 }
    }

    /// The plan as a file's content: pretty JSON a reviewer can read, with a newline.
    pub fn to_file_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a plan serializes");
        text.push('\n');
        text
    }

    /// Writes the plan to `path` atomically (a temporary file in the same directory,
    /// renamed over it), so a reviewer never reads half a plan. Returns the SHA-256 of
    /// the bytes written: the one to approve.
    pub fn save(&self, path: &Path) -> Result<String, PlanError> {
        let text = self.to_file_text();
        crate::files::write_atomically(path, text.as_bytes())
            .map_err(|source| PlanError::Write { path: path.display().to_string(), source })?;
        Ok(sha256_hex(text.as_bytes()))
    }

    /// Reads a plan (at most 64 MiB) and checks that it is whole: its version, its
    /// accounts unique, and its content matching its checksum. Returns it with the
    /// SHA-256 of the bytes read (the file's, as `sha256sum` prints it).
    pub fn read(path: &Path) -> Result<(Self, String), PlanError> {
        let shown = path.display().to_string();
        let text = files::read_bounded(path, MAX_PLAN_BYTES)
            .map_err(|source| PlanError::Read { path: shown.clone(), source })?;
        Ok((Self::parse(&text, &shown)?, sha256_hex(text.as_bytes())))
    }

    /// Parses and checks a plan's text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, PlanError> {
        let plan: Plan = serde_json::from_str(text)
            .map_err(|error| PlanError::Malformed { path: path.to_owned(), reason: error.to_string() })?;
        if plan.version != VERSION {
            return Err(PlanError::Version { path: path.to_owned(), found: plan.version });
        }
        let expected = hash(&Body { version: plan.version, login: &plan.login, accounts: &plan.accounts });
        if expected != plan.sha256 {
            return Err(PlanError::Tampered { path: path.to_owned() });
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = plan.accounts.iter().find(|a| !seen.insert(a.account_id.as_str())) {
            return Err(PlanError::DuplicateAccount(twice.account_id.clone()));
        }
        if plan.accounts.is_empty() {
            return Err(PlanError::Empty);
        }
        Ok(plan)
    }

    /// Whether `given` (from `--approve`) is `file_sha256`, the SHA-256 of this plan's
    /// file, case aside. The checksum inside the file is refused with its own message:
    /// it proves nothing about who changed the file.
    pub fn check_approval(&self, given: &str, file_sha256: &str) -> Result<(), PlanError> {
        let given = given.trim();
        if given.eq_ignore_ascii_case(file_sha256) {
            Ok(())
        } else if given.eq_ignore_ascii_case(&self.sha256) {
            Err(PlanError::ApprovedChecksum)
        } else {
            Err(PlanError::WrongApproval { given: given.to_owned() })
        }
    }

    /// Whether the login in force is the plan's: the same session (or legacy start URL)
    /// and the same start URL.
    pub fn check_login(&self, current: &PlanLogin) -> Result<(), PlanError> {
        if &self.login == current {
            return Ok(());
        }
        let show = |login: &PlanLogin| format!("{:?} ({})", login.name, login.start_url);
        Err(PlanError::OtherLogin { planned: show(&self.login), current: show(current) })
    }

    /// The accounts by id, for the run.
    pub fn by_id(&self) -> HashMap<String, PlannedAccount> {
        self.accounts.iter().map(|a| (a.account_id.clone(), a.clone())).collect()
    }

    /// The region every account runs in, when it is one; `None` when they differ.
    pub fn single_region(&self) -> Option<&str> {
        let first = &self.accounts.first()?.region;
        self.accounts.iter().all(|a| &a.region == first).then_some(first.as_str())
    }
}

/// A plan being applied: what `config/` read and checked, ready for the runner.
#[derive(Debug)]
pub struct Applied {
    pub plan: Plan,
    /// The SHA-256 of the plan's file: what `--approve` names and the review shows.
    pub file_sha256: String,
    /// The plan's accounts by id.
    pub by_id: HashMap<String, PlannedAccount>,
}

impl Applied {
    pub fn new(plan: Plan, file_sha256: String) -> Result<Self, PlanError> {
        if plan.single_region().is_none() {
            return Err(PlanError::MixedRegions);
        }
        Ok(Applied { by_id: plan.by_id(), plan, file_sha256 })
    }

    /// The plan's roles, each once, in the order the accounts name them first.
    pub fn roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = Vec::new();
        for account in &self.plan.accounts {
            if !roles.contains(&account.role) {
                roles.push(account.role.clone());
            }
        }
        roles
    }
}

/// Lowercase hex SHA-256 of the canonical (compact JSON) body.
fn hash(body: &Body<'_>) -> String {
    sha256_hex(&serde_json::to_vec(body).expect("a plan serializes"))
}

/// Lowercase hex SHA-256 of `bytes`, as `sha256sum` prints it.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let login = PlanLogin { name: "corp".into(), start_url: "https://corp.awsapps.com/start".into() };
        let account = |id: &str, name: &str| PlannedAccount {
            account_id: id.into(),
            account_name: name.into(),
            role: "ReadOnly".into(),
            region: "eu-west-1".into(),
            argv: vec!["echo".into(), id.into()],
            ou_path: None,
            tags: None,
        };
        Plan::new(login, vec![account("222222222222", "b"), account("111111111111", "a")])
    }

    #[test]
    fn a_saved_plan_reads_back_whole_and_sorted() {
        let plan = plan();
        assert_eq!(plan.accounts[0].account_id, "111111111111");
        assert_eq!(plan.sha256.len(), 64);
        let text = plan.to_file_text();
        let read = Plan::parse(&text, "p").unwrap();
        assert_eq!(read, plan);
        let file_sha256 = sha256_hex(text.as_bytes());
        assert_ne!(file_sha256, plan.sha256, "the file's hash, not the checksum inside it");
        assert!(read.check_approval(&file_sha256.to_uppercase(), &file_sha256).is_ok());
        assert!(matches!(read.check_approval("abc", &file_sha256), Err(PlanError::WrongApproval { .. })));
        assert!(matches!(read.check_approval(&plan.sha256, &file_sha256), Err(PlanError::ApprovedChecksum)));
        assert_eq!(read.single_region(), Some("eu-west-1"));
    }

    #[test]
    fn any_change_to_the_content_is_found() {
        let text = plan().to_file_text();
        let tampered = text.replace("\"echo\"", "\"rm\"");
        assert_ne!(tampered, text);
        assert!(matches!(Plan::parse(&tampered, "p"), Err(PlanError::Tampered { .. })));
        let extra = text.replacen('{', "{\"more\": 1,", 1);
        assert!(matches!(Plan::parse(&extra, "p"), Err(PlanError::Malformed { .. })));
        assert!(matches!(Plan::parse("[]", "p"), Err(PlanError::Malformed { .. })));
    }

    #[test]
    fn another_login_is_named() {
        let plan = plan();
        let other = PlanLogin { name: "corp".into(), start_url: "https://other.awsapps.com/start".into() };
        let error = plan.check_login(&other).unwrap_err().to_string();
        assert!(error.contains("other.awsapps.com") && error.contains("corp.awsapps.com"), "{error}");
        assert!(plan.check_login(&plan.login.clone()).is_ok());
    }
}
