//! The environment a child gets: its own account's credentials and names, and nothing
//! inherited that could make it use any other credentials.

use secrecy::ExposeSecret as _;

use crate::credentials::Credentials;

/// Inherited variables removed from every child: each could point an SDK or the CLI at
/// credentials other than the ones fanout sets (a profile, another account's keys,
/// container or web-identity credentials).
pub const REMOVED_VARS: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_ACCOUNT_ID",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
];

/// Every AWS SDK reads `AWS_BEARER_TOKEN_<SERVICE>` (`AWS_BEARER_TOKEN_BEDROCK` first)
/// as a credential it prefers over the keys fanout sets.
const BEARER_TOKEN_PREFIX: &str = "AWS_BEARER_TOKEN_";

/// The inherited variables to remove from a child: [`REMOVED_VARS`] and every bearer
/// token variable in fanout's own environment.
pub fn inherited_credential_vars() -> impl Iterator<Item = std::ffi::OsString> {
    let bearer_tokens = std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.to_str().is_some_and(|n| n.starts_with(BEARER_TOKEN_PREFIX)));
    REMOVED_VARS.iter().map(std::ffi::OsString::from).chain(bearer_tokens)
}

/// What fanout knows about the account a child runs in.
#[derive(Debug)]
pub struct AccountEnv<'a> {
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub role: &'a str,
    pub region: &'a str,
    pub credentials: &'a Credentials,
}

/// The variables set in the child, in a stable order.
pub fn child_env<'a>(account: &AccountEnv<'a>) -> [(&'static str, &'a str); 11] {
    let creds = account.credentials;
    [
        ("AWS_ACCESS_KEY_ID", creds.access_key_id.expose_secret()),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.expose_secret()),
        ("AWS_SESSION_TOKEN", creds.session_token.expose_secret()),
        ("AWS_CREDENTIAL_EXPIRATION", &creds.expiration),
        ("AWS_ACCOUNT_ID", account.account_id),
        ("AWS_REGION", account.region),
        ("AWS_DEFAULT_REGION", account.region),
        ("FANOUT_ACCOUNT_ID", account.account_id),
        ("FANOUT_ACCOUNT_NAME", account.account_name),
        ("FANOUT_ROLE", account.role),
        ("FANOUT_REGION", account.region),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn everything_set_is_removed_first_where_it_is_a_credential() {
        let credentials = Credentials::new(
            SecretString::from("AKIA"),
            SecretString::from("s"),
            SecretString::from("t"),
            std::time::SystemTime::now(),
        );
        let account = AccountEnv {
            account_id: "1",
            account_name: "n",
            role: "r",
            region: "eu-west-1",
            credentials: &credentials,
        };
        let env = child_env(&account);
        assert!(env.contains(&("AWS_SECRET_ACCESS_KEY", "s")));
        assert!(env.contains(&("AWS_DEFAULT_REGION", "eu-west-1")));
        for (name, _) in env.iter().filter(|(n, _)| n.starts_with("AWS_") && !n.contains("REGION")) {
            assert!(REMOVED_VARS.contains(name), "{name} is set but an inherited one is not removed");
        }
    }
}
