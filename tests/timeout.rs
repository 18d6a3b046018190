//! `--timeout` and `--kill-after`, through the binary against the fake portal: a command
//! past its timeout has its whole process group stopped (SIGTERM, then SIGKILL), its
//! output kept, and its account failed as `timeout`; nothing of it is left running.

mod common;

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, assert_none_left, new_mark, stderr_of, stdout_of};
use fake_portal::PortalOptions;

/// One account (team000-dev), so each test runs one command.
const ONE_ACCOUNT: [&str; 4] = ["--role", "ReadOnly", "--match", "team000-dev"];

/// Far below the 60 s the hung commands would take.
const WELL_UNDER_A_MINUTE: Duration = Duration::from_secs(15);

/// A run of fanout whose processes, children included, carry a mark in their
/// environment, so the test can count what is left of them (as in tests/signals.rs).
struct Marked {
    child: Child,
    mark: String,
}

impl Marked {
    fn spawn(env: &TestEnv, args: &[&str]) -> Self {
        let mark = new_mark();
        let child = env
            .std_fanout()
            .env("FANOUT_TEST_MARK", &mark)
            .args(ONE_ACCOUNT)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Marked { child, mark }
    }

    /// Waits for fanout: its exit code, stdout, stderr and how long it ran.
    fn finish(self, started: Instant) -> (Option<i32>, String, String, Duration) {
        let output = self.child.wait_with_output().unwrap();
        let took = started.elapsed();
        assert_none_left(&self.mark);
        (output.status.code(), stdout_of(&output), stderr_of(&output), took)
    }
}

fn sh(script: &str) -> [&str; 3] {
    ["sh", "-c", script]
}

#[test]
fn a_hung_command_and_its_grandchild_that_ignore_sigterm_are_killed() {
    let env = TestEnv::new(PortalOptions::default());
    let args =
        [&["--timeout", "1s", "--kill-after", "1s", "--"][..], &sh("trap '' TERM; sleep 60 & sleep 60")].concat();
    let started = Instant::now();
    let (code, stdout, stderr, took) = Marked::spawn(&env, &args).finish(started);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("  failed       100000001111 (team000-dev) [timeout]: timed out after 1s\n"), "{stderr}");
    assert!(stderr.contains("1 failed"), "{stderr}");
    assert!(took >= Duration::from_secs(2), "SIGKILL came before --kill-after: {took:?}");
    assert!(took < WELL_UNDER_A_MINUTE, "took {took:?}");
}

#[test]
fn a_command_that_dies_at_sigterm_does_not_wait_for_kill_after() {
    let env = TestEnv::new(PortalOptions::default());
    let args = [&["--timeout", "1s", "--kill-after", "1m", "--"][..], &sh("sleep 60 & sleep 60")].concat();
    let started = Instant::now();
    let (code, _, stderr, took) = Marked::spawn(&env, &args).finish(started);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("[timeout]: timed out after 1s"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_grandchild_that_outlives_the_sigterm_without_the_pipes_is_killed_too() {
    let env = TestEnv::new(PortalOptions::default());
    // The shell dies at SIGTERM; the grandchild ignores it and holds no pipe of fanout's,
    // so only the group's SIGKILL after --kill-after stops it.
    let script = "(trap '' TERM; exec sleep 60) </dev/null >/dev/null 2>&1 & sleep 60";
    let args = [&["--timeout", "1s", "--kill-after", "2s", "--"][..], &sh(script)].concat();
    let started = Instant::now();
    let (code, _, stderr, took) = Marked::spawn(&env, &args).finish(started);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("[timeout]: timed out after 1s"), "{stderr}");
    assert!(took >= Duration::from_secs(3), "SIGKILL came before --kill-after: {took:?}");
    assert!(took < WELL_UNDER_A_MINUTE, "took {took:?}");
}

#[test]
fn the_last_line_of_a_timed_out_command_is_printed_without_its_newline() {
    let env = TestEnv::new(PortalOptions::default());
    let script = "echo first; printf 'last words'; trap '' TERM; sleep 60";
    let args = [&["--timeout", "1s", "--kill-after", "1s", "--"][..], &sh(script)].concat();
    let (code, stdout, stderr, took) = Marked::spawn(&env, &args).finish(Instant::now());
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "100000001111|first\n100000001111|last words\n");
    assert!(stderr.contains("[timeout]: timed out after 1s"), "{stderr}");
    assert!(took < WELL_UNDER_A_MINUTE, "took {took:?}");
}

#[test]
fn a_command_that_ends_in_time_is_not_affected() {
    let env = TestEnv::new(PortalOptions::default());
    let args = [&["--timeout", "30s", "--kill-after", "1s", "--"][..], &sh("sleep 0.2; printf done")].concat();
    let (code, stdout, stderr, _) = Marked::spawn(&env, &args).finish(Instant::now());
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "100000001111|done\n");
    assert!(!stderr.contains("timeout") && !stderr.contains("timed out"), "{stderr}");
    // A failure in time is an exit, not a timeout.
    let output = env.fanout().args(ONE_ACCOUNT).args(["--timeout", "30s", "--", "false"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("[exit]: exit code 1"), "{}", stderr_of(&output));
}

#[test]
fn a_stop_during_the_escalation_still_stops_everything() {
    let env = TestEnv::new(PortalOptions::default());
    let args =
        [&["--timeout", "1s", "--kill-after", "1m", "--"][..], &sh("trap '' TERM; sleep 60 & sleep 60")].concat();
    let mut run = Marked::spawn(&env, &args);
    let mut stderr = BufReader::new(run.child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("longer than --timeout") {
        assert_ne!(stderr.read_line(&mut seen).unwrap(), 0, "no timeout warning: {seen}");
    }
    let sent = Instant::now();
    // SAFETY: kill with a valid pid and signal has no memory-safety preconditions.
    unsafe { libc::kill(i32::try_from(run.child.id()).unwrap(), libc::SIGTERM) };
    stderr.read_to_string(&mut seen).unwrap();
    let status = run.child.wait().unwrap();
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(143), "{seen}");
    // The stop's SIGTERM is ignored too; its SIGKILL comes after the 5 s grace period,
    // long before --kill-after's minute (the bound leaves room for a loaded CI machine).
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(seen.contains("  interrupted  100000001111 (team000-dev): timed out after 1s"), "{seen}");
    assert_none_left(&run.mark);
}

#[test]
fn a_bad_duration_is_a_one_line_usage_error() {
    let env = TestEnv::new(PortalOptions::default());
    for (flag, value) in [("--timeout", "nonsense"), ("--timeout", "0s"), ("--kill-after", "5")] {
        let output = env.fanout().args(ONE_ACCOUNT).args([flag, value, "--", "true"]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        let stderr = stderr_of(&output);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("error: invalid value '{value}' for '{flag} <DURATION>': ")), "{stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "{stderr}");
        assert_eq!(env.portal.stats().get_role_credentials, 0, "nothing ran");
    }
}

#[test]
fn help_describes_both_flags() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env.fanout().arg("--help").output().unwrap();
    let help = stdout_of(&output);
    assert!(help.contains("--timeout <DURATION>") && help.contains("--kill-after <DURATION>"), "{help}");
    assert!(help.contains("[default: 5s]"), "{help}");
}
