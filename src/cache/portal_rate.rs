//! The portal rate remembered per login, so a run starts near what the portal last
//! sustained instead of at the cold default and a slow start that costs a large part of
//! a short run.
//!
//! The file sits beside the inventory cache (the same directory, trusted the same way),
//! named by the same login key: a small JSON object with the rate, whether a 429 set it,
//! the portal's start URL and when it was written. It holds no secret; it is still
//! private (0600) and replaced atomically, so a concurrent run never reads half of it.
//!
//! The rate is for the whole login: a run with `--shard I/N` writes its rate times N and
//! starts at the remembered rate divided by N, as it divides the cold default. A stale or
//! planted value cannot flood the portal: a run starts at most at [`MAX_START_RATE`], a
//! value older than [`MAX_AGE`] is not used, and the limiter still backs off at the
//! first 429. A remembered rate below the cold default starts cold (slow start probes
//! past it within a second anyway). `--portal-rps` overrides it.
//!
//! A file that is corrupt, another portal's, too large, not a regular file of the
//! user's, or from the future is ignored (with a debug log) and rewritten at the end of
//! the run.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::inventory;
use crate::files;
use crate::login::SsoLogin;
use crate::rate::Sustained;

/// The file format; a file of another version is ignored and rewritten.
const FORMAT_VERSION: u32 = 1;
/// The largest file read; a valid one is about 150 bytes.
const MAX_FILE: u64 = 4096;
/// The highest rate a run starts at, requests a second, whatever is remembered. The real
/// portal throttles at a few tens a second, so a remembered rate is far below this; a
/// fake or private portal that sustained more still starts at 400 and slow start doubles
/// from there in 50 ms steps.
pub const MAX_START_RATE: f64 = 400.0;
/// A remembered rate older than this is not used: quotas and other clients change.
pub const MAX_AGE: Duration = Duration::from_hours(7 * 24);

/// What the file holds.
#[derive(Debug, Serialize, Deserialize)]
struct RateFile {
    version: u32,
    /// The portal the rate was sustained by; another's is ignored.
    start_url: String,
    /// Requests a second, for the whole login (every shard together).
    rate: f64,
    /// A 429 set it: the next run probes up additively rather than by doubling.
    throttled: bool,
    /// Unix seconds.
    written_at: u64,
}

/// Where `login`'s remembered rate lives under `cache_dir`, beside its inventory.
pub fn path(cache_dir: &Path, login: &SsoLogin) -> PathBuf {
    cache_dir.join(format!("portal-rate-{}.json", inventory::login_key(login)))
}

/// The rate a run starts at: the remembered one for the whole login, capped and divided
/// among `shards`, unless there is none or it is below `cold` (the default, already
/// divided); then `cold`, in slow start.
pub fn start(cold: f64, remembered: Option<Sustained>, shards: u32) -> Sustained {
    let cold_start = Sustained { rate: cold, throttled: false };
    let Some(remembered) = remembered else { return cold_start };
    let rate = remembered.rate.min(MAX_START_RATE) / f64::from(shards.max(1));
    if rate < cold { cold_start } else { Sustained { rate, throttled: remembered.throttled } }
}

/// The rate remembered for the portal at `start_url`, if a usable one is there.
pub fn recall(path: &Path, start_url: &str, now_secs: u64) -> Option<Sustained> {
    match read(path, start_url, now_secs) {
        Ok(remembered) => remembered,
        Err(problem) => {
            tracing::debug!("ignoring the remembered portal rate {}: {problem}", path.display());
            None
        }
    }
}

/// `Ok(None)`: no file. `Err`: a file that cannot be used.
fn read(path: &Path, start_url: &str, now_secs: u64) -> Result<Option<Sustained>, String> {
    let Some(text) = super::read_own_file(path, MAX_FILE)? else { return Ok(None) };
    let file: RateFile = serde_json::from_slice(&text).map_err(|_| "not valid".to_owned())?;
    if file.version != FORMAT_VERSION {
        return Err(format!("it is format {}, not {FORMAT_VERSION}", file.version));
    }
    if file.start_url != start_url {
        return Err("it is another portal's".to_owned());
    }
    if !file.rate.is_finite() || file.rate <= 0.0 {
        return Err("its rate is not a positive number".to_owned());
    }
    if file.written_at > now_secs {
        return Err("it was written in the future".to_owned());
    }
    if Duration::from_secs(now_secs - file.written_at) >= MAX_AGE {
        return Err("it is older than a week".to_owned());
    }
    Ok(Some(Sustained { rate: file.rate, throttled: file.throttled }))
}

/// Remembers what a run with `shards` shards sustained, for the whole login: private
/// from creation (a temporary file, 0600, in the same directory) and renamed into place.
pub fn remember(path: &Path, start_url: &str, sustained: Sustained, shards: u32, now_secs: u64) -> std::io::Result<()> {
    let dir = path.parent().expect("a rate file has a directory");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let file = RateFile {
        version: FORMAT_VERSION,
        start_url: start_url.to_owned(),
        rate: sustained.rate * f64::from(shards.max(1)),
        throttled: sustained.throttled,
        written_at: now_secs,
    };
    let mut text = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    text.push(b'\n');
    files::write_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const URL: &str = "https://corp.awsapps.com/start";

    fn at(rate: f64, throttled: bool) -> Sustained {
        Sustained { rate, throttled }
    }

    #[test]
    fn a_remembered_rate_is_written_privately_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fanout/portal-rate-x.json");
        remember(&path, URL, at(37.5, true), 1, 1000).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(recall(&path, URL, 1060), Some(at(37.5, true)));
        remember(&path, URL, at(90.0, false), 1, 1100).unwrap();
        assert_eq!(recall(&path, URL, 1160), Some(at(90.0, false)), "rewritten");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn the_start_is_capped_divided_by_the_shards_and_never_below_cold() {
        assert_eq!(start(20.0, None, 1), at(20.0, false));
        assert_eq!(start(20.0, Some(at(37.5, true)), 1), at(37.5, true));
        assert_eq!(start(20.0, Some(at(1e9, false)), 1), at(MAX_START_RATE, false), "capped");
        assert_eq!(start(5.0, Some(at(100.0, true)), 4), at(25.0, true), "divided among 4 shards");
        assert_eq!(start(5.0, Some(at(1e9, false)), 4), at(MAX_START_RATE / 4.0, false), "capped, then divided");
        assert_eq!(start(20.0, Some(at(3.0, true)), 1), at(20.0, false), "below the cold default: cold");
    }

    #[test]
    fn a_shards_rate_is_remembered_for_the_whole_login() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal-rate-x.json");
        remember(&path, URL, at(25.0, true), 4, 1000).unwrap();
        assert_eq!(recall(&path, URL, 1000), Some(at(100.0, true)));
        assert_eq!(start(5.0, recall(&path, URL, 1000), 4), at(25.0, true));
    }

    #[test]
    fn a_corrupt_foreign_old_future_or_oversized_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal-rate-x.json");
        assert_eq!(recall(&path, URL, 1000), None, "no file");
        remember(&path, URL, at(50.0, false), 1, 1000).unwrap();
        assert_eq!(recall(&path, "https://other.awsapps.com/start", 1000), None, "another portal's");
        assert_eq!(recall(&path, URL, 999), None, "written in the future");
        assert_eq!(recall(&path, URL, 1000 + MAX_AGE.as_secs()), None, "too old");
        let good = std::fs::read_to_string(&path).unwrap();
        for bad in [
            "{not json".to_owned(),
            good.replace("50.0", "-1.0"),
            good.replace("\"version\":1", "\"version\":2"),
            format!("{}{}", good.trim_end(), " ".repeat(5000)),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert_eq!(recall(&path, URL, 1000), None, "accepted: {bad:.80}");
        }
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert_eq!(recall(&path, URL, 1000), None, "a symlink");
    }
}
