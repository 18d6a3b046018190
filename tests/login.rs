//! Finding the login and listing what it reaches: config choices, the token cache,
//! expiry, the endpoint override, pagination, and the exit codes of each failure.

mod common;

use std::time::Duration;

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{Account, PortalOptions, generated_accounts};

#[test]
fn the_only_sso_session_is_used_and_accounts_are_listed_as_a_table() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env.fanout().arg("accounts").output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["ACCOUNT_ID", "NAME", "EMAIL", "ROLES"]);
    assert_eq!(lines.len(), 13);
    assert!(lines[1].starts_with("100000000000  team000-prod  "), "{}", lines[1]);
    assert!(lines[2].ends_with("AdministratorAccess,ReadOnly"), "{}", lines[2]);
}

#[test]
fn accounts_as_json_follow_every_page() {
    // 250 accounts at 20 a page: 13 pages of ListAccounts.
    let options = PortalOptions { accounts: generated_accounts(250), page_size: 20, ..PortalOptions::default() };
    let env = TestEnv::new(options);
    let output = env.fanout().args(["accounts", "--output", "json"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let accounts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let accounts = accounts.as_array().unwrap();
    assert_eq!(accounts.len(), 250);
    assert_eq!(accounts[0]["account_id"], "100000000000");
    assert_eq!(accounts[0]["account_name"], "team000-prod");
    assert_eq!(accounts[0]["roles"], serde_json::json!(["ReadOnly"]));
    let stats = env.portal.stats();
    assert_eq!(stats.list_accounts, 13);
    assert_eq!(stats.list_account_roles, 250);
}

#[test]
fn accounts_are_asked_for_a_hundred_a_page() {
    // The portal's default page is 20; fanout asks for its maximum, 100.
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(250), ..PortalOptions::default() });
    let output = env.fanout().args(["--role", "ReadOnly", "--dry-run", "--", "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().list_accounts, 3);
}

#[test]
fn roles_are_followed_across_pages_too() {
    let roles: Vec<String> = (0..45).map(|i| format!("Role{i:02}")).collect();
    let role_refs: Vec<&str> = roles.iter().map(String::as_str).collect();
    let options = PortalOptions {
        accounts: vec![Account::new("111111111111", "many-roles", &role_refs)],
        page_size: 20,
        ..PortalOptions::default()
    };
    let env = TestEnv::new(options);
    let output = env.fanout().args(["--role", "Role44", "--dry-run", "--", "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stdout_of(&output).contains("111111111111  many-roles  Role44"), "{}", stdout_of(&output));
    assert_eq!(env.portal.stats().list_account_roles, 3);
}

#[test]
fn a_profile_names_its_session_and_its_services_endpoint() {
    let env = TestEnv::new(PortalOptions::default());
    env.write_config(&format!(
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n\n\
         [sso-session other]\nsso_start_url = https://other.awsapps.com/start\nsso_region = us-east-1\n\n\
         [profile work]\nsso_session = corp\nregion = ap-south-1\nservices = local\n\n\
         [services local]\nsso =\n  endpoint_url = {}\n",
        env.portal.url()
    ));
    // No AWS_ENDPOINT_URL_SSO: the [services] section must bring the portal.
    let output = env
        .bare_fanout()
        .args(["--profile", "work", "--role", "ReadOnly", "--match", "team000-prod", "--", "sh", "-c"])
        .arg("echo $AWS_REGION")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "100000000000|ap-south-1\n");
}

#[test]
fn aws_profile_from_the_environment_is_honoured() {
    let env = TestEnv::new(PortalOptions::default());
    let mut config = std::fs::read_to_string(env.config_path()).unwrap();
    config.push_str(
        "\n[sso-session other]\nsso_start_url = x\nsso_region = us-east-1\n\n[profile work]\nsso_session = corp\n",
    );
    env.write_config(&config);
    let output = env.fanout().env("AWS_PROFILE", "work").arg("accounts").output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
}

#[test]
fn several_sessions_and_none_chosen_is_a_usage_error_listing_them() {
    let env = TestEnv::new(PortalOptions::default());
    let mut config = std::fs::read_to_string(env.config_path()).unwrap();
    config.push_str("\n[sso-session zeta]\nsso_start_url = https://z.awsapps.com/start\nsso_region = us-east-1\n");
    env.write_config(&config);
    let output = env.fanout().arg("accounts").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr_of(&output),
        "error: the AWS config has several sso-sessions (corp, zeta); choose one with --sso-session; \
         for example: fanout --sso-session corp ...\n"
    );
    let chosen = env.fanout().args(["--sso-session", "corp", "accounts"]).output().unwrap();
    assert!(chosen.status.success(), "{}", stderr_of(&chosen));
}

#[test]
fn a_legacy_profile_uses_the_token_cached_for_its_start_url() {
    let env = TestEnv::new(PortalOptions::default());
    let start_url = "https://legacy.awsapps.com/start#/";
    env.write_config(&format!(
        "[profile old]\nsso_start_url = {start_url}\nsso_region = us-east-1\nsso_account_id = 1\nsso_role_name = R\n"
    ));
    env.write_token(start_url, fake_portal::DEFAULT_TOKEN, Duration::from_hours(1));
    let output = env.fanout().args(["--profile", "old", "accounts"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
}

#[test]
#[expect(clippy::duration_suboptimal_units, reason = "an epoch timestamp reads best in seconds")]
fn an_expired_token_names_the_time_and_the_fix_with_exit_3() {
    let env = TestEnv::with_home(
        PortalOptions::default(),
        &fake_portal::home::HomeOptions {
            // 2026-11-24T03:00:00Z
            expires_at: std::time::UNIX_EPOCH + Duration::from_secs(1_795_489_200),
            ..Default::default()
        },
    );
    let output = env.fanout().args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr_of(&output),
        "error: SSO session \"corp\" expired at 2026-11-24T03:00:00Z; run: aws sso login --sso-session corp\n"
    );
    assert_eq!(env.portal.stats().served(), 0, "an expired token is not sent");
}

#[test]
fn no_aws_config_at_all_is_exit_2_naming_the_fix_not_a_panic() {
    let env = TestEnv::new(PortalOptions::default());
    std::fs::remove_file(env.config_path()).unwrap();
    for args in [&["accounts"][..], &["--role", "ReadOnly", "--", "true"], &["--sso-session", "corp", "accounts"]] {
        let output = env.fanout().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr_of(&output));
        let stderr = stderr_of(&output);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: ") && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let output = env.fanout().arg("accounts").output().unwrap();
    assert_eq!(stderr_of(&output), "error: the AWS config has no sso-session; run `aws configure sso` to add one\n");
}

#[test]
fn a_missing_token_is_exit_3_with_the_login_command() {
    let env = TestEnv::new(PortalOptions::default());
    std::fs::remove_dir_all(env.home().join(".aws/sso")).unwrap();
    let output = env.fanout().arg("accounts").output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = stderr_of(&output);
    assert!(stderr.starts_with("error: no cached token for SSO session \"corp\""), "{stderr}");
    assert!(stderr.ends_with("; run: aws sso login --sso-session corp\n"), "{stderr}");
}

#[test]
fn a_token_the_portal_rejects_is_exit_3() {
    let env = TestEnv::new(PortalOptions::default());
    env.write_token("corp", "revoked-token", Duration::from_hours(1));
    let output = env.fanout().args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = stderr_of(&output);
    assert!(stderr.starts_with("error: the portal rejected the cached SSO token"), "{stderr}");
    assert!(stderr.ends_with("; run: aws sso login --sso-session corp\n"), "{stderr}");
}

#[test]
fn throttling_is_retried_and_never_called_a_login_problem() {
    let mut options = PortalOptions { accounts: generated_accounts(6), ..PortalOptions::default() };
    options.throttled_credentials = options.accounts.iter().map(|a| (a.id.clone(), 2)).collect();
    let env = TestEnv::new(options);
    let output = env.fanout().args(["--role", "ReadOnly", "-v", "--", "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(env.portal.stats().throttled >= 10);
    let stderr = stderr_of(&output);
    assert!(stderr.contains("12 throttled"), "{stderr}");
    assert!(!stderr.contains("rejected") && !stderr.contains("aws sso login"), "{stderr}");
}

#[test]
fn an_unreachable_portal_is_exit_4() {
    let env = TestEnv::new(PortalOptions::default());
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let output = env
        .bare_fanout()
        .env("AWS_ENDPOINT_URL_SSO", format!("http://{closed_port}"))
        .arg("accounts")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = stderr_of(&output);
    assert!(stderr.starts_with("error: ListAccounts could not reach the portal"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn bad_input_is_exit_2_with_one_line() {
    let env = TestEnv::new(PortalOptions::default());
    for (args, expected) in [
        (&["--role", "R", "--", "echo", "{acount_id}"][..], "error: unknown placeholder {acount_id}"),
        (&["--", "true"][..], "error: --role is required"),
        (&["--role", "R"][..], "error: no command given"),
        (&["--match", "[x", "accounts"][..], "error: invalid glob \"[x\""),
        (&["--sso-session", "nope", "accounts"][..], "error: no sso-session named \"nope\""),
        (&["--accounts-file", "/nonexistent", "accounts"][..], "error: cannot read --accounts-file /nonexistent"),
    ] {
        let output = env.fanout().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = stderr_of(&output);
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}
