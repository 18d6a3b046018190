//! `fanout credentials`: each format through the binary against the fake portal, the
//! json file's safety, the article's script as the reference, real clients reading the
//! `credential_process` profile; and credentials re-fetched near expiry for a late child.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{Account, PortalOptions, credentials_for, generated_accounts};
use serde_json::Value;

/// The accounts of the default portal that have `ReadOnly`.
fn with_read_only() -> Vec<Account> {
    generated_accounts(12).into_iter().filter(|a| a.roles.iter().any(|r| r == "ReadOnly")).collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn now_millis() -> u64 {
    u64::try_from(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Whether `program` runs here; a test with a real client skips (with the reason on
/// stderr) when it does not.
fn has(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_json_file_is_the_articles_file_0600_and_whole() {
    let env = TestEnv::new(PortalOptions { latency: Duration::from_millis(150), ..PortalOptions::default() });
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("sso_role_credentials.json");
    let mut child = env
        .std_fanout()
        .args(["credentials", "--role", "ReadOnly", "--output-file"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every file that ever appears in the directory, and its mode when seen.
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        for entry in std::fs::read_dir(out_dir.path()).unwrap().flatten() {
            if let Ok(meta) = entry.metadata() {
                seen.push((entry.file_name(), meta.permissions().mode() & 0o777));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(seen.iter().all(|(_, mode)| *mode == 0o600), "a file was readable by others: {seen:?}");
    assert!(seen.iter().any(|(name, _)| name.to_string_lossy().starts_with(".fanout-")), "no temp file seen");
    let left: Vec<_> = std::fs::read_dir(out_dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, [file.file_name().unwrap()], "a temp file was left");
    assert_eq!(mode(&file), 0o600);
    let written: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let expected = with_read_only();
    assert_eq!(written.len(), expected.len());
    for (entry, account) in written.iter().zip(&expected) {
        assert_eq!(entry["accountId"], account.id.as_str(), "in selection order");
        assert_eq!(entry["accountName"], account.name.as_str());
        assert_eq!(entry["emailAddress"], account.email.as_str());
        let (key, secret, session) = credentials_for(&account.id, "ReadOnly");
        let role = &entry["roles"]["ReadOnly"];
        assert_eq!((role["accessKeyId"].as_str(), role["secretAccessKey"].as_str()), (Some(&*key), Some(&*secret)));
        assert_eq!(role["sessionToken"], session.as_str());
        let expiration = role["expiration"].as_u64().unwrap();
        assert!(expiration.abs_diff(now_millis() + 3_600_000) < 120_000, "epoch ms, an hour ahead: {expiration}");
    }
    let stderr = stderr_of(&output);
    assert!(stderr.contains("written to") && stderr.contains("succeeded"), "{stderr}");
}

#[test]
fn a_stopped_export_leaves_no_file_and_no_temp_file() {
    let env = TestEnv::new(PortalOptions { latency: Duration::from_millis(300), ..PortalOptions::default() });
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("creds.json");
    let child = env
        .std_fanout()
        .args(["credentials", "--role", "ReadOnly", "--portal-concurrency", "1", "--output-file"])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the temp file exists the run is under way; then Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(out_dir.path()).unwrap().next().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: a plain kill(2) of the child this test spawned.
    unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr_of(&output));
    let left: Vec<_> = std::fs::read_dir(out_dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(stderr_of(&output).contains("was not written"), "{}", stderr_of(&output));
}

#[test]
fn an_existing_file_is_replaced_by_a_0600_one() {
    let env = TestEnv::new(PortalOptions::default());
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("creds.json");
    std::fs::write(&file, "old").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = env
        .fanout()
        .args(["credentials", "--role", "ReadOnly", "--match", "team000-dev", "--output-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(mode(&file), 0o600);
    let written: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written.len(), 1);
}

#[test]
fn json_needs_a_named_file_and_goes_to_stdout_only_with_a_dash() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env.fanout().args(["credentials", "--role", "ReadOnly"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("--output-file"), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty());
    assert_eq!(env.portal.stats().get_role_credentials, 0);
    let output = env.fanout().args(["credentials", "--role", "ReadOnly", "--output-file", "-"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let written: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(written.len(), with_read_only().len());
    let output =
        env.fanout().args(["credentials", "--role", "ReadOnly", "--format", "jsonl", "--output-file", "x"]).output();
    assert_eq!(output.unwrap().status.code(), Some(2));
}

#[test]
fn jsonl_prints_each_account_as_its_credentials_arrive() {
    let accounts = generated_accounts(6);
    let slow = accounts[5].id.clone();
    let env = TestEnv::new(PortalOptions {
        accounts: accounts.clone(),
        slow_credentials: [(slow.clone(), Duration::from_secs(3))].into(),
        ..PortalOptions::default()
    });
    let started = Instant::now();
    let mut child = env
        .std_fanout()
        .args(["credentials", "--role", "ReadOnly", "--format", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut first_at = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        first_at.get_or_insert_with(|| started.elapsed());
        lines.push(serde_json::from_str::<Value>(&line.unwrap()).unwrap());
    }
    let ended_at = started.elapsed();
    assert!(child.wait().unwrap().success());
    assert_eq!(lines.len(), accounts.len(), "one line an account");
    assert_eq!(lines.last().unwrap()["accountId"], slow.as_str(), "the slow account comes last");
    let first_at = first_at.unwrap();
    let waited = ended_at.checked_sub(first_at).unwrap();
    assert!(waited >= Duration::from_secs(2), "first line at {first_at:?}, end at {ended_at:?}");
    for line in &lines {
        let id = line["accountId"].as_str().unwrap();
        assert_eq!(line["roles"]["ReadOnly"]["accessKeyId"], credentials_for(id, "ReadOnly").0.as_str());
    }
}

#[test]
fn env_lines_set_one_accounts_keys_in_a_shell() {
    let env = TestEnv::new(PortalOptions::default());
    let fanout = assert_cmd::cargo::cargo_bin("fanout");
    let script = "eval \"$(\"$FANOUT\" credentials --account team000-dev --role ReadOnly --format env)\" && \
                  echo \"$AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY $AWS_SESSION_TOKEN $AWS_CREDENTIAL_EXPIRATION $FANOUT_ACCOUNT_NAME\"";
    let output = env.isolated("sh").args(["-c", script]).env("FANOUT", &fanout).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let (key, secret, session) = credentials_for("100000001111", "ReadOnly");
    let stdout = stdout_of(&output);
    assert!(stdout.starts_with(&format!("{key} {secret} {session} 20")), "{stdout}");
    assert!(stdout.trim_end().ends_with("Z team000-dev"), "{stdout}");
}

#[test]
fn env_and_process_refuse_any_count_but_one_before_fetching() {
    let env = TestEnv::new(PortalOptions::default());
    for format in ["env", "process"] {
        for (selection, count) in [("--match=nothing-*", "0"), ("--accounts=team000-dev,team000-audit", "2")] {
            let output = env
                .fanout()
                .args(["credentials", "--role", "ReadOnly", "--format", format, selection])
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(2), "{format} {selection}");
            let stderr = stderr_of(&output);
            assert!(stderr.contains(&format!("has {count}")) && stderr.contains("--account"), "{stderr}");
            assert!(output.stdout.is_empty());
        }
    }
    assert_eq!(env.portal.stats().get_role_credentials, 0, "nothing fetched");
}

#[test]
fn process_prints_the_credential_process_json_and_nothing_else() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env
        .fanout()
        .args(["credentials", "--account", "100000001111", "--role", "ReadOnly", "--format", "process"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stderr_of(&output), "", "a credential_process is quiet");
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    let (key, secret, session) = credentials_for("100000001111", "ReadOnly");
    assert_eq!(value["Version"], 1);
    assert_eq!(value["AccessKeyId"], key.as_str());
    assert_eq!(value["SecretAccessKey"], secret.as_str());
    assert_eq!(value["SessionToken"], session.as_str());
    let expiration = value["Expiration"].as_str().unwrap();
    let expires = humantime::parse_rfc3339(expiration).unwrap();
    assert!(expires > SystemTime::now() + Duration::from_mins(50), "{expiration}");
}

#[test]
fn no_secret_reaches_stderr_or_the_cache_even_at_vv() {
    let env = TestEnv::new(PortalOptions::default());
    let out_dir = tempfile::tempdir().unwrap();
    let output = env
        .fanout()
        .args(["-vv", "credentials", "--role", "ReadOnly", "--output-file"])
        .arg(out_dir.path().join("c.json"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    let mut cache = String::new();
    for entry in walk(&env.home().join(".cache")) {
        cache.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
    }
    assert!(!cache.is_empty(), "the inventory cache was written");
    for account in with_read_only() {
        let (key, secret, session) = credentials_for(&account.id, "ReadOnly");
        for leaked in [&key, &secret, &session] {
            assert!(!stderr.contains(leaked.as_str()), "{leaked} in stderr");
            assert!(!cache.contains(leaked.as_str()), "{leaked} in the cache");
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn the_json_file_matches_what_the_articles_script_writes() {
    if !has("python3", &["-c", "import boto3"]) {
        eprintln!("skipped: python3 with boto3 is not installed");
        return;
    }
    let env = TestEnv::new(PortalOptions::default());
    let out_dir = tempfile::tempdir().unwrap();
    let ours = out_dir.path().join("fanout.json");
    let theirs = out_dir.path().join("seed.json");
    let output = env.fanout().args(["credentials", "--role", "ReadOnly", "--output-file"]).arg(&ours).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    // The article's algorithm, as the project's serial reference writes it.
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/serial_reference.py");
    let output = env
        .isolated("python3")
        .arg(&seed)
        .env("START_URL", "https://corp.awsapps.com/start")
        .env("ROLE_NAME", "ReadOnly")
        .env("OUTPUT_FILE", &theirs)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(output.status.success(), "serial reference: {}", stderr_of(&output));
    let ours: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&ours).unwrap()).unwrap();
    let theirs: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&theirs).unwrap()).unwrap();
    // The script keeps accounts without the role (with its other roles as `{}`); the
    // export skips them, as a run does. Every account with the role, field by field:
    let with_role: Vec<&Value> = theirs.iter().filter(|a| a["roles"]["ReadOnly"].is_object()).collect();
    assert_eq!(ours.len(), with_role.len());
    for (mine, reference) in ours.iter().zip(with_role) {
        for field in ["accountId", "accountName", "emailAddress"] {
            assert_eq!(mine[field], reference[field], "{field}");
        }
        let (mine, reference) = (&mine["roles"]["ReadOnly"], &reference["roles"]["ReadOnly"]);
        for field in ["accessKeyId", "secretAccessKey", "sessionToken"] {
            assert_eq!(mine[field], reference[field], "{field}");
        }
        let (a, b) = (mine["expiration"].as_u64().unwrap(), reference["expiration"].as_u64().unwrap());
        assert!(a.abs_diff(b) < 60_000, "both epoch ms of the same hour: {a} {b}");
    }
}

/// A profile `p` whose credentials come from `fanout credentials --format process`,
/// added to the test's AWS config (which keeps the sso-session fanout logs in with).
fn write_process_profile(env: &TestEnv) {
    let fanout = assert_cmd::cargo::cargo_bin("fanout");
    let mut config = std::fs::read_to_string(env.config_path()).unwrap();
    let _ = write!(
        config,
        "\n[profile p]\nregion = eu-west-1\ncredential_process = {} credentials --sso-session corp --account 100000001111 --role ReadOnly --format process\n",
        fanout.display()
    );
    env.write_config(&config);
}

#[test]
fn boto3_reads_the_credential_process_profile() {
    if !has("python3", &["-c", "import boto3"]) {
        eprintln!("skipped: python3 with boto3 is not installed");
        return;
    }
    let env = TestEnv::new(PortalOptions::default());
    write_process_profile(&env);
    let script = "import boto3\n\
                  c = boto3.Session(profile_name='p').get_credentials()\n\
                  f = c.get_frozen_credentials()\n\
                  print(c.method, f.access_key, f.secret_key, f.token)";
    // As the AWS CLI runs it: AWS_PROFILE names the profile whose process fanout is.
    let output = env.isolated("python3").args(["-c", script]).env("AWS_PROFILE", "p").output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let (key, secret, session) = credentials_for("100000001111", "ReadOnly");
    assert_eq!(stdout_of(&output).trim(), format!("custom-process {key} {secret} {session}"));
}

#[test]
fn the_aws_cli_reads_the_credential_process_profile() {
    if !has("aws", &["--version"]) {
        eprintln!("skipped: the AWS CLI is not installed");
        return;
    }
    let env = TestEnv::new(PortalOptions::default());
    write_process_profile(&env);
    let output = env.isolated("aws").args(["configure", "list", "--profile", "p"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let key_line = stdout.lines().find(|l| l.trim_start().starts_with("access_key")).unwrap_or_default();
    // The CLI masks all but the key's last four characters.
    assert!(key_line.contains("1111") && key_line.contains("custom-process"), "{stdout}");
}

#[test]
fn credentials_near_expiry_are_fetched_again_for_a_late_child() {
    let accounts = generated_accounts(2);
    let env =
        TestEnv::new(PortalOptions { accounts, credentials_ttl: Duration::from_secs(5), ..PortalOptions::default() });
    // With -j 1 the second child waits ~3 s for the first: its credentials, fetched at
    // the start, have ~2 s left when its slot frees, within the 3 s margin.
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "-j", "1", "--expiry-margin", "3s", "--"])
        .args(["sh", "-c", "echo \"$AWS_CREDENTIAL_EXPIRATION $(date +%s)\"; sleep 3"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().get_role_credentials, 3, "the late account's credentials fetched again, once");
    for line in stdout_of(&output).lines() {
        let (_, seen) = line.split_once('|').unwrap();
        let (expiration, started) = seen.split_once(' ').unwrap();
        let expires = humantime::parse_rfc3339(expiration).unwrap();
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(started.parse().unwrap());
        // The true expiry of fresh credentials: about the 5 s TTL after the child started.
        let left = expires.duration_since(started).unwrap_or_default();
        assert!(left >= Duration::from_secs(3) && left <= Duration::from_secs(7), "{line}: {left:?} left");
    }
}

#[test]
fn a_zero_margin_fetches_nothing_again() {
    let env = TestEnv::new(PortalOptions {
        accounts: generated_accounts(2),
        credentials_ttl: Duration::from_secs(5),
        ..PortalOptions::default()
    });
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "-j", "1", "--expiry-margin", "0s", "--", "sleep", "2"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().get_role_credentials, 2, "still good when the slot frees: used as fetched");
}
