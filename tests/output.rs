//! Output streaming, closed pipes, signals, and secrets kept out of every byte fanout
//! itself writes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{PortalOptions, generated_accounts};

#[test]
fn stdout_and_stderr_lines_keep_their_streams_and_last_lines_their_due() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--match", "team000-dev", "--", "sh", "-c"])
        .arg("echo out1; echo err1 >&2; printf 'out2-no-newline'; printf 'err2-no-newline' >&2")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "100000001111|out1\n100000001111|out2-no-newline\n");
    let stderr = stderr_of(&output);
    assert!(stderr.starts_with("100000001111|err1\n100000001111|err2-no-newline\n"), "{stderr}");
}

#[test]
fn bytes_that_are_not_utf8_pass_through_unchanged() {
    let env = TestEnv::new(PortalOptions::default());
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--match", "team000-dev", "--", "printf", "\\377\\376 caf\\303\\251\\n"])
        .output()
        .unwrap();
    assert_eq!(output.stdout, b"100000001111|\xff\xfe caf\xc3\xa9\n");
}

#[test]
fn lines_are_never_torn_or_interleaved_under_load() {
    // 40 children each write 5,000 numbered lines as fast as they can, in writes that
    // do not end at line boundaries (awk's buffered output), all at once.
    const LINES: usize = 5000;
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(40), ..PortalOptions::default() });
    let script = format!(
        r#"awk 'BEGIN {{ for (i = 0; i < {LINES}; i++) printf "%s line %d %s\n", ENVIRON["FANOUT_ACCOUNT_ID"], i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" }}'"#
    );
    let output = env
        .fanout()
        .args(["--role", "ReadOnly,AdministratorAccess", "-j", "40", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let mut next_line = std::collections::HashMap::new();
    for line in stdout.lines() {
        let (prefix, rest) = line.split_once('|').expect("every line has a prefix");
        let mut words = rest.split(' ');
        assert_eq!(words.next(), Some(prefix), "a line carries another account's text: {line}");
        assert_eq!(words.next(), Some("line"), "torn line: {line}");
        let number: usize = words.next().unwrap().parse().expect("torn line");
        assert_eq!(words.next().map(str::len), Some(50), "torn line: {line}");
        let expected = next_line.entry(prefix.to_owned()).or_insert(0);
        assert_eq!(number, *expected, "{prefix} lines out of order");
        *expected += 1;
    }
    assert_eq!(next_line.len(), 40);
    assert!(next_line.values().all(|&n| n == LINES));
}

#[test]
fn a_closed_stdout_ends_fanout_quietly() {
    let env = TestEnv::new(PortalOptions::default());
    let mut child = env
        .std_fanout()
        .args(["--role", "ReadOnly", "--", "sh", "-c", "yes ready | head -n 100000; sleep 30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.ends_with("|ready\n"), "{first}");
    drop(stdout); // what `| head -1` does
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr_of(&output), "", "a closed pipe is not an error");
    assert!(started.elapsed() < Duration::from_secs(25), "the children were not stopped");
}

#[test]
fn sigint_and_sigterm_are_forwarded_to_the_children() {
    for (signal, name, code) in [(libc::SIGINT, "INT", 130), (libc::SIGTERM, "TERM", 143)] {
        let env = TestEnv::new(PortalOptions::default());
        let script = format!("trap 'echo got-{name}; exit 7' {name}; echo ready; while :; do sleep 0.1; done");
        let mut child = env
            .std_fanout()
            .args(["--role", "ReadOnly", "--match", "team000-dev", "--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "100000001111|ready\n");
        // SAFETY: kill with a valid pid and signal has no memory-safety preconditions.
        unsafe { libc::kill(i32::try_from(child.id()).unwrap(), signal) };
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let output = child.wait_with_output().unwrap();
        assert_eq!(rest, format!("100000001111|got-{name}\n"));
        assert_eq!(output.status.code(), Some(code), "{name}");
        let stderr = stderr_of(&output);
        assert!(stderr.contains("interrupted  100000001111 (team000-dev): exit code 7"), "{stderr}");
    }
}

#[test]
fn a_background_process_holding_the_output_open_is_stopped() {
    let env = TestEnv::new(PortalOptions::default());
    let pid_file = env.home().join("background.pid");
    let script = format!("sleep 60 & echo $! > {}; echo started", pid_file.display());
    let args = ["--role", "ReadOnly", "--match", "team000-dev", "--", "sh", "-c", &script];
    let output = env.fanout().args(args).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "100000001111|started\n");
    assert!(stderr_of(&output).contains("kept its output open"), "{}", stderr_of(&output));
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_owned();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(), "the background process {pid} outlived fanout");
}

#[test]
fn no_verbosity_shows_a_token_or_a_key() {
    let options = PortalOptions {
        failing_credentials: ["100000002222".to_owned()].into(),
        throttled_credentials: [("100000003333".to_owned(), 1)].into(),
        ..PortalOptions::default()
    };
    let env = TestEnv::new(options);
    for verbosity in ["-v", "-vv", "-vvv"] {
        for args in [
            &["--role", "ReadOnly", "--", "true"][..],
            &["accounts"][..],
            &["--role", "ReadOnly", "--dry-run", "--", "true"][..],
        ] {
            let output = env.fanout().arg(verbosity).args(args).output().unwrap();
            let text = format!("{}{}", stdout_of(&output), stderr_of(&output));
            assert!(text.len() > 100, "{verbosity} {args:?} logged too little to be a test: {text}");
            for secret in [fake_portal::DEFAULT_TOKEN, "secret-1000000", "session-1000000", "ASIA1000000"] {
                assert!(!text.contains(secret), "{verbosity} {args:?} leaked {secret}:\n{text}");
            }
        }
    }
}
