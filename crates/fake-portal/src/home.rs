//! Throwaway `HOME` directories laid out as `aws configure sso` and `aws sso login` leave
//! them: `~/.aws/config` with an sso-session, and the token cache file named by the sha1
//! of the session name (or of the start URL, for legacy profiles).

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sha1::{Digest, Sha1};

/// What to write into a throwaway `HOME`.
#[derive(Clone, Debug)]
pub struct HomeOptions {
    pub session: String,
    pub start_url: String,
    pub sso_region: String,
    pub token: String,
    /// When the cached token expires.
    pub expires_at: SystemTime,
    /// When set, a `[profile <session>]` names a `[services]` block pointing `sso` here,
    /// so fanout finds the portal with no environment variable at all.
    pub portal_url: Option<String>,
}

impl Default for HomeOptions {
    fn default() -> Self {
        HomeOptions {
            session: "corp".to_owned(),
            start_url: "https://corp.awsapps.com/start".to_owned(),
            sso_region: "us-east-1".to_owned(),
            token: crate::DEFAULT_TOKEN.to_owned(),
            expires_at: SystemTime::now() + Duration::from_hours(8),
            portal_url: None,
        }
    }
}

/// Writes `~/.aws/config` and the session's token cache file under `home`.
pub fn write_home(home: &Path, options: &HomeOptions) -> io::Result<()> {
    let HomeOptions { session, start_url, sso_region, .. } = options;
    let mut config = format!(
        "[default]\nregion = eu-west-1\n\n\
         [sso-session {session}]\nsso_start_url = {start_url}\nsso_region = {sso_region}\n\
         sso_registration_scopes = sso:account:access\n"
    );
    if let Some(url) = &options.portal_url {
        let _ = write!(
            config,
            "\n[profile {session}]\nsso_session = {session}\nregion = eu-west-1\nservices = local-portal\n\n\
             [services local-portal]\nsso =\n  endpoint_url = {url}\n"
        );
    }
    std::fs::create_dir_all(home.join(".aws"))?;
    std::fs::write(home.join(".aws/config"), config)?;
    write_token(home, session, &options.token, options.expires_at)
}

/// Where `aws sso login` caches the token for `key` (a session name or legacy start URL).
pub fn token_cache_path(home: &Path, key: &str) -> PathBuf {
    let digest = Sha1::digest(key.as_bytes());
    home.join(".aws/sso/cache").join(format!("{digest:x}.json"))
}

/// Writes the cache file for `key` as botocore does (`expiresAt` in whole seconds).
pub fn write_token(home: &Path, key: &str, token: &str, expires_at: SystemTime) -> io::Result<()> {
    let path = token_cache_path(home, key);
    std::fs::create_dir_all(path.parent().expect("cache dir"))?;
    let body = json!({
        "startUrl": "https://corp.awsapps.com/start",
        "region": "us-east-1",
        "accessToken": token,
        "expiresAt": rfc3339(expires_at),
        "clientId": "fake-client-id",
        "clientSecret": "fake-client-secret",
    });
    std::fs::write(path, body.to_string())
}

/// The client registration and refresh token `aws sso login --sso-session` caches beside
/// the access token; [`write_refreshable_token`] writes them.
#[derive(Clone, Debug)]
pub struct RefreshFields {
    pub client_id: String,
    pub client_secret: String,
    pub registration_expires_at: SystemTime,
    pub refresh_token: String,
}

impl Default for RefreshFields {
    /// What the fake `CreateToken` accepts, registered for 90 days as the AWS CLI does.
    fn default() -> Self {
        RefreshFields {
            client_id: crate::oidc::DEFAULT_CLIENT_ID.to_owned(),
            client_secret: crate::oidc::DEFAULT_CLIENT_SECRET.to_owned(),
            registration_expires_at: SystemTime::now() + Duration::from_hours(90 * 24),
            refresh_token: crate::oidc::DEFAULT_REFRESH_TOKEN.to_owned(),
        }
    }
}

/// Writes the cache file for sso-session `session` with every field the AWS CLI writes
/// after `aws sso login --sso-session` (botocore's `SSOTokenProvider` writes the same
/// after a refresh): `startUrl`, `region`, `accessToken`, `expiresAt`, `clientId`,
/// `clientSecret`, `registrationExpiresAt`, `refreshToken`, times as `…T03:00:00Z`, no
/// whitespace (botocore's `JSONFileCache`), mode 0600.
pub fn write_refreshable_token(
    home: &Path,
    options: &HomeOptions,
    expires_at: SystemTime,
    refresh: &RefreshFields,
) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = token_cache_path(home, &options.session);
    std::fs::create_dir_all(path.parent().expect("cache dir"))?;
    let body = json!({
        "startUrl": options.start_url,
        "region": options.sso_region,
        "accessToken": options.token,
        "expiresAt": rfc3339(expires_at),
        "clientId": refresh.client_id,
        "clientSecret": refresh.client_secret,
        "registrationExpiresAt": rfc3339(refresh.registration_expires_at),
        "refreshToken": refresh.refresh_token,
    });
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(body.to_string().as_bytes())
}

/// `2026-11-24T03:00:00Z` for `at`, by the civil-from-days algorithm (H. Hinnant).
pub fn rfc3339(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(clippy::duration_suboptimal_units, reason = "an epoch timestamp reads best in seconds")]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_489_200)), "2026-11-24T03:00:00Z");
    }

    #[test]
    fn names_cache_files_like_botocore() {
        // botocore: sha1("my-sso-session")
        let path = token_cache_path(Path::new("/h"), "my-sso-session");
        assert_eq!(path, Path::new("/h/.aws/sso/cache/b755b5ec73400c04400e978208d8559ad1f39053.json"));
    }
}
