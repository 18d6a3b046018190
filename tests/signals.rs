//! Every stop stops: SIGINT, SIGTERM and SIGHUP in each phase of a run (listing, retries,
//! credential fetches, blocked output, running children) end fanout within the grace
//! period plus a second, with the signal's exit code, and leave no process behind.

mod common;

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, assert_none_left, new_mark, processes_marked, stderr_of};
use fake_portal::{Misbehaviour, PortalOptions, generated_accounts};

/// fanout's grace period before SIGKILL, plus the second the issue allows.
const STOP_BOUND: Duration = Duration::from_secs(6);

/// A stop with nothing to wait for (a stalled call, a child already killed): well short
/// of the grace period, with room for a loaded CI machine.
const AT_ONCE: Duration = Duration::from_secs(4);

const SIGNALS: [(i32, i32); 3] = [(libc::SIGINT, 130), (libc::SIGTERM, 143), (libc::SIGHUP, 129)];

/// A run of fanout whose processes, children included, carry a mark in their
/// environment, so the test can count what is left of them.
struct Marked {
    child: Child,
    mark: String,
}

impl Marked {
    fn spawn(env: &TestEnv, args: &[&str], stdout: Stdio) -> Self {
        let mark = new_mark();
        let child = env
            .std_fanout()
            .env("FANOUT_TEST_MARK", &mark)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Marked { child, mark }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill with a valid pid and signal has no memory-safety preconditions.
        unsafe { libc::kill(i32::try_from(self.child.id()).unwrap(), signal) };
    }

    /// Waits for fanout to exit: its exit code, stderr, and how long it took.
    fn wait(mut self, since: Instant) -> (Option<i32>, String, Duration, String) {
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let status = self.child.wait().unwrap();
        (status.code(), stderr, since.elapsed(), self.mark)
    }
}

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `count` lines from the child's stdout, then keeps draining it in the
/// background so the child is never blocked by an unread pipe.
fn read_lines_then_drain(child: &mut Child, count: usize) {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..count {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.ends_with("|ready\n"), "{line}");
    }
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
}

#[test]
fn a_stop_while_the_listing_stalls_ends_at_once() {
    for (signal, code) in SIGNALS {
        let env = TestEnv::new(PortalOptions { misbehave: Some(Misbehaviour::Stall), ..PortalOptions::default() });
        let run = Marked::spawn(&env, &["--role", "ReadOnly", "--", "true"], Stdio::null());
        wait_until("a stalled ListAccounts", || env.portal.stats().stalled >= 1);
        let sent = Instant::now();
        run.signal(signal);
        let (exit, stderr, took, mark) = run.wait(sent);
        assert_eq!(exit, Some(code), "signal {signal}: {stderr}");
        assert!(took < AT_ONCE, "signal {signal} took {took:?}");
        assert!(stderr.contains("stopped"), "{stderr}");
        assert_none_left(&mark);
    }
}

#[test]
fn a_stop_during_endless_throttling_ends_at_once() {
    for (signal, code) in SIGNALS {
        let options = PortalOptions { misbehave: Some(Misbehaviour::ThrottleForever), ..PortalOptions::default() };
        let env = TestEnv::new(options);
        let run = Marked::spawn(&env, &["accounts"], Stdio::null());
        wait_until("a few 429s", || env.portal.stats().throttled >= 3);
        let sent = Instant::now();
        run.signal(signal);
        let (exit, stderr, took, mark) = run.wait(sent);
        assert_eq!(exit, Some(code), "signal {signal}: {stderr}");
        assert!(took < AT_ONCE, "signal {signal} took {took:?}");
        assert_none_left(&mark);
    }
}

#[test]
fn a_stop_while_credentials_stall_names_the_accounts_never_started() {
    let options = PortalOptions { misbehave: Some(Misbehaviour::StallCredentials), ..PortalOptions::default() };
    let env = TestEnv::new(options);
    let run = Marked::spawn(&env, &["--role", "ReadOnly", "--", "true"], Stdio::null());
    wait_until("stalled credential calls", || env.portal.stats().stalled >= 11);
    let sent = Instant::now();
    run.signal(libc::SIGTERM);
    let (exit, stderr, took, _) = run.wait(sent);
    assert_eq!(exit, Some(143), "{stderr}");
    assert!(took < AT_ONCE, "took {took:?}");
    assert!(stderr.contains("12 not started"), "{stderr}");
    assert!(stderr.contains("  not started  100000001111 (team000-dev)"), "{stderr}");
}

#[test]
fn a_stop_with_output_nobody_reads_ends_within_the_grace_period() {
    for (signal, code) in SIGNALS {
        let env = TestEnv::new(PortalOptions::default());
        // stdout is a pipe this test never reads: the writer blocks, then every child.
        let mut run = Marked::spawn(&env, &["--role", "ReadOnly", "--", "yes", "output nobody reads"], Stdio::piped());
        let unread = run.child.stdout.take();
        std::thread::sleep(Duration::from_millis(500));
        let sent = Instant::now();
        run.signal(signal);
        let (exit, stderr, took, mark) = run.wait(sent);
        drop(unread);
        assert_eq!(exit, Some(code), "signal {signal}: {stderr}");
        assert!(took < STOP_BOUND, "signal {signal} took {took:?}");
        assert_none_left(&mark);
    }
}

#[test]
fn a_stop_with_fifty_running_children_leaves_none() {
    for (signal, code) in SIGNALS {
        let env = TestEnv::new(PortalOptions { accounts: generated_accounts(60), ..PortalOptions::default() });
        let args = ["--role", "ReadOnly,AdministratorAccess", "-j", "50", "--", "sh", "-c", "echo ready; sleep 60"];
        let mut run = Marked::spawn(&env, &args, Stdio::piped());
        read_lines_then_drain(&mut run.child, 50);
        // fanout, 50 shells and 50 sleeps (a shell forks its sleep just after `ready`).
        wait_until("every child's sleep", || processes_marked(&run.mark).len() == 1 + 50 * 2);
        let sent = Instant::now();
        run.signal(signal);
        let (exit, stderr, took, mark) = run.wait(sent);
        assert_eq!(exit, Some(code), "signal {signal}: {stderr}");
        assert!(took < STOP_BOUND, "signal {signal} took {took:?}");
        assert!(stderr.contains("50 interrupted, 10 not started"), "{stderr}");
        assert_none_left(&mark);
    }
}

#[test]
fn a_second_interrupt_kills_at_once() {
    let env = TestEnv::new(PortalOptions::default());
    let args = ["--role", "ReadOnly", "--match", "team000-dev", "--", "sh", "-c", "trap '' INT; echo ready; sleep 60"];
    let mut run = Marked::spawn(&env, &args, Stdio::piped());
    read_lines_then_drain(&mut run.child, 1);
    run.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    run.signal(libc::SIGINT);
    let (exit, stderr, took, mark) = run.wait(sent);
    assert_eq!(exit, Some(130), "{stderr}");
    assert!(took < AT_ONCE, "took {took:?}");
    assert_none_left(&mark);
}

/// A fanout killed outright takes each command's whole process group with it (the
/// watchdog): the command, and a process the command started (which Linux's
/// `PR_SET_PDEATHSIG`, used before, did not reach).
#[test]
fn children_die_with_a_killed_fanout_and_so_do_their_groups() {
    for script in ["echo ready; exec sleep 60", "sleep 60 & echo ready; wait"] {
        let env = TestEnv::new(PortalOptions::default());
        let mut run = Marked::spawn(&env, &["--role", "ReadOnly", "--", "sh", "-c", script], Stdio::piped());
        read_lines_then_drain(&mut run.child, 11);
        run.signal(libc::SIGKILL);
        let (exit, _, _, mark) = run.wait(Instant::now());
        assert_eq!(exit, None, "killed");
        assert_none_left(&mark);
    }
}

#[test]
fn a_leftover_that_ignores_sigterm_is_killed_and_its_last_line_kept() {
    let env = TestEnv::new(PortalOptions::default());
    let script = "(trap '' TERM; sleep 60; echo never) & printf 'last line without a newline'";
    let args = ["--role", "ReadOnly", "--match", "team000-dev", "--", "sh", "-c", script];
    let run = Marked::spawn(&env, &args, Stdio::piped());
    let started = Instant::now();
    let output = run.child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "100000001111|last line without a newline\n");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("kept its output open") && stderr.contains("ignored SIGTERM"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_none_left(&run.mark);
}
