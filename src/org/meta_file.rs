//! `--accounts-meta FILE`: the organization's facts from a local file, for users who may
//! not read the organization themselves. CSV or TOML, chosen by the file's extension
//! (docs/organizations.md has both shapes):
//!
//! ```text
//! account_id,ou_path,ou_id,tags,state
//! 111122223333,Root/Workloads/Prod,ou-ab12-11111111,env=prod;team=payments,ACTIVE
//! ```
//!
//! ```toml
//! [[account]]
//! id = "111122223333"
//! ou_path = "Root/Workloads/Prod"
//! tags = { env = "prod", team = "payments" }
//! ```
//!
//! The file is read whole, to a bound, and checked whole before anything runs: whoever
//! administers the organization chose its OU names and tag values, and an export of them
//! is no more trusted than the portal. A bad value is a one-line error naming the file,
//! the line and the fix (exit 2), never a skipped account: a selection by OU that quietly
//! lost an account would be worse than none.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::{AccountFacts, AccountState, OU_SEPARATOR, OrgFacts, Ou, is_ou_id};
use crate::files::{self, ReadLimitError};
use crate::text;

/// The largest meta file: a few hundred bytes an account for the most accounts a portal
/// lists (100,000, `portal::MAX_ACCOUNTS`).
pub const MAX_FILE: u64 = 16 << 20;
/// As many accounts as a portal listing may hold (`portal::MAX_ACCOUNTS`).
const MAX_ACCOUNTS: usize = 100_000;
/// Organizations' limits: an OU name is 1-128 characters, OUs nest at most five deep
/// under the root, an account has at most 50 tags, a tag key 1-128 characters and a
/// value at most 256. The depth allows the root and some slack.
const MAX_OU_NAME: usize = 128;
const MAX_DEPTH: usize = 8;
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

/// The CSV columns, in no required order; `account_id` is the only one required.
const COLUMNS: [&str; 5] = ["account_id", "ou_path", "ou_id", "tags", "state"];

#[derive(Debug, thiserror::Error)]
pub enum MetaFileError {
    #[error("cannot read --accounts-meta {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: ReadLimitError,
    },
    #[error("--accounts-meta {}{}: {problem}; {fix}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid { path: PathBuf, line: Option<u64>, problem: String, fix: String },
}

/// One account's entry as written, before it is checked.
#[derive(Debug, Default)]
struct Row {
    line: u64,
    id: String,
    ou_path: Option<String>,
    ou_id: Option<String>,
    tags: Vec<(String, String)>,
    state: Option<String>,
}

/// A problem in the file (or, through [`super::tree`], in the organization's answer):
/// what is wrong and how to fix it, at a line when one is known.
#[derive(Debug)]
pub(super) struct Problem {
    pub(super) line: Option<u64>,
    pub(super) what: String,
    pub(super) fix: String,
}

pub(super) fn problem(line: impl Into<Option<u64>>, problem: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem { line: line.into(), what: problem.into(), fix: fix.into() }
}

/// Reads and checks `path` whole (a regular file or a pipe, at most [`MAX_FILE`]).
pub fn read(path: &Path) -> Result<OrgFacts, MetaFileError> {
    let text = files::read_bounded_or_pipe(path, MAX_FILE)
        .map_err(|source| MetaFileError::Read { path: path.to_owned(), source })?;
    let source = path.display().to_string();
    parse(path, &text).map(|accounts| OrgFacts::new(accounts, source)).map_err(|p| MetaFileError::Invalid {
        path: path.to_owned(),
        line: p.line,
        problem: p.what,
        fix: p.fix,
    })
}

fn parse(path: &Path, text: &str) -> Result<HashMap<String, Arc<AccountFacts>>, Problem> {
    // Spreadsheets export CSV with a byte order mark, which would stick to the first
    // column's name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let rows = match extension.as_deref() {
        Some("csv") => csv_rows(text)?,
        Some("toml") => toml_rows(text)?,
        _ => {
            return Err(problem(
                None,
                "the format is not known",
                "name the file *.csv or *.toml, as its format is (see docs/organizations.md)",
            ));
        }
    };
    facts(rows)
}

/// The rows of a CSV file with a header row; `#` starts a comment line.
fn csv_rows(text: &str) -> Result<Vec<Row>, Problem> {
    let mut reader = csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).from_reader(text.as_bytes());
    let csv_problem = |error: &csv::Error| {
        let line = error.position().map(csv::Position::line);
        problem(line, format!("not CSV: {error}"), "give every row as many comma-separated fields as the header")
    };
    let header = reader.headers().map_err(|e| csv_problem(&e))?.clone();
    let mut columns = HashMap::new();
    for (index, name) in header.iter().enumerate() {
        if !COLUMNS.contains(&name) {
            let fix = format!("the columns are {}", COLUMNS.join(", "));
            return Err(problem(1, format!("unknown column \"{}\"", text::show(name)), fix));
        }
        if columns.insert(name, index).is_some() {
            return Err(problem(1, format!("the column {name} is there twice"), "keep one"));
        }
    }
    if !columns.contains_key("account_id") {
        return Err(problem(1, "no account_id column", "start the file with a header row: account_id,ou_path,tags"));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_problem(&e))?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |name: &str| columns.get(name).and_then(|&i| record.get(i)).filter(|v| !v.is_empty());
        rows.push(Row {
            line,
            id: field("account_id").unwrap_or_default().to_owned(),
            ou_path: field("ou_path").map(str::to_owned),
            ou_id: field("ou_id").map(str::to_owned),
            tags: field("tags").map(|tags| csv_tags(line, tags)).transpose()?.unwrap_or_default(),
            state: field("state").map(str::to_owned),
        });
        check_count(line, rows.len())?;
    }
    Ok(rows)
}

/// `k=v;k2=v2`: the first `=` ends the key (a value may hold `=`); a tag's key or value
/// cannot hold `;` here (AWS allows neither), and a key holding `=` needs the TOML form.
fn csv_tags(line: u64, text: &str) -> Result<Vec<(String, String)>, Problem> {
    let mut tags = Vec::new();
    for pair in text.split(';').map(str::trim).filter(|pair| !pair.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            let fix = "write tags as KEY=VALUE;KEY2=VALUE2 (an empty value is KEY=)";
            return Err(problem(line, format!("the tag \"{}\" has no `=`", text::show(pair)), fix));
        };
        tags.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(tags)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    account: Vec<TomlAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlAccount {
    id: Spanned<String>,
    ou_path: Option<String>,
    ou_id: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    state: Option<String>,
}

/// The rows of a TOML file: `[[account]]` tables; each row's line is its `id`'s.
fn toml_rows(text: &str) -> Result<Vec<Row>, Problem> {
    let file: TomlFile = toml::from_str(text).map_err(|error| {
        let line = error.span().map(|span| line_of(text, span.start));
        let message = error.message().lines().next().unwrap_or("invalid").to_owned();
        problem(line, format!("not the TOML of a meta file: {message}"), "see docs/organizations.md for its keys")
    })?;
    let mut rows = Vec::with_capacity(file.account.len());
    for account in file.account {
        let line = line_of(text, account.id.span().start);
        rows.push(Row {
            line,
            id: account.id.into_inner(),
            ou_path: account.ou_path,
            ou_id: account.ou_id,
            tags: account.tags.into_iter().collect(),
            state: account.state,
        });
        check_count(line, rows.len())?;
    }
    Ok(rows)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> u64 {
    let before = text.get(..offset).unwrap_or(text);
    before.bytes().filter(|&b| b == b'\n').count() as u64 + 1
}

fn check_count(line: u64, count: usize) -> Result<(), Problem> {
    if count > MAX_ACCOUNTS {
        let fix = format!("list at most {MAX_ACCOUNTS} accounts (no organization holds more)");
        return Err(problem(line, "too many accounts", fix));
    }
    Ok(())
}

/// Every row checked, each id once, and each OU's id given to every account under it.
fn facts(rows: Vec<Row>) -> Result<HashMap<String, Arc<AccountFacts>>, Problem> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut ou_ids = OuIds::default();
    let mut checked = Vec::with_capacity(rows.len());
    for row in rows {
        if !is_account_id(&row.id) {
            let problem_text = format!("the account id \"{}\" is not 12 digits", text::show(&row.id));
            return Err(problem(row.line, problem_text, "write the account's 12-digit id, e.g. 111122223333"));
        }
        if let Some(first) = seen.insert(row.id.clone(), row.line) {
            let fix = format!("keep one entry for it (the other is on line {first})");
            return Err(problem(row.line, format!("the account {} is listed twice", row.id), fix));
        }
        let names = row.ou_path.as_deref().map(|path| ou_names(row.line, path)).transpose()?.unwrap_or_default();
        if let Some(id) = &row.ou_id {
            if names.is_empty() {
                return Err(problem(row.line, "an ou_id without an ou_path", "give the OU's path too"));
            }
            ou_ids.learn(row.line, &names, id)?;
        }
        let tags = check_tags(Some(row.line), row.tags)?;
        let state = match &row.state {
            None => AccountState::Active,
            Some(state) => AccountState::parse(state).ok_or_else(|| {
                let fix = "write ACTIVE, SUSPENDED, PENDING_CLOSURE or CLOSED";
                problem(row.line, format!("unknown state \"{}\"", text::show(state)), fix)
            })?,
        };
        checked.push((row.id, names, tags, state));
    }
    Ok(checked
        .into_iter()
        .map(|(id, names, tags, state)| {
            let ous = ou_ids.path_of(&names);
            (id, Arc::new(AccountFacts { ous, tags, state }))
        })
        .collect())
}

/// The same check as the portal's (`portal::validate::is_account_id`), which this module
/// cannot import: the portal's accounts carry these facts.
pub(super) fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `value` may be kept as it is: it has no control or format character (which
/// could drive a terminal or forge a line wherever it is shown or logged).
fn ensure_plain(line: u64, what: &str, value: &str) -> Result<(), Problem> {
    ensure_plain_at(Some(line), what, value)
}

/// [`ensure_plain`] where a line may not be known (a value from the organization).
fn ensure_plain_at(line: Option<u64>, what: &str, value: &str) -> Result<(), Problem> {
    if value.chars().any(text::is_hidden) {
        let problem_text = format!("{what} \"{}\" holds a control or format character", text::show(value));
        return Err(problem(line, problem_text, "remove it: names and tags are shown on terminals and in reports"));
    }
    Ok(())
}

/// An OU path's names, each checked: `Root/Workloads/Prod`.
fn ou_names(line: u64, path: &str) -> Result<Vec<String>, Problem> {
    ensure_plain(line, "the OU path", path)?;
    let names: Vec<String> = path.split(OU_SEPARATOR).map(|name| name.trim().to_owned()).collect();
    if names.iter().any(String::is_empty) {
        let problem_text = format!("the OU path \"{}\" has an empty name", text::show(path));
        return Err(problem(line, problem_text, "write the OU names from the root, e.g. Root/Workloads/Prod"));
    }
    ensure_shallow(line, names.len())?;
    for name in &names {
        ensure_ou_name_fits(line, name)?;
    }
    Ok(names)
}

/// Whether a path of `depth` names is one Organizations can nest.
pub(super) fn ensure_shallow(line: impl Into<Option<u64>>, depth: usize) -> Result<(), Problem> {
    if depth > MAX_DEPTH {
        return Err(problem(line, "the OU path is too deep", format!("Organizations nests at most {MAX_DEPTH} OUs")));
    }
    Ok(())
}

/// Whether one OU's name is within Organizations' length.
fn ensure_ou_name_fits(line: impl Into<Option<u64>>, name: &str) -> Result<(), Problem> {
    if name.chars().count() > MAX_OU_NAME {
        let problem_text = format!("the OU name \"{}\" is too long", text::show(name));
        return Err(problem(line, problem_text, format!("an OU name has at most {MAX_OU_NAME} characters")));
    }
    Ok(())
}

/// One OU name as the organization gives it, checked as the file's names are: plain,
/// not empty, within the length, and without the `/` that separates a path's names
/// (a name holding it would make two paths read alike).
pub(super) fn check_ou_name(name: &str) -> Result<(), Problem> {
    ensure_plain_at(None, "the OU name", name)?;
    if name.trim().is_empty() || name.contains(OU_SEPARATOR) {
        let what = format!("the OU name \"{}\" is empty or holds a `/`", text::show(name));
        return Err(problem(None, what, "rename the OU: fanout writes OU paths with `/` between names"));
    }
    ensure_ou_name_fits(None, name)
}

pub(super) fn check_tags(line: Option<u64>, tags: Vec<(String, String)>) -> Result<BTreeMap<String, String>, Problem> {
    if tags.len() > MAX_TAGS {
        return Err(problem(line, "too many tags", format!("an account has at most {MAX_TAGS}")));
    }
    let mut checked = BTreeMap::new();
    for (key, value) in tags {
        ensure_plain_at(line, "the tag key", &key)?;
        ensure_plain_at(line, "the tag value", &value)?;
        if key.is_empty() || key.chars().count() > MAX_TAG_KEY || value.chars().count() > MAX_TAG_VALUE {
            let problem_text = format!("the tag \"{}\" is empty or too long", text::show(&key));
            let fix = format!("a tag key has 1-{MAX_TAG_KEY} characters, a value at most {MAX_TAG_VALUE}");
            return Err(problem(line, problem_text, fix));
        }
        if checked.contains_key(&key) {
            return Err(problem(line, format!("the tag \"{}\" is there twice", text::show(&key)), "keep one"));
        }
        checked.insert(key, value);
    }
    Ok(checked)
}

/// The OU ids the file gives (each the id of the OU its row's account sits in directly),
/// both ways, so that one OU has one id and one id one OU.
#[derive(Debug, Default)]
struct OuIds {
    by_path: HashMap<Vec<String>, (String, u64)>,
    by_id: HashMap<String, (Vec<String>, u64)>,
}

impl OuIds {
    fn learn(&mut self, line: u64, names: &[String], id: &str) -> Result<(), Problem> {
        if !is_ou_id(id) {
            let problem_text = format!("the OU id \"{}\" is not one", text::show(id));
            return Err(problem(line, problem_text, "write the id of the account's OU, e.g. ou-ab12-34567890"));
        }
        let path = names.join("/");
        if let Some((other, first)) = self.by_path.get(names).filter(|(other, _)| other != id) {
            let fix = format!("line {first} gives it {other}; an OU has one id");
            return Err(problem(line, format!("the OU {} is given the id {id}", text::show(&path)), fix));
        }
        if let Some((other, first)) = self.by_id.get(id).filter(|(other, _)| other != names) {
            let fix = format!("line {first} places it at {}; an id names one OU", text::show(&other.join("/")));
            return Err(problem(line, format!("the OU id {id} is given to {}", text::show(&path)), fix));
        }
        self.by_path.insert(names.to_vec(), (id.to_owned(), line));
        self.by_id.insert(id.to_owned(), (names.to_vec(), line));
        Ok(())
    }

    /// The OUs of `names`, each with the id the file gives the path up to it.
    fn path_of(&self, names: &[String]) -> Vec<Ou> {
        (1..=names.len())
            .map(|depth| Ou {
                name: names[depth - 1].clone(),
                id: self.by_path.get(&names[..depth]).map(|(id, _)| id.clone()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::OuSelector;

    fn parse_as(name: &str, text: &str) -> Result<HashMap<String, Arc<AccountFacts>>, Problem> {
        parse(Path::new(name), text)
    }

    #[test]
    fn csv_and_toml_give_the_same_facts() {
        let csv = "# exported\naccount_id,ou_path,ou_id,tags,state\n\
                   111111111111,Root/Workloads/Prod,ou-ab12-11111111,env=prod;team=pay=ments,\n\
                   222222222222,Root/Workloads,ou-ab12-22222222,,suspended\n";
        let toml = r#"
            [[account]]
            id = "111111111111"
            ou_path = "Root/Workloads/Prod"
            ou_id = "ou-ab12-11111111"
            tags = { env = "prod", team = "pay=ments" }

            [[account]]
            id = "222222222222"
            ou_path = "Root/Workloads"
            ou_id = "ou-ab12-22222222"
            state = "SUSPENDED"
        "#;
        for facts in [parse_as("m.csv", csv).unwrap(), parse_as("m.TOML", toml).unwrap()] {
            let prod = &facts["111111111111"];
            assert_eq!(prod.ou_path(), "Root/Workloads/Prod");
            assert_eq!(prod.tags_text(), "env=prod;team=pay=ments");
            assert_eq!(prod.state, AccountState::Active);
            // The parent's id, learned from the account that sits in it directly.
            assert!(prod.is_within(&OuSelector::Id("ou-ab12-22222222".into())));
            assert_eq!(facts["222222222222"].state, AccountState::Suspended);
        }
    }

    fn line_and_problem(name: &str, text: &str) -> (Option<u64>, String) {
        let p = parse_as(name, text).unwrap_err();
        assert!(!p.fix.is_empty());
        (p.line, p.what)
    }

    #[test]
    fn every_bad_value_names_its_line() {
        let head = "account_id,ou_path,ou_id,tags,state\n";
        for (body, line, words) in [
            ("12345,Root,,,\n", 2, "not 12 digits"),
            ("111111111111,Root,,,\n111111111111,Root,,,\n", 3, "listed twice"),
            ("111111111111,Root/\u{1b}[31mX,,,\n", 2, "control"),
            ("111111111111,Root/\u{202e}X,,,\n", 2, "control or format"),
            ("111111111111,Root,,env=a\u{0}b,\n", 2, "control"),
            ("111111111111,Root//X,,,\n", 2, "empty name"),
            ("111111111111,Root,,noequals,\n", 2, "no `=`"),
            ("111111111111,Root,,a=1;a=2,\n", 2, "twice"),
            ("111111111111,Root,,,GONE\n", 2, "unknown state"),
            ("111111111111,,ou-ab12-11111111,,\n", 2, "without an ou_path"),
            ("111111111111,Root,ou-nope,,\n", 2, "not one"),
            ("111111111111,Root/A,ou-ab12-11111111,,\n222222222222,Root/B,ou-ab12-11111111,,\n", 3, "given to"),
            ("111111111111,Root,,\n", 2, "not CSV"),
        ] {
            let (at, problem) = line_and_problem("m.csv", &format!("{head}{body}"));
            assert_eq!(at, Some(line), "{body:?}: {problem}");
            assert!(problem.contains(words), "{body:?}: {problem}");
        }
        assert_eq!(line_and_problem("m.csv", "id,ou\n").0, Some(1), "an unknown column");
        assert!(line_and_problem("m.json", "").1.contains("format"));
        let long = format!("{head}111111111111,Root/{},,,\n", "x".repeat(129));
        assert!(line_and_problem("m.csv", &long).1.contains("too long"));
        let many = (0..51).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(";");
        assert!(line_and_problem("m.csv", &format!("{head}111111111111,Root,,{many},\n")).1.contains("too many"));
    }

    #[test]
    fn toml_errors_name_the_line_too() {
        let (line, problem) = line_and_problem("m.toml", "[[account]]\nid = \"111111111111\"\nou = \"x\"\n");
        assert_eq!(line, Some(3), "{problem}");
        let twice = "[[account]]\nid = \"111111111111\"\n[[account]]\nid = \"111111111111\"\n";
        assert_eq!(line_and_problem("m.toml", twice), (Some(4), "the account 111111111111 is listed twice".into()));
    }

    #[test]
    fn a_spreadsheets_byte_order_mark_is_not_part_of_the_header() {
        let facts = parse_as("m.csv", "\u{feff}account_id,tags\n111111111111,env=prod\n").unwrap();
        assert_eq!(facts["111111111111"].tags_text(), "env=prod");
    }

    #[test]
    fn an_account_without_facts_is_still_listed_once() {
        let facts = parse_as("m.csv", "account_id\n111111111111\n").unwrap();
        assert_eq!(*facts["111111111111"], AccountFacts::default());
    }
}
