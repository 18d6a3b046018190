//! Text for people: the account table, the dry-run plan, errors.

use std::collections::BTreeMap;
use std::io::Write as _;

use serde::Serialize;

use crate::portal::Account;
use crate::text;

/// Writes text to stderr, once the writer thread has finished; `false` when it could
/// not be written (the caller then must not exit 0). Never panics, unlike `eprint!`.
pub fn eprint_text(text: &str) -> bool {
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(text.as_bytes()).and_then(|()| stderr.flush()).is_ok()
}

/// An account and the roles the login has in it, as `fanout accounts` shows them.
#[derive(Debug, Serialize)]
pub struct AccountRoles {
    #[serde(flatten)]
    pub account: Account,
    pub roles: Vec<String>,
    /// With several logins, the one the account runs through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// What the organization says of it (`--accounts-meta`): absent when it says nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ou_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

impl AccountRoles {
    /// `account` with its `roles`, and the facts it carries.
    pub fn new(account: Account, roles: Vec<String>) -> Self {
        let ou_path = account.org.as_ref().map(|org| org.ou_path());
        let tags = account.org.as_ref().map(|org| org.tags.clone());
        AccountRoles { account, roles, login: None, ou_path, tags }
    }
}

/// Aligned columns, by tabwriter (elastic tabstops).
pub fn table<I, R>(header: &[&str], rows: I) -> Vec<u8>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    let mut writer = tabwriter::TabWriter::new(Vec::new()).padding(2);
    let _ = writeln!(writer, "{}", header.join("\t"));
    for row in rows {
        let cells: Vec<String> = row.into_iter().map(|c| text::show(&c).into_owned()).collect();
        let _ = writeln!(writer, "{}", cells.join("\t"));
    }
    writer.into_inner().unwrap_or_default()
}

/// The accounts, with a `LOGIN` column when there are several logins, and `OU_PATH` and
/// `TAGS` columns when the organization's facts were given.
pub fn accounts_table(accounts: &[AccountRoles]) -> Vec<u8> {
    let logins = accounts.iter().any(|a| a.login.is_some());
    let org = accounts.iter().any(|a| a.ou_path.is_some() || a.tags.is_some());
    let mut header = vec!["ACCOUNT_ID", "NAME", "EMAIL", "ROLES"];
    if logins {
        header.push("LOGIN");
    }
    if org {
        header.extend(["OU_PATH", "TAGS"]);
    }
    let rows = accounts.iter().map(|a| {
        let mut row = vec![a.account.id.clone(), a.account.name.clone(), a.account.email.clone(), a.roles.join(",")];
        if logins {
            row.push(a.login.clone().unwrap_or_default());
        }
        if org {
            row.push(a.ou_path.clone().unwrap_or_default());
            row.push(a.account.org.as_ref().map(|org| org.tags_text()).unwrap_or_default());
        }
        row
    });
    table(&header, rows)
}

pub fn accounts_json(accounts: &[AccountRoles]) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(accounts).unwrap_or_default();
    json.push(b'\n');
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let text = table(&["A", "B"], [["x".to_owned(), "y".to_owned()], ["long".to_owned(), "z".to_owned()]]);
        assert_eq!(String::from_utf8(text).unwrap(), "A     B\nx     y\nlong  z\n");
    }
}
