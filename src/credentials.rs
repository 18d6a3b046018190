//! Stage 3: short-term credentials for one role in one account (`GetRoleCredentials`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sso::primitives::{DateTime, DateTimeFormat};

use crate::portal::{Portal, PortalError};
use secrecy::SecretString;

/// One account's keys. Every value is a [`SecretString`] (zeroized on drop, `[REDACTED]`
/// in `Debug`): the access key id is not secret by
/// itself, but it names the account's session in logs nobody should have to scrub.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
    pub session_token: SecretString,
    /// When they expire, as a time: whether they are still good enough for a child
    /// that starts late is a comparison, not a parse.
    pub expires_at: SystemTime,
    /// The same instant in RFC 3339, sent to the child as `AWS_CREDENTIAL_EXPIRATION`.
    pub expiration: String,
}

impl Credentials {
    /// Keys expiring at `expires_at`; the RFC 3339 form is derived from it, so the two
    /// can never disagree.
    pub fn new(
        access_key_id: SecretString,
        secret_access_key: SecretString,
        session_token: SecretString,
        expires_at: SystemTime,
    ) -> Self {
        let expiration = DateTime::from(expires_at).fmt(DateTimeFormat::DateTime).unwrap_or_default();
        Credentials { access_key_id, secret_access_key, session_token, expires_at, expiration }
    }

    /// The expiry in epoch milliseconds, as the portal sends it and the article's
    /// `sso_role_credentials.json` keeps it.
    pub fn expiration_millis(&self) -> u64 {
        let since_epoch = self.expires_at.duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether they expire within `margin` of `now` (or already have): a child started
    /// with them could lose them mid-call.
    pub fn expire_within(&self, margin: Duration, now: SystemTime) -> bool {
        self.expires_at.duration_since(now).is_ok_and(|left| left <= margin) || self.expires_at <= now
    }
}

/// Fetches credentials for `role` in `account_id`; retries are the portal's.
pub async fn fetch(portal: &Portal, account_id: &str, role: &str) -> Result<Credentials, PortalError> {
    let output = portal.role_credentials(account_id, role).await?;
    let missing = || PortalError::Service {
        operation: "GetRoleCredentials",
        code: "IncompleteResponse".to_owned(),
        status: 200,
        message: "the portal returned no credentials".to_owned(),
    };
    let creds = output.role_credentials().ok_or_else(missing)?;
    let secret = |value: Option<&str>| value.map(|v| SecretString::from(v.to_owned())).ok_or_else(missing);
    // The portal sends epoch milliseconds; a negative one is no expiry anyone can use.
    let millis = u64::try_from(creds.expiration()).map_err(|_| missing())?;
    Ok(Credentials::new(
        secret(creds.access_key_id())?,
        secret(creds.secret_access_key())?,
        secret(creds.session_token())?,
        UNIX_EPOCH + Duration::from_millis(millis),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiring_at(expires_at: SystemTime) -> Credentials {
        Credentials::new(
            SecretString::from("ASIAKEY"),
            SecretString::from("hunter2"),
            SecretString::from("token"),
            expires_at,
        )
    }

    #[test]
    fn debug_never_shows_a_key() {
        let credentials = expiring_at(UNIX_EPOCH + Duration::from_millis(1_795_489_200_123));
        let shown = format!("{credentials:?}");
        assert!(shown.contains("REDACTED") && shown.contains("2026-11-24"), "{shown}");
        for secret in ["ASIAKEY", "hunter2", "token\""] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn the_expiry_is_one_instant_in_every_form() {
        let credentials = expiring_at(UNIX_EPOCH + Duration::from_millis(1_795_489_200_123));
        assert_eq!(credentials.expiration_millis(), 1_795_489_200_123);
        assert!(credentials.expiration.starts_with("2026-11-24T03:00:00"), "{}", credentials.expiration);
    }

    #[test]
    fn near_expiry_is_within_the_margin_or_past() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_mins(5);
        assert!(expiring_at(now + Duration::from_mins(4)).expire_within(margin, now));
        assert!(expiring_at(now - Duration::from_secs(1)).expire_within(margin, now));
        assert!(!expiring_at(now + Duration::from_mins(6)).expire_within(margin, now));
    }
}
