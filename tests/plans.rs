//! Plans a reviewer approves: `--dry-run --save-plan FILE` writes the resolved run with
//! its sha256, and `fanout apply FILE --approve SHA256` runs exactly that, under the
//! same login, skipping (and naming) accounts or roles that are gone.

mod common;

use std::path::Path;

use common::{TestEnv, sorted_lines, stderr_of, stdout_of};
use fake_portal::{Account, FakePortal, PortalOptions, generated_accounts};
use serde_json::Value;

/// Saves a plan of the `-dev` accounts (`ReadOnly`) running `echo {account_id} planned`.
fn save_plan(env: &TestEnv, path: &Path) -> Value {
    let path = path.to_str().unwrap();
    let args = ["--role", "ReadOnly", "--match", "*-dev", "--dry-run", "--save-plan", path];
    let output = env.fanout().args(args).args(["--", "echo", "{account_id}", "planned"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("fanout apply") && stderr.contains("--approve"), "{stderr}");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The SHA-256 of the plan file, as `sha256sum` prints it: what `--approve` names.
fn file_sha256(path: &std::path::Path) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .concat()
}

#[test]
fn apply_with_the_approved_hash_runs_exactly_the_saved_accounts_and_argv() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(24), ..PortalOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    let plan = save_plan(&env, &path);
    assert_eq!(plan["version"], 1);
    assert_eq!(plan["login"]["name"], "corp");
    assert_eq!(plan["login"]["start_url"], "https://corp.awsapps.com/start");
    let accounts = plan["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 3, "team003-dev lacks ReadOnly: {plan}");
    assert_eq!(accounts[0]["account_name"], "team000-dev");
    assert_eq!(accounts[0]["role"], "ReadOnly");
    assert_eq!(accounts[0]["region"], "us-east-1");
    assert_eq!(accounts[0]["argv"], serde_json::json!(["echo", "100000001111", "planned"]));
    assert_eq!(env.portal.stats().get_role_credentials, 0, "a dry run fetches no credentials");

    // Run flags apply to `apply` too; --prefix names the lines, the argv is the saved one.
    let sha = file_sha256(&path);
    let args = ["-j", "2", "--prefix", "{account_name}", "apply", path.to_str().unwrap(), "--approve", &sha];
    let output = env.fanout().args(args).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let expected: Vec<String> = accounts
        .iter()
        .map(|a| format!("{}|{} planned", a["account_name"].as_str().unwrap(), a["account_id"].as_str().unwrap()))
        .collect();
    assert_eq!(sorted_lines(&stdout_of(&output)), expected);
    assert_eq!(env.portal.stats().get_role_credentials, 3);
}

#[test]
fn a_tampered_plan_a_wrong_hash_or_no_approval_is_refused() {
    let env = TestEnv::new(PortalOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    let plan = save_plan(&env, &path);
    let file = path.to_str().unwrap();
    let sha = file_sha256(&path);

    let checksum = env.fanout().args(["apply", file, "--approve", plan["sha256"].as_str().unwrap()]).output();
    let checksum = checksum.unwrap();
    assert_eq!(checksum.status.code(), Some(2));
    assert!(stderr_of(&checksum).contains("approve the file's sha256"), "{}", stderr_of(&checksum));

    let wrong = env.fanout().args(["apply", file, "--approve", &"0".repeat(64)]).output().unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr_of(&wrong).contains("is not this plan's sha256"), "{}", stderr_of(&wrong));

    let unapproved = env.fanout().args(["apply", file]).output().unwrap();
    assert_eq!(unapproved.status.code(), Some(2));
    assert!(stderr_of(&unapproved).contains("--approve <sha256>"), "{}", stderr_of(&unapproved));

    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"planned\"", "\"tampered\"", 1)).unwrap();
    let tampered = env.fanout().args(["apply", file, "--approve", &sha]).output().unwrap();
    assert_eq!(tampered.status.code(), Some(2));
    assert!(stderr_of(&tampered).contains("was changed after it was saved"), "{}", stderr_of(&tampered));

    let conflicting = env.fanout().args(["--role", "Admin", "apply", file, "--approve", &sha]).output();
    assert_eq!(conflicting.unwrap().status.code(), Some(2));
    assert_eq!(env.portal.stats().get_role_credentials, 0, "nothing ran");
    assert_eq!(stdout_of(&wrong) + &stdout_of(&tampered), "");
}

#[test]
fn accounts_gone_from_the_portal_or_without_the_role_are_skipped_and_named() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(24), ..PortalOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    save_plan(&env, &path);

    // The same login, later: team000-dev is gone, team001-dev lost ReadOnly.
    let mut later = generated_accounts(24);
    later.retain(|a| a.name != "team000-dev");
    for account in later.iter_mut().filter(|a| a.name == "team001-dev") {
        *account = Account::new(&account.id, &account.name, &["AdministratorAccess"]);
    }
    let portal = FakePortal::start(PortalOptions { accounts: later, ..PortalOptions::default() });
    let output = env
        .fanout()
        .env("AWS_ENDPOINT_URL_SSO", portal.url())
        .args(["apply", path.to_str().unwrap(), "--approve", &file_sha256(&path)])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("skipped 100000001111 (team000-dev): the portal no longer lists it"), "{stderr}");
    assert!(stderr.contains("skipped 100000007777 (team001-dev): it has no role ReadOnly any more"), "{stderr}");
    assert_eq!(stdout_of(&output), "100000014443|100000014443 planned\n");
    assert_eq!(portal.stats().get_role_credentials, 1);
}

#[test]
fn a_plan_made_under_another_login_is_refused() {
    let env = TestEnv::new(PortalOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    save_plan(&env, &path);
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace("https://corp.awsapps.com/start", "https://other.awsapps.com/start"));
    let output =
        env.fanout().args(["apply", path.to_str().unwrap(), "--approve", &file_sha256(&path)]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("the login in force is") && stderr.contains("other.awsapps.com"), "{stderr}");
    assert_eq!(env.portal.stats().get_role_credentials, 0);
}

#[test]
fn a_renamed_account_runs_with_the_name_it_was_planned_with() {
    let env = TestEnv::new(PortalOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    let file = path.to_str().unwrap();
    let args = ["--role", "ReadOnly", "--accounts", "100000001111", "--dry-run", "--save-plan", file];
    let saved = env.fanout().args(args).args(["--", "sh", "-c", "echo {account_name}"]).output().unwrap();
    assert!(saved.status.success(), "{}", stderr_of(&saved));
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(plan["accounts"][0]["argv"][2], "echo \"$FANOUT_ACCOUNT_NAME\"");

    let mut later = generated_accounts(12);
    later[1].name = "renamed".to_owned();
    let portal = FakePortal::start(PortalOptions { accounts: later, ..PortalOptions::default() });
    let output = env
        .fanout()
        .env("AWS_ENDPOINT_URL_SSO", portal.url())
        .args(["apply", file, "--approve", &file_sha256(&path)])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "100000001111|team000-dev\n");
}
