//! `fanout doctor`: the login checked end to end, on one screen.
//!
//! A failed run says what failed; it cannot say what was in force. Doctor follows the
//! same steps a run takes (config file, login, token, endpoint, portal) and shows each
//! one's choice and where it came from, then what a run would meet besides (clock skew,
//! the inventory cache, inherited credential variables). Each problem line ends with its
//! fix, and the exit code is the documented code of the first problem, so a script can
//! tell a lapsed login (3) from a portal it cannot reach (4) or a broken config (2).
//!
//! Nothing secret is printed: not the token, not the refresh token, not the value of an
//! inherited credential variable (names only), not a password in an endpoint URL.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::profile::ProfileSet;
use aws_sdk_sso::primitives::{DateTime, DateTimeFormat};

use crate::cache::inventory::{self, CachedInventory};
use crate::config::Config;
use crate::login::endpoint::{self, EndpointEnv, Service};
use crate::login::{AwsConfig, LoginError, SsoLogin, resolve_logins};
use crate::org::OrgRole;
use crate::organizations::{self, ListError};
use crate::portal::{Portal, PortalError, PortalLimits, RetryPolicy};
use crate::stop::Stopper;
use crate::text;
use crate::token::refresh::{Need, TokenHolder, refresh_need};
use crate::{exit_code, token};

/// Clocks further apart than this break `SigV4`: AWS rejects a request signed more than
/// five minutes off its own time, so every child's AWS call would fail.
const MAX_SKEW_SECS: f64 = 300.0;

/// What doctor reads from fanout's own environment, asked once so tests can build it.
#[derive(Clone, Debug, Default)]
pub struct DoctorEnv {
    pub endpoints: EndpointEnv,
    /// Names of the credential variables set in fanout's environment, which every
    /// child has removed; never their values.
    pub credential_vars: Vec<String>,
}

impl DoctorEnv {
    pub fn real() -> Self {
        DoctorEnv {
            endpoints: EndpointEnv::real(),
            credential_vars: crate::exec::env::inherited_credential_vars()
                .filter(|name| std::env::var_os(name).is_some())
                .map(|name| name.to_string_lossy().into_owned())
                .collect(),
        }
    }
}

/// How a line of the report reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    Ok,
    /// Worth knowing, not a failure: the exit code is unchanged.
    Warn,
    /// A detail under the line above.
    Info,
    /// A failure, with the exit code it stands for.
    Problem(u8),
}

/// The report: lines in the order checked.
#[derive(Debug, Default)]
pub struct Report {
    lines: Vec<(Mark, String)>,
}

impl Report {
    fn ok(&mut self, text: String) {
        self.lines.push((Mark::Ok, text));
    }

    fn warn(&mut self, text: String) {
        self.lines.push((Mark::Warn, text));
    }

    fn info(&mut self, text: String) {
        self.lines.push((Mark::Info, text));
    }

    fn problem(&mut self, code: u8, text: String) {
        self.lines.push((Mark::Problem(code), text));
    }

    /// The code of the first problem, else 0.
    pub fn exit_code(&self) -> u8 {
        self.lines
            .iter()
            .find_map(|(mark, _)| match mark {
                Mark::Problem(code) => Some(*code),
                _ => None,
            })
            .unwrap_or(exit_code::SUCCESS)
    }

    /// The screen: `✓`, `✗` and `!` lines, details indented under them, a verdict last.
    /// Every text is escaped and clipped: names and messages can come from files and the network.
    pub fn render(&self) -> String {
        let mut text = String::from("fanout doctor\n");
        for (mark, line) in &self.lines {
            let prefix = match mark {
                Mark::Ok => "✓ ",
                Mark::Warn => "! ",
                Mark::Info => "    ",
                Mark::Problem(_) => "✗ ",
            };
            let _ = writeln!(text, "{prefix}{}", text::show_at_most(line, text::MAX_LINE));
        }
        let problems = self.lines.iter().filter(|(mark, _)| matches!(mark, Mark::Problem(_))).count();
        match problems {
            0 => text.push_str("all well\n"),
            n => {
                let _ = writeln!(text, "{} found; exit {}", crate::text::plural(n, "problem"), self.exit_code());
            }
        }
        text
    }
}

/// Checks everything a run depends on, in the order a run meets it.
pub async fn check(config: &Config, env: &DoctorEnv, stopper: Stopper) -> Report {
    let mut report = Report::default();
    // With several --sso-session, each login in turn: a run needs every one of them.
    for (index, (aws_config, profiles, login)) in check_logins(config, &mut report).await.into_iter().enumerate() {
        if config.sso_sessions.len() > 1 {
            report.info(format!("checking {}", login_label(&login)));
        }
        let token = check_token(config, &login, &mut report);
        let endpoint = check_endpoint(env, &profiles, &login, &mut report);
        let portal = if let Some(token) = token {
            check_portal(config, &aws_config, &login, token, &endpoint, stopper.clone(), &mut report).await
        } else {
            report.info("portal: not checked: there is no valid token to ask it with".to_owned());
            None
        };
        // The org role is reached through the first login, as a run reaches it.
        if let (Some(role), 0) = (&config.org_role, index) {
            match &portal {
                Some(portal) => check_org_role(portal, role, &login, &aws_config, &mut report).await,
                None => report.info(format!("organizations: --org-role {role} not checked: the portal did not answer")),
            }
        }
        check_inventory(config, &login, &mut report);
    }
    check_credential_vars(env, &mut report);
    report
}

/// The config file, and the logins chosen from it and why.
async fn check_logins(config: &Config, report: &mut Report) -> Vec<(AwsConfig, ProfileSet, SsoLogin)> {
    let aws_config = match AwsConfig::read(&config.home, config.aws_config_file.as_deref()) {
        Ok(aws_config) => aws_config,
        Err(error) => {
            report.problem(
                exit_code::USAGE,
                format!("AWS config: {error}; fix: make it a readable file of at most 1 MiB, or set AWS_CONFIG_FILE"),
            );
            return Vec::new();
        }
    };
    let origin = if config.aws_config_file.as_deref().is_some_and(|f| !f.is_empty()) {
        "from AWS_CONFIG_FILE"
    } else {
        "the default"
    };
    if aws_config.path.is_file() {
        report.ok(format!("AWS config: {} ({origin})", aws_config.path.display()));
    } else {
        report.warn(format!("AWS config: {} ({origin}) does not exist: an empty config", aws_config.path.display()));
    }
    let profiles = match aws_config.profiles().await {
        Ok(profiles) => profiles,
        Err(error) => {
            report.problem(exit_code::USAGE, format!("AWS config: {error}; fix: correct that line"));
            return Vec::new();
        }
    };
    match resolve_logins(&profiles, &config.sso_sessions, config.profile.as_deref()) {
        Ok(logins) => {
            for login in &logins {
                report.ok(format!("{}: {}", login_label(login), why_chosen(config, login)));
                report.info(format!("start URL {}, sso_region {}", login.start_url, login.sso_region));
            }
            logins.into_iter().map(|login| (aws_config.clone(), profiles.clone(), login)).collect()
        }
        Err(error) => {
            let fix = login_fix(&error);
            report.problem(exit_code::USAGE, format!("sso-session: {error}; {fix}"));
            Vec::new()
        }
    }
}

fn login_label(login: &SsoLogin) -> String {
    match &login.session {
        Some(session) => format!("sso-session {session}"),
        None => "legacy SSO login".to_owned(),
    }
}

/// Why this login, in the order `login/` chooses.
fn why_chosen(config: &Config, login: &SsoLogin) -> String {
    match (config.sso_sessions.first(), &login.profile) {
        (Some(_), _) => "chosen by --sso-session".to_owned(),
        (None, Some(profile)) if login.session.is_some() => {
            format!("the sso_session of profile {profile} (--profile or AWS_PROFILE)")
        }
        (None, Some(profile)) => format!("the sso_start_url of profile {profile} (--profile or AWS_PROFILE)"),
        (None, None) => "the only sso-session in the file".to_owned(),
    }
}

/// The fix for a login that cannot be chosen, always on the same line.
fn login_fix(error: &LoginError) -> String {
    if let Some(hint) = error.hint() {
        return hint;
    }
    match error {
        LoginError::UnknownSession { .. } => "fix: pass one of those to --sso-session".to_owned(),
        LoginError::UnknownProfile(_) => "fix: check --profile and AWS_PROFILE".to_owned(),
        LoginError::NotSso(_) => "fix: run `aws configure sso`, or choose an SSO profile".to_owned(),
        LoginError::Incomplete { .. } => "fix: add it, or run `aws configure sso-session`".to_owned(),
        _ => "fix: correct the AWS config".to_owned(),
    }
}

/// The token file, its expiry, and whether it can be refreshed. An expired token a run
/// would refresh is not a problem; doctor itself does not refresh (it changes nothing),
/// so the portal is then not asked.
fn check_token(config: &Config, login: &SsoLogin, report: &mut Report) -> Option<token::CachedToken> {
    let path = token::cache_path(&config.home, login);
    let now = DateTime::from(SystemTime::now());
    let (token, refresh) = match token::read_token_file(&path, login, now) {
        Ok(file) => {
            if let Some(problem) = &file.untrusted {
                report.warn(token::untrusted_warning(problem));
            }
            let refresh = match &file.grant {
                Ok(grant) => format!(
                    "possible: a refreshToken, registration valid until {}",
                    rfc3339(grant.registration_expires_at)
                ),
                Err(reason) => format!("not possible: {reason}"),
            };
            let at = rfc3339(file.token.expires_at);
            let token = match (token::ensure_token_not_expired(&file.token, login, now), &file.grant) {
                (Ok(()), grant) => {
                    let left = file.token.expires_at.secs() - now.secs();
                    let soon = if grant.is_ok() && refresh_need(file.token.expires_at, now) != Need::None {
                        "; a run refreshes it first"
                    } else {
                        ""
                    };
                    report.ok(format!("token: expires at {at} (in {}){soon}", span(left)));
                    Some(file.token)
                }
                (Err(_), Ok(_)) => {
                    report.ok(format!("token: expired at {at}; a run refreshes it with the cached refresh token"));
                    None
                }
                (Err(error), Err(_)) => {
                    report.problem(exit_code::NO_LOGIN, format!("token: {error}; run: {}", login.login_command()));
                    None
                }
            };
            (token, refresh)
        }
        Err(error) => {
            let fix = match error.login_command() {
                Some(command) => format!("run: {command}"),
                None => format!("fix: make it a readable file, or run: {}", login.login_command()),
            };
            report.problem(exit_code::NO_LOGIN, format!("token: {error}; {fix}"));
            (None, "not possible (no readable cache file)".to_owned())
        }
    };
    report.info(format!("file {}", path.display()));
    report.info(format!("refresh: {refresh}"));
    token
}

/// The portal endpoint in force, and every override set, in the SDK's order. Returns
/// the endpoint shown, for the portal line.
fn check_endpoint(env: &DoctorEnv, profiles: &ProfileSet, login: &SsoLogin, report: &mut Report) -> String {
    let endpoints = endpoint::resolve(Service::Portal, &env.endpoints, profiles, login);
    let endpoint = if let Some(in_force) = endpoints.in_force() {
        let url = redact_userinfo(&in_force.url);
        report.ok(format!("endpoint: {url} (from {})", in_force.source));
        url
    } else {
        let default = format!("https://portal.sso.{}.amazonaws.com", login.sso_region);
        report.ok(format!("endpoint: {default} (the default for sso_region {})", login.sso_region));
        default
    };
    for (index, o) in endpoints.overrides.iter().enumerate() {
        let status = match (&endpoints.ignored_by, index) {
            (Some(by), _) => format!("ignored: {by}"),
            (None, 0) => "in force".to_owned(),
            (None, _) => format!("not used: {} comes first", endpoints.overrides[0].source),
        };
        report.info(format!("{} = {} ({status})", o.source, redact_userinfo(&o.url)));
    }
    if let Some(by) = &endpoints.ignored_by {
        report.info(format!("{by}: configured endpoints are ignored"));
    }
    endpoint
}

/// `https://user:password@host/` shows as `https://***@host/`: a proxy's password in an
/// endpoint URL is a secret too.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// One `ListAccounts` call of one item: whether the portal answers, how fast, and how
/// far its clock is from ours. The portal, if it answered, for the checks that need it.
async fn check_portal(
    config: &Config,
    aws_config: &AwsConfig,
    login: &SsoLogin,
    token: token::CachedToken,
    endpoint: &str,
    stopper: Stopper,
    report: &mut Report,
) -> Option<Portal> {
    // One attempt after an error: doctor reports what it met, without waiting on retries.
    let retry = RetryPolicy { max_throttled_attempts: 3, max_error_attempts: 1, ..RetryPolicy::default() };
    let limits = PortalLimits {
        max_in_flight: 1,
        initial_rate: crate::rate::Sustained { rate: config.portal_rate, throttled: false },
        retry,
        throttle_timeout: config.throttle_timeout,
    };
    let portal = Portal::connect(login, aws_config, TokenHolder::fixed(login, token), limits, stopper).await;
    let sent = SystemTime::now();
    let started = Instant::now();
    match portal.probe().await {
        Ok(probe) => {
            let elapsed = started.elapsed();
            report.ok(format!("portal: answered ListAccounts in {} ms", elapsed.as_millis()));
            check_clock(probe.date.as_deref(), sent + elapsed / 2, report);
            return Some(portal);
        }
        Err(PortalError::Unauthorized { message }) => report.problem(
            exit_code::NO_LOGIN,
            format!("portal: rejected the cached token ({message}); run: {}", login.login_command()),
        ),
        Err(error) => report.problem(
            exit_code::PORTAL_UNAVAILABLE,
            format!(
                "portal: {endpoint} did not answer: {}; fix: check the network, a proxy, and the endpoint above (AWS_ENDPOINT_URL_SSO, the profile's [services])",
                text::error_chain(&error)
            ),
        ),
    }
    None
}

/// `--org-role`: the role's credentials from the portal, and the first call a run makes
/// with them (`ListRoots`); each problem with the fix its error names.
async fn check_org_role(
    portal: &Portal,
    role: &OrgRole,
    login: &SsoLogin,
    aws_config: &AwsConfig,
    report: &mut Report,
) {
    match organizations::probe(portal, role, login, aws_config).await {
        Ok(roots) => {
            report.ok(format!("organizations: --org-role {role} lists the organization (root {})", roots.join(", ")));
        }
        Err(ListError::Organizations(error)) => report.problem(error.exit_code(), format!("organizations: {error}")),
        Err(ListError::Portal(PortalError::Unauthorized { message })) => report.problem(
            exit_code::NO_LOGIN,
            format!(
                "organizations: the portal rejected the token for --org-role {role} ({message}); run: {}",
                login.login_command()
            ),
        ),
        Err(ListError::Portal(error)) => report.problem(
            exit_code::PORTAL_UNAVAILABLE,
            format!(
                "organizations: the credentials of --org-role {role} could not be fetched: {}",
                text::error_chain(&error)
            ),
        ),
    }
}

/// Compares the portal's `Date` with our clock at the middle of the call (the header's
/// one-second resolution is the precision either way).
fn check_clock(date: Option<&str>, local: SystemTime, report: &mut Report) {
    let Some(date) = date else {
        report.info("clock: not checked: the portal sent no Date header".to_owned());
        return;
    };
    let Ok(portal) = DateTime::from_str(date.trim(), DateTimeFormat::HttpDate) else {
        report.info(format!("clock: not checked: the portal's Date {date:?} is not an HTTP date"));
        return;
    };
    let local = local.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    #[expect(clippy::cast_precision_loss, reason = "seconds since 1970 fit an f64 exactly")]
    let skew = local - portal.secs() as f64;
    let direction = if skew > 0.0 { "ahead of" } else { "behind" };
    if skew.abs() > MAX_SKEW_SECS {
        report.warn(format!(
            "clock: {:.0}s {direction} the portal's; AWS rejects requests signed more than 5 minutes off; fix: sync the clock (e.g. timedatectl set-ntp true)",
            skew.abs()
        ));
    } else {
        report.ok(format!("clock: within {:.0}s of the portal's Date", skew.abs().max(1.0)));
    }
}

/// The inventory cache: off, untrusted, absent, or how old.
fn check_inventory(config: &Config, login: &SsoLogin, report: &mut Report) {
    if config.inventory_ttl.is_zero() {
        report.ok("inventory cache: off (--cache-ttl 0)".to_owned());
        return;
    }
    if let Err(problem) = crate::files::check_private_dir(&config.cache_dir) {
        report.warn(format!("inventory cache: not used: {}: {problem}", config.cache_dir.display()));
        return;
    }
    let path = inventory::cache_path(&config.cache_dir, login);
    match CachedInventory::open(&path, login, inventory::now_secs(), Duration::MAX) {
        Some(cached) => {
            let age = span(i64::try_from(cached.age.as_secs()).unwrap_or(i64::MAX));
            let verdict = if cached.age < config.inventory_ttl {
                "fresh: a run uses it; --refresh lists again"
            } else {
                "stale: older than --cache-ttl, the next run lists again"
            };
            report.ok(format!("inventory cache: {age} old ({verdict})"));
        }
        None => report.ok("inventory cache: none for this login yet (the next run lists from the portal)".to_owned()),
    }
    report.info(format!("file {}", path.display()));
}

/// Credential variables set in fanout's environment: names only, never values.
fn check_credential_vars(env: &DoctorEnv, report: &mut Report) {
    if env.credential_vars.is_empty() {
        report.ok("credential variables: none in fanout's environment".to_owned());
    } else {
        report.ok(format!(
            "credential variables: {} set here, stripped from every command (each gets its account's own)",
            env.credential_vars.join(", ")
        ));
    }
}

fn rfc3339(at: DateTime) -> String {
    at.fmt(DateTimeFormat::DateTime).unwrap_or_else(|_| "an unknown time".to_owned())
}

/// `2d3h`, `7h59m`, `12m`, `45s`; a past span reads `5m ago`.
fn span(secs: i64) -> String {
    let (past, secs) = (secs < 0, secs.unsigned_abs());
    let text = match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    };
    if past { format!("{text} ago") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_briefly() {
        assert_eq!(span(45), "45s");
        assert_eq!(span(12 * 60 + 5), "12m");
        assert_eq!(span(7 * 3600 + 59 * 60), "7h59m");
        assert_eq!(span(2 * 86_400 + 3 * 3600), "2d3h");
        assert_eq!(span(-300), "5m ago");
    }

    #[test]
    fn a_password_in_an_endpoint_is_not_shown() {
        assert_eq!(redact_userinfo("https://u:pw@proxy:8443/x@y"), "https://***@proxy:8443/x@y");
        assert_eq!(redact_userinfo("http://127.0.0.1:9/"), "http://127.0.0.1:9/");
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }

    #[test]
    fn the_first_problem_sets_the_exit_code() {
        let mut report = Report::default();
        report.ok("fine".to_owned());
        report.warn("odd".to_owned());
        assert_eq!(report.exit_code(), 0);
        assert!(report.render().ends_with("all well\n"));
        report.problem(3, "token".to_owned());
        report.problem(4, "portal".to_owned());
        assert_eq!(report.exit_code(), 3);
        assert!(report.render().contains("✗ token\n"));
    }
}
