//! The machine's limits: open files. Each running command holds pipes, each portal call a
//! socket; a run that asks for more than the open-file limit allows would fail accounts
//! with "Too many open files". So, as Go's runtime does since 1.19, the soft limit is
//! raised to the hard limit at start, and what still does not fit is capped, with a
//! warning naming the limit and the flag. `-j auto` also stays within the process limit.
//!
//! It also holds the bound on a portal value that two stages must agree on: the listing
//! refuses a longer name, and the inventory cache's line bound is derived from it, so
//! what one run writes the next can read.

/// The longest account name (or email) accepted from the portal, in bytes. AWS
/// Organizations allows 50 characters; anything much longer is someone's attempt to
/// flood a line or the cache. An account over it is skipped with a warning when listed,
/// so the inventory cache never holds it, and a cache holding one is refused.
pub const MAX_NAME_BYTES: usize = 1024;

/// Descriptors one running command can hold at its start: the read ends of its two
/// pipes, their write ends and `/dev/null` until the fork is done, and the pipe std uses
/// to report a failed `exec`.
const FDS_PER_COMMAND: u64 = 6;
/// Descriptors for everything else: stdio, the runtime, the caches, the log.
const FDS_RESERVED: u64 = 32;

/// Raises the soft open-file limit as far as the hard limit allows and returns the
/// limit now in force (`None` if it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::debug!("cannot raise the open-file limit: {error}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
        }
    }
}

/// How many more commands the process limit (`ulimit -u`, which counts every process of
/// the user) leaves room for: half of it, since other processes of the user count too;
/// `None` when unlimited or unknown.
pub fn process_limit() -> Option<usize> {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NPROC).ok()?;
    (soft != rlimit::INFINITY).then(|| usize::try_from(soft / 2).unwrap_or(usize::MAX).max(1))
}

/// What fits under an open-file limit: `(commands at once, portal calls at once)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fitted {
    pub concurrency: usize,
    pub portal_concurrency: usize,
}

/// Caps `concurrency` commands and `portal_concurrency` calls to `open_files`
/// descriptors: the portal gets at most a quarter of what is free, the commands the
/// rest; each keeps at least one.
pub fn fit(open_files: u64, concurrency: usize, portal_concurrency: usize) -> Fitted {
    let free = open_files.saturating_sub(FDS_RESERVED);
    let portal = u64::try_from(portal_concurrency).unwrap_or(u64::MAX).min((free / 4).max(1));
    let commands = (free.saturating_sub(portal) / FDS_PER_COMMAND).max(1);
    Fitted {
        concurrency: concurrency.min(usize::try_from(commands).unwrap_or(usize::MAX)),
        portal_concurrency: usize::try_from(portal).unwrap_or(usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generous_limit_changes_nothing() {
        assert_eq!(fit(1_048_576, 16, 64), Fitted { concurrency: 16, portal_concurrency: 64 });
        assert_eq!(fit(1_048_576, 10_000, 1024), Fitted { concurrency: 10_000, portal_concurrency: 1024 });
    }

    #[test]
    fn a_small_limit_caps_both_and_keeps_one_of_each() {
        let fitted = fit(64, 60, 64);
        assert_eq!(fitted, Fitted { concurrency: 4, portal_concurrency: 8 });
        assert!(u64::try_from(fitted.concurrency).unwrap() * FDS_PER_COMMAND + 8 + FDS_RESERVED <= 64);
        assert_eq!(fit(256, 200, 64), Fitted { concurrency: 28, portal_concurrency: 56 });
        assert_eq!(fit(10, 16, 64), Fitted { concurrency: 1, portal_concurrency: 1 });
    }
}
