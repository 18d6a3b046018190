//! `fanout doctor`: one screen on the login, each problem with its fix, the exit code of
//! the first problem, and never a secret.

mod common;

use std::time::{Duration, SystemTime};

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::home::{rfc3339, token_cache_path, write_token};
use fake_portal::{DEFAULT_TOKEN, PortalOptions};

/// Both streams, for checks that a secret appears in neither.
fn all_output(output: &std::process::Output) -> String {
    format!("{}{}", stdout_of(output), stderr_of(output))
}

/// The line of `text` that starts with `start`.
fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line {start:?} in:\n{text}"))
}

#[test]
fn all_well_exits_0_and_shows_every_section() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env.fanout().arg("doctor").output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", stderr_of(&output));
    assert!(line(&stdout, "✓ AWS config: ").contains(&env.config_path().display().to_string()), "{stdout}");
    assert!(line(&stdout, "✓ sso-session corp: ").contains("the only sso-session in the file"), "{stdout}");
    let token = line(&stdout, "✓ token: expires at ");
    assert!(token.contains("(in 7h59m)") || token.contains("(in 8h0m)"), "{token}");
    assert!(line(&stdout, "    refresh: ").contains("no refreshToken"), "{stdout}");
    let endpoint = line(&stdout, "✓ endpoint: ");
    assert!(endpoint.contains(env.portal.url().trim_end_matches('/')) && endpoint.contains("AWS_ENDPOINT_URL_SSO"));
    assert!(line(&stdout, "✓ portal: answered ListAccounts in ").ends_with(" ms"), "{stdout}");
    line(&stdout, "✓ clock: within ");
    line(&stdout, "✓ inventory cache: none for this login yet");
    line(&stdout, "✓ credential variables: none");
    assert!(stdout.ends_with("all well\n"), "{stdout}");
    assert_eq!(env.portal.stats().list_accounts, 1);
    assert!(!all_output(&output).contains(DEFAULT_TOKEN), "the token was printed");
}

#[test]
fn an_expired_token_exits_3_with_its_fix_on_the_line() {
    let env = TestEnv::new(PortalOptions::default());
    write_token(env.home(), "corp", DEFAULT_TOKEN, SystemTime::now() - Duration::from_hours(1)).unwrap();
    let output = env.fanout().arg("doctor").output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    let token = line(&stdout, "✗ token: ");
    assert!(token.contains("expired at ") && token.ends_with("; run: aws sso login --sso-session corp"), "{token}");
    line(&stdout, "    portal: not checked");
    assert_eq!(env.portal.stats().list_accounts, 0);
    assert!(stdout.ends_with("1 problem found; exit 3\n"), "{stdout}");
}

#[test]
fn an_unreachable_portal_exits_4() {
    let env = TestEnv::new(PortalOptions::default());
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let output = env.bare_fanout().arg("doctor").env("AWS_ENDPOINT_URL_SSO", "http://127.0.0.1:1").output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(4), "{stdout}{}", stderr_of(&output));
    let portal = line(&stdout, "✗ portal: http://127.0.0.1:1 did not answer: ");
    assert!(portal.contains("; fix: check the network"), "{portal}");
    line(&stdout, "✓ token: ");
}

#[test]
fn an_inherited_secret_key_is_named_as_stripped_but_never_shown() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env
        .fanout()
        .arg("doctor")
        .env("AWS_SECRET_ACCESS_KEY", "inherited-secret-value")
        .env("AWS_ACCESS_KEY_ID", "AKIAINHERITED")
        .output()
        .unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let vars = line(&stdout, "✓ credential variables: ");
    assert!(vars.contains("AWS_SECRET_ACCESS_KEY") && vars.contains("AWS_ACCESS_KEY_ID"), "{vars}");
    assert!(vars.contains("stripped from every command"), "{vars}");
    let everything = all_output(&output);
    assert!(!everything.contains("inherited-secret-value") && !everything.contains("AKIAINHERITED"), "{everything}");
}

#[test]
fn a_possible_refresh_is_reported_without_the_refresh_token() {
    let env = TestEnv::new(PortalOptions::default());
    let body = serde_json::json!({
        "accessToken": DEFAULT_TOKEN,
        "expiresAt": rfc3339(SystemTime::now() + Duration::from_hours(1)),
        "refreshToken": "refresh-secret-value",
        "clientId": "client-id",
        "clientSecret": "client-secret-value",
        "registrationExpiresAt": rfc3339(SystemTime::now() + Duration::from_hours(24 * 30)),
    });
    std::fs::write(token_cache_path(env.home(), "corp"), body.to_string()).unwrap();
    let output = env.fanout().arg("doctor").output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(line(&stdout, "    refresh: possible").contains("registration valid until"), "{stdout}");
    let everything = all_output(&output);
    for secret in ["refresh-secret-value", "client-secret-value", DEFAULT_TOKEN] {
        assert!(!everything.contains(secret), "{secret} was printed:\n{everything}");
    }
}

#[test]
fn several_sessions_and_none_chosen_exit_2_with_the_fix() {
    let env = TestEnv::new(PortalOptions::default());
    env.write_config(
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n\n\
         [sso-session other]\nsso_start_url = https://other.awsapps.com/start\nsso_region = us-east-1\n",
    );
    let output = env.fanout().arg("doctor").output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(line(&stdout, "✗ sso-session: ").contains("fanout --sso-session corp"), "{stdout}");
    line(&stdout, "✓ credential variables: ");
}

#[test]
fn a_profiles_services_endpoint_is_named_and_a_shadowed_one_said_unused() {
    let env = TestEnv::new(PortalOptions::default());
    env.write_config(&format!(
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n\n\
         [profile work]\nsso_session = corp\nservices = local\nendpoint_url = http://user:pw@127.0.0.1:1\n\n\
         [services local]\nsso =\n  endpoint_url = {}\n",
        env.portal.url()
    ));
    let output = env.bare_fanout().args(["--profile", "work", "doctor"]).output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", stderr_of(&output));
    assert!(line(&stdout, "✓ sso-session corp: ").contains("the sso_session of profile work"), "{stdout}");
    assert!(line(&stdout, "✓ endpoint: ").contains("(from [services local] sso endpoint_url (profile work))"));
    let shadowed = line(&stdout, "    endpoint_url of profile work = ");
    assert!(shadowed.contains("http://***@127.0.0.1:1") && shadowed.contains("not used"), "{shadowed}");
    assert!(!stdout.contains("pw@"), "a password in an endpoint was printed:\n{stdout}");
}
