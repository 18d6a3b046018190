//! Values one account's admin controls cost that account, never the run: regions its
//! `ListRegions` answers, a name the JSON decoder cannot read, a thousand roles and
//! more, a name too long for the inventory cache. Through the binary, against the fake
//! portal and its Account API.

mod common;

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{Account, PortalOptions};

const ALPHA: &str = "111111111111";
const BRAVO: &str = "222222222222";
const CHARLIE: &str = "333333333333";

fn three_accounts() -> PortalOptions {
    PortalOptions {
        accounts: vec![
            Account::new(ALPHA, "alpha", &["ReadOnly"]),
            Account::new(BRAVO, "bravo", &["ReadOnly"]),
            Account::new(CHARLIE, "charlie", &["ReadOnly"]),
        ],
        ..PortalOptions::default()
    }
}

fn one_account_with_regions(regions: Vec<String>) -> TestEnv {
    let mut options = PortalOptions { accounts: vec![Account::new(ALPHA, "alpha", &["ReadOnly"])], ..three_accounts() };
    options.enabled_regions.insert(ALPHA.to_owned(), regions);
    TestEnv::new(options)
}

/// `fanout --regions enabled … -- echo R {region}`, the Account API at the fake portal.
fn run_in_enabled_regions(env: &TestEnv) -> std::process::Output {
    env.fanout()
        .env("AWS_ENDPOINT_URL_ACCOUNT", env.portal.url())
        .args(["--role", "ReadOnly", "--regions", "enabled", "-j", "8", "--", "echo", "R", "{region}"])
        .output()
        .unwrap()
}

#[test]
fn regions_that_read_as_options_or_are_no_regions_are_refused_and_never_reach_argv() {
    let hostile = ["--help", "-e", "-exec", "-", "US-EAST-1", &"a".repeat(64), "eu-west-", "1abc"];
    let mut regions: Vec<String> = hostile.iter().map(|r| (*r).to_owned()).collect();
    regions.push("us-east-1".to_owned());
    let env = one_account_with_regions(regions);
    let output = run_in_enabled_regions(&env);
    let (stdout, stderr) = (stdout_of(&output), stderr_of(&output));
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, format!("{ALPHA}/us-east-1|R us-east-1\n"), "only the real region ran: {stderr}");
    assert!(
        stderr
            .contains(&format!("fanout: warning: {ALPHA} (alpha): ListRegions listed 8 names that are not regions (")),
        "{stderr}"
    );
    assert!(stderr.contains("refused them"), "{stderr}");
    assert!(stderr.contains("1 account-region selected: 1 succeeded"), "{stderr}");
}

#[test]
fn regions_given_by_the_user_go_through_the_same_check() {
    let env = TestEnv::new(three_accounts());
    for bad in ["us-east-1,--help", "-e", "us-east-1,-", "eu-west-", &"a".repeat(64)] {
        let output = env
            .fanout()
            .args(["--role", "ReadOnly", &format!("--regions={bad}"), "--", "echo", "{region}"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", stderr_of(&output));
        assert!(stderr_of(&output).contains("invalid region"), "{}", stderr_of(&output));
        assert!(stdout_of(&output).is_empty());
    }
    let output = env.fanout().args(["--role", "ReadOnly", "--region=-e", "--", "echo", "hi"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
}

#[test]
fn five_thousand_regions_are_capped_at_64_after_two_pages() {
    let env = one_account_with_regions((0..5000).map(|i| format!("r{i:04}")).collect());
    let output = env
        .fanout()
        .env("AWS_ENDPOINT_URL_ACCOUNT", env.portal.url())
        .args(["--role", "ReadOnly", "--regions", "enabled", "-j", "8", "--", "true"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "fanout: warning: {ALPHA} (alpha): ListRegions listed more than 64 regions (100 in 2 pages"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("64 account-regions selected: 64 succeeded"), "{stderr}");
    assert_eq!(env.portal.stats().list_regions, 2, "no page asked past the cap");
}

#[test]
fn pages_of_names_that_are_no_regions_stop_at_the_page_bound() {
    let env = one_account_with_regions((0..5000).map(|i| format!("-r{i:04}")).collect());
    let output = run_in_enabled_regions(&env);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(env.portal.stats().list_regions, 8, "the page bound");
    assert!(stderr.contains("ListRegions listed 400 names that are not regions"), "{stderr}");
    assert!(stderr.contains("ListRegions still had pages after 8"), "{stderr}");
    assert!(stderr.contains("cannot list its enabled regions (ListRegions listed no region)"), "{stderr}");
    assert!(!stdout_of(&output).contains("R -"), "{}", stdout_of(&output));
}

/// Runs `echo ran` in every account with `BRAVO`'s name sent as `raw` bytes.
fn run_with_bravo_named(raw: &[u8]) -> (TestEnv, std::process::Output) {
    let mut options = three_accounts();
    options.raw_names.insert(BRAVO.to_owned(), raw.to_vec());
    let env = TestEnv::new(options);
    let output = env.fanout().args(["--role", "ReadOnly", "--", "echo", "ran"]).output().unwrap();
    (env, output)
}

#[test]
fn a_lone_surrogate_in_one_name_skips_that_account_only() {
    let (env, output) = run_with_bravo_named(br"bad\ud800name");
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    let mut ran: Vec<&str> = stdout_of(&output).leak().lines().collect();
    ran.sort_unstable();
    assert_eq!(ran, [format!("{ALPHA}|ran"), format!("{CHARLIE}|ran")]);
    assert!(
        stderr.contains(&format!("skipping account {BRAVO}: its name holds a lone UTF-16 surrogate escape")),
        "{stderr}"
    );
    let listed = env.fanout().args(["accounts"]).output().unwrap();
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    assert!(stdout_of(&listed).contains(ALPHA) && !stdout_of(&listed).contains(BRAVO));
}

#[test]
fn invalid_utf8_in_one_name_skips_that_account_only() {
    let (_env, output) = run_with_bravo_named(b"bad\xff\xfename");
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("skipping account {BRAVO}: its name is not valid UTF-8")), "{stderr}");
    let stdout = stdout_of(&output);
    assert!(stdout.contains(&format!("{ALPHA}|ran")) && stdout.contains(&format!("{CHARLIE}|ran")), "{stdout}");
    assert!(!stdout.contains(BRAVO), "{stdout}");
}

#[test]
fn an_account_with_more_than_a_thousand_roles_is_capped_and_the_others_listed() {
    let roles: Vec<String> = (0..=1000).map(|i| format!("Role{i:04}")).collect();
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    let mut options = three_accounts();
    options.accounts[0] = Account::new(ALPHA, "alpha", &roles);
    let env = TestEnv::new(options);
    let output = env.fanout().args(["accounts", "--output", "json"]).output().unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr
            .contains(&format!("account {ALPHA}: the portal lists more than 1000 roles for it; using the first 1000")),
        "{stderr}"
    );
    let stdout = stdout_of(&output);
    assert!(stdout.contains(BRAVO) && stdout.contains(CHARLIE), "{stdout}");
    assert!(stdout.contains("Role0999") && !stdout.contains("Role1000"), "capped at 1000");
}

#[test]
fn a_name_too_long_is_skipped_so_the_next_run_still_reads_the_cache() {
    let mut options = three_accounts();
    options.accounts[0].name = "n".repeat(70 * 1024);
    let env = TestEnv::new(options);
    let first = env.fanout().args(["accounts"]).output().unwrap();
    let stderr = stderr_of(&first);
    assert!(first.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("skipping account {ALPHA}: its name is 71680 bytes long, over the bound of 1024")),
        "{stderr}"
    );
    assert!(stderr.len() < 4096, "the name is not printed: {} bytes", stderr.len());
    assert!(!stdout_of(&first).contains(ALPHA) && stdout_of(&first).contains(BRAVO));
    let roles_listed = env.portal.stats().list_account_roles;

    let listed = env.fanout().args(["-v", "accounts"]).output().unwrap();
    let stderr = stderr_of(&listed);
    assert!(listed.status.success(), "{stderr}");
    assert!(stderr.contains("roles known from the inventory cache"), "{stderr}");
    assert!(!stderr.contains("longer than"), "{stderr}");
    assert_eq!(env.portal.stats().list_account_roles, roles_listed, "every role came from the cache");
}
