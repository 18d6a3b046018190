//! The account and role inventory, cached per login so a repeated run spends no
//! `ListAccounts` or `ListAccountRoles` calls: at a portal limit of about 20 requests a
//! second, every call saved is wall time saved.
//!
//! The file is JSON lines: a header (`start_url`, `written_at`), then one account a line.
//! It is written as accounts arrive and read as they are needed, so neither side holds
//! the whole inventory: memory stays flat however many accounts a login reaches.
//!
//! It holds names and roles, never a token or a key. It is still private to the user
//! (0600, in a 0700 directory) and written atomically (a temporary file renamed over the
//! old one once complete), so a concurrent fanout never reads half a file.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::login::SsoLogin;
use crate::portal::Account;

/// One account and, when they were listed, its roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryAccount {
    #[serde(flatten)]
    pub account: Account,
    /// `None` when the run that wrote it did not list the account's roles.
    pub roles: Option<Vec<String>>,
}

/// The first line of the file.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    /// The portal the inventory describes; a cache file for another is ignored.
    start_url: String,
    /// Unix seconds.
    written_at: u64,
}

/// Where `login`'s inventory is cached under `cache_dir` (`$XDG_CACHE_HOME/fanout` or
/// `~/.cache/fanout`).
pub fn cache_path(cache_dir: &Path, login: &SsoLogin) -> PathBuf {
    let digest = Sha1::digest(format!("{}\n{}", login.cache_key(), login.start_url).as_bytes());
    cache_dir.join(format!("inventory-{digest:x}.jsonl"))
}

/// A cached inventory young enough to use.
#[derive(Debug)]
pub struct CachedInventory {
    path: PathBuf,
    pub age: Duration,
}

impl CachedInventory {
    /// The cache for `login` at `path`, if there is one younger than `ttl`. Only the
    /// header is read here.
    pub fn open(path: &Path, login: &SsoLogin, now_secs: u64, ttl: Duration) -> Option<Self> {
        let mut first = String::new();
        BufReader::new(File::open(path).ok()?).read_line(&mut first).ok()?;
        let header: Header = serde_json::from_str(&first).ok()?;
        let age = Duration::from_secs(now_secs.saturating_sub(header.written_at));
        (header.start_url == login.start_url && age < ttl).then(|| CachedInventory { path: path.to_owned(), age })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The accounts, read one line at a time.
    pub fn accounts(&self) -> std::io::Result<impl Iterator<Item = std::io::Result<InventoryAccount>>> {
        let lines = BufReader::new(File::open(&self.path)?).lines().skip(1);
        Ok(lines.map(|line| serde_json::from_str(&line?).map_err(std::io::Error::other)))
    }
}

/// Writes a new inventory as accounts arrive; [`InventoryWriter::commit`] puts it in
/// place, and dropping it uncommitted (an incomplete listing) leaves the old one.
#[derive(Debug)]
pub struct InventoryWriter {
    temporary: PathBuf,
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl InventoryWriter {
    pub fn create(path: &Path, start_url: &str, now_secs: u64) -> std::io::Result<Self> {
        let dir = path.parent().expect("a cache file has a directory");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let name = path.file_name().unwrap_or_default().display();
        let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        let mut writer = InventoryWriter { temporary, path: path.to_owned(), file: Some(BufWriter::new(file)) };
        writer.line(&Header { start_url: start_url.to_owned(), written_at: now_secs })?;
        Ok(writer)
    }

    pub fn add(&mut self, account: &InventoryAccount) -> std::io::Result<()> {
        self.line(account)
    }

    fn line(&mut self, value: &impl Serialize) -> std::io::Result<()> {
        let file = self.file.as_mut().expect("an uncommitted writer has its file");
        serde_json::to_writer(&mut *file, value).map_err(std::io::Error::other)?;
        file.write_all(b"\n")
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> std::io::Result<()> {
        let file = self.file.take().expect("an uncommitted writer has its file");
        file.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()?;
        std::fs::rename(&self.temporary, &self.path)
    }
}

/// Adds `entry` through `writer`, if there is one; a write error is reported once and
/// drops the writer, so the old cache stays and the run goes on.
pub fn record(writer: &mut Option<InventoryWriter>, entry: &InventoryAccount) {
    if let Some(w) = writer
        && let Err(error) = w.add(entry)
    {
        tracing::warn!("cannot write the inventory cache: {error}");
        *writer = None;
    }
}

/// Commits `writer`, if there is one, reporting a failure.
pub fn commit(writer: Option<InventoryWriter>) {
    if let Some(writer) = writer
        && let Err(error) = writer.commit()
    {
        tracing::warn!("cannot write the inventory cache: {error}");
    }
}

impl Drop for InventoryWriter {
    /// An uncommitted file goes; after a commit there is nothing left to remove.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.temporary);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn login() -> SsoLogin {
        SsoLogin {
            session: Some("corp".to_owned()),
            start_url: "https://corp.awsapps.com/start".to_owned(),
            sso_region: "us-east-1".to_owned(),
            profile: None,
            profile_region: None,
        }
    }

    fn account(id: &str, roles: Option<&[&str]>) -> InventoryAccount {
        let account = Account { id: id.to_owned(), name: format!("n{id}"), email: format!("{id}@x") };
        InventoryAccount { account, roles: roles.map(|r| r.iter().map(|s| (*s).to_owned()).collect()) }
    }

    fn write(path: &Path, start_url: &str, written_at: u64, accounts: &[InventoryAccount]) {
        let mut writer = InventoryWriter::create(path, start_url, written_at).unwrap();
        for entry in accounts {
            writer.add(entry).unwrap();
        }
        writer.commit().unwrap();
    }

    #[test]
    fn a_written_inventory_reads_back_until_its_ttl_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(&dir.path().join("fanout"), &login());
        let accounts = [account("1", Some(&["ReadOnly"])), account("2", None)];
        write(&path, &login().start_url, 1000, &accounts);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let ttl = Duration::from_mins(1);
        let cached = CachedInventory::open(&path, &login(), 1030, ttl).unwrap();
        assert_eq!(cached.age, Duration::from_secs(30));
        let read: Vec<InventoryAccount> = cached.accounts().unwrap().map(Result::unwrap).collect();
        assert_eq!(read, accounts);
        assert!(CachedInventory::open(&path, &login(), 1060, ttl).is_none(), "expired at the TTL");
    }

    #[test]
    fn another_portals_or_a_corrupt_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), &login());
        write(&path, "https://other", 1000, &[]);
        assert!(CachedInventory::open(&path, &login(), 1000, Duration::from_mins(1)).is_none());
        std::fs::write(&path, "{not json").unwrap();
        assert!(CachedInventory::open(&path, &login(), 1000, Duration::from_mins(1)).is_none());
    }

    #[test]
    fn an_uncommitted_write_leaves_the_old_file_and_no_debris() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), &login());
        write(&path, &login().start_url, 1, &[account("1", None)]);
        let mut partial = InventoryWriter::create(&path, &login().start_url, 2).unwrap();
        partial.add(&account("9", None)).unwrap();
        drop(partial);
        let cached = CachedInventory::open(&path, &login(), 2, Duration::from_mins(1)).unwrap();
        assert_eq!(cached.accounts().unwrap().count(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
