//! Several logins (`--sso-session corp --sso-session lab`): two fake portals, each an IAM
//! Identity Center instance with its own token, reached through its own profile's
//! `[services]` endpoint. The union runs, an account both reach runs once through the
//! first login given, and results, the summary and `fanout accounts` name the login.

mod common;

use std::time::Duration;

use common::{TestEnv, stderr_of, stdout_of, valid_records};
use fake_portal::home::HomeOptions;
use fake_portal::{Account, FakePortal, PortalOptions};

const CORP_ONLY: &str = "111111111111";
const SHARED: &str = "333333333333";
const LAB_ONLY: &str = "444444444444";

/// A HOME logged in to two instances: `corp` (the `TestEnv`'s portal) and `lab` (a second
/// portal), each accepting only its own token.
struct TwoLogins {
    env: TestEnv,
    lab: FakePortal,
}

impl TwoLogins {
    fn new() -> Self {
        let corp_options = PortalOptions {
            accounts: vec![Account::new(CORP_ONLY, "corp-prod", &["ReadOnly"]), shared()],
            tokens: vec!["corp-token".to_owned()],
            ..PortalOptions::default()
        };
        let home = HomeOptions { token: "corp-token".to_owned(), ..HomeOptions::default() };
        let env = TestEnv::with_home(corp_options, &home);
        let lab = FakePortal::start(PortalOptions {
            accounts: vec![shared(), Account::new(LAB_ONLY, "lab-sandbox", &["ReadOnly"])],
            tokens: vec!["lab-token".to_owned()],
            ..PortalOptions::default()
        });
        env.write_config(&config(&env.portal.url(), &lab.url()));
        env.write_token("lab", "lab-token", Duration::from_hours(8));
        TwoLogins { env, lab }
    }

    /// fanout with no endpoint variable: each login's portal comes from its profile.
    fn fanout(&self) -> assert_cmd::Command {
        self.env.bare_fanout()
    }
}

fn shared() -> Account {
    Account::new(SHARED, "shared-network", &["ReadOnly"])
}

/// Two sessions, and for each a profile (as `aws configure sso` writes one) naming a
/// `[services]` section that points `sso` at that session's portal.
fn config(corp_url: &str, lab_url: &str) -> String {
    format!(
        "[default]\nregion = eu-west-1\n\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n\n\
         [sso-session lab]\nsso_start_url = https://lab.awsapps.com/start\nsso_region = eu-central-1\n\n\
         [profile corp-admin]\nsso_session = corp\nregion = eu-west-1\nservices = corp-portal\n\n\
         [profile lab-admin]\nsso_session = lab\nregion = eu-west-1\nservices = lab-portal\n\n\
         [services corp-portal]\nsso =\n  endpoint_url = {corp_url}\n\n\
         [services lab-portal]\nsso =\n  endpoint_url = {lab_url}\n"
    )
}

/// `(account_id, login)` of every `result` record, sorted.
fn logins_of(records: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut logins: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["type"] == "result")
        .map(|r| (r["account_id"].as_str().unwrap().to_owned(), r["login"].as_str().unwrap().to_owned()))
        .collect();
    logins.sort();
    logins
}

fn pair(account: &str, login: &str) -> (String, String) {
    (account.to_owned(), login.to_owned())
}

#[test]
fn the_union_runs_and_a_shared_account_runs_once_through_the_first_login() {
    let two = TwoLogins::new();
    let output = two
        .fanout()
        .args(["--sso-session", "corp", "--sso-session", "lab", "--role", "ReadOnly", "--output", "json"])
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    assert_eq!(logins_of(&records), [pair(CORP_ONLY, "corp"), pair(SHARED, "corp"), pair(LAB_ONLY, "lab")]);
    let stderr = stderr_of(&output);
    assert!(stderr.contains("  accounts: 2 via corp, 1 via lab; 1 reachable through both ran via corp\n"), "{stderr}");
    // Each portal was asked for the credentials of the accounts that ran through it, and
    // no other's: the shared account's came from corp alone.
    assert_eq!(two.env.portal.stats().get_role_credentials, 2);
    assert_eq!(two.lab.stats().get_role_credentials, 1);
    assert_eq!(two.env.portal.stats().list_accounts, 1);
    assert_eq!(two.lab.stats().list_accounts, 1);
}

#[test]
fn the_order_given_decides_and_commas_separate() {
    let two = TwoLogins::new();
    let output = two
        .fanout()
        .args(["--sso-session", "lab,corp", "--role", "ReadOnly", "--output", "json", "--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    assert_eq!(logins_of(&records), [pair(CORP_ONLY, "corp"), pair(SHARED, "lab"), pair(LAB_ONLY, "lab")]);
    assert!(stderr_of(&output).contains("accounts: 2 via lab, 1 via corp; 1 reachable through both ran via lab"));
    assert_eq!(two.env.portal.stats().get_role_credentials, 1);
    assert_eq!(two.lab.stats().get_role_credentials, 2);
}

#[test]
fn each_child_gets_its_own_accounts_credentials_through_either_login() {
    let two = TwoLogins::new();
    let output = two
        .fanout()
        .env("FANOUT_SSO_SESSION", "corp,lab")
        .args(["--role", "ReadOnly", "--", "sh", "-c", "echo $AWS_ACCESS_KEY_ID"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    for id in [CORP_ONLY, SHARED, LAB_ONLY] {
        assert!(stdout.contains(&format!("{id}|ASIA{id}\n")), "{stdout}");
    }
}

#[test]
fn selection_applies_across_the_union() {
    let two = TwoLogins::new();
    let output = two
        .fanout()
        .args(["--sso-session", "corp", "--sso-session", "lab", "--role", "ReadOnly", "--output", "json"])
        .args(["--accounts", &format!("{LAB_ONLY},shared-network"), "--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    assert_eq!(logins_of(&records), [pair(SHARED, "corp"), pair(LAB_ONLY, "lab")]);
    assert!(stderr_of(&output).contains("accounts: 1 via corp, 1 via lab; 1 reachable through both ran via corp"));
}

#[test]
fn accounts_lists_the_union_with_the_login() {
    let two = TwoLogins::new();
    let output = two.fanout().env("FANOUT_SSO_SESSION", "corp,lab").arg("accounts").output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["ACCOUNT_ID", "NAME", "EMAIL", "ROLES", "LOGIN"]);
    let ids_and_logins: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[0], r[4])).collect();
    assert_eq!(ids_and_logins, [(CORP_ONLY, "corp"), (SHARED, "corp"), (LAB_ONLY, "lab")]);

    let output = two.fanout().args(["--sso-session", "lab,corp", "accounts", "--output", "json"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let accounts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let logins: Vec<&str> = accounts.as_array().unwrap().iter().map(|a| a["login"].as_str().unwrap()).collect();
    assert_eq!(logins, ["corp", "lab", "lab"]);
}

#[test]
fn one_logins_missing_token_stops_the_run_before_any_portal_call() {
    let two = TwoLogins::new();
    std::fs::remove_file(fake_portal::home::token_cache_path(two.env.home(), "lab")).unwrap();
    let output = two
        .fanout()
        .args(["--sso-session", "corp", "--sso-session", "lab", "--role", "ReadOnly", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("aws sso login --sso-session lab"), "{stderr}");
    assert!(!stderr.contains("--sso-session corp"), "only the missing login is named: {stderr}");
    assert_eq!(two.env.portal.stats().served(), 0, "nothing ran through corp either");
    assert_eq!(two.lab.stats().served(), 0);
}

#[test]
fn one_logins_expired_token_names_that_login() {
    let two = TwoLogins::new();
    let expired = std::time::SystemTime::now() - Duration::from_hours(1);
    fake_portal::home::write_token(two.env.home(), "corp", "corp-token", expired).unwrap();
    let output = two.fanout().env("FANOUT_SSO_SESSION", "corp,lab").arg("accounts").output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("run: aws sso login --sso-session corp"), "{}", stderr_of(&output));
    assert_eq!(two.lab.stats().served(), 0);
}

#[test]
fn a_profile_or_a_saved_plan_with_several_logins_is_refused() {
    let two = TwoLogins::new();
    let sessions = ["--sso-session", "corp", "--sso-session", "lab", "--role", "ReadOnly"];
    let output = two.fanout().env("AWS_PROFILE", "corp-admin").args(sessions).args(["--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("AWS_PROFILE"), "{}", stderr_of(&output));
    let plan = two.env.home().join("plan.json");
    let output = two
        .fanout()
        .args(sessions)
        .args(["--dry-run", "--save-plan", plan.to_str().unwrap(), "--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("--save-plan records one login"), "{}", stderr_of(&output));
    assert!(!plan.exists());
    assert_eq!(two.env.portal.stats().served() + two.lab.stats().served(), 0);
}

#[test]
fn one_session_is_unchanged_but_for_the_login_field() {
    let two = TwoLogins::new();
    // The same session twice is one login.
    let output = two
        .env
        .fanout()
        .args(["--sso-session", "corp", "--sso-session", "corp", "--role", "ReadOnly", "--output", "json"])
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    assert_eq!(logins_of(&records), [pair(CORP_ONLY, "corp"), pair(SHARED, "corp")]);
    assert!(!stderr_of(&output).contains("accounts:"), "{}", stderr_of(&output));
    assert_eq!(two.lab.stats().served(), 0);

    let output = two.env.fanout().args(["--sso-session", "corp", "accounts"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let header: Vec<String> =
        stdout_of(&output).lines().next().unwrap().split_whitespace().map(str::to_owned).collect();
    assert_eq!(header, ["ACCOUNT_ID", "NAME", "EMAIL", "ROLES"]);
}

#[test]
fn each_login_has_its_own_inventory_cache() {
    let two = TwoLogins::new();
    let run = |two: &TwoLogins| {
        let output = two
            .fanout()
            .args(["--sso-session", "corp,lab", "--role", "ReadOnly", "--dry-run", "--", "true"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        stderr_of(&output)
    };
    let first = run(&two);
    assert!(first.contains("fanout: inventory of corp listed from the portal\n"), "{first}");
    assert!(first.contains("fanout: inventory of lab listed from the portal\n"), "{first}");
    let roles_asked = (two.env.portal.stats().list_account_roles, two.lab.stats().list_account_roles);
    let second = run(&two);
    // The accounts are always the portals'; the roles come from each login's own cache.
    for login in ["corp", "lab"] {
        let line =
            format!("fanout: accounts of {login} listed from the portal, roles known from the inventory cache (");
        assert!(second.contains(&line), "{second}");
    }
    assert!(second.contains("accounts: 2 via corp, 1 via lab; 1 reachable through both ran via corp"), "{second}");
    assert_eq!(two.env.portal.stats().list_accounts, 2);
    assert_eq!(two.lab.stats().list_accounts, 2);
    let roles_asked_again = (two.env.portal.stats().list_account_roles, two.lab.stats().list_account_roles);
    assert_eq!(roles_asked_again, roles_asked, "no login's roles were asked again");
    let inventories = std::fs::read_dir(two.env.home().join(".cache/fanout"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().file_name().to_string_lossy().starts_with("inventory-"))
        .count();
    assert_eq!(inventories, 2, "an inventory file a login");
}

#[test]
fn a_token_the_portal_rejects_names_its_login() {
    let two = TwoLogins::new();
    two.env.write_token("lab", "revoked-token", Duration::from_hours(8));
    // lab first: rejected before any account was selected, an error like one login's.
    let output = two.fanout().args(["--sso-session", "lab,corp", "--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("run: aws sso login --sso-session lab"), "{}", stderr_of(&output));
    assert_eq!(two.env.portal.stats().served(), 0, "corp is not listed after lab failed");
    // lab second: corp's accounts were already under way; no lab account starts, and
    // the summary names lab's fix.
    let output = two.fanout().args(["--sso-session", "corp,lab", "--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("the portal rejected the SSO token mid-run; run: aws sso login --sso-session lab"),
        "{stderr}"
    );
    assert!(!stderr.contains("--sso-session corp"), "{stderr}");
    assert_eq!(two.lab.stats().get_role_credentials, 0);
}

#[test]
fn the_config_file_can_name_several_sessions_and_doctor_checks_each() {
    let two = TwoLogins::new();
    let file = two.env.home().join("fanout.toml");
    std::fs::write(&file, "sso-session = \"corp,lab\"\n").unwrap();
    let output = two.fanout().env("FANOUT_CONFIG", &file).arg("accounts").output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stdout_of(&output).lines().next().unwrap().ends_with("LOGIN"), "{}", stdout_of(&output));

    let output = two.fanout().env("FANOUT_CONFIG", &file).arg("doctor").output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("sso-session corp: chosen by --sso-session"), "{stdout}");
    assert!(stdout.contains("sso-session lab: chosen by --sso-session"), "{stdout}");
    assert_eq!(two.env.portal.stats().list_accounts, 2, "one listing for accounts, one call for doctor");
    assert_eq!(two.lab.stats().list_accounts, 2);
}

#[test]
fn resume_across_logins_runs_what_was_not_done_through_the_same_logins() {
    let two = TwoLogins::new();
    let log = two.env.home().join("run.log");
    let log_arg = log.to_str().unwrap();
    // One canary (corp's first account) fails: the rest never start.
    let halted = two
        .fanout()
        .args(["--sso-session", "corp,lab", "--role", "ReadOnly", "--canary", "1", "--joblog", log_arg])
        .args(["--", "false"])
        .output()
        .unwrap();
    assert_eq!(halted.status.code(), Some(1), "{}", stderr_of(&halted));
    let resumed = two
        .fanout()
        .args(["--sso-session", "corp,lab", "--role", "ReadOnly", "--resume", log_arg, "--output", "json"])
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    let records = valid_records(&resumed.stdout);
    // The canary (corp's first account) ran, so it is done; the others run, the shared
    // one through corp again.
    assert_eq!(logins_of(&records), [pair(SHARED, "corp"), pair(LAB_ONLY, "lab")]);
}
