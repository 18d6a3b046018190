//! Issue 16, round two of hostile inputs: selection. An account that renames itself to
//! another account's id is not selected by that id (point 1), an `--accounts-file` that
//! never ends is refused at a limit (point 8), and `-j 1` starts commands in selection
//! order however the credentials arrive (point 11). Each test drives the real binary
//! against the fake portal.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{Account, PortalOptions, generated_accounts};

/// The real `111111111111`, an attacker's account renamed `111111111111`, and another.
fn renamed_portal() -> PortalOptions {
    let accounts = vec![
        Account::new("111111111111", "real", &["ReadOnly"]),
        Account::new("222222222222", "111111111111", &["ReadOnly"]),
        Account::new("333333333333", "other", &["ReadOnly"]),
    ];
    PortalOptions { accounts, ..PortalOptions::default() }
}

fn run_ids(env: &TestEnv, selection: &[&str]) -> std::process::Output {
    let args = [&["--role", "ReadOnly"], selection, &["--", "echo", "{account_id}"]].concat();
    env.fanout().args(args).output().unwrap()
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn twelve_digits_select_the_account_with_that_id_never_one_named_so() {
    let env = TestEnv::new(renamed_portal());
    let file = write_file(env.home(), "ids.txt", "111111111111 # the real one\n");
    for selection in [&["--accounts", "111111111111"][..], &["--account", "111111111111"], &["--accounts-file", &file]]
    {
        let output = run_ids(&env, selection);
        assert!(output.status.success(), "{selection:?}: {}", stderr_of(&output));
        assert_eq!(stdout_of(&output), "111111111111|111111111111\n", "{selection:?}");
    }
    // The export for one account is one account's, not "selection has 2".
    for format in ["env", "process"] {
        let output = env
            .fanout()
            .args(["credentials", "--account", "111111111111", "--role", "ReadOnly", "--format", format])
            .output()
            .unwrap();
        assert!(output.status.success(), "{format}: {}", stderr_of(&output));
        let stdout = stdout_of(&output);
        assert!(stdout.contains("ASIA111111111111") && !stdout.contains("222222222222"), "{stdout}");
    }
}

#[test]
fn a_canary_named_by_id_is_that_account_alone() {
    let env = TestEnv::new(renamed_portal());
    // The canary fails: nothing else may start, the renamed account least of all.
    let script = "echo {account_id}; test {account_id} != 111111111111";
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--canary-accounts", "111111111111", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "111111111111|111111111111\n", "{}", stderr_of(&output));
}

#[test]
fn name_prefix_chooses_an_account_by_a_name_of_twelve_digits() {
    let env = TestEnv::new(renamed_portal());
    let file = write_file(env.home(), "names.txt", "name:111111111111\n");
    for selection in [&["--accounts", "name:111111111111"][..], &["--accounts-file", &file]] {
        let output = run_ids(&env, selection);
        assert!(output.status.success(), "{selection:?}: {}", stderr_of(&output));
        assert_eq!(stdout_of(&output), "222222222222|222222222222\n", "{selection:?}");
    }
    let output = run_ids(&env, &["--accounts", "id:333333333333,real"]);
    assert_eq!(common::sorted_lines(&stdout_of(&output)), ["111111111111|111111111111", "333333333333|333333333333"]);
    // The canary by name: it fails, and only it ran.
    let script = "echo {account_id}; exit 1";
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--canary-accounts", "name:111111111111", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&output), "222222222222|222222222222\n", "{}", stderr_of(&output));
    // An entry that names nobody is reported as written.
    let output = run_ids(&env, &["--accounts", "real,name:444444444444"]);
    assert!(stderr_of(&output).contains("no account named name:444444444444"), "{}", stderr_of(&output));
}

#[test]
fn a_bad_prefixed_entry_is_a_usage_error() {
    let env = TestEnv::new(renamed_portal());
    for entry in ["id:12345", "name:"] {
        let output = run_ids(&env, &["--accounts", entry]);
        assert_eq!(output.status.code(), Some(2), "{entry}");
        assert!(stderr_of(&output).contains(&format!("invalid account {entry:?}")), "{}", stderr_of(&output));
        assert!(stdout_of(&output).is_empty());
    }
}

#[test]
fn an_accounts_file_that_never_ends_is_refused_at_once() {
    let env = TestEnv::new(renamed_portal());
    let started = Instant::now();
    let output = run_ids(&env, &["--accounts-file", "/dev/zero"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("cannot read --accounts-file /dev/zero") && stderr.contains("not a regular file"),
        "{stderr}"
    );
    assert!(stdout_of(&output).is_empty());

    let huge = env.home().join("huge.txt");
    let line = "111111111111\n";
    std::fs::write(&huge, line.repeat((16 << 20) / line.len() + 1)).unwrap();
    let output = run_ids(&env, &["--accounts-file", huge.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("larger than the 16 MiB limit"), "{}", stderr_of(&output));
}

#[test]
fn an_accounts_pipe_is_read_to_the_same_limit() {
    let env = TestEnv::new(renamed_portal());
    let fifo = env.home().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // A list made on the fly, as `--accounts-file <(...)` is, works.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, "real\n").unwrap())
    };
    let output = run_ids(&env, &["--accounts-file", fifo.to_str().unwrap()]);
    writer.join().unwrap();
    assert_eq!(stdout_of(&output), "111111111111|111111111111\n", "{}", stderr_of(&output));
    // One that never ends is refused at the limit.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let chunk = vec![b'1'; 65536];
            while file.write_all(&chunk).is_ok() {}
        })
    };
    let output = run_ids(&env, &["--accounts-file", fifo.to_str().unwrap()]);
    writer.join().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("larger than the 16 MiB limit"), "{}", stderr_of(&output));
}

/// The account ids in the order a dry run prints them.
fn dry_run_order(env: &TestEnv) -> Vec<String> {
    let output = env.fanout().args(["--role", "ReadOnly", "--dry-run", "--", "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    stdout_of(&output).lines().skip(1).map(|line| line.split_whitespace().next().unwrap().to_owned()).collect()
}

#[test]
fn at_j_1_commands_start_in_selection_order_whatever_order_credentials_arrive_in() {
    // Listed out of id order, so that the selection order is the listing's, not a sort.
    let mut accounts = generated_accounts(10);
    accounts.retain(|account| account.roles.iter().any(|role| role == "ReadOnly"));
    accounts.reverse();
    let options =
        PortalOptions { accounts, credentials_jitter: Duration::from_millis(150), ..PortalOptions::default() };
    let env = TestEnv::new(options);
    let expected = dry_run_order(&env);
    assert_eq!(expected.len(), 9, "{expected:?}");
    let started = env.home().join("started");
    for run in 0..3 {
        std::fs::write(&started, "").unwrap();
        let script = format!("echo {{account_id}} >> {}", started.display());
        let output = env.fanout().args(["--role", "ReadOnly", "-j", "1", "--", "sh", "-c", &script]).output().unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        let order: Vec<String> = std::fs::read_to_string(&started).unwrap().lines().map(str::to_owned).collect();
        assert_eq!(order, expected, "run {run}");
        // Credentials were still fetched ahead: the portal had several calls in flight.
        assert!(env.portal.stats().max_in_flight > 1, "credentials fetched one at a time");
    }
}
