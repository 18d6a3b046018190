//! `--output-dir DIR`: each account's raw stdout and stderr in `DIR/<account_id>/stdout`
//! and `DIR/<account_id>/stderr`, and `DIR/results.jsonl` with the `result` and
//! `summary` records of `--output json`, whatever is printed on the terminal.
//!
//! A command may print secrets, so the files are 0600 and the directories 0700. A
//! directory that exists is used and the files of an earlier run are overwritten; a
//! file is never opened through a symlink, so a planted link cannot redirect a write.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The directory of a run, and its `results.jsonl`.
#[derive(Debug)]
pub struct OutputDir {
    root: PathBuf,
    results: Mutex<BufWriter<File>>,
    /// A write failed: output was lost, and the run must not exit 0.
    failed: AtomicBool,
}

impl OutputDir {
    /// Creates `root` (0700, with its parents) unless it exists, and `results.jsonl`.
    pub fn create(root: &Path) -> io::Result<Self> {
        DirBuilder::new().recursive(true).mode(0o700).create(root)?;
        let results = BufWriter::new(open_private(&root.join("results.jsonl"))?);
        Ok(OutputDir { root: root.to_owned(), results: Mutex::new(results), failed: AtomicBool::new(false) })
    }

    /// `DIR/<account_id>/stdout` and `stderr`, created empty. The id is a validated
    /// 12-digit string, so it is a safe name.
    pub fn account_files(&self, account_id: &str) -> io::Result<[File; 2]> {
        let dir = self.root.join(account_id);
        match DirBuilder::new().mode(0o700).create(&dir) {
            Err(error) if error.kind() != io::ErrorKind::AlreadyExists => return Err(error),
            Ok(()) => {}
            // One an earlier run (or anyone) made: a real directory, and private from now on.
            Err(_) => {
                if !std::fs::symlink_metadata(&dir)?.is_dir() {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, "not a directory (or a symlink)"));
                }
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        Ok([open_private(&dir.join("stdout"))?, open_private(&dir.join("stderr"))?])
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

/// Opens `path` for writing from its start, 0600 whether it is new or not, never
/// through a symlink.
fn open_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // An existing file keeps its mode through open: it may have been readable by others.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_overwritten_and_links_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("out/run");
        let dir = OutputDir::create(&root).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        let [mut out, _] = dir.account_files("111122223333").unwrap();
        out.write_all(b"first run, longer\n").unwrap();
        std::fs::set_permissions(root.join("111122223333/stdout"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let [mut out, _] = dir.account_files("111122223333").unwrap();
        out.write_all(b"second\n").unwrap();
        assert_eq!(std::fs::read(root.join("111122223333/stdout")).unwrap(), b"second\n");
        assert_eq!(mode(&root.join("111122223333/stdout")), 0o600);
        assert_eq!(mode(&root.join("111122223333")), 0o700);
        std::fs::create_dir(root.join("444455556666")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("777788889999")).unwrap();
        assert!(dir.account_files("777788889999").is_err(), "a symlinked account directory");
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), root.join("444455556666/stdout")).unwrap();
        assert!(dir.account_files("444455556666").is_err());
        assert!(!tmp.path().join("elsewhere").exists());
        dir.write_record(b"{}\n");
        assert!(dir.finish());
        assert_eq!(std::fs::read(root.join("results.jsonl")).unwrap(), b"{}\n");
    }
}
