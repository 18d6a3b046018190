//! The plain option types the stages read: what the command line asked for, as data.
//! They live here, beside [`super::Config`], so that config imports no stage and every
//! stage (the executor, the reporter, the export) imports them from below.

use std::path::PathBuf;
use std::time::Duration;

/// When an account's lines are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// As they come (the default).
    #[default]
    Stream,
    /// Each account's whole output once it ends (`--group`).
    Group,
    /// Whole, and in selection order (`--keep-order`).
    Selection,
}

/// How a run's records read: `prefix|line` text, or `--output json`. Decided once, from
/// the command line, and read by the reporter (which records to write), the end sinks
/// (a dry run's table is text only) and the feedback (no bar over JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Where each report goes; all `None` when none was asked for.
#[derive(Clone, Debug, Default)]
pub struct ReportPaths {
    pub markdown: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

impl ReportPaths {
    pub fn any(&self) -> bool {
        self.markdown.is_some() || self.junit.is_some() || self.html.is_some()
    }
}

/// How long one account's command may run: `--timeout` and `--kill-after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From the spawn until the command exits; `None`: no limit.
    pub timeout: Option<Duration>,
    /// After the timeout's SIGTERM, how long until the group gets SIGKILL.
    pub kill_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: None, kill_after: DEFAULT_KILL_AFTER }
    }
}

/// `--kill-after`'s default.
const DEFAULT_KILL_AFTER: Duration = Duration::from_secs(5);

/// What to write, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// The article's `sso_role_credentials.json`: one array, written once every account
    /// is done.
    Json(JsonTarget),
    /// One account a line on stdout, each as soon as its credentials arrive.
    Jsonl,
    /// `export NAME=value` lines for `eval`, for exactly one account.
    Env,
    /// The `credential_process` JSON, for exactly one account.
    Process,
}

/// Where `--format json` goes: a file only when named, stdout only with `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonTarget {
    File(PathBuf),
    Stdout,
}

impl ExportFormat {
    /// `env` and `process` describe one set of credentials: the runner holds the
    /// accounts until the listing is complete and refuses any other count before
    /// fetching anything.
    pub fn needs_one_account(&self) -> bool {
        matches!(self, ExportFormat::Env | ExportFormat::Process)
    }

    /// The name `--format` takes.
    pub fn name(&self) -> &'static str {
        match self {
            ExportFormat::Json(_) => "json",
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Env => "env",
            ExportFormat::Process => "process",
        }
    }
}
