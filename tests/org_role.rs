//! Issue 18, point 1: the organization as the source of facts (`--org-role`), read from
//! moto's Organizations (a real implementation of the API, on loopback, reached through
//! `AWS_ENDPOINT_URL_ORGANIZATIONS`) with the role's credentials from the fake portal.
//! The organization is built with boto3 (`tests/moto_org.py`): nested OUs, tagged
//! accounts, a closed one, the management account at the root. The tests skip, saying
//! why, where `moto_server` or boto3 cannot be had (`.ci/run` installs them).
//!
//! The denial and throttling paths use a few-line endpoint of our own that answers as
//! Organizations does (an `AccessDeniedException`, then `TooManyRequestsException`s):
//! moto grants every call and never throttles.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{TestEnv, sorted_lines, stderr_of, stdout_of, valid_records};
use fake_portal::{Account, PortalOptions};

/// moto's own account: boto3 creates the organization in it, and it answers every key,
/// so it is the management account the role is in.
const MANAGEMENT: &str = "123456789012";
/// An account the portal lists and the organization does not.
const OUTSIDER: &str = "555555555555";
const ORG_ROLE: &str = "123456789012:OrgReader";

fn has(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `moto_server` on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    /// `None` (with the reason printed) where moto or boto3 cannot be had.
    fn start() -> Option<Moto> {
        if !has("python3", &["-c", "import boto3"]) {
            eprintln!("skipped: python3 with boto3 is not installed (pip install boto3)");
            return None;
        }
        let port = free_port();
        let spawned = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = spawned else {
            eprintln!("skipped: moto_server is not installed (pip install 'moto[server]')");
            return None;
        };
        let moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "moto_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ids `tests/moto_org.py` created.
struct Org {
    ous: serde_json::Value,
    accounts: serde_json::Value,
}

impl Org {
    fn build(moto: &Moto) -> Org {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto_org.py");
        let output = Command::new("python3").arg(script).arg(&moto.url).output().unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        let ids: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(ids["management"], MANAGEMENT);
        Org { ous: ids["ous"].clone(), accounts: ids["accounts"].clone() }
    }

    fn ou(&self, name: &str) -> String {
        self.ous[name].as_str().unwrap().to_owned()
    }

    fn account(&self, name: &str) -> String {
        self.accounts[name].as_str().unwrap().to_owned()
    }

    /// The portal lists the organization's accounts (with `ReadOnly`), the management
    /// account with the org role too, and one account the organization does not hold.
    fn portal(&self) -> PortalOptions {
        let mut accounts = vec![
            Account::new(MANAGEMENT, "management", &["OrgReader", "ReadOnly"]),
            Account::new(OUTSIDER, "outsider", &["ReadOnly"]),
        ];
        for name in ["pay-prod", "search-prod-eu", "pay-dev", "old-prod"] {
            accounts.push(Account::new(&self.account(name), name, &["ReadOnly"]));
        }
        PortalOptions { accounts, ..PortalOptions::default() }
    }
}

fn fanout_at(env: &TestEnv, endpoint: &str) -> assert_cmd::Command {
    let mut command = env.fanout();
    command.env("AWS_ENDPOINT_URL_ORGANIZATIONS", endpoint);
    command
}

/// The ids `selection` runs `echo` in, sorted, and the run's stderr.
fn ids_run(env: &TestEnv, endpoint: &str, selection: &[&str]) -> (Vec<String>, String) {
    let args = [&["--org-role", ORG_ROLE, "--role", "ReadOnly"], selection, &["--", "echo", "{account_id}"]].concat();
    let output = fanout_at(env, endpoint).args(args).output().unwrap();
    assert!(output.status.success(), "{selection:?}: {}", stderr_of(&output));
    let ids = sorted_lines(&stdout_of(&output)).into_iter().map(|line| line.split('|').next().unwrap().to_owned());
    (ids.collect(), stderr_of(&output))
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}

#[test]
fn ou_and_tag_select_on_what_the_organization_says() {
    let Some(moto) = Moto::start() else { return };
    let org = Org::build(&moto);
    let env = TestEnv::new(org.portal());
    let (pay_prod, search, pay_dev) = (org.account("pay-prod"), org.account("search-prod-eu"), org.account("pay-dev"));
    let (run, stderr) = ids_run(&env, &moto.url, &["--ou", "Root/Workloads/Prod"]);
    assert_eq!(run, sorted(&[pay_prod.clone(), search.clone()]), "nested: Eu is under Prod");
    // The closed account in Prod (moto shows it SUSPENDED) is skipped and counted.
    assert!(stderr.contains("skipped      1 account the organization lists as suspended or closed"), "{stderr}");
    assert_eq!(ids_run(&env, &moto.url, &["--ou", &org.ou("Eu")]).0, vec![search.clone()]);
    // Workloads holds no account itself: its id is known from the organization anyway.
    let workloads = ids_run(&env, &moto.url, &["--ou", &org.ou("Workloads")]).0;
    assert_eq!(workloads, sorted(&[pay_prod.clone(), search.clone(), pay_dev.clone()]));
    assert_eq!(ids_run(&env, &moto.url, &["--tag", "env=prod*"]).0, sorted(&[pay_prod.clone(), search.clone()]));
    assert_eq!(ids_run(&env, &moto.url, &["--tag", "team=pay*"]).0, sorted(&[pay_prod.clone(), pay_dev.clone()]));
    assert_eq!(ids_run(&env, &moto.url, &["--tag", "env=prod*", "--tag", "team=search"]).0, vec![search.clone()]);
    // The outsider has no facts: --exclude-ou never leaves it out.
    let outside = ids_run(&env, &moto.url, &["--exclude-ou", "Root/Workloads"]).0;
    assert_eq!(outside, sorted(&[MANAGEMENT.to_owned(), OUTSIDER.to_owned()]));
    let output =
        fanout_at(&env, &moto.url).args(["--org-role", ORG_ROLE, "--ou", "Root/workloads", "accounts"]).output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("no account of the organization is in the OU Root/workloads"), "{output:?}");
}

#[test]
fn coverage_names_the_accounts_of_the_organization_the_run_could_not_reach() {
    // Issue 18, point 5, with the organization itself as the source.
    let Some(moto) = Moto::start() else { return };
    let org = Org::build(&moto);
    let mut portal = org.portal();
    let pay_dev = org.account("pay-dev");
    portal.accounts.retain(|account| account.id != pay_dev);
    let env = TestEnv::new(portal);
    let args = ["--org-role", ORG_ROLE, "--role", "ReadOnly", "--ou", "Root/Workloads", "--output", "json"];
    let output = fanout_at(&env, &moto.url).args(args).args(["--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "a gap alone does not fail the run: {}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    let coverage = &records.last().unwrap()["coverage"];
    let mut missed = [(pay_dev.clone(), "not-in-portal"), (org.account("old-prod"), "suspended")];
    missed.sort();
    let expected: Vec<serde_json::Value> =
        missed.iter().map(|(id, reason)| serde_json::json!({"account_id": id, "reason": reason})).collect();
    assert_eq!(*coverage, serde_json::json!({"in_scope": 4, "reached": 2, "not_reached": expected}));
    let output = fanout_at(&env, &moto.url).args(args).args(["--require-all", "--", "true"]).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("  not reached  {pay_dev}: not in the portal\n")), "{stderr}");
}

#[test]
fn fanout_accounts_and_the_child_carry_the_organizations_facts() {
    let Some(moto) = Moto::start() else { return };
    let org = Org::build(&moto);
    let env = TestEnv::new(org.portal());
    let output = fanout_at(&env, &moto.url).args(["--org-role", ORG_ROLE, "accounts", "--output", "json"]).output();
    let output = output.unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let entry = |id: &str| listed.as_array().unwrap().iter().find(|a| a["account_id"] == id).cloned();
    let pay_prod = entry(&org.account("pay-prod")).expect("pay-prod listed");
    assert_eq!(pay_prod["ou_path"], "Root/Workloads/Prod");
    assert_eq!(pay_prod["tags"], serde_json::json!({"env": "prod", "team": "payments"}));
    assert_eq!(entry(MANAGEMENT).unwrap()["ou_path"], "Root");
    assert!(entry(&org.account("old-prod")).is_none(), "a closed account is not listed");
    let search = org.account("search-prod-eu");
    let args = [
        "--org-role",
        ORG_ROLE,
        "--role",
        "ReadOnly",
        "--accounts",
        &search,
        "--",
        "sh",
        "-c",
        "echo \"$FANOUT_OU_PATH\"",
    ];
    let output = fanout_at(&env, &moto.url).args(args).output().unwrap();
    assert_eq!(stdout_of(&output), format!("{search}|Root/Workloads/Prod/Eu\n"), "{}", stderr_of(&output));
}

#[test]
fn a_warm_cache_makes_no_organizations_call() {
    let Some(moto) = Moto::start() else { return };
    let org = Org::build(&moto);
    let env = TestEnv::new(org.portal());
    let prod = sorted(&[org.account("pay-prod"), org.account("search-prod-eu")]);
    assert_eq!(ids_run(&env, &moto.url, &["--ou", "Root/Workloads/Prod"]).0, prod);
    let cache = std::fs::read_dir(env.home().join(".cache/fanout"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("org-"))
        .expect("the organization is cached");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions()) & 0o777,
        0o600
    );
    let credentials_before = env.portal.stats().get_role_credentials;
    // Nothing listens there: only the cache can answer.
    let dead = format!("http://127.0.0.1:{}", free_port());
    assert_eq!(ids_run(&env, &dead, &["--ou", "Root/Workloads/Prod"]).0, prod);
    assert_eq!(env.portal.stats().get_role_credentials - credentials_before, 2, "no credentials for the org role");
    let refreshed = fanout_at(&env, &dead).args(["--org-role", ORG_ROLE, "--refresh", "accounts"]).output().unwrap();
    assert_eq!(refreshed.status.code(), Some(4), "--refresh reads the organization again: {}", stderr_of(&refreshed));
    assert!(stderr_of(&refreshed).contains("AWS_ENDPOINT_URL_ORGANIZATIONS"), "{}", stderr_of(&refreshed));
    let off = fanout_at(&env, &dead).args(["--org-role", ORG_ROLE, "--cache-ttl", "0", "accounts"]).output().unwrap();
    assert_eq!(off.status.code(), Some(4), "--cache-ttl 0 reads no cache");
}

/// Runs `touch` in every account with `--org-role ROLE` against `endpoint`: the exit
/// code and stderr, after checking that nothing ran.
fn refused(env: &TestEnv, endpoint: &str, role: &str) -> (Option<i32>, String) {
    let marker = env.home().join("ran");
    let args = ["--org-role", role, "--role", "ReadOnly", "--", "touch", marker.to_str().unwrap()];
    let output = fanout_at(env, endpoint).args(args).output().unwrap();
    assert!(!marker.exists(), "a command ran");
    assert_eq!(stdout_of(&output), "");
    (output.status.code(), stderr_of(&output))
}

#[test]
fn an_account_in_no_organization_or_a_role_the_login_lacks_stops_before_anything_runs() {
    let Some(moto) = Moto::start() else { return };
    let env = TestEnv::new(portal_without_org());
    let (code, stderr) = refused(&env, &moto.url, ORG_ROLE);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is in no organization (AWSOrganizationsNotInUseException)"), "{stderr}");
    let (code, stderr) = refused(&env, &moto.url, "123456789012:NotAssigned");
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the SSO login cannot reach that role") && stderr.contains("organizations:ListRoots"),
        "{stderr}"
    );
}

/// The management account and the outsider, for an endpoint with no organization built.
fn portal_without_org() -> PortalOptions {
    let accounts = vec![
        Account::new(MANAGEMENT, "management", &["OrgReader", "ReadOnly"]),
        Account::new(OUTSIDER, "outsider", &["ReadOnly"]),
    ];
    PortalOptions { accounts, ..PortalOptions::default() }
}

/// An endpoint that answers each Organizations call with the next of `replies` (the
/// last one again once they run out): `(status, x-amzn-ErrorType or "", JSON body)`.
/// Returns its URL and the count of calls it answered.
fn scripted_endpoint(replies: Vec<(u16, &'static str, &'static str)>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            read_request(&mut stream);
            let call = counted.fetch_add(1, Ordering::SeqCst);
            let (status, error_type, body) = replies[call.min(replies.len() - 1)];
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {error_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
        }
    });
    (url, calls)
}

/// Reads one request's head and body (by its content-length).
fn read_request(stream: &mut TcpStream) {
    let mut bytes = Vec::new();
    let mut buf = [0; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        bytes.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return;
            }
        }
    }
}

#[test]
fn access_denied_is_one_line_naming_the_permissions_and_exit_2() {
    let env = TestEnv::new(portal_without_org());
    let denied =
        r#"{"__type":"AccessDeniedException","Message":"You don't have permissions to access this resource."}"#;
    let (url, calls) = scripted_endpoint(vec![(400, "AccessDeniedException", denied)]);
    let (code, stderr) = refused(&env, &url, ORG_ROLE);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: --org-role 123456789012:OrgReader may not read the organization (ListRoots: AccessDeniedException)"
        ),
        "{stderr}"
    );
    for permission in ["ListRoots", "ListOrganizationalUnitsForParent", "ListAccountsForParent", "ListTagsForResource"]
    {
        assert!(stderr.contains(&format!("organizations:{permission}")), "{stderr}");
    }
    assert!(stderr.contains("management account or a delegated administrator"), "{stderr}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a denial is not retried");
    // AWS_ENDPOINT_URL reaches Organizations too, when its own variable is not set (the
    // portal keeps its AWS_ENDPOINT_URL_SSO, which comes first for it).
    let args = ["--org-role", ORG_ROLE, "accounts"];
    let generic = env.fanout().env("AWS_ENDPOINT_URL", &url).args(args).output().unwrap();
    assert!(stderr_of(&generic).contains("may not read the organization"), "{generic:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_throttling_organizations_is_slowed_down_to_not_failed() {
    let env = TestEnv::new(portal_without_org());
    let throttled = r#"{"__type":"TooManyRequestsException","Message":"AWS Organizations can't complete your request because another request is already in progress."}"#;
    let throttle = (400, "TooManyRequestsException", throttled);
    let (url, calls) = scripted_endpoint(vec![throttle, throttle, throttle, (200, "", r#"{"Roots":[]}"#)]);
    let output =
        fanout_at(&env, &url).args(["--org-role", ORG_ROLE, "--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(calls.load(Ordering::SeqCst), 4, "three throttles, then the answer");
}

#[test]
fn the_role_comes_from_the_flag_the_variable_or_the_config_file_and_not_with_a_meta_file() {
    let env = TestEnv::new(portal_without_org());
    let denied = r#"{"__type":"AccessDeniedException","Message":"denied"}"#;
    let (url, _) = scripted_endpoint(vec![(400, "AccessDeniedException", denied)]);
    let by_variable = fanout_at(&env, &url).env("FANOUT_ORG_ROLE", ORG_ROLE).arg("accounts").output().unwrap();
    assert_eq!(by_variable.status.code(), Some(2));
    assert!(stderr_of(&by_variable).contains(&format!("--org-role {ORG_ROLE} may not read")), "{by_variable:?}");
    let config = env.home().join("fanout.toml");
    std::fs::write(&config, format!("org-role = \"{ORG_ROLE}\"\n")).unwrap();
    let by_file = fanout_at(&env, &url).env("FANOUT_CONFIG", &config).arg("accounts").output().unwrap();
    assert!(stderr_of(&by_file).contains(&format!("--org-role {ORG_ROLE} may not read")), "{by_file:?}");
    let both = env.fanout().args(["--org-role", ORG_ROLE, "--accounts-meta", "org.csv", "accounts"]).output().unwrap();
    assert_eq!(both.status.code(), Some(2));
    let stderr = stderr_of(&both);
    assert!(stderr.contains("'--org-role' cannot be used with '--accounts-meta'"), "{stderr}");
    let both_defaults = fanout_at(&env, &url)
        .env("FANOUT_ORG_ROLE", ORG_ROLE)
        .env("FANOUT_ACCOUNTS_META", "org.csv")
        .arg("accounts")
        .output()
        .unwrap();
    assert_eq!(both_defaults.status.code(), Some(2));
    assert!(stderr_of(&both_defaults).contains("two sources of the organization's facts"), "{both_defaults:?}");
    // A flag of one sets the other's default aside: the file that is not there is not read.
    let flag_wins = fanout_at(&env, &url)
        .env("FANOUT_ACCOUNTS_META", "missing.csv")
        .args(["--org-role", ORG_ROLE, "accounts"])
        .output()
        .unwrap();
    assert!(stderr_of(&flag_wins).contains(&format!("--org-role {ORG_ROLE} may not read")), "{flag_wins:?}");
    std::fs::write(&config, "org-role = \"123456789012:Other\"\n").unwrap();
    let meta = env.home().join("org.csv");
    std::fs::write(&meta, format!("account_id,ou_path\n{OUTSIDER},Root/Elsewhere\n")).unwrap();
    let meta_wins = fanout_at(&env, &url)
        .env("FANOUT_CONFIG", &config)
        .args(["--accounts-meta", meta.to_str().unwrap(), "accounts", "--output", "json"])
        .output()
        .unwrap();
    assert!(meta_wins.status.success(), "{}", stderr_of(&meta_wins));
    assert!(stdout_of(&meta_wins).contains("Root/Elsewhere"), "{}", stdout_of(&meta_wins));
    for bad in ["123:OrgReader", "123456789012", "123456789012:a b"] {
        let output = env.fanout().args(["--org-role", bad, "accounts"]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad}");
        assert!(stderr_of(&output).contains("invalid --org-role"), "{}", stderr_of(&output));
    }
}

#[test]
fn a_hostile_name_or_a_looping_listing_from_organizations_is_refused() {
    let env = TestEnv::new(portal_without_org());
    let hostile_root = r#"{"Roots":[{"Id":"r-ab12","Name":"Ro\u001b[31mot"}]}"#;
    let (url, _) = scripted_endpoint(vec![
        (200, "", hostile_root),
        (200, "", r#"{"OrganizationalUnits":[]}"#),
        (200, "", r#"{"Accounts":[]}"#),
    ]);
    let (code, stderr) = refused(&env, &url, ORG_ROLE);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("the organization's answer cannot be used: the OU name"), "{stderr}");
    assert!(stderr.contains("holds a control or format character") && !stderr.contains('\u{1b}'), "{stderr}");
    let (url, calls) = scripted_endpoint(vec![(200, "", r#"{"Roots":[],"NextToken":"again"}"#)]);
    let (code, stderr) = refused(&env, &url, ORG_ROLE);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("ListRoots returned a page token it had returned before"), "{stderr}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// `fanout doctor --org-role`: the role's credentials and the first call a run makes
/// (`ListRoots`), a line of its own; each problem with its fix and the exit code a run
/// would meet.
#[test]
fn doctor_checks_the_org_role_with_the_call_a_run_makes_first() {
    let Some(moto) = Moto::start() else { return };
    let org = Org::build(&moto);
    let env = TestEnv::new(org.portal());
    let output = fanout_at(&env, &moto.url).args(["--org-role", ORG_ROLE, "doctor"]).output().unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", stderr_of(&output));
    let line = stdout.lines().find(|l| l.contains("organizations:")).expect("an organizations line");
    assert!(
        line.starts_with(&format!("✓ organizations: --org-role {ORG_ROLE} lists the organization (root r-")),
        "{line}"
    );
    // A role the login does not have.
    let output =
        fanout_at(&env, &moto.url).args(["--org-role", "123456789012:NotAssigned", "doctor"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stdout_of(&output));
    assert!(
        stdout_of(&output)
            .contains("✗ organizations: --org-role 123456789012:NotAssigned: the SSO login cannot reach that role"),
        "{}",
        stdout_of(&output)
    );
    // A role that may not read the organization.
    let denied = r#"{"__type":"AccessDeniedException","Message":"no"}"#;
    let (url, _) = scripted_endpoint(vec![(400, "AccessDeniedException", denied)]);
    let output = fanout_at(&env, &url).args(["--org-role", ORG_ROLE, "doctor"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stdout_of(&output));
    let stdout = stdout_of(&output);
    assert!(stdout.contains("✗ organizations: --org-role 123456789012:OrgReader may not read the organization (ListRoots: AccessDeniedException)"), "{stdout}");
    assert!(stdout.contains("organizations:ListTagsForResource"), "{stdout}");
    // Without --org-role, doctor says nothing of the organization.
    let output = fanout_at(&env, &moto.url).arg("doctor").output().unwrap();
    assert!(!stdout_of(&output).contains("organizations:"), "{}", stdout_of(&output));
}
