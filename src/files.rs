//! Reading files fanout does not control the content of (the token cache, the AWS
//! config, the inventory cache) without trusting their size or kind: a symlink to
//! `/dev/zero` or a multi-gigabyte file is refused with a clear error, not read into
//! memory. And writing the files others read whole (a plan, the token cache, the
//! remembered portal rate) so that no reader ever sees half of one. And deciding, as ssh
//! does, whether a file others could have written may be trusted at all.

use std::fs::{File, Metadata};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// A file the run was asked to write (the joblog, a report, the export file) that could
/// not be written whole: the run fails (exit 1) with one line naming it, once it has
/// ended, and its accounts and other outputs are unaffected.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the {what} {}: {error}", path.display())]
pub struct Unwritten {
    /// `joblog`, `JUnit report`: what the file is, for the message.
    pub what: &'static str,
    pub path: PathBuf,
    pub error: io::Error,
}

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
    text(read_limited(open_regular(path)?, limit)?)
}

/// The whole of `path`, if it is a regular file of at most `limit` bytes.
pub fn read_bounded_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, ReadLimitError> {
    read_limited(open_regular(path)?, limit)
}

/// As [`read_bounded`], and a pipe too, read to the same limit: a list made on the fly
/// (`--accounts-file <(grep prod ids.txt)`) is one. A device (`/dev/zero`), a directory
/// or a socket is still refused.
pub fn read_bounded_or_pipe(path: &Path, limit: u64) -> Result<String, ReadLimitError> {
    use std::os::unix::fs::FileTypeExt as _;
    let file = File::open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() && !kind.is_fifo() {
        return Err(ReadLimitError::NotAFile);
    }
    text(read_limited(file, limit)?)
}

/// The rest of an open `file` as text, if it holds at most `limit` bytes: for a caller
/// that checked the handle (its owner, its mode) before reading it.
pub fn read_to_limit(file: File, limit: u64) -> Result<String, ReadLimitError> {
    text(read_limited(file, limit)?)
}

fn text(bytes: Vec<u8>) -> Result<String, ReadLimitError> {
    String::from_utf8(bytes).map_err(|_| ReadLimitError::NotText)
}

fn read_limited(file: File, limit: u64) -> Result<Vec<u8>, ReadLimitError> {
    let mut bytes = Vec::new();
    // One byte past the limit tells a file of exactly `limit` bytes from a larger one,
    // even when the file grows while it is read.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadLimitError::TooLarge { limit });
    }
    Ok(bytes)
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

/// Writes `path` whole with `write`, for a file that readers take whole (a report): a
/// temporary file in the same directory (0600, tempfile's default), synced, then renamed
/// over `path`, so a reader never sees half of one. A `path` that is there and is no
/// regular file (`/dev/stdout`, a FIFO, `/dev/full`) is written in place: renaming over
/// a device or a pipe would replace it, not write to it.
pub fn write_whole(path: &Path, write: impl FnOnce(&mut dyn io::Write) -> io::Result<()>) -> io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|meta| !meta.is_file()) {
        let mut writer = io::BufWriter::new(std::fs::OpenOptions::new().write(true).open(path)?);
        write(&mut writer)?;
        return writer.flush();
    }
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut out = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut writer = io::BufWriter::new(out.as_file_mut());
        write(&mut writer)?;
        writer.flush()?;
    }
    out.as_file().sync_all()?;
    out.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// Appends `bytes` to `path` (created `mode` if missing, before the umask) in one
/// `O_APPEND` write: what others wrote before or write after stays, a symlink stays a
/// symlink, and two appenders each land whole (Linux holds the file's lock for the
/// whole write on a local file system), as `@actions/core` appends to
/// `$GITHUB_STEP_SUMMARY`.
pub fn append(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new().append(true).create(true).mode(mode).open(path)?;
    file.write_all(bytes)
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

/// Whether `dir` may hold a cache or a lock: a directory of the user's that no one else
/// can write to, or, when it is yet to be created (0700), such a parent.
pub fn check_private_dir(dir: &Path) -> Result<(), String> {
    let metadata = match std::fs::symlink_metadata(dir) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match dir.parent().filter(|parent| parent.exists()) {
                Some(parent) => check_private_dir(parent).map_err(|problem| format!("{}: {problem}", parent.display())),
                None => Ok(()),
            };
        }
        Err(e) => return Err(e.to_string()),
    };
    if !metadata.is_dir() {
        return Err("not a directory".to_owned());
    }
    // Stricter than `check_private`: a cache directory of root's is not one this
    // user's runs could write to.
    if !is_mine(&metadata) {
        return Err(format!("owned by uid {}, not by you", metadata.uid()));
    }
    check_private(&metadata, dir).map_err(|problem| match problem {
        NotPrivate::WritableByOthers { mode, .. } => format!("writable by others (mode {mode:o}); chmod 700 it"),
        NotPrivate::ForeignOwner { uid, .. } => format!("owned by uid {uid}, not by you"),
    })
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
    fn a_directory_others_can_write_holds_no_cache() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_private_dir(&shared).unwrap_err().contains("writable by others"));
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_private_dir(&shared).is_ok() && check_private_dir(&dir.path().join("absent")).is_ok());
    }

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
    fn a_pipe_is_read_to_the_limit_and_a_device_is_refused() {
        assert!(matches!(read_bounded_or_pipe(Path::new("/dev/zero"), 10), Err(ReadLimitError::NotAFile)));
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut file = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
                // Writes until the reader goes away (a broken pipe ends it).
                while file.write_all(&[b'1'; 4096]).is_ok() {}
            })
        };
        assert!(matches!(read_bounded_or_pipe(&fifo, 100_000), Err(ReadLimitError::TooLarge { limit: 100_000 })));
        writer.join().unwrap();
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
