//! Hostile and broken inputs: names and ids from a portal that lies, listings that
//! loop, caches and files that cannot be trusted, outputs that cannot be written, and
//! the machine's limits. Each test drives the real binary against the fake portal.

mod common;

use std::time::{Duration, Instant};

use common::{TestEnv, sorted_lines, stderr_of, stdout_of};
use fake_portal::{Account, Misbehaviour, PortalOptions, generated_accounts};

fn portal_with(accounts: Vec<Account>) -> PortalOptions {
    PortalOptions { accounts, ..PortalOptions::default() }
}

#[test]
fn ids_and_roles_the_portal_should_not_send_are_skipped_with_a_warning() {
    let accounts = vec![
        Account::new("111111111111", "good", &["ReadOnly"]),
        Account::new("12345", "short-id", &["ReadOnly"]),
        Account::new("../../../tmp", "path-id", &["ReadOnly"]),
        Account::new("222222222222", "odd-role", &["Read Only;rm"]),
    ];
    let env = TestEnv::new(portal_with(accounts));
    let output = env.fanout().args(["accounts", "--output", "json"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|a| a["account_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["111111111111", "222222222222"]);
    assert_eq!(listed[1]["roles"], serde_json::json!([]), "the invalid role is dropped");
    let stderr = stderr_of(&output);
    assert!(stderr.contains(r#"id "12345" is not 12 digits"#), "{stderr}");
    assert!(stderr.contains("not a valid IAM role name"), "{stderr}");

    let run = env.fanout().args(["--role", "ReadOnly", "--", "echo", "{account_id}"]).output().unwrap();
    assert_eq!(stdout_of(&run), "111111111111|111111111111\n", "{}", stderr_of(&run));
}

#[test]
fn control_characters_in_names_cannot_forge_lines_or_drive_the_terminal() {
    let forged = "evil\n222222222222|forged line\x1b[2J";
    let accounts = vec![Account::new("111111111111", forged, &["ReadOnly"])];
    let env = TestEnv::new(portal_with(accounts));
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--prefix", "{account_name}", "--", "sh", "-c", "echo out; exit 3"])
        .output()
        .unwrap();
    let stdout = stdout_of(&output);
    assert_eq!(stdout, "evil\\n222222222222|forged line\\u{1b}[2J|out\n");
    let stderr = stderr_of(&output);
    assert!(
        !stderr.contains('\x1b') && stderr.contains(r"(evil\n222222222222|forged line\u{1b}[2J) [exit]"),
        "{stderr}"
    );
    // JSON keeps the raw value.
    let json = env.fanout().args(["accounts", "--output", "json"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(listed[0]["account_name"], forged);
}

#[test]
fn a_name_two_accounts_bear_is_ambiguous_and_nothing_runs() {
    let accounts = vec![
        Account::new("111111111111", "prod", &["ReadOnly"]),
        Account::new("222222222222", "dev", &["ReadOnly"]),
        Account::new("333333333333", "prod", &["ReadOnly"]),
    ];
    let env = TestEnv::new(portal_with(accounts));
    let output = env.fanout().args(["--role", "ReadOnly", "--accounts", "prod", "--", "echo", "ran"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout_of(&output), "");
    assert_eq!(env.portal.stats().get_role_credentials, 0);
    let stderr = stderr_of(&output);
    assert!(stderr.contains("111111111111, 333333333333") && stderr.contains("by id"), "{stderr}");
    let by_id = env.fanout().args(["--role", "ReadOnly", "--accounts", "333333333333,dev", "--", "true"]).output();
    assert!(by_id.unwrap().status.success());
}

#[test]
fn a_looping_page_token_stops_the_listing_with_exit_4_and_nothing_runs_twice() {
    let env = TestEnv::new(PortalOptions { misbehave: Some(Misbehaviour::LoopNextToken), ..PortalOptions::default() });
    let started = Instant::now();
    let output = env.fanout().args(["--role", "ReadOnly", "--", "echo", "ran"]).output().unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", stderr_of(&output));
    assert!(started.elapsed() < Duration::from_secs(20));
    let lines = sorted_lines(&stdout_of(&output));
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(lines, unique, "an account ran twice");
    assert_eq!(lines.len(), 11, "the first page's accounts (11 with the role) ran once each");
    assert!(stderr_of(&output).contains("returned a page token it had returned before"), "{}", stderr_of(&output));
    assert!(env.portal.stats().list_accounts <= 2);
    // Nothing of a broken listing is cached for the next run.
    let again = env.fanout().args(["-v", "--role", "ReadOnly", "--dry-run", "--", "true"]).output().unwrap();
    assert!(stderr_of(&again).contains("listed from the portal"), "{}", stderr_of(&again));
}

#[test]
fn a_looping_role_listing_fails_the_account_not_the_machine() {
    let env = TestEnv::new(PortalOptions { misbehave: Some(Misbehaviour::LoopNextToken), ..PortalOptions::default() });
    let output = env.fanout().args(["accounts"]).output().unwrap();
    assert_eq!(output.status.code(), Some(4));
    assert!(stderr_of(&output).contains("page token"), "{}", stderr_of(&output));
}

#[test]
fn an_account_on_two_pages_runs_once_and_is_cached_once() {
    let mut accounts = generated_accounts(5);
    accounts.insert(3, accounts[0].clone());
    let env = TestEnv::new(PortalOptions { accounts, page_size: 2, ..PortalOptions::default() });
    let output = env.fanout().args(["--role", "ReadOnly", "--", "echo", "ran"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output).lines().count(), 5);
    assert!(stderr_of(&output).contains("listed twice"), "{}", stderr_of(&output));
    let cached = env.fanout().args(["--role", "ReadOnly", "--", "echo", "ran"]).output().unwrap();
    assert!(cached.status.success(), "{}", stderr_of(&cached));
    assert_eq!(stdout_of(&cached).lines().count(), 5);
}

#[test]
fn an_html_answer_says_what_it_was() {
    let env = TestEnv::new(PortalOptions { misbehave: Some(Misbehaviour::Html), ..PortalOptions::default() });
    let output = env.fanout().args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("answered 200 with text/html, not JSON"), "{stderr}");
    assert!(stderr.contains("AWS_ENDPOINT_URL_SSO") && stderr.contains("<html>"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "the page's ESC reached the terminal: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_portal_that_throttles_forever_is_given_up_on_in_bounded_time() {
    let accounts = generated_accounts(30);
    let throttled = accounts.iter().map(|a| (a.id.clone(), u32::MAX)).collect();
    let env = TestEnv::new(PortalOptions { accounts, throttled_credentials: throttled, ..PortalOptions::default() });
    let started = Instant::now();
    let output =
        env.fanout().args(["--role", "ReadOnly", "--throttle-timeout", "2", "--", "echo", "ran"]).output().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("[throttled]") && stderr.contains("--throttle-timeout"), "{stderr}");
    assert_eq!(stdout_of(&output), "");

    let listing =
        TestEnv::new(PortalOptions { misbehave: Some(Misbehaviour::ThrottleForever), ..PortalOptions::default() });
    let started = Instant::now();
    let output = listing.fanout().args(["--throttle-timeout", "1", "accounts"]).output().unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", stderr_of(&output));
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn flags_are_bounded_and_never_panic() {
    let env = TestEnv::new(PortalOptions::default());
    for args in [
        &["-j", "18446744073709551615", "--role", "R", "--", "true"][..],
        &["-j", "0", "--role", "R", "--", "true"][..],
        &["--portal-concurrency", "100000", "accounts"][..],
        &["--throttle-timeout", "0", "accounts"][..],
        &["--role", "R", "--region", "eu-west-1; rm -rf ~", "--", "true"][..],
    ] {
        let output = env.fanout().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr_of(&output));
    }
}

#[test]
fn a_full_stdout_is_an_error_not_success() {
    let env = TestEnv::new(PortalOptions::default());
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let output = env
        .std_fanout()
        .args(["--role", "ReadOnly", "--", "sh", "-c", "echo some output"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("cannot write to standard output: No space left on device"), "{stderr}");
}

#[test]
fn a_full_stderr_never_panics_and_never_reads_as_success() {
    let env = TestEnv::new(PortalOptions::default());
    for args in [&["--role", "ReadOnly", "--", "true"][..], &["--role", "ReadOnly", "--", "false"][..], &["nope"][..]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let output = env.std_fanout().args(args).stderr(full).output().unwrap();
        let code = output.status.code();
        assert!(matches!(code, Some(1 | 2)), "{args:?}: {code:?}");
    }
}

#[test]
fn a_corrupt_inventory_cache_is_ignored_and_rewritten() {
    let env = TestEnv::new(PortalOptions::default());
    let first = env.fanout().args(["--role", "ReadOnly", "--", "echo", "ran"]).output().unwrap();
    assert!(first.status.success());
    let cache = std::fs::read_dir(env.home().join(".cache/fanout"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("inventory-"))
        .unwrap();
    let good = std::fs::read_to_string(&cache).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines[4] = "{\"account_id\": oops";
    std::fs::write(&cache, lines.join("\n") + "\n").unwrap();
    let output = env.fanout().args(["--role", "ReadOnly", "--", "echo", "ran"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(sorted_lines(&stdout_of(&output)), sorted_lines(&stdout_of(&first)));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("ignoring the inventory cache") && stderr.contains("line 5"), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.contains("inventory")).count(), 1, "{stderr}");
    assert_eq!(std::fs::read_to_string(&cache).unwrap().lines().count(), good.lines().count(), "rewritten");
}

#[test]
fn a_cache_in_a_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new(PortalOptions::default());
    let shared = env.home().join("shared-cache");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = || env.fanout().env("XDG_CACHE_HOME", &shared).args(["--role", "ReadOnly", "--", "true"]).output();
    let output = run().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("writable by others"), "{}", stderr_of(&output));
    assert!(!shared.join("fanout").exists(), "no cache written there");
}

#[test]
fn endless_and_odd_files_are_refused_with_the_file_named() {
    let env = TestEnv::new(PortalOptions::default());
    let token = fake_portal::home::token_cache_path(env.home(), "corp");
    std::fs::remove_file(&token).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &token).unwrap();
    let output = env.fanout().args(["accounts"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr_of(&output).contains("not a regular file"), "{}", stderr_of(&output));

    std::fs::remove_file(env.config_path()).unwrap();
    std::fs::create_dir(env.config_path()).unwrap();
    let output = env.fanout().args(["accounts"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&env.config_path().display().to_string()) && stderr.contains("not a regular file"),
        "{stderr}"
    );

    std::fs::remove_dir(env.config_path()).unwrap();
    env.write_config("[sso-session corp]\nsso_start_url = x\nthis is not ini\n");
    let output = env.fanout().args(["accounts"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("line 3") && stderr.lines().count() == 1, "{stderr}");
}

#[test]
fn an_expiry_with_an_offset_and_a_token_with_a_line_break() {
    let env = TestEnv::new(PortalOptions::default());
    let token = fake_portal::home::token_cache_path(env.home(), "corp");
    let body = serde_json::json!({"accessToken": fake_portal::DEFAULT_TOKEN, "expiresAt": "2099-01-01T00:00:00+00:00"});
    std::fs::write(&token, body.to_string()).unwrap();
    let output = env.fanout().args(["accounts"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));

    let body = serde_json::json!({"accessToken": "abc\r\n", "expiresAt": "2099-01-01T00:00:00Z"});
    std::fs::write(&token, body.to_string()).unwrap();
    let output = env.fanout().args(["accounts"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("carriage return") && !stderr.contains("could not reach"), "{stderr}");
}

#[test]
fn a_low_open_file_limit_slows_the_run_down_but_fails_no_account() {
    let env = TestEnv::new(portal_with(generated_accounts(104)));
    let fanout = assert_cmd::cargo::cargo_bin("fanout");
    // `ulimit -n` in sh lowers the hard limit too, so fanout cannot raise it back.
    let limited = env
        .isolated("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\""])
        .arg(&fanout)
        .args(["--role", "ReadOnly,AdministratorAccess", "-j", "60", "--", "sh", "-c", "sleep 0.05; echo ok"])
        .output()
        .unwrap();
    assert!(limited.status.success(), "{}", stderr_of(&limited));
    assert_eq!(stdout_of(&limited).lines().count(), 104);
    let stderr = stderr_of(&limited);
    assert!(stderr.contains("open-file limit (ulimit -n 64)") && stderr.contains("-j 60"), "{stderr}");
}

#[test]
fn bearer_tokens_and_other_credentials_are_not_inherited() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env
        .fanout()
        .env("AWS_BEARER_TOKEN_BEDROCK", "inherited-bedrock-token")
        .env("AWS_BEARER_TOKEN_SOMETHING_NEW", "inherited-other-token")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds")
        .args(["--role", "ReadOnly", "--match", "team000-dev", "--", "env"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = stdout_of(&output);
    assert!(!stdout.contains("inherited") && !stdout.contains("AWS_CONTAINER"), "{stdout}");
    assert!(stdout.contains("AWS_ACCESS_KEY_ID=ASIA"), "{stdout}");
}

#[test]
fn a_storm_of_errors_spends_the_shared_retry_budget_instead_of_retrying_every_call() {
    let accounts = generated_accounts(150);
    let failing = accounts.iter().map(|a| a.id.clone()).collect();
    let env = TestEnv::new(PortalOptions { accounts, failing_credentials: failing, ..PortalOptions::default() });
    let output = env.fanout().args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("the retry budget is spent"), "{stderr}");
    let calls = env.portal.stats().server_errors;
    // 135 accounts have the role; each would be tried 3 times without the budget.
    assert!(calls < 135 * 3, "{calls} calls: every one was retried to its own limit");
}

#[test]
fn no_account_name_runs_as_code_in_any_quoting_context() {
    let env_dir = tempfile::tempdir().unwrap();
    let marker = env_dir.path().join("pwned");
    let m = marker.display();
    let names = [
        format!("q$(touch {m})"),
        format!("q`touch {m}`"),
        format!("it's'; touch {m}; echo '"),
        format!("say \"hi\"; touch {m}; echo \""),
        format!("${{IFS}}$(touch {m})\\"),
        "-n".to_owned(),
    ];
    let accounts: Vec<Account> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Account::new(&format!("{:012}", 111_111_111_111u64 + i as u64), name, &["ReadOnly"]))
        .collect();
    let env = TestEnv::new(portal_with(accounts));
    for script in [
        "printf '%s\\n' {account_name}",
        "printf '%s\\n' '{account_name}'",
        "printf '%s\\n' \"{account_name}\"",
        "printf '%s\\n' \"$(printf '%s' {account_name})\"",
        "printf '%s\\n' x{account_name}y",
    ] {
        for shell in ["sh", "bash"] {
            let output =
                env.fanout().args(["--role", "ReadOnly", "-j", "1", "--", shell, "-ec", script]).output().unwrap();
            assert!(output.status.success(), "{shell} {script}: {}", stderr_of(&output));
            let printed: Vec<String> =
                stdout_of(&output).lines().map(|line| line.split_once('|').unwrap().1.to_owned()).collect();
            let expected: Vec<String> = names
                .iter()
                .map(|name| if script.contains("x{") { format!("x{name}y") } else { name.clone() })
                .collect();
            assert_eq!(sorted(printed), sorted(expected), "{shell} {script}");
            assert!(!marker.exists(), "{shell} {script}: a name ran as code");
        }
    }
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

#[test]
fn a_name_where_no_quoting_is_safe_is_refused_before_anything_runs() {
    let env = TestEnv::new(PortalOptions::default());
    for command in [
        &["sh", "-c", "sh -c 'echo {account_name}'"][..],
        &["bash", "-c", "eval echo {account_name}"][..],
        &["sh", "-c", "cat <<EOF\n{account_name}\nEOF"][..],
        &["python3", "-c", "print('{account_name}')"][..],
        &["{account_name}.sh"][..],
    ] {
        let output = env.fanout().args(["--role", "ReadOnly", "--"]).args(command).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{command:?}: {}", stderr_of(&output));
        assert!(stderr_of(&output).contains("FANOUT_ACCOUNT_NAME"), "{command:?}: {}", stderr_of(&output));
        assert_eq!(env.portal.stats().get_role_credentials, 0);
    }
    // Ids are checked to be digits: they stay allowed in interpreter code.
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--match", "team000-dev", "--", "python3", "-c", "print({account_id} + 1)"])
        .output()
        .unwrap();
    if output.status.code() != Some(2) || !stderr_of(&output).contains("not found") {
        assert!(output.status.success(), "{}", stderr_of(&output));
        assert_eq!(stdout_of(&output), "100000001111|100000001112\n");
    }
}
