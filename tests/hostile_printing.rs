//! Issue 16, points 9 and 10: what fanout prints of a hostile value is bounded and
//! honest (clipped with its length; control and Unicode format characters escaped; a
//! newline in the Markdown summary visible; the confirm prompt's wait not counted), and
//! the credential server cannot be used to flood stderr or fanout's file descriptors.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{Account, PortalOptions, generated_accounts};

/// Long, but under the 64 KiB a name may have (issue 16 point 8 refuses longer ones,
/// account by account): what is clipped here is a name the listing keeps.
const LONG: usize = 60_000;

/// The longest stderr line any of these runs may print: a few clipped values and text.
const MAX_LINE_BYTES: usize = 4096;

fn one_account(name: &str) -> PortalOptions {
    PortalOptions { accounts: vec![Account::new("111111111111", name, &["ReadOnly"])], ..PortalOptions::default() }
}

fn assert_lines_bounded(text: &str, what: &str) {
    for line in text.lines() {
        assert!(line.len() <= MAX_LINE_BYTES, "a {} byte line on {what}: {}…", line.len(), &line[..200]);
    }
}

#[test]
fn a_long_name_is_clipped_with_its_length_in_the_summary_the_plan_and_prefixes() {
    let name = "n".repeat(LONG);
    let env = TestEnv::new(one_account(&name));
    let clipped = format!("… ({LONG} bytes)");
    // A failing command: the summary names the account in its `failed` line.
    let output = env.fanout().args(["--role", "ReadOnly", "--prefix", "{account_name}", "--", "echo", "hi"]).output();
    let output = output.unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output).len());
    let stdout = stdout_of(&output);
    assert_lines_bounded(&stdout, "stdout");
    assert!(stdout.contains(&format!("{clipped}|hi")), "{}", &stdout[..200.min(stdout.len())]);
    let failed = env.fanout().args(["--role", "ReadOnly", "--", "false"]).output().unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = stderr_of(&failed);
    assert_lines_bounded(&stderr, "stderr");
    let line = stderr.lines().find(|line| line.contains("failed  ")).expect("a failed line");
    assert!(line.contains(&clipped) && line.contains("111111111111 (nnn"), "{line}");
    // The dry run's plan and `fanout accounts`.
    let dry = env.fanout().args(["--role", "ReadOnly", "--dry-run", "--", "true"]).output().unwrap();
    assert!(dry.status.success());
    let plan = format!("{}{}", stdout_of(&dry), stderr_of(&dry));
    assert_lines_bounded(&plan, "the dry run");
    assert!(plan.contains(&clipped), "{}", &plan[..plan.len().min(300)]);
    let table = env.fanout().arg("accounts").output().unwrap();
    assert!(table.status.success());
    assert_lines_bounded(&stdout_of(&table), "fanout accounts");
    assert!(stdout_of(&table).contains(&clipped));
}

#[test]
fn a_long_portal_message_is_clipped_with_its_length_in_the_error_line() {
    let message = "m".repeat(100 * 1024);
    let env = TestEnv::new(PortalOptions {
        failing_credentials: ["111111111111".to_owned()].into(),
        failure_message: Some(message),
        ..one_account("alpha")
    });
    let output = env.fanout().args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output).len());
    let stderr = stderr_of(&output);
    assert_lines_bounded(&stderr, "stderr");
    let line = stderr.lines().find(|line| line.contains("failed  ")).expect("a failed line");
    assert!(line.contains("mmm… (102400 bytes)"), "{line}");
}

/// Right-to-left override, zero-width space, a left-to-right isolate and a BOM.
const FORMAT_NAME: &str = "invoice\u{202e}fdp.exe\u{200b}\u{2066}\u{feff}";
const FORMAT_SHOWN: &str = "invoice\\u{202e}fdp.exe\\u{200b}\\u{2066}\\u{feff}";

fn assert_no_format_characters(text: &str, what: &str) {
    for c in ['\u{202e}', '\u{200b}', '\u{2066}', '\u{feff}'] {
        assert!(!text.contains(c), "{c:?} reached {what}: {text}");
    }
}

#[test]
fn format_characters_are_escaped_in_text_output_the_summary_and_the_dry_run() {
    let env = TestEnv::new(one_account(FORMAT_NAME));
    let runs: [&[&str]; 4] = [
        &["--role", "ReadOnly", "--prefix", "{account_name}", "--", "echo", "hi"],
        &["--role", "ReadOnly", "--", "false"],
        &["--role", "ReadOnly", "--dry-run", "--", "true"],
        &["accounts"],
    ];
    for args in runs {
        let output = env.fanout().args(args).output().unwrap();
        let (stdout, stderr) = (stdout_of(&output), stderr_of(&output));
        assert_no_format_characters(&stdout, &format!("stdout of {args:?}"));
        assert_no_format_characters(&stderr, &format!("stderr of {args:?}"));
        assert!(format!("{stdout}{stderr}").contains(FORMAT_SHOWN), "{args:?}: {stdout}{stderr}");
    }
}

#[test]
fn the_markdown_summary_shows_a_newline_in_a_name_as_an_escape() {
    let env = TestEnv::new(one_account("prod\n| forged | row |"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.md");
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--summary-markdown", path.to_str().unwrap(), "--", "false"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let text = std::fs::read_to_string(&path).unwrap();
    // `\\n` in the file: the Markdown for a visible `\n`.
    assert!(text.contains("111111111111 \\(prod\\\\n\\| forged \\| row \\|\\)"), "{text}");
    assert!(!text.lines().any(|line| line.starts_with("| forged")), "{text}");
}

/// tmux, for a real terminal that the confirmation prompt asks on; `None` when absent.
fn tmux_socket() -> Option<tempfile::TempDir> {
    let found = Command::new("tmux").arg("-V").output().is_ok_and(|output| output.status.success());
    if !found {
        println!("skipped: tmux is not installed, so no pseudo-terminal test");
    }
    found.then(|| tempfile::tempdir().unwrap())
}

fn tmux(socket: &Path) -> Command {
    let mut command = Command::new("tmux");
    command.arg("-S").arg(socket.join("socket")).args(["-f", "/dev/null"]);
    command
}

#[test]
fn the_wait_at_the_confirm_prompt_is_not_the_runs_duration() {
    let Some(socket) = tmux_socket() else { return };
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(24), ..PortalOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let done = dir.path().join("done");
    let fanout = assert_cmd::cargo::cargo_bin("fanout");
    let vars = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", env.home().display().to_string()),
        ("AWS_CONFIG_FILE", env.config_path().display().to_string()),
        ("AWS_ENDPOINT_URL_SSO", env.portal.url()),
        ("TERM", "xterm".to_owned()),
    ];
    let mut words: Vec<String> = vec!["env".into(), "-i".into()];
    words.extend(vars.iter().map(|(name, value)| format!("{name}={value}")));
    words.push(fanout.display().to_string());
    words.extend(["--role", "ReadOnly", "--output", "json", "--", "true"].map(str::to_owned));
    let script = format!(
        "{} > {}; touch {}; sleep 600",
        shell_words::join(&words),
        shell_words::quote(&out.display().to_string()),
        shell_words::quote(&done.display().to_string())
    );
    let started = tmux(socket.path()).args(["new-session", "-d", "-x", "200", "-y", "50", &script]).status();
    assert!(started.unwrap().success());
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let pane = tmux(socket.path()).args(["capture-pane", "-p"]).output().unwrap();
        if String::from_utf8_lossy(&pane.stdout).contains("[y/N]") {
            break;
        }
        assert!(Instant::now() < deadline, "no prompt");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(tmux(socket.path()).args(["send-keys", "-t", "0", "y", "Enter"]).status().unwrap().success());
    while !done.exists() {
        assert!(Instant::now() < deadline + Duration::from_mins(1), "fanout did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = tmux(socket.path()).arg("kill-server").stderr(Stdio::null()).status();
    let text = std::fs::read_to_string(&out).unwrap();
    let summary: serde_json::Value =
        text.lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()).find(|record| {
            record["type"] == "summary" || record["kind"] == "summary"
        }).expect(&text);
    let duration_ms = summary["duration_ms"].as_u64().expect(&text);
    assert!(duration_ms < 2000, "the 2 s at the prompt were counted: {duration_ms} ms");
}
