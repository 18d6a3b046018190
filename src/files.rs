//! Reading files fanout does not control the content of (the token cache, the AWS
//! config, the inventory cache) without trusting their size or kind: a symlink to
//! `/dev/zero` or a multi-gigabyte file is refused with a clear error, not read into
//! memory. And writing the files others read whole (a plan, the token cache, the
//! remembered portal rate) so that no reader ever sees half of one. And deciding, as ssh
//! does, whether a file others could have written may be trusted at all.

use std::fs::{File, Metadata};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReadLimitError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("larger than the {} limit", human_size(*limit))]
    TooLarge { limit: u64 },
    #[error("not UTF-8 text")]
    NotText,
}

/// Opens `path` if it is a regular file (after symlinks), for a bounded read.
pub fn open_regular(path: &Path) -> Result<File, ReadLimitError> {
    let file = File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(ReadLimitError::NotAFile);
    }
    Ok(file)
}

/// The whole of `path` as text, if it is a regular file of at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<String, ReadLimitError> {
    read_to_limit(open_regular(path)?, limit)
}

/// The rest of an open `file` as text, if it holds at most `limit` bytes: for a caller
/// that checked the handle (its owner, its mode) before reading it.
pub fn read_to_limit(file: File, limit: u64) -> Result<String, ReadLimitError> {
    let mut bytes = Vec::new();
    // One byte past the limit tells a file of exactly `limit` bytes from a larger one,
    // even when the file grows while it is read.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadLimitError::TooLarge { limit });
    }
    String::from_utf8(bytes).map_err(|_| ReadLimitError::NotText)
}

/// Writes `bytes` to `path` as a temporary file in the same directory (0600 from
/// creation: tempfile's default), synced, then renamed over `path`: a reader sees the
/// old file or the new one, never half of one, and nobody else can read it meanwhile.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// Whether a file or directory belongs to the user fanout runs as.
pub fn is_mine(metadata: &Metadata) -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    metadata.uid() == unsafe { libc::getuid() }
}

/// Why a file that others could have written is not trusted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotPrivate {
    #[error("{} is owned by uid {uid}, neither you nor root", path.display())]
    ForeignOwner { path: PathBuf, uid: u32 },
    #[error("{} is writable by group or others (mode {mode:03o})", path.display())]
    WritableByOthers { path: PathBuf, mode: u32 },
}

impl NotPrivate {
    /// What makes the file trusted again, as a hint: the command, for a mode; for an
    /// owner, whom only root can change, the choice.
    pub fn fix(&self) -> String {
        match self {
            NotPrivate::ForeignOwner { path, .. } => {
                format!("make it yours (sudo chown \"$(id -un)\" {}) or remove it", shell_word(path))
            }
            NotPrivate::WritableByOthers { path, .. } => format!("run: chmod go-w {}", shell_word(path)),
        }
    }
}

/// Whether `metadata` (an `fstat` of the handle about to be read, never a second lookup
/// of the path, which another user could swap in between) is of a file only the user
/// could have written: owned by the user or by root, and writable by neither group nor
/// others. This is ssh's rule for `~/.ssh/config` (`readconf.c`): root is trusted
/// because root could rewrite any file anyway.
pub fn check_private(metadata: &Metadata, path: &Path) -> Result<(), NotPrivate> {
    if !is_mine(metadata) && metadata.uid() != 0 {
        return Err(NotPrivate::ForeignOwner { path: path.to_owned(), uid: metadata.uid() });
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(NotPrivate::WritableByOthers { path: path.to_owned(), mode: metadata.mode() & 0o7777 });
    }
    Ok(())
}

/// `path` as one shell word, for a hint the user pastes.
fn shell_word(path: &Path) -> String {
    shell_words::quote(&path.display().to_string()).into_owned()
}

/// `1 MiB`, `64 KiB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_atomic_write_is_private_from_creation() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn reads_within_the_limit_and_refuses_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abcd").unwrap();
        assert_eq!(read_bounded(&path, 4).unwrap(), "abcd");
        assert!(matches!(read_bounded(&path, 3), Err(ReadLimitError::TooLarge { limit: 3 })));
        assert!(matches!(read_bounded(dir.path(), 10), Err(ReadLimitError::NotAFile)));
        assert!(matches!(read_bounded(Path::new("/dev/zero"), 10), Err(ReadLimitError::NotAFile)));
        assert_eq!(human_size(1024 * 1024), "1 MiB");
    }

    #[test]
    fn only_a_file_of_the_users_or_roots_that_others_cannot_write_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "").unwrap();
        for (mode, private) in [(0o600, true), (0o644, true), (0o664, false), (0o646, false), (0o666, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let metadata = File::open(&path).unwrap().metadata().unwrap();
            assert_eq!(check_private(&metadata, &path).is_ok(), private, "mode {mode:o}");
        }
        let error = check_private(&File::open(&path).unwrap().metadata().unwrap(), &path).unwrap_err();
        assert_eq!(error, NotPrivate::WritableByOthers { path: path.clone(), mode: 0o666 });
        assert_eq!(error.fix(), format!("run: chmod go-w {}", path.display()));
    }

    #[test]
    fn a_hint_quotes_a_path_the_shell_would_split() {
        assert_eq!(shell_word(Path::new("/h/.config/fanout/config.toml")), "/h/.config/fanout/config.toml");
        assert_eq!(shell_word(Path::new("/h/my dir/x")), "'/h/my dir/x'");
    }
}
