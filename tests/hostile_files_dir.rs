//! Issue 16, point 2: `--output-dir` cannot be redirected by another local user.
//!
//! DIR is opened once, never through a link, and refused (exit 2, naming the fix) unless
//! it is the user's own and writable by no one else; everything under it is created
//! relative to that handle, and what an earlier run (or anyone) left there is replaced,
//! never written or chmodded through, even while a second process races every run,
//! renaming the account directories away and planting links in their place.

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{TestEnv, stderr_of};
use fake_portal::{PortalOptions, generated_accounts};

fn env() -> TestEnv {
    TestEnv::new(PortalOptions { accounts: generated_accounts(3), ..PortalOptions::default() })
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A run into `dir` whose command leaves a mark in `marks`, so a refusal is seen to
/// have run nothing.
fn run_into(env: &TestEnv, dir: &str, marks: &Path) -> std::process::Output {
    std::fs::create_dir_all(marks).unwrap();
    let script = format!("echo out; touch {}/$FANOUT_ACCOUNT_ID", marks.display());
    env.fanout().args(["--role", "ReadOnly", "--output-dir", dir, "--", "sh", "-c", &script]).output().unwrap()
}

fn assert_refused_before_anything_ran(output: &std::process::Output, marks: &Path, says: &[&str]) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for words in says {
        assert!(stderr.contains(words), "{words:?} in {stderr}");
    }
    assert_eq!(std::fs::read_dir(marks).unwrap().count(), 0, "no command ran: {stderr}");
}

#[test]
fn a_directory_others_can_write_is_refused_naming_the_fix() {
    let env = env();
    let dir = env.home().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let output = run_into(&env, dir.to_str().unwrap(), &env.home().join("marks"));
    assert_refused_before_anything_ran(
        &output,
        &env.home().join("marks"),
        &["is writable by group or others (mode 1777)", &format!("chmod go-w {}", dir.display())],
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing written in it");
}

#[test]
fn a_link_given_as_the_directory_is_refused_with_or_without_a_slash() {
    let env = env();
    let real = env.home().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = env.home().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for given in [link.display().to_string(), format!("{}/", link.display())] {
        let output = run_into(&env, &given, &env.home().join("marks"));
        assert_refused_before_anything_ran(
            &output,
            &env.home().join("marks"),
            &["is a symlink or not a directory", "the real directory, not a link"],
        );
    }
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0, "nothing written through the link");
}

#[test]
fn a_directory_of_another_user_is_refused() {
    // SAFETY: getuid has no preconditions and cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipped: giving a directory to another user needs root, and this test runs as a user");
        return;
    }
    let env = env();
    let dir = env.home().join("theirs");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let output = run_into(&env, dir.to_str().unwrap(), &env.home().join("marks"));
    assert_refused_before_anything_ran(
        &output,
        &env.home().join("marks"),
        &["is owned by uid 65534, not by you", "a directory of your own"],
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn links_planted_in_the_directory_are_replaced_never_written_through() {
    let env = env();
    let accounts = generated_accounts(3);
    let [first, second, third] = [&accounts[0].id, &accounts[1].id, &accounts[2].id];
    let dir = env.home().join("out");
    let victims = env.home().join("victims");
    std::fs::create_dir(&victims).unwrap();
    for name in ["stdout", "results", "linked"] {
        std::fs::write(victims.join(name), "theirs\n").unwrap();
        std::fs::set_permissions(victims.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::create_dir_all(dir.join(first)).unwrap();
    std::os::unix::fs::symlink(victims.join("stdout"), dir.join(first).join("stdout")).unwrap();
    std::fs::hard_link(victims.join("results"), dir.join("results.jsonl")).unwrap();
    std::os::unix::fs::symlink(&victims, dir.join(second)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    let output = run_into(&env, dir.to_str().unwrap(), &env.home().join("marks"));
    let stderr = stderr_of(&output);
    // The account whose directory is a link loses its copy: lost output fails the run.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot write {second} in --output-dir")), "{stderr}");
    for name in ["stdout", "results", "linked"] {
        assert_eq!(std::fs::read_to_string(victims.join(name)).unwrap(), "theirs\n", "{name}");
        assert_eq!(mode(&victims.join(name)), 0o644, "{name} was not chmodded");
    }
    assert_ne!(mode(&victims), 0o700, "the victims' directory was not chmodded");
    assert_eq!(std::fs::read_dir(&victims).unwrap().count(), 3, "nothing created among the victims");
    for id in [first, third] {
        assert_eq!(std::fs::read_to_string(dir.join(id).join("stdout")).unwrap(), "out\n", "{id}");
        assert_eq!(mode(&dir.join(id).join("stdout")), 0o600);
        assert_eq!(std::fs::metadata(dir.join(id).join("stdout")).unwrap().nlink(), 1);
    }
    let results = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    assert_eq!(results.lines().filter(|l| l.contains(r#""type":"result""#)).count(), 3, "{results}");
    assert_eq!(std::fs::metadata(dir.join("results.jsonl")).unwrap().nlink(), 1);
}

/// The review's attack, by a real second process (as the same user: a test has no
/// second one, and a directory another user could write is refused above). It watches
/// DIR with inotify and, the moment fanout makes an account's directory, renames it away
/// and plants a link to the victim's directory in its place, so fanout's next step meets
/// the link. Whoever wins each race, nothing is written or chmodded through it.
#[test]
fn a_second_process_racing_renames_and_links_never_redirects_a_write() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: the racing process is a python3 loop, and python3 is not installed");
        return;
    }
    let env = env();
    let ids: Vec<String> = generated_accounts(3).into_iter().map(|a| a.id).collect();
    let dir = env.home().join("out");
    let victim = env.home().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("stdout"), "theirs\n").unwrap();
    std::fs::set_permissions(victim.join("stdout"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ready = env.home().join("watching");
    let race = r#"
import ctypes, os, struct, sys
out, victim, ready, ids = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
libc = ctypes.CDLL(None, use_errno=True)
watch = libc.inotify_init()
IN_CREATE, IN_ISDIR = 0x100, 0x40000000
assert watch >= 0 and libc.inotify_add_watch(watch, out.encode(), IN_CREATE) >= 0
open(ready, "w").close()
n = 0
while True:
    events = os.read(watch, 65536)
    at = 0
    while at < len(events):
        _, mask, _, length = struct.unpack_from("iIII", events, at)
        name = events[at + 16:at + 16 + length].rstrip(b"\0").decode()
        at += 16 + length
        if mask & IN_ISDIR and name in ids:
            n += 1
            path = os.path.join(out, name)
            try: os.rename(path, os.path.join(out, "away-%d-%s" % (n, name)))
            except OSError: pass
            try: os.symlink(victim, path)
            except OSError: pass
"#;
    let mut attacker = Command::new("python3")
        .args(["-c", race])
        .arg(&dir)
        .arg(&victim)
        .arg(&ready)
        .args(&ids)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while !ready.exists() {
        assert!(attacker.try_wait().unwrap().is_none(), "the racing process could not watch");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut lost = 0;
    for _ in 0..30 {
        // Each run makes the account directories anew, for the racer to swap.
        for id in &ids {
            let _ = std::fs::remove_file(dir.join(id));
        }
        let output = env
            .fanout()
            .args(["--role", "ReadOnly", "-j", "3", "--output-dir"])
            .arg(&dir)
            .args(["--", "echo", "ours"])
            .output()
            .unwrap();
        let stderr = stderr_of(&output);
        match output.status.code() {
            Some(0) => {}
            Some(1) if stderr.contains("in --output-dir") => lost += 1,
            code => panic!("exit {code:?}: {stderr}"),
        }
    }
    attacker.kill().unwrap();
    attacker.wait().unwrap();
    assert_eq!(std::fs::read_to_string(victim.join("stdout")).unwrap(), "theirs\n");
    assert_eq!(mode(&victim.join("stdout")), 0o644, "the victim's file was not chmodded");
    assert_eq!(mode(&victim), 0o755, "the victim's directory was not chmodded");
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1, "nothing created in the victim's directory");
    eprintln!("runs that met a planted link: {lost} of 30");
    assert!(lost > 0, "the racing process won some races: fanout met its link");
}
