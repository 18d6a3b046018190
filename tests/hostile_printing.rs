//! Issue 16, points 9 and 10: what fanout prints of a hostile value is bounded and
//! honest (clipped with its length; control and Unicode format characters escaped; a
//! newline in the Markdown summary visible; the confirm prompt's wait not counted), and
//! the credential server cannot be used to flood stderr or fanout's file descriptors.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::terminal::{Tmux, isolated_fanout_words};
use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{Account, PortalOptions, generated_accounts};

/// Longer than the 512 characters a printed value keeps, but within the 1,024 bytes a name
/// may have (`limits::MAX_NAME_BYTES`; a longer one skips its account): what is clipped
/// here is a name the listing keeps. The unit tests in `text` clip 20 MB.
const LONG: usize = 1_000;

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

#[test]
fn the_wait_at_the_confirm_prompt_is_not_the_runs_duration() {
    let Some(tmux) = Tmux::start() else { return };
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(24), ..PortalOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let done = dir.path().join("done");
    let mut words = isolated_fanout_words(&env, &env.portal.url());
    words.extend(["--role", "ReadOnly", "--output", "json", "--", "true"].map(str::to_owned));
    let script = format!(
        "{} > {}; touch {}; sleep 600",
        shell_words::join(&words),
        shell_words::quote(&out.display().to_string()),
        shell_words::quote(&done.display().to_string())
    );
    tmux.run(&script);
    tmux.wait_for("[y/N]");
    std::thread::sleep(Duration::from_secs(2));
    tmux.type_line("y");
    let deadline = Instant::now() + Duration::from_mins(1);
    while !done.exists() {
        assert!(Instant::now() < deadline, "fanout did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(tmux);
    let text = std::fs::read_to_string(&out).unwrap();
    let summary: serde_json::Value = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|record| record["type"] == "summary" || record["kind"] == "summary")
        .expect(&text);
    let duration_ms = summary["duration_ms"].as_u64().expect(&text);
    assert!(duration_ms < 2000, "the 2 s at the prompt were counted: {duration_ms} ms");
}

/// Whether `python3` runs here; if not, says why the test is skipped.
fn python3() -> bool {
    let found = Command::new("python3").arg("-c").arg("import urllib.request").status().is_ok_and(|s| s.success());
    if !found {
        println!("skipped: python3 is not installed");
    }
    found
}

/// Sends `sys.argv[2]` requests with a wrong token, then one with its own; prints the
/// last answer's status. With `sys.argv[1]` a directory, first writes its URI there and
/// waits for a `go` file.
const CHILD: &str = r#"
import os, sys, time, urllib.request, urllib.error

share, wrong = sys.argv[1], int(sys.argv[2])
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
if share != "-":
    with open(os.path.join(share, "uri.tmp"), "w") as out:
        out.write(uri)
    os.rename(os.path.join(share, "uri.tmp"), os.path.join(share, "uri"))
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(share, "go")) and time.time() < deadline:
        time.sleep(0.05)

def ask(token):
    request = urllib.request.Request(uri)
    request.add_header("Authorization", token)
    for attempt in range(20):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.5)
    return 0

for _ in range(wrong):
    ask("not-the-token")
print(ask(token))
"#;

fn child_script(dir: &Path) -> PathBuf {
    let path = dir.join("child.py");
    std::fs::write(&path, CHILD).unwrap();
    path
}

#[test]
fn refused_requests_are_warned_about_once_with_a_count() {
    if !python3() {
        return;
    }
    let env = TestEnv::new(one_account("alpha"));
    let dir = tempfile::tempdir().unwrap();
    let child = child_script(dir.path());
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--credential-server", "--", "python3"])
        .arg(&child)
        .args(["-", "300"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "111111111111|200\n");
    let stderr = stderr_of(&output);
    let warnings: Vec<&str> = stderr.lines().filter(|line| line.contains("refused")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(warnings[0].contains("refused a request with a wrong authorization token (403)"), "{stderr}");
    assert!(warnings[1].contains("refused 299 more requests (403) since its last warning"), "{stderr}");
}

/// Descriptors `pid` has open now.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// The soft open-file limit raised to the hard one: the flood needs its own sockets.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
        }
    }
}

/// Opens up to `count` connections to `address` at once and keeps them open; returns
/// those that connected within 2 s.
fn flood(address: &str, count: usize) -> Vec<tokio::net::TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let connects = (0..count).map(|_| {
            let address = address.to_owned();
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(address)).await
            })
        });
        let mut open = Vec::new();
        for connect in connects.collect::<Vec<_>>() {
            if let Ok(Ok(Ok(stream))) = connect.await {
                open.push(stream);
            }
        }
        open
    })
}

#[test]
fn a_connection_flood_does_not_take_fanouts_descriptors() {
    if !python3() {
        return;
    }
    raise_open_file_limit();
    let env = TestEnv::new(one_account("alpha"));
    let dir = tempfile::tempdir().unwrap();
    let child = child_script(dir.path());
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let fanout = env
        .std_fanout()
        .args(["--role", "ReadOnly", "--credential-server", "-j", "1", "--", "python3"])
        .arg(&child)
        .arg(&share)
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = fanout.id();
    let deadline = Instant::now() + Duration::from_mins(1);
    while !share.join("uri").exists() {
        assert!(Instant::now() < deadline, "the child never wrote its URI");
        std::thread::sleep(Duration::from_millis(50));
    }
    let uri = std::fs::read_to_string(share.join("uri")).unwrap();
    let address = uri.strip_prefix("http://").and_then(|rest| rest.split('/').next()).unwrap().to_owned();
    let before = open_fds(pid);
    let streams = flood(&address, 2000);
    // The server's 20 and the listen backlog's (`net.core.somaxconn`, 128 on some
    // machines, 4096 on others) connect; the rest time out. Without the cap, fanout
    // accepts as fast as they come, and all 2,000 connect.
    assert!(streams.len() > 100, "only {} connections opened: the flood did not happen", streams.len());
    let mut most = 0;
    for _ in 0..10 {
        most = most.max(open_fds(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    // At -j 1 the server keeps 20 connections at most; the rest wait in the backlog.
    assert!(most < before + 40, "{most} descriptors open during a flood of {}, {before} before", streams.len());
    drop(streams);
    std::fs::write(share.join("go"), "").unwrap();
    let output = fanout.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "111111111111|200\n", "{}", stderr_of(&output));
}
