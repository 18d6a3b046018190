//! Refreshing the SSO token through SSO OIDC `CreateToken`, as the AWS CLI does: at
//! start, when two fanout processes race, and mid-run after a 401.

mod common;

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::home::{HomeOptions, RefreshFields, token_cache_path, write_refreshable_token};
use fake_portal::oidc::OidcOptions;
use fake_portal::{DEFAULT_TOKEN, PortalOptions, generated_accounts};
use serde_json::Value;

/// 2026-11-24T03:00:00Z, long past.
#[expect(clippy::duration_suboptimal_units, reason = "an epoch timestamp reads best in seconds")]
const EXPIRED_AT: Duration = Duration::from_secs(1_795_489_200);
const EXPIRED_MESSAGE: &str =
    "error: SSO session \"corp\" expired at 2026-11-24T03:00:00Z; run: aws sso login --sso-session corp\n";

/// A portal with `options` and a HOME whose token for `corp` expires at `expires_at`,
/// cached with a refresh token and client registration as `aws sso login` leaves them.
fn env_with(options: PortalOptions, expires_at: SystemTime) -> TestEnv {
    let env = TestEnv::new(options);
    write_refreshable_token(env.home(), &HomeOptions::default(), expires_at, &RefreshFields::default()).unwrap();
    env
}

/// fanout with both the portal's and SSO OIDC's endpoints pointing at the fake portal.
fn fanout(env: &TestEnv) -> assert_cmd::Command {
    let mut command = env.fanout();
    command.env("AWS_ENDPOINT_URL_SSO_OIDC", env.portal.url());
    command
}

fn cache_file(env: &TestEnv) -> (Value, u32) {
    let path = token_cache_path(env.home(), "corp");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    (serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(), mode)
}

fn secrets_absent(text: &str) {
    for secret in ["fake-refresh-token", "fake-client-secret", "fake-access-token-r", DEFAULT_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn an_expired_token_is_refreshed_once_and_the_cache_keeps_every_field() {
    let env = env_with(PortalOptions::default(), UNIX_EPOCH + EXPIRED_AT);
    let (before, _) = cache_file(&env);
    let output = fanout(&env).args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    secrets_absent(&stderr_of(&output));
    assert_eq!(env.portal.stats().create_token, 1);

    let (after, mode) = cache_file(&env);
    assert_eq!(mode, 0o600);
    let mut expected = before.clone();
    expected["accessToken"] = "fake-access-token-r1".into();
    expected["refreshToken"] = "fake-refresh-token-r1".into();
    expected["expiresAt"] = after["expiresAt"].clone();
    assert_eq!(after, expected, "only the token fields change");
    let expires_at = after["expiresAt"].as_str().unwrap();
    assert_eq!(expires_at.len(), "2026-11-24T03:00:00Z".len(), "botocore's form: {expires_at}");
    assert!(expires_at.ends_with('Z') && expires_at > before["expiresAt"].as_str().unwrap());

    botocore_reads(&env, "fake-access-token-r1");
}

/// botocore's loader and token provider read the rewritten file and find the new token.
fn botocore_reads(env: &TestEnv, expected_token: &str) {
    if !std::process::Command::new("python3").args(["-c", "import botocore"]).output().is_ok_and(|o| o.status.success())
    {
        eprintln!("skipped the botocore check: python3 with botocore is not installed");
        return;
    }
    let mut config = std::fs::read_to_string(env.config_path()).unwrap();
    config.push_str("\n[profile refreshed]\nsso_session = corp\n");
    env.write_config(&config);
    let script = r#"
import os
import botocore.session
from botocore.tokens import SSOTokenProvider
from botocore.utils import JSONFileCache, SSOTokenLoader
cache = JSONFileCache(os.path.expanduser("~/.aws/sso/cache"))
loaded = SSOTokenLoader(cache=cache)("https://corp.awsapps.com/start", session_name="corp")
provided = SSOTokenProvider(botocore.session.Session(profile="refreshed")).load_token().get_frozen_token()
print(loaded["accessToken"], provided.token)
"#;
    let output = env.isolated("python3").args(["-c", script]).output().unwrap();
    assert!(output.status.success(), "botocore failed: {}", stderr_of(&output));
    assert_eq!(stdout_of(&output), format!("{expected_token} {expected_token}\n"));
}

#[test]
fn two_processes_on_the_same_expired_token_refresh_it_once() {
    // A slow CreateToken: the second process finds the lock taken and waits for it.
    let oidc = OidcOptions { latency: Duration::from_millis(400), ..OidcOptions::default() };
    let env = env_with(PortalOptions { oidc, ..PortalOptions::default() }, UNIX_EPOCH + EXPIRED_AT);
    let spawn = || {
        env.std_fanout()
            .env("AWS_ENDPOINT_URL_SSO_OIDC", env.portal.url())
            .args(["--role", "ReadOnly", "--", "true"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
    }
    assert_eq!(env.portal.stats().create_token, 1, "the second process used the first one's token");
    assert_eq!(cache_file(&env).0["refreshToken"], "fake-refresh-token-r1");
}

#[test]
fn an_expired_token_without_a_refresh_token_is_exit_3_with_the_exact_message() {
    let env = env_with(PortalOptions::default(), UNIX_EPOCH + EXPIRED_AT);
    let (mut file, _) = cache_file(&env);
    file.as_object_mut().unwrap().remove("refreshToken");
    std::fs::write(token_cache_path(env.home(), "corp"), file.to_string()).unwrap();
    let output = fanout(&env).args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(stderr_of(&output), EXPIRED_MESSAGE);
    assert_eq!((env.portal.stats().create_token, env.portal.stats().served()), (0, 0));
}

#[test]
fn a_rejected_refresh_is_exit_3_naming_the_login_command() {
    let oidc = OidcOptions { reject_refresh: true, ..OidcOptions::default() };
    let env = env_with(PortalOptions { oidc, ..PortalOptions::default() }, UNIX_EPOCH + EXPIRED_AT);
    let (before, _) = cache_file(&env);
    let output = fanout(&env).args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = stderr_of(&output);
    assert!(stderr.ends_with(EXPIRED_MESSAGE), "{stderr}");
    assert!(stderr.contains("InvalidGrantException"), "the warning says why: {stderr}");
    secrets_absent(&stderr);
    assert_eq!(cache_file(&env).0, before, "a failed refresh leaves the file alone");
    assert_eq!(env.portal.stats().served(), 0);
}

#[test]
fn a_401_mid_run_is_refreshed_once_and_the_run_completes() {
    let oidc = OidcOptions { revoke_after: Some((DEFAULT_TOKEN.to_owned(), 3)), ..OidcOptions::default() };
    let env = env_with(PortalOptions { oidc, ..PortalOptions::default() }, SystemTime::now() + Duration::from_hours(8));
    let output = fanout(&env).args(["--role", "ReadOnly", "--", "echo", "done"]).output().unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    let stats = env.portal.stats();
    assert_eq!(stats.create_token, 1, "many tasks met the 401; one refresh served them all");
    assert!(stats.unauthorized >= 1);
    assert_eq!(stdout_of(&output).lines().filter(|l| l.ends_with("done")).count(), 11);
    assert_eq!(cache_file(&env).0["accessToken"], "fake-access-token-r1");
    secrets_absent(&stderr);
}

#[test]
fn a_401_a_refresh_cannot_cure_stops_new_work_and_lets_running_children_finish() {
    let accounts = generated_accounts(12);
    // The first two accounts' credentials come at once and their commands start; the
    // others' are answered later, after the token was revoked.
    let slow = accounts.iter().skip(2).map(|a| (a.id.clone(), Duration::from_millis(700))).collect();
    let oidc = OidcOptions {
        revoke_after: Some((DEFAULT_TOKEN.to_owned(), 3)),
        reject_refresh: true,
        ..OidcOptions::default()
    };
    let options = PortalOptions { accounts, slow_credentials: slow, oidc, ..PortalOptions::default() };
    let env = env_with(options, SystemTime::now() + Duration::from_hours(8));
    let output = fanout(&env).args(["--role", "ReadOnly", "--", "sh", "-c", "sleep 1.5; echo done"]).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(stdout_of(&output).lines().filter(|l| l.ends_with("done")).count(), 2, "{stderr}");
    assert!(
        stderr.contains("fanout: the portal rejected the SSO token mid-run; run: aws sso login --sso-session corp\n"),
        "{stderr}"
    );
    assert_eq!(env.portal.stats().create_token, 0);
    secrets_absent(&stderr);
}

#[test]
fn doctor_calls_an_expired_but_refreshable_token_fine_and_changes_nothing() {
    let env = env_with(PortalOptions::default(), UNIX_EPOCH + EXPIRED_AT);
    let (before, _) = cache_file(&env);
    let output = fanout(&env).arg("doctor").output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("✓ token: expired at 2026-11-24T03:00:00Z; a run refreshes it with the cached refresh token\n"),
        "{stdout}"
    );
    assert!(stdout.contains("    refresh: possible: a refreshToken, registration valid until "), "{stdout}");
    secrets_absent(&stdout);
    assert_eq!((cache_file(&env).0, env.portal.stats().create_token), (before, 0));
}

#[test]
fn the_profiles_services_sso_oidc_endpoint_is_honoured() {
    let env = env_with(PortalOptions::default(), UNIX_EPOCH + EXPIRED_AT);
    let mut config = std::fs::read_to_string(env.config_path()).unwrap();
    let url = env.portal.url();
    let _ = write!(
        config,
        "\n[profile corp]\nsso_session = corp\nservices = local\n\n\
         [services local]\nsso =\n  endpoint_url = {url}\nsso_oidc =\n  endpoint_url = {url}\n"
    );
    env.write_config(&config);
    let output = env.bare_fanout().args(["--profile", "corp", "--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().create_token, 1);
}
