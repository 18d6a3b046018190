//! One helper that isolates every test: a temporary HOME with its own AWS config and
//! token cache, a fake portal on loopback reached through `AWS_ENDPOINT_URL_SSO`, and
//! an environment with nothing of the developer's AWS setup in it.

#![allow(dead_code, reason = "each test binary uses a different part of this helper")]

pub mod terminal;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use fake_portal::home::{HomeOptions, write_home, write_token};
use fake_portal::{FakePortal, PortalOptions};

pub struct TestEnv {
    pub home: tempfile::TempDir,
    pub portal: FakePortal,
}

impl TestEnv {
    /// A portal with `options` and a HOME logged in to it as sso-session `corp`.
    pub fn new(options: PortalOptions) -> Self {
        Self::with_home(options, &HomeOptions::default())
    }

    pub fn with_home(options: PortalOptions, home_options: &HomeOptions) -> Self {
        let home = tempfile::tempdir().expect("temp HOME");
        write_home(home.path(), home_options).expect("write HOME");
        TestEnv { home, portal: FakePortal::start(options) }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.home().join(".aws/config")
    }

    /// Replaces `~/.aws/config`.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Caches `token` for `key` (a session name or a legacy start URL).
    pub fn write_token(&self, key: &str, token: &str, expires_in: Duration) {
        write_token(self.home(), key, token, SystemTime::now() + expires_in).expect("write token");
    }

    /// fanout with the isolated environment; `AWS_ENDPOINT_URL_SSO` points at the portal.
    pub fn fanout(&self) -> assert_cmd::Command {
        let mut command = self.bare_fanout();
        command.env("AWS_ENDPOINT_URL_SSO", self.portal.url());
        command
    }

    /// fanout with the isolated environment and no endpoint override.
    pub fn bare_fanout(&self) -> assert_cmd::Command {
        let mut command = assert_cmd::Command::cargo_bin("fanout").expect("fanout binary");
        command.env_clear().envs(self.isolated_env()).timeout(Duration::from_mins(2));
        command
    }

    /// The same environment for a `std::process::Command` (signal and pipe tests).
    pub fn std_fanout(&self) -> std::process::Command {
        self.isolated(assert_cmd::cargo::cargo_bin("fanout"))
    }

    /// Any program in the isolated environment with the portal's endpoint, e.g. a shell
    /// that sets a limit and then runs fanout.
    pub fn isolated(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command.env_clear().envs(self.isolated_env()).env("AWS_ENDPOINT_URL_SSO", self.portal.url());
        command
    }

    /// Nothing of the developer's own AWS setup: a temp HOME and config, and PATH.
    fn isolated_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("PATH", std::env::var_os("PATH").unwrap_or_default()),
            ("HOME", self.home().into()),
            ("AWS_CONFIG_FILE", self.config_path().into()),
            ("AWS_SHARED_CREDENTIALS_FILE", self.home().join(".aws/credentials").into()),
            ("NO_COLOR", "1".into()),
        ]
    }
}

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Lines, sorted: concurrent output arrives in any order.
pub fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// A mark for a test's fanout run: set as `FANOUT_TEST_MARK` in its environment, it is
/// inherited by every child, so a test can count what is left of them.
pub fn new_mark() -> String {
    let nanos = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// The live processes (zombies aside) whose environment holds `mark`.
pub fn processes_marked(mark: &str) -> Vec<u32> {
    let needle = format!("FANOUT_TEST_MARK={mark}\0");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')));
        if !zombie && environ.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Waits up to a second for the processes of `mark` to be gone (a killed process is
/// reaped by init a moment later), then asserts none is left.
pub fn assert_none_left(mark: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !processes_marked(mark).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(processes_marked(mark), Vec::<u32>::new(), "processes left behind");
}

/// The JSON lines in `bytes`, each checked against docs/json-output.schema.json.
pub fn valid_records(bytes: &[u8]) -> Vec<serde_json::Value> {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("docs/json-output.schema.json").unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is valid");
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let record: serde_json::Value = serde_json::from_slice(line).expect("every line is JSON");
            let errors: Vec<String> = validator.iter_errors(&record).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{record}: {errors:?}");
            record
        })
        .collect()
}
