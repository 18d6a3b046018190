//! The Organizations client and its one call engine: every call waits for its turn at
//! this client's own adaptive limiter (Organizations throttles at a few requests a
//! second per account, a budget of its own, not the portal's), and is retried when it
//! throttles, on the limiter alone, without failing; a 5xx or an unreachable endpoint is
//! retried a few times. The SDK's retries are off for the reason the portal's are
//! (`portal/call.rs`): its token bucket stops retrying under sustained throttling.

use std::future::Future;
use std::time::Duration;

use aws_sdk_organizations::config::http::HttpResponse;
use aws_sdk_organizations::config::retry::RetryConfig;
use aws_sdk_organizations::config::timeout::TimeoutConfig;
use aws_sdk_organizations::config::{BehaviorVersion, Credentials as SdkCredentials, Region};
use aws_sdk_organizations::error::{ProvideErrorMetadata, SdkError};
use secrecy::ExposeSecret as _;

use super::OrganizationsError;
use crate::credentials::Credentials;
use crate::org::OrgRole;
use crate::rate::{RateLimiter, Sustained};

/// Organizations is a global service, signed in `us-east-1` wherever it is called from.
const REGION: &str = "us-east-1";
/// Requests a second to start at: Organizations allows a few. The limiter starts in
/// additive increase (as after a throttle), so it probes up slowly instead of doubling
/// into a burst of throttles.
const START_RATE: f64 = 4.0;
/// Attempts while Organizations throttles, the first included: throttling asks us to
/// slow down, which the limiter does, so this is generous.
const MAX_THROTTLED_ATTEMPTS: u32 = 30;
/// Attempts after a server error or a transport failure.
const MAX_ERROR_ATTEMPTS: u32 = 3;
const ERROR_DELAY: Duration = Duration::from_millis(500);

/// The client, its limiter, and the role it acts as (for the messages).
pub(super) struct Paced {
    pub(super) client: aws_sdk_organizations::Client,
    limiter: RateLimiter,
    role: OrgRole,
}

impl Paced {
    /// A client signing with `credentials`, at `endpoint` when one is configured.
    pub(super) fn new(credentials: &Credentials, endpoint: Option<String>, role: OrgRole) -> Self {
        let keys = SdkCredentials::new(
            credentials.access_key_id.expose_secret(),
            credentials.secret_access_key.expose_secret(),
            Some(credentials.session_token.expose_secret().to_owned()),
            Some(credentials.expires_at),
            "fanout-org-role",
        );
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(30))
            .build();
        let mut config = aws_sdk_organizations::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(keys)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Paced {
            client: aws_sdk_organizations::Client::from_conf(config.build()),
            limiter: RateLimiter::starting(Sustained { rate: START_RATE, throttled: true }),
            role,
        }
    }

    /// One call, paced and retried; see the module doc.
    pub(super) async fn call<T, E, F, Fut>(
        &self,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<T, OrganizationsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.limiter.acquire().await;
            tracing::debug!(operation, attempts, "organizations call");
            let error = match attempt().await {
                Ok(output) => {
                    self.limiter.on_success();
                    return Ok(output);
                }
                Err(error) => error,
            };
            match classify(&self.role, operation, attempts, error) {
                Verdict::Throttled => {
                    self.limiter.on_throttle();
                    tracing::info!(operation, attempts, "Organizations throttled the call; slowing down");
                    if attempts >= MAX_THROTTLED_ATTEMPTS {
                        return Err(OrganizationsError::Throttled { operation, attempts });
                    }
                }
                Verdict::Retry(error) if attempts < MAX_ERROR_ATTEMPTS => {
                    tracing::info!(operation, attempts, "failed: {error}; retrying");
                    tokio::time::sleep(ERROR_DELAY).await;
                }
                Verdict::Retry(error) | Verdict::GiveUp(error) => return Err(error),
            }
        }
    }
}

/// What to do after a failed attempt.
enum Verdict {
    Throttled,
    Retry(OrganizationsError),
    GiveUp(OrganizationsError),
}

/// The error codes that mean "slower, please".
fn is_throttle(status: u16, code: &str) -> bool {
    status == 429 || matches!(code, "TooManyRequestsException" | "ThrottlingException" | "Throttling")
}

fn classify<E>(role: &OrgRole, operation: &'static str, attempts: u32, error: SdkError<E, HttpResponse>) -> Verdict
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let SdkError::ServiceError(service) = error else {
        return Verdict::Retry(OrganizationsError::Transport { operation, attempts, source: Box::new(error) });
    };
    let status = service.raw().status().as_u16();
    let code = service.err().code().unwrap_or("UnknownError").to_owned();
    let message = service.err().message().unwrap_or_default().to_owned();
    match code.as_str() {
        code if is_throttle(status, code) => Verdict::Throttled,
        "AccessDeniedException" | "AccessDenied" => {
            Verdict::GiveUp(OrganizationsError::Denied { role: role.clone(), operation })
        }
        "AWSOrganizationsNotInUseException" => Verdict::GiveUp(OrganizationsError::NotInUse { role: role.clone() }),
        _ if status >= 500 => Verdict::Retry(OrganizationsError::Service { operation, code, status, message }),
        _ => Verdict::GiveUp(OrganizationsError::Service { operation, code, status, message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_are_told_by_status_or_code() {
        assert!(is_throttle(429, ""));
        assert!(is_throttle(400, "TooManyRequestsException"));
        assert!(is_throttle(400, "ThrottlingException"));
        assert!(!is_throttle(400, "AccessDeniedException"));
    }
}
