//! Text for people: the account table, the dry-run plan, errors.

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

pub fn accounts_table(accounts: &[AccountRoles]) -> Vec<u8> {
    let row =
        |a: &AccountRoles| [a.account.id.clone(), a.account.name.clone(), a.account.email.clone(), a.roles.join(",")];
    if accounts.iter().any(|a| a.login.is_some()) {
        let rows = accounts.iter().map(|a| {
            let mut row = row(a).to_vec();
            row.push(a.login.clone().unwrap_or_default());
            row
        });
        return table(&["ACCOUNT_ID", "NAME", "EMAIL", "ROLES", "LOGIN"], rows);
    }
    table(&["ACCOUNT_ID", "NAME", "EMAIL", "ROLES"], accounts.iter().map(row))
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
