//! fanout's exit codes: public interface, listed in `--help` and docs/exit-codes.md.

/// Every selected account ran and its command exited 0.
pub const SUCCESS: u8 = 0;
/// At least one account failed (non-zero exit, killed, no credentials, throttled, spawn
/// error), was interrupted or never started.
pub const ACCOUNT_FAILED: u8 = 1;
/// Usage or configuration error; clap uses 2 for its own usage errors too.
pub const USAGE: u8 = 2;
/// No valid SSO login: the cached token is missing, unreadable, expired or rejected.
pub const NO_LOGIN: u8 = 3;
/// The SSO portal could not be queried before any command started, or its account
/// listing broke off (a loop, an error) after some had.
pub const PORTAL_UNAVAILABLE: u8 = 4;
/// The selection matched no account.
pub const NOTHING_SELECTED: u8 = 5;
/// Interrupted by SIGINT, after the children were stopped (128 + 2).
pub const INTERRUPTED: u8 = 130;
/// Terminated by SIGTERM, after the children were stopped (128 + 15).
pub const TERMINATED: u8 = 143;
/// Hung up (SIGHUP: a closed terminal or ssh session), after the children were stopped
/// (128 + 1).
pub const HUNG_UP: u8 = 129;

/// 128 + the signal's number, as shells report a death by signal.
pub fn for_signal(signal: i32) -> u8 {
    match signal {
        libc::SIGINT => INTERRUPTED,
        libc::SIGHUP => HUNG_UP,
        _ => TERMINATED,
    }
}
