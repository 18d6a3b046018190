//! Issue 18, point 5: coverage. With the organization's facts (`--accounts-meta` here),
//! the summary and the JSON `summary` record say how many accounts in scope the run
//! reached and name each one it could not, with why; `--require-all` fails a run that
//! missed one. c7n-org#2656 is the bug this guards against: denied accounts hidden
//! behind exit 0. Each test drives the real binary against the fake portal.

mod common;

use std::path::Path;

use common::{TestEnv, stderr_of, valid_records};
use fake_portal::{Account, PortalOptions};

/// In `Root/Prod`: one account reached, one whose command fails (still reached), one
/// without the role (named, hostile), one denied, one suspended, one the portal does
/// not list. Outside the scope: one in `Root/Dev`, and one the organization does not list.
fn portal() -> PortalOptions {
    let accounts = vec![
        Account::new("111111111111", "pay-prod", &["ReadOnly"]),
        Account::new("222222222222", "search-prod", &["ReadOnly"]),
        Account::new("333333333333", "x\n  coverage: 9 of 9 accounts in scope reached", &["Admin"]),
        Account::new("444444444444", "denied-prod", &["ReadOnly"]),
        Account::new("555555555555", "old-prod", &["ReadOnly"]),
        Account::new("777777777777", "not-in-org", &["ReadOnly"]),
        Account::new("888888888888", "pay-dev", &["ReadOnly"]),
    ];
    PortalOptions { accounts, denied_credentials: ["444444444444".to_owned()].into(), ..PortalOptions::default() }
}

const META_CSV: &str = "\
account_id,ou_path,state
111111111111,Root/Prod,
222222222222,Root/Prod,
333333333333,Root/Prod,
444444444444,Root/Prod,
555555555555,Root/Prod,SUSPENDED
666666666666,Root/Prod,
888888888888,Root/Dev,
";

/// The fake portal with the inventory cached: fanout takes a 403 for a role the cache
/// knows the account has as a denial (uncached, the portal's 403 says no more than that
/// the login lacks the role, a skip).
fn env_with_cached_roles() -> TestEnv {
    let env = TestEnv::new(portal());
    let output = env.fanout().args(["accounts"]).output().unwrap();
    assert!(output.status.success(), "the inventory is cached: {}", stderr_of(&output));
    env
}

fn meta(dir: &Path) -> String {
    let path = dir.join("org.csv");
    std::fs::write(&path, META_CSV).unwrap();
    path.display().to_string()
}

/// Runs `sh -c` failing in 222222222222 (its command ran: the account was reached).
fn run(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let script = ["--", "sh", "-c", "test {account_id} != 222222222222"];
    let meta = meta(env.home());
    env.fanout()
        .args([&["--accounts-meta", meta.as_str(), "--role", "ReadOnly"], args, &script].concat())
        .output()
        .unwrap()
}

#[test]
fn every_account_in_scope_not_reached_is_counted_and_named_with_why() {
    let env = env_with_cached_roles();
    let output = run(&env, &["--ou", "Root/Prod"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "a failure and a denial: {stderr}");
    assert!(
        stderr.contains(
            "\n  coverage: 2 of 6 accounts in scope reached; not reached: 4 (1 not in the portal, 1 suspended, 1 no role ReadOnly, 1 denied)\n"
        ),
        "{stderr}"
    );
    for named in [
        "  not reached  333333333333 (x\\n  coverage: 9 of 9 accounts in scope reached): no role ReadOnly\n",
        "  not reached  444444444444 (denied-prod): denied\n",
        "  not reached  555555555555: suspended\n",
        "  not reached  666666666666: not in the portal\n",
    ] {
        assert!(stderr.contains(named), "{named:?} in {stderr}");
    }
    // The hostile name forges no line of its own; the accounts out of scope are not named.
    assert_eq!(stderr.lines().filter(|line| line.trim_start().starts_with("coverage:")).count(), 1, "{stderr}");
    assert!(!stderr.contains("777777777777") && !stderr.contains("888888888888"), "{stderr}");
}

#[test]
fn the_json_summary_holds_the_coverage_valid_against_the_schema() {
    let env = env_with_cached_roles();
    let output = run(&env, &["--ou", "Root/Prod", "--output", "json"]);
    let records = valid_records(&output.stdout);
    let summary = records.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(
        summary["coverage"],
        serde_json::json!({"in_scope": 6, "reached": 2, "not_reached": [
            {"account_id": "333333333333", "reason": "no-role"},
            {"account_id": "444444444444", "reason": "denied"},
            {"account_id": "555555555555", "reason": "suspended"},
            {"account_id": "666666666666", "reason": "not-in-portal"},
        ]})
    );
    // Without the organization's facts there is no scope: no field, no line.
    let output = env.fanout().args(["--role", "ReadOnly", "--output", "json", "--", "true"]).output().unwrap();
    let records = valid_records(&output.stdout);
    assert!(records.last().unwrap().get("coverage").is_none(), "{:?}", records.last());
    let stderr = stderr_of(&output);
    assert!(!stderr.lines().any(|line| line.trim_start().starts_with("coverage:")), "{stderr}");
}

#[test]
fn require_all_fails_a_run_that_missed_an_account_in_scope_and_passes_one_that_did_not() {
    let env = TestEnv::new(portal());
    // 666666666666 is not in the portal: reported either way, a failure only with the flag.
    let scope = ["--accounts", "111111111111,666666666666"];
    let output = run(&env, &scope);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("coverage: 1 of 2 accounts in scope reached"), "{}", stderr_of(&output));
    let output = run(&env, &[&scope[..], &["--require-all"]].concat());
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("  --require-all: 1 account in scope was not reached, so the run fails\n"), "{stderr}");
    // FANOUT_REQUIRE_ALL is the same switch.
    let meta = meta(env.home());
    let args = ["--accounts-meta", meta.as_str(), "--role", "ReadOnly", "--accounts", "111111111111,666666666666"];
    let output = env.fanout().env("FANOUT_REQUIRE_ALL", "1").args(args).args(["--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    // Every account in scope reached: 0.
    let output = run(&env, &["--accounts", "111111111111", "--require-all"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("  coverage: 1 of 1 account in scope reached\n"), "{stderr}");
    assert!(!stderr.contains("--require-all"), "{stderr}");
}

#[test]
fn require_all_without_the_organizations_facts_is_a_usage_error_naming_both_sources() {
    let env = TestEnv::new(portal());
    let output = env.fanout().args(["--role", "ReadOnly", "--require-all", "--", "true"]).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--org-role") && stderr.contains("--accounts-meta"), "{stderr}");
}

#[test]
fn a_name_filter_cannot_rule_out_an_account_the_portal_does_not_list() {
    let env = TestEnv::new(portal());
    // 666666666666 has no name to match: it stays in scope, so the audit hears of it.
    let output = run(&env, &["--ou", "Root/Prod", "--match", "pay-*"]);
    let stderr = stderr_of(&output);
    assert!(stderr.contains("coverage: 1 of 2 accounts in scope reached"), "{stderr}");
    assert!(stderr.contains("666666666666: not in the portal"), "{stderr}");
    // An --exclude that matches its id does leave it out.
    let output = run(&env, &["--ou", "Root/Prod", "--match", "pay-*", "--exclude", "6666*"]);
    assert!(stderr_of(&output).contains("coverage: 1 of 1 account in scope reached"), "{}", stderr_of(&output));
}

#[test]
fn a_dry_run_says_what_would_be_reached_and_the_reports_say_it_too() {
    let env = TestEnv::new(portal());
    let report = env.home().join("summary.md");
    let html = env.home().join("report.html");
    let (report_arg, html_arg) = (report.to_str().unwrap(), html.to_str().unwrap());
    let output = run(&env, &["--ou", "Root/Prod", "--dry-run", "--summary-markdown", report_arg, "--report", html_arg]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // A dry run fetches no credentials, so the denied account would be reached for all it knows.
    assert!(
        stderr.contains(
            "coverage: dry run: 3 of 6 accounts in scope would be reached; would not be: 3 (1 not in the portal, 1 suspended, 1 no role ReadOnly)"
        ),
        "{stderr}"
    );
    let markdown = std::fs::read_to_string(&report).unwrap();
    assert!(markdown.contains("3 of 6 accounts in scope would be reached"), "{markdown}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("3 of 6 accounts in scope would be reached"), "{page}");
    // A dry run with --require-all is the check before the real run.
    let output = run(&env, &["--ou", "Root/Prod", "--dry-run", "--require-all"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
}
