//! `--output json`: every record a run writes is valid against the documented schema
//! (docs/json-output.schema.json), and together they tell the whole run.

mod common;

use common::{TestEnv, stderr_of, valid_records};
use fake_portal::{PortalOptions, generated_accounts};
use serde_json::Value;

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

#[test]
fn every_record_of_a_run_is_valid_and_the_run_adds_up() {
    let options = PortalOptions {
        accounts: generated_accounts(12),
        failing_credentials: ["100000002222".to_owned()].into(),
        ..PortalOptions::default()
    };
    let env = TestEnv::new(options);
    let script = "echo out; echo err >&2; printf 'caf\\351'; [ \"$FANOUT_ACCOUNT_NAME\" != team000-dev ]";
    let output =
        env.fanout().args(["--role", "ReadOnly", "--output", "json", "--", "sh", "-c", script]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    let results = of_type(&records, "result");
    assert_eq!(results.len(), 12);
    let by_status = |status: &str| results.iter().filter(|r| r["status"] == status).count();
    assert_eq!((by_status("succeeded"), by_status("failed"), by_status("no-role")), (9, 2, 1));
    let exit = results.iter().find(|r| r["account_name"] == "team000-dev").unwrap();
    assert_eq!((&exit["class"], &exit["exit_code"], &exit["role"]), (&"exit".into(), &1.into(), &"ReadOnly".into()));
    let portal = results.iter().find(|r| r["account_id"] == "100000002222").unwrap();
    assert_eq!(portal["class"], "no-credentials");
    assert!(portal["error"].as_str().unwrap().contains("HTTP 500"));

    let lines = of_type(&records, "line");
    assert_eq!(lines.len(), 10 * 3, "three lines from each of the ten commands that ran");
    let not_utf8 = lines.iter().find(|l| l.get("line_base64").is_some()).unwrap();
    assert_eq!(not_utf8["line"], "caf\u{fffd}");
    assert_eq!(not_utf8["line_base64"], "Y2Fm6Q==");
    assert!(lines.iter().any(|l| l["stream"] == "stderr" && l["line"] == "err"));

    let summary = records.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!((&summary["selected"], &summary["failed"], &summary["exit_code"]), (&12.into(), &2.into(), &1.into()));
}

#[test]
fn a_dry_run_and_a_halted_run_are_records_too() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(12), ..PortalOptions::default() });
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--output", "json", "--dry-run", "--", "echo", "{account_name}"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    let planned = of_type(&records, "result");
    assert_eq!(planned.iter().filter(|r| r["status"] == "planned").count(), 11);
    let dev = planned.iter().find(|r| r["account_name"] == "team000-dev").unwrap();
    assert_eq!(dev["argv"], serde_json::json!(["echo", "team000-dev"]));
    assert_eq!(records.last().unwrap()["dry_run"], true);

    let halted =
        env.fanout().args(["--role", "ReadOnly", "--output", "json", "--canary", "1", "--", "false"]).output().unwrap();
    let halted = valid_records(&halted.stdout);
    assert_eq!(of_type(&halted, "result").iter().filter(|r| r["status"] == "not-started").count(), 11);
    let summary = halted.last().unwrap();
    assert!(summary["halt"].as_str().unwrap().contains("canary"), "{summary}");
}
