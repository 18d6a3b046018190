//! `fanout credentials`: the selected accounts' role credentials handed to the user, in
//! the format asked, instead of to a child. The runner fetches them as for a run (the
//! same selection, limiter, retries and cache); this module only shapes and writes them.
//!
//! Secrets leave fanout only here, and only where the user named: stdout, or a file that
//! is 0600 from its creation and appears whole under its name (a temp file in the same
//! directory, renamed at the end). A name that is there and is no regular file (a FIFO,
//! `/dev/fd/3`) is written in place: a rename would replace it, not write to it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::config::{ExportFormat, JsonTarget};
use crate::credentials::Credentials;
use crate::portal::Account;
use crate::reporter::writer::{Output, Stream};

/// Where each account's credentials go as they arrive. No `Debug`: it holds them.
pub struct ExportSink {
    format: ExportFormat,
    output: Output,
    /// `--format json`: each account with its selection index (the file lists the
    /// accounts in the order they were selected, whatever order they finished in), its
    /// role and its credentials, still [`secrecy::SecretString`]s until the file is
    /// written.
    collected: Mutex<Vec<Collected>>,
    /// `--format json` to a file: opened at the start.
    file: Mutex<Option<JsonFile>>,
}

/// Where a `--format json` file is written.
enum JsonFile {
    /// A temp file next to the target, renamed over it at the end.
    Temp(tempfile::NamedTempFile),
    /// The target itself, which is no regular file.
    InPlace(std::fs::File),
}

impl JsonFile {
    /// Ready for `path`: `tempfile` creates the temp file 0600.
    fn open(path: &Path) -> std::io::Result<Self> {
        if std::fs::metadata(path).is_ok_and(|meta| !meta.is_file()) {
            return Ok(JsonFile::InPlace(std::fs::OpenOptions::new().write(true).open(path)?));
        }
        let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Ok(JsonFile::Temp(tempfile::Builder::new().prefix(".fanout-credentials-").tempfile_in(dir)?))
    }

    /// Writes `text` whole to `path`.
    fn write(self, path: &Path, text: &str) -> std::io::Result<()> {
        match self {
            JsonFile::Temp(mut temp) => {
                temp.write_all(text.as_bytes())?;
                temp.as_file().sync_all()?;
                temp.persist(path).map_err(|error| error.error)?;
                Ok(())
            }
            JsonFile::InPlace(mut file) => file.write_all(text.as_bytes()),
        }
    }
}

/// One account of a json export, waiting for the others.
struct Collected {
    index: usize,
    account: Account,
    role: String,
    credentials: Credentials,
}

impl ExportSink {
    /// Opens the file of a json export (see [`JsonFile`]) before any credentials are
    /// fetched, so an unwritable directory fails the export up front.
    pub fn open(format: ExportFormat, output: Output) -> Result<Self, (PathBuf, std::io::Error)> {
        let file = match &format {
            ExportFormat::Json(JsonTarget::File(path)) => {
                Some(JsonFile::open(path).map_err(|error| (path.clone(), error))?)
            }
            _ => None,
        };
        Ok(ExportSink { format, output, collected: Mutex::new(Vec::new()), file: Mutex::new(file) })
    }

    /// Takes one account's credentials: printed at once (jsonl, env, process) or kept for
    /// the file (json).
    pub async fn hand(&self, index: usize, account: &Account, role: &str, credentials: Credentials) {
        let text = match &self.format {
            ExportFormat::Json(_) => {
                let (account, role) = (account.clone(), role.to_owned());
                if let Ok(mut collected) = self.collected.lock() {
                    collected.push(Collected { index, account, role, credentials });
                }
                return;
            }
            ExportFormat::Jsonl => format!("{}\n", article_entry(account, role, &credentials)),
            ExportFormat::Env => env_lines(account, role, &credentials),
            ExportFormat::Process => format!("{}\n", process_json(&credentials)),
        };
        self.output.send(Stream::Stdout, text.into_bytes()).await;
    }

    /// Ends a json export: the collected accounts written to the file or stdout. A stopped run writes nothing, and its temp file is removed: a
    /// file of some of the accounts would look whole to the script reading it. Returns
    /// what to say on stderr.
    pub async fn finish(&self, stopped: bool) -> Result<Option<String>, (PathBuf, std::io::Error)> {
        let ExportFormat::Json(target) = &self.format else { return Ok(None) };
        let temp = self.file.lock().ok().and_then(|mut file| file.take());
        if stopped {
            return Ok(match target {
                JsonTarget::File(path) => {
                    Some(format!("fanout: the run was stopped; {} was not written\n", path.display()))
                }
                JsonTarget::Stdout => None,
            });
        }
        let mut collected = self.collected.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default();
        collected.sort_by_key(|entry| entry.index);
        let count = collected.len();
        let entries = collected.iter().map(|entry| article_entry(&entry.account, &entry.role, &entry.credentials));
        let array = Value::Array(entries.collect());
        let mut text = array.to_string();
        text.push('\n');
        let (JsonTarget::File(path), Some(file)) = (target, temp) else {
            self.output.send(Stream::Stdout, text.into_bytes()).await;
            return Ok(None);
        };
        let mode = if matches!(file, JsonFile::Temp(_)) { " (mode 0600)" } else { "" };
        file.write(path, &text).map_err(|error| (path.clone(), error))?;
        Ok(Some(format!(
            "fanout: credentials of {} written to {}{mode}\n",
            crate::text::plural(count, "account"),
            path.display()
        )))
    }
}

/// One account as the article's `sso_role_credentials.json` has it: the portal's
/// account fields, and under `roles` the role's credentials as `GetRoleCredentials`
/// returns them (expiration in epoch milliseconds).
pub fn article_entry(account: &Account, role: &str, credentials: &Credentials) -> Value {
    json!({
        "accountId": account.id,
        "accountName": account.name,
        "emailAddress": account.email,
        "roles": {
            role: {
                "accessKeyId": credentials.access_key_id.expose_secret(),
                "secretAccessKey": credentials.secret_access_key.expose_secret(),
                "sessionToken": credentials.session_token.expose_secret(),
                "expiration": credentials.expiration_millis(),
            }
        }
    })
}

/// `export` lines for `eval "$(fanout credentials … --format env)"`: the variables a
/// fanout child gets (but the region, which is the shell's own), every value
/// shell-quoted, so an account name cannot run as code.
pub fn env_lines(account: &Account, role: &str, credentials: &Credentials) -> String {
    let vars = [
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id.expose_secret()),
        ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key.expose_secret()),
        ("AWS_SESSION_TOKEN", credentials.session_token.expose_secret()),
        ("AWS_CREDENTIAL_EXPIRATION", credentials.expiration.as_str()),
        ("AWS_ACCOUNT_ID", account.id.as_str()),
        ("FANOUT_ACCOUNT_ID", account.id.as_str()),
        ("FANOUT_ACCOUNT_NAME", account.name.as_str()),
        ("FANOUT_ROLE", role),
    ];
    vars.iter().fold(String::new(), |mut text, (name, value)| {
        let _ = writeln!(text, "export {name}={}", shell_words::quote(value));
        text
    })
}

/// What a `credential_process` prints, as the AWS CLI and SDKs read it.
pub fn process_json(credentials: &Credentials) -> Value {
    json!({
        "Version": 1,
        "AccessKeyId": credentials.access_key_id.expose_secret(),
        "SecretAccessKey": credentials.secret_access_key.expose_secret(),
        "SessionToken": credentials.session_token.expose_secret(),
        "Expiration": credentials.expiration,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use secrecy::SecretString;

    use super::*;

    fn account(name: &str) -> Account {
        Account {
            id: "111122223333".to_owned(),
            name: name.to_owned(),
            email: "a@example.com".to_owned(),
            login: 0,
            org: None,
        }
    }

    fn credentials() -> Credentials {
        Credentials::new(
            SecretString::from("ASIAKEY"),
            SecretString::from("se/cret+"),
            SecretString::from("tok'en"),
            // 2026-11-24T03:00:00Z
            UNIX_EPOCH + Duration::from_hours(498_747),
        )
    }

    #[test]
    fn the_article_entry_has_the_portal_shape() {
        let entry = article_entry(&account("dev"), "ReadOnly", &credentials());
        assert_eq!(entry["accountId"], "111122223333");
        assert_eq!(entry["emailAddress"], "a@example.com");
        let role = &entry["roles"]["ReadOnly"];
        assert_eq!(role["accessKeyId"], "ASIAKEY");
        assert_eq!(role["sessionToken"], "tok'en");
        assert_eq!(role["expiration"], 1_795_489_200_000_u64);
    }

    #[test]
    fn env_values_are_quoted_for_the_shell() {
        let text = env_lines(&account("$(reboot)"), "ReadOnly", &credentials());
        assert!(text.contains("export AWS_ACCESS_KEY_ID=ASIAKEY\n"), "{text}");
        assert!(text.contains("export AWS_SESSION_TOKEN='tok'\\''en'\n"), "{text}");
        assert!(text.contains("export FANOUT_ACCOUNT_NAME='$(reboot)'\n"), "{text}");
        assert!(text.contains("export AWS_CREDENTIAL_EXPIRATION=2026-11-24T03:00:00Z\n"), "{text}");
    }

    #[test]
    fn the_process_json_is_version_1_with_an_iso_expiry() {
        let value = process_json(&credentials());
        assert_eq!(value["Version"], 1);
        assert_eq!(value["SecretAccessKey"], "se/cret+");
        assert_eq!(value["Expiration"], "2026-11-24T03:00:00Z");
    }
}
