//! The account and role inventory, cached per login so a repeated run spends no
//! `ListAccountRoles` calls (nor a forbidden `GetRoleCredentials` for an account known
//! to lack the role): at a portal limit of about 20 requests a second, every call saved
//! is wall time saved.
//!
//! The file is JSON lines: a header (`start_url`, `written_at`), then one account a line.
//! It is written as accounts arrive; a run reads only the roles it holds into memory
//! (the accounts come from the portal), and drops each as its account is listed.
//!
//! It holds names and roles, never a token or a key. It is still private to the user
//! (0600, in a 0700 directory) and written atomically (a temporary file renamed over the
//! old one once complete), so a concurrent fanout never reads half a file.
//!
//! The cache never decides which accounts run: every run lists the accounts from the
//! portal (a call per hundred accounts, overlapping the work on the first ones), so an
//! account created or granted since is run and one removed is not. What the cache saves
//! is the roles: for an account the portal still lists, roles listed within the TTL are
//! used instead of asking again ([`RolesCache`]); each line keeps when its roles were
//! listed, so a roles list carried from run to run still expires.
//!
//! Whatever is in the file is not trusted: names in it become placeholders' values, so a
//! cache another user could write would let them inject names. The directory is used only
//! when it is the user's own and not writable by others (as ssh checks its files), and a
//! file is used only when it is a regular file of the user's, within [`MAX_FILE`], and
//! every line of it is valid (checked whole before any account runs). Anything else is
//! ignored with a warning, and the run lists from the portal and rewrites it: the run is
//! the same as without a cache.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::files::{human_size, is_mine};
use crate::limits::MAX_NAME_BYTES;
use crate::login::SsoLogin;
use crate::portal::validate::{self, MAX_ROLE_NAME};
use crate::portal::{Account, MAX_ROLES};

/// The file format; a file of another version is ignored and rewritten.
const FORMAT_VERSION: u32 = 1;
/// The largest cache file read: 20,000 accounts take about 3 MiB.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;
/// The longest line read: derived from the bounds the listing enforces, so that any
/// account the portal listing admits fits and the cache a run writes is one the next
/// run reads. The worst case: name and email escaped to six bytes each
/// (`\u001b`), [`MAX_ROLES`] roles of [`MAX_ROLE_NAME`] bytes with their quotes and
/// comma, and the keys and numbers around them.
pub const MAX_LINE: u64 = (512 + 2 * 6 * MAX_NAME_BYTES + MAX_ROLES * (MAX_ROLE_NAME + 3)) as u64;

/// One account and, when they were listed, its roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryAccount {
    #[serde(flatten)]
    pub account: Account,
    /// `None` when the run that wrote it did not list the account's roles.
    pub roles: Option<Vec<String>>,
    /// When `roles` were listed (Unix seconds); absent in older files, where it is the
    /// header's `written_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles_listed_at: Option<u64>,
}

impl InventoryAccount {
    /// The line for `account`, with its roles if they are known.
    pub fn new(account: Account, roles: Option<KnownRoles>) -> Self {
        let (roles, roles_listed_at) = roles.map_or((None, None), |known| (Some(known.roles), Some(known.listed_at)));
        InventoryAccount { account, roles, roles_listed_at }
    }
}

/// An account's roles as last listed, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownRoles {
    pub roles: Vec<String>,
    /// Unix seconds.
    pub listed_at: u64,
    /// Read from the cache, not listed by this run: a skip decided on them says so.
    pub from_cache: bool,
}

impl KnownRoles {
    /// Roles this run has just listed.
    pub fn listed_now(roles: Vec<String>) -> Self {
        KnownRoles { roles, listed_at: now_secs(), from_cache: false }
    }

    /// How long ago they were listed.
    pub fn age(&self, now_secs: u64) -> Duration {
        Duration::from_secs(now_secs.saturating_sub(self.listed_at))
    }
}

/// The roles a fresh cache knows, by account id: consulted only for the accounts the
/// portal lists now, each taken once (so memory shrinks as the listing goes).
#[derive(Debug, Default)]
pub struct RolesCache {
    by_id: HashMap<String, KnownRoles>,
}

impl RolesCache {
    /// The cached roles of `account_id`, if the cache knows them.
    pub fn take(&mut self, account_id: &str) -> Option<KnownRoles> {
        self.by_id.remove(account_id)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The first line of the file.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    version: u32,
    /// The portal the inventory describes; a cache file for another is ignored.
    start_url: String,
    /// Unix seconds.
    written_at: u64,
}

/// Where `login`'s inventory is cached under `cache_dir` (`$XDG_CACHE_HOME/fanout` or
/// `~/.cache/fanout`).
pub fn cache_path(cache_dir: &Path, login: &SsoLogin) -> PathBuf {
    cache_dir.join(format!("inventory-{}.jsonl", login_key(login)))
}

/// The part of a cache file's name that is `login`'s own: every file kept per login
/// (the inventory, the remembered portal rate) is named by it.
pub fn login_key(login: &SsoLogin) -> String {
    let digest = Sha1::digest(format!("{}\n{}", login.cache_key(), login.start_url).as_bytes());
    format!("{digest:x}")
}

/// Unix seconds now: the clock `written_at` and a cache's age are read on.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A cached inventory young enough to use, checked whole.
#[derive(Debug)]
pub struct CachedInventory {
    path: PathBuf,
    pub age: Duration,
    /// Unix seconds, from the header.
    written_at: u64,
    /// Every account of the file, read (and checked) once, when it was opened: the run
    /// needs their roles all at once, and a second read could find the file replaced.
    accounts: Vec<InventoryAccount>,
}

impl CachedInventory {
    /// The cache for `login` at `path`, if there is a valid one younger than `ttl`. A
    /// file that is there but cannot be used is reported with a warning.
    pub fn open(path: &Path, login: &SsoLogin, now_secs: u64, ttl: Duration) -> Option<Self> {
        match Self::check(path, login, now_secs) {
            Ok(Some(cached)) if cached.age < ttl => Some(cached),
            Ok(_) => None,
            Err(problem) => {
                tracing::warn!("ignoring the inventory cache {}: {problem}; listing from the portal", path.display());
                None
            }
        }
    }

    /// `Ok(None)`: no cache, or another portal's. `Err`: a file that cannot be trusted.
    fn check(path: &Path, login: &SsoLogin, now_secs: u64) -> Result<Option<Self>, String> {
        let mut lines = match open_lines(path) {
            Ok(lines) => lines,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let first = lines.next().ok_or("it is empty")?.map_err(|e| e.to_string())?;
        let header: Header = serde_json::from_slice(&first).map_err(|_| "its header is not valid".to_owned())?;
        if header.version != FORMAT_VERSION {
            return Err(format!("it is format {}, not {FORMAT_VERSION}", header.version));
        }
        if header.start_url != login.start_url {
            return Ok(None);
        }
        let (mut ids, mut accounts) = (HashSet::new(), Vec::new());
        for (number, line) in lines.enumerate() {
            let entry = line.and_then(|line| parse_entry(&line)).map_err(|e| format!("line {}: {e}", number + 2))?;
            if !ids.insert(entry.account.id.clone()) {
                return Err(format!("line {}: an account listed twice", number + 2));
            }
            accounts.push(entry);
        }
        let age = Duration::from_secs(now_secs.saturating_sub(header.written_at));
        Ok(Some(CachedInventory { path: path.to_owned(), age, written_at: header.written_at, accounts }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The roles it knows that were listed less than `ttl` before `now_secs`.
    pub fn roles(&self, now_secs: u64, ttl: Duration) -> RolesCache {
        let mut by_id = HashMap::new();
        for InventoryAccount { account, roles, roles_listed_at } in &self.accounts {
            let Some(roles) = roles else { continue };
            let listed_at = roles_listed_at.unwrap_or(self.written_at);
            let known = KnownRoles { roles: roles.clone(), listed_at, from_cache: true };
            // A time to come is not one this clock wrote: the roles are not known.
            if known.listed_at <= now_secs && known.age(now_secs) < ttl {
                by_id.insert(account.id.clone(), known);
            }
        }
        RolesCache { by_id }
    }

    /// The accounts, as the file lists them.
    #[cfg(test)]
    pub fn accounts(&self) -> &[InventoryAccount] {
        &self.accounts
    }
}

/// One account line, checked as if the portal had sent it.
fn parse_entry(line: &[u8]) -> std::io::Result<InventoryAccount> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let entry: InventoryAccount = serde_json::from_slice(line).map_err(|_| invalid("not a valid account"))?;
    if !validate::is_account_id(&entry.account.id)
        || !validate::is_account_name(&entry.account.name)
        || !validate::is_account_name(&entry.account.email)
    {
        return Err(invalid("an invalid account id or name"));
    }
    if entry.roles.iter().flatten().any(|role| !validate::is_role_name(role)) {
        return Err(invalid("an invalid role name"));
    }
    Ok(entry)
}

/// The lines of a cache file: a regular file of the user's (a symlink is not followed),
/// at most [`MAX_FILE`] long, lines at most [`MAX_LINE`].
fn open_lines(path: &Path) -> std::io::Result<impl Iterator<Item = std::io::Result<Vec<u8>>>> {
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    let metadata = file.metadata()?;
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    if !metadata.is_file() || !is_mine(&metadata) {
        return Err(refuse("not a regular file of yours".to_owned()));
    }
    if metadata.len() > MAX_FILE {
        return Err(refuse(format!("larger than {}", human_size(MAX_FILE))));
    }
    let mut reader = BufReader::new(file.take(MAX_FILE));
    Ok(std::iter::from_fn(move || {
        let mut line = Vec::new();
        match reader.by_ref().take(MAX_LINE + 1).read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) if line.last() != Some(&b'\n') && line.len() as u64 > MAX_LINE => {
                Some(Err(refuse(format!("a line longer than {}", human_size(MAX_LINE)))))
            }
            Ok(_) if line.last() != Some(&b'\n') => Some(Err(refuse("the file is truncated".to_owned()))),
            Ok(_) => {
                line.pop();
                Some(Ok(line))
            }
            Err(error) => Some(Err(error)),
        }
    }))
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
        writer.line(&Header { version: FORMAT_VERSION, start_url: start_url.to_owned(), written_at: now_secs })?;
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
        let id = format!("{id:0>12}");
        let account = Account { name: format!("n{id}"), email: format!("{id}@x"), id, login: 0, org: None };
        let roles = roles.map(|r| KnownRoles {
            roles: r.iter().map(|s| (*s).to_owned()).collect(),
            listed_at: 1000,
            from_cache: false,
        });
        InventoryAccount::new(account, roles)
    }

    fn write(path: &Path, start_url: &str, written_at: u64, accounts: &[InventoryAccount]) {
        let mut writer = InventoryWriter::create(path, start_url, written_at).unwrap();
        for entry in accounts {
            writer.add(entry).unwrap();
        }
        writer.commit().unwrap();
    }

    #[test]
    fn the_largest_account_the_listing_admits_fits_a_line_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(&dir.path().join("fanout"), &login());
        let worst = "\x1b".repeat(MAX_NAME_BYTES);
        let role = "r".repeat(MAX_ROLE_NAME);
        let roles: Vec<String> = (0..MAX_ROLES).map(|i| format!("{i:04}{}", &role[4..])).collect();
        let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
        let mut entry = account("1", Some(&roles));
        entry.account.name.clone_from(&worst);
        entry.account.email = worst;
        write(&path, &login().start_url, 1000, &[entry]);
        let line = std::fs::read_to_string(&path).unwrap().lines().nth(1).unwrap().len();
        assert!(line as u64 <= MAX_LINE, "{line} > {MAX_LINE}");
        assert_eq!(CachedInventory::open(&path, &login(), 1000, Duration::from_hours(1)).unwrap().accounts().len(), 1);
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
        assert_eq!(cached.accounts(), accounts);
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
    fn one_bad_line_or_a_duplicate_or_a_truncation_or_another_version_rejects_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), &login());
        let url = login().start_url;
        write(&path, &url, 1000, &[account("1", Some(&["ReadOnly"])), account("2", None)]);
        let good = std::fs::read_to_string(&path).unwrap();
        let open = || CachedInventory::open(&path, &login(), 1000, Duration::from_mins(1));
        assert!(open().is_some());
        let (header, body) = good.split_once('\n').unwrap();
        let variants = [
            format!("{header}\n{body}garbage\n"),
            format!("{good}{}\n", body.lines().next().unwrap()),
            good[..good.len() - 3].to_owned(),
            good.replace("\"version\":1", "\"version\":9"),
            good.replace("000000000001", "1234"),
            good.replace("ReadOnly", "Read Only"),
        ];
        for bad in variants {
            std::fs::write(&path, &bad).unwrap();
            assert!(open().is_none(), "accepted: {bad}");
        }
    }

    #[test]
    fn a_symlink_or_someone_elses_directory_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), &login());
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert!(CachedInventory::open(&path, &login(), 1000, Duration::from_mins(1)).is_none());
    }

    #[test]
    fn roles_are_known_until_their_own_listing_is_older_than_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), &login());
        let mut old = account("3", Some(&["Old"]));
        old.roles_listed_at = Some(900);
        let mut future = account("4", Some(&["Later"]));
        future.roles_listed_at = Some(5000);
        write(&path, &login().start_url, 1000, &[account("1", Some(&["ReadOnly"])), account("2", None), old, future]);
        let line = std::fs::read_to_string(&path).unwrap();
        assert!(line.contains(r#""roles_listed_at":1000"#) && !line.contains(r#""roles":null,"roles_listed_at""#));
        let cached = CachedInventory::open(&path, &login(), 1030, Duration::from_mins(5)).unwrap();
        let mut roles = cached.roles(1030, Duration::from_mins(2));
        assert_eq!(roles.len(), 1, "unknown, listed too long ago, or in the future: {roles:?}");
        let known = roles.take(&format!("{:0>12}", 1)).unwrap();
        assert_eq!(
            (known.roles.clone(), known.age(1030), known.from_cache),
            (vec!["ReadOnly".to_owned()], Duration::from_secs(30), true)
        );
        assert!(roles.is_empty(), "each is taken once");
        assert_eq!(
            (
                crate::text::ago(Duration::from_secs(45)),
                crate::text::ago(Duration::from_mins(12)),
                crate::text::ago(Duration::from_hours(3))
            ),
            ("45 s ago".to_owned(), "12 min ago".to_owned(), "3 h ago".to_owned())
        );
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
        assert_eq!(cached.accounts().len(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
