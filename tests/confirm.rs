//! Asking before a big run: on a real terminal (a tmux pane) fanout shows the run and
//! waits for `y`; without one it neither asks nor waits. Also `apply` without
//! `--approve` asks on a terminal.

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::terminal::{Tmux, isolated_fanout_words};
use common::{TestEnv, sorted_lines, stderr_of, stdout_of};
use fake_portal::{PortalOptions, generated_accounts};

/// A shell line that runs fanout with `args` in `env`'s isolation, stdout to `dir/out`,
/// the exit code to `dir/code`, stderr (the prompt) on the pane; then the pane waits.
fn fanout_line(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let mut words = isolated_fanout_words(env, &env.portal.url());
    words.extend(args.iter().map(|a| (*a).to_owned()));
    let out = dir.join("out").display().to_string();
    let code = dir.join("code").display().to_string();
    format!(
        "{} > {}; echo $? > {}.tmp; mv {}.tmp {}; sleep 600",
        shell_words::join(&words),
        shell_words::quote(&out),
        shell_words::quote(&code),
        shell_words::quote(&code),
        shell_words::quote(&code)
    )
}

/// Waits for fanout's exit code in `dir/code`.
fn exit_code(dir: &Path) -> i32 {
    let path: PathBuf = dir.join("code");
    let deadline = Instant::now() + Duration::from_mins(1);
    while !path.exists() {
        assert!(Instant::now() < deadline, "fanout did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(&path).unwrap().trim().parse().unwrap()
}

fn big_env() -> TestEnv {
    TestEnv::new(PortalOptions { accounts: generated_accounts(24), ..PortalOptions::default() })
}

#[test]
fn on_a_terminal_a_big_run_asks_first_and_runs_on_yes() {
    let Some(tmux) = Tmux::start() else { return };
    let env = big_env();
    let dir = tempfile::tempdir().unwrap();
    tmux.run(&fanout_line(&env, dir.path(), &["--role", "ReadOnly", "--", "echo", "ran"]));
    let pane = tmux.wait_for("[y/N]");
    assert!(pane.contains("about to run in 24 accounts"), "{pane}");
    assert!(
        pane.contains(
            "accounts: team000-prod, team000-dev, team000-staging, team000-sandbox, team000-audit, … and 19 more"
        ),
        "{pane}"
    );
    assert!(pane.contains("role:     ReadOnly") && pane.contains("command:  echo ran"), "{pane}");
    assert!(pane.contains("Run in 24 accounts? [y/N]"), "{pane}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pane = tmux.pane();
    assert!(!pane.contains("listing accounts") && !pane.contains(" running"), "a bar over the prompt: {pane}");
    assert_eq!(env.portal.stats().get_role_credentials, 0, "nothing before the answer");
    tmux.type_line("y");
    assert_eq!(exit_code(dir.path()), 0, "{}", tmux.pane());
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    assert_eq!(out.lines().count(), 22, "every account with ReadOnly ran: {out}");
}

#[test]
fn on_a_terminal_anything_but_yes_runs_nothing() {
    let Some(tmux) = Tmux::start() else { return };
    let env = big_env();
    let dir = tempfile::tempdir().unwrap();
    tmux.run(&fanout_line(&env, dir.path(), &["--role", "ReadOnly", "--", "echo", "ran"]));
    tmux.wait_for("[y/N]");
    tmux.type_line("n");
    assert_eq!(exit_code(dir.path()), 1);
    assert!(tmux.wait_for("nothing was run").contains("not confirmed"));
    assert_eq!(std::fs::read_to_string(dir.path().join("out")).unwrap(), "");
    assert_eq!(env.portal.stats().get_role_credentials, 0, "no credentials were fetched");
}

#[test]
fn on_a_terminal_small_runs_yes_and_dry_runs_do_not_ask() {
    let Some(_skip_unless_tmux) = Tmux::start() else { return };
    let env = big_env();
    let dir = tempfile::tempdir().unwrap();
    // 4 accounts: not above 10. The others: --yes, --confirm-above 0, --dry-run.
    let script = [
        fanout_line(&env, &dir.path().join("a"), &["--role", "ReadOnly", "--match", "*-dev", "--", "true"]),
        fanout_line(&env, &dir.path().join("b"), &["--yes", "--role", "ReadOnly", "--", "true"]),
        fanout_line(&env, &dir.path().join("c"), &["--confirm-above", "0", "--role", "ReadOnly", "--", "true"]),
        fanout_line(&env, &dir.path().join("d"), &["--dry-run", "--role", "ReadOnly", "--", "true"]),
    ];
    for (name, line) in ["a", "b", "c", "d"].iter().zip(script) {
        let dir = dir.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let tmux = Tmux::another();
        tmux.run(&line);
        assert_eq!(exit_code(&dir), 0, "{name}: {}", tmux.pane());
        assert!(!tmux.pane().contains("[y/N]"), "{name}");
    }
}

#[test]
fn on_a_terminal_apply_without_approve_asks() {
    let Some(tmux) = Tmux::start() else { return };
    let env = TestEnv::new(PortalOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let args = ["--role", "ReadOnly", "--match", "*-dev", "--dry-run", "--save-plan", plan.to_str().unwrap()];
    let saved = env.fanout().args(args).args(["--", "echo", "{account_id}"]).output().unwrap();
    assert!(saved.status.success(), "{}", stderr_of(&saved));
    tmux.run(&fanout_line(&env, dir.path(), &["apply", plan.to_str().unwrap()]));
    let pane = tmux.wait_for("Run in 2 accounts? [y/N]");
    // The plan's review: each argv with the accounts that run it (tests/hostile_plan.rs
    // covers it in depth).
    assert!(pane.contains("1 account runs: echo 100000001111"), "{pane}");
    assert!(pane.contains("1 account runs: echo 100000007777"), "{pane}");
    tmux.type_line("yes");
    assert_eq!(exit_code(dir.path()), 0, "{}", tmux.pane());
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    assert_eq!(sorted_lines(&out), ["100000001111|100000001111", "100000007777|100000007777"]);
}

#[test]
fn without_a_terminal_there_is_no_prompt_and_no_wait() {
    let env = big_env();
    // stdin stays open and silent: a prompt would wait for it forever.
    let mut child = env
        .std_fanout()
        .args(["--role", "ReadOnly", "--", "echo", "ran"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin = child.stdin.take();
    let deadline = Instant::now() + Duration::from_mins(1);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "fanout waited for an answer");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("[y/N]"), "{stderr}");
    assert_eq!(stdout.lines().count(), 22);
    // FANOUT_YES=1 is accepted as --yes (and an explicit 0 as no).
    for value in ["1", "0"] {
        let output = env.fanout().env("FANOUT_YES", value).args(["--role", "ReadOnly", "--", "true"]).output();
        let output = output.unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        assert_eq!(stdout_of(&output), "");
    }
}
