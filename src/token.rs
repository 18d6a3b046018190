//! Stage 1b: the access token `aws sso login` cached for the chosen login.
//!
//! The file is opened by name, exactly where the AWS CLI writes it
//! (`~/.aws/sso/cache/<sha1 hex of the session name or legacy start URL>.json`), never
//! found by scanning the directory: a scan can pick another portal's token.
//!
//! This module only reads it; [`refresh`] renews it through SSO OIDC and writes it back.

pub mod refresh;

use std::path::{Path, PathBuf};

use aws_sdk_sso::primitives::{DateTime, DateTimeFormat};
use serde::Deserialize;
use sha1::{Digest, Sha1};

use crate::login::SsoLogin;
use secrecy::{ExposeSecret as _, SecretString};

use crate::files::{self, NotPrivate, ReadLimitError};
use crate::text;

/// An unexpired access token for the SSO portal.
#[derive(Debug)]
pub struct CachedToken {
    pub access_token: SecretString,
    pub expires_at: DateTime,
}

/// The fields fanout needs; botocore and aws-config write more (`startUrl`, `region`),
/// which a refresh keeps as they are.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheFile {
    access_token: SecretString,
    expires_at: String,
    refresh_token: Option<SecretString>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    registration_expires_at: Option<String>,
}

/// What a refresh needs from the cache file: the client registration `aws sso login`
/// made and the refresh token it was given.
#[derive(Debug)]
pub struct RefreshGrant {
    pub client_id: String,
    pub client_secret: SecretString,
    pub refresh_token: SecretString,
    pub registration_expires_at: DateTime,
}

/// Why a cached token cannot be refreshed; the AWS CLI refuses in the same cases.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoRefresh {
    #[error("a legacy login (sso_start_url in the profile) is never refreshed")]
    Legacy,
    #[error("the cache file has no {0}")]
    Missing(&'static str),
    #[error("registrationExpiresAt is not a time")]
    BadRegistrationTime,
    #[error("the client registration expired at {0}")]
    RegistrationExpired(String),
}

/// The cache file as read: the token (not checked for expiry) and whether it can be
/// refreshed at the time it was read.
#[derive(Debug)]
pub struct TokenFile {
    pub token: CachedToken,
    pub grant: Result<RefreshGrant, NoRefresh>,
    /// The whole file, which a refresh rewrites field by field.
    pub(crate) raw: SecretString,
    /// Why the file may not be the user's alone (another user owns it, or group or others
    /// can write it): it is still used, as the AWS CLI uses it, but whoever can write it
    /// chooses the token fanout calls with, so the run says so ([`TokenFile::warn_if_untrusted`]).
    pub untrusted: Option<NotPrivate>,
}

impl TokenFile {
    /// One warning line when the file is not private to the user. Not an error: the AWS
    /// CLI and the SDKs read the same file without a check, and refusing it would only
    /// move the user to them.
    pub fn warn_if_untrusted(&self) {
        if let Some(problem) = &self.untrusted {
            tracing::warn!("{}", untrusted_warning(problem));
        }
    }
}

/// The warning for a token cache file that is not private to the user.
pub fn untrusted_warning(problem: &NotPrivate) -> String {
    text::show(&format!(
        "the token cache file {problem}: whoever can write it chooses the SSO token fanout uses; {}",
        problem.fix()
    ))
    .into_owned()
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

/// Reads the cache file at `path` (see [`cache_path`]) for `login`; whether the token has
/// expired is the caller's question, since an expired token may still be refreshed.
pub fn read_token_file(path: &Path, login: &SsoLogin, now: DateTime) -> Result<TokenFile, TokenError> {
    let path = path.to_owned();
    let unreadable = |source| match source {
        ReadLimitError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            TokenError::Missing { login: login.describe(), path: path.clone(), login_command: login.login_command() }
        }
        source => TokenError::Unreadable { path: path.clone(), source },
    };
    let file = files::open_regular(&path).map_err(unreadable)?;
    // fstat of the handle read, so the file judged is the file used; after a symlink,
    // it is the target that is judged.
    let untrusted = file.metadata().map_err(|e| unreadable(e.into()))?;
    let untrusted = files::check_private(&untrusted, &path).err();
    let text = files::read_to_limit(file, MAX_TOKEN_FILE).map_err(unreadable)?;
    let malformed =
        |reason: String| TokenError::Malformed { path: path.clone(), reason, login_command: login.login_command() };
    let file: CacheFile = serde_json::from_str(&text)
        .map_err(|e| malformed(format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())))?;
    if let Some(bad) = unusable_char(file.access_token.expose_secret()) {
        return Err(malformed(format!("accessToken holds {}", describe_char(bad))));
    }
    let expires_at = parse_expiry(&file.expires_at)
        .ok_or_else(|| malformed(format!("expiresAt {:?} is not an RFC 3339 time", file.expires_at)))?;
    let grant = refresh_grant(
        login,
        file.refresh_token,
        file.client_id,
        file.client_secret,
        file.registration_expires_at.as_deref(),
        now,
    );
    let token = CachedToken { access_token: file.access_token, expires_at };
    Ok(TokenFile { token, grant, raw: SecretString::from(text), untrusted })
}

/// The refresh grant the fields make, when they make one that is still registered at `now`.
fn refresh_grant(
    login: &SsoLogin,
    refresh_token: Option<SecretString>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    registration_expires_at: Option<&str>,
    now: DateTime,
) -> Result<RefreshGrant, NoRefresh> {
    if login.session.is_none() {
        return Err(NoRefresh::Legacy);
    }
    let refresh_token = refresh_token.ok_or(NoRefresh::Missing("refreshToken"))?;
    let client_id = client_id.ok_or(NoRefresh::Missing("clientId"))?;
    let client_secret = client_secret.ok_or(NoRefresh::Missing("clientSecret"))?;
    let at = registration_expires_at.ok_or(NoRefresh::Missing("registrationExpiresAt"))?;
    let registration_expires_at = parse_expiry(at).ok_or(NoRefresh::BadRegistrationTime)?;
    if registration_expires_at <= now {
        return Err(NoRefresh::RegistrationExpired(format_expiry(registration_expires_at)));
    }
    Ok(RefreshGrant { client_id, client_secret, refresh_token, registration_expires_at })
}

/// A character a token may not hold. A header value cannot hold a line break: the SDK
/// would fail to build every request and the user would be told the portal cannot be
/// reached.
pub(crate) fn unusable_char(token: &str) -> Option<char> {
    token.chars().find(|c| c.is_control() || *c == ' ')
}

/// A time as botocore writes `expiresAt`: `2026-11-24T03:00:00Z`, whole seconds.
pub fn format_expiry(at: DateTime) -> String {
    DateTime::from_secs(at.secs()).fmt(DateTimeFormat::DateTime).unwrap_or_else(|_| "an unknown time".to_owned())
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

/// The error a token expired at `now` gives: it names the login and `aws sso login`.
pub fn ensure_token_not_expired(token: &CachedToken, login: &SsoLogin, now: DateTime) -> Result<(), TokenError> {
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

    /// Reads the token and checks it as a run without a refresh would.
    fn load_token(home: &Path, login: &SsoLogin, now: DateTime) -> Result<CachedToken, TokenError> {
        let file = read_token_file(&cache_path(home, login), login, now)?;
        ensure_token_not_expired(&file.token, login, now)?;
        Ok(file.token)
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

    #[test]
    fn a_refresh_needs_every_field_and_a_live_registration() {
        let home = tempfile::tempdir().unwrap();
        let full = r#"{"accessToken":"t","expiresAt":"2026-11-24T03:00:00Z","clientId":"c","clientSecret":"s","refreshToken":"r","registrationExpiresAt":"2027-01-01T00:00:00Z"}"#;
        write(home.path(), full);
        let read = |login: &SsoLogin, now| read_token_file(&cache_path(home.path(), login), login, now).unwrap().grant;
        assert!(read(&login(), DateTime::from_secs(0)).is_ok());
        assert_eq!(
            read(&login(), DateTime::from_secs(1_900_000_000)).unwrap_err(),
            NoRefresh::RegistrationExpired("2027-01-01T00:00:00Z".to_owned())
        );
        write(home.path(), &full.replace(r#""refreshToken":"r","#, ""));
        assert_eq!(read(&login(), DateTime::from_secs(0)).unwrap_err(), NoRefresh::Missing("refreshToken"));
        let legacy = SsoLogin { session: None, ..login() };
        write_at(home.path(), &legacy, full);
        assert_eq!(read(&legacy, DateTime::from_secs(0)).unwrap_err(), NoRefresh::Legacy);
    }

    fn write_at(home: &Path, login: &SsoLogin, body: &str) {
        let path = cache_path(home, login);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
}
