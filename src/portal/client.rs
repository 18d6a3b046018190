//! The connected [`Portal`]: the SDK client built for one login, and the typed
//! operations the stages call (`ListAccounts` pages, `ListAccountRoles`,
//! `GetRoleCredentials`, and the probe of `fanout doctor`), each through
//! [`Portal::call`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_sso::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sso::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sso::error::BoxError;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use super::call::{RETRY_QUOTA, RetryPolicy};
use super::pages::AccountPages;
use super::{MAX_ROLE_PAGES, MAX_ROLES, PAGE_SIZE, PortalError, tolerant, validate};
use crate::events::{Event, EventSink};
use crate::login::{AwsConfig, SsoLogin, endpoint};
use crate::rate::{RateLimiter, Sustained};
use crate::stop::Stopper;
use crate::text;
use crate::token::refresh::TokenHolder;

/// Counters for the summary (its throttles are events: see [`Portal::report_to`]).
#[derive(Debug, Default)]
pub struct PortalStats {
    pub calls: AtomicU64,
}

/// A connected portal client, shared by every task. The `pub(super)` fields are the
/// state of the call engine (`call.rs`) and the client the account pages call with.
pub struct Portal {
    pub(super) client: aws_sdk_sso::Client,
    pub(super) token: TokenHolder,
    pub(super) slots: Semaphore,
    max_in_flight: usize,
    pub(super) limiter: RateLimiter,
    pub(super) retry: RetryPolicy,
    pub(super) retry_quota: AtomicU32,
    pub(super) throttle_timeout: Duration,
    pub(super) last_success: Mutex<Instant>,
    /// Set once the portal has throttled every call for `throttle_timeout`.
    pub(super) given_up: watch::Sender<bool>,
    pub(super) stopper: Stopper,
    pub stats: PortalStats,
    /// Where the run's events go, once a run reports them; see [`Portal::report_to`].
    pub(super) events: OnceLock<Arc<dyn EventSink>>,
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
            events: OnceLock::new(),
        }
    }

    /// The run's events from now on include this portal's throttles. The portal is
    /// connected before the run's reporter exists, so the run hands it over when it
    /// starts; the first run to do so keeps it.
    pub fn report_to(&self, events: Arc<dyn EventSink>) {
        let _ = self.events.set(events);
    }

    /// Says `event` to the run, if one listens.
    pub(super) fn emit(&self, event: Event) {
        if let Some(events) = self.events.get() {
            events.emit(event);
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
        AccountPages::new(self)
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
