//! Renewing the SSO access token as the AWS CLI does, and the holder every portal call
//! takes its token from.
//!
//! `aws sso login --sso-session X` caches an access token that lasts about an hour beside
//! a refresh token and the client registration it was issued to. Within botocore's
//! window (15 minutes before expiry; mandatory at 10) fanout calls SSO OIDC `CreateToken`
//! with the refresh-token grant and writes the new token back into the same cache file,
//! so the AWS CLI, the SDKs and the next fanout all use it. Legacy start-URL logins never
//! refresh, as in botocore.
//!
//! Every refresh rotates the refresh token: two refreshers racing with the same one lose
//! the session (the second is answered `InvalidGrantException`). So the refresh runs
//! under an advisory lock on a file of fanout's own, `<cache dir>/locks/<token file
//! name>.lock` (the cache file itself is replaced by a rename, so a lock on it would be on
//! a file that is gone), and the cache file is read again once the lock is held: a token
//! someone else wrote meanwhile is used as it is, with no `CreateToken` call. The lock is
//! not beside the cache file: `~/.aws/sso/cache` holds only what the AWS CLI writes, since
//! scripts json-parse every file there (issue 16, point 12).
//!
//! The rewrite keeps every field the AWS CLI wrote and changes only `accessToken`,
//! `expiresAt` and (when a new one comes back) `refreshToken`, in a temporary file
//! created 0600 in the same directory and renamed over the old one, so a reader sees the
//! old file or the new one, never half of one. A cache file that is a symlink is never
//! replaced by a regular file: the rewrite goes to the file it leads to when that is a
//! private file of the user's in a directory of the user's, and is otherwise refused
//! with a warning ([`write_target`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_sdk_sso::primitives::DateTime;
use aws_sdk_ssooidc::error::{DisplayErrorContext, ProvideErrorMetadata as _, SdkError};
use aws_sdk_ssooidc::operation::create_token::CreateTokenError;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::time::Instant;

use super::{CachedToken, RefreshGrant, TokenError, TokenFile, cache_path, ensure_token_not_expired, read_token_file};
use crate::files;
use crate::login::{AwsConfig, SsoLogin, endpoint};
use crate::text;

/// botocore refreshes this long before expiry, when it can (`tokens.py`).
pub const REFRESH_WINDOW_SECS: i64 = 15 * 60;
/// … and must refresh this long before: a failure is then waited for, not skipped.
pub const MANDATORY_WINDOW_SECS: i64 = 10 * 60;
/// After a failed attempt the next waits this long, as botocore's does.
const RETRY_AFTER: Duration = Duration::from_mins(1);
/// How long to wait for another process's refresh to release the lock; a refresh is one
/// HTTP call, so a lock held longer than this belongs to a process that is stuck.
const LOCK_PATIENCE: Duration = Duration::from_mins(1);
const LOCK_POLL: Duration = Duration::from_millis(50);

/// How urgently a token needs renewing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Outside the window: use it.
    None,
    /// Within 15 minutes of expiry: refresh if no one else is refreshing; on failure use it.
    Advisory,
    /// Within 10 minutes of expiry, or expired: wait for a refresh in progress.
    Mandatory,
}

/// Where `expires_at` stands at `now` against botocore's windows.
pub fn refresh_need(expires_at: DateTime, now: DateTime) -> Need {
    let left = expires_at.secs().saturating_sub(now.secs());
    if left > REFRESH_WINDOW_SECS {
        Need::None
    } else if left > MANDATORY_WINDOW_SECS {
        Need::Advisory
    } else {
        Need::Mandatory
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("it cannot be refreshed: {0}")]
    Impossible(super::NoRefresh),
    #[error("SSO OIDC CreateToken rejected the refresh ({}{})", text::show(code), detail(message))]
    Rejected { code: String, message: String },
    #[error("SSO OIDC CreateToken failed: {}", text::show(.0))]
    Failed(String),
    #[error("SSO OIDC CreateToken answered without a usable access token")]
    BadAnswer,
    #[error("another process has held the refresh lock {} for {}s", path.display(), LOCK_PATIENCE.as_secs())]
    LockTimeout { path: PathBuf },
    #[error("cannot lock {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the token cache file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] TokenError),
}

/// What a refresh brought.
#[derive(Debug)]
pub enum Refreshed {
    /// `CreateToken` minted it and it is in the cache file now.
    Minted(CachedToken),
    /// Someone else (another fanout, the AWS CLI) refreshed while we waited for the lock.
    Adopted(CachedToken),
    /// Another process holds the lock and the need was only advisory: nothing was done.
    Busy,
}

/// Renews one login's token: the OIDC client, the lock and the rewrite.
pub struct Refresher {
    path: PathBuf,
    /// fanout's lock for `path`, under the cache directory ([`lock_path`]).
    lock: PathBuf,
    login: SsoLogin,
    client: aws_sdk_ssooidc::Client,
}

impl Refresher {
    /// The OIDC client is built as the portal's is ([`endpoint::sdk_config`]): the login's
    /// `sso_region`, `AWS_ENDPOINT_URL_SSO_OIDC` and the profile's `[services]` `sso_oidc`.
    pub async fn new(home: &Path, cache_dir: &Path, login: &SsoLogin, aws_config: &AwsConfig) -> Self {
        let sdk = endpoint::sdk_config(login, aws_config).await;
        let mut builder = aws_sdk_ssooidc::config::Builder::from(&sdk);
        if let Some(url) = endpoint::oidc_services_endpoint(login, aws_config).await {
            builder = builder.endpoint_url(url);
        }
        let client = aws_sdk_ssooidc::Client::from_conf(builder.build());
        let path = cache_path(home, login);
        Refresher { lock: lock_path(cache_dir, &path), path, login: login.clone(), client }
    }

    /// Replaces `held` by a newer token: one someone else wrote, else one from `CreateToken`.
    /// With `Need::Advisory` a lock held by another process is not waited for.
    pub async fn refresh(&self, held: &CachedToken, need: Need) -> Result<Refreshed, RefreshError> {
        let Some(_lock) = self.lock(need == Need::Advisory).await? else {
            return Ok(Refreshed::Busy);
        };
        remove_legacy_lock(&self.path);
        let now = DateTime::from(SystemTime::now());
        let file = read_token_file(&self.path, &self.login, now)?;
        if is_newer(&file.token, held) {
            tracing::info!("using the SSO token another process refreshed");
            return Ok(Refreshed::Adopted(file.token));
        }
        let grant = file.grant.as_ref().map_err(|reason| RefreshError::Impossible(reason.clone()))?;
        let (token, rotated) = self.create_token(grant).await?;
        // The old refresh token is spent now: a file that cannot take the new one still
        // leaves this run the new access token, with a warning.
        let written = rewritten(file.raw.expose_secret(), &token, rotated.as_ref())
            .map_err(std::io::Error::from)
            .and_then(|text| files::write_atomically(&write_target(&self.path)?, text.as_bytes()));
        if let Err(source) = written {
            let error = RefreshError::Write { path: self.path.clone(), source };
            tracing::warn!("refreshed the SSO token but {}", text::error_chain(&error));
        }
        tracing::info!(expires_at = %super::format_expiry(token.expires_at), "refreshed the SSO token");
        Ok(Refreshed::Minted(token))
    }

    /// Takes the sidecar lock, polling so a wait never blocks a runtime thread; `None`
    /// when `give_way` and another process holds it. The lock ends when the file closes.
    async fn lock(&self, give_way: bool) -> Result<Option<File>, RefreshError> {
        let path = self.lock.clone();
        let lock_error = |source| RefreshError::Lock { path: path.clone(), source };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(lock_error)?;
        // A directory others can write could hold their lock file or a planted link.
        files::check_private_dir(dir)
            .map_err(|problem| lock_error(std::io::Error::other(format!("{}: {problem}", dir.display()))))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(lock_error)?;
        let deadline = Instant::now() + LOCK_PATIENCE;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(file)),
                Err(TryLockError::WouldBlock) if give_way => return Ok(None),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => tokio::time::sleep(LOCK_POLL).await,
                Err(TryLockError::WouldBlock) => return Err(RefreshError::LockTimeout { path }),
                Err(TryLockError::Error(source)) => return Err(lock_error(source)),
            }
        }
    }

    /// `CreateToken` with the refresh-token grant: the new token, and the rotated refresh
    /// token when one came back.
    async fn create_token(&self, grant: &RefreshGrant) -> Result<(CachedToken, Option<SecretString>), RefreshError> {
        let sent = DateTime::from(SystemTime::now());
        let output = self
            .client
            .create_token()
            .grant_type("refresh_token")
            .client_id(&grant.client_id)
            .client_secret(grant.client_secret.expose_secret())
            .refresh_token(grant.refresh_token.expose_secret())
            .send()
            .await
            .map_err(|e| describe_failure(&e))?;
        let access_token = output.access_token().filter(|t| !t.is_empty() && super::unusable_char(t).is_none());
        let (Some(access_token), Ok(expires_in @ 1..)) = (access_token, u64::try_from(output.expires_in())) else {
            return Err(RefreshError::BadAnswer);
        };
        let expires_at = DateTime::from_secs(sent.secs().saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX)));
        let rotated = output.refresh_token().filter(|t| !t.is_empty()).map(|t| SecretString::from(t.to_owned()));
        Ok((CachedToken { access_token: SecretString::from(access_token.to_owned()), expires_at }, rotated))
    }
}

/// Sorts a failed `CreateToken`: the service's refusals by their code (never its body,
/// which could echo the request), anything else by the SDK's description.
fn describe_failure<R: std::fmt::Debug>(error: &SdkError<CreateTokenError, R>) -> RefreshError {
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("UnknownError").to_owned();
            // SSO OIDC puts its message in `error_description`, not `message`.
            let description = match err {
                CreateTokenError::InvalidGrantException(e) => e.error_description(),
                CreateTokenError::InvalidClientException(e) => e.error_description(),
                CreateTokenError::ExpiredTokenException(e) => e.error_description(),
                CreateTokenError::UnauthorizedClientException(e) => e.error_description(),
                _ => None,
            };
            let message = description.or(err.message()).unwrap_or_default().to_owned();
            RefreshError::Rejected { code, message }
        }
        _ => RefreshError::Failed(DisplayErrorContext(error).to_string()),
    }
}

/// `: <the service's message>`, when it sent one.
fn detail(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {}", text::show(message)) }
}

/// Whether the file's token is another refresher's, newer than the one we hold.
fn is_newer(file: &CachedToken, held: &CachedToken) -> bool {
    file.expires_at > held.expires_at && file.access_token.expose_secret() != held.access_token.expose_secret()
}

/// `<cache_dir>/locks/<cache file name>.lock`: a file of its own, since the cache file is
/// replaced by a rename (a lock on it would be lost with the old inode), and in fanout's
/// directory, not the AWS CLI's, whose every file scripts read as JSON. Every fanout
/// with the same cache directory (`$XDG_CACHE_HOME/fanout`, `~/.cache/fanout`) and
/// token file takes the same lock.
fn lock_path(cache_dir: &Path, cache: &Path) -> PathBuf {
    let mut name = cache.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    cache_dir.join("locks").join(name)
}

/// Removes the `<cache file>.lock` fanout used to leave beside the cache file, so an
/// upgrade also clears the AWS CLI's directory: only an empty regular file of the
/// user's that no process holds locked (an older fanout refreshing now keeps its lock).
fn remove_legacy_lock(cache: &Path) {
    let mut name = cache.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    let path = cache.with_file_name(name);
    let Ok(file) = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(&path) else {
        return;
    };
    let unused = file.metadata().is_ok_and(|m| m.is_file() && m.len() == 0 && files::is_mine(&m));
    if unused && file.try_lock().is_ok() && std::fs::remove_file(&path).is_ok() {
        tracing::debug!("removed the lock file {} an older fanout left", path.display());
    }
}

/// Where a refreshed token is written for the cache file at `path`: `path` itself,
/// unless it is a symlink. A rename over a symlink would replace the link by a regular
/// file, silently parting it from the file it led to (the one the user keeps, or one
/// another user planted); so the rewrite goes through the link, to the file it leads to,
/// when that is a regular file of the user's that no one else can write, in a directory
/// of the user's that no one else can write (so nobody can swap it before the rename).
/// Any other link is refused: the error becomes the run's warning, and the file keeps
/// the old token (whose refresh token is now spent: the next run asks for a login).
fn write_target(path: &Path) -> std::io::Result<PathBuf> {
    if !std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Ok(path.to_owned());
    }
    let target = std::fs::canonicalize(path)?;
    let refuse = |why: String| {
        std::io::Error::other(format!(
            "it is a symlink to {}, {why}; it was not rewritten, so that the link is not replaced",
            target.display()
        ))
    };
    let private =
        |metadata: &std::fs::Metadata| files::is_mine(metadata) && files::check_private(metadata, &target).is_ok();
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&target)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() || !private(&metadata) {
        return Err(refuse("which is not a file of yours that only you can write".to_owned()));
    }
    let dir = target.parent().unwrap_or(Path::new("/"));
    if !std::fs::symlink_metadata(dir).is_ok_and(|metadata| private(&metadata)) {
        return Err(refuse(format!("in {}, which is not a directory only you can write", dir.display())));
    }
    Ok(target)
}

/// The cache file's text with the new token: every other field kept as the AWS CLI
/// wrote it, `expiresAt` in botocore's form.
fn rewritten(original: &str, token: &CachedToken, rotated: Option<&SecretString>) -> Result<String, serde_json::Error> {
    let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(original)?;
    fields.insert("accessToken".to_owned(), token.access_token.expose_secret().into());
    fields.insert("expiresAt".to_owned(), super::format_expiry(token.expires_at).into());
    if let Some(refresh_token) = rotated {
        fields.insert("refreshToken".to_owned(), refresh_token.expose_secret().into());
    }
    serde_json::to_string(&fields)
}

/// The token a [`crate::portal::Portal`] calls with, shared by all its tasks and renewed
/// once for all of them. Each renewal raises the generation: a task whose call was
/// refused with an older generation's token just retries with the current one, so many
/// tasks meeting a 401 at once cause one refresh.
pub struct TokenHolder {
    login: SsoLogin,
    /// `None` for legacy logins, and for `fanout doctor`, which only looks.
    refresher: Option<Refresher>,
    held: tokio::sync::Mutex<Held>,
}

struct Held {
    generation: u64,
    token: CachedToken,
    /// The generation a refresh after a 401 failed for: it is not tried again.
    failed_generation: Option<u64>,
    /// When a refresh last failed, so a broken one is retried once a minute, not per call.
    failed_at: Option<Instant>,
}

impl TokenHolder {
    /// Reads the login's token and refreshes it when it is within the window; an expired
    /// token that cannot be refreshed is today's exit-3 error naming `aws sso login`.
    pub async fn load(
        home: &Path,
        cache_dir: &Path,
        login: &SsoLogin,
        aws_config: &AwsConfig,
    ) -> Result<Self, TokenError> {
        let now = DateTime::from(SystemTime::now());
        let file = read_token_file(&cache_path(home, login), login, now)?;
        file.warn_if_untrusted();
        let TokenFile { token, grant, .. } = file;
        let refresher = match &grant {
            Ok(_) => Some(Refresher::new(home, cache_dir, login, aws_config).await),
            Err(reason) => {
                if refresh_need(token.expires_at, now) != Need::None {
                    tracing::info!("the SSO token {reason}");
                }
                None
            }
        };
        let holder = TokenHolder {
            login: login.clone(),
            refresher,
            held: tokio::sync::Mutex::new(Held { generation: 0, token, failed_generation: None, failed_at: None }),
        };
        holder.current().await?;
        Ok(holder)
    }

    /// A holder that never refreshes, for a check that must not change the cache file.
    pub fn fixed(login: &SsoLogin, token: CachedToken) -> Self {
        let held = Held { generation: 0, token, failed_generation: None, failed_at: None };
        TokenHolder { login: login.clone(), refresher: None, held: tokio::sync::Mutex::new(held) }
    }

    /// The token to call with and its generation, refreshed first when it is within the
    /// window. A failed refresh of a token still valid is a warning; of an expired one,
    /// the expiry error.
    pub async fn current(&self) -> Result<(u64, SecretString), TokenError> {
        let mut held = self.held.lock().await;
        let now = DateTime::from(SystemTime::now());
        let need = refresh_need(held.token.expires_at, now);
        let resting = held.failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER);
        if let (Some(refresher), false, false) = (&self.refresher, need == Need::None, resting) {
            match refresher.refresh(&held.token, need).await {
                Ok(Refreshed::Minted(token) | Refreshed::Adopted(token)) => held.replace(token),
                Ok(Refreshed::Busy) => {}
                Err(error) => {
                    held.failed_at = Some(Instant::now());
                    if held.token.expires_at > now {
                        tracing::warn!(
                            "could not refresh the SSO token, which is still valid: {}",
                            text::error_chain(&error)
                        );
                    } else {
                        tracing::warn!("could not refresh the SSO token: {}", text::error_chain(&error));
                    }
                }
            }
        }
        ensure_token_not_expired(&held.token, &self.login, DateTime::from(SystemTime::now()))?;
        Ok((held.generation, held.token.access_token.clone()))
    }

    /// After the portal refused the token of `generation`: the current token if it is
    /// newer, else one refresh (shared by every task refused with that generation).
    /// `None` when no refresh can cure it.
    pub async fn after_rejection(&self, generation: u64) -> Option<(u64, SecretString)> {
        let mut held = self.held.lock().await;
        if held.generation != generation {
            return Some((held.generation, held.token.access_token.clone()));
        }
        if held.failed_generation == Some(generation) {
            return None;
        }
        let refreshed = match &self.refresher {
            Some(refresher) => refresher.refresh(&held.token, Need::Mandatory).await,
            None => return None,
        };
        match refreshed {
            Ok(Refreshed::Minted(token) | Refreshed::Adopted(token)) => {
                tracing::info!("the portal refused the SSO token; refreshed it");
                held.replace(token);
                Some((held.generation, held.token.access_token.clone()))
            }
            Ok(Refreshed::Busy) => None,
            Err(error) => {
                tracing::warn!(
                    "the portal refused the SSO token and it could not be refreshed: {}",
                    text::error_chain(&error)
                );
                held.failed_generation = Some(generation);
                None
            }
        }
    }
}

impl Held {
    fn replace(&mut self, token: CachedToken) {
        self.token = token;
        self.generation += 1;
        self.failed_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(secret: &str, expires_at: i64) -> CachedToken {
        CachedToken { access_token: SecretString::from(secret.to_owned()), expires_at: DateTime::from_secs(expires_at) }
    }

    #[test]
    fn the_window_is_botocores() {
        let now = DateTime::from_secs(1_000_000);
        let at = |left: i64| refresh_need(DateTime::from_secs(1_000_000 + left), now);
        assert_eq!(at(3600), Need::None);
        assert_eq!(at(15 * 60 + 1), Need::None);
        assert_eq!(at(15 * 60), Need::Advisory);
        assert_eq!(at(10 * 60 + 1), Need::Advisory);
        assert_eq!(at(10 * 60), Need::Mandatory);
        assert_eq!(at(-5), Need::Mandatory);
    }

    #[test]
    fn a_rewrite_keeps_every_other_field() {
        let original = r#"{"startUrl":"https://x/start","region":"eu-west-1","accessToken":"old","expiresAt":"2026-11-24T03:00:00Z","clientId":"c","clientSecret":"s","registrationExpiresAt":"2027-02-01T00:00:00Z","refreshToken":"r0","extra":{"kept":[1,2]}}"#;
        let new = token("new", 1_795_492_800);
        let rotated = SecretString::from("r1".to_owned());
        let text = rewritten(original, &new, Some(&rotated)).unwrap();
        let mut expected: serde_json::Value = serde_json::from_str(original).unwrap();
        expected["accessToken"] = "new".into();
        expected["expiresAt"] = "2026-11-24T04:00:00Z".into();
        expected["refreshToken"] = "r1".into();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), expected);
        let kept = rewritten(original, &new, None).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&kept).unwrap()["refreshToken"], "r0");
    }

    #[test]
    fn a_rewrite_of_what_is_not_an_object_fails() {
        assert!(rewritten("[1]", &token("t", 0), None).is_err());
    }

    #[test]
    fn only_another_refreshers_later_token_is_adopted() {
        assert!(is_newer(&token("b", 20), &token("a", 10)));
        assert!(!is_newer(&token("a", 20), &token("a", 10)));
        assert!(!is_newer(&token("b", 5), &token("a", 10)));
    }

    #[test]
    fn the_lock_is_in_fanouts_cache_directory_named_by_the_token_file() {
        let lock = lock_path(Path::new("/h/.cache/fanout"), Path::new("/h/.aws/sso/cache/ab.json"));
        assert_eq!(lock, Path::new("/h/.cache/fanout/locks/ab.json.lock"));
    }

    #[test]
    fn a_symlinked_cache_file_is_written_through_to_a_private_target_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (target, link) = (dir.path().join("kept.json"), dir.path().join("ab.json"));
        std::fs::write(&target, "{}").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(write_target(&target).unwrap(), target, "a regular file is its own target");
        assert_eq!(write_target(&link).unwrap(), std::fs::canonicalize(&target).unwrap());
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
        let refused = write_target(&link).unwrap_err().to_string();
        assert!(refused.contains("symlink to") && refused.contains("not rewritten"), "{refused}");
        std::os::unix::fs::symlink("/dev/null", dir.path().join("null.json")).unwrap();
        assert!(write_target(&dir.path().join("null.json")).is_err());
    }
}
