//! The account and role inventory, cached per login so a repeated run spends no
//! `ListAccounts` or `ListAccountRoles` calls: at a portal limit of about 20 requests a
//! second, every call saved is wall time saved.
//!
//! The file holds names and roles, never a token or a key. It is still private to the
//! user (0600, in a 0700 directory) and written atomically (a temporary file renamed
//! over the old one), so a concurrent fanout never reads half a file.

use std::io::Write as _;
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
    /// `None` when this run did not list the account's roles.
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The portal the inventory describes; a cache file for another is ignored.
    pub start_url: String,
    /// Unix seconds.
    pub written_at: u64,
    pub accounts: Vec<InventoryAccount>,
}

/// Where `login`'s inventory is cached under `cache_dir` (`$XDG_CACHE_HOME/fanout` or
/// `~/.cache/fanout`).
pub fn cache_path(cache_dir: &Path, login: &SsoLogin) -> PathBuf {
    let digest = Sha1::digest(format!("{}\n{}", login.cache_key(), login.start_url).as_bytes());
    cache_dir.join(format!("inventory-{digest:x}.json"))
}

/// The cached inventory and its age, if there is one for this login younger than `ttl`.
pub fn load(path: &Path, login: &SsoLogin, now_secs: u64, ttl: Duration) -> Option<(Inventory, Duration)> {
    let text = std::fs::read_to_string(path).ok()?;
    let inventory: Inventory = match serde_json::from_str(&text) {
        Ok(inventory) => inventory,
        Err(error) => {
            tracing::warn!("ignoring the unreadable inventory cache {}: {error}", path.display());
            return None;
        }
    };
    let age = Duration::from_secs(now_secs.saturating_sub(inventory.written_at));
    (inventory.start_url == login.start_url && age < ttl).then_some((inventory, age))
}

/// Writes `inventory` to `path` atomically, readable by the user alone.
pub fn store(path: &Path, inventory: &Inventory) -> std::io::Result<()> {
    let dir = path.parent().expect("a cache file has a directory");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let temporary = dir.join(format!(".{}.{}.tmp", path.file_name().unwrap_or_default().display(), std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        file.write_all(&serde_json::to_vec(inventory).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
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

    fn inventory(written_at: u64) -> Inventory {
        let account = Account { id: "1".to_owned(), name: "a".to_owned(), email: "a@x".to_owned() };
        Inventory {
            start_url: login().start_url,
            written_at,
            accounts: vec![InventoryAccount { account, roles: Some(vec!["ReadOnly".to_owned()]) }],
        }
    }

    #[test]
    fn a_stored_inventory_loads_until_its_ttl_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(&dir.path().join("fanout"), &login());
        store(&path, &inventory(1000)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let ttl = Duration::from_mins(1);
        let (loaded, age) = load(&path, &login(), 1030, ttl).unwrap();
        assert_eq!((loaded, age), (inventory(1000), Duration::from_secs(30)));
        assert!(load(&path, &login(), 1060, ttl).is_none(), "expired at the TTL");
    }

    #[test]
    fn another_portals_or_a_corrupt_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), &login());
        store(&path, &Inventory { start_url: "https://other".to_owned(), ..inventory(1000) }).unwrap();
        assert!(load(&path, &login(), 1000, Duration::from_mins(1)).is_none());
        std::fs::write(&path, "{not json").unwrap();
        assert!(load(&path, &login(), 1000, Duration::from_mins(1)).is_none());
    }

    #[test]
    fn storing_again_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), &login());
        store(&path, &inventory(1)).unwrap();
        store(&path, &inventory(2)).unwrap();
        assert_eq!(load(&path, &login(), 2, Duration::from_mins(1)).unwrap().0.written_at, 2);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
    }
}
