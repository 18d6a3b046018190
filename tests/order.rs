//! `--group`, `--keep-order`, long lines and `--output-dir`, through the binary.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{TestEnv, stderr_of, stdout_of, valid_records};
use fake_portal::{PortalOptions, generated_accounts};
use serde_json::Value;

/// Each account writes three stdout and three stderr lines with pauses between them,
/// later accounts the shorter pauses, so unordered runs interleave and reorder.
const INTERLEAVING: &str = r#"n=$(( ($FANOUT_ACCOUNT_ID / 1111) % 10 )); for i in 1 2 3; do echo "$FANOUT_ACCOUNT_NAME out $i"; echo "$FANOUT_ACCOUNT_NAME err $i" >&2; sleep 0.0$(( 9 - n )); done"#;

/// The lines of stderr that are an account's (`prefix|...`), not fanout's own.
fn account_lines(stderr: &str) -> String {
    stderr.split_inclusive('\n').filter(|l| l.starts_with("1000")).collect()
}

/// Whether each prefix's lines come in one unbroken run.
fn grouped(text: &str) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut current = "";
    for line in text.lines() {
        let prefix = line.split_once('|').map_or(line, |(p, _)| p);
        if prefix != current {
            if !seen.insert(prefix.to_owned()) {
                return false;
            }
            current = prefix;
        }
    }
    true
}

#[test]
fn keep_order_prints_what_a_serial_run_prints() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(10), ..PortalOptions::default() });
    let run = |args: &[&str]| {
        let output = env
            .fanout()
            .args(["--role", "ReadOnly"])
            .args(args)
            .args(["--", "sh", "-c", INTERLEAVING])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        (stdout_of(&output), account_lines(&stderr_of(&output)))
    };
    let unordered = run(&["-j", "8"]);
    // What a serial run prints: each account's lines, in their order, the accounts in
    // selection order (the portal lists them by ascending id). Derived rather than run
    // with -j 1: even one command at a time, the task fetching credentials ahead of a
    // slot may win the race to it on a loaded machine.
    let serial = (in_selection_order(&unordered.0), in_selection_order(&unordered.1));
    assert_ne!(unordered.0, serial.0, "the test's children must interleave to mean anything");
    let kept = run(&["-j", "8", "--keep-order"]);
    assert_eq!(serial.0.lines().count(), 27);
    assert_eq!(kept.0, serial.0, "stdout");
    assert_eq!(kept.1, serial.1, "stderr");
}

/// `text`'s lines grouped by their prefix, the groups by ascending account id, each
/// group's lines in the order they came.
fn in_selection_order(text: &str) -> String {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines.sort_by_key(|line| line.split_once('|').map_or(*line, |(prefix, _)| prefix));
    lines.concat()
}

#[test]
fn group_keeps_each_accounts_lines_together() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(10), ..PortalOptions::default() });
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "-j", "8", "--group", "--", "sh", "-c", INTERLEAVING])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let (stdout, stderr) = (stdout_of(&output), account_lines(&stderr_of(&output)));
    assert_eq!((stdout.lines().count(), stderr.lines().count()), (27, 27));
    assert!(grouped(&stdout), "{stdout}");
    assert!(grouped(&stderr), "{stderr}");
    assert!(stdout.lines().all(|l| !l.contains(" err ")) && stderr.lines().all(|l| !l.contains(" out ")));

    // With --output json, an account's records (its result too) come together.
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "-j", "8", "--group", "--output", "json", "--", "sh", "-c", INTERLEAVING])
        .output()
        .unwrap();
    let ids: Vec<String> = stdout_of(&output)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] != "summary")
        .map(|r| format!("{}|", r["account_id"].as_str().unwrap()))
        .collect();
    assert_eq!(ids.len(), 9 * 6 + 10);
    assert!(grouped(&ids.join("\n")), "{ids:?}");
}

#[test]
fn held_output_past_memory_comes_back_byte_for_byte() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(3), ..PortalOptions::default() });
    // 5 MB of lines of every length and byte (but newline), not all UTF-8.
    let mut data = Vec::new();
    let mut seed = 7u32;
    while data.len() < 5_000_000 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let len = (seed >> 8) as usize % 300;
        data.extend((0..len).map(|i| match (seed as usize + i) % 256 {
            10 => b'x',
            b => u8::try_from(b).unwrap(),
        }));
        data.push(b'\n');
    }
    let file = env.home().join("big");
    std::fs::write(&file, &data).unwrap();
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--group", "--match", "team000-dev", "--", "cat"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let expected: Vec<u8> =
        data.split_inclusive(|&b| b == b'\n').flat_map(|line| [&b"100000001111|"[..], line].concat()).collect();
    assert!(output.stdout == expected, "{} bytes back, {} expected", output.stdout.len(), expected.len());
}

#[test]
fn a_3_mb_line_comes_out_as_one_line() {
    let env = TestEnv::new(PortalOptions::default());
    let script = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo after";
    let output =
        env.fanout().args(["--role", "ReadOnly", "--match", "team000-dev", "--", "sh", "-c", script]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let expected = format!("100000001111|{}\n100000001111|after\n", "x".repeat(3_000_000));
    assert!(stdout_of(&output) == expected, "the line was cut or changed");
    assert!(!stderr_of(&output).contains("cut"));
}

#[test]
fn a_line_past_64_mib_is_cut_once_said_and_marked() {
    let env = TestEnv::new(PortalOptions::default());
    let script = "head -c 67108869 /dev/zero | tr '\\0' x; echo; head -c 67108865 /dev/zero | tr '\\0' y; echo";
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--match", "team000-dev", "--output", "json", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    let warning = "fanout: warning: account 100000001111 wrote a line longer than 64 MiB; it was cut\n";
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    let records = valid_records(&output.stdout);
    let lines: Vec<(usize, bool)> = records
        .iter()
        .filter(|r| r["type"] == "line")
        .map(|r| (r["line"].as_str().unwrap().len(), r.get("cut") == Some(&Value::Bool(true))))
        .collect();
    assert_eq!(lines, [(64 << 20, true), (5, true), (64 << 20, true), (1, true)]);
}

#[test]
fn output_dir_holds_each_accounts_bytes_and_the_results() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(10), ..PortalOptions::default() });
    let dir = env.home().join("out");
    // A file of an earlier run is overwritten, and made private.
    std::fs::create_dir_all(dir.join("100000001111")).unwrap();
    std::fs::write(dir.join("100000001111/stdout"), "stale stale stale stale\n").unwrap();
    std::fs::set_permissions(dir.join("100000001111/stdout"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let script = r#"printf 'out %s\n\377no newline' "$FANOUT_ACCOUNT_ID"; printf 'err %s\n' "$FANOUT_ACCOUNT_NAME" >&2; [ "$FANOUT_ACCOUNT_NAME" != team000-dev ]"#;
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "-j", "4", "--output-dir"])
        .arg(&dir)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(stdout_of(&output).contains("|out "), "the terminal output is as without --output-dir");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for account in generated_accounts(10).iter().filter(|a| a.roles.iter().any(|r| r == "ReadOnly")) {
        let account_dir = dir.join(&account.id);
        assert_eq!(std::fs::read(account_dir.join("stdout")).unwrap(), expected_stdout(&account.id));
        assert_eq!(std::fs::read(account_dir.join("stderr")).unwrap(), format!("err {}\n", account.name).as_bytes());
        assert_eq!(
            (mode(&account_dir), mode(&account_dir.join("stdout")), mode(&account_dir.join("stderr"))),
            (0o700, 0o600, 0o600)
        );
    }
    assert_eq!(mode(&dir.join("results.jsonl")), 0o600);
    let records = valid_records(&std::fs::read(dir.join("results.jsonl")).unwrap());
    assert_eq!(records.iter().filter(|r| r["type"] == "result").count(), 10);
    assert!(records.iter().all(|r| r["type"] != "line"));
    let summary = records.last().unwrap();
    assert_eq!(
        (&summary["type"], &summary["failed"], &summary["exit_code"]),
        (&"summary".into(), &1.into(), &1.into())
    );
}

fn expected_stdout(id: &str) -> Vec<u8> {
    [format!("out {id}\n").as_bytes(), b"\xffno newline"].concat()
}

#[test]
fn keep_order_waits_for_no_account_a_halt_never_started() {
    // The canary fails, the other eleven are never started: each still takes its turn, so
    // the run ends, with every result in selection order.
    let accounts = generated_accounts(12);
    let env = TestEnv::new(PortalOptions { accounts: accounts.clone(), ..PortalOptions::default() });
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--keep-order", "--output", "json", "--canary", "1", "--", "false"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    let ids: Vec<&str> =
        records.iter().filter(|r| r["type"] == "result").map(|r| r["account_id"].as_str().unwrap()).collect();
    let listed: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, listed);
    assert_eq!(records.iter().filter(|r| r["status"] == "not-started").count(), 11);
}
