//! An emulated AWS IAM Identity Center portal (the `sso` service) on loopback.
//!
//! It speaks the wire protocol of botocore's `data/sso/2019-06-10/service-2.json`:
//! rest-json over HTTP/1.1, the access token in the `x-amz-sso_bearer_token` header,
//! `next_token`/`max_result` pagination, and errors as an HTTP status plus an
//! `x-amzn-ErrorType` header. fanout's integration tests, its `try-local` demo and its
//! benchmarks all point the real SDK at it through `AWS_ENDPOINT_URL_SSO`, so the product
//! carries no test switch.
//!
//! Faults are injected per account (a permanent 500, a number of 500s or 429s before
//! success) or for the whole portal (latency per call, a token-bucket rate limit that
//! answers 429 past its rate, as the real portal does under load). A [`Misbehaviour`]
//! makes the whole portal hostile in one way: a page token that never ends, a call that
//! is never answered, an HTML login page instead of JSON, or 429 for everything.
//!
//! SSO OIDC `CreateToken` (`POST /token`, the refresh-token grant) is served too, from
//! `oidc.rs`: tests point `AWS_ENDPOINT_URL_SSO_OIDC` here as well.

mod account_api;
pub mod home;
mod http;
pub mod oidc;
mod sts;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The access token the portal accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "fake-portal-access-token";

/// The real portal rejects larger pages since 2026.
pub const MAX_PAGE: usize = 100;

/// One account as the portal lists it.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
}

impl Account {
    pub fn new(id: &str, name: &str, roles: &[&str]) -> Self {
        Account {
            id: id.to_owned(),
            name: name.to_owned(),
            email: format!("{name}@example.com"),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }
}

/// The keys the portal mints for `role` in `account_id`: deterministic, so a test can
/// check that each child received its own account's keys and no other's.
pub fn credentials_for(account_id: &str, role: &str) -> (String, String, String) {
    (format!("ASIA{account_id}"), format!("secret-{account_id}-{role}"), format!("session-{account_id}-{role}"))
}

/// A random duration below `bound` (zero for zero). std's `RandomState` is seeded
/// randomly, which is random enough for a test's latency and needs no crate.
fn jitter(bound: Duration) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    if bound.is_zero() {
        return Duration::ZERO;
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    let bound_ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(hasher.finish() % bound_ns)
}

/// `n` accounts named like a real organisation (`team000-prod`, `team000-dev`, …).
/// Every sixth (the `prod` ones) has only `ReadOnly`; every tenth lacks `ReadOnly`.
pub fn generated_accounts(n: usize) -> Vec<Account> {
    const STAGES: [&str; 6] = ["prod", "dev", "staging", "sandbox", "audit", "shared"];
    (0..n)
        .map(|i| {
            let stage = STAGES[i % STAGES.len()];
            let name = format!("team{:03}-{stage}", i / STAGES.len());
            let mut roles = Vec::new();
            if i % 10 != 9 {
                roles.push("ReadOnly");
            }
            if stage != "prod" {
                roles.push("AdministratorAccess");
            }
            Account::new(&format!("{:012}", 100_000_000_000u64 + i as u64 * 1111), &name, &roles)
        })
        .collect()
}

/// One way the whole portal misbehaves, for testing that a client gives up cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Misbehaviour {
    /// `ListAccounts` and `ListAccountRoles` always answer the first page with the same
    /// `nextToken` ([`LOOP_TOKEN`]), whatever token they are given: a client that does not
    /// notice a repeated token pages forever.
    LoopNextToken,
    /// `ListAccounts` requests are read and never answered; the connection stays open.
    Stall,
    /// `GetRoleCredentials` requests are read and never answered.
    StallCredentials,
    /// `ListAccounts` answers 200 with an HTML sign-in page ([`HTML_PAGE`], an ESC byte
    /// included), as a captive portal or login proxy would.
    Html,
    /// Every operation answers 429 `TooManyRequestsException` (counted in
    /// [`Stats::throttled`]).
    ThrottleForever,
}

/// The `nextToken` [`Misbehaviour::LoopNextToken`] always gives.
pub const LOOP_TOKEN: &str = "again";

/// The body [`Misbehaviour::Html`] serves as `text/html`; it holds an ESC byte.
pub const HTML_PAGE: &str = "<html><head><title>Sign in</title></head><body>\x1b[31mproxy login</body></html>";

/// What the portal serves and which faults it injects.
#[derive(Clone, Debug)]
pub struct PortalOptions {
    pub accounts: Vec<Account>,
    /// Access tokens the portal accepts.
    pub tokens: Vec<String>,
    /// Largest page the portal returns, whatever `max_result` asks for.
    pub page_size: usize,
    /// The page size when a call gives no `max_result` (boto3's paginator gives none).
    pub default_page_size: usize,
    /// Added to every call, as a real portal's round trip.
    pub latency: Duration,
    /// Requests a second before answering 429; `None` is unlimited.
    pub rate_limit: Option<f64>,
    /// Accounts whose `GetRoleCredentials` always answers 500.
    pub failing_credentials: HashSet<String>,
    /// Accounts whose `GetRoleCredentials` answers 403 for a role they list (a permission
    /// set whose provisioning failed), which fanout counts as `denied`.
    pub denied_credentials: HashSet<String>,
    /// The message those 500s carry; `None` is "injected failure".
    pub failure_message: Option<String>,
    /// Accounts whose first N `GetRoleCredentials` calls answer 500.
    pub flaky_credentials: HashMap<String, u32>,
    /// Accounts whose first N `GetRoleCredentials` calls answer 429.
    pub throttled_credentials: HashMap<String, u32>,
    /// Extra latency for one account's `GetRoleCredentials` (a slow region, say).
    pub slow_credentials: HashMap<String, Duration>,
    /// A random extra latency below this for each `GetRoleCredentials`, so that
    /// credentials arrive in an order other than the listing's.
    pub credentials_jitter: Duration,
    /// Lifetime of minted credentials.
    pub credentials_ttl: Duration,
    /// One way the whole portal misbehaves; `None` is a well-behaved portal.
    pub misbehave: Option<Misbehaviour>,
    /// SSO OIDC `CreateToken` (refresh) and token revocation.
    pub oidc: oidc::OidcOptions,
    /// The Account API's `ListRegions`: each account's enabled regions, else
    /// [`account_api::DEFAULT_REGIONS`].
    pub enabled_regions: HashMap<String, Vec<String>>,
    /// Accounts whose role may not call `ListRegions` (403 `AccessDeniedException`).
    pub regions_denied: HashSet<String>,
    /// Accounts whose `accountName` `ListAccounts` sends as these bytes, verbatim
    /// between the quotes: a lone surrogate escape (`\ud800`) or invalid UTF-8, which a
    /// JSON encoder cannot produce.
    pub raw_names: HashMap<String, Vec<u8>>,
    /// An STS endpoint (`http://127.0.0.1:<port>` of a moto server) whose `AssumeRole`
    /// mints the keys `GetRoleCredentials` returns; `None` mints [`credentials_for`]'s.
    pub sts_endpoint: Option<String>,
}

impl Default for PortalOptions {
    fn default() -> Self {
        PortalOptions {
            accounts: generated_accounts(12),
            tokens: vec![DEFAULT_TOKEN.to_owned()],
            page_size: MAX_PAGE,
            default_page_size: 20,
            latency: Duration::ZERO,
            rate_limit: None,
            failing_credentials: HashSet::new(),
            denied_credentials: HashSet::new(),
            failure_message: None,
            flaky_credentials: HashMap::new(),
            throttled_credentials: HashMap::new(),
            slow_credentials: HashMap::new(),
            credentials_jitter: Duration::ZERO,
            credentials_ttl: Duration::from_hours(1),
            misbehave: None,
            oidc: oidc::OidcOptions::default(),
            enabled_regions: HashMap::new(),
            regions_denied: HashSet::new(),
            raw_names: HashMap::new(),
            sts_endpoint: None,
        }
    }
}

/// Call counts, readable while the portal runs.
#[derive(Debug, Default)]
pub struct Stats {
    pub list_accounts: AtomicU64,
    pub list_account_roles: AtomicU64,
    pub get_role_credentials: AtomicU64,
    pub throttled: AtomicU64,
    pub unauthorized: AtomicU64,
    pub server_errors: AtomicU64,
    /// SSO OIDC `CreateToken` calls that minted a token.
    pub create_token: AtomicU64,
    /// Requests [`Misbehaviour::Stall`] or [`Misbehaviour::StallCredentials`] left unanswered.
    pub stalled: AtomicU64,
    pub max_in_flight: AtomicU64,
    in_flight: AtomicU64,
    /// The Account API's `ListRegions`, answered and refused.
    pub list_regions: AtomicU64,
    pub list_regions_denied: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub list_accounts: u64,
    pub list_account_roles: u64,
    pub get_role_credentials: u64,
    pub throttled: u64,
    pub unauthorized: u64,
    pub server_errors: u64,
    pub create_token: u64,
    pub stalled: u64,
    pub max_in_flight: u64,
    pub list_regions: u64,
    pub list_regions_denied: u64,
}

impl StatsSnapshot {
    /// Calls the portal answered with data (not 429).
    pub fn served(&self) -> u64 {
        self.list_accounts + self.list_account_roles + self.get_role_credentials
    }

    pub fn to_json(self) -> Value {
        json!({
            "ListAccounts": self.list_accounts,
            "ListAccountRoles": self.list_account_roles,
            "GetRoleCredentials": self.get_role_credentials,
            "throttled": self.throttled,
            "unauthorized": self.unauthorized,
            "server_errors": self.server_errors,
            "CreateToken": self.create_token,
            "stalled": self.stalled,
            "inflight_max": self.max_in_flight,
            "ListRegions": self.list_regions,
            "ListRegionsDenied": self.list_regions_denied,
        })
    }
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            list_accounts: get(&self.list_accounts),
            list_account_roles: get(&self.list_account_roles),
            get_role_credentials: get(&self.get_role_credentials),
            throttled: get(&self.throttled),
            unauthorized: get(&self.unauthorized),
            server_errors: get(&self.server_errors),
            create_token: get(&self.create_token),
            stalled: get(&self.stalled),
            max_in_flight: get(&self.max_in_flight),
            list_regions: get(&self.list_regions),
            list_regions_denied: get(&self.list_regions_denied),
        }
    }
}

/// A token bucket holding one second of burst, as the harness and the real portal do.
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The portal's state, shared by every connection.
pub struct State {
    /// Its `accounts` are taken into `accounts`, where [`State::set_accounts`] changes them.
    options: PortalOptions,
    accounts: RwLock<Accounts>,
    bucket: Option<Mutex<Bucket>>,
    injected: Mutex<HashMap<String, (u32, u32)>>,
    oidc: oidc::Oidc,
    pub stats: Stats,
}

/// The accounts served, and where each id is among them.
struct Accounts {
    list: Vec<Account>,
    by_id: HashMap<String, usize>,
}

impl Accounts {
    fn new(list: Vec<Account>) -> Self {
        let by_id = list.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        Accounts { list, by_id }
    }
}

/// An HTTP reply: status, `x-amzn-ErrorType` (for errors) and a body.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub error_type: Option<&'static str>,
    pub body: Body,
}

/// A reply's body: JSON, as the portal speaks, or anything else with its content type.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// Sent as `application/json`.
    Json(Value),
    /// Sent as it is, under `content_type`.
    Raw { content_type: &'static str, bytes: Vec<u8> },
}

impl Body {
    /// The content type the body is sent under.
    pub fn content_type(&self) -> &'static str {
        match self {
            Body::Json(_) => "application/json",
            Body::Raw { content_type, .. } => content_type,
        }
    }

    /// The bytes sent on the wire.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Body::Json(value) => value.to_string().into_bytes(),
            Body::Raw { bytes, .. } => bytes,
        }
    }
}

impl Reply {
    fn ok(body: Value) -> Self {
        Reply { status: 200, error_type: None, body: Body::Json(body) }
    }

    fn error(status: u16, error_type: &'static str, message: &str) -> Self {
        Reply { status, error_type: Some(error_type), body: Body::Json(json!({ "message": message })) }
    }

    fn raw(status: u16, content_type: &'static str, bytes: impl Into<Vec<u8>>) -> Self {
        Reply { status, error_type: None, body: Body::Raw { content_type, bytes: bytes.into() } }
    }

    /// The JSON body, or `None` for a raw one.
    pub fn json(&self) -> Option<&Value> {
        match &self.body {
            Body::Json(value) => Some(value),
            Body::Raw { .. } => None,
        }
    }
}

/// Takes a request off the in-flight count when it ends, answered or dropped unanswered.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl State {
    pub fn new(mut options: PortalOptions) -> Self {
        let accounts = RwLock::new(Accounts::new(std::mem::take(&mut options.accounts)));
        let bucket = options.rate_limit.map(|rate| Mutex::new(Bucket { rate, tokens: rate, last: Instant::now() }));
        let oidc = oidc::Oidc::new(options.oidc.clone());
        State { options, accounts, bucket, injected: Mutex::new(HashMap::new()), oidc, stats: Stats::default() }
    }

    /// Serves `accounts` from now on, as a portal where accounts were created, removed
    /// or granted roles between two runs.
    pub fn set_accounts(&self, accounts: Vec<Account>) {
        *self.accounts.write().unwrap() = Accounts::new(accounts);
    }

    /// Answers one request; `query` is already percent-decoded.
    pub async fn handle(
        &self,
        method: &str,
        path: &str,
        query: &HashMap<String, String>,
        token: Option<&str>,
    ) -> Reply {
        if path == "/_stats" {
            return Reply::ok(self.stats.snapshot().to_json());
        }
        let in_flight = self.stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let _in_flight = InFlight(&self.stats.in_flight);
        self.stats.max_in_flight.fetch_max(in_flight, Ordering::Relaxed);
        let extra = query
            .get("account_id")
            .filter(|_| path == "/federation/credentials")
            .and_then(|id| self.options.slow_credentials.get(id))
            .copied()
            .unwrap_or_default();
        let jitter =
            if path == "/federation/credentials" { jitter(self.options.credentials_jitter) } else { Duration::ZERO };
        let latency = self.options.latency + extra + jitter;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let stalls = matches!(
            (self.options.misbehave, method, path),
            (Some(Misbehaviour::Stall), "GET", "/assignment/accounts")
                | (Some(Misbehaviour::StallCredentials), "GET", "/federation/credentials")
        );
        if stalls {
            self.stats.stalled.fetch_add(1, Ordering::Relaxed);
            std::future::pending::<()>().await;
        }
        let reply = self.answer(method, path, query, token);
        match &self.options.sts_endpoint {
            Some(endpoint) if path == "/federation/credentials" && reply.status == 200 => {
                Self::minted_by_sts(reply, endpoint, query).await
            }
            _ => reply,
        }
    }

    /// `reply` (a `GetRoleCredentials` answer) with its keys replaced by the ones `AssumeRole`
    /// on `endpoint` mints for the account and role asked; a 500 if the STS call fails.
    async fn minted_by_sts(mut reply: Reply, endpoint: &str, query: &HashMap<String, String>) -> Reply {
        let (endpoint, account, role) = (endpoint.to_owned(), query["account_id"].clone(), query["role_name"].clone());
        let minted = tokio::task::spawn_blocking(move || sts::assume_role(&endpoint, &account, &role)).await;
        match minted {
            Ok(Ok((key, secret, session))) => {
                if let Body::Json(body) = &mut reply.body {
                    let credentials = &mut body["roleCredentials"];
                    credentials["accessKeyId"] = json!(key);
                    credentials["secretAccessKey"] = json!(secret);
                    credentials["sessionToken"] = json!(session);
                }
                reply
            }
            Ok(Err(error)) => Reply::error(500, "InternalServerException", &format!("STS: {error}")),
            Err(error) => Reply::error(500, "InternalServerException", &format!("STS: {error}")),
        }
    }

    fn answer(&self, method: &str, path: &str, query: &HashMap<String, String>, token: Option<&str>) -> Reply {
        let operation = matches!(
            (method, path),
            ("GET", "/assignment/accounts" | "/assignment/roles" | "/federation/credentials") | ("POST", "/logout")
        );
        if operation && self.options.misbehave == Some(Misbehaviour::ThrottleForever) {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            return Reply::error(429, "TooManyRequestsException", "Rate exceeded");
        }
        let counter = match (method, path) {
            ("GET", "/assignment/accounts") => &self.stats.list_accounts,
            ("GET", "/assignment/roles") => &self.stats.list_account_roles,
            ("GET", "/federation/credentials") => &self.stats.get_role_credentials,
            ("POST", "/logout") => return Reply::ok(json!({})),
            _ => return Reply::error(404, "ResourceNotFoundException", "no such operation"),
        };
        if self.options.misbehave == Some(Misbehaviour::Html) && path == "/assignment/accounts" {
            counter.fetch_add(1, Ordering::Relaxed);
            return Reply::raw(200, "text/html", HTML_PAGE);
        }
        if let Some(bucket) = &self.bucket
            && !bucket.lock().unwrap().take()
        {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            return Reply::error(429, "TooManyRequestsException", "Rate exceeded");
        }
        if !self.oidc.accepts(&self.options.tokens, token) {
            self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Reply::error(401, "UnauthorizedException", "Session token not found or invalid");
        }
        if query.get("max_result").and_then(|m| m.parse::<usize>().ok()).is_some_and(|m| m > MAX_PAGE) {
            return Reply::error(400, "InvalidRequestException", "max_result must be at most 100");
        }
        let accounts = self.accounts.read().unwrap();
        if path == "/assignment/accounts" {
            counter.fetch_add(1, Ordering::Relaxed);
            let items: Vec<Value> = accounts
                .list
                .iter()
                .map(|a| {
                    let name =
                        if self.options.raw_names.contains_key(&a.id) { raw_name_mark(&a.id) } else { a.name.clone() };
                    json!({"accountId": a.id, "accountName": name, "emailAddress": a.email})
                })
                .collect();
            return self.with_raw_names(self.page(&items, query, "accountList"));
        }
        let Some(account) = query.get("account_id").map(|id| accounts.by_id.get(id).map(|&i| &accounts.list[i])) else {
            return Reply::error(400, "InvalidRequestException", "account_id is required");
        };
        let Some(account) = account else {
            return Reply::error(403, "ForbiddenException", "No access");
        };
        if path == "/assignment/roles" {
            counter.fetch_add(1, Ordering::Relaxed);
            let items: Vec<Value> =
                account.roles.iter().map(|r| json!({"roleName": r, "accountId": account.id})).collect();
            return self.page(&items, query, "roleList");
        }
        let role = query.get("role_name").map(String::as_str).unwrap_or_default();
        if !account.roles.iter().any(|r| r == role) || self.options.denied_credentials.contains(&account.id) {
            return Reply::error(403, "ForbiddenException", "No access");
        }
        if let Some(reply) = self.injected_fault(&account.id) {
            return reply;
        }
        counter.fetch_add(1, Ordering::Relaxed);
        let (key, secret, session) = credentials_for(&account.id, role);
        let expiration = SystemTime::now() + self.options.credentials_ttl;
        let since_epoch = expiration.duration_since(UNIX_EPOCH).unwrap_or_default();
        let expiration_ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
        Reply::ok(json!({"roleCredentials": {
            "accessKeyId": key, "secretAccessKey": secret, "sessionToken": session, "expiration": expiration_ms,
        }}))
    }

    /// SSO OIDC `CreateToken` (`POST /token`): see `oidc.rs`.
    pub async fn create_token(&self, body: &[u8]) -> Reply {
        self.oidc.create_token(body, &self.stats.create_token).await
    }

    fn injected_fault(&self, account_id: &str) -> Option<Reply> {
        if self.options.failing_credentials.contains(account_id) {
            self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
            let message = self.options.failure_message.as_deref().unwrap_or("injected failure");
            return Some(Reply::error(500, "InternalServerException", message));
        }
        let mut seen = self.injected.lock().unwrap();
        let (errors, throttles) = seen.entry(account_id.to_owned()).or_default();
        if self.options.throttled_credentials.get(account_id).is_some_and(|n| *throttles < *n) {
            *throttles += 1;
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            return Some(Reply::error(429, "TooManyRequestsException", "Rate exceeded"));
        }
        if self.options.flaky_credentials.get(account_id).is_some_and(|n| *errors < *n) {
            *errors += 1;
            self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
            return Some(Reply::error(500, "InternalServerException", "injected transient failure"));
        }
        None
    }

    /// `reply` with each [`PortalOptions::raw_names`] mark replaced by its bytes.
    fn with_raw_names(&self, reply: Reply) -> Reply {
        if self.options.raw_names.is_empty() {
            return reply;
        }
        let mut bytes = reply.body.into_bytes();
        for (id, raw) in &self.options.raw_names {
            let mark = raw_name_mark(id).into_bytes();
            if let Some(at) = bytes.windows(mark.len()).position(|w| w == mark.as_slice()) {
                bytes.splice(at..at + mark.len(), raw.iter().copied());
            }
        }
        Reply::raw(reply.status, "application/json", bytes)
    }

    fn page(&self, items: &[Value], query: &HashMap<String, String>, key: &str) -> Reply {
        let looping = self.options.misbehave == Some(Misbehaviour::LoopNextToken);
        let start: usize = if looping { 0 } else { query.get("next_token").and_then(|t| t.parse().ok()).unwrap_or(0) };
        let asked = query.get("max_result").and_then(|m| m.parse().ok()).unwrap_or(self.options.default_page_size);
        let end = (start + asked.min(self.options.page_size)).min(items.len());
        let mut body = json!({ key: items.get(start..end).unwrap_or_default() });
        if looping {
            body["nextToken"] = json!(LOOP_TOKEN);
        } else if end < items.len() {
            body["nextToken"] = json!(end.to_string());
        }
        Reply::ok(body)
    }
}

/// What stands for a raw name until the page is encoded.
fn raw_name_mark(id: &str) -> String {
    format!("fake-portal-raw-name-{id}")
}

/// A portal serving on `127.0.0.1:<random port>` from its own thread and runtime, so a
/// test's own runtime (or none) does not matter. Dropping it stops it.
pub struct FakePortal {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakePortal {
    pub fn start(options: PortalOptions) -> Self {
        let state = Arc::new(State::new(options));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let served = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("portal runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                tokio::select! {
                    () = http::serve(listener, served) => {}
                    _ = stopped => {}
                }
            });
        });
        FakePortal { addr, state, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// The endpoint to give fanout as `AWS_ENDPOINT_URL_SSO` (and `AWS_ENDPOINT_URL_SSO_OIDC`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.state.stats.snapshot()
    }

    /// Serves `accounts` from now on; see [`State::set_accounts`].
    pub fn set_accounts(&self, accounts: Vec<Account>) {
        self.state.set_accounts(accounts);
    }
}

impl Drop for FakePortal {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !std::thread::panicking()
        {
            panic!("the fake portal's thread panicked");
        }
    }
}

pub use account_api::DEFAULT_REGIONS;
pub use http::serve;

#[cfg(test)]
mod tests;
