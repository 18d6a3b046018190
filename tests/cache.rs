//! The inventory cache never hides an account, and the portal rate is remembered per
//! login: through the binary, against a fake portal whose accounts change between runs.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{TestEnv, sorted_lines, stderr_of, stdout_of, valid_records};
use fake_portal::{Account, PortalOptions, generated_accounts};

/// Every `echo ran` line fanout prints for `accounts` with `ReadOnly`, sorted.
fn ran(accounts: &[Account]) -> Vec<String> {
    let mut lines: Vec<String> =
        accounts.iter().filter(|a| a.roles.iter().any(|r| r == "ReadOnly")).map(|a| format!("{}|ran", a.id)).collect();
    lines.sort();
    lines
}

/// The one file under the cache directory whose name starts with `prefix`.
fn cache_file(env: &TestEnv, prefix: &str) -> std::path::PathBuf {
    let dir = env.home().join(".cache/fanout");
    let mut files = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with(prefix));
    let file = files.next().unwrap_or_else(|| panic!("no {prefix}* in {}", dir.display()));
    assert!(files.next().is_none(), "one {prefix}* file");
    file
}

#[test]
fn a_portal_that_gains_accounts_and_a_role_within_the_ttl_is_run_whole() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(30), ..PortalOptions::default() });
    let run = || env.fanout().args(["--role", "ReadOnly", "--", "echo", "ran"]).output().unwrap();
    let first = run();
    assert!(first.status.success(), "{}", stderr_of(&first));
    assert_eq!(sorted_lines(&stdout_of(&first)), ran(&generated_accounts(30)));

    // 15 accounts created, one granted ReadOnly, one removed: all within the cache's hour.
    let mut now = generated_accounts(45);
    now[9].roles.push("ReadOnly".to_owned());
    let removed = now.remove(0);
    env.portal.set_accounts(now.clone());
    let second = run();
    assert!(second.status.success(), "{}", stderr_of(&second));
    let lines = sorted_lines(&stdout_of(&second));
    assert_eq!(lines, ran(&now), "every account the portal lists now, and only those");
    assert!(lines.contains(&format!("{}|ran", now[8].id)), "the account granted the role ran");
    assert!(!stdout_of(&second).contains(&removed.id), "the removed account never ran");
    assert!(stderr_of(&second).starts_with("fanout: 44 accounts selected: 41 succeeded"), "{}", stderr_of(&second));
    assert_eq!(env.portal.stats().list_accounts, 2, "each run listed the accounts");

    // The cache is rewritten from the new listing.
    let cached = std::fs::read_to_string(cache_file(&env, "inventory-")).unwrap();
    assert_eq!(cached.lines().count(), 1 + now.len());
    assert!(cached.contains(&now[43].id) && !cached.contains(&removed.id), "{cached}");
}

#[test]
fn a_skip_decided_from_cached_roles_is_labelled_and_refresh_asks_again() {
    let env = TestEnv::new(PortalOptions::default());
    let dry = env.fanout().args(["--role", "ReadOnly", "--dry-run", "--", "true"]).output().unwrap();
    assert!(dry.status.success(), "{}", stderr_of(&dry));
    let mut accounts = generated_accounts(12);
    accounts[9].roles.push("ReadOnly".to_owned());
    let granted = accounts[9].id.clone();
    env.portal.set_accounts(accounts);

    let output = env.fanout().args(["--output", "json", "--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    let skipped = records.iter().find(|r| r["account_id"] == granted.as_str()).unwrap();
    assert_eq!(skipped["status"], "no-role");
    let reason = skipped["error"].as_str().unwrap();
    assert!(
        reason.starts_with("no role ReadOnly, as cached ") && reason.ends_with(" ago; --refresh asks again"),
        "{reason}"
    );
    let stderr = stderr_of(&output);
    assert!(stderr.contains("; roles of 12 accounts from the inventory cache (listed "), "{stderr}");
    assert!(
        stderr.contains(&format!("  skipped      {granted} (team001-sandbox): no role ReadOnly, as cached ")),
        "{stderr}"
    );
    assert_eq!(env.portal.stats().list_account_roles, 12, "the roles were listed once, by the dry run");

    let refreshed = env.fanout().args(["--refresh", "--role", "ReadOnly", "--", "echo", "ran"]).output().unwrap();
    assert!(refreshed.status.success(), "{}", stderr_of(&refreshed));
    assert!(stdout_of(&refreshed).contains(&format!("{granted}|ran")), "{}", stdout_of(&refreshed));
    assert!(!stderr_of(&refreshed).contains("from the inventory cache"), "{}", stderr_of(&refreshed));
}

#[test]
fn a_dry_run_and_the_account_list_take_the_accounts_from_the_portal_and_roles_from_the_cache() {
    let env = TestEnv::new(PortalOptions::default());
    assert!(env.fanout().args(["accounts"]).output().unwrap().status.success());
    let mut accounts = generated_accounts(14);
    let removed = accounts.remove(0);
    env.portal.set_accounts(accounts.clone());
    let before = env.portal.stats();

    let listed = env.fanout().args(["-v", "accounts"]).output().unwrap();
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    let stdout = stdout_of(&listed);
    assert!(stdout.contains(&accounts[12].id) && !stdout.contains(&removed.id), "{stdout}");
    assert!(stderr_of(&listed).contains("accounts listed from the portal, roles known from the inventory cache"));
    let after = env.portal.stats();
    assert_eq!(after.list_accounts - before.list_accounts, 1);
    assert_eq!(after.list_account_roles - before.list_account_roles, 2, "only the new accounts' roles were asked");

    let plan = env.fanout().args(["--role", "ReadOnly", "--dry-run", "--", "true"]).output().unwrap();
    assert!(plan.status.success(), "{}", stderr_of(&plan));
    assert!(stdout_of(&plan).contains(&accounts[12].id) && !stdout_of(&plan).contains(&removed.id));
    assert_eq!(env.portal.stats().list_account_roles, after.list_account_roles, "every role is cached now");
}

#[test]
fn the_next_run_starts_at_the_rate_the_portal_sustained() {
    let options =
        PortalOptions { accounts: generated_accounts(150), rate_limit: Some(60.0), ..PortalOptions::default() };
    let env = TestEnv::new(options);
    let first = env.fanout().args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert!(first.status.success(), "{}", stderr_of(&first));
    assert!(env.portal.stats().throttled > 0, "the portal's limit was reached");

    let path = cache_file(&env, "portal-rate-");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let remembered: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(remembered["throttled"], true, "{remembered}");
    let rate = remembered["rate"].as_f64().unwrap();
    // Near the portal's 60 a second: its bucket holds a second of burst, so the window
    // the limiter measured can have served more.
    assert!(rate > 20.0 && rate < 120.0, "{remembered}");

    let second = env.fanout().args(["-v", "--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert!(second.status.success(), "{}", stderr_of(&second));
    let stderr = stderr_of(&second);
    assert!(stderr.contains(&format!("rate={rate:?} after_a_throttle=true")), "{stderr}");
    assert!(stderr.contains("portal rate: starting where the last run left off"), "{stderr}");

    let remembered: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let half = remembered["rate"].as_f64().unwrap() / 2.0;
    let sharded = env.fanout().args(["-v", "--shard", "1/2", "--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert!(sharded.status.success(), "{}", stderr_of(&sharded));
    assert!(half < 10.0 || stderr_of(&sharded).contains(&format!("rate={half:?}")), "{half}: {}", stderr_of(&sharded));

    let given = env.fanout().args(["-v", "--portal-rps", "5", "--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert!(given.status.success(), "{}", stderr_of(&given));
    assert!(!stderr_of(&given).contains("starting where the last run left off"), "--portal-rps overrides it");
}
