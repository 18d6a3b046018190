//! Issue 18, points 2 and 3, with `--accounts-meta` as the source of the organization's
//! facts: `--ou` by id and by path (nested), `--exclude-ou`, `--tag`, suspended and closed
//! accounts skipped and counted, composition with the other filters, bad meta files
//! refused with their line, a hostile OU name kept out of code, and the facts travelling
//! to the child, `fanout accounts`, the JSON results, the plan, the joblog and `JUnit`.
//! Each test drives the real binary against the fake portal.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{TestEnv, sorted_lines, stderr_of, stdout_of, valid_records};
use fake_portal::{Account, PortalOptions};

/// Six accounts: two in Prod (one nested under it), one in Dev, one suspended in Prod,
/// one closing in the sandbox, and one the meta file does not list.
fn portal() -> PortalOptions {
    let accounts = [
        ("111111111111", "pay-prod"),
        ("222222222222", "search-prod-eu"),
        ("333333333333", "pay-dev"),
        ("444444444444", "old-prod"),
        ("555555555555", "unlisted"),
        ("666666666666", "closing"),
    ]
    .iter()
    .map(|(id, name)| Account::new(id, name, &["ReadOnly"]))
    .collect();
    PortalOptions { accounts, ..PortalOptions::default() }
}

const META_CSV: &str = "\
# the organization, exported
account_id,ou_path,ou_id,tags,state
111111111111,Root/Workloads/Prod,ou-ab12-11111111,env=prod;team=payments,ACTIVE
222222222222,Root/Workloads/Prod/Eu,ou-ab12-22222222,env=prod-eu;team=search,
333333333333,Root/Workloads/Dev,ou-ab12-33333333,env=dev;team=payments,
444444444444,Root/Workloads/Prod,ou-ab12-11111111,env=prod,SUSPENDED
666666666666,Root/Sandbox,,,PENDING_CLOSURE
";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The ids `selection` runs `echo` in, sorted, and the run's stderr.
fn ids_run(env: &TestEnv, meta: &str, selection: &[&str]) -> (Vec<String>, String) {
    let args = [&["--accounts-meta", meta, "--role", "ReadOnly"], selection, &["--", "echo", "{account_id}"]].concat();
    let output = env.fanout().args(args).output().unwrap();
    assert!(output.status.success(), "{selection:?}: {}", stderr_of(&output));
    let ids = sorted_lines(&stdout_of(&output)).into_iter().map(|line| line.split('|').next().unwrap().to_owned());
    (ids.collect(), stderr_of(&output))
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|id| (*id).to_owned()).collect()
}

#[test]
fn ou_by_path_or_by_id_takes_the_ous_under_it_too() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    let (run, stderr) = ids_run(&env, &meta, &["--ou", "Root/Workloads/Prod"]);
    assert_eq!(run, ids(&["111111111111", "222222222222"]));
    // The suspended account in Prod is skipped and counted; the closing one is not in it.
    assert!(stderr.contains("skipped      1 account the organization lists as suspended or closed"), "{stderr}");
    assert_eq!(ids_run(&env, &meta, &["--ou", "ou-ab12-11111111"]).0, ids(&["111111111111", "222222222222"]));
    assert_eq!(ids_run(&env, &meta, &["--ou", "ou-ab12-22222222"]).0, ids(&["222222222222"]));
    // Repeatable: any may hold the account.
    let either = ids_run(&env, &meta, &["--ou", "Root/Workloads/Prod/Eu", "--ou", "Root/Workloads/Dev"]).0;
    assert_eq!(either, ids(&["222222222222", "333333333333"]));
    assert_eq!(ids_run(&env, &meta, &["--ou", "Root/Workloads/Prod/"]).0.len(), 2, "a trailing / is the same OU");
}

#[test]
fn exclude_ou_leaves_out_an_ou_and_everything_under_it() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    let (run, stderr) = ids_run(&env, &meta, &["--exclude-ou", "Root/Workloads/Prod"]);
    // The unlisted account is in no OU, so no OU leaves it out.
    assert_eq!(run, ids(&["333333333333", "555555555555"]));
    assert!(stderr.contains("skipped      1 account the organization"), "the closing one: {stderr}");
    let (run, _) = ids_run(&env, &meta, &["--ou", "Root/Workloads", "--exclude-ou", "ou-ab12-22222222"]);
    assert_eq!(run, ids(&["111111111111", "333333333333"]));
}

#[test]
fn tags_match_all_given_with_globs_or_by_key_alone() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    assert_eq!(ids_run(&env, &meta, &["--tag", "env=prod*"]).0, ids(&["111111111111", "222222222222"]));
    assert_eq!(ids_run(&env, &meta, &["--tag", "env=prod"]).0, ids(&["111111111111"]));
    assert_eq!(ids_run(&env, &meta, &["--tag", "team"]).0, ids(&["111111111111", "222222222222", "333333333333"]));
    let both = ids_run(&env, &meta, &["--tag", "team=pay*", "--tag", "env=prod*"]).0;
    assert_eq!(both, ids(&["111111111111"]));
    assert_eq!(ids_run(&env, &meta, &["--tag", "team=pay*", "--ou", "Root/Workloads/Dev"]).0, ids(&["333333333333"]));
    // Case-sensitive, as AWS tags are; no match at all is exit 5, as for --match.
    let output = env
        .fanout()
        .args(["--accounts-meta", &meta, "--role", "ReadOnly", "--tag", "env=PROD", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5), "{}", stderr_of(&output));
}

#[test]
fn org_filters_compose_with_match_exclude_accounts_and_shard() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    assert_eq!(ids_run(&env, &meta, &["--ou", "Root/Workloads", "--match", "*-dev"]).0, ids(&["333333333333"]));
    assert_eq!(ids_run(&env, &meta, &["--ou", "Root/Workloads", "--exclude", "*-eu"]).0.len(), 2);
    let listed = ids_run(&env, &meta, &["--ou", "Root/Workloads/Prod", "--accounts", "111111111111,333333333333"]);
    assert_eq!(listed.0, ids(&["111111111111"]));
    let mut shards: Vec<String> =
        (1..=2).flat_map(|i| ids_run(&env, &meta, &["--tag", "team", "--shard", &format!("{i}/2")]).0).collect();
    shards.sort();
    assert_eq!(shards, ids(&["111111111111", "222222222222", "333333333333"]), "disjoint and complete");
}

#[test]
fn suspended_and_closed_accounts_are_skipped_counted_and_never_called() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    let output = env
        .fanout()
        .env("FANOUT_ACCOUNTS_META", &meta)
        .args(["--role", "ReadOnly", "--output", "json", "--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    let results: Vec<&str> =
        records.iter().filter(|r| r["type"] == "result").map(|r| r["account_id"].as_str().unwrap()).collect();
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(!results.contains(&"444444444444") && !results.contains(&"666666666666"), "{results:?}");
    let summary = records.last().unwrap();
    assert_eq!((summary["type"].as_str(), summary["inactive"].as_u64()), (Some("summary"), Some(2)));
    assert_eq!(summary["selected"], 4);
    assert_eq!(env.portal.stats().get_role_credentials, 4, "no credentials asked for a skipped account");
    assert!(stderr_of(&output).contains("skipped      2 accounts the organization lists as suspended or closed"));
}

#[test]
fn the_facts_reach_the_child_and_the_json_results() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    let script = "printf '%s\\n' \"$FANOUT_OU_PATH\" {ou_path}";
    let output = env
        .fanout()
        .env("FANOUT_OU_PATH", "inherited")
        .args(["--accounts-meta", &meta, "--role", "ReadOnly", "--accounts", "222222222222,555555555555", "-j", "1"])
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        stdout_of(&output),
        "222222222222|Root/Workloads/Prod/Eu\n222222222222|Root/Workloads/Prod/Eu\n555555555555|\n555555555555|\n",
        "set for every child (empty when unknown), never inherited"
    );
    let output = env
        .fanout()
        .args(["--accounts-meta", &meta, "--role", "ReadOnly", "--accounts", "222222222222,555555555555"])
        .args(["--output", "json", "--", "true"])
        .output()
        .unwrap();
    let records = valid_records(&output.stdout);
    let result = |id: &str| records.iter().find(|r| r["type"] == "result" && r["account_id"] == id).unwrap().clone();
    assert_eq!(result("222222222222")["ou_path"], "Root/Workloads/Prod/Eu");
    assert_eq!(result("222222222222")["tags"], serde_json::json!({"env": "prod-eu", "team": "search"}));
    assert!(result("555555555555").get("ou_path").is_none() && result("555555555555").get("tags").is_none());
}

#[test]
fn fanout_accounts_shows_the_facts_as_columns_and_json_fields() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    let output = env.fanout().args(["--accounts-meta", &meta, "accounts", "--output", "json"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.len(), 4, "the suspended and the closing accounts are not listed: {listed:?}");
    assert_eq!(listed[0]["account_id"], "111111111111");
    assert_eq!(listed[0]["ou_path"], "Root/Workloads/Prod");
    assert_eq!(listed[0]["tags"]["team"], "payments");
    let output =
        env.fanout().args(["--accounts-meta", &meta, "--ou", "Root/Workloads/Prod/Eu", "accounts"]).output().unwrap();
    let table = stdout_of(&output);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ACCOUNT_ID", "NAME", "EMAIL", "ROLES", "OU_PATH", "TAGS"], "{table}");
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[4..], ["Root/Workloads/Prod/Eu", "env=prod-eu;team=search"], "{table}");
    assert_eq!(table.lines().count(), 2, "{table}");
}

#[test]
fn a_toml_meta_file_gives_the_same_facts() {
    let env = TestEnv::new(portal());
    let meta = write(
        env.home(),
        "org.toml",
        r#"
[[account]]
id = "111111111111"
ou_path = "Root/Workloads/Prod"
ou_id = "ou-ab12-11111111"
tags = { env = "prod" }

[[account]]
id = "222222222222"
ou_path = "Root/Workloads/Prod/Eu"
state = "CLOSED"
"#,
    );
    let (run, stderr) = ids_run(&env, &meta, &["--ou", "ou-ab12-11111111"]);
    assert_eq!(run, ids(&["111111111111"]));
    assert!(stderr.contains("skipped      1 account"), "{stderr}");
}

#[test]
fn a_bad_meta_file_is_exit_2_naming_the_file_the_line_and_the_fix() {
    let env = TestEnv::new(portal());
    let head = "account_id,ou_path,tags\n";
    let cases = [
        (format!("{head}111111111111,Root,\n12345,Root,\n"), "line 3: the account id \"12345\" is not 12 digits"),
        (
            format!("{head}111111111111,Root,\n111111111111,Root/X,\n"),
            "line 3: the account 111111111111 is listed twice",
        ),
        (
            format!("{head}111111111111,Root/\u{1b}[2JEvil,\n"),
            "line 2: the OU path \"Root/\\u{1b}[2JEvil\" holds a control",
        ),
        (
            format!("{head}111111111111,Root/\u{202e}lave,\n"),
            "line 2: the OU path \"Root/\\u{202e}lave\" holds a control or format",
        ),
        (format!("{head}111111111111,Root,env=a\u{7}b\n"), "line 2: the tag value"),
        (format!("{head}111111111111,Root,env\n"), "line 2: the tag \"env\" has no `=`"),
        ("account_id,ou\n".to_owned(), "line 1: unknown column \"ou\""),
    ];
    for (text, words) in cases {
        let meta = write(env.home(), "bad.csv", &text);
        let output =
            env.fanout().args(["--accounts-meta", &meta, "--role", "ReadOnly", "--", "true"]).output().unwrap();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(stderr.contains(&format!("--accounts-meta {meta} {words}")), "{text:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("; "), "with its fix: {stderr}");
        assert!(!stderr.contains('\u{1b}') && !stderr.contains('\u{202e}'), "escaped: {stderr}");
    }
    let huge = write(env.home(), "huge.csv", &format!("{head}{}", "#".repeat(16 << 20)));
    let output = env.fanout().args(["--accounts-meta", &huge, "--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("larger than the 16 MiB limit"), "{}", stderr_of(&output));
    let unknown = write(env.home(), "org.json", "{}");
    let output = env.fanout().args(["--accounts-meta", &unknown, "accounts"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("*.csv or *.toml"), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().list_accounts, 0, "refused before any portal call");
}

#[test]
fn ou_and_tag_without_facts_or_with_an_unknown_ou_are_exit_2_with_a_hint() {
    let env = TestEnv::new(portal());
    for flag in [["--ou", "Root/Workloads"], ["--exclude-ou", "Root"], ["--tag", "env=prod"]] {
        let output = env.fanout().args(flag).args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag:?}");
        let stderr = stderr_of(&output);
        assert!(stderr.contains(flag[0]) && stderr.contains("--accounts-meta FILE"), "{stderr}");
    }
    let meta = write(env.home(), "org.csv", META_CSV);
    for ou in ["Root/workloads", "ou-ab12-99999999", "Workloads/Prod"] {
        let output = env.fanout().args(["--accounts-meta", &meta, "--ou", ou, "accounts"]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{ou}");
        assert!(stderr_of(&output).contains(&format!("is in the OU {ou}")), "{}", stderr_of(&output));
    }
    assert_eq!(env.portal.stats().list_accounts, 0);
}

#[test]
fn no_ou_name_runs_as_code_in_a_shell_script() {
    let dir = tempfile::tempdir().unwrap();
    // OU names are the organization administrator's: these would run `touch pwned` if
    // pasted into the script. (The meta file refuses control characters; these have none.)
    let names = ["q$(touch pwned)", "q`touch pwned`", "it's'; touch pwned; echo '", "say \"hi\"; touch pwned; echo \""];
    let mut meta = String::from("account_id,ou_path\n");
    let mut accounts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let id = format!("{:012}", 111_111_111_111u64 + i as u64);
        let _ = writeln!(meta, "{id},\"Root/{}\"", name.replace('"', "\"\""));
        accounts.push(Account::new(&id, &format!("a{i}"), &["ReadOnly"]));
    }
    let env = TestEnv::new(PortalOptions { accounts, ..PortalOptions::default() });
    let meta = write(env.home(), "org.csv", &meta);
    for script in ["printf '%s\\n' {ou_path}", "printf '%s\\n' '{ou_path}'", "printf '%s\\n' \"{ou_path}\""] {
        for shell in ["sh", "bash"] {
            let output = env
                .fanout()
                .current_dir(dir.path())
                .args(["--accounts-meta", &meta, "--role", "ReadOnly", "--", shell, "-ec", script])
                .output()
                .unwrap();
            assert!(output.status.success(), "{shell} {script}: {}", stderr_of(&output));
            let printed: Vec<String> =
                sorted_lines(&stdout_of(&output)).iter().map(|l| l.split_once('|').unwrap().1.to_owned()).collect();
            let mut expected: Vec<String> = names.iter().map(|name| format!("Root/{name}")).collect();
            expected.sort();
            let mut printed = printed;
            printed.sort();
            assert_eq!(printed, expected, "{shell} {script}");
            assert!(!dir.path().join("pwned").exists(), "{shell} {script}: an OU name ran as code");
        }
    }
    // Where no quoting is safe, {ou_path} is refused as {account_name} is.
    for command in [&["sh", "-c", "eval echo {ou_path}"][..], &["python3", "-c", "print('{ou_path}')"]] {
        let output =
            env.fanout().args(["--accounts-meta", &meta, "--role", "ReadOnly", "--"]).args(command).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{command:?}: {}", stderr_of(&output));
        assert!(stderr_of(&output).contains("FANOUT_OU_PATH"), "{command:?}: {}", stderr_of(&output));
    }
}

#[test]
fn the_facts_go_into_the_plan_the_joblog_and_the_junit_report() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    let plan = env.home().join("plan.json");
    let output = env
        .fanout()
        .args(["--accounts-meta", &meta, "--role", "ReadOnly", "--ou", "Root/Workloads/Prod/Eu", "--dry-run"])
        .arg("--save-plan")
        .arg(&plan)
        .args(["--", "sh", "-c", "echo {ou_path}"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let account = &saved["accounts"][0];
    assert_eq!(account["ou_path"], "Root/Workloads/Prod/Eu");
    assert_eq!(account["tags"]["team"], "search");
    assert_eq!(account["argv"], serde_json::json!(["sh", "-c", "echo \"$FANOUT_OU_PATH\""]));
    // `apply` gives the child the OU path the plan was made with, without the file.
    let sha = sha256_hex(&std::fs::read(&plan).unwrap());
    let output = env.fanout().arg("apply").arg(&plan).args(["--approve", &sha]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "222222222222|Root/Workloads/Prod/Eu\n");
    // Its records and joblog line carry the facts the plan recorded, as the dry run's did.
    let applied_log = env.home().join("applied-joblog");
    let output = env
        .fanout()
        .args(["--output", "json", "--joblog"])
        .arg(&applied_log)
        .arg("apply")
        .arg(&plan)
        .args(["--approve", &sha])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let records = valid_records(&output.stdout);
    let result = records.iter().find(|r| r["type"] == "result").expect("a result record");
    assert_eq!(result["ou_path"], "Root/Workloads/Prod/Eu", "{result}");
    assert_eq!(result["tags"]["team"], "search", "{result}");
    let log = std::fs::read_to_string(&applied_log).unwrap();
    assert!(log.lines().any(|l| l.ends_with("\tRoot/Workloads/Prod/Eu\tenv=prod-eu;team=search")), "{log}");

    let joblog = env.home().join("joblog");
    let junit = env.home().join("junit.xml");
    let output = env
        .fanout()
        .args(["--accounts-meta", &meta, "--role", "ReadOnly", "--accounts", "222222222222,555555555555"])
        .arg("--joblog")
        .arg(&joblog)
        .arg("--junit")
        .arg(&junit)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let log = std::fs::read_to_string(&joblog).unwrap();
    assert!(log.lines().next().unwrap().ends_with("\tClass\tOuPath\tTags"), "{log}");
    let line = |id: &str| log.lines().find(|l| l.contains(id)).unwrap().to_owned();
    assert!(line("222222222222").ends_with("\tRoot/Workloads/Prod/Eu\tenv=prod-eu;team=search"), "{log}");
    assert!(line("555555555555").ends_with("\tsucceeded\t\t\t"), "{log}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<property name=\"ou_path\" value=\"Root/Workloads/Prod/Eu\"/>"), "{xml}");
    assert!(xml.contains("<property name=\"tag:team\" value=\"search\"/>"), "{xml}");
    assert_eq!(xml.matches("<properties>").count(), 1, "none for the account the file does not list: {xml}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().concat()
}

#[test]
fn the_config_file_can_name_the_meta_file_and_a_flag_beats_it() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    let other = write(env.home(), "other.csv", "account_id,ou_path\n333333333333,Root/Elsewhere\n");
    let dir = env.home().join(".config/fanout");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), format!("accounts-meta = \"{meta}\"\n")).unwrap();
    assert_eq!(ids_run_without_meta(&env, &["--ou", "Root/Workloads/Prod/Eu"]), ids(&["222222222222"]));
    assert_eq!(
        ids_run_without_meta(&env, &["--accounts-meta", &other, "--ou", "Root/Elsewhere"]),
        ids(&["333333333333"])
    );
    let output = env.fanout().arg("config").output().unwrap();
    assert!(stdout_of(&output).contains("accounts-meta"), "{}", stdout_of(&output));
}

fn ids_run_without_meta(env: &TestEnv, selection: &[&str]) -> Vec<String> {
    let args = [&["--role", "ReadOnly"], selection, &["--", "echo", "{account_id}"]].concat();
    let output = env.fanout().args(args).output().unwrap();
    assert!(output.status.success(), "{selection:?}: {}", stderr_of(&output));
    sorted_lines(&stdout_of(&output)).into_iter().map(|line| line.split('|').next().unwrap().to_owned()).collect()
}

#[test]
fn the_html_report_and_the_markdown_summary_name_the_ou() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    let (html, markdown) = (env.home().join("report.html"), env.home().join("summary.md"));
    let output = env
        .fanout()
        .args(["--accounts-meta", &meta, "--role", "ReadOnly", "--accounts", "222222222222"])
        .arg("--report")
        .arg(&html)
        .arg("--summary-markdown")
        .arg(&markdown)
        .args(["--", "false"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<small>Root/Workloads/Prod/Eu</small>"), "{page}");
    let summary = std::fs::read_to_string(&markdown).unwrap();
    assert!(summary.contains("222222222222 \\(search\\-prod\\-eu\\) in Root\\/Workloads\\/Prod\\/Eu"), "{summary}");
}

/// A dry run shows each account's OU path and tags, so an `--ou`/`--tag` selection can be
/// checked before anything runs; an account the file does not list has empty cells.
#[test]
fn a_dry_run_shows_each_accounts_ou_path_and_tags() {
    let env = TestEnv::new(portal());
    let meta = write(env.home(), "org.csv", META_CSV);
    let args = ["--accounts-meta", &meta, "--role", "ReadOnly", "--match", "pay-*", "--match", "unlisted"];
    let output = env.fanout().args(args).args(["--dry-run", "--", "true"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let table = stdout_of(&output);
    let rows: Vec<Vec<&str>> = table.lines().map(|line| line.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["ACCOUNT_ID", "NAME", "ROLE", "OU_PATH", "TAGS", "COMMAND"], "{table}");
    assert!(
        rows.contains(&vec![
            "111111111111",
            "pay-prod",
            "ReadOnly",
            "Root/Workloads/Prod",
            "env=prod;team=payments",
            "true"
        ]),
        "{table}"
    );
    assert!(
        rows.contains(&vec![
            "333333333333",
            "pay-dev",
            "ReadOnly",
            "Root/Workloads/Dev",
            "env=dev;team=payments",
            "true"
        ]),
        "{table}"
    );
    assert!(rows.contains(&vec!["555555555555", "unlisted", "ReadOnly", "true"]), "{table}");
    // Without facts, the table keeps its columns as they were.
    let plain =
        env.fanout().args(["--role", "ReadOnly", "--match", "pay-prod", "--dry-run", "--", "true"]).output().unwrap();
    assert!(stdout_of(&plain).starts_with("ACCOUNT_ID"), "{}", stdout_of(&plain));
    assert!(!stdout_of(&plain).contains("OU_PATH"), "{}", stdout_of(&plain));
}
