//! `--credential-server`: each child's credentials served over loopback HTTP through the
//! container-credentials protocol every AWS SDK and the AWS CLI already speak, instead of
//! the three key variables.
//!
//! Key variables are fixed at spawn: a child that outlives the role session (1 to 12
//! hours) fails on its first call after that. An SDK reading
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` asks again before its credentials expire, and
//! this server answers each time with credentials that have more than [`MARGIN`] left,
//! fetched anew from the portal (its rate limiter and retries) when the held ones have
//! less.
//!
//! Security: the listener is bound to 127.0.0.1 only; every child gets its own random
//! token (`AWS_CONTAINER_AUTHORIZATION_TOKEN`) and a URI whose path names its account
//! and role. The token reads only that path, and is forgotten when the child ends. The
//! server keeps a SHA-256 of each token, never the token; a request with a wrong or
//! missing token, or with a token for another path, gets 403 and a warning that does
//! not contain what was sent.
//!
//! Another local user can reach the port too, so neither stderr nor fanout's file
//! descriptors are theirs to fill: the refusals are warned about once, then at most once
//! every [`WARN_INTERVAL`] with a count (and the count of the rest when the server
//! stops), and at most [`connection_cap`] connections are open at once; the others wait
//! in the kernel's listen backlog, which holds no descriptor of fanout's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};

use crate::credentials::{self, Credentials};
use crate::portal::Portal;
use crate::stop::Stopper;

/// Credentials handed out have more than this left: botocore refreshes container
/// credentials 15 minutes before they expire, so anything closer would be asked for
/// again at once.
pub const MARGIN: Duration = Duration::from_mins(15);

/// Where the paths in the URIs begin (the Ruby SDK needs a path); each goes on with
/// the account and the role, so a token shown on another account's path is refused.
const PATH_PREFIX: &str = "/fanout";

/// Random bytes in a token: aws-vault uses 30; 32 is a SHA-256's worth.
const TOKEN_BYTES: usize = 32;

/// A connection that sends no complete request head in this time is closed: a local
/// process cannot hold connections (and fanout's file descriptors) open by sending
/// nothing. The SDKs send theirs at once.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the listener rests after a failed accept (out of file descriptors, say)
/// before trying again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// After a warning about a refused request (or a failed accept), the next comes at the
/// earliest this much later; those in between are only counted.
const WARN_INTERVAL: Duration = Duration::from_mins(1);

/// Connections open at once, at most, for `children` commands at once: a few each (an
/// SDK keeps one alive, a retry or a second client in the same child opens another),
/// plus some room; never more than [`MAX_CONNECTIONS`].
pub fn connection_cap(children: usize) -> usize {
    children.saturating_mul(4).saturating_add(16).min(MAX_CONNECTIONS)
}

/// The most connections open at once, whatever `-j` is: each holds a descriptor.
const MAX_CONNECTIONS: usize = 1024;

/// The running server; dropping it (at the end of the run) stops it and closes every
/// connection.
pub struct CredentialServer {
    /// `http://127.0.0.1:PORT`, without a path.
    base: String,
    registry: Arc<Registry>,
    /// Shared with the serving task: the refusals not warned about yet are said on drop.
    state: Arc<State>,
    task: AbortHandle,
}

impl CredentialServer {
    /// Binds a free port on 127.0.0.1 and serves until dropped, or until the run's
    /// children are killed, with at most `max_connections` connections open at once
    /// (see [`connection_cap`]). Credentials are re-fetched through their login's portal,
    /// one of `portals` (the run's logins, in order).
    pub async fn start(portals: Vec<Arc<Portal>>, stopper: Stopper, max_connections: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        // The literal loopback address: aws-config resolves a hostname and wants every
        // address it finds to be a loopback one.
        let base = format!("http://{}", listener.local_addr()?);
        let registry = Arc::new(Registry::default());
        let state = Arc::new(State {
            portals,
            registry: Arc::clone(&registry),
            refusals: Mutex::default(),
            max_connections: max_connections.max(1),
        });
        let task = tokio::spawn(serve(listener, Arc::clone(&state), stopper)).abort_handle();
        tracing::debug!(%base, max_connections, "credential server listening");
        Ok(CredentialServer { base, registry, state, task })
    }

    /// A new token for one child that reads `credentials` (and their renewals from the
    /// portal of its `login`) for `role` in `account_id`, until the returned access is
    /// dropped. Children of one account and role share what the server holds, so they
    /// renew it once.
    pub fn admit(
        &self,
        account_id: &str,
        role: &str,
        credentials: &Credentials,
        login: usize,
    ) -> Result<ChildAccess, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        let token = SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        let key = digest(token.expose_secret().as_bytes());
        let path = self.registry.insert(key, (account_id, role, login), credentials);
        let url = format!("{}{path}", self.base);
        Ok(ChildAccess { url, token, key, registry: Arc::clone(&self.registry) })
    }
}

impl Drop for CredentialServer {
    fn drop(&mut self) {
        self.task.abort();
        let unsaid = lock(&self.state.refusals).take_unsaid();
        if unsaid > 0 {
            tracing::warn!("the credential server refused {unsaid} more requests (403) since its last warning");
        }
    }
}

/// A mutex's data, poisoned or not: what it guards here is counts and maps that a panic
/// leaves whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Warnings that a local process can cause at will: the first is said, then at most one
/// every [`WARN_INTERVAL`]; the others are counted, so a flood costs a line a minute.
#[derive(Debug, Default)]
struct Throttled {
    /// When the last warning was said; `None` before the first.
    said: Option<Instant>,
    /// Those since then that were not.
    unsaid: u64,
}

impl Throttled {
    /// Another occasion at `now`: `Some(n)` when a warning is to be said, `n` the
    /// occasions left unsaid before it; `None` when it is only counted.
    fn note(&mut self, now: Instant) -> Option<u64> {
        if self.said.is_some_and(|said| now.saturating_duration_since(said) < WARN_INTERVAL) {
            self.unsaid += 1;
            return None;
        }
        self.said = Some(now);
        Some(std::mem::take(&mut self.unsaid))
    }

    /// The occasions not said yet, forgotten: for the last line.
    fn take_unsaid(&mut self) -> u64 {
        std::mem::take(&mut self.unsaid)
    }
}

/// `; N more since the last warning`, or nothing for none.
fn more_since(unsaid: u64) -> String {
    if unsaid == 0 { String::new() } else { format!("; {unsaid} more since the last warning") }
}

/// What one child is given: the URI and its token. Dropping it (when the child ends)
/// forgets the token.
pub struct ChildAccess {
    url: String,
    token: SecretString,
    key: [u8; 32],
    registry: Arc<Registry>,
}

impl ChildAccess {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    pub fn token(&self) -> &str {
        self.token.expose_secret()
    }
}

#[cfg(test)]
impl ChildAccess {
    /// An access no server knows, for tests of the child's environment.
    pub(crate) fn unregistered(url: &str, token: &str) -> Self {
        ChildAccess {
            url: url.to_owned(),
            token: SecretString::from(token.to_owned()),
            key: digest(token.as_bytes()),
            registry: Arc::default(),
        }
    }
}

impl std::fmt::Debug for ChildAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildAccess").field("url", &self.url).field("token", &"[REDACTED]").finish_non_exhaustive()
    }
}

impl Drop for ChildAccess {
    fn drop(&mut self) {
        self.registry.forget(&self.key);
    }
}

/// One account's and role's credentials, shared by the children that run with them.
struct Held {
    account_id: String,
    role: String,
    /// The only path its children's tokens read.
    path: String,
    /// Locked across a renewal: requests for the same account wait for one portal call
    /// instead of each making their own.
    credentials: tokio::sync::Mutex<Credentials>,
    /// The run's login the account is reached through: its portal renews them.
    login: usize,
}

/// The tokens of the children running now, by their SHA-256: looking up a digest
/// tells a timing observer nothing about the token itself.
#[derive(Default)]
struct Registry {
    children: Mutex<HashMap<[u8; 32], Arc<Held>>>,
}

impl Registry {
    /// Registers a child's token; returns the path it reads.
    fn insert(
        &self,
        key: [u8; 32],
        (account_id, role, login): (&str, &str, usize),
        credentials: &Credentials,
    ) -> String {
        let mut children = lock(&self.children);
        let shared = children.values().find(|held| held.account_id == account_id && held.role == role).cloned();
        let held = shared.unwrap_or_else(|| {
            Arc::new(Held {
                account_id: account_id.to_owned(),
                role: role.to_owned(),
                // Account ids are digits and role names `[\w+=,.@-]`: path characters all.
                path: format!("{PATH_PREFIX}/{account_id}/{role}"),
                credentials: tokio::sync::Mutex::new(credentials.clone()),
                login,
            })
        });
        let path = held.path.clone();
        children.insert(key, held);
        path
    }

    /// The credentials `token` may read at `path`, if it is a running child's token and
    /// `path` its account's and role's.
    fn lookup(&self, token: Option<&[u8]>, path: &str) -> Option<Arc<Held>> {
        let key = digest(token?);
        let children = lock(&self.children);
        children.get(&key).filter(|held| held.path == path).cloned()
    }

    fn forget(&self, key: &[u8; 32]) {
        lock(&self.children).remove(key);
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// What every connection shares.
struct State {
    /// A login each, as `Held::login` indexes them.
    portals: Vec<Arc<Portal>>,
    registry: Arc<Registry>,
    /// The refused requests, for their throttled warnings.
    refusals: Mutex<Throttled>,
    /// Connections open at once, at most.
    max_connections: usize,
}

/// Accepts connections until the children are killed or the task is aborted; the
/// connections are in a [`JoinSet`], so they end with it. With `max_connections` open,
/// it accepts no more until one ends: the next wait in the listen backlog (and past
/// it, a client's connect waits), holding none of fanout's descriptors, where a flood
/// of accepted ones would take them all.
async fn serve(listener: TcpListener, state: Arc<State>, stopper: Stopper) {
    let mut connections = JoinSet::new();
    let mut accept_errors = Throttled::default();
    let killed = stopper.killed();
    tokio::pin!(killed);
    loop {
        tokio::select! {
            accepted = listener.accept(), if connections.len() < state.max_connections => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let state = Arc::clone(&state);
                    connections.spawn(async move {
                        let service = service_fn(move |request| respond(Arc::clone(&state), peer, request));
                        let connection = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_READ_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, "credential server connection: {error}");
                        }
                    });
                }
                Err(error) => {
                    if let Some(unsaid) = accept_errors.note(Instant::now()) {
                        tracing::warn!("the credential server cannot accept a connection: {error}{}", more_since(unsaid));
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut killed => return,
        }
    }
}

async fn respond(
    state: Arc<State>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let token = request.headers().get(AUTHORIZATION).map(hyper::header::HeaderValue::as_bytes);
    let path = request.uri().path();
    let reply = match state.registry.lookup(token, path) {
        None => {
            // The token sent is a secret (someone's, maybe): never logged, even wrong.
            // The path names the account asked for; control characters are escaped.
            // Said once a minute at most, with a count: anyone local can send these.
            if let Some(unsaid) = lock(&state.refusals).note(Instant::now()) {
                let sent = if token.is_some() { "a wrong" } else { "no" };
                let path = crate::text::show(path);
                tracing::warn!(
                    %peer, %path,
                    "the credential server refused a request with {sent} authorization token (403){}",
                    more_since(unsaid)
                );
            }
            Reply::error(StatusCode::FORBIDDEN, "AccessDenied", "wrong or missing authorization token for this path")
        }
        Some(_) if request.method() != Method::GET => {
            Reply::error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "only GET is served")
        }
        Some(held) => held.reply(&state.portals[held.login]).await,
    };
    let response = Response::builder()
        .status(reply.status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a status and a fixed header make a valid response");
    Ok(response)
}

/// A status and its JSON body.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

impl Reply {
    /// botocore and aws-config show the status and this body in the error they raise.
    fn error(status: StatusCode, code: &str, message: &str) -> Self {
        let body = serde_json::json!({ "Code": code, "Message": message });
        Reply { status, body: body.to_string().into_bytes() }
    }
}

impl Held {
    /// Credentials with more than [`MARGIN`] left, renewed first if need be; 502 when
    /// the portal cannot renew them.
    async fn reply(&self, portal: &Portal) -> Reply {
        let mut credentials = self.credentials.lock().await;
        if credentials.expire_within(MARGIN, SystemTime::now()) {
            match credentials::fetch(portal, &self.account_id, &self.role).await {
                Ok(renewed) => {
                    tracing::info!(account = %self.account_id, role = %self.role, "the credential server fetched new credentials");
                    *credentials = renewed;
                }
                Err(error) => {
                    let message = format!(
                        "fanout could not fetch new credentials for role {} in account {}: {error}",
                        self.role, self.account_id
                    );
                    tracing::warn!("the credential server answered 502: {message}");
                    return Reply::error(StatusCode::BAD_GATEWAY, "CredentialsUnavailable", &message);
                }
            }
        }
        Reply { status: StatusCode::OK, body: body(&self.account_id, &credentials) }
    }
}

/// The container-credentials answer the SDKs read.
fn body(account_id: &str, credentials: &Credentials) -> Vec<u8> {
    serde_json::json!({
        "AccessKeyId": credentials.access_key_id.expose_secret(),
        "SecretAccessKey": credentials.secret_access_key.expose_secret(),
        "Token": credentials.session_token.expose_secret(),
        "Expiration": credentials.expiration,
        "AccountId": account_id,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(key: &str, expiration: &str) -> Credentials {
        use aws_sdk_sso::primitives::{DateTime, DateTimeFormat};
        let expires_at = DateTime::from_str(expiration, DateTimeFormat::DateTime).unwrap();
        Credentials::new(
            SecretString::from(key.to_owned()),
            SecretString::from(format!("secret-{key}")),
            SecretString::from(format!("session-{key}")),
            SystemTime::try_from(expires_at).unwrap(),
        )
    }

    #[test]
    fn a_token_reads_only_its_own_account_until_forgotten() {
        let registry = Registry::default();
        let a = registry.insert(digest(b"token-a"), ("111", "ReadOnly", 0), &credentials("A", "2026-11-24T03:00:00Z"));
        let b = registry.insert(digest(b"token-b"), ("222", "ReadOnly", 0), &credentials("B", "2026-11-24T03:00:00Z"));
        assert_eq!((a.as_str(), b.as_str()), ("/fanout/111/ReadOnly", "/fanout/222/ReadOnly"));
        let account = |token: &[u8], path: &str| registry.lookup(Some(token), path).map(|held| held.account_id.clone());
        assert_eq!(account(b"token-a", &a).as_deref(), Some("111"));
        assert_eq!(account(b"token-b", &b).as_deref(), Some("222"));
        // Another child's token, on this child's path or on its own.
        assert_eq!(account(b"token-b", &a), None);
        assert_eq!(account(b"token-a", &b), None);
        assert_eq!(account(b"token-a", "/fanout/111/Admin"), None);
        assert_eq!(account(b"token-a", "/"), None);
        assert_eq!(account(b"token-c", &a), None);
        assert_eq!(account(b"", &a), None);
        assert!(registry.lookup(None, &a).is_none());
        registry.forget(&digest(b"token-a"));
        assert_eq!(account(b"token-a", &a), None);
        assert_eq!(account(b"token-b", &b).as_deref(), Some("222"));
    }

    #[test]
    fn children_of_one_account_and_role_share_what_is_held() {
        let registry = Registry::default();
        registry.insert(digest(b"one"), ("111", "ReadOnly", 0), &credentials("A", "2026-11-24T03:00:00Z"));
        registry.insert(digest(b"two"), ("111", "ReadOnly", 0), &credentials("A2", "2026-11-24T03:00:00Z"));
        registry.insert(digest(b"admin"), ("111", "Admin", 0), &credentials("C", "2026-11-24T03:00:00Z"));
        let (one, two, admin) = (
            registry.lookup(Some(b"one"), "/fanout/111/ReadOnly").unwrap(),
            registry.lookup(Some(b"two"), "/fanout/111/ReadOnly").unwrap(),
            registry.lookup(Some(b"admin"), "/fanout/111/Admin").unwrap(),
        );
        assert!(Arc::ptr_eq(&one, &two));
        assert!(!Arc::ptr_eq(&one, &admin));
    }

    #[test]
    fn the_body_is_what_the_sdks_read() {
        let body: serde_json::Value =
            serde_json::from_slice(&body("111122223333", &credentials("ASIAKEY", "2026-11-24T03:00:00Z"))).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "AccessKeyId": "ASIAKEY",
                "SecretAccessKey": "secret-ASIAKEY",
                "Token": "session-ASIAKEY",
                "Expiration": "2026-11-24T03:00:00Z",
                "AccountId": "111122223333",
            })
        );
    }

    #[test]
    fn an_error_body_names_its_code() {
        let reply = Reply::error(StatusCode::FORBIDDEN, "AccessDenied", "no");
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body, serde_json::json!({ "Code": "AccessDenied", "Message": "no" }));
    }

    #[test]
    fn refusals_are_said_once_a_minute_with_a_count() {
        let mut throttled = Throttled::default();
        let start = Instant::now();
        assert_eq!(throttled.note(start), Some(0));
        for second in 1..=59 {
            assert_eq!(throttled.note(start + Duration::from_secs(second)), None);
        }
        assert_eq!(throttled.note(start + WARN_INTERVAL), Some(59));
        assert_eq!(throttled.note(start + WARN_INTERVAL + Duration::from_secs(1)), None);
        assert_eq!(throttled.take_unsaid(), 1);
        assert_eq!(throttled.take_unsaid(), 0);
        assert_eq!(more_since(0), "");
        assert_eq!(more_since(3), "; 3 more since the last warning");
    }

    #[test]
    fn connections_are_capped_by_the_commands_at_once() {
        assert_eq!(connection_cap(1), 20);
        assert_eq!(connection_cap(16), 80);
        assert_eq!(connection_cap(100_000), MAX_CONNECTIONS);
        assert_eq!(connection_cap(usize::MAX), MAX_CONNECTIONS);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let access = ChildAccess::unregistered("http://127.0.0.1:1/fanout/1/r", "the-token");
        let shown = format!("{access:?}");
        assert!(!shown.contains("the-token") && shown.contains("REDACTED"), "{shown}");
    }
}
