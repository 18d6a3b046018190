//! `--joblog`, `--retry-failed` and `--resume`: a run leaves a log a later run can pick up.

mod common;

use common::{TestEnv, sorted_lines, stderr_of, stdout_of};
use fake_portal::{PortalOptions, generated_accounts};

/// Fails in the `-dev` accounts until the file `fixed` exists.
const SCRIPT: &str = "test -e \"$HOME/fixed\" || case \"$FANOUT_ACCOUNT_NAME\" in *-dev) exit 3;; esac; echo ok";

fn data_lines(log: &str) -> Vec<Vec<String>> {
    log.lines().skip(1).filter(|l| !l.starts_with('#')).map(|l| l.split('\t').map(str::to_owned).collect()).collect()
}

#[test]
fn the_joblog_records_every_account_and_a_retry_runs_exactly_the_failed_ones() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(24), ..PortalOptions::default() });
    let log = env.home().join("run.log");
    let log_arg = log.to_str().unwrap();
    let first = env.fanout().args(["--role", "ReadOnly", "--joblog", log_arg, "--", "sh", "-c", SCRIPT]).output();
    let first = first.unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", stderr_of(&first));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\t"), "{text}");
    assert!(text.contains("\n# roles: ReadOnly\n"), "{text}");
    let rows = data_lines(&text);
    assert_eq!(rows.len(), 24);
    let failed: Vec<&Vec<String>> = rows.iter().filter(|r| r[12] == "failed").collect();
    assert_eq!(failed.len(), 3, "team000-dev, team001-dev, team002-dev; team003-dev lacks the role");
    assert!(failed.iter().all(|r| r[6] == "3" && r[13] == "exit" && r[8].starts_with("sh -c ")), "{failed:?}");
    assert_eq!(rows.iter().filter(|r| r[12] == "no-role").count(), 2);
    let mut failed_ids: Vec<String> = failed.iter().map(|r| format!("{}|ok", r[9])).collect();
    failed_ids.sort();

    // The fix is in; retry with the logged command and role, appending to the same log.
    std::fs::write(env.home().join("fixed"), "").unwrap();
    let retry = env.fanout().args(["--retry-failed", log_arg, "--joblog", log_arg]).output().unwrap();
    assert!(retry.status.success(), "{}", stderr_of(&retry));
    assert_eq!(sorted_lines(&stdout_of(&retry)), failed_ids, "exactly the failed accounts ran again");
    let again = env.fanout().args(["--retry-failed", log_arg]).output().unwrap();
    assert_eq!(again.status.code(), Some(5), "nothing is left to retry: {}", stderr_of(&again));
}

#[test]
fn resume_runs_what_a_halted_run_never_started() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(12), ..PortalOptions::default() });
    let log = env.home().join("run.log");
    let log_arg = log.to_str().unwrap();
    let halted = env
        .fanout()
        .args(["--role", "ReadOnly", "--canary", "1", "--joblog", log_arg, "--", "false"])
        .output()
        .unwrap();
    assert_eq!(halted.status.code(), Some(1));
    let rows = data_lines(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(rows.iter().filter(|r| r[12] == "not-started").count(), 11);
    let resumed = env
        .fanout()
        .args(["--role", "ReadOnly", "--resume", log_arg, "--joblog", log_arg, "--", "echo", "resumed"])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    assert_eq!(stdout_of(&resumed).lines().count(), 10, "the 11 never started, less the one without the role");
    assert!(!stdout_of(&resumed).contains("100000000000|"), "the canary had run: it is done");
}

#[test]
fn a_file_that_is_no_joblog_is_a_usage_error() {
    let env = TestEnv::new(PortalOptions::default());
    let bogus = env.home().join("bogus");
    std::fs::write(&bogus, "hello\n").unwrap();
    let output = env.fanout().args(["--retry-failed", bogus.to_str().unwrap(), "--role", "R", "--", "true"]).output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("is not a fanout joblog (line 1)"), "{}", stderr_of(&output));
}

#[test]
fn the_blast_radius_recipe_plan_apply_with_a_joblog_then_retry() {
    let env = TestEnv::new(PortalOptions { accounts: generated_accounts(12), ..PortalOptions::default() });
    let (plan, log) = (env.home().join("plan.json"), env.home().join("keys.log"));
    let (plan_arg, log_arg) = (plan.to_str().unwrap(), log.to_str().unwrap());
    let saved = env
        .fanout()
        .args(["--role", "ReadOnly", "--exclude", "*-prod", "--dry-run", "--save-plan", plan_arg, "--"])
        .args(["sh", "-c", SCRIPT])
        .output()
        .unwrap();
    assert!(saved.status.success(), "{}", stderr_of(&saved));
    // What --approve names: the file's SHA-256, as sha256sum prints it.
    let hash: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(std::fs::read(&plan).unwrap())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .concat()
    };
    let applied = env
        .fanout()
        .args(["--max-failures", "50%", "--joblog", log_arg, "apply", plan_arg, "--approve", &hash])
        .output()
        .unwrap();
    assert_eq!(applied.status.code(), Some(1), "the -dev accounts fail: {}", stderr_of(&applied));
    assert_eq!(stdout_of(&applied).lines().count(), 7, "9 planned accounts, 2 of them -dev");
    std::fs::write(env.home().join("fixed"), "").unwrap();
    let retry = env.fanout().args(["--retry-failed", log_arg, "--joblog", log_arg]).output().unwrap();
    assert!(retry.status.success(), "{}", stderr_of(&retry));
    let ran: Vec<String> = sorted_lines(&stdout_of(&retry));
    assert_eq!(ran, ["100000001111|ok", "100000007777|ok"], "team000-dev and team001-dev");
}
