//! Stage 3: short-term credentials for one role in one account (`GetRoleCredentials`).

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
    /// Sent to the child as `AWS_CREDENTIAL_EXPIRATION`, in RFC 3339.
    pub expiration: String,
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
    Ok(Credentials {
        access_key_id: secret(creds.access_key_id())?,
        secret_access_key: secret(creds.secret_access_key())?,
        session_token: secret(creds.session_token())?,
        // The portal sends epoch milliseconds; the AWS CLI's env provider wants RFC 3339.
        expiration: DateTime::from_millis(creds.expiration()).fmt(DateTimeFormat::DateTime).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_key() {
        let credentials = Credentials {
            access_key_id: SecretString::from("ASIAKEY"),
            secret_access_key: SecretString::from("hunter2"),
            session_token: SecretString::from("token"),
            expiration: "2026-11-24T03:00:00Z".to_owned(),
        };
        let shown = format!("{credentials:?}");
        assert!(shown.contains("REDACTED") && shown.contains("2026-11-24"), "{shown}");
        for secret in ["ASIAKEY", "hunter2", "token\""] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
