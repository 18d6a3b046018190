//! Stage 2: the SSO portal API (`ListAccounts`, `ListAccountRoles`, `GetRoleCredentials`)
//! through aws-sdk-sso, with fanout's own bound on calls in flight and its own retries.
//!
//! The SDK's retries are off: its retry token bucket runs dry under heavy concurrent
//! throttling and then stops retrying at all (`AWS_NOTES.md`), which fails accounts for a
//! portal that was merely busy. Here every call goes through [`Portal::call`], which waits
//! for a slot, retries throttling (429), 5xx and transport errors with full-jitter
//! backoff, and never mistakes a 429 for a rejected login.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sso::config::Region;
use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::Semaphore;

use crate::login::SsoLogin;
use crate::rate::RateLimiter;
use crate::secret::Secret;

/// The portal rejects pages larger than this since 2026.
const PAGE_SIZE: i32 = 100;

/// An account as the portal lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    #[serde(rename = "account_id")]
    pub id: String,
    #[serde(rename = "account_name")]
    pub name: String,
    pub email: String,
}

/// How hard to try one call.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per call while the portal throttles, the first included: throttling is
    /// the portal asking us to slow down, not a failure.
    pub max_throttled_attempts: u32,
    /// The backoff ceiling for the first retry; it doubles with each retry.
    pub base_delay: Duration,
    /// The backoff ceiling never exceeds this.
    pub max_delay: Duration,
    /// Attempts after a server error (5xx) or when the portal cannot be reached (DNS,
    /// refused, timeout): fewer, since these rarely heal within seconds.
    pub max_error_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_throttled_attempts: 20,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_error_attempts: 3,
        }
    }
}

impl RetryPolicy {
    /// Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): a uniform
    /// delay up to the ceiling, so hundreds of throttled tasks do not retry in lockstep.
    fn delay_before_retry(&self, retry: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1 << retry.min(16)).min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("the portal rejected the SSO token: {message}")]
    Unauthorized { message: String },
    #[error("{operation} was throttled {attempts} times in a row (HTTP 429); gave up")]
    Throttled { operation: &'static str, attempts: u32 },
    #[error("{operation} failed: {code} (HTTP {status}): {message}")]
    Service { operation: &'static str, code: String, status: u16, message: String },
    #[error("{operation} could not reach the portal after {attempts} attempts")]
    Transport {
        operation: &'static str,
        attempts: u32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PortalError {
    /// A `ForbiddenException` means the login has no such role (or account).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, PortalError::Service { status: 403, .. })
    }
}

/// What to do after a failed attempt.
enum Verdict {
    Retry(PortalError),
    Throttled(PortalError),
    GiveUp(PortalError),
}

/// Counters for the summary.
#[derive(Debug, Default)]
pub struct PortalStats {
    pub calls: AtomicU64,
    pub throttles: AtomicU64,
}

/// A connected portal client, shared by every task.
pub struct Portal {
    client: aws_sdk_sso::Client,
    token: Secret,
    slots: Semaphore,
    max_in_flight: usize,
    limiter: RateLimiter,
    retry: RetryPolicy,
    pub stats: PortalStats,
}

/// How hard fanout may press the portal.
#[derive(Clone, Copy, Debug)]
pub struct PortalLimits {
    /// Calls in flight at once.
    pub max_in_flight: usize,
    /// Requests a second to start at; see `rate.rs` for how it adapts.
    pub initial_rate: f64,
    pub retry: RetryPolicy,
}

impl Portal {
    /// Builds the client for `login`'s `sso_region`. The SDK applies the endpoint
    /// override exactly as the AWS CLI does: `AWS_ENDPOINT_URL_SSO`, `AWS_ENDPOINT_URL`,
    /// then the `[services]` section the profile names.
    pub async fn connect(login: &SsoLogin, token: Secret, limits: PortalLimits) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(30))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .no_credentials()
            .region(Region::new(login.sso_region.clone()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some(profile) = &login.profile {
            loader = loader.profile_name(profile);
        }
        let client = aws_sdk_sso::Client::new(&loader.load().await);
        Portal {
            client,
            token,
            slots: Semaphore::new(limits.max_in_flight),
            max_in_flight: limits.max_in_flight,
            limiter: RateLimiter::new(limits.initial_rate),
            retry: limits.retry,
            stats: PortalStats::default(),
        }
    }

    /// The accounts the login reaches, a `ListAccounts` page at a time, so the next stage
    /// can start on the first page before the last has arrived.
    pub fn account_pages(&self) -> AccountPages<'_> {
        AccountPages { portal: self, next_token: None, done: false }
    }

    /// The roles the login may assume in `account_id`, all pages.
    pub async fn list_roles(&self, account_id: &str) -> Result<Vec<String>, PortalError> {
        let mut roles = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = self
                .call("ListAccountRoles", || {
                    self.client
                        .list_account_roles()
                        .access_token(self.token.expose())
                        .account_id(account_id)
                        .max_results(PAGE_SIZE)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            roles.extend(page.role_list().iter().filter_map(|r| r.role_name().map(str::to_owned)));
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(roles),
            }
        }
    }

    /// `GetRoleCredentials` for `role` in `account_id`.
    pub async fn role_credentials(
        &self,
        account_id: &str,
        role: &str,
    ) -> Result<aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsOutput, PortalError> {
        self.call("GetRoleCredentials", || {
            self.client
                .get_role_credentials()
                .access_token(self.token.expose())
                .account_id(account_id)
                .role_name(role)
                .send()
        })
        .await
    }

    /// Calls in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// One portal call with a slot and retries; see the module doc.
    async fn call<T, E, F, Fut>(&self, operation: &'static str, mut attempt: F) -> Result<T, PortalError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, aws_sdk_sso::config::http::HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = {
                let _slot = self.slots.acquire().await.expect("the semaphore is never closed");
                self.limiter.acquire().await;
                self.stats.calls.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(operation, attempts, "portal call");
                attempt().await
            };
            let error = match result {
                Ok(output) => {
                    self.limiter.on_success();
                    return Ok(output);
                }
                Err(error) => error,
            };
            let verdict = classify(operation, attempts, error);
            match verdict {
                Verdict::GiveUp(error) => return Err(error),
                Verdict::Throttled(error) => {
                    // No backoff sleep: the shared limiter now paces every call, this
                    // retry included, so sleeping too would only add to the wall time.
                    self.stats.throttles.fetch_add(1, Ordering::Relaxed);
                    self.limiter.on_throttle();
                    tracing::info!(operation, attempts, "throttled (HTTP 429)");
                    if attempts >= self.retry.max_throttled_attempts {
                        return Err(error);
                    }
                }
                Verdict::Retry(error) => {
                    tracing::info!(operation, attempts, "failed: {error}");
                    if attempts >= self.retry.max_error_attempts {
                        return Err(error);
                    }
                    let delay = self.retry.delay_before_retry(attempts - 1);
                    tracing::info!(operation, attempts, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// A cursor over `ListAccounts` pages.
pub struct AccountPages<'p> {
    portal: &'p Portal,
    next_token: Option<String>,
    done: bool,
}

impl AccountPages<'_> {
    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Account>>, PortalError> {
        if self.done {
            return Ok(None);
        }
        let portal = self.portal;
        let page = portal
            .call("ListAccounts", || {
                portal
                    .client
                    .list_accounts()
                    .access_token(portal.token.expose())
                    .max_results(PAGE_SIZE)
                    .set_next_token(self.next_token.clone())
                    .send()
            })
            .await?;
        self.next_token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        self.done = self.next_token.is_none();
        let accounts = page.account_list().iter().map(|a| Account {
            id: a.account_id().unwrap_or_default().to_owned(),
            name: a.account_name().unwrap_or_default().to_owned(),
            email: a.email_address().unwrap_or_default().to_owned(),
        });
        Ok(Some(accounts.collect()))
    }
}

/// Sorts a failed attempt into retry, throttled (retry) or give up.
fn classify<E>(
    operation: &'static str,
    attempts: u32,
    error: SdkError<E, aws_sdk_sso::config::http::HttpResponse>,
) -> Verdict
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let err = service.err();
            let code = err.code().unwrap_or("UnknownError").to_owned();
            let message = err.message().unwrap_or_default().to_owned();
            if status == 429 || code == "TooManyRequestsException" {
                Verdict::Throttled(PortalError::Throttled { operation, attempts })
            } else if status == 401 || code == "UnauthorizedException" {
                Verdict::GiveUp(PortalError::Unauthorized { message })
            } else if status >= 500 {
                Verdict::Retry(PortalError::Service { operation, code, status, message })
            } else {
                Verdict::GiveUp(PortalError::Service { operation, code, status, message })
            }
        }
        SdkError::ConstructionFailure(_) => {
            Verdict::GiveUp(PortalError::Transport { operation, attempts, source: Box::new(error) })
        }
        other => Verdict::Retry(PortalError::Transport { operation, attempts, source: Box::new(other) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_doubling_ceiling() {
        let policy = RetryPolicy::default();
        for retry in 0..20 {
            let ceiling = (policy.base_delay * 2u32.pow(retry.min(16))).min(policy.max_delay);
            assert!(policy.delay_before_retry(retry) <= ceiling);
        }
    }
}
