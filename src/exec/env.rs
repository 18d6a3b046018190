//! The environment a child gets: its own account's credentials and names, and nothing
//! inherited that could make it use any other credentials.

use secrecy::ExposeSecret as _;

use crate::credentials::Credentials;
use crate::credserver::ChildAccess;

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
    /// Its OU path (`--accounts-meta`); empty when the organization says none. Set even
    /// then, so a script's `set -u` holds and a parent fanout's value is not inherited.
    pub ou_path: &'a str,
    pub credentials: ChildCredentials<'a>,
}

/// How a child gets its account's credentials.
#[derive(Debug)]
pub enum ChildCredentials<'a> {
    /// The three key variables, fixed for the child's life.
    Keys(&'a Credentials),
    /// `--credential-server`: a loopback URI and the child's own token, for credentials
    /// renewed while it runs.
    Server(&'a ChildAccess),
}

/// Where a child with the credential server finds no AWS config or credentials file:
/// every SDK's chain tries a `[default]` profile's keys, SSO, role or
/// `credential_process` before container credentials, so any of them (the user's own
/// `~/.aws`, or an inherited `AWS_SHARED_CREDENTIALS_FILE` or `AWS_CONFIG_FILE`) would
/// win over the server.
const NO_FILE: &str = "/dev/null";

/// The variables set in the child, in a stable order.
pub fn child_env<'a>(account: &AccountEnv<'a>) -> Vec<(&'static str, &'a str)> {
    let mut env = match account.credentials {
        ChildCredentials::Keys(creds) => vec![
            ("AWS_ACCESS_KEY_ID", creds.access_key_id.expose_secret()),
            ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.expose_secret()),
            ("AWS_SESSION_TOKEN", creds.session_token.expose_secret()),
            ("AWS_CREDENTIAL_EXPIRATION", creds.expiration.as_str()),
        ],
        ChildCredentials::Server(access) => vec![
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", access.url()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", access.token()),
            ("AWS_SHARED_CREDENTIALS_FILE", NO_FILE),
            ("AWS_CONFIG_FILE", NO_FILE),
        ],
    };
    env.extend([
        ("AWS_ACCOUNT_ID", account.account_id),
        ("AWS_REGION", account.region),
        ("AWS_DEFAULT_REGION", account.region),
        ("FANOUT_ACCOUNT_ID", account.account_id),
        ("FANOUT_ACCOUNT_NAME", account.account_name),
        ("FANOUT_ROLE", account.role),
        ("FANOUT_REGION", account.region),
        ("FANOUT_OU_PATH", account.ou_path),
    ]);
    env
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
            ou_path: "",
            credentials: ChildCredentials::Keys(&credentials),
        };
        let env = child_env(&account);
        assert!(env.contains(&("AWS_SECRET_ACCESS_KEY", "s")));
        assert!(env.contains(&("AWS_DEFAULT_REGION", "eu-west-1")));
        for (name, _) in env.iter().filter(|(n, _)| n.starts_with("AWS_") && !n.contains("REGION")) {
            assert!(REMOVED_VARS.contains(name), "{name} is set but an inherited one is not removed");
        }
    }

    #[test]
    fn with_the_server_the_child_gets_a_uri_and_a_token_and_no_keys_or_files() {
        let access = ChildAccess::unregistered("http://127.0.0.1:4242/fanout/1/r", "tok");
        let account = AccountEnv {
            account_id: "1",
            account_name: "n",
            role: "r",
            region: "eu-west-1",
            ou_path: "Root/A",
            credentials: ChildCredentials::Server(&access),
        };
        let env = child_env(&account);
        assert!(env.contains(&("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:4242/fanout/1/r")));
        assert!(env.contains(&("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok")));
        assert!(env.contains(&("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")));
        assert!(env.contains(&("AWS_CONFIG_FILE", "/dev/null")));
        assert!(env.contains(&("AWS_ACCOUNT_ID", "1")));
        assert!(env.contains(&("FANOUT_OU_PATH", "Root/A")));
        for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"] {
            assert!(env.iter().all(|(name, _)| *name != key), "{key} is set");
            assert!(REMOVED_VARS.contains(&key), "an inherited {key} is not removed");
        }
        // Inherited variables that would point an SDK elsewhere are removed: the token
        // file and the relative URI both take precedence over the variables set.
        for name in ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_PROFILE"]
        {
            assert!(REMOVED_VARS.contains(&name), "{name}");
        }
    }
}
