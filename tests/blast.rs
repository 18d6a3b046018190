//! A small blast radius: canaries that stop a run before it touches the other accounts,
//! and failure limits that stop starting accounts.

mod common;

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{PortalOptions, generated_accounts};

/// Prints `ran`, then fails in the accounts whose name matches `pattern`.
fn fail_in(pattern: &str) -> String {
    format!("echo ran; case \"$FANOUT_ACCOUNT_NAME\" in {pattern}) exit 3;; esac")
}

#[test]
fn a_failed_canary_stops_the_run_before_any_other_account_is_touched() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(24), ..PortalOptions::default() });
    let script = fail_in("team000-dev");
    let output =
        env.fanout().args(["--role", "ReadOnly", "--canary", "2", "--", "sh", "-c", &script]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout_of(&output).lines().count(), 2, "only the canaries ran");
    assert_eq!(env.portal.stats().get_role_credentials, 2, "no credentials for any other account");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("the canary failed: 1 of 2 canary accounts failed"), "{stderr}");
    assert!(stderr.contains("22 not started") && stderr.contains("  not started  "), "{stderr}");
}

#[test]
fn canaries_that_pass_let_the_run_go_on() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(24), ..PortalOptions::default() });
    let output = env.fanout().args(["--role", "ReadOnly", "--canary", "3", "--", "echo", "ran"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output).lines().count(), 22, "every account with the role");
}

#[test]
fn named_canaries_run_first_wherever_the_portal_lists_them() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(24), ..PortalOptions::default() });
    let script = fail_in("team003-sandbox");
    let args = ["--role", "ReadOnly", "--canary-accounts", "team003-sandbox,100000000000", "--", "sh", "-c", &script];
    let output = env.fanout().args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let mut ran: Vec<String> = stdout_of(&output).lines().map(str::to_owned).collect();
    ran.sort();
    assert_eq!(ran, ["100000000000|ran", "100000023331|ran"]);
    assert_eq!(env.portal.stats().get_role_credentials, 2);

    let none = env.fanout().args(["--role", "ReadOnly", "--canary-accounts", "nope", "--", "true"]).output().unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(stdout_of(&none), "");
    assert!(stderr_of(&none).contains("none of the --canary-accounts"), "{}", stderr_of(&none));
}

#[test]
fn max_failures_stops_starting_accounts() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(60), ..PortalOptions::default() });
    let script = fail_in("*");
    let args = ["--role", "ReadOnly,AdministratorAccess", "--max-failures", "5", "-j", "2", "--", "sh", "-c", &script];
    let output = env.fanout().args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let ran = stdout_of(&output).lines().count();
    assert!((5..=7).contains(&ran), "{ran} commands ran");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("halted: 5 accounts failed, the limit is 5 (--max-failures)"), "{stderr}");
    assert!(stderr.contains(&format!("{} not started", 60 - ran)), "{stderr}");
}

#[test]
fn fail_fast_and_percentages() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(40), ..PortalOptions::default() });
    let script = fail_in("*-dev");
    let args =
        ["--role", "ReadOnly", "--fail-fast", "-j", "1", "--prefix", "{account_name}", "--", "sh", "-c", &script];
    let fast = env.fanout().args(args).output().unwrap();
    assert_eq!(fast.status.code(), Some(1));
    let stdout = stdout_of(&fast);
    assert_eq!(stdout.lines().filter(|line| line.contains("-dev|")).count(), 1, "{stdout}");
    assert!(stdout.lines().count() < 36, "{stdout}");
    assert!(stderr_of(&fast).contains("the limit is 1"), "{}", stderr_of(&fast));

    // 6 of 36 accounts with ReadOnly are -dev: 20% is never reached, 10% is.
    let under = env.fanout().args(["--role", "ReadOnly", "--max-failures", "20%", "--", "sh", "-c", &script]).output();
    let under = under.unwrap();
    assert!(!stderr_of(&under).contains("halted"), "{}", stderr_of(&under));
    assert_eq!(stdout_of(&under).lines().count(), 36);
    let bad = env.fanout().args(["--role", "ReadOnly", "--max-failures", "0", "--", "true"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
