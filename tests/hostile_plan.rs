//! Issue 16, point 3: a plan is reviewed as what will run. Whoever can write a plan file
//! can change one account's argv and recompute the checksum inside it; the review
//! (`fanout apply FILE --dry-run`, and the prompt of `apply` without `--approve`) must
//! then show that argv, with its account, next to the others, every role and region,
//! the file's own sha256 (the one `--approve` names), accounts renamed since the plan
//! with both names, and every value escaped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::terminal::{Tmux, isolated_fanout_words};
use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{FakePortal, PortalOptions, generated_accounts};
use fanout::plan::Plan;

/// The account whose argv the attacker changes: team000-audit.
const EDITED: &str = "100000004444";

/// Saves a plan of the 9 non-prod accounts with `ReadOnly`, all running `echo planned`.
fn save_plan(env: &TestEnv, path: &Path) {
    let args = ["--role", "ReadOnly", "--exclude", "*-prod", "--dry-run", "--save-plan", path.to_str().unwrap()];
    let saved = env.fanout().args(args).args(["--", "echo", "planned"]).output().unwrap();
    assert!(saved.status.success(), "{}", stderr_of(&saved));
}

/// Edits the plan as an attacker who can write it would: `edit` changes the accounts,
/// and the checksum inside the file is recomputed, so the plan reads as whole.
fn forge(path: &Path, edit: impl FnOnce(&mut Vec<fanout::plan::PlannedAccount>)) {
    let plan = Plan::parse(&std::fs::read_to_string(path).unwrap(), "plan").unwrap();
    let mut accounts = plan.accounts;
    edit(&mut accounts);
    std::fs::write(path, Plan::new(plan.login, accounts).to_file_text()).unwrap();
}

/// The account `id`'s argv becomes `argv`.
fn set_argv(path: &Path, id: &str, argv: &[&str]) {
    forge(path, |accounts| {
        let account = accounts.iter_mut().find(|a| a.account_id == id).unwrap();
        account.argv = argv.iter().map(|&a| a.to_owned()).collect();
    });
}

/// `sha256sum FILE`, or the same computed here where the tool is missing.
fn sha256sum(path: &Path) -> String {
    if let Ok(output) = Command::new("sha256sum").arg(path).output()
        && output.status.success()
    {
        return String::from_utf8(output.stdout).unwrap().split_whitespace().next().unwrap().to_owned();
    }
    <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .concat()
}

/// What the review of the edited plan must show, wherever it is shown.
fn assert_reviews_the_edit(review: &str, marker: &Path, sha256: &str) {
    assert!(review.contains(&format!("sha256 {sha256}")), "{review}");
    assert!(review.contains("  accounts: 9\n"), "{review}");
    assert!(review.contains("  roles:    ReadOnly (9 accounts)\n"), "{review}");
    assert!(review.contains("  regions:  us-east-1 (9 accounts)\n"), "{review}");
    assert!(review.contains("  commands: 2 distinct argvs"), "{review}");
    assert!(
        review.contains(
            "    8 accounts run: echo planned\n      team000-dev (100000001111), team000-staging (100000002222), team000-sandbox (100000003333), team000-shared (100000005555), team001-dev (100000007777), … and 3 more\n"
        ),
        "{review}"
    );
    let odd = format!("    1 account runs: touch {}\n      team000-audit ({EDITED})", marker.display());
    assert!(review.contains(&odd), "{review}");
}

#[test]
fn the_dry_run_shows_every_argv_with_its_accounts_and_runs_nothing() {
    let env = TestEnv::new(PortalOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (path, marker) = (dir.path().join("plan.json"), dir.path().join("ran"));
    save_plan(&env, &path);
    set_argv(&path, EDITED, &["touch", marker.to_str().unwrap()]);
    let before = env.portal.stats();

    let output = env.fanout().args(["apply", path.to_str().unwrap(), "--dry-run"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_reviews_the_edit(&stdout_of(&output), &marker, &sha256sum(&path));
    // The run flag before `apply` is the same review.
    let before_flag = env.fanout().args(["--dry-run", "apply", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(stdout_of(&before_flag), stdout_of(&output));

    let after = env.portal.stats();
    assert_eq!(after.get_role_credentials, 0, "a review fetches no credentials");
    assert_eq!(after.list_account_roles, before.list_account_roles, "nor lists roles");
    assert!(after.list_accounts > before.list_accounts, "it lists the accounts, for their names today");
    assert!(!marker.exists(), "a review runs no command");
}

#[test]
fn the_dry_run_checks_an_approval_it_is_given_and_the_file_hash_is_the_one_to_approve() {
    let env = TestEnv::new(PortalOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    save_plan(&env, &path);
    let reviewed = sha256sum(&path);
    let file = path.to_str().unwrap();
    let ok = env.fanout().args(["apply", file, "--dry-run", "--approve", &reviewed]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", stderr_of(&ok));

    // Edited after review, checksum recomputed: the reviewed sha256 no longer applies it.
    set_argv(&path, EDITED, &["false"]);
    let refused = env.fanout().args(["apply", file, "--approve", &reviewed]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr_of(&refused));
    assert!(stderr_of(&refused).contains("is not this plan's sha256"), "{}", stderr_of(&refused));
    assert_eq!(env.portal.stats().get_role_credentials, 0);
}

#[test]
fn an_account_renamed_since_the_plan_is_shown_with_both_names() {
    let env = TestEnv::new(PortalOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    save_plan(&env, &path);
    let mut later = generated_accounts(12);
    later.iter_mut().find(|a| a.id == EDITED).unwrap().name = "audit-renamed".to_owned();
    later.retain(|a| a.id != "100000001111");
    let portal = FakePortal::start(PortalOptions { accounts: later, ..PortalOptions::default() });
    let output = env
        .fanout()
        .env("AWS_ENDPOINT_URL_SSO", portal.url())
        .args(["apply", path.to_str().unwrap(), "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let review = stdout_of(&output);
    assert!(review.contains(&format!("team000-audit → audit-renamed ({EDITED})")), "{review}");
    assert!(review.contains("team000-dev (100000001111, not listed now)"), "{review}");
    assert!(review.contains("  accounts: 9 (1 of them not listed by the portal now: skipped)\n"), "{review}");
    assert_eq!(portal.stats().get_role_credentials, 0);
}

#[test]
fn hostile_values_in_the_plan_are_escaped() {
    let env = TestEnv::new(PortalOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    save_plan(&env, &path);
    let long = "y".repeat(10_000);
    forge(&path, |accounts| {
        let account = accounts.iter_mut().find(|a| a.account_id == EDITED).unwrap();
        account.account_name = "audit\u{202e}gpj.exe\r".to_owned();
        account.argv = vec!["echo".into(), "\x1b[2J\u{202e}x\u{2066}".into(), long.clone()];
    });
    let output = env.fanout().args(["apply", path.to_str().unwrap(), "--dry-run"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let review = stdout_of(&output);
    let raw = ['\x1b', '\r', '\u{202e}', '\u{2066}'];
    assert!(!review.chars().any(|c| raw.contains(&c)), "{review:?}");
    assert!(review.contains("\\u{1b}[2J\\u{202e}x\\u{2066}"), "{review}");
    assert!(review.contains("audit\\u{202e}gpj.exe\\r → team000-audit (100000004444)"), "{review}");
    assert!(review.contains(" bytes)"), "{review}");
    assert!(review.lines().all(|line| line.len() < 4096), "a long argv is clipped: {review}");
}

#[test]
fn the_prompt_shows_the_same_review_with_renamed_accounts() {
    let Some(tmux) = Tmux::start() else { return };
    let env = TestEnv::new(PortalOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (path, marker) = (dir.path().join("plan.json"), dir.path().join("ran"));
    save_plan(&env, &path);
    set_argv(&path, EDITED, &["touch", marker.to_str().unwrap()]);
    let mut later = generated_accounts(12);
    later.iter_mut().find(|a| a.id == "100000001111").unwrap().name = "dev-renamed".to_owned();
    let portal = FakePortal::start(PortalOptions { accounts: later, ..PortalOptions::default() });

    let code: PathBuf = dir.path().join("code");
    let mut words = isolated_fanout_words(&env, &portal.url());
    words.extend(["apply".to_owned(), path.display().to_string()]);
    let code_arg = shell_words::quote(code.to_str().unwrap()).into_owned();
    let script = format!("{} > /dev/null; echo $? > {code_arg}; sleep 600", shell_words::join(&words));
    tmux.run_sized(&script, 250, 60);

    let pane = tmux.wait_for_in_whole("Run in 9 accounts? [y/N]");
    // The account renamed since the plan is named with both names; the rest of the
    // review is the dry run's.
    let renamed = "team000-dev → dev-renamed (100000001111)";
    assert!(pane.contains(renamed), "{pane}");
    assert_reviews_the_edit(&pane.replace(renamed, "team000-dev (100000001111)"), &marker, &sha256sum(&path));
    assert_eq!(portal.stats().get_role_credentials, 0, "nothing before the answer");

    tmux.type_line("n");
    let deadline = Instant::now() + Duration::from_mins(1);
    while std::fs::read_to_string(&code).map_or(true, |text| text.trim().is_empty()) {
        assert!(Instant::now() < deadline, "fanout did not finish: {}", tmux.whole_pane());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&code).unwrap().trim(), "1", "not confirmed");
    assert!(!marker.exists(), "nothing ran");
    assert_eq!(portal.stats().get_role_credentials, 0);
}
