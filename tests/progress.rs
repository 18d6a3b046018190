//! The progress bar: drawn in a real terminal (a tmux pane) without ever cutting a
//! child's line, and never drawn where no one watches (a pipe, `--quiet`, `--output
//! json`). `--quiet` also keeps the summary back unless something failed.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{PortalOptions, generated_accounts};

/// Each child prints four numbered lines, the even ones on stderr, with small sleeps:
/// both streams reach the terminal while the bar is drawn.
const CHILD: &str =
    r#"for i in 1 2 3 4; do if [ $((i % 2)) = 0 ]; then echo "line $i" >&2; else echo "line $i"; fi; sleep 0.05; done"#;

/// A tmux server of its own (its own socket), killed when the test ends.
struct Tmux {
    dir: tempfile::TempDir,
    socket: PathBuf,
}

/// What a run in a tmux pane showed.
struct PaneRun {
    /// The visible screen, captured every few milliseconds while fanout ran.
    screens: Vec<String>,
    /// The whole scrollback once it ended, wrapped lines joined.
    scrollback: String,
    exit_code: String,
}

impl Tmux {
    /// `None`, with the reason printed, when tmux is not installed.
    fn new() -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            println!("skipped: tmux is not installed (apt-get install tmux)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("socket");
        std::fs::write(dir.path().join("tmux.conf"), "set -g history-limit 100000\nset -g remain-on-exit on\n")
            .expect("write tmux.conf");
        Some(Tmux { dir, socket })
    }

    fn command(&self, env: &TestEnv) -> Command {
        let mut command = env.isolated("tmux");
        command.arg("-S").arg(&self.socket).arg("-f").arg(self.dir.path().join("tmux.conf"));
        command
    }

    /// Runs fanout with `args` in a 150x40 pane and watches it until it exits.
    fn run(&self, env: &TestEnv, args: &[&str]) -> PaneRun {
        self.run_child(env, args, CHILD, |_| false)
    }

    /// Runs fanout with `args` and `child` (an `sh -c` script); types Ctrl-C the first
    /// time `interrupt` says yes to the screen.
    fn run_child(&self, env: &TestEnv, args: &[&str], child: &str, interrupt: impl Fn(&str) -> bool) -> PaneRun {
        let done = self.dir.path().join("exit-code");
        let script = self.dir.path().join("run.sh");
        let fanout = assert_cmd::cargo::cargo_bin("fanout");
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        std::fs::write(
            &script,
            format!(
                // The shell outlives a Ctrl-C (a trap is reset for fanout) to write the code.
                // --yes: a terminal run of many accounts would otherwise ask first.
                "trap : INT\n{} --yes {} -- sh -c {}\necho $? > {}\n",
                shell_quote(&fanout.to_string_lossy()),
                quoted.join(" "),
                shell_quote(child),
                shell_quote(&done.to_string_lossy())
            ),
        )
        .expect("write the script");
        let status = self
            .command(env)
            .args(["new-session", "-d", "-x", "150", "-y", "40", "-s", "progress", "sh"])
            .arg(&script)
            .status()
            .expect("start tmux");
        assert!(status.success(), "tmux new-session failed");
        let started = Instant::now();
        let mut screens = Vec::new();
        let mut interrupted = false;
        while !done.exists() {
            assert!(started.elapsed() < Duration::from_mins(2), "fanout did not end in the pane");
            let screen = self.capture(env, &["-p"]);
            if !interrupted && interrupt(&screen) {
                let sent = self.command(env).args(["send-keys", "-t", "progress", "C-c"]).status();
                assert!(sent.is_ok_and(|s| s.success()), "tmux send-keys failed");
                interrupted = true;
            }
            screens.push(screen);
            std::thread::sleep(Duration::from_millis(30));
        }
        // The pane may still be drawing the last bytes fanout wrote.
        std::thread::sleep(Duration::from_millis(300));
        let scrollback = self.capture(env, &["-p", "-J", "-S", "-", "-E", "-"]);
        let exit_code = std::fs::read_to_string(&done).unwrap_or_default().trim().to_owned();
        PaneRun { screens, scrollback, exit_code }
    }

    fn capture(&self, env: &TestEnv, args: &[&str]) -> String {
        let output =
            self.command(env).args(["capture-pane", "-t", "progress"]).args(args).output().expect("capture-pane");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A child's line as fanout prints it: `<12 digits>|line N`, and nothing else on it.
fn is_whole_child_line(line: &str) -> bool {
    let Some((prefix, rest)) = line.split_once('|') else { return false };
    prefix.len() == 12
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && matches!(rest, "line 1" | "line 2" | "line 3" | "line 4")
}

/// Every account's four lines, sorted.
fn expected_child_lines(accounts: &[fake_portal::Account]) -> Vec<String> {
    let mut lines: Vec<String> =
        accounts.iter().flat_map(|a| (1..=4).map(move |i| format!("{}|line {i}", a.id))).collect();
    lines.sort();
    lines
}

fn env_with(accounts: usize) -> TestEnv {
    TestEnv::new(PortalOptions { accounts: generated_accounts(accounts), ..PortalOptions::default() })
}

#[test]
fn the_bar_is_drawn_in_a_terminal_and_never_cuts_a_line() {
    let Some(tmux) = Tmux::new() else { return };
    let env = env_with(200);
    let run = tmux.run(&env, &["--role", "ReadOnly,AdministratorAccess", "-j", "8"]);
    assert_eq!(run.exit_code, "0", "{}", run.scrollback);

    // The bar mid-run: commands running, a rate, and once the listing is complete an ETA.
    let bar_lines: Vec<&str> =
        run.screens.iter().flat_map(|screen| screen.lines()).filter(|line| line.contains(" running")).collect();
    let busy = bar_lines.iter().find(|line| !line.contains(" 0 running") && line.contains("/200 accounts"));
    assert!(busy.is_some(), "no capture showed the bar at work; the last:\n{:?}", run.screens.last());
    assert!(busy.is_some_and(|line| line.contains("/s")), "the rate: {busy:?}");
    assert!(bar_lines.iter().any(|line| line.contains("ETA")), "{bar_lines:?}");

    let lines: Vec<&str> = run.scrollback.lines().map(str::trim_end).collect();
    let mut child_lines: Vec<String> = Vec::new();
    for line in &lines {
        if line.contains("|line") {
            assert!(is_whole_child_line(line), "a child's line was cut or run into: {line:?}");
            child_lines.push((*line).to_owned());
        }
        assert!(!line.contains(" running") && !line.contains("accounts - "), "the bar was left behind: {line:?}");
    }
    child_lines.sort();
    assert_eq!(child_lines, expected_child_lines(&generated_accounts(200)), "every line, once each");
    assert!(run.scrollback.contains("fanout: 200 accounts selected: 200 succeeded"), "{}", run.scrollback);
}

#[test]
fn quiet_and_json_draw_no_bar_in_a_terminal() {
    let Some(tmux) = Tmux::new() else { return };
    let env = env_with(24);
    let run = tmux.run(&env, &["--role", "ReadOnly,AdministratorAccess", "-j", "4", "--quiet"]);
    assert_eq!(run.exit_code, "0", "{}", run.scrollback);
    assert!(run.screens.iter().chain([&run.scrollback]).all(|s| !s.contains(" running")), "{}", run.scrollback);
    assert!(!run.scrollback.contains("fanout:"), "--quiet and all succeeded: no summary\n{}", run.scrollback);
    let mut child_lines: Vec<String> =
        run.scrollback.lines().map(str::trim_end).filter(|l| l.contains("|line")).map(str::to_owned).collect();
    child_lines.sort();
    assert_eq!(child_lines, expected_child_lines(&generated_accounts(24)));
    drop(tmux);

    let Some(tmux) = Tmux::new() else { return };
    let run = tmux.run(&env, &["--role", "ReadOnly,AdministratorAccess", "-j", "4", "--output", "json"]);
    assert_eq!(run.exit_code, "0", "{}", run.scrollback);
    assert!(run.screens.iter().chain([&run.scrollback]).all(|s| !s.contains(" running")), "{}", run.scrollback);
}

#[test]
fn ctrl_c_clears_the_bar_before_the_summary() {
    let Some(tmux) = Tmux::new() else { return };
    let env = env_with(12);
    let child = "echo started; sleep 30";
    let busy = |screen: &str| screen.lines().any(|l| l.contains(" running") && l.contains(" 4 running"));
    let run = tmux.run_child(&env, &["--role", "ReadOnly,AdministratorAccess", "-j", "4"], child, busy);
    assert_eq!(run.exit_code, "130", "{}", run.scrollback);
    assert!(run.screens.iter().any(|s| busy(s)), "the bar never showed 4 running");
    let lines: Vec<&str> = run.scrollback.lines().map(str::trim_end).collect();
    assert!(lines.iter().all(|l| !l.contains(" running")), "the bar was left behind:\n{}", run.scrollback);
    let summary = lines.iter().position(|l| l.starts_with("fanout: 12 accounts selected"));
    assert!(summary.is_some(), "{}", run.scrollback);
    assert_eq!(lines.iter().filter(|l| l.starts_with("  interrupted  ")).count(), 4, "{}", run.scrollback);
}

#[test]
fn without_a_terminal_stderr_holds_no_bar() {
    let env = env_with(30);
    let output = env
        .fanout()
        .args(["--role", "ReadOnly,AdministratorAccess", "-j", "4", "--", "sh", "-c", CHILD])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(!stderr.contains('\r') && !stderr.contains('\x1b'), "bar characters on a pipe: {stderr:?}");
    assert!(!stderr.contains(" running"), "{stderr}");
    assert!(stderr.lines().filter(|l| l.contains("|line")).all(is_whole_child_line), "{stderr}");
    assert!(stderr.contains("fanout: 30 accounts selected"), "{stderr}");
    assert_eq!(stdout_of(&output).lines().count(), 60);
}

#[test]
fn quiet_keeps_the_summary_back_unless_something_failed() {
    let env = env_with(6);
    let quiet = |script: &str| {
        env.fanout().args(["--role", "ReadOnly,AdministratorAccess", "-q", "--", "sh", "-c", script]).output().unwrap()
    };
    let output = quiet("echo hi");
    assert!(output.status.success());
    assert_eq!(stderr_of(&output), "");
    assert_eq!(stdout_of(&output).lines().count(), 6);

    let output = quiet(r#"[ "$FANOUT_ACCOUNT_NAME" != team000-dev ]"#);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("fanout: 6 accounts selected: 5 succeeded, 1 failed"), "{stderr}");
    assert!(stderr.contains("failed       100000001111 (team000-dev) [exit]"), "{stderr}");
}

#[test]
fn help_describes_quiet_and_the_bar() {
    let env = env_with(1);
    let output = env.fanout().arg("--help").output().unwrap();
    let help = stdout_of(&output);
    assert!(help.contains("-q, --quiet"), "{help}");
    assert!(help.contains("progress bar"), "{help}");
}
