//! The organization as `--org-role` listed it, kept beside the inventory cache so a run
//! within `--cache-ttl` makes no Organizations call (nor the role's `GetRoleCredentials`).
//!
//! One JSON file per login (`org-<login key>.json`), trusted as the inventory is: in the
//! cache directory only when that directory is the user's alone, read only when it is a
//! regular file of the user's within a bound, written private (0600) and atomically (a
//! temporary file renamed into place). It holds the raw listing (`org::tree::Listed`),
//! which is checked again, value by value, whenever it is read, exactly as a fresh
//! answer is: a file someone edited is no more trusted than the network. A file of
//! another portal or role, of another format, older than the TTL or from the future is
//! ignored (debug log) and rewritten after the next listing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::inventory;
use crate::files;
use crate::login::SsoLogin;
use crate::org::OrgRole;
use crate::org::tree::Listed;

/// The file format; a file of another version is ignored and rewritten.
const FORMAT_VERSION: u32 = 1;
/// The largest file read: a few hundred bytes an account for the most accounts a listing
/// may hold.
const MAX_FILE: u64 = 64 << 20;

/// What a listing is for: the portal the role was reached through, and the role.
pub struct Key<'a> {
    pub start_url: &'a str,
    pub role: &'a OrgRole,
}

#[derive(Debug, Serialize, Deserialize)]
struct ListingFile {
    version: u32,
    start_url: String,
    /// `ACCOUNT:ROLE`: another role may see another organization, or less of it.
    org_role: String,
    /// Unix seconds.
    written_at: u64,
    listed: Listed,
}

/// Where `login`'s organization listing lives under `cache_dir`, beside its inventory.
pub fn path(cache_dir: &Path, login: &SsoLogin) -> PathBuf {
    cache_dir.join(format!("org-{}.json", inventory::login_key(login)))
}

/// The listing kept for `key`, if one is there and younger than `ttl`.
pub fn recall(path: &Path, key: &Key<'_>, now_secs: u64, ttl: Duration) -> Option<Listed> {
    match read(path, key, now_secs, ttl) {
        Ok(listed) => listed,
        Err(problem) => {
            tracing::debug!("ignoring the organization's cache {}: {problem}", path.display());
            None
        }
    }
}

/// `Ok(None)`: no file. `Err`: a file that cannot be used.
fn read(path: &Path, key: &Key<'_>, now_secs: u64, ttl: Duration) -> Result<Option<Listed>, String> {
    let Some(bytes) = super::read_own_file(path, MAX_FILE)? else { return Ok(None) };
    let file: ListingFile = serde_json::from_slice(&bytes).map_err(|_| "not valid".to_owned())?;
    if file.version != FORMAT_VERSION {
        return Err(format!("it is format {}, not {FORMAT_VERSION}", file.version));
    }
    if file.start_url != key.start_url || file.org_role != key.role.to_string() {
        return Err("it is another portal's or another role's".to_owned());
    }
    if file.written_at > now_secs {
        return Err("it was written in the future".to_owned());
    }
    if Duration::from_secs(now_secs - file.written_at) >= ttl {
        return Err("it is older than --cache-ttl".to_owned());
    }
    Ok(Some(file.listed))
}

/// Keeps `listed` for `key`: private from creation and renamed into place.
pub fn remember(path: &Path, key: &Key<'_>, listed: &Listed, now_secs: u64) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = path.parent().expect("a cache file has a directory");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let file = ListingFile {
        version: FORMAT_VERSION,
        start_url: key.start_url.to_owned(),
        org_role: key.role.to_string(),
        written_at: now_secs,
        listed: listed.clone(),
    };
    let mut text = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    text.push(b'\n');
    files::write_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::org::tree::ListedOu;

    const HOUR: Duration = Duration::from_hours(1);

    fn listed() -> Listed {
        let root = ListedOu { id: "r-ab12".into(), name: "Root".into(), parent: None };
        Listed { ous: vec![root], accounts: Vec::new() }
    }

    #[test]
    fn a_listing_is_kept_privately_for_its_portal_and_role_within_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fanout/org-x.json");
        let role = OrgRole::parse("111122223333:OrgReader").unwrap();
        let key = Key { start_url: "https://a/start", role: &role };
        remember(&path, &key, &listed(), 1000).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(recall(&path, &key, 1100, HOUR), Some(listed()));
        assert_eq!(recall(&path, &key, 1000 + 3600, HOUR), None, "as old as the TTL");
        assert_eq!(recall(&path, &key, 999, HOUR), None, "from the future");
        let other = OrgRole::parse("111122223333:Other").unwrap();
        assert_eq!(recall(&path, &Key { role: &other, ..key }, 1100, HOUR), None, "another role's");
        assert_eq!(recall(&path, &Key { start_url: "https://b/start", ..key }, 1100, HOUR), None);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(recall(&path, &key, 1100, HOUR), None, "corrupt");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert_eq!(recall(&path, &key, 1100, HOUR), None, "a symlink");
    }
}
