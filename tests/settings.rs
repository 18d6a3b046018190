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
    // What --approve names: the file's SHA-256, as sha256sum prints it.
    let sha: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(std::fs::read(&plan_path).unwrap())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .concat()
    };
    write_default_file(
        &env,
        "role = [\"ViewOnly\"]\nexclude = [\"team-*\"]\nregion = \"eu-west-1\"\nprefix = \"{account_name}\"\n",
    );
    let output = env.fanout().env("FANOUT_ROLE", "ViewOnly").args(["apply", plan, "--approve", &sha]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(sorted_lines(&stdout_of(&output)), ["other-dev|planned", "team-dev|planned"]);
}

/// Fails in the `-dev` accounts.
const FAIL_IN_DEV: [&str; 4] = ["--", "sh", "-c", "case \"$FANOUT_ACCOUNT_NAME\" in *-dev) exit 3;; esac; echo ok"];

#[test]
fn on_off_options_and_max_failures_come_from_the_file_and_the_environment() {
    let env = env_with_accounts();
    write_default_file(&env, "role = [\"ReadOnly\"]\nquiet = true\nkeep-order = true\nmax-failures = 1\n");
    let config = env.fanout().arg("config").output().unwrap();
    let shown = stdout_of(&config);
    for key in ["quiet", "keep-order", "max-failures"] {
        let line = shown.lines().find(|l| l.starts_with(&format!("{key} "))).unwrap();
        assert!(line.contains("(file "), "{line}");
    }
    // quiet: no summary after a clean run.
    let clean = env.fanout().args(["--match", "team-prod", "--", "echo", "hi"]).output().unwrap();
    assert_eq!(clean.status.code(), Some(0), "{}", stderr_of(&clean));
    assert_eq!(stderr_of(&clean), "");
    // keep-order: the accounts in selection order; max-failures 1: the second failure is
    // never started (-j 1 makes the order of failures certain).
    let halted = env.fanout().args(["-j", "1"]).args(FAIL_IN_DEV).output().unwrap();
    assert_eq!(halted.status.code(), Some(1), "{}", stderr_of(&halted));
    assert!(stderr_of(&halted).contains("not started"), "{}", stderr_of(&halted));
    // FANOUT_GROUP set to a false value is off, as FANOUT_YES is.
    let off = env.fanout().env("FANOUT_GROUP", "false").env("FANOUT_QUIET", "0").arg("config").output().unwrap();
    let quiet_line = stdout_of(&off).lines().find(|l| l.starts_with("quiet ")).map(str::to_owned).unwrap();
    assert!(quiet_line.contains("(env FANOUT_QUIET)"), "{quiet_line}");
}

#[test]
fn fail_fast_sets_aside_a_default_limit_but_not_the_flag() {
    let env = env_with_accounts();
    write_default_file(&env, "role = [\"ReadOnly\"]\nmax-failures = 3\n");
    for (name, value) in [("FANOUT_UNUSED", ""), ("FANOUT_MAX_FAILURES", "2")] {
        let run = env.fanout().env(name, value).args(["--fail-fast", "-j", "1"]).args(FAIL_IN_DEV).output().unwrap();
        assert_eq!(run.status.code(), Some(1), "{}", stderr_of(&run));
        assert!(stderr_of(&run).contains("not started"), "--fail-fast halts at the first failure: {}", stderr_of(&run));
    }
    let both = env.fanout().args(["--fail-fast", "--max-failures", "2"]).args(FAIL_IN_DEV).output().unwrap();
    assert_eq!(both.status.code(), Some(2));
    assert!(stderr_of(&both).contains("'--fail-fast' cannot be used with '--max-failures'"), "{}", stderr_of(&both));
}

#[test]
fn resume_and_retry_take_the_joblogs_roles_over_a_default_role() {
    let env = env_with_accounts();
    let log = env.home().join("run.log");
    let log_arg = log.to_str().unwrap();
    let first = env.fanout().args(["--role", "ViewOnly", "--joblog", log_arg]).args(FAIL_IN_DEV).output().unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", stderr_of(&first));
    write_default_file(&env, "role = [\"ReadOnly\"]\n");
    let retry = env
        .fanout()
        .env("FANOUT_ROLE", "ReadOnly")
        .args(["--retry-failed", log_arg, "--", "sh", "-c", "echo $FANOUT_ROLE"])
        .output()
        .unwrap();
    assert_eq!(retry.status.code(), Some(0), "{}", stderr_of(&retry));
    assert_eq!(sorted_lines(&stdout_of(&retry)), ["111111111111|ViewOnly", "333333333333|ViewOnly"]);
}
