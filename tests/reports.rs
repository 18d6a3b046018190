//! `--summary-markdown`, `--junit` and `--report`: the CI reports a run writes when it
//! ends, checked as the CI system would read them.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{TestEnv, stderr_of};
use fake_portal::{Account, PortalOptions, generated_accounts};
use quick_xml::XmlVersion;
use quick_xml::events::Event;

/// Fails in the `-dev` accounts and the hostile one, after two stderr lines, the last
/// one with table, markup and terminal characters in it.
const SCRIPT: &str = r#"case "$FANOUT_ACCOUNT_NAME" in *-dev|evil*) printf 'warming up\nboom | <b>bad</b> \033[31mred\001\n' >&2; exit 3;; esac; echo ok"#;

/// 12 generated accounts (team000-dev and team001-dev fail, team001-sandbox lacks the
/// role) and one whose name is markup; the first credentials call of team000-prod is
/// throttled.
fn env() -> TestEnv {
    let mut accounts = generated_accounts(12);
    accounts.push(Account::new("999999999999", "evil<b>|x</b>&\"", &["ReadOnly"]));
    let throttled = HashMap::from([(accounts[0].id.clone(), 1)]);
    TestEnv::new(PortalOptions { accounts, throttled_credentials: throttled, ..PortalOptions::default() })
}

fn run_with(env: &TestEnv, flag: &str, path: &Path) -> std::process::Output {
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", flag, path.to_str().unwrap(), "--", "sh", "-c", SCRIPT])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    output
}

#[test]
fn the_markdown_summary_is_appended_with_a_row_per_failed_account() {
    let env = env();
    let path = env.home().join("step-summary.md");
    std::fs::write(&path, "# an earlier step\n").unwrap();
    run_with(&env, "--summary-markdown", &path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# an earlier step\n\n## fanout\n"), "{text}");
    assert!(text.contains("**13 accounts selected**: 9 succeeded, 3 failed, 1 skipped (no role) in "), "{text}");
    assert!(text.contains("s; 1 throttled portal calls."), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Account") && !l.starts_with("| ---"))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    let evil = rows.iter().find(|r| r.starts_with("| 999999999999")).expect("the hostile account's row");
    assert_eq!(
        *evil,
        // Control characters are shown as escapes, not dropped (issue 16 point 9).
        r#"| 999999999999 \(evil\<b\>\|x\<\/b\>\&\"\) | exit | exit code 3 | <code>boom \| \<b\>bad\<\/b\> \\u\{1b\}\[31mred\\u\{1\}</code> |"#
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\u{1}'), "{text:?}");
    // Each cell of a row splits on unescaped pipes only: four cells, as the header has.
    for row in &rows {
        assert_eq!(row.replace("\\|", "").matches('|').count(), 5, "{row}");
    }

    run_with(&env, "--summary-markdown", &path);
    let again = std::fs::read_to_string(&path).unwrap();
    assert!(again.starts_with(&text), "a second run appends");
    assert_eq!(again.matches("\n## fanout\n").count(), 2);
}

/// What a `JUnit` reader sees: the suite's attributes, the test cases, and each case's
/// failure (message and text) or skip.
#[derive(Debug, Default)]
struct Junit {
    suite: HashMap<String, String>,
    cases: Vec<Case>,
}

#[derive(Debug, Default)]
struct Case {
    name: String,
    classname: String,
    time: f64,
    failure: Option<(String, String)>,
    skipped: Option<String>,
}

fn attributes(element: &quick_xml::events::BytesStart<'_>) -> HashMap<String, String> {
    element
        .attributes()
        .map(|a| {
            let a = a.unwrap();
            (a.key.as_ref().to_owned(), a.normalized_value(XmlVersion::Explicit1_0).unwrap().into_owned())
        })
        .collect()
}

fn parse_junit(text: &str) -> Junit {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut junit = Junit::default();
    let mut in_failure = false;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let attrs = attributes(&e);
                match e.name().as_ref() {
                    "testsuite" => junit.suite = attrs,
                    "testcase" => junit.cases.push(Case {
                        name: attrs["name"].clone(),
                        classname: attrs["classname"].clone(),
                        time: attrs["time"].parse().unwrap(),
                        ..Case::default()
                    }),
                    "failure" => {
                        in_failure = true;
                        junit.cases.last_mut().unwrap().failure = Some((attrs["message"].clone(), String::new()));
                    }
                    "skipped" => junit.cases.last_mut().unwrap().skipped = Some(attrs["message"].clone()),
                    _ => {}
                }
            }
            Event::End(e) if e.name().as_ref() == "failure" => in_failure = false,
            Event::Text(t) if in_failure => {
                junit.cases.last_mut().unwrap().failure.as_mut().unwrap().1.push_str(&t.xml10_content());
            }
            Event::GeneralRef(r) if in_failure => {
                let entity = r.xml10_content();
                let resolved = quick_xml::escape::resolve_predefined_entity(&entity).expect("a predefined entity");
                junit.cases.last_mut().unwrap().failure.as_mut().unwrap().1.push_str(resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    junit
}

#[test]
fn junit_has_a_case_per_account_failures_with_the_end_of_stderr_and_skips() {
    let env = env();
    let path = env.home().join("junit.xml");
    run_with(&env, "--junit", &path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')),
        "no character XML forbids: {text:?}"
    );
    let junit = parse_junit(&text);
    assert_eq!(junit.cases.len(), 13);
    assert_eq!(junit.suite["tests"], "13");
    assert_eq!(junit.suite["failures"], "3");
    assert_eq!(junit.suite["skipped"], "1");
    assert_eq!(junit.cases.iter().filter(|c| c.failure.is_some()).count(), 3);
    assert_eq!(junit.cases.iter().filter(|c| c.skipped.is_some()).count(), 1);
    assert!(junit.cases.iter().all(|c| c.classname == "fanout" && c.time >= 0.0));
    let evil = junit.cases.iter().find(|c| c.name.starts_with("999999999999")).unwrap();
    assert_eq!(evil.name, "999999999999 (evil<b>|x</b>&\")");
    let (message, body) = evil.failure.as_ref().unwrap();
    assert_eq!(message, "exit");
    // Control characters are shown as escapes, not dropped (issue 16 point 9).
    assert_eq!(body, "exit code 3\n--- the end of stderr ---\nwarming up\nboom | <b>bad</b> \\u{1b}[31mred\\u{1}");
    let skipped = junit.cases.iter().find(|c| c.skipped.is_some()).unwrap();
    assert_eq!(
        (skipped.name.as_str(), skipped.skipped.as_deref()),
        ("100000009999 (team001-sandbox)", Some("no-role"))
    );
}

#[test]
fn the_html_report_is_one_page_with_a_timeline_and_escaped_names() {
    let env = env();
    let path = env.home().join("report.html");
    run_with(&env, "--report", &path);
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    for outside in ["http://", "https://", "src=", "href=", "<script", "@import", "url("] {
        assert!(!html.contains(outside), "no outside asset ({outside})");
    }
    assert!(html.contains("<b>1 throttled</b>"), "{html}");
    assert_eq!(html.matches("<div class=\"row ").count(), 13);
    assert_eq!(html.matches("<div class=\"row failed\">").count(), 3);
    assert_eq!(html.matches("<i class=\"run\" style").count(), 12, "every account with the role ran");
    assert_eq!(html.matches("<i class=\"cred\" style").count(), 13, "every account waited for credentials or roles");
    assert!(html.contains("999999999999 (evil&lt;b&gt;|x&lt;/b&gt;&amp;&quot;)"), "{html}");
    assert!(!html.contains("<b>|x"), "{html}");
    screenshot(&path);
}

/// With Chromium installed, renders the page headless (a check that it loads whole,
/// with no network); otherwise says why it was not.
fn screenshot(page: &Path) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| std::process::Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        eprintln!("skipped the headless Chromium check: no chromium on PATH");
        return;
    };
    let shot = page.with_extension("png");
    let output = std::process::Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,700"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(shot.exists(), "chromium made no screenshot: {}", String::from_utf8_lossy(&output.stderr));
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    if let Ok(keep) = std::env::var("FANOUT_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

#[test]
fn a_report_in_a_missing_directory_fails_before_any_account_runs() {
    let env = env();
    let path = env.home().join("missing").join("junit.xml");
    let output = env.fanout().args(["--role", "ReadOnly", "--junit", path.to_str().unwrap(), "--", "true"]).output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("junit.xml"), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty(), "no account ran");
    // `--summary-markdown "$GITHUB_STEP_SUMMARY"` outside GitHub Actions.
    let output = env.fanout().args(["--role", "ReadOnly", "--summary-markdown", "", "--", "echo", "ran"]).output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("--summary-markdown"), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty(), "no account ran");
}

#[test]
fn a_halted_run_reports_the_accounts_never_started_as_skipped() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(12), ..PortalOptions::default() });
    let path = env.home().join("junit.xml");
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--canary", "1", "--junit", path.to_str().unwrap(), "--", "false"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let junit = parse_junit(&std::fs::read_to_string(&path).unwrap());
    assert_eq!((junit.suite["tests"].as_str(), junit.suite["failures"].as_str()), ("12", "1"));
    assert_eq!(junit.suite["skipped"], "11");
    let skipped = junit.cases.iter().filter_map(|c| c.skipped.as_deref());
    assert!(skipped.clone().count() == 11 && skipped.into_iter().all(|m| m == "not-started"));
    let failure = junit.cases.iter().find_map(|c| c.failure.as_ref()).unwrap();
    assert_eq!(failure, &("exit".to_owned(), "exit code 1".to_owned()), "no stderr: no tail");
}

#[test]
fn a_run_stopped_by_sigint_still_writes_its_reports() {
    use std::io::{BufRead as _, BufReader};
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(6), ..PortalOptions::default() });
    let (junit, summary) = (env.home().join("junit.xml"), env.home().join("summary.md"));
    let script = "echo started; echo 'about to wait' >&2; exec sleep 30";
    let mut child = env
        .std_fanout()
        .args(["--role", "ReadOnly", "-j", "2", "--junit", junit.to_str().unwrap()])
        .args(["--summary-markdown", summary.to_str().unwrap(), "--", "sh", "-c", script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        assert!(lines.next().unwrap().unwrap().ends_with("|started"));
    }
    // The stderr lines are read by fanout apart from stdout: wait until both have come
    // through, so the reports' stderr tails hold them when the stop arrives.
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    for _ in 0..2 {
        assert!(errors.next().unwrap().unwrap().ends_with("|about to wait"));
    }
    let drain = std::thread::spawn(move || errors.count());
    // SAFETY: kill with a valid pid and signal has no memory-safety preconditions.
    unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGINT) };
    drop(lines);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    drain.join().unwrap();
    let report = parse_junit(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(report.cases.len(), 6);
    let interrupted: Vec<&(String, String)> = report.cases.iter().filter_map(|c| c.failure.as_ref()).collect();
    assert_eq!(interrupted.len(), 2, "{report:?}");
    assert!(interrupted.iter().all(|(message, text)| message == "interrupted" && text.ends_with("\nabout to wait")));
    assert_eq!(report.suite["skipped"], "4", "never started");
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.contains(", 2 interrupted, 4 not started in "), "{text}");
    assert_eq!(text.matches("| interrupted |").count(), 2, "{text}");
}

/// The summary's portal line counts the run's events: the throttle the portal emitted
/// and each account whose credentials arrived (the one without the role has none).
#[test]
fn the_verbose_summary_counts_the_throttles_and_credentials_the_run_emitted() {
    let env = env();
    let output = env.fanout().args(["-v", "--role", "ReadOnly", "--", "sh", "-c", SCRIPT]).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let portal = stderr.lines().find(|l| l.starts_with("  portal: ")).expect("the portal line");
    assert!(portal.ends_with(" calls, 1 throttled, credentials for 12 accounts"), "{portal}");
}
