//! Defaults without flags: the config file and the `FANOUT_*` variables, layered flag >
//! environment > file > built-in default, and `fanout config` naming each source.

mod common;

use std::path::PathBuf;

use common::{TestEnv, sorted_lines, stderr_of, stdout_of};
use fake_portal::{Account, PortalOptions};

fn env_with_accounts() -> TestEnv {
    TestEnv::new(PortalOptions {
        accounts: vec![
            Account::new("111111111111", "team-dev", &["ReadOnly", "ViewOnly"]),
            Account::new("222222222222", "team-prod", &["ReadOnly", "ViewOnly"]),
            Account::new("333333333333", "other-dev", &["ReadOnly", "ViewOnly"]),
        ],
        ..PortalOptions::default()
    })
}

/// Writes the config file where fanout looks by default: `~/.config/fanout/config.toml`.
fn write_default_file(env: &TestEnv, text: &str) -> PathBuf {
    let dir = env.home().join(".config/fanout");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const ECHO_ROLE: [&str; 4] = ["--", "sh", "-c", "echo $FANOUT_ROLE"];

#[test]
fn the_file_sets_a_default_role_and_exclude() {
    let env = env_with_accounts();
    write_default_file(&env, "role = [\"ReadOnly\"]\nexclude = [\"*-prod\"]\nprefix = \"{account_name}\"\n");
    let output = env.fanout().args(ECHO_ROLE).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(sorted_lines(&stdout_of(&output)), ["other-dev|ReadOnly", "team-dev|ReadOnly"]);
}

#[test]
fn env_beats_the_file_and_a_flag_beats_env() {
    let env = env_with_accounts();
    let file = env.home().join("elsewhere.toml");
    std::fs::write(&file, "role = [\"ReadOnly\"]\nexclude = [\"*-prod\"]\nprefix = \"{account_name}\"\n").unwrap();
    let run = |extra: &[&str]| {
        let output = env
            .fanout()
            .env("FANOUT_CONFIG", &file)
            .env("FANOUT_ROLE", "ViewOnly")
            .env("FANOUT_EXCLUDE", "other-*")
            .args(extra)
            .args(ECHO_ROLE)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        sorted_lines(&stdout_of(&output))
    };
    assert_eq!(run(&[]), ["team-dev|ViewOnly", "team-prod|ViewOnly"]);
    assert_eq!(run(&["--role", "ReadOnly", "--exclude", "team-*"]), ["other-dev|ReadOnly"]);
}

#[test]
fn an_unknown_key_is_an_error_naming_file_line_and_key() {
    let env = env_with_accounts();
    let path = write_default_file(&env, "role = [\"ReadOnly\"]\n\ncolour = \"blue\"\n");
    let output = env.fanout().args(ECHO_ROLE).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains(&path.display().to_string()) && stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");
    assert_eq!(env.portal.stats().served(), 0, "nothing was asked of the portal");
    let man = env.fanout().arg("man").output().unwrap();
    assert_eq!(man.status.code(), Some(0), "the man page needs no config file: {}", stderr_of(&man));
}

#[test]
fn a_value_of_the_wrong_type_or_range_is_an_error_naming_file_line_and_key() {
    let env = env_with_accounts();
    for (text, line, key) in [
        ("role = [\"ReadOnly\"]\nconcurrency = \"eight\"\n", "line 2", "key `concurrency`"),
        ("role = \"ReadOnly\"\n", "line 1", "key `role`"),
        ("timeout = \"soon\"\n", "line 1", "key `timeout`"),
        ("\n\nconfirm-above = -1\n", "line 3", "key `confirm-above`"),
    ] {
        let path = write_default_file(&env, text);
        let output = env.fanout().args(ECHO_ROLE).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{text}");
        let stderr = stderr_of(&output);
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(stderr.contains(line) && stderr.contains(key), "{text}: {stderr}");
    }
}

#[test]
fn a_config_file_named_by_fanout_config_must_exist() {
    let env = env_with_accounts();
    let output = env.fanout().env("FANOUT_CONFIG", env.home().join("missing.toml")).args(ECHO_ROLE).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("missing.toml"), "{}", stderr_of(&output));
}

#[test]
fn fanout_config_shows_each_value_and_its_source() {
    let env = env_with_accounts();
    let path = write_default_file(&env, "role = [\"ReadOnly\", \"ViewOnly\"]\nconcurrency = 8\ntimeout = \"10m\"\n");
    let output = env.fanout().env("FANOUT_CONCURRENCY", "4").args(["--timeout", "1m", "config"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
            .to_owned()
    };
    assert!(
        line("role").contains("= ReadOnly,ViewOnly") && line("role").ends_with(&format!("(file {})", path.display()))
    );
    assert!(line("concurrency").contains("= 4") && line("concurrency").ends_with("(env FANOUT_CONCURRENCY)"));
    assert!(line("timeout").contains("= 1m") && line("timeout").ends_with("(flag)"));
    assert!(line("kill-after").contains("= 5s") && line("kill-after").ends_with("(default)"));
    assert_eq!(env.portal.stats().served(), 0, "config needs no login");
}

#[test]
fn apply_ignores_a_default_role_exclude_and_region_but_takes_the_prefix() {
    let env = env_with_accounts();
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.json");
    let plan = plan_path.to_str().unwrap();
    let args = ["--role", "ReadOnly", "--match", "*-dev", "--dry-run", "--save-plan", plan, "--", "echo", "planned"];
    let saved = env.fanout().args(args).output().unwrap();
    assert_eq!(saved.status.code(), Some(0), "{}", stderr_of(&saved));
    let plan_json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    let sha = plan_json["sha256"].as_str().unwrap();
    write_default_file(
        &env,
        "role = [\"ViewOnly\"]\nexclude = [\"team-*\"]\nregion = \"eu-west-1\"\nprefix = \"{account_name}\"\n",
    );
    let output = env.fanout().env("FANOUT_ROLE", "ViewOnly").args(["apply", plan, "--approve", sha]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(sorted_lines(&stdout_of(&output)), ["other-dev|planned", "team-dev|planned"]);
}
