//! Text for people: the account table, the dry-run plan, errors.

use std::io::Write as _;

use serde::Serialize;

use crate::error::Error;
use crate::portal::Account;
use crate::text;

/// Writes text to stderr, once the writer thread has finished; `false` when it could
/// not be written (the caller then must not exit 0). Never panics, unlike `eprint!`.
pub fn eprint_text(text: &str) -> bool {
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(text.as_bytes()).and_then(|()| stderr.flush()).is_ok()
}

/// `error: <message>: <cause>: <cause>; <hint>`, on one line: control characters and
/// line breaks from anywhere in the chain (a portal's message, a file's name) are escaped.
pub fn print_error(error: &Error) -> bool {
    let mut line = format!("error: {}", error_chain(error));
    if let Some(hint) = error.hint() {
        line.push_str("; ");
        line.push_str(&hint);
    }
    line.push('\n');
    eprint_text(&line)
}

/// `error` and its causes as `message: cause: cause`, each escaped and clipped
/// ([`text::show_at_most`]): a portal's message or a file's name can hold line breaks,
/// and be as long as a portal cares to make it.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = text::show_at_most(&error.to_string(), text::MAX_LINE).into_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&text::show_at_most(&cause.to_string(), text::MAX_LINE));
        source = cause.source();
    }
    text
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
    fn an_error_chain_is_escaped_and_clipped_link_by_link() {
        #[derive(Debug)]
        struct Message(String, Option<Box<Message>>);
        impl std::fmt::Display for Message {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for Message {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|cause| cause as _)
            }
        }
        let cause = Message("m".repeat(100 * 1024), None);
        let error = Message("listing\u{202e} failed\n".to_owned(), Some(Box::new(cause)));
        let chain = error_chain(&error);
        assert!(chain.starts_with("listing\\u{202e} failed\\n: mmm"), "{chain}");
        assert!(chain.ends_with("m… (102400 bytes)"), "{}", &chain[chain.len() - 40..]);
        assert!(chain.len() < 2 * text::MAX_LINE, "{}", chain.len());
    }

    #[test]
    fn tables_align() {
        let text = table(&["A", "B"], [["x".to_owned(), "y".to_owned()], ["long".to_owned(), "z".to_owned()]]);
        assert_eq!(String::from_utf8(text).unwrap(), "A     B\nx     y\nlong  z\n");
    }
}
