//! `--output-dir DIR`: each account's raw stdout and stderr in `DIR/<account_id>/stdout`
//! and `DIR/<account_id>/stderr`, and `DIR/results.jsonl` with the `result` and
//! `summary` records of `--output json`, whatever is printed on the terminal.
//!
//! A command may print secrets, so the files are 0600 and the directories 0700. Another
//! local user must not be able to redirect a write: DIR is opened once, never through a
//! symlink, and refused unless it is the user's own and writable by no one else;
//! everything under it is made relative to that handle (`mkdirat`, `openat` with
//! `O_NOFOLLOW`), an earlier run's file is unlinked and created anew with `O_EXCL` (so
//! neither a planted symlink nor a hard link to someone's file is written through), and
//! modes are set on the open handles (`fchmod`), never on a path someone could swap.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::files::is_mine;

/// The directory of a run, and its `results.jsonl`.
#[derive(Debug)]
pub struct OutputDir {
    root: PathBuf,
    /// DIR itself, opened once: every name below is resolved from it, not from `root`.
    handle: File,
    results: Mutex<BufWriter<File>>,
    /// A write failed: output was lost, and the run must not exit 0.
    failed: AtomicBool,
}

/// Why `--output-dir` was not used.
#[derive(Debug, thiserror::Error)]
pub enum OutputDirError {
    #[error("--output-dir {}: {problem}", path.display())]
    Unsafe { path: PathBuf, problem: Unsafe },
    #[error("cannot create --output-dir {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What makes a directory one another local user could redirect fanout's writes through.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    #[error("is a symlink or not a directory")]
    NotADirectory,
    #[error("is owned by uid {0}, not by you")]
    ForeignOwner(u32),
    #[error("is writable by group or others (mode {0:03o})")]
    WritableByOthers(u32),
}

impl OutputDirError {
    /// The fix, as a hint.
    pub fn hint(&self) -> Option<String> {
        let OutputDirError::Unsafe { path, problem } = self else { return None };
        let quoted = shell_words::quote(&path.display().to_string()).into_owned();
        Some(match problem {
            Unsafe::NotADirectory => "give --output-dir the real directory, not a link to it".to_owned(),
            Unsafe::ForeignOwner(_) => "give --output-dir a directory of your own, e.g. one under your home".to_owned(),
            Unsafe::WritableByOthers(_) => format!("run: chmod go-w {quoted} (or choose a directory of your own)"),
        })
    }
}

impl OutputDir {
    /// Creates `root` (0700, with its parents) unless it exists, opens it once, checks
    /// it, and creates `results.jsonl` in it.
    pub fn create(root: &Path) -> Result<Self, OutputDirError> {
        // `out/` would follow a link named `out` despite O_NOFOLLOW: drop the slash.
        let root: PathBuf = root.components().collect();
        let io_error = |source| OutputDirError::Io { path: root.clone(), source };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .or_else(|error| if root.is_symlink() { Ok(()) } else { Err(error) })
            .map_err(io_error)?;
        let handle = match rustix::fs::open(&root, directory_flags(), Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(OutputDirError::Unsafe { path: root, problem: Unsafe::NotADirectory });
            }
            Err(errno) => return Err(io_error(errno.into())),
        };
        let metadata = handle.metadata().map_err(io_error)?;
        if let Some(problem) = unsafe_to_write_in(&metadata) {
            return Err(OutputDirError::Unsafe { path: root, problem });
        }
        let results = create_private(&handle, "results.jsonl").map_err(io_error)?;
        Ok(OutputDir { root, handle, results: Mutex::new(BufWriter::new(results)), failed: AtomicBool::new(false) })
    }

    /// `DIR/<account_id>/stdout` and `stderr`, created empty. The id is a validated
    /// 12-digit string, so it is a safe name.
    pub fn account_files(&self, account_id: &str) -> io::Result<[File; 2]> {
        let dir = self.account_dir(account_id)?;
        Ok([create_private(&dir, "stdout")?, create_private(&dir, "stderr")?])
    }

    /// `DIR/<account_id>`, made or (from an earlier run) opened, never through a link,
    /// and private from now on.
    fn account_dir(&self, name: &str) -> io::Result<File> {
        match rustix::fs::mkdirat(&self.handle, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => return Err(errno.into()),
        }
        let dir = match rustix::fs::openat(&self.handle, name, directory_flags(), Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::LOOP | Errno::NOTDIR) => return Err(io::Error::other(Unsafe::NotADirectory)),
            Err(errno) => return Err(errno.into()),
        };
        let metadata = dir.metadata()?;
        if !is_mine(&metadata) {
            return Err(io::Error::other(Unsafe::ForeignOwner(metadata.uid())));
        }
        dir.set_permissions(std::fs::Permissions::from_mode(0o700))?;
        Ok(dir)
    }

    /// Appends one record (a whole line) to `results.jsonl`.
    pub fn write_record(&self, record: &[u8]) {
        let mut results = self.results.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = results.write_all(record) {
            self.lost(&error, "results.jsonl");
        }
    }

    /// Flushes `results.jsonl`; `false` if any write of the run failed.
    pub fn finish(&self) -> bool {
        let mut results = self.results.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = results.flush() {
            self.lost(&error, "results.jsonl");
        }
        !self.failed.load(Ordering::Relaxed)
    }

    /// Notes a failed write of `what`, saying so the first time.
    pub fn lost(&self, error: &io::Error, what: &str) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::warn!("cannot write {} in --output-dir {}: {error}", what, self.root.display());
        }
    }
}

/// `O_DIRECTORY|O_NOFOLLOW`: a directory, and not a link to one.
fn directory_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Why a directory (its `fstat`) is not one to write in: the inventory cache's rule, the
/// user's own and writable by no one else, for root's as much as anyone's.
fn unsafe_to_write_in(metadata: &std::fs::Metadata) -> Option<Unsafe> {
    if !metadata.is_dir() {
        Some(Unsafe::NotADirectory)
    } else if !is_mine(metadata) {
        Some(Unsafe::ForeignOwner(metadata.uid()))
    } else if metadata.mode() & 0o022 != 0 {
        Some(Unsafe::WritableByOthers(metadata.mode() & 0o7777))
    } else {
        None
    }
}

/// `name` in `dir`, new and empty, 0600: an earlier file of that name is unlinked first
/// rather than truncated, and the create is exclusive and never follows a link, so
/// whatever someone planted there is replaced, never written through.
fn create_private(dir: &File, name: &str) -> io::Result<File> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(errno) => return Err(errno.into()),
    }
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let file = File::from(rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?);
    // The umask may have taken bits off 0600; it cannot have added any, but say it whole.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_private_and_overwritten_and_links_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("out/run");
        let dir = OutputDir::create(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        let [mut out, _] = dir.account_files("111122223333").unwrap();
        out.write_all(b"first run, longer\n").unwrap();
        std::fs::set_permissions(root.join("111122223333/stdout"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(root.join("111122223333"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let [mut out, _] = dir.account_files("111122223333").unwrap();
        out.write_all(b"second\n").unwrap();
        assert_eq!(std::fs::read(root.join("111122223333/stdout")).unwrap(), b"second\n");
        assert_eq!(mode(&root.join("111122223333/stdout")), 0o600);
        assert_eq!(mode(&root.join("111122223333")), 0o700);

        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "theirs\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("777788889999")).unwrap();
        assert!(dir.account_files("777788889999").is_err(), "a symlinked account directory");
        std::fs::create_dir(root.join("444455556666")).unwrap();
        std::os::unix::fs::symlink(&victim, root.join("444455556666/stdout")).unwrap();
        std::fs::hard_link(&victim, root.join("444455556666/stderr")).unwrap();
        let [mut out, mut err] = dir.account_files("444455556666").unwrap();
        out.write_all(b"out\n").unwrap();
        err.write_all(b"err\n").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"theirs\n");
        assert_eq!(mode(&victim), 0o644, "never chmod through a link");
        assert_eq!(std::fs::read(root.join("444455556666/stdout")).unwrap(), b"out\n");
        assert_eq!(std::fs::read(root.join("444455556666/stderr")).unwrap(), b"err\n");

        dir.write_record(b"{}\n");
        assert!(dir.finish());
        assert_eq!(std::fs::read(root.join("results.jsonl")).unwrap(), b"{}\n");
    }

    #[test]
    fn a_directory_that_is_a_link_or_others_can_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, tmp.path().join("link")).unwrap();
        for given in ["link", "link/", "link/."] {
            let refused = OutputDir::create(&tmp.path().join(given)).unwrap_err();
            assert!(
                matches!(refused, OutputDirError::Unsafe { problem: Unsafe::NotADirectory, .. }),
                "{given}: {refused}"
            );
        }
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let refused = OutputDir::create(&real).unwrap_err();
        assert!(matches!(refused, OutputDirError::Unsafe { problem: Unsafe::WritableByOthers(0o1777), .. }));
        assert!(refused.hint().unwrap().starts_with("run: chmod go-w "), "{:?}", refused.hint());
        assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0, "nothing written in it");
    }

    /// The attack of the review, run as the same user (a test has no second one): a
    /// thread renames `DIR/<id>` away and plants a link to the victim's directory in
    /// its place, again and again, while the account's files are created. Whoever
    /// wins each race, nothing is written or chmodded through the link.
    #[test]
    fn a_rename_race_on_the_account_directory_never_redirects_a_write() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("out");
        let victim = tmp.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("stdout"), "theirs\n").unwrap();
        std::fs::set_permissions(victim.join("stdout"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let dir = OutputDir::create(&root).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let attacker = {
            let (stop, root, victim) = (std::sync::Arc::clone(&stop), root.clone(), victim.clone());
            std::thread::spawn(move || {
                for round in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let target = root.join("111122223333");
                    let _ = std::fs::rename(&target, root.join(format!("away-{round}")));
                    let _ = std::os::unix::fs::symlink(&victim, &target);
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(&target);
                }
            })
        };
        for _ in 0..300 {
            if let Ok([mut out, _]) = dir.account_files("111122223333") {
                let _ = out.write_all(b"ours\n");
            }
        }
        stop.store(true, Ordering::Relaxed);
        attacker.join().unwrap();
        assert_eq!(std::fs::read(victim.join("stdout")).unwrap(), b"theirs\n");
        assert_eq!(mode(&victim.join("stdout")), 0o644);
        assert_ne!(mode(&victim), 0o700, "the victim's directory was not chmodded");
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
    }
}
