//! Issue 16, points 4 and 5: no failed write reads as success, and appending is appending.
//!
//! A joblog, a CI report or an export file that cannot be written (`/dev/full`, a full
//! tmpfs) fails the run with exit 1 and one line naming it, after every account ran and
//! the other outputs were written; `--resume` skips the torn last line such a log ends
//! in. `--summary-markdown` appends in one `O_APPEND` write, so what a shell appends
//! around fanout, a symlink and a second appender all survive.

mod common;

use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;
use std::process::Output;

use common::{TestEnv, sorted_lines, stderr_of, stdout_of};
use fake_portal::{PortalOptions, generated_accounts};

/// 12 accounts, 11 with the role `ReadOnly` (the tenth has none).
fn env(accounts: usize) -> TestEnv {
    TestEnv::new(PortalOptions { accounts: generated_accounts(accounts), ..PortalOptions::default() })
}

/// `id|ok` for every account of `env(n)` that has the role.
fn every_ok_line(n: usize) -> Vec<String> {
    let accounts = generated_accounts(n);
    let ids = accounts.iter().enumerate().filter(|(i, _)| i % 10 != 9).map(|(_, a)| format!("{}|ok", a.id));
    sorted_lines(&ids.collect::<Vec<_>>().join("\n"))
}

/// The run failed (exit 1) and said once, in one line, that `what` `path` could not be
/// written; nothing about it was a warning.
fn assert_one_unwritten(output: &Output, what: &str, path: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let line = format!("error: cannot write the {what} {path}: No space left on device");
    assert_eq!(stderr.matches(&line).count(), 1, "one line naming the file: {stderr}");
    assert_eq!(stderr.matches(path).count(), 1, "{stderr}");
    assert!(!stderr.to_lowercase().contains("warn"), "no warnings: {stderr}");
    assert!(
        std::fs::metadata("/dev/full").unwrap().file_type().is_char_device(),
        "/dev/full is written to, never replaced"
    );
}

#[test]
fn a_joblog_on_dev_full_fails_the_run_once_and_every_account_still_runs() {
    let env = env(24);
    let junit = env.home().join("junit.xml");
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--joblog", "/dev/full", "--junit", junit.to_str().unwrap(), "--", "echo", "ok"])
        .output()
        .unwrap();
    assert_one_unwritten(&output, "joblog", "/dev/full");
    assert_eq!(sorted_lines(&stdout_of(&output)), every_ok_line(24), "every account ran");
    assert!(stderr_of(&output).contains("24 accounts selected"), "the summary is printed: {}", stderr_of(&output));
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 24, "the other outputs are written: {junit}");
}

#[test]
fn each_report_on_dev_full_fails_the_run_once_and_the_others_are_written() {
    for (flag, what) in
        [("--junit", "JUnit report"), ("--summary-markdown", "Markdown summary"), ("--report", "HTML report")]
    {
        let env = env(12);
        let log = env.home().join("run.log");
        let output = env
            .fanout()
            .args(["--role", "ReadOnly", flag, "/dev/full", "--joblog", log.to_str().unwrap(), "--", "echo", "ok"])
            .output()
            .unwrap();
        assert_one_unwritten(&output, what, "/dev/full");
        assert_eq!(sorted_lines(&stdout_of(&output)), every_ok_line(12), "{flag}");
        let log = std::fs::read_to_string(&log).unwrap();
        assert_eq!(log.lines().filter(|l| !l.starts_with(['#', 'S'])).count(), 12, "{flag}: {log}");
    }
}

#[test]
fn an_export_file_on_dev_full_fails_the_run_once() {
    let env = env(12);
    let output = env.fanout().args(["credentials", "--role", "ReadOnly", "--output-file", "/dev/full"]).output();
    let output = output.unwrap();
    assert_one_unwritten(&output, "credentials file", "/dev/full");
    assert!(!stderr_of(&output).contains("written to"), "{}", stderr_of(&output));
}

/// Runs `script` (with `$FANOUT` the binary and `$1` a fresh directory) in a mount
/// namespace where that directory is an 8 KiB tmpfs; `None` (and the reason printed)
/// when this machine cannot make one: no user namespaces, no `unshare`.
fn on_a_full_tmpfs(env: &TestEnv, script: &str) -> Option<Output> {
    let probe =
        std::process::Command::new("unshare").args(["-rm", "sh", "-c", "mount -t tmpfs -o size=8k t /mnt"]).output();
    if !probe.as_ref().is_ok_and(|out| out.status.success()) {
        eprintln!(
            "skipped: cannot mount a tmpfs in a user namespace here (`unshare -rm` + `mount -t tmpfs`): {:?}",
            probe.map(|out| stderr_of(&out))
        );
        return None;
    }
    let dir = env.home().join("small");
    std::fs::create_dir(&dir).unwrap();
    let mounted = format!("mount -t tmpfs -o size=8k fanout-test \"$1\" && {script}");
    let output = env
        .isolated("unshare")
        .args(["-rm", "sh", "-c", &mounted, "sh"])
        .arg(&dir)
        .env("FANOUT", assert_cmd::cargo::cargo_bin("fanout"))
        .output()
        .unwrap();
    Some(output)
}

#[test]
fn a_joblog_on_a_full_tmpfs_fails_the_run_and_resume_skips_its_torn_last_line() {
    let env = env(120);
    let kept = env.home().join("kept.log");
    // An 8 KiB tmpfs holds ~50 of the 120 lines; the log is copied out before the
    // namespace (and the tmpfs) goes.
    let script = format!(
        "\"$FANOUT\" --role ReadOnly --joblog \"$1/run.log\" -- echo ok; code=$?; cp \"$1/run.log\" '{}'; exit $code",
        kept.display()
    );
    let Some(output) = on_a_full_tmpfs(&env, &script) else { return };
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("error: cannot write the joblog ").count(), 1, "{stderr}");
    assert!(stderr.contains("run.log: No space left on device"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("warn"), "no warning per account: {stderr}");
    assert_eq!(sorted_lines(&stdout_of(&output)), every_ok_line(120), "every account ran");

    let log = std::fs::read_to_string(&kept).unwrap();
    // A last line without its newline is torn, however many columns it kept.
    let whole_lines = &log[..log.rfind('\n').map_or(0, |i| i + 1)];
    let done: Vec<String> = whole_lines
        .lines()
        .filter(|l| l.split('\t').count() == 16 && !l.starts_with("Seq\t"))
        .filter(|l| ["succeeded", "no-role"].contains(&l.split('\t').nth(12).unwrap()))
        .map(|l| format!("{}|ok", l.split('\t').nth(9).unwrap()))
        .collect();
    assert!(done.len() > 5 && done.len() < 100, "the tmpfs filled part way: {log}");
    let resumed = env.fanout().args(["--resume", kept.to_str().unwrap(), "--", "echo", "ok"]).output().unwrap();
    let resumed_stderr = stderr_of(&resumed);
    assert!(resumed.status.success(), "{resumed_stderr}");
    if !log.ends_with('\n') {
        assert_eq!(resumed_stderr.matches("ends in a torn line").count(), 1, "{resumed_stderr}");
    }
    let mut expected: Vec<String> = every_ok_line(120).into_iter().filter(|l| !done.contains(l)).collect();
    expected.sort();
    assert_eq!(sorted_lines(&stdout_of(&resumed)), expected, "what the log does not show as done runs");
}

/// A log of `env(9)` (every account has the role) whose last line is cut in half, as a
/// full disk leaves it; and the account that line was for.
fn torn_log(env: &TestEnv) -> (std::path::PathBuf, String) {
    let log = env.home().join("run.log");
    let first = env.fanout().args(["--role", "ReadOnly", "--joblog", log.to_str().unwrap(), "--", "true"]).output();
    assert!(first.unwrap().status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last_start = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let id = text[last_start..].split('\t').nth(9).unwrap().to_owned();
    std::fs::write(&log, &text[..last_start + (text.len() - last_start) / 2]).unwrap();
    (log, id)
}

#[test]
fn resume_skips_a_torn_last_line_with_one_warning_and_runs_its_account() {
    let env = env(9);
    let (log, torn_id) = torn_log(&env);
    let resumed = env
        .fanout()
        .args(["--resume", log.to_str().unwrap(), "--joblog", log.to_str().unwrap(), "--", "echo", "again"])
        .output()
        .unwrap();
    let stderr = stderr_of(&resumed);
    assert!(resumed.status.success(), "{stderr}");
    assert_eq!(stderr.matches("ends in a torn line (line ").count(), 1, "{stderr}");
    assert_eq!(stdout_of(&resumed), format!("{torn_id}|again\n"), "only the torn line's account runs again");
    // The log was cut after its last whole line before the run appended to it: it
    // reads back whole, without a warning.
    let again = env.fanout().args(["--resume", log.to_str().unwrap(), "--", "echo", "again"]).output().unwrap();
    assert_eq!(again.status.code(), Some(5), "all done: {}", stderr_of(&again));
    assert!(!stderr_of(&again).contains("torn"), "{}", stderr_of(&again));
}

#[test]
fn a_malformed_line_in_the_middle_is_still_an_error() {
    let env = env(9);
    let (log, _) = torn_log(&env);
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("\n# roles: ReadOnly\n");
    std::fs::write(&log, text).unwrap();
    let output = env.fanout().args(["--resume", log.to_str().unwrap(), "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("is not a fanout joblog (line "), "{}", stderr_of(&output));
}

fn summary_run(env: &TestEnv, path: &Path) -> Output {
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--summary-markdown", path.to_str().unwrap(), "--", "echo", "ok"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    output
}

#[test]
fn a_shell_appending_around_fanout_keeps_its_lines_in_order() {
    let env = env(12);
    let path = env.home().join("S.md");
    let output = env
        .isolated("sh")
        .args(["-c", "{ echo a; \"$FANOUT\" --role ReadOnly --summary-markdown \"$1\" -- echo ok; echo b; } >> \"$1\""])
        .arg("sh")
        .arg(&path)
        .env("FANOUT", assert_cmd::cargo::cargo_bin("fanout"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("a\n"), "{text}");
    let summary = text.find("\n## fanout\n").expect("the summary");
    let ok = text.find("|ok\n").expect("fanout's stdout, appended by the shell");
    assert!(text.ends_with("b\n"), "the shell's last line is kept: {text}");
    assert!(ok < summary, "fanout's output, then its summary, then b: {text}");
}

#[test]
fn a_symlinked_summary_stays_a_symlink_and_its_target_gains_the_block() {
    let env = env(12);
    let target = env.home().join("target.md");
    std::fs::write(&target, "# before\n").unwrap();
    let link = env.home().join("S.md");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    summary_run(&env, &link);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.starts_with("# before\n\n## fanout\n"), "{text}");
    assert!(text.contains("**12 accounts selected**"), "{text}");
}

#[test]
fn a_missing_summary_is_created_readable() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = env(12);
    let path = env.home().join("new.md");
    summary_run(&env, &path);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o600, 0o600, "{mode:o}");
    assert_eq!(mode & 0o022, 0, "never writable by others: {mode:o}");
}

#[test]
fn two_concurrent_appenders_both_land_whole() {
    let env = env(60);
    let path = env.home().join("S.md");
    let go = env.home().join("go");
    // Every account fails with a long stderr line naming its run, after waiting for `go`:
    // both runs end, and append their ~50 KiB blocks, at the same moment.
    let spawn = |run: &str| {
        let script = format!(
            "while ! test -e '{}'; do sleep 0.05; done; echo {run}-{} >&2; exit 1",
            go.display(),
            "x".repeat(150)
        );
        env.std_fanout()
            .env("AWS_ENDPOINT_URL_SSO", env.portal.url())
            .args(["--role", "ReadOnly", "-j", "60", "--summary-markdown", path.to_str().unwrap(), "--", "sh", "-c"])
            .arg(script)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut runs = [spawn("first"), spawn("second")];
    std::thread::sleep(std::time::Duration::from_secs(2));
    std::fs::write(&go, "").unwrap();
    for run in &mut runs {
        assert_eq!(run.wait().unwrap().code(), Some(1));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let blocks: Vec<&str> = text.split("\n## fanout\n").skip(1).collect();
    assert_eq!(blocks.len(), 2, "both blocks: {text}");
    let mut runs_seen = Vec::new();
    for block in blocks {
        let rows: Vec<&str> = block.lines().filter(|l| l.starts_with("| 1")).collect();
        assert_eq!(rows.len(), 54, "a whole table: {block}");
        let run = if rows[0].contains("first\\-") { "first" } else { "second" };
        assert!(rows.iter().all(|row| row.contains(&format!("<code>{run}\\-x"))), "not interleaved: {block}");
        assert!(block.starts_with("\n**60 accounts selected**"), "{block}");
        runs_seen.push(run);
    }
    runs_seen.sort_unstable();
    assert_eq!(runs_seen, ["first", "second"]);
}
