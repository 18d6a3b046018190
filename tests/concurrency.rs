//! `-j auto` (the default) and `-j N` through the binary: how many children run at once,
//! what `-v` says about it, and how `-j` is parsed. Each child marks itself running with
//! a file, counts the marks, and removes its own when it ends; the largest count is a
//! lower bound of the children that ran at once (never more than ran at once).

mod common;

use std::path::Path;

use common::{TestEnv, stderr_of};
use fake_portal::{PortalOptions, generated_accounts};

const ROLES: &str = "ReadOnly,AdministratorAccess";

/// A child that marks itself running in `dir`, appends how many are running to
/// `dir/../counts`, sleeps 0.3 s and unmarks itself.
fn counting_child(dir: &Path) -> Vec<String> {
    let script = format!(
        "d='{}'; touch \"$d/$$\"; ls \"$d\" | wc -l >> \"$d/../counts\"; sleep 0.3; rm \"$d/$$\"",
        dir.display()
    );
    vec!["sh".to_owned(), "-c".to_owned(), script]
}

/// Runs fanout over `accounts` accounts with the counting child and `args`; returns the
/// most children seen at once and stderr.
fn run_counting(accounts: usize, args: &[&str], config: Option<&str>) -> (usize, String) {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(accounts), ..PortalOptions::default() });
    let dir = env.home().join("running");
    std::fs::create_dir(&dir).unwrap();
    let mut command = env.fanout();
    if let Some(text) = config {
        let path = env.home().join("fanout.toml");
        std::fs::write(&path, text).unwrap();
        command.env("FANOUT_CONFIG", path);
    }
    // A fast portal, so that credentials never hold the children back.
    let output = command
        .args(["--role", ROLES, "--portal-rps", "1000"])
        .args(args)
        .arg("--")
        .args(counting_child(&dir))
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let counts = std::fs::read_to_string(env.home().join("counts")).unwrap();
    assert_eq!(counts.lines().count(), accounts, "every account ran once: {counts}");
    let most = counts.lines().filter_map(|line| line.trim().parse::<usize>().ok()).max().unwrap();
    (most, stderr)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

#[test]
fn auto_runs_more_sleeping_children_than_cores_and_says_so_at_v() {
    let accounts = 40.max(cores() * 8);
    let (most, stderr) = run_counting(accounts, &["-v"], None);
    assert!(most > cores(), "at most {most} at once on {} cores\n{stderr}", cores());
    let change = stderr.lines().find(|line| line.contains("concurrency ") && line.contains(" → "));
    assert!(change.is_some_and(|line| line.contains("CPU")), "no change logged with its reason:\n{stderr}");
    let range = stderr.lines().find(|line| line.trim_start().starts_with("concurrency ") && line.ends_with("(auto)"));
    assert!(range.is_some_and(|line| line.contains('–')), "no range in the summary:\n{stderr}");
}

#[test]
fn auto_stays_within_max_concurrency_from_the_flag_or_the_config_file() {
    let (most, stderr) = run_counting(40, &["-j", "auto", "--max-concurrency", "3", "-v"], None);
    assert!(most <= 3, "{most} at once\n{stderr}");
    let (most, stderr) = run_counting(40, &["-v"], Some("concurrency = \"auto\"\nmax-concurrency = 3\n"));
    assert!(most <= 3, "{most} at once\n{stderr}");
    assert!(stderr.contains("(auto)"), "{stderr}");
}

#[test]
fn a_fixed_j_never_changes() {
    let (most, stderr) = run_counting(24, &["-j", "2", "-v"], None);
    assert!(most <= 2, "{most} at once\n{stderr}");
    assert!(!stderr.contains(" → "), "a fixed -j changed:\n{stderr}");
    assert!(stderr.contains("  concurrency 2 (-j 2)"), "{stderr}");
}

#[test]
fn bad_j_values_exit_2_with_a_hint() {
    let env = TestEnv::new(PortalOptions::default());
    for value in ["0", "fast", "10001", "-1"] {
        let output = env.fanout().args(["--role", "ReadOnly", &format!("-j={value}"), "--", "true"]).output().unwrap();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "-j {value}: {stderr}");
        assert!(stderr.contains("expected `auto` or a number from 1 to 10000"), "-j {value}: {stderr}");
    }
    let output = env.fanout().args(["--role", "ReadOnly", "--max-concurrency", "0", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
}

#[test]
fn auto_is_the_default_and_fanout_concurrency_sets_either() {
    let env = TestEnv::new(PortalOptions::default());
    let summary = |vars: &[(&str, &str)]| {
        let output =
            env.fanout().envs(vars.iter().copied()).args(["--role", ROLES, "-v", "--", "true"]).output().unwrap();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        stderr.lines().find(|line| line.starts_with("  concurrency ")).map(str::to_owned).unwrap_or(stderr)
    };
    assert!(summary(&[]).ends_with("(auto)"));
    assert!(
        summary(&[("FANOUT_CONCURRENCY", "auto"), ("FANOUT_MAX_CONCURRENCY", "1")]).ends_with("concurrency 1 (auto)")
    );
    assert_eq!(summary(&[("FANOUT_CONCURRENCY", "3")]), "  concurrency 3 (-j 3)");
}
