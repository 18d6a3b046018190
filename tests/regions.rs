//! `--regions`: one child per (account, region), credentials once per account, `-j`
//! across both, `--regions enabled` through the fake portal's Account API.

mod common;

use common::{TestEnv, sorted_lines, stderr_of, stdout_of, valid_records};
use fake_portal::{Account, PortalOptions};

const ALPHA: &str = "111111111111";
const BRAVO: &str = "222222222222";
const CHARLIE: &str = "333333333333";

fn three_accounts() -> PortalOptions {
    PortalOptions {
        accounts: vec![
            Account::new(ALPHA, "alpha", &["ReadOnly"]),
            Account::new(BRAVO, "bravo", &["ReadOnly"]),
            Account::new(CHARLIE, "charlie", &["ReadOnly"]),
        ],
        ..PortalOptions::default()
    }
}

/// Prints the region the child was given, every way it is given.
const ECHO_REGION: &str = "echo \"$AWS_REGION $AWS_DEFAULT_REGION $FANOUT_REGION $0\"";

#[test]
fn each_account_runs_in_each_region_with_credentials_fetched_once_per_account() {
    let env = TestEnv::new(three_accounts());
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--regions", "us-east-1,eu-west-1, ap-south-1,us-east-1", "-j", "4"])
        .args(["--", "sh", "-c", ECHO_REGION, "{region}"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let mut expected = Vec::new();
    for id in [ALPHA, BRAVO, CHARLIE] {
        for region in ["us-east-1", "eu-west-1", "ap-south-1"] {
            expected.push(format!("{id}/{region}|{region} {region} {region} {region}"));
        }
    }
    expected.sort();
    assert_eq!(sorted_lines(&stdout_of(&output)), expected);
    assert_eq!(env.portal.stats().get_role_credentials, 3, "one GetRoleCredentials per account");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("9 account-regions selected: 9 succeeded, 0 failed"), "{stderr}");
}

#[test]
fn a_chosen_prefix_stays_and_without_regions_the_prefix_is_the_id() {
    let env = TestEnv::new(three_accounts());
    let output = env
        .fanout()
        .args([
            "--role",
            "ReadOnly",
            "--accounts",
            ALPHA,
            "--regions",
            "eu-west-1",
            "--prefix",
            "{region}:{account_name}",
        ])
        .args(["--", "echo", "hi"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&output), "eu-west-1:alpha|hi\n", "{}", stderr_of(&output));
    let output = env.fanout().args(["--role", "ReadOnly", "--accounts", ALPHA, "--", "echo", "hi"]).output().unwrap();
    assert_eq!(stdout_of(&output), format!("{ALPHA}|hi\n"));
}

#[test]
fn a_default_region_gives_way_and_only_the_flag_conflicts() {
    let env = TestEnv::new(three_accounts());
    let output = env
        .fanout()
        .env("FANOUT_REGION", "ca-central-1")
        .args([
            "--role",
            "ReadOnly",
            "--accounts",
            ALPHA,
            "--regions",
            "eu-west-1",
            "--",
            "sh",
            "-c",
            "echo $AWS_REGION",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&output), format!("{ALPHA}/eu-west-1|eu-west-1\n"), "{}", stderr_of(&output));
}

#[test]
fn a_failed_canary_account_in_one_region_stops_every_other_account_in_every_region() {
    let env = TestEnv::new(three_accounts());
    let dir = env.home().join("out");
    let script = format!("[ \"$FANOUT_ACCOUNT_ID/$AWS_REGION\" != {ALPHA}/eu-west-1 ] || exit 3; echo ok");
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--regions", "us-east-1,eu-west-1", "--canary", "1"])
        .args(["--output-dir", dir.to_str().unwrap(), "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("6 account-regions selected: 1 succeeded, 1 failed"), "{stderr}");
    assert!(stderr.contains(", 4 not started in"), "{stderr}");
    assert_eq!(env.portal.stats().get_role_credentials, 1, "no credentials beyond the canary");
    assert_eq!(std::fs::read_to_string(dir.join(format!("{ALPHA}-us-east-1/stdout"))).unwrap(), "ok\n");
    let results = std::fs::read(dir.join("results.jsonl")).unwrap();
    let records = valid_records(&results);
    let not_started = records.iter().filter(|r| r["status"] == "not-started").count();
    assert_eq!(not_started, 4, "bravo and charlie, each in both regions");
}

#[test]
fn jobs_bound_children_across_accounts_and_regions() {
    let env = TestEnv::new(three_accounts());
    let running = env.home().join("running");
    std::fs::create_dir(&running).unwrap();
    // Each child marks itself running, notes how many are, sleeps, and unmarks itself.
    let script = format!(
        "d={dir}; touch $d/$FANOUT_ACCOUNT_ID-$AWS_REGION; ls $d | wc -l >> {dir}.counts; sleep 0.3; rm $d/$FANOUT_ACCOUNT_ID-$AWS_REGION",
        dir = running.display()
    );
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--regions", "us-east-1,eu-west-1", "-j", "2", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let counts = std::fs::read_to_string(format!("{}.counts", running.display())).unwrap();
    let counts: Vec<usize> = counts.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(counts.len(), 6, "3 accounts × 2 regions");
    assert!(counts.iter().all(|&n| (1..=2).contains(&n)), "never more than 2 at once: {counts:?}");
}

#[test]
fn enabled_asks_each_account_and_a_denied_account_gets_the_default_list_with_a_warning() {
    let mut options = three_accounts();
    options.enabled_regions.insert(ALPHA.to_owned(), vec!["us-east-1".to_owned(), "af-south-1".to_owned()]);
    options.regions_denied.insert(CHARLIE.to_owned());
    let env = TestEnv::new(options);
    let output = env
        .fanout()
        .env("AWS_ENDPOINT_URL_ACCOUNT", env.portal.url())
        .args(["--role", "ReadOnly", "--regions", "enabled", "-j", "8", "--", "sh", "-c", "echo $AWS_REGION"])
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    let stdout = stdout_of(&output);
    let regions_of = |id: &str| -> Vec<String> {
        let mut regions: Vec<String> =
            stdout.lines().filter_map(|l| l.strip_prefix(&format!("{id}/"))).map(str::to_owned).collect();
        regions.sort();
        regions
    };
    assert_eq!(regions_of(ALPHA), ["af-south-1|af-south-1", "us-east-1|us-east-1"]);
    assert_eq!(regions_of(BRAVO), ["eu-west-1|eu-west-1", "us-east-1|us-east-1"]);
    let defaults = regions_of(CHARLIE);
    assert_eq!(defaults.len(), 17, "{defaults:?}");
    assert!(defaults.contains(&"sa-east-1|sa-east-1".to_owned()) && !defaults.iter().any(|r| r.starts_with("af-")));
    assert!(
        stderr.contains(&format!("fanout: warning: {CHARLIE} (charlie): cannot list its enabled regions"))
            && stderr.contains("AccessDeniedException")
            && !stderr.contains(ALPHA),
        "{stderr}"
    );
    assert!(stderr.contains("21 account-regions selected: 21 succeeded"), "{stderr}");
    let stats = env.portal.stats();
    assert_eq!((stats.list_regions, stats.list_regions_denied, stats.get_role_credentials), (2, 1, 3));
    // The child's key is never in a warning.
    assert!(!stderr.contains("ASIA"), "{stderr}");
}

#[test]
fn json_results_per_account_and_region_and_a_failure_named_with_its_region() {
    let env = TestEnv::new(three_accounts());
    let fail_bravo_in_eu = format!("[ \"$FANOUT_ACCOUNT_ID/$AWS_REGION\" != {BRAVO}/eu-west-1 ] || exit 3; echo ok");
    let args = ["--role", "ReadOnly", "--accounts", &format!("{ALPHA},{BRAVO}"), "--regions", "us-east-1,eu-west-1"];
    let output =
        env.fanout().args(args).args(["--output", "json", "--", "sh", "-c", &fail_bravo_in_eu]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    let mut results: Vec<(String, String, String)> = records
        .iter()
        .filter(|r| r["type"] == "result")
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap().to_owned();
            (field("account_id"), field("region"), field("status"))
        })
        .collect();
    results.sort();
    let row = |id: &str, region: &str, status: &str| (id.to_owned(), region.to_owned(), status.to_owned());
    assert_eq!(
        results,
        [
            row(ALPHA, "eu-west-1", "succeeded"),
            row(ALPHA, "us-east-1", "succeeded"),
            row(BRAVO, "eu-west-1", "failed"),
            row(BRAVO, "us-east-1", "succeeded"),
        ]
    );
    let lines = records.iter().filter(|r| r["type"] == "line" && r["region"] == "eu-west-1").count();
    assert_eq!(lines, 1, "alpha's line in eu-west-1");
    let summary = records.last().unwrap();
    assert_eq!((summary["selected"].as_u64(), summary["failed"].as_u64()), (Some(4), Some(1)));

    let text = env.fanout().args(args).args(["--", "sh", "-c", &fail_bravo_in_eu]).output().unwrap();
    let stderr = stderr_of(&text);
    assert!(stderr.contains(&format!("  failed       {BRAVO}/eu-west-1 (bravo) [exit]: exit code 3")), "{stderr}");
}

#[test]
fn the_joblog_and_the_reports_have_an_entry_per_account_and_region() {
    let env = TestEnv::new(three_accounts());
    let log = env.home().join("log");
    let junit = env.home().join("junit.xml");
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--accounts", ALPHA, "--regions", "us-east-1,eu-west-1"])
        .args(["--joblog", log.to_str().unwrap(), "--junit", junit.to_str().unwrap(), "--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let log = std::fs::read_to_string(&log).unwrap();
    let hosts: Vec<&str> = log.lines().filter(|l| l.contains(ALPHA)).filter_map(|l| l.split('\t').nth(1)).collect();
    assert_eq!(sorted_lines(&hosts.join("\n")), ["eu-west-1", "us-east-1"], "{log}");
    let junit = std::fs::read_to_string(&junit).unwrap();
    for region in ["us-east-1", "eu-west-1"] {
        assert!(junit.contains(&format!("{ALPHA}/{region} (alpha)")), "{junit}");
    }
    // A log of regions cannot be resumed: it would lose which regions ran.
    let retry = env.fanout().args(["--retry-failed", env.home().join("log").to_str().unwrap()]).output().unwrap();
    assert_eq!(retry.status.code(), Some(2), "{}", stderr_of(&retry));
}

#[test]
fn a_dry_run_shows_a_row_per_account_and_region_and_says_enabled_is_not_known() {
    let env = TestEnv::new(three_accounts());
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--accounts", ALPHA, "--regions", "us-east-1,eu-west-1", "--dry-run"])
        .args(["--", "aws", "ec2", "describe-vpcs", "--region", "{region}"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["ACCOUNT_ID", "REGION", "NAME", "ROLE", "COMMAND"]);
    // In selection order, the regions as given: the order a `-j 1` run starts them in.
    assert_eq!(
        rows[2],
        [ALPHA, "eu-west-1", "alpha", "ReadOnly", "aws", "ec2", "describe-vpcs", "--region", "eu-west-1"]
    );
    assert_eq!(rows[1][..2], [ALPHA, "us-east-1"]);
    assert_eq!(env.portal.stats().get_role_credentials, 0);

    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--accounts", ALPHA, "--regions", "enabled", "--dry-run", "--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stdout_of(&output).contains(&format!("{ALPHA}  enabled")), "{}", stdout_of(&output));
    assert!(stderr_of(&output).contains("a dry run does not fetch"), "{}", stderr_of(&output));
}

#[test]
fn conflicting_and_invalid_regions_are_refused_with_a_hint() {
    let env = TestEnv::new(three_accounts());
    for (args, hint) in [
        (&["--regions", "us-east-1", "--region", "eu-west-1"][..], "--region"),
        (&["--regions", "us-east-1,EU-WEST-1"][..], "invalid region \"EU-WEST-1\""),
        (&["--regions", ","][..], "--regions is empty"),
        (&["--regions", "enabled", "--keep-order"][..], "--group"),
        (&["--regions", "us-east-1", "--dry-run", "--save-plan", "p.json"][..], "--save-plan"),
    ] {
        let output = env.fanout().args(["--role", "ReadOnly"]).args(args).args(["--", "true"]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr_of(&output));
        assert!(stderr_of(&output).contains(hint), "{args:?}: {}", stderr_of(&output));
    }
    let apply = env.fanout().args(["--regions", "us-east-1", "apply", "plan.json"]).output().unwrap();
    assert_eq!(apply.status.code(), Some(2), "{}", stderr_of(&apply));
    assert!(stderr_of(&apply).contains("drop --regions"), "{}", stderr_of(&apply));
    assert_eq!(env.portal.stats().get_role_credentials, 0);
}
