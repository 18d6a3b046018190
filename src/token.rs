//! Stage 1b: the access token `aws sso login` cached for the chosen login.
//!
//! The file is opened by name, exactly where the AWS CLI writes it
//! (`~/.aws/sso/cache/<sha1 hex of the session name or legacy start URL>.json`), never
//! found by scanning the directory: a scan can pick another portal's token.

use std::path::{Path, PathBuf};

use aws_sdk_sso::primitives::{DateTime, DateTimeFormat};
use serde::Deserialize;
use sha1::{Digest, Sha1};

use crate::login::SsoLogin;
use secrecy::{ExposeSecret as _, SecretString};

use crate::files::{self, ReadLimitError};

/// An unexpired access token for the SSO portal.
#[derive(Debug)]
pub struct CachedToken {
    pub access_token: SecretString,
    pub expires_at: DateTime,
}

/// The fields fanout needs; botocore and aws-config write more.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheFile {
    access_token: SecretString,
    expires_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no cached token for {login} (looked for {})", path.display())]
    Missing { login: String, path: PathBuf, login_command: String },
    #[error("cannot read the token cache file {}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: ReadLimitError,
    },
    // The serde error is summarised, not chained: its text can quote the file's content.
    #[error("the token cache file {} is not valid ({reason})", path.display())]
    Malformed { path: PathBuf, reason: String, login_command: String },
    #[error("{login} expired at {at}")]
    Expired { login: String, at: String, login_command: String },
}

impl TokenError {
    /// The command that logs in again, where that is the fix.
    pub fn login_command(&self) -> Option<&str> {
        match self {
            TokenError::Missing { login_command, .. }
            | TokenError::Malformed { login_command, .. }
            | TokenError::Expired { login_command, .. } => Some(login_command),
            TokenError::Unreadable { .. } => None,
        }
    }
}

/// Where the AWS CLI caches the token for `login`.
pub fn cache_path(home: &Path, login: &SsoLogin) -> PathBuf {
    let digest = Sha1::digest(login.cache_key().as_bytes());
    home.join(".aws").join("sso").join("cache").join(format!("{digest:x}.json"))
}

/// The largest token cache file read: the AWS CLI writes well under 4 KiB.
pub const MAX_TOKEN_FILE: u64 = 1024 * 1024;

/// Loads the token for `login` and checks it is still valid at `now`.
pub fn load_token(home: &Path, login: &SsoLogin, now: DateTime) -> Result<CachedToken, TokenError> {
    let path = cache_path(home, login);
    let text = files::read_bounded(&path, MAX_TOKEN_FILE).map_err(|source| match source {
        ReadLimitError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            TokenError::Missing { login: login.describe(), path: path.clone(), login_command: login.login_command() }
        }
        source => TokenError::Unreadable { path: path.clone(), source },
    })?;
    let malformed =
        |reason: String| TokenError::Malformed { path: path.clone(), reason, login_command: login.login_command() };
    let file: CacheFile = serde_json::from_str(&text)
        .map_err(|e| malformed(format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())))?;
    // A header value cannot hold a line break: the SDK would fail to build every request
    // and the user would be told the portal cannot be reached.
    if let Some(bad) = file.access_token.expose_secret().chars().find(|c| c.is_control() || *c == ' ') {
        return Err(malformed(format!("accessToken holds {}", describe_char(bad))));
    }
    let expires_at = parse_expiry(&file.expires_at)
        .ok_or_else(|| malformed(format!("expiresAt {:?} is not an RFC 3339 time", file.expires_at)))?;
    let token = CachedToken { access_token: file.access_token, expires_at };
    ensure_token_not_expired(&token, login, now)?;
    Ok(token)
}

fn describe_char(c: char) -> String {
    match c {
        '\r' => "a carriage return (CR)".to_owned(),
        '\n' => "a line break (LF)".to_owned(),
        ' ' => "a space".to_owned(),
        other => format!("the control character {}", other.escape_default()),
    }
}

/// Accepts every RFC 3339 form the AWS CLI and SDKs write: botocore's
/// `2026-11-24T03:00:00Z`, aws-config's fractional seconds, and a numeric offset
/// (`+00:00`, `+02:00`), which the smithy parser alone rejects.
pub(crate) fn parse_expiry(text: &str) -> Option<DateTime> {
    let text = text.trim();
    if let Ok(utc) = DateTime::from_str(text, DateTimeFormat::DateTime) {
        return Some(utc);
    }
    let (local, sign, offset) = text.len().checked_sub(6).and_then(|split| {
        let (local, offset) = text.split_at_checked(split)?;
        let sign = match offset.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        Some((local, sign, &offset[1..]))
    })?;
    let (hours, minutes) = offset.split_once(':')?;
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    let local = DateTime::from_str(&format!("{local}Z"), DateTimeFormat::DateTime).ok()?;
    let utc_secs = local.secs().checked_sub(sign * (hours * 3600 + minutes * 60))?;
    Some(DateTime::from_secs_and_nanos(utc_secs, local.subsec_nanos()))
}

fn ensure_token_not_expired(token: &CachedToken, login: &SsoLogin, now: DateTime) -> Result<(), TokenError> {
    if token.expires_at > now {
        return Ok(());
    }
    let at = token.expires_at.fmt(DateTimeFormat::DateTime).unwrap_or_else(|_| "an unknown time".to_owned());
    Err(TokenError::Expired { login: login.describe(), at, login_command: login.login_command() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> SsoLogin {
        SsoLogin {
            session: Some("my-sso-session".to_owned()),
            start_url: "https://x.awsapps.com/start".to_owned(),
            sso_region: "us-east-1".to_owned(),
            profile: None,
            profile_region: None,
        }
    }

    fn write(home: &Path, body: &str) {
        let path = cache_path(home, &login());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }

    #[test]
    fn the_cache_file_is_named_by_sha1_of_the_session() {
        assert_eq!(
            cache_path(Path::new("/h"), &login()),
            Path::new("/h/.aws/sso/cache/b755b5ec73400c04400e978208d8559ad1f39053.json")
        );
    }

    #[test]
    fn both_timestamp_styles_parse() {
        let whole = parse_expiry("2026-11-24T03:00:00Z").unwrap();
        let fractional = parse_expiry("2026-11-24T04:57:07.387349Z").unwrap();
        assert_eq!(whole.secs(), 1_795_489_200);
        assert!(fractional > whole);
        assert_eq!(parse_expiry("2026-11-24T03:00:00+00:00").unwrap(), whole);
        assert_eq!(parse_expiry("2026-11-24T05:00:00+02:00").unwrap(), whole);
        assert_eq!(parse_expiry("2026-11-23T22:30:00-04:30").unwrap(), whole);
        assert!(parse_expiry("2026-11-24T03:00:00+25:00").is_none());
        assert!(parse_expiry("soon").is_none());
    }

    #[test]
    fn a_token_with_a_line_break_says_so() {
        let home = tempfile::tempdir().unwrap();
        write(home.path(), r#"{"accessToken":"sekrit\r\n","expiresAt":"2026-11-24T03:00:00Z"}"#);
        let err = load_token(home.path(), &login(), DateTime::from_secs(0)).unwrap_err().to_string();
        assert!(err.contains("carriage return") && !err.contains("sekrit"), "{err}");
    }

    #[test]
    fn an_endless_or_odd_cache_file_is_refused_not_read() {
        let home = tempfile::tempdir().unwrap();
        let path = cache_path(home.path(), &login());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let err = load_token(home.path(), &login(), DateTime::from_secs(0)).unwrap_err();
        assert!(matches!(err, TokenError::Unreadable { source: ReadLimitError::NotAFile, .. }), "{err:?}");
    }

    #[test]
    fn an_expired_token_names_the_time() {
        let home = tempfile::tempdir().unwrap();
        write(home.path(), r#"{"accessToken":"t","expiresAt":"2026-11-24T03:00:00Z"}"#);
        let err = load_token(home.path(), &login(), DateTime::from_secs(1_795_489_200)).unwrap_err();
        assert_eq!(err.to_string(), "SSO session \"my-sso-session\" expired at 2026-11-24T03:00:00Z");
    }

    #[test]
    fn a_valid_token_loads_and_the_error_text_never_quotes_it() {
        let home = tempfile::tempdir().unwrap();
        write(home.path(), r#"{"accessToken":"sekrit","expiresAt":"2026-11-24T03:00:00Z"}"#);
        let token = load_token(home.path(), &login(), DateTime::from_secs(0)).unwrap();
        assert_eq!(token.access_token.expose_secret(), "sekrit");
        write(home.path(), r#"{"accessToken":"sekrit","expiresAt":"soon"}"#);
        let err = load_token(home.path(), &login(), DateTime::from_secs(0)).unwrap_err().to_string();
        assert!(err.contains("not valid") && !err.contains("sekrit"), "{err}");
    }

    #[test]
    fn a_missing_file_is_missing() {
        let home = tempfile::tempdir().unwrap();
        let err = load_token(home.path(), &login(), DateTime::from_secs(0)).unwrap_err();
        assert!(matches!(err, TokenError::Missing { .. }));
    }
}
