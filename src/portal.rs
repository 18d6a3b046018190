//! Stage 2: the SSO portal API (`ListAccounts`, `ListAccountRoles`, `GetRoleCredentials`)
//! through aws-sdk-sso, with fanout's own bound on calls in flight and its own retries.
//!
//! The SDK's retries are off: its retry token bucket runs dry under heavy concurrent
//! throttling and then stops retrying at all (`AWS_NOTES.md`), which fails accounts for a
//! portal that was merely busy. Here every call goes through [`Portal::call`], which waits
//! for a slot, retries throttling (429), 5xx and transport errors with full-jitter
//! backoff, and never mistakes a 429 for a rejected login.
//!
//! The portal is not trusted: every listing stops at a repeated page token or past a
//! bound, lists each account and role once, and drops (with a warning) ids and names that
//! fail [`validate`]; an answer that is not the JSON the model describes says what it
//! was. A page the SDK cannot decode because one value is invalid UTF-8 or a lone
//! surrogate is decoded again with that value marked ([`tolerant`]), so only its account
//! is dropped, and an account with too many roles keeps the first [`MAX_ROLES`]. Every call ends: a stop cancels it (and its backoff sleep) at once, retries have
//! a per-call and a shared budget, and a portal that throttles every call for
//! `--throttle-timeout` is given up on.
//!
//! The token comes from a [`TokenHolder`] shared by every task: it is refreshed before a
//! call when it nears expiry, and a 401 mid-run causes one refresh (for all the tasks
//! that met it) and a retry; a 401 the refresh cannot cure is [`PortalError::Unauthorized`].

mod tolerant;
pub mod validate;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sso::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sso::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sso::error::{BoxError, ProvideErrorMetadata, SdkError};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::login::{AwsConfig, SsoLogin, endpoint};
use crate::rate::{RateLimiter, Sustained};
use crate::stop::Stopper;
use crate::text;
use crate::token::refresh::TokenHolder;
use secrecy::ExposeSecret as _;

/// The portal rejects pages larger than this since 2026.
const PAGE_SIZE: i32 = 100;

/// A listing that grows past these bounds is a portal bug, not an organisation: AWS
/// Organizations holds at most tens of thousands of accounts, and a permission set
/// assignment list is short. The account bounds stop the listing; the role bounds cost
/// only the account that passes them, which one account's admin could cause: its roles
/// are capped, with a warning naming it.
pub const MAX_ACCOUNTS: usize = 100_000;
pub const MAX_ACCOUNT_PAGES: usize = 10_000;
pub const MAX_ROLES: usize = 1_000;
pub const MAX_ROLE_PAGES: usize = 100;

/// The shared retry quota, as botocore's standard retry mode keeps it: every retry
/// spends from it, every success gives one back. A burst of errors across hundreds of
/// accounts then fails fast instead of retrying each call to its own limit. Throttles
/// cost less than errors: the rate limiter, not the quota, is what answers them.
const RETRY_QUOTA: u32 = 500;
const THROTTLE_RETRY_COST: u32 = 1;
const ERROR_RETRY_COST: u32 = 5;

/// An account as the portal lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    #[serde(rename = "account_id")]
    pub id: String,
    #[serde(rename = "account_name")]
    pub name: String,
    pub email: String,
    /// Which of the run's logins it runs through (an index into them, in the order
    /// given): set by the pipeline, not by the portal, and never cached.
    #[serde(skip)]
    pub login: usize,
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

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("the portal rejected the SSO token: {}", text::show(message))]
    Unauthorized { message: String },
    #[error("{operation} was throttled {attempts} times in a row (HTTP 429); gave up")]
    Throttled { operation: &'static str, attempts: u32 },
    #[error("the portal throttled every call for {}s (HTTP 429); gave up on it (--throttle-timeout)", .after.as_secs())]
    ThrottledOut { after: Duration },
    #[error("the retry budget is spent: too many portal calls failed at once; last: {0}")]
    RetryBudgetSpent(Box<PortalError>),
    #[error("{operation} returned a page token it had returned before: the portal's listing loops; stopped it")]
    RepeatedPageToken { operation: &'static str },
    #[error("{operation} listed more than {limit} {what}: stopped (a portal bug?)")]
    TooLong { operation: &'static str, limit: usize, what: &'static str },
    #[error("{operation}: {description}")]
    NotJson { operation: &'static str, description: String },
    #[error("stopped before the portal answered")]
    Cancelled,
    #[error("{operation} failed: {} (HTTP {status}): {}", text::show(code), text::show(message))]
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

    /// The portal would not serve us: the account was not reached for want of rate.
    pub fn is_throttled(&self) -> bool {
        match self {
            PortalError::Throttled { .. } | PortalError::ThrottledOut { .. } => true,
            PortalError::RetryBudgetSpent(last) => last.is_throttled(),
            _ => false,
        }
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
    token: TokenHolder,
    slots: Semaphore,
    max_in_flight: usize,
    limiter: RateLimiter,
    retry: RetryPolicy,
    retry_quota: AtomicU32,
    throttle_timeout: Duration,
    last_success: Mutex<Instant>,
    /// Set once the portal has throttled every call for `throttle_timeout`.
    given_up: watch::Sender<bool>,
    stopper: Stopper,
    pub stats: PortalStats,
}

/// How hard fanout may press the portal.
#[derive(Clone, Copy, Debug)]
pub struct PortalLimits {
    /// Calls in flight at once.
    pub max_in_flight: usize,
    /// The rate to start at, and whether a 429 set it; see `rate.rs` for how it adapts.
    pub initial_rate: Sustained,
    pub retry: RetryPolicy,
    /// How long the portal may throttle every call before fanout gives up on it.
    pub throttle_timeout: Duration,
}

impl Portal {
    /// Builds the client for `login`; see [`endpoint::sdk_config`].
    pub async fn connect(
        login: &SsoLogin,
        aws_config: &AwsConfig,
        token: TokenHolder,
        limits: PortalLimits,
        stopper: Stopper,
    ) -> Self {
        let config = aws_sdk_sso::config::Builder::from(&endpoint::sdk_config(login, aws_config).await)
            .interceptor(tolerant::TolerantJson)
            .build();
        let client = aws_sdk_sso::Client::from_conf(config);
        Portal {
            client,
            token,
            slots: Semaphore::new(limits.max_in_flight),
            max_in_flight: limits.max_in_flight,
            limiter: RateLimiter::starting(limits.initial_rate),
            retry: limits.retry,
            retry_quota: AtomicU32::new(RETRY_QUOTA),
            throttle_timeout: limits.throttle_timeout,
            last_success: Mutex::new(Instant::now()),
            given_up: watch::Sender::new(false),
            stopper,
            stats: PortalStats::default(),
        }
    }

    /// What the portal sustained so far, for the next run to start at; `None` if it
    /// served and throttled nothing.
    pub fn sustained_rate(&self) -> Option<Sustained> {
        self.limiter.sustained()
    }

    /// The accounts the login reaches, a `ListAccounts` page at a time, so the next stage
    /// can start on the first page before the last has arrived.
    pub fn account_pages(&self) -> AccountPages<'_> {
        AccountPages {
            portal: self,
            next_token: None,
            done: false,
            seen_tokens: HashSet::new(),
            seen_ids: HashSet::new(),
            pages: 0,
        }
    }

    /// The roles the login may assume in `account_id`, all pages, each once; names IAM
    /// would not accept are dropped with a warning. Past [`MAX_ROLES`] roles (or
    /// [`MAX_ROLE_PAGES`] pages) the listing stops with a warning naming the account,
    /// which keeps the roles listed so far: one account's admin cannot fail the others.
    pub async fn list_roles(&self, account_id: &str) -> Result<Vec<String>, PortalError> {
        const OPERATION: &str = "ListAccountRoles";
        let mut roles: Vec<String> = Vec::new();
        let mut seen_tokens = HashSet::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_ROLE_PAGES {
            let page = self
                .call(OPERATION, |token| {
                    self.client
                        .list_account_roles()
                        .access_token(token)
                        .account_id(account_id)
                        .max_results(PAGE_SIZE)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            for role in page.role_list().iter().filter_map(|r| r.role_name()) {
                if !validate::is_role_name(role) {
                    tracing::warn!(
                        "account {account_id}: skipping role {:?}: not a valid IAM role name",
                        text::show(role)
                    );
                } else if roles.len() >= MAX_ROLES {
                    tracing::warn!(
                        "account {account_id}: the portal lists more than {MAX_ROLES} roles for it; using the first {MAX_ROLES} and ignoring the rest"
                    );
                    return Ok(roles);
                } else if !roles.iter().any(|r| r == role) {
                    roles.push(role.to_owned());
                }
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(token) if !seen_tokens.insert(token.to_owned()) => {
                    return Err(PortalError::RepeatedPageToken { operation: OPERATION });
                }
                Some(token) => next_token = Some(token.to_owned()),
                None => return Ok(roles),
            }
        }
        tracing::warn!(
            "account {account_id}: the portal's role listing goes on past {MAX_ROLE_PAGES} pages; using the {} roles listed so far",
            roles.len()
        );
        Ok(roles)
    }

    /// `GetRoleCredentials` for `role` in `account_id`.
    pub async fn role_credentials(
        &self,
        account_id: &str,
        role: &str,
    ) -> Result<aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsOutput, PortalError> {
        self.call("GetRoleCredentials", |token| {
            self.client.get_role_credentials().access_token(token).account_id(account_id).role_name(role).send()
        })
        .await
    }

    /// One `ListAccounts` call of one item, for `fanout doctor`: whether the portal
    /// answers this token, and the `Date` it answered with (to measure clock skew, which
    /// breaks the children's signed requests). Goes through [`Portal::call`] like any call.
    pub async fn probe(&self) -> Result<Probe, PortalError> {
        let date = std::sync::Arc::new(Mutex::new(None));
        self.call("ListAccounts", |token| {
            self.client
                .list_accounts()
                .access_token(token)
                .max_results(1)
                .customize()
                .interceptor(DateHeader(std::sync::Arc::clone(&date)))
                .send()
        })
        .await?;
        let date = date.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        Ok(Probe { date })
    }

    /// Calls in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// One portal call with a slot and retries; see the module doc. A stop, or giving up
    /// on a portal that only throttles, ends it wherever it is waiting.
    async fn call<T, E, F, Fut>(&self, operation: &'static str, attempt: F) -> Result<T, PortalError>
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
                    self.stats.throttles.fetch_add(1, Ordering::Relaxed);
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

/// What [`Portal::probe`] learnt.
#[derive(Debug)]
pub struct Probe {
    /// The portal's `Date` header (an HTTP date), when it sent one.
    pub date: Option<String>,
}

/// Keeps the `Date` header of the raw response, which the SDK's output does not carry.
#[derive(Debug)]
struct DateHeader(std::sync::Arc<Mutex<Option<String>>>);

impl Intercept for DateHeader {
    fn name(&self) -> &'static str {
        "fanout::DateHeader"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(date.to_owned());
        }
        Ok(())
    }
}

/// A cursor over `ListAccounts` pages.
pub struct AccountPages<'p> {
    portal: &'p Portal,
    next_token: Option<String>,
    done: bool,
    /// Every page token seen: one coming back means the listing loops.
    seen_tokens: HashSet<String>,
    /// Every account listed so far: one listed again is dropped.
    seen_ids: HashSet<String>,
    pages: usize,
}

impl AccountPages<'_> {
    /// The next page's accounts that are valid and not listed before, or `None` after
    /// the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Account>>, PortalError> {
        const OPERATION: &str = "ListAccounts";
        if self.done {
            return Ok(None);
        }
        let portal = self.portal;
        let page = portal
            .call(OPERATION, |token| {
                portal
                    .client
                    .list_accounts()
                    .access_token(token)
                    .max_results(PAGE_SIZE)
                    .set_next_token(self.next_token.clone())
                    .send()
            })
            .await?;
        self.pages += 1;
        self.next_token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        self.done = self.next_token.is_none();
        let accounts: Vec<Account> = page.account_list().iter().filter_map(|a| self.admit(a)).collect();
        if self.seen_ids.len() > MAX_ACCOUNTS {
            return Err(PortalError::TooLong { operation: OPERATION, limit: MAX_ACCOUNTS, what: "accounts" });
        }
        if self.pages >= MAX_ACCOUNT_PAGES && !self.done {
            return Err(PortalError::TooLong { operation: OPERATION, limit: MAX_ACCOUNT_PAGES, what: "pages" });
        }
        if let Some(token) = &self.next_token
            && !self.seen_tokens.insert(token.clone())
        {
            return Err(PortalError::RepeatedPageToken { operation: OPERATION });
        }
        Ok(Some(accounts))
    }

    /// The account, if its id and name are valid and it was not listed before.
    fn admit(&mut self, info: &aws_sdk_sso::types::AccountInfo) -> Option<Account> {
        let id = info.account_id().unwrap_or_default();
        let name = info.account_name().unwrap_or_default();
        if !validate::is_account_id(id) {
            tracing::warn!(
                "skipping an account whose id {:?} is not 12 digits (named {:?})",
                text::show(id),
                text::show(name)
            );
            return None;
        }
        let email = info.email_address().unwrap_or_default();
        let problem = validate::account_name_problem(name)
            .map(|why| format!("its name {why}"))
            .or_else(|| validate::account_name_problem(email).map(|why| format!("its email {why}")));
        if let Some(problem) = problem {
            tracing::warn!("skipping account {id}: {problem}");
            return None;
        }
        if !self.seen_ids.insert(id.to_owned()) {
            tracing::warn!("account {id} was listed twice by the portal; it runs once");
            return None;
        }
        Some(Account { id: id.to_owned(), name: name.to_owned(), email: email.to_owned(), login: 0 })
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
