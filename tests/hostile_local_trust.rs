//! Issue 16, points 7 and 12: files another local user could have written are not
//! trusted silently (the config file, the token cache), and fanout's refresh lock stays
//! out of the AWS CLI's token cache directory.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::PortalOptions;
use fake_portal::home::{HomeOptions, RefreshFields, token_cache_path, write_refreshable_token};
use serde_json::Value;

/// The uid `nobody` has on Linux: a user who is neither the test's nor root.
const NOBODY: u32 = 65_534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
}

/// Writes `~/.config/fanout/config.toml` with `mode`.
fn write_config_file(env: &TestEnv, text: &str, mode: u32) -> PathBuf {
    let dir = env.home().join(".config/fanout");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    chmod(&path, mode);
    path
}

/// The one `error:` line, and that it is the only line on stderr.
fn one_error_line(output: &std::process::Output) -> String {
    let stderr = stderr_of(output);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn a_config_file_writable_by_others_is_refused_naming_chmod() {
    let env = TestEnv::new(PortalOptions::default());
    let path = write_config_file(&env, "confirm-above = 0\nquiet = true\n", 0o666);
    for args in [&["config"][..], &["--", "true"][..]] {
        let output = env.fanout().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr_of(&output));
        let line = one_error_line(&output);
        assert!(line.contains("writable by group or others (mode 666)"), "{line}");
        assert!(line.contains(&format!("run: chmod go-w {}", path.display())), "{line}");
    }
    // Group-writable is refused too, as ssh refuses it.
    chmod(&path, 0o664);
    let output = env.fanout().arg("config").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().served(), 0, "refused before any portal call");
}

#[test]
fn a_config_file_named_by_fanout_config_is_checked_too_and_the_hint_quotes_its_path() {
    let env = TestEnv::new(PortalOptions::default());
    let dir = env.home().join("my configs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fanout.toml");
    std::fs::write(&path, "role = [\"ReadOnly\"]\n").unwrap();
    chmod(&path, 0o646);
    let output = env.fanout().env("FANOUT_CONFIG", &path).arg("config").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(one_error_line(&output).contains(&format!("run: chmod go-w '{}'", path.display())));
}

#[test]
fn a_private_config_file_of_the_users_is_used() {
    let env = TestEnv::new(PortalOptions::default());
    for mode in [0o644, 0o600, 0o444] {
        let path = write_config_file(&env, "role = [\"ReadOnly\"]\n", mode);
        let output = env.fanout().arg("config").output().unwrap();
        assert_eq!(output.status.code(), Some(0), "mode {mode:o}: {}", stderr_of(&output));
        assert!(
            stdout_of(&output).contains(&format!("= ReadOnly  (file {})", path.display())),
            "{}",
            stdout_of(&output)
        );
        assert_eq!(stderr_of(&output), "", "no warning");
    }
}

#[test]
fn a_config_file_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: making a file another user's takes root (chown)");
        return;
    }
    let env = TestEnv::new(PortalOptions::default());
    let path = write_config_file(&env, "role = [\"ReadOnly\"]\n", 0o644);
    chown(&path, NOBODY);
    let output = env.fanout().arg("config").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let line = one_error_line(&output);
    assert!(line.contains(&format!("owned by uid {NOBODY}, neither you nor root")), "{line}");
    assert!(line.contains("sudo chown"), "{line}");
    // A symlink is followed, and it is the file it leads to that is judged.
    let symlink = env.home().join("link.toml");
    std::os::unix::fs::symlink(&path, &symlink).unwrap();
    let output = env.fanout().env("FANOUT_CONFIG", &symlink).arg("config").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
}

#[test]
fn fanout_config_escapes_control_and_format_characters_in_values() {
    let env = TestEnv::new(PortalOptions::default());
    let path = write_config_file(&env, "prefix = \"a\\u001b[31mb\\nforged = line \\u202e\"\n", 0o600);
    let output = env.fanout().arg("config").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(!stdout.contains('\u{1b}') && !stdout.lines().any(|l| l.starts_with("forged")), "{stdout}");
    // Printed as every other printer prints a value (the shared escaper): U+202E is
    // escaped wherever that escaper escapes format characters (issue 16, point 9).
    let value = "a\u{1b}[31mb\nforged = line \u{202e}";
    let escaped = fanout::text::show(value);
    let prefix = stdout.lines().find(|l| l.starts_with("prefix ")).unwrap_or_default();
    assert!(prefix.ends_with(&format!("= {escaped}  (file {})", path.display())), "{stdout}");
    // A file's path is escaped on the `# config file:` line too.
    let odd = env.home().join("odd\ndir");
    std::fs::create_dir_all(&odd).unwrap();
    let named = odd.join("c.toml");
    std::fs::write(&named, "").unwrap();
    let output = env.fanout().env("FANOUT_CONFIG", &named).arg("config").output().unwrap();
    let first = stdout_of(&output).lines().next().unwrap_or_default().to_owned();
    assert!(first.starts_with("# config file: ") && first.ends_with("odd\\ndir/c.toml"), "{first}");
}

/// 2026-11-24T03:00:00Z, long past: every run refreshes.
#[expect(clippy::duration_suboptimal_units, reason = "an epoch timestamp reads best in seconds")]
const EXPIRED_AT: Duration = Duration::from_secs(1_795_489_200);

/// A portal and a HOME whose token for `corp` has expired and can be refreshed.
fn refreshable_env() -> TestEnv {
    let env = TestEnv::new(PortalOptions::default());
    write_refreshable_token(env.home(), &HomeOptions::default(), UNIX_EPOCH + EXPIRED_AT, &RefreshFields::default())
        .unwrap();
    env
}

/// fanout with both the portal's and SSO OIDC's endpoints pointing at the fake portal.
fn fanout(env: &TestEnv) -> assert_cmd::Command {
    let mut command = env.fanout();
    command.env("AWS_ENDPOINT_URL_SSO_OIDC", env.portal.url());
    command
}

fn run_true(env: &TestEnv) -> std::process::Output {
    fanout(env).args(["--role", "ReadOnly", "--", "true"]).output().unwrap()
}

fn access_token(path: &Path) -> String {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["accessToken"].as_str().unwrap().to_owned()
}

/// Moves the token cache file to `target` and leaves a symlink to it in its place.
fn symlink_cache_to(env: &TestEnv, target: &Path) -> PathBuf {
    let cache = token_cache_path(env.home(), "corp");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::rename(&cache, target).unwrap();
    std::os::unix::fs::symlink(target, &cache).unwrap();
    cache
}

#[test]
fn a_token_cache_writable_by_others_is_used_with_a_warning() {
    let env = TestEnv::new(PortalOptions::default());
    let cache = token_cache_path(env.home(), "corp");
    chmod(&cache, 0o666);
    let output = env.fanout().args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("token cache file")).collect();
    assert_eq!(warnings.len(), 1, "one line: {stderr}");
    assert!(warnings[0].contains("writable by group or others (mode 666)"), "{stderr}");
    assert!(warnings[0].contains(&format!("run: chmod go-w {}", cache.display())), "{stderr}");
    let output = env.fanout().arg("doctor").output().unwrap();
    assert!(stdout_of(&output).contains("writable by group or others"), "doctor says so: {}", stdout_of(&output));
}

#[test]
fn a_token_cache_owned_by_another_user_is_used_with_a_warning() {
    if !is_root() {
        eprintln!("skipped: making a file another user's takes root (chown)");
        return;
    }
    let env = TestEnv::new(PortalOptions::default());
    // The attack of the issue: the cache is a symlink to another user's file.
    let planted = env.home().join("planted/token.json");
    symlink_cache_to(&env, &planted);
    chown(&planted, NOBODY);
    let output = env.fanout().args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("token cache file")).collect();
    assert_eq!(warnings.len(), 1, "one line: {stderr}");
    assert!(warnings[0].contains(&format!("owned by uid {NOBODY}, neither you nor root")), "{stderr}");
}

#[test]
fn a_symlinked_token_cache_is_refreshed_through_the_link_to_a_private_file_of_the_users() {
    let env = refreshable_env();
    let kept = env.home().join("dotfiles/sso/token.json");
    let cache = symlink_cache_to(&env, &kept);
    chmod(kept.parent().unwrap(), 0o700);
    let output = run_true(&env);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().create_token, 1);
    assert!(std::fs::symlink_metadata(&cache).unwrap().file_type().is_symlink(), "the link is kept");
    assert_eq!(std::fs::read_link(&cache).unwrap(), kept);
    assert_eq!(access_token(&kept), "fake-access-token-r1", "the new token is in the file the link leads to");
    assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!stderr_of(&output).contains("WARN"), "{}", stderr_of(&output));
}

#[test]
fn a_symlinked_token_cache_to_a_file_others_can_write_is_not_rewritten() {
    let env = refreshable_env();
    let shared = env.home().join("shared/token.json");
    let cache = symlink_cache_to(&env, &shared);
    chmod(&shared, 0o666);
    let before = std::fs::read_to_string(&shared).unwrap();
    let output = run_true(&env);
    // The run goes on with the token it was given; the file is left as it was.
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().create_token, 1);
    assert!(std::fs::symlink_metadata(&cache).unwrap().file_type().is_symlink(), "the link is not replaced");
    assert_eq!(std::fs::read_to_string(&shared).unwrap(), before, "the target is not written");
    let stderr = stderr_of(&output);
    let refused: Vec<&str> = stderr.lines().filter(|l| l.contains("not rewritten")).collect();
    assert_eq!(refused.len(), 1, "one warning says so: {stderr}");
    assert!(refused[0].contains("refreshed the SSO token but cannot write the token cache file"), "{stderr}");
    assert!(refused[0].contains(&format!("symlink to {}", shared.display())), "{stderr}");
}

/// Every file in `dir`, each of which must parse as JSON.
fn assert_every_file_is_json(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_ok(), "{} is not JSON: {text:?}", path.display());
    }
}

#[test]
fn after_a_refresh_the_aws_cli_cache_holds_only_json_and_the_lock_is_fanouts() {
    let env = refreshable_env();
    let cache = token_cache_path(env.home(), "corp");
    let sso_dir = cache.parent().unwrap().to_owned();
    let name = cache.file_name().unwrap().to_string_lossy().into_owned();
    // An older fanout's lock: cleared by the first refresh.
    std::fs::write(sso_dir.join(format!("{name}.lock")), "").unwrap();
    let output = run_true(&env);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(env.portal.stats().create_token, 1);
    let names: Vec<String> =
        std::fs::read_dir(&sso_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, std::slice::from_ref(&name), "only the AWS CLI's own file");
    assert_every_file_is_json(&sso_dir);
    let lock = env.home().join(format!(".cache/fanout/locks/{name}.lock"));
    assert!(lock.is_file(), "the lock is where docs/security.md says");
    let locks_mode = std::fs::metadata(lock.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(locks_mode, 0o700);
    article_script_reads(&env);

    // With XDG_CACHE_HOME, under it.
    let env = refreshable_env();
    let xdg = env.home().join("xdg-cache");
    let output = fanout(&env).env("XDG_CACHE_HOME", &xdg).args(["--role", "ReadOnly", "--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(xdg.join(format!("fanout/locks/{name}.lock")).is_file());
    assert_every_file_is_json(&sso_dir);
}

/// The seed article's cache-reading loop, as it is written there (step 5): it
/// json-parses every file in `~/.aws/sso/cache` and takes the token of its start URL.
/// Only the loop, copied here, so the test needs neither the article's script nor boto3.
const ARTICLE_LOOP: &str = r#"
from os import listdir
from os.path import isfile, join, expanduser
import json

START_URL = "https://corp.awsapps.com/start"
SSO_TOKEN_DIR = join(expanduser("~"), ".aws/sso/cache")
sso_access_token = None
sso_cache_files = [f for f in listdir(SSO_TOKEN_DIR) if isfile(join(SSO_TOKEN_DIR, f))]
for sso_cache_file in sso_cache_files:
    with open(join(SSO_TOKEN_DIR, sso_cache_file), "r", encoding="utf-8") as fp:
        sso_cache_obj = json.load(fp)
    if sso_cache_obj.get("startUrl") == START_URL:
        sso_access_token = sso_cache_obj["accessToken"]
        break
print(sso_access_token)
"#;

fn article_script_reads(env: &TestEnv) {
    if !std::process::Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped the article's cache loop: python3 is not installed");
        return;
    }
    let output = env.isolated("python3").args(["-c", ARTICLE_LOOP]).output().unwrap();
    assert!(output.status.success(), "the article's loop crashed: {}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "fake-access-token-r1\n");
}

#[test]
fn the_lock_directory_must_be_the_users_alone() {
    let env = refreshable_env();
    let locks = env.home().join(".cache/fanout/locks");
    std::fs::create_dir_all(&locks).unwrap();
    chmod(&locks, 0o777);
    let started = SystemTime::now();
    let output = run_true(&env);
    // The refresh is refused (exit 3, the token expired), naming the directory and chmod.
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains(&format!("{}: writable by others (mode 777); chmod 700 it", locks.display())), "{stderr}");
    assert_eq!(env.portal.stats().create_token, 0);
    assert!(started.elapsed().unwrap() < Duration::from_secs(30), "no wait for a lock");
}
