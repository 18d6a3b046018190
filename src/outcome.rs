//! How an (account, region) ended, in the words every part of fanout shares: the runner
//! decides an [`Outcome`], the reporter's sinks count, log and report it.
//!
//! A failing account is a result, not an error: each task returns an [`Outcome`], and
//! the exit code is derived from all of them.

use std::time::{Duration, SystemTime};

/// How one selected account ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Succeeded,
    /// The command failed, or the account could not be reached.
    Failed {
        class: FailureClass,
        reason: String,
    },
    /// The command was running when the run was stopped; how it ended.
    Interrupted(String),
    /// The account has none of the roles asked for. `reason` is set when that was
    /// decided from cached roles, and says so.
    NoRole {
        reason: Option<String>,
    },
    /// The run was stopped (signal, closed stdout, rejected login) before it started.
    NotStarted,
}

impl Outcome {
    /// The outcome in a word, as `--output json` and the joblog give it.
    pub fn status(&self, dry_run: bool) -> &'static str {
        match self {
            Outcome::Succeeded if dry_run => "planned",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed { .. } => "failed",
            Outcome::Interrupted(_) => "interrupted",
            Outcome::NoRole { .. } => "no-role",
            Outcome::NotStarted => "not-started",
        }
    }

    /// The failure class, for a failed account.
    pub fn class(&self) -> Option<FailureClass> {
        match self {
            Outcome::Failed { class, .. } => Some(*class),
            _ => None,
        }
    }

    /// What went wrong, in words, if anything did.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Failed { reason, .. }
            | Outcome::Interrupted(reason)
            | Outcome::NoRole { reason: Some(reason) } => Some(reason),
            _ => None,
        }
    }
}

/// Why an account failed, in a word a CI job can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// The portal gave no credentials (an error other than the ones below).
    NoCredentials,
    /// The portal refused credentials for a role the account lists (HTTP 403).
    Denied,
    /// The portal throttled its calls past the retry budget.
    Throttled,
    /// The portal rejected the SSO token.
    Login,
    /// The command could not be started.
    Spawn,
    /// The command exited non-zero.
    Exit,
    /// The command was killed by a signal.
    Signal,
    /// The command ran longer than `--timeout` and was stopped.
    Timeout,
}

impl FailureClass {
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::NoCredentials => "no-credentials",
            FailureClass::Denied => "denied",
            FailureClass::Throttled => "throttled",
            FailureClass::Login => "login",
            FailureClass::Spawn => "spawn",
            FailureClass::Exit => "exit",
            FailureClass::Signal => "signal",
            FailureClass::Timeout => "timeout",
        }
    }
}

/// An account's outcome, with what the summary needs to name it.
#[derive(Debug)]
pub struct AccountReport {
    pub account_id: String,
    pub account_name: String,
    /// With `--regions`: the region this ending is for; each is counted on its own.
    pub region: Option<String>,
    pub outcome: Outcome,
}

/// What one (account, region) found out on its way, beside its outcome.
#[derive(Debug, Default)]
pub struct Trace {
    /// The role it used, or would use in a dry run.
    pub role: Option<String>,
    /// The argv it ran, or would run in a dry run.
    pub argv: Option<Vec<String>>,
    /// How its command ended.
    pub exit: Option<ChildExit>,
    /// When its command started, and how long it ran.
    pub started: Option<SystemTime>,
    pub runtime: Duration,
    /// For the CI reports' timeline: when its task began, when its credentials came, and
    /// when it ended.
    pub began: Option<SystemTime>,
    pub credentials_at: Option<SystemTime>,
    pub ended: Option<SystemTime>,
    /// For the CI reports: the end of its command's stderr (empty unless one is written).
    pub stderr_tail: String,
}

/// How one account's command ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ChildExit {
    Code(i32),
    Signal(i32),
    /// It ran longer than `--timeout` and its group was stopped, however it then ended.
    TimedOut {
        after: Duration,
    },
}

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildExit::Code(code) => write!(f, "exit code {code}"),
            ChildExit::Signal(signal) => write!(f, "killed by signal {signal}"),
            ChildExit::TimedOut { after } => write!(f, "timed out after {}", humantime::format_duration(*after)),
        }
    }
}

impl ChildExit {
    pub fn success(&self) -> bool {
        *self == ChildExit::Code(0)
    }

    /// The exit code, when the command exited by itself.
    pub fn code(&self) -> Option<i32> {
        match self {
            ChildExit::Code(code) => Some(*code),
            _ => None,
        }
    }

    /// The signal that killed the command, when one did.
    pub fn signal(&self) -> Option<i32> {
        match self {
            ChildExit::Signal(signal) => Some(*signal),
            _ => None,
        }
    }
}
