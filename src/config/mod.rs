//! From the parsed command line to a plain [`Config`]: every flag validated, every
//! template and glob parsed, every question to the environment asked once. Code after
//! this never sees clap's types, and rendering a template for an account cannot fail.
//!
//! This file holds the plain types the rest of fanout reads; `build.rs` turns clap's
//! `Cli` into them, and `files.rs` reads the files the command line names (the accounts
//! file, a resumed joblog, the plan `apply` runs).

mod build;
mod files;
mod options;

pub use options::{ExportFormat, Format, JsonTarget, Limits, Order, ReportPaths};

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::concurrency::Concurrency;
use crate::confirm::Confirm;
use crate::files::ReadLimitError;
use crate::gate::{FailureLimit, FailureLimitError};
use crate::joblog::JobLogError;
use crate::org::meta_file::MetaFileError;
use crate::org::{OrgRole, OrgRoleError, OuSelectorError};
use crate::plan::{Applied, PlanError};
use crate::regions::{Regions, RegionsError};
use crate::select::{AccountList, AccountRefError, GlobError, Selection, ShardError, TagFilterError};
use crate::template::{CommandTemplate, Template, TemplateError};

/// What fanout learns from its environment, asked once so tests can build a `Config`.
#[derive(Clone, Debug)]
pub struct Environment {
    pub home: Option<PathBuf>,
    /// `$PATH`, where the command is looked for.
    pub path: Option<std::ffi::OsString>,
    /// `$XDG_CACHE_HOME`, when set.
    pub xdg_cache_home: Option<PathBuf>,
    /// `$AWS_CONFIG_FILE`, when set.
    pub aws_config_file: Option<String>,
    pub stdout_is_terminal: bool,
    /// Both stdin and stderr are terminals: a person can be asked (`confirm.rs`).
    pub can_ask: bool,
    /// Whether a progress bar can be drawn.
    pub stderr_is_terminal: bool,
}

impl Environment {
    pub fn real() -> Self {
        Environment {
            home: std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
            path: std::env::var_os("PATH"),
            xdg_cache_home: std::env::var_os("XDG_CACHE_HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
            aws_config_file: std::env::var("AWS_CONFIG_FILE").ok(),
            stdout_is_terminal: std::io::stdout().is_terminal(),
            can_ask: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            stderr_is_terminal: std::io::stderr().is_terminal(),
        }
    }
}

#[derive(Debug)]
pub struct Config {
    /// `--sso-session`, each once, in the order given; empty leaves the choice to the
    /// profile or the config file. Several are several logins (`login::resolve_logins`).
    pub sso_sessions: Vec<String>,
    /// `--profile` or `AWS_PROFILE`.
    pub profile: Option<String>,
    /// Where `~/.aws/sso/cache` lives.
    pub home: PathBuf,
    /// `AWS_CONFIG_FILE`, read as the SDK reads it.
    pub aws_config_file: Option<String>,
    /// Where the inventory cache lives: `$XDG_CACHE_HOME/fanout` or `~/.cache/fanout`.
    pub cache_dir: PathBuf,
    /// How long cached roles are used; zero turns the cache (and the remembered portal
    /// rate) off.
    pub inventory_ttl: Duration,
    /// `--refresh`: list roles from the portal even when the cache is fresh.
    pub refresh: bool,
    pub selection: Selection,
    /// `--org-role`: the role the organization's facts are read through, before the
    /// listing; `None` without it (facts from `--accounts-meta`, or none).
    pub org_role: Option<OrgRole>,
    /// Portal calls in flight at once.
    pub portal_concurrency: usize,
    /// Portal requests a second to start at when no rate is remembered for the login.
    pub portal_rate: f64,
    /// `--portal-rps` was given: it overrides the remembered rate.
    pub portal_rate_given: bool,
    /// How long the portal may throttle every call before the run gives up on it.
    pub throttle_timeout: Duration,
    /// 0 quiet, 1 `-v`, …
    pub verbosity: u8,
    /// Flush every output line (a person is watching) rather than when the queue runs dry.
    pub stdout_is_terminal: bool,
    pub feedback: Feedback,
    pub action: Action,
}

/// What fanout tells about the run on stderr, beside the commands' own lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feedback {
    /// A progress bar while it runs, then the summary: a run with an interactive stderr
    /// and text output.
    Bar,
    /// The summary.
    Summary,
    /// `--quiet`: the summary only if something failed.
    Quiet,
}

#[derive(Debug)]
pub enum Action {
    /// `fanout accounts`.
    ListAccounts(ListFormat),
    /// `fanout [--dry-run] -- COMMAND`, and `fanout credentials` (a plan whose
    /// [`RunPlan::export`] is set).
    Run(Box<RunPlan>),
    /// `fanout doctor`: check the login end to end (`doctor.rs`).
    Doctor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug)]
pub struct RunPlan {
    /// Roles in order of preference; never empty.
    pub roles: Vec<String>,
    pub command: CommandTemplate,
    pub prefix: Template,
    /// The command as given, placeholders and all, for the joblog.
    pub command_argv: Vec<String>,
    /// Commands running at once: fixed (`-j N`) or adapted (`-j auto`).
    pub concurrency: Concurrency,
    /// `--region`; `None` falls back to the profile's region, then the `sso_region`.
    pub region: Option<String>,
    /// `--regions`: one child per account and region instead of one per account.
    pub regions: Option<Regions>,
    pub dry_run: bool,
    /// `--canary` or `--canary-accounts`.
    pub canary: Option<Canary>,
    /// `--max-failures`, `--fail-fast`.
    pub max_failures: Option<FailureLimit>,
    /// `--output json`: JSON lines on stdout instead of `prefix|line`.
    pub format: Format,
    /// `--timeout` and `--kill-after`, for each command.
    pub limits: Limits,
    /// `--joblog`: the file, and whether to append to it (it is also the log resumed).
    pub joblog: Option<(PathBuf, bool)>,
    /// The command as given, shell-quoted, for the confirmation prompt.
    pub command_text: String,
    /// Ask on the terminal before a run this big; `None` never asks.
    pub confirm: Option<Confirm>,
    /// `--save-plan FILE` (with `--dry-run`).
    pub save_plan: Option<PathBuf>,
    /// `fanout apply FILE`: the saved accounts, roles and argvs to run instead of the
    /// selection and the command.
    pub apply: Option<Arc<Applied>>,
    /// `--group`, `--keep-order`: when each account's lines are printed.
    pub order: Order,
    /// `--output-dir`: where each account's raw output and the JSON records are written too.
    pub output_dir: Option<PathBuf>,
    /// `--summary-markdown`, `--junit`, `--report`: the CI reports written at the end.
    pub reports: ReportPaths,
    /// `--credential-server`: children read their credentials from a loopback server.
    pub credential_server: bool,
    /// `--require-all`: an account in scope (organization facts) that the run did not
    /// reach fails it; `false` reports coverage without failing.
    pub require_all: bool,
    /// `--expiry-margin`: credentials that expire within it when the command slot frees
    /// are fetched again before the command starts.
    pub expiry_margin: Duration,
    /// `fanout credentials`: each account's credentials go to the export instead of a
    /// command.
    pub export: Option<ExportFormat>,
}

/// Which accounts run first, alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Canary {
    /// The first N selected.
    First(usize),
    /// These ids or names (an id entry matches ids only).
    Accounts(AccountList),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--role is required to run a command (for example --role ReadOnly)")]
    MissingRole,
    #[error("command not found: {0} (not a file, nor in PATH); check the name, or run it as `sh -c '...'`")]
    CommandNotFound(String),
    #[error("no command given; put it after `--`, e.g. fanout --role ReadOnly -- aws sts get-caller-identity")]
    MissingCommand,
    #[error("an empty role name in --role")]
    EmptyRole,
    #[error("invalid role {0:?} in --role: an IAM role name is 1-64 of letters, digits and +=,.@_-")]
    BadRole(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Glob(#[from] GlobError),
    #[error("cannot read --accounts-file {}", path.display())]
    AccountsFile {
        path: PathBuf,
        #[source]
        source: ReadLimitError,
    },
    #[error(transparent)]
    AccountRef(#[from] AccountRefError),
    #[error(transparent)]
    MetaFile(#[from] MetaFileError),
    #[error(transparent)]
    Ou(#[from] OuSelectorError),
    #[error(transparent)]
    OrgRole(#[from] OrgRoleError),
    #[error(transparent)]
    Tag(#[from] TagFilterError),
    #[error(
        "{0} chooses accounts by what the organization says of them, and no source of it was given; name a role that may read the organization with --org-role ACCOUNT:ROLE, or a file of OU paths and tags with --accounts-meta FILE (see docs/organizations.md)"
    )]
    OrgFactsNeeded(&'static str),
    #[error(
        "--require-all fails a run that did not reach every account in scope, and without the organization's facts there is no scope; name a role that may read the organization with --org-role ACCOUNT:ROLE, or a file of its accounts with --accounts-meta FILE (see docs/organizations.md, \"Coverage\")"
    )]
    RequireAllNeedsFacts,
    #[error(
        "--org-role and --accounts-meta are two sources of the organization's facts, and both have a value (from FANOUT_ORG_ROLE, FANOUT_ACCOUNTS_META or the config file); keep one, or give one as a flag, which sets the other's default aside"
    )]
    TwoOrgSources,
    #[error(
        "no account in --accounts-meta {file} is in the OU {}; check its path (names from the root, case-sensitive: Root/Workloads/Prod), or give the file an ou_id for that OU", crate::text::show(ou), file = file
    )]
    UnknownOu { ou: String, file: String },
    #[error("HOME is not set, so the SSO token cache cannot be found")]
    NoHome,
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    FailureLimit(#[from] FailureLimitError),
    #[error(transparent)]
    JobLog(#[from] JobLogError),
    #[error("--portal-rps must be a positive number of requests a second")]
    BadRate,
    #[error(
        "invalid region {0:?}: a region is a lowercase letter, then lowercase letters, digits and '-' (at most 63), e.g. --region eu-west-1"
    )]
    BadRegion(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Regions(#[from] RegionsError),
    #[error("--regions {0}; see docs/regions.md")]
    RegionsConflict(&'static str),
    #[error("`apply` runs the plan's accounts, roles and commands; drop {0}")]
    ApplyConflict(&'static str),
    #[error(
        "the plan needs approval and there is no terminal to ask on; give the sha256 its reviewer approved: fanout apply FILE --approve <sha256>"
    )]
    ApprovalNeeded,
    #[error("`completions`, `man` and `config` print text and run nothing")]
    NotARun,
    #[error(
        "--format json writes secrets to a file only when it is named: give --output-file FILE (or --output-file - for stdout), or stream them with --format jsonl"
    )]
    ExportNeedsFile,
    #[error("--output-file is for --format json; --format {0} prints on stdout")]
    OutputFileIsForJson(&'static str),
    #[error(
        "--format {format} gives one account's credentials, and the selection has {selected}; select one with --account ID (or --match NAME)"
    )]
    ExportNeedsOneAccount { format: &'static str, selected: usize },
    #[error(
        "--profile (or AWS_PROFILE) names one login and cannot be combined with several --sso-session; unset AWS_PROFILE, or give one --sso-session"
    )]
    ProfileWithSessions,
    #[error(
        "{0} records one login; with several --sso-session, save and apply a plan per login (--sso-session corp --save-plan corp.json)"
    )]
    PlanWithSessions(&'static str),
}

/// What the builder's tests and the files' tests share: a `Config` from arguments alone.
#[cfg(test)]
mod testing {
    use clap::Parser;

    use super::{Config, ConfigError, Environment};
    use crate::cli::Cli;

    /// A machine with no terminal, unless `can_ask`.
    pub(super) fn environment(can_ask: bool) -> Environment {
        Environment {
            home: Some("/home/u".into()),
            path: Some("/usr/bin:/bin".into()),
            xdg_cache_home: None,
            aws_config_file: None,
            stdout_is_terminal: false,
            can_ask,
            stderr_is_terminal: false,
        }
    }

    pub(super) fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("fanout").chain(args.iter().copied())).unwrap();
        Config::from_cli(cli, &environment(false))
    }
}
