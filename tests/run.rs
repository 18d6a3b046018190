//! Running the command: selection, roles, credentials per child, the environment,
//! placeholders, failures, dry runs, the summary and the exit codes.

mod common;

use common::{TestEnv, sorted_lines, stderr_of, stdout_of};
use fake_portal::{Account, PortalOptions, credentials_for, generated_accounts};

/// Prints what the child received, one variable a line.
const ECHO_ENV: &str = "echo id=$FANOUT_ACCOUNT_ID name=$FANOUT_ACCOUNT_NAME role=$FANOUT_ROLE; \
     echo key=$AWS_ACCESS_KEY_ID; echo secret=$AWS_SECRET_ACCESS_KEY; echo session=$AWS_SESSION_TOKEN; \
     echo profile=[$AWS_PROFILE]; echo expiry=$AWS_CREDENTIAL_EXPIRATION";

#[test]
fn every_child_sees_its_own_accounts_keys_and_no_others() {
    let accounts = generated_accounts(60);
    let env = TestEnv::new(PortalOptions { accounts: accounts.clone(), ..PortalOptions::default() });
    let output = env
        .fanout()
        .env("AWS_PROFILE", "leaky")
        .env("AWS_ACCESS_KEY_ID", "AKIAINHERITED")
        .env("AWS_SECRET_ACCESS_KEY", "inherited-secret")
        .args([
            "--sso-session",
            "corp",
            "--role",
            "ReadOnly,AdministratorAccess",
            "-j",
            "7",
            "--",
            "sh",
            "-c",
            ECHO_ENV,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(!stdout.contains("INHERITED") && !stdout.contains("inherited"), "inherited credentials leaked");
    for account in &accounts {
        let role = if account.roles.contains(&"ReadOnly".to_owned()) { "ReadOnly" } else { "AdministratorAccess" };
        let (key, secret, session) = credentials_for(&account.id, role);
        let mine: Vec<&str> =
            stdout.lines().filter_map(|line| line.strip_prefix(&format!("{}|", account.id))).collect();
        assert_eq!(mine.len(), 6, "{}: {mine:?}", account.id);
        assert_eq!(mine[0], format!("id={} name={} role={role}", account.id, account.name));
        assert_eq!(mine[1], format!("key={key}"));
        assert_eq!(mine[2], format!("secret={secret}"));
        assert_eq!(mine[3], format!("session={session}"));
        assert_eq!(mine[4], "profile=[]");
        assert!(mine[5].starts_with("expiry=20") && mine[5].ends_with('Z'), "{}", mine[5]);
    }
}

#[test]
fn placeholders_fill_the_arguments_and_the_prefix() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--region", "eu-central-1", "--match", "team000-dev"])
        .args(["--prefix", "{account_name}", "--", "echo", "{account_id}:{role}:{region}", "{{literal}}"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "team000-dev|100000001111:ReadOnly:eu-central-1 {literal}\n");
}

#[test]
fn the_command_runs_without_a_shell() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--match", "team000-dev", "--", "echo", "$HOME; rm -rf /"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&output), "100000001111|$HOME; rm -rf /\n");
}

#[test]
fn match_exclude_and_account_lists_select() {
    let env = TestEnv::new(PortalOptions::default());
    let ids = |args: &[&str]| {
        let output = env.fanout().args(args).args(["--dry-run", "--", "true"]).output().unwrap();
        let lines = sorted_lines(&stdout_of(&output));
        lines.iter().filter(|l| !l.starts_with("ACCOUNT_ID")).map(|l| l[..12].to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&["--role", "ReadOnly", "--match", "*-DEV"]), ["100000001111", "100000007777"]);
    assert_eq!(ids(&["--role", "ReadOnly", "--match", "team001*", "--exclude", "*prod"]).len(), 4);
    assert_eq!(
        ids(&["--role", "ReadOnly", "--accounts", "100000002222,team001-dev"]),
        ["100000002222", "100000007777"]
    );
    let list = env.home().join("accounts.txt");
    std::fs::write(&list, "# audit scope\n100000003333\nteam000-audit # by name\n\n").unwrap();
    assert_eq!(
        ids(&["--role", "ReadOnly", "--accounts-file", list.to_str().unwrap()]),
        ["100000003333", "100000004444"]
    );
}

#[test]
fn an_unknown_listed_account_is_warned_about() {
    let env = TestEnv::new(PortalOptions::default());
    let output =
        env.fanout().args(["--role", "ReadOnly", "--accounts", "100000001111,ghost", "--", "true"]).output().unwrap();
    assert!(output.status.success());
    assert!(
        stderr_of(&output).contains("warning: this login reaches no account named ghost"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn accounts_without_the_role_are_skipped_and_counted() {
    let accounts = vec![
        Account::new("111111111111", "has-both", &["ReadOnly", "ViewOnly"]),
        Account::new("222222222222", "view-only", &["ViewOnly"]),
        Account::new("333333333333", "admin-only", &["Admin"]),
    ];
    let env = TestEnv::new(PortalOptions { accounts, ..PortalOptions::default() });
    let output = env
        .fanout()
        .args(["--role", "ReadOnly,ViewOnly", "-v", "--", "sh", "-c", "echo $FANOUT_ROLE"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(sorted_lines(&stdout_of(&output)), ["111111111111|ReadOnly", "222222222222|ViewOnly"]);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("3 accounts selected: 2 succeeded, 0 failed, 1 skipped (no role ReadOnly or ViewOnly)"),
        "{stderr}"
    );
    assert!(stderr.contains("skipped      333333333333 (admin-only)"), "{stderr}");
}

#[test]
fn a_failing_command_fails_its_account_only_with_exit_1() {
    let env = TestEnv::new(PortalOptions::default());
    let script = r#"if [ "$FANOUT_ACCOUNT_NAME" = team000-dev ]; then exit 3; fi; echo ok"#;
    let output = env.fanout().args(["--role", "ReadOnly", "--", "sh", "-c", script]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout_of(&output).lines().count(), 10);
    let stderr = stderr_of(&output);
    assert!(stderr.contains("1 failed"), "{stderr}");
    assert!(stderr.contains("failed       100000001111 (team000-dev) [exit]: exit code 3"), "{stderr}");
}

#[test]
fn a_500_on_one_account_fails_that_account_only() {
    let options = PortalOptions {
        failing_credentials: ["100000002222".to_owned()].into(),
        flaky_credentials: [("100000003333".to_owned(), 2)].into(),
        ..PortalOptions::default()
    };
    let env = TestEnv::new(options);
    let output = env.fanout().args(["--role", "ReadOnly", "--", "echo", "ran"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = stdout_of(&output);
    assert_eq!(stdout.lines().count(), 10, "{stdout}");
    assert!(!stdout.contains("100000002222"));
    assert!(stdout.contains("100000003333|ran"), "a transient 500 is retried");
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(
            "failed       100000002222 (team000-staging) [no-credentials]: GetRoleCredentials failed: InternalServerException (HTTP 500)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_missing_program_is_a_usage_error_before_any_credentials() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env.fanout().args(["--role", "ReadOnly", "--", "/no/such/program"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).starts_with("error: command not found: /no/such/program"), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().served(), 0);
}

#[test]
fn a_command_that_cannot_start_is_a_failure_not_a_crash() {
    let env = TestEnv::new(PortalOptions::default());
    // The program depends on the account, so only its run can find it missing.
    let args = ["--role", "ReadOnly", "--match", "team000-dev", "--", "/no/{account_id}"];
    let output = env.fanout().args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("cannot run /no/100000001111: No such file"), "{}", stderr_of(&output));
}

#[test]
fn nothing_selected_is_exit_5() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env.fanout().args(["--role", "ReadOnly", "--match", "nothing-*", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(5));
    let output = env.fanout().args(["--role", "NoSuchRole", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(5));
}

#[test]
fn a_dry_run_fetches_no_credentials_and_runs_nothing() {
    let env = TestEnv::new(PortalOptions::default());
    let marker = env.home().join("ran");
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--match", "*-dev", "--dry-run", "--", "touch"])
        .arg(&marker)
        .args(["./audit.sh", "{account_id}", "two words"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().get_role_credentials, 0);
    assert!(!marker.exists());
    let stdout = stdout_of(&output);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["ACCOUNT_ID", "NAME", "ROLE", "COMMAND"]);
    let expected =
        format!("100000001111  team000-dev  ReadOnly  touch {} ./audit.sh 100000001111 'two words'", marker.display());
    assert_eq!(lines[1], expected);
    assert_eq!(lines.len(), 3);
    assert!(stderr_of(&output).contains("dry run: 2 accounts selected: 2 would run"), "{}", stderr_of(&output));
}

#[test]
fn the_summary_goes_to_stderr_and_stdout_holds_only_child_lines() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env.fanout().args(["--role", "ReadOnly", "--", "echo", "hi"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout_of(&output).lines().all(|l| l.ends_with("|hi")));
    assert!(
        stderr_of(&output)
            .starts_with("fanout: 12 accounts selected: 11 succeeded, 0 failed, 1 skipped (no role ReadOnly) in ")
    );
}

#[test]
fn help_lists_the_exit_codes() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env.fanout().arg("--help").output().unwrap();
    let help = stdout_of(&output);
    for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "130 "] {
        assert!(help.contains(&format!("\n  {code}")), "{code} missing from --help");
    }
}

#[test]
fn a_rate_limited_portal_slows_fanout_down_without_failing_an_account() {
    // 80 accounts (~85 calls: a dry run lists every account's roles, and no command
    // slows it down) against a portal serving 30 requests a second, with fanout told to
    // start far above that.
    let options =
        PortalOptions { accounts: generated_accounts(80), rate_limit: Some(30.0), ..PortalOptions::default() };
    let env = TestEnv::new(options);
    let args = ["--role", "ReadOnly,AdministratorAccess", "--portal-rps", "300", "--dry-run", "-v", "--", "true"];
    let output = env.fanout().args(args).output().unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("80 accounts selected: 80 would run, 0 failed"), "{stderr}");
    assert!(stderr.contains("portal throttled: slowing down"), "the portal never throttled: {stderr}");
    assert_eq!(env.portal.stats().list_account_roles, 80);
}

#[test]
fn the_shards_of_a_run_together_reach_every_account_once() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(40), ..PortalOptions::default() });
    let plan = |shard: Option<&str>| {
        let mut command = env.fanout();
        if let Some(shard) = shard {
            command.args(["--shard", shard]);
        }
        let output =
            command.args(["--role", "ReadOnly,AdministratorAccess", "--dry-run", "--", "true"]).output().unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        stdout_of(&output).lines().skip(1).map(|l| l[..12].to_owned()).collect::<Vec<_>>()
    };
    let whole = sorted_lines(&plan(None).join("\n"));
    let mut union: Vec<String> = (1..=3).flat_map(|i| plan(Some(&format!("{i}/3")))).collect();
    union.sort();
    assert_eq!(whole.len(), 40);
    assert_eq!(union, whole, "shards overlap or miss accounts");
}

#[test]
fn a_real_run_asks_for_credentials_without_listing_roles() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env
        .fanout()
        .args(["--role", "ReadOnly,AdministratorAccess", "--", "sh", "-c", "echo $FANOUT_ROLE"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stats = env.portal.stats();
    assert_eq!(stats.list_account_roles, 0);
    // 11 accounts have ReadOnly; the twelfth answers 403 for it, then has AdministratorAccess.
    assert_eq!(stats.get_role_credentials, 12);
    assert!(stdout_of(&output).contains("100000009999|AdministratorAccess"));
}

#[test]
fn the_inventory_is_cached_privately_and_refresh_bypasses_it() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new(PortalOptions::default());
    let dry_run = |extra: &[&str]| {
        let output = env.fanout().args(extra).args(["--role", "ReadOnly", "--dry-run", "--", "true"]).output().unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        (stdout_of(&output), stderr_of(&output))
    };
    let (first_plan, first) = dry_run(&[]);
    assert!(first.starts_with("fanout: inventory listed from the portal\n"), "{first}");
    let calls = env.portal.stats();
    assert_eq!((calls.list_accounts, calls.list_account_roles), (1, 12));

    let (cached_plan, cached) = dry_run(&[]);
    assert!(
        cached.starts_with("fanout: accounts listed from the portal, roles known from the inventory cache ("),
        "{cached}"
    );
    assert_eq!(cached_plan, first_plan);
    let after = env.portal.stats();
    assert_eq!((after.list_accounts, after.list_account_roles), (2, 12), "a fresh cache costs one ListAccounts call");

    let cache_dir = env.home().join(".cache/fanout");
    let files: Vec<_> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("inventory-"))
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("team000-prod") && !text.contains(fake_portal::DEFAULT_TOKEN));

    let (_, refreshed) = dry_run(&["--refresh"]);
    assert!(refreshed.starts_with("fanout: inventory listed from the portal\n"), "{refreshed}");
    assert_eq!(env.portal.stats().list_accounts, 3);

    // A real run with a fresh cache spends one ListAccounts and GetRoleCredentials.
    let before = env.portal.stats();
    let output = env.fanout().args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert!(output.status.success());
    let after = env.portal.stats();
    assert_eq!((after.list_accounts, after.list_account_roles), (before.list_accounts + 1, before.list_account_roles));
    assert_eq!(after.get_role_credentials - before.get_role_credentials, 11, "the cache knows who lacks the role");
}

#[test]
fn a_zero_cache_ttl_neither_reads_nor_writes_the_cache() {
    let env = TestEnv::new(PortalOptions::default());
    for _ in 0..2 {
        let output = env.fanout().args(["--cache-ttl", "0", "accounts"]).output().unwrap();
        assert!(output.status.success());
    }
    assert_eq!(env.portal.stats().list_accounts, 2);
    assert!(!env.home().join(".cache/fanout").exists());
}

#[test]
fn no_account_waits_for_the_slowest_ones_credentials() {
    let options = PortalOptions {
        slow_credentials: [("100000000000".to_owned(), std::time::Duration::from_secs(2))].into(),
        ..PortalOptions::default()
    };
    let env = TestEnv::new(options);
    let output = env.fanout().args(["--role", "ReadOnly", "--", "echo", "done"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[10], "100000000000|done", "the slow account's command ran last: {lines:?}");
}

#[test]
fn a_role_the_account_lists_but_the_portal_refuses_is_denied_not_skipped() {
    let env = TestEnv::new(PortalOptions::default());
    assert!(env.fanout().args(["accounts"]).output().unwrap().status.success(), "the inventory is cached");
    let cache = std::fs::read_dir(env.home().join(".cache/fanout"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("inventory-"))
        .unwrap();
    let text = std::fs::read_to_string(&cache).unwrap();
    std::fs::write(&cache, text.replace(r#""roles":["AdministratorAccess","ReadOnly"]"#, r#""roles":["Ghost"]"#))
        .unwrap();
    let output = env.fanout().args(["--role", "Ghost", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("[denied]: the portal refused credentials for Ghost (HTTP 403)"), "{stderr}");
}
