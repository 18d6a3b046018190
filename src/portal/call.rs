//! The call engine: every portal call goes through [`Portal::call`], which waits for a
//! slot, retries throttling (429), 5xx and transport errors with full-jitter backoff, and
//! never mistakes a 429 for a rejected login.
//!
//! The SDK's retries are off: its retry token bucket runs dry under heavy concurrent
//! throttling and then stops retrying at all (`AWS_NOTES.md`), which fails accounts for a
//! portal that was merely busy. Every call ends: a stop cancels it (and its backoff
//! sleep) at once, retries have a per-call and a shared budget, and a portal that
//! throttles every call for `--throttle-timeout` is given up on.
//!
//! The token comes from a [`TokenHolder`](crate::token::refresh::TokenHolder) shared by
//! every task: it is refreshed before a call when it nears expiry, and a 401 mid-run
//! causes one refresh (for all the tasks that met it) and a retry; a 401 the refresh
//! cannot cure is [`PortalError::Unauthorized`].

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use secrecy::ExposeSecret as _;
use tokio::time::Instant;

use super::{Portal, PortalError};
use crate::events::Event;
use crate::text;

/// The shared retry quota, as botocore's standard retry mode keeps it: every retry
/// spends from it, every success gives one back. A burst of errors across hundreds of
/// accounts then fails fast instead of retrying each call to its own limit. Throttles
/// cost less than errors: the rate limiter, not the quota, is what answers them.
pub(super) const RETRY_QUOTA: u32 = 500;
const THROTTLE_RETRY_COST: u32 = 1;
const ERROR_RETRY_COST: u32 = 5;

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
            max_throttled_attempts: 30,
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

/// What to do after a failed attempt.
enum Verdict {
    Retry(PortalError),
    Throttled(PortalError),
    GiveUp(PortalError),
}

impl Portal {
    /// One portal call with a slot and retries; see the module doc. A stop, or giving up
    /// on a portal that only throttles, ends it wherever it is waiting.
    pub(super) async fn call<T, E, F, Fut>(&self, operation: &'static str, attempt: F) -> Result<T, PortalError>
    where
        F: FnMut(&str) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, aws_sdk_sso::config::http::HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut given_up = self.given_up.subscribe();
        tokio::select! {
            result = self.call_with_retries(operation, attempt) => result,
            () = self.stopper.stopped() => Err(PortalError::Cancelled),
            _ = given_up.wait_for(|given_up| *given_up) => Err(PortalError::ThrottledOut { after: self.throttle_timeout }),
        }
    }

    async fn call_with_retries<T, E, F, Fut>(&self, operation: &'static str, mut attempt: F) -> Result<T, PortalError>
    where
        F: FnMut(&str) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, aws_sdk_sso::config::http::HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempts = 0;
        let (mut generation, mut token) =
            self.token.current().await.map_err(|e| PortalError::Unauthorized { message: e.to_string() })?;
        let mut refreshed_after_401 = false;
        loop {
            attempts += 1;
            let result = {
                let _slot = self.slots.acquire().await.expect("the semaphore is never closed");
                self.limiter.acquire().await;
                self.stats.calls.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(operation, attempts, "portal call");
                attempt(token.expose_secret()).await
            };
            let error = match result {
                Ok(output) => {
                    self.on_success();
                    return Ok(output);
                }
                Err(error) => error,
            };
            match classify(operation, attempts, error) {
                // One refresh and one retry: a token that expired or was revoked mid-run.
                Verdict::GiveUp(error @ PortalError::Unauthorized { .. }) => {
                    let renewed = if refreshed_after_401 { None } else { self.token.after_rejection(generation).await };
                    let Some(renewed) = renewed else { return Err(error) };
                    (generation, token) = renewed;
                    refreshed_after_401 = true;
                }
                Verdict::GiveUp(error) => return Err(error),
                Verdict::Throttled(error) => {
                    // No backoff sleep: the shared limiter now paces every call, this
                    // retry included, so sleeping too would only add to the wall time.
                    self.emit(Event::Throttled);
                    self.limiter.on_throttle();
                    tracing::info!(operation, attempts, "throttled (HTTP 429)");
                    if self.throttled_too_long() {
                        return Err(PortalError::ThrottledOut { after: self.throttle_timeout });
                    }
                    if attempts >= self.retry.max_throttled_attempts {
                        return Err(error);
                    }
                    self.spend_retry(THROTTLE_RETRY_COST, error)?;
                }
                Verdict::Retry(error) => {
                    tracing::info!(operation, attempts, "failed: {error}");
                    if attempts >= self.retry.max_error_attempts {
                        return Err(error);
                    }
                    self.spend_retry(ERROR_RETRY_COST, error)?;
                    let delay = self.retry.delay_before_retry(attempts - 1);
                    tracing::info!(operation, attempts, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn on_success(&self) {
        self.limiter.on_success();
        *self.last_success.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        let _ = self.retry_quota.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| Some((q + 1).min(RETRY_QUOTA)));
    }

    /// Whether nothing has succeeded for `throttle_timeout`; if so, every waiting call
    /// gives up too.
    fn throttled_too_long(&self) -> bool {
        let last = *self.last_success.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.elapsed() < self.throttle_timeout {
            return false;
        }
        if !self.given_up.send_replace(true) {
            tracing::warn!(
                "the portal has throttled every call for {}s; giving up on it",
                self.throttle_timeout.as_secs()
            );
        }
        true
    }

    /// Takes `cost` from the shared retry quota, or gives up with `error` when it is spent.
    fn spend_retry(&self, cost: u32, error: PortalError) -> Result<(), PortalError> {
        self.retry_quota
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |quota| quota.checked_sub(cost))
            .map(drop)
            .map_err(|_| PortalError::RetryBudgetSpent(Box::new(error)))
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
            let raw = service.raw();
            let status = raw.status().as_u16();
            let not_json = describe_unexpected_answer(raw);
            if let Some(description) = not_json.clone().filter(|_| status < 300) {
                return Verdict::GiveUp(PortalError::NotJson { operation, description });
            }
            let err = service.err();
            let code = err.code().unwrap_or("UnknownError").to_owned();
            let message = err.message().map(str::to_owned).or(not_json).unwrap_or_default();
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
        SdkError::ResponseError(response) => match describe_unexpected_answer(response.raw()) {
            Some(description) => Verdict::GiveUp(PortalError::NotJson { operation, description }),
            None => Verdict::Retry(PortalError::Transport {
                operation,
                attempts,
                source: Box::new(SdkError::<E, _>::ResponseError(response)),
            }),
        },
        SdkError::ConstructionFailure(_) => {
            Verdict::GiveUp(PortalError::Transport { operation, attempts, source: Box::new(error) })
        }
        other => Verdict::Retry(PortalError::Transport { operation, attempts, source: Box::new(other) }),
    }
}

/// What the portal answered, when it was not JSON (a proxy's login page, a wrong
/// endpoint): its status, content type and first bytes, escaped.
fn describe_unexpected_answer(raw: &aws_sdk_sso::config::http::HttpResponse) -> Option<String> {
    let body = raw.body().bytes()?;
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        return None;
    }
    let content_type = raw.headers().get("content-type").unwrap_or("no content type");
    let start: String = body.iter().take(60).flat_map(|b| b.escape_ascii()).map(char::from).collect();
    Some(format!(
        "the portal answered {} with {}, not JSON: is AWS_ENDPOINT_URL_SSO (or the profile's [services] endpoint) the portal? It began: {start:?}",
        raw.status().as_u16(),
        text::show(content_type),
    ))
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
