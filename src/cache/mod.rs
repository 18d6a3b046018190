//! What fanout keeps between runs, one login at a time: the account and role inventory
//! (`inventory.rs`), the portal rate it sustained (`portal_rate.rs`) and the organization
//! read through `--org-role` (`org_listing.rs`), all under the cache directory, opened
//! once per login here.

pub mod inventory;
pub mod org_listing;
pub mod portal_rate;

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::login::SsoLogin;
use crate::org::OrgRole;
use crate::org::tree::Listed;
use crate::portal::Portal;
use crate::rate::Sustained;
use crate::text;
use inventory::{CachedInventory, InventoryWriter, RolesCache};

/// The inventory cache for this login: where it lives, and what it holds if fresh; and
/// beside it the portal rate remembered for the login.
pub struct InventoryCache {
    /// `None` when `--cache-ttl 0` turns the cache off.
    path: Option<PathBuf>,
    fresh: Option<CachedInventory>,
    /// Where the portal rate is remembered; `None` when the cache is off (`--cache-ttl
    /// 0` writes nothing under the cache directory) or its directory is not the user's
    /// alone. `--refresh` does not turn it off: it is about the inventory.
    rate_path: Option<PathBuf>,
    /// Where the organization's listing is kept; `None` when the cache is off, as for
    /// the inventory.
    org_path: Option<PathBuf>,
}

impl InventoryCache {
    /// The cache is off with `--cache-ttl 0`, and when its directory is not the user's
    /// alone (then with a warning).
    pub fn open(config: &Config, login: &SsoLogin) -> Self {
        let trusted = crate::files::check_private_dir(&config.cache_dir)
            .inspect_err(|problem| {
                tracing::warn!("not using the inventory cache in {}: {problem}", config.cache_dir.display());
            })
            .is_ok();
        let path =
            (trusted && !config.inventory_ttl.is_zero()).then(|| inventory::cache_path(&config.cache_dir, login));
        let fresh = path
            .as_deref()
            .filter(|_| !config.refresh)
            .and_then(|p| CachedInventory::open(p, login, inventory::now_secs(), config.inventory_ttl));
        let rate_path = path.is_some().then(|| portal_rate::path(&config.cache_dir, login));
        let org_path = path.is_some().then(|| org_listing::path(&config.cache_dir, login));
        InventoryCache { path, fresh, rate_path, org_path }
    }

    /// The organization as `role` listed it within `--cache-ttl`, unless `--refresh`
    /// asks for it again or the cache is off.
    pub fn org_listing(&self, config: &Config, login: &SsoLogin, role: &OrgRole) -> Option<Listed> {
        let path = self.org_path.as_deref().filter(|_| !config.refresh)?;
        let key = org_listing::Key { start_url: &login.start_url, role };
        org_listing::recall(path, &key, inventory::now_secs(), config.inventory_ttl)
    }

    /// Keeps the organization as `role` listed it, for the next runs within the TTL.
    pub fn remember_org_listing(&self, login: &SsoLogin, role: &OrgRole, listed: &Listed) {
        let Some(path) = self.org_path.as_deref() else { return };
        let key = org_listing::Key { start_url: &login.start_url, role };
        if let Err(error) = org_listing::remember(path, &key, listed, inventory::now_secs()) {
            tracing::warn!("cannot write the organization's cache {}: {error}", path.display());
        }
    }

    /// The portal rate to start at: `--portal-rps`, else the one remembered for the login
    /// (capped, divided among the shards), else the cold default.
    pub fn start_rate(&self, config: &Config, login: &SsoLogin) -> Sustained {
        let cold = Sustained { rate: config.portal_rate, throttled: false };
        if config.portal_rate_given {
            return cold;
        }
        let remembered =
            self.rate_path.as_deref().and_then(|p| portal_rate::recall(p, &login.start_url, inventory::now_secs()));
        let start = portal_rate::start(config.portal_rate, remembered, shard_count(config));
        if start != cold {
            tracing::info!(
                rate = start.rate,
                after_a_throttle = start.throttled,
                "portal rate: starting where the last run left off (--portal-rps overrides)"
            );
        }
        start
    }

    /// Remembers what the portal sustained, if it served or throttled anything (a run
    /// that never got an answer learned nothing of its rate).
    pub fn remember_rate(&self, portal: &Portal, shards: u32, login: &SsoLogin) {
        let Some(path) = self.rate_path.as_deref() else { return };
        let Some(sustained) = portal.sustained_rate() else { return };
        tracing::debug!(rate = sustained.rate, throttled = sustained.throttled, "portal rate: remembered");
        if let Err(error) = portal_rate::remember(path, &login.start_url, sustained, shards, inventory::now_secs()) {
            tracing::debug!("cannot write the remembered portal rate {}: {error}", path.display());
        }
    }

    /// One line for stderr: where `login`'s accounts and their roles come from (named
    /// when the run has several logins).
    pub fn describe(&self, login: &SsoLogin, logins: usize) -> String {
        let of = if logins > 1 { format!(" of {}", text::show(login.name())) } else { String::new() };
        match &self.fresh {
            Some(inventory) => format!(
                "fanout: accounts{of} listed from the portal, roles known from the inventory cache (written {}, {}); --refresh lists them again\n",
                text::ago(inventory.age),
                inventory.path().display()
            ),
            None => format!("fanout: inventory{of} listed from the portal\n"),
        }
    }

    /// The roles the fresh cache knows (listed within the TTL); none without one.
    pub fn roles(&self, ttl: Duration) -> RolesCache {
        self.fresh.as_ref().map(|inventory| inventory.roles(inventory::now_secs(), ttl)).unwrap_or_default()
    }

    /// A writer for a new inventory, unless the cache is off or cannot be written.
    pub fn writer(&self, login: &SsoLogin) -> Option<InventoryWriter> {
        let path = self.path.as_deref()?;
        InventoryWriter::create(path, &login.start_url, inventory::now_secs())
            .inspect_err(|error| tracing::warn!("cannot write the inventory cache {}: {error}", path.display()))
            .ok()
    }
}

/// A cache file's bytes, if it is there: opened without following a link, and only if it
/// is a regular file of the user's of at most `max` bytes. `Err` says why it cannot be
/// used (a planted, foreign or oversized file).
fn read_own_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() || !crate::files::is_mine(&metadata) {
        return Err("not a regular file of yours".to_owned());
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(Some(bytes))
}

/// N of `--shard I/N`, 1 without it.
pub fn shard_count(config: &Config) -> u32 {
    config.selection.shard.map_or(1, |shard| shard.count)
}
