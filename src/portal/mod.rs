//! Stage 2: the SSO portal API (`ListAccounts`, `ListAccountRoles`, `GetRoleCredentials`)
//! through aws-sdk-sso, with fanout's own bound on calls in flight and its own retries.
//!
//! - [`client`]: the connected [`Portal`] and its typed operations, one per API call
//!   (and the probe `fanout doctor` makes).
//! - [`call`]: the call engine every operation goes through: a slot, the shared rate
//!   limiter, retries with full-jitter backoff, and the token renewed after a 401.
//! - [`pages`]: the `ListAccounts` cursor, a page at a time.
//! - [`validate`] and [`tolerant`]: the checks on the values the portal sends, and the
//!   repair of a page that one bad value would otherwise fail.
//!
//! The portal is not trusted: every listing stops at a repeated page token or past a
//! bound, lists each account and role once, and drops (with a warning) ids and names that
//! fail [`validate`]; an answer that is not the JSON the model describes says what it
//! was. A page the SDK cannot decode because one value is invalid UTF-8 or a lone
//! surrogate is decoded again with that value marked ([`tolerant`]), so only its account
//! is dropped, and an account with too many roles keeps the first [`MAX_ROLES`].

mod call;
mod client;
mod pages;
mod tolerant;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use crate::org::AccountFacts;

use crate::text;

pub use call::RetryPolicy;
pub use client::{Portal, PortalLimits};

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

/// An account as the portal lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    #[serde(rename = "account_id")]
    pub id: String,
    #[serde(rename = "account_name")]
    pub name: String,
    pub email: String,
    /// Which of the run's logins it runs through (an index into them, in the order
    /// given): set by the runner, not by the portal, and never cached.
    #[serde(skip)]
    pub login: usize,
    /// What the organization says of it (`--accounts-meta`): attached by the selection as
    /// the account is listed, and never cached (the facts are read afresh every run).
    #[serde(skip)]
    pub org: Option<Arc<AccountFacts>>,
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
