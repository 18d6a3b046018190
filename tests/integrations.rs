//! `fanout completions SHELL` and `fanout man`, through the binary: loaded by a real
//! bash and rendered by a real man, with no HOME, AWS config or token in sight.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::cargo_bin;

/// fanout with an empty environment but PATH: no HOME, no AWS config, no token, so a
/// subcommand that read any of them would fail.
fn bare_fanout(args: &[&str]) -> Output {
    Command::new(cargo_bin("fanout"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("run fanout")
}

/// fanout's stdout, after checking it exited 0 with nothing on stderr.
fn generated(args: &[&str]) -> String {
    let output = bare_fanout(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "fanout {args:?} failed: {:?}\n{stderr}", output.status);
    assert!(stderr.is_empty(), "fanout {args:?} wrote to stderr: {stderr}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The first of `names` found in PATH.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()))
}

#[test]
fn every_shell_gets_a_script_without_any_aws_setup() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = generated(&["completions", shell]);
        assert!(script.contains("fanout"), "{shell}: {script}");
        assert!(script.contains("fail-fast"), "{shell} script offers no --fail-fast");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let output = bare_fanout(&["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("possible values"));
}

#[test]
fn help_lists_the_subcommands() {
    let help = generated(&["--help"]);
    for line in ["completions  Print a completion script", "man          Print fanout's man page"] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
}

/// Loads the script in a real bash, as bash-completion would, and asks it to complete
/// `fanout --fail-` the way bash does at a Tab.
#[test]
fn bash_completes_a_flag() {
    let Some(bash) = find_program(&["bash"]) else {
        println!("skipped: no bash in PATH");
        return;
    };
    let script = r#"
        source <("$FANOUT" completions bash) || exit 10
        spec=$(complete -p fanout) || exit 11
        func=$(printf '%s\n' "$spec" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
        [ -n "$func" ] || exit 12
        COMP_WORDS=(fanout --fail-)
        COMP_CWORD=1
        COMP_LINE='fanout --fail-'
        COMP_POINT=${#COMP_LINE}
        COMP_TYPE=9
        "$func" fanout --fail- fanout
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let output = Command::new(bash)
        .args(["--norc", "--noprofile", "-c", script])
        .env("FANOUT", cargo_bin("fanout"))
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let offered = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{:?}: {}", output.status, String::from_utf8_lossy(&output.stderr));
    assert_eq!(offered.lines().collect::<Vec<_>>(), ["--fail-fast"], "offered: {offered}");
}

/// The page as a reader sees it: rendered by `man -l` (else groff), formatting and
/// Unicode hyphens taken out. `None` when neither is installed.
fn rendered_man_page(page: &Path) -> Option<String> {
    let output = if let Some(man) = find_program(&["man"]) {
        Command::new(man).arg("-l").arg(page).env("MANWIDTH", "200").env("MANPAGER", "cat").env("PAGER", "cat").output()
    } else {
        let groff = find_program(&["groff"])?;
        Command::new(groff).args(["-man", "-Tutf8", "-rLL=200n"]).arg(page).output()
    }
    .expect("run man");
    assert!(output.status.success(), "rendering failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(plain(&String::from_utf8_lossy(&output.stdout)))
}

/// `text` without overstrikes (`X\bX`), SGR escapes and typographic hyphens.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{8}' => {
                out.pop();
            }
            '\u{1b}' => {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            '\u{2010}' | '\u{2212}' => out.push('-'),
            c => out.push(c),
        }
    }
    out
}

#[test]
fn the_man_page_shows_flags_exit_codes_and_environment() {
    let page_text = generated(&["man"]);
    assert!(page_text.lines().any(|l| l.starts_with(".TH FANOUT 1 ")), "no title: {page_text}");
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("fanout.1");
    std::fs::write(&page, &page_text).expect("write page");
    let Some(shown) = rendered_man_page(&page) else {
        println!("skipped rendering: neither man nor groff is installed");
        return;
    };
    let headings: Vec<&str> = shown.lines().filter(|l| !l.starts_with(' ') && !l.is_empty()).collect();
    for heading in ["NAME", "SYNOPSIS", "OPTIONS", "SUBCOMMANDS", "EXAMPLES", "EXIT STATUS", "ENVIRONMENT"] {
        assert!(headings.contains(&heading), "no {heading} in {headings:?}");
    }
    let lines: Vec<&str> = shown.lines().map(str::trim).collect();
    for tag in
        ["--fail-fast", "--max-failures <N|N%>", "-j, --concurrency <N>", "[--approve SHA256]", "FANOUT_YES", "130"]
    {
        assert!(lines.iter().any(|l| l.starts_with(tag)), "no {tag:?} in:\n{shown}");
    }
    for variable in ["AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_ENDPOINT_URL_SSO", "XDG_CACHE_HOME"] {
        assert!(lines.contains(&variable), "no {variable} entry in:\n{shown}");
    }
}

#[test]
fn a_closed_stdout_ends_man_quietly() {
    let mut child = Command::new(cargo_bin("fanout"))
        .arg("man")
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fanout");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty());
}
