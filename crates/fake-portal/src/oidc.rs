//! SSO OIDC `CreateToken` with the refresh-token grant, as botocore's
//! `data/sso-oidc/2019-06-10/service-2.json` describes it: `POST /token`, unsigned, a JSON
//! body (`clientId`, `clientSecret`, `grantType`, `refreshToken`), an answer of
//! `accessToken`, `tokenType`, `expiresIn` and a rotated `refreshToken`, and errors as an
//! HTTP status, `x-amzn-ErrorType` and a JSON `error`/`error_description`.
//!
//! Each refresh token works once (the real service rotates them), so a client that loses
//! the rotated one, or two clients racing with the same one, fail as they would against
//! AWS. The access tokens it mints are accepted by the portal beside the configured ones.
//! A token can be revoked after a number of calls, for a login that ends mid-run.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Body, Reply};

/// The client registration [`crate::home::write_refreshable_token`] caches and
/// `CreateToken` accepts unless told otherwise.
pub const DEFAULT_CLIENT_ID: &str = "fake-client-id";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-client-secret";
/// The refresh token `CreateToken` accepts (once) unless told otherwise.
pub const DEFAULT_REFRESH_TOKEN: &str = "fake-refresh-token";

/// What `CreateToken` accepts and how the portal's tokens end.
#[derive(Clone, Debug)]
pub struct OidcOptions {
    pub client_id: String,
    pub client_secret: String,
    /// Refresh tokens accepted, each once: a successful call replaces it with the new one.
    pub refresh_tokens: Vec<String>,
    /// Every refresh answers `InvalidGrantException`, as once the portal session ended.
    pub reject_refresh: bool,
    /// The `expiresIn` of minted access tokens.
    pub token_ttl: Duration,
    /// This access token is answered 401 once it has been accepted this many times.
    pub revoke_after: Option<(String, u64)>,
    /// Added to every `CreateToken` call, so racing refreshers overlap.
    pub latency: Duration,
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            refresh_tokens: vec![DEFAULT_REFRESH_TOKEN.to_owned()],
            reject_refresh: false,
            token_ttl: Duration::from_hours(8),
            revoke_after: None,
            latency: Duration::ZERO,
        }
    }
}

/// The token service's state.
pub(crate) struct Oidc {
    options: OidcOptions,
    tokens: Mutex<Tokens>,
}

struct Tokens {
    refresh: HashSet<String>,
    minted: HashSet<String>,
    /// Calls accepted with the token named by `revoke_after`.
    revocable_uses: u64,
    issued: u64,
}

impl Oidc {
    pub(crate) fn new(options: OidcOptions) -> Self {
        let refresh = options.refresh_tokens.iter().cloned().collect();
        let tokens = Tokens { refresh, minted: HashSet::new(), revocable_uses: 0, issued: 0 };
        Oidc { options, tokens: Mutex::new(tokens) }
    }

    /// Whether the portal accepts `token`: one of `configured`, or one `CreateToken` minted,
    /// and not revoked.
    pub(crate) fn accepts(&self, configured: &[String], token: Option<&str>) -> bool {
        let Some(token) = token else { return false };
        let mut tokens = self.tokens.lock().unwrap();
        if !configured.iter().any(|t| t == token) && !tokens.minted.contains(token) {
            return false;
        }
        match &self.options.revoke_after {
            Some((revoked, after)) if revoked == token => {
                tokens.revocable_uses += 1;
                tokens.revocable_uses <= *after
            }
            _ => true,
        }
    }

    /// Answers one `CreateToken` request after the configured latency.
    pub(crate) async fn create_token(&self, body: &[u8], calls: &AtomicU64) -> Reply {
        if !self.options.latency.is_zero() {
            tokio::time::sleep(self.options.latency).await;
        }
        self.answer(body, calls)
    }

    /// `CreateToken`'s answer; `calls` counts the ones that minted a token.
    fn answer(&self, body: &[u8], calls: &AtomicU64) -> Reply {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return oidc_error(400, "InvalidRequestException", "invalid_request", "the body is not JSON");
        };
        let field = |name: &str| request.get(name).and_then(Value::as_str);
        if field("grantType") != Some("refresh_token") {
            return oidc_error(400, "UnsupportedGrantTypeException", "unsupported_grant_type", "refresh_token only");
        }
        if field("clientId") != Some(&self.options.client_id)
            || field("clientSecret") != Some(&self.options.client_secret)
        {
            return oidc_error(401, "InvalidClientException", "invalid_client", "unknown client");
        }
        let mut tokens = self.tokens.lock().unwrap();
        let presented = field("refreshToken").unwrap_or_default();
        if self.options.reject_refresh || !tokens.refresh.remove(presented) {
            return oidc_error(400, "InvalidGrantException", "invalid_grant", "Invalid refresh token provided");
        }
        tokens.issued += 1;
        let (access, refresh) =
            (format!("fake-access-token-r{}", tokens.issued), format!("fake-refresh-token-r{}", tokens.issued));
        tokens.minted.insert(access.clone());
        tokens.refresh.insert(refresh.clone());
        calls.fetch_add(1, Ordering::Relaxed);
        Reply {
            status: 200,
            error_type: None,
            body: Body::Json(json!({
                "accessToken": access,
                "tokenType": "Bearer",
                "expiresIn": self.options.token_ttl.as_secs(),
                "refreshToken": refresh,
            })),
        }
    }
}

fn oidc_error(status: u16, error_type: &'static str, error: &str, description: &str) -> Reply {
    Reply {
        status,
        error_type: Some(error_type),
        body: Body::Json(json!({ "error": error, "error_description": description })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(refresh_token: &str) -> Vec<u8> {
        json!({
            "clientId": DEFAULT_CLIENT_ID,
            "clientSecret": DEFAULT_CLIENT_SECRET,
            "grantType": "refresh_token",
            "refreshToken": refresh_token,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_refresh_token_works_once_and_rotates() {
        let oidc = Oidc::new(OidcOptions::default());
        let calls = AtomicU64::new(0);
        let first = oidc.answer(&request(DEFAULT_REFRESH_TOKEN), &calls);
        let body = first.json().unwrap();
        assert_eq!(body["accessToken"], "fake-access-token-r1");
        assert_eq!(body["refreshToken"], "fake-refresh-token-r1");
        assert!(oidc.accepts(&[], Some("fake-access-token-r1")));
        let again = oidc.answer(&request(DEFAULT_REFRESH_TOKEN), &calls);
        assert_eq!((again.status, again.error_type), (400, Some("InvalidGrantException")));
        assert_eq!(again.json().unwrap()["error"], "invalid_grant");
        assert_eq!(oidc.answer(&request("fake-refresh-token-r1"), &calls).status, 200);
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_revoked_token_is_refused_after_its_calls() {
        let oidc = Oidc::new(OidcOptions { revoke_after: Some(("t".to_owned(), 2)), ..OidcOptions::default() });
        let configured = ["t".to_owned()];
        let answers: Vec<bool> = (0..3).map(|_| oidc.accepts(&configured, Some("t"))).collect();
        assert_eq!(answers, [true, true, false]);
        assert!(!oidc.accepts(&configured, Some("other")));
    }
}
