//! From the parsed command line to a plain [`Config`]: every flag validated, every
//! template and glob parsed, every question to the environment asked once. Code after
//! this never sees clap's types, and rendering a template for an account cannot fail.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Cli, OutputFormat, Subcommands};
use crate::exec::child::Limits;
use crate::exec::template::{CommandTemplate, Template, TemplateError};
use crate::gate::{FailureLimit, FailureLimitError};
use crate::output::group::Order;
use crate::select::{GlobError, Selection, Shard, ShardError, parse_account_list, parse_glob};

/// IAM Identity Center's documented collective limit is about 20 requests a second.
const DEFAULT_PORTAL_RATE: f64 = 20.0;

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
}

impl Environment {
    pub fn real() -> Self {
        Environment {
            home: std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
            path: std::env::var_os("PATH"),
            xdg_cache_home: std::env::var_os("XDG_CACHE_HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
            aws_config_file: std::env::var("AWS_CONFIG_FILE").ok(),
            stdout_is_terminal: std::io::stdout().is_terminal(),
        }
    }
}

#[derive(Debug)]
pub struct Config {
    /// `--sso-session`; `None` leaves the choice to the profile or the config file.
    pub sso_session: Option<String>,
    /// `--profile` or `AWS_PROFILE`.
    pub profile: Option<String>,
    /// Where `~/.aws/sso/cache` lives.
    pub home: PathBuf,
    /// `AWS_CONFIG_FILE`, read as the SDK reads it.
    pub aws_config_file: Option<String>,
    /// Where the inventory cache lives: `$XDG_CACHE_HOME/fanout` or `~/.cache/fanout`.
    pub cache_dir: PathBuf,
    /// How long a cached inventory is used; zero turns the cache off.
    pub inventory_ttl: Duration,
    /// `--refresh`: list from the portal even when the cache is fresh.
    pub refresh: bool,
    pub selection: Selection,
    /// Portal calls in flight at once.
    pub portal_concurrency: usize,
    /// Portal requests a second to start at.
    pub portal_rate: f64,
    /// How long the portal may throttle every call before the run gives up on it.
    pub throttle_timeout: Duration,
    /// 0 quiet, 1 `-v`, …
    pub verbosity: u8,
    /// Flush every output line (a person is watching) rather than when the queue runs dry.
    pub stdout_is_terminal: bool,
    pub action: Action,
}

#[derive(Debug)]
pub enum Action {
    /// `fanout accounts`.
    ListAccounts(ListFormat),
    /// `fanout [--dry-run] -- COMMAND`.
    Run(Box<RunPlan>),
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
    /// Commands running at once.
    pub concurrency: usize,
    /// `--region`; `None` falls back to the profile's region, then the `sso_region`.
    pub region: Option<String>,
    pub dry_run: bool,
    /// `--canary` or `--canary-accounts`.
    pub canary: Option<Canary>,
    /// `--max-failures`, `--fail-fast`.
    pub max_failures: Option<FailureLimit>,
    /// `--output json`: JSON lines on stdout instead of `prefix|line`.
    pub json: bool,
    /// `--timeout` and `--kill-after`, for each command.
    pub limits: Limits,
    /// `--group`, `--keep-order`: when each account's lines are printed.
    pub order: Order,
    /// `--output-dir`: where each account's raw output and the JSON records are written too.
    pub output_dir: Option<PathBuf>,
}

/// Which accounts run first, alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Canary {
    /// The first N selected.
    First(usize),
    /// These ids or names.
    Accounts(HashSet<String>),
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
        source: std::io::Error,
    },
    #[error("HOME is not set, so the SSO token cache cannot be found")]
    NoHome,
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    FailureLimit(#[from] FailureLimitError),
    #[error("--portal-rps must be a positive number of requests a second")]
    BadRate,
    #[error("invalid region {0:?}: a region is lowercase letters, digits and '-', e.g. --region eu-west-1")]
    BadRegion(String),
}

impl Config {
    pub fn from_cli(cli: Cli, env: &Environment) -> Result<Self, ConfigError> {
        let home = env.home.clone().ok_or(ConfigError::NoHome)?;
        let selection = selection(&cli)?;
        let shards = selection.shard.map_or(1, |s| s.count);
        let portal_rate = match cli.run.portal_rps {
            Some(rate) if rate.is_finite() && rate > 0.0 => rate,
            Some(_) => return Err(ConfigError::BadRate),
            // The portal's limit is shared by every machine on the same IAM Identity
            // Center instance, so N shards start at 1/N of the safe rate each.
            None => DEFAULT_PORTAL_RATE / f64::from(shards),
        };
        let action = match cli.subcommand {
            Some(Subcommands::Accounts { output }) => Action::ListAccounts(match output {
                OutputFormat::Table => ListFormat::Table,
                OutputFormat::Json => ListFormat::Json,
            }),
            None => Action::Run(Box::new(run_plan(&cli, env)?)),
        };
        Ok(Config {
            sso_session: cli.login.sso_session,
            profile: cli.login.profile.filter(|p| !p.is_empty()),
            cache_dir: env.xdg_cache_home.clone().unwrap_or_else(|| home.join(".cache")).join("fanout"),
            home,
            aws_config_file: env.aws_config_file.clone(),
            inventory_ttl: Duration::from_secs(cli.run.cache_ttl),
            refresh: cli.run.refresh,
            selection,
            portal_concurrency: cli.run.portal_concurrency as usize,
            portal_rate,
            throttle_timeout: Duration::from_secs(cli.run.throttle_timeout),
            verbosity: cli.verbose,
            stdout_is_terminal: env.stdout_is_terminal,
            action,
        })
    }
}

fn run_plan(cli: &Cli, env: &Environment) -> Result<RunPlan, ConfigError> {
    if cli.run.role.is_empty() {
        return Err(ConfigError::MissingRole);
    }
    if cli.run.role.iter().any(|r| r.trim().is_empty()) {
        return Err(ConfigError::EmptyRole);
    }
    // A role is a placeholder's value too, allowed where a name is not: it must be one.
    if let Some(role) = cli.run.role.iter().find(|r| !crate::portal::validate::is_role_name(r)) {
        return Err(ConfigError::BadRole(role.clone()));
    }
    if cli.command.is_empty() {
        return Err(ConfigError::MissingCommand);
    }
    if let Some(region) = cli.run.region.as_ref().filter(|r| !crate::portal::validate::is_region(r)) {
        return Err(ConfigError::BadRegion(region.clone()));
    }
    let command = CommandTemplate::parse(&cli.command)?;
    // A missing program would fail every account the same way, after fetching every
    // account's credentials: say so once, up front. A dry run may plan a script that
    // is not written yet, and a program named by a placeholder is only known per account.
    let program = &cli.command[0];
    if !cli.run.dry_run && !command.program_has_placeholders() && !program_exists(program, env.path.as_deref()) {
        return Err(ConfigError::CommandNotFound(program.clone()));
    }
    Ok(RunPlan {
        roles: cli.run.role.clone(),
        command,
        prefix: Template::parse(&cli.run.prefix)?,
        concurrency: cli.run.concurrency as usize,
        region: cli.run.region.clone(),
        dry_run: cli.run.dry_run,
        canary: canary(&cli.run),
        json: cli.run.run_output == crate::cli::RunOutput::Json,
        max_failures: match (&cli.run.max_failures, cli.run.fail_fast) {
            (_, true) => Some(FailureLimit::Count(1)),
            (Some(limit), false) => Some(FailureLimit::parse(limit)?),
            (None, false) => None,
        },
        limits: Limits { timeout: cli.run.timeout, kill_after: cli.run.kill_after },
        order: match (cli.run.order.keep_order, cli.run.order.group) {
            (true, _) => Order::KeepOrder,
            (false, true) => Order::Group,
            (false, false) => Order::Stream,
        },
        output_dir: cli.run.output_dir.clone(),
    })
}

fn canary(run: &crate::cli::RunArgs) -> Option<Canary> {
    let accounts: HashSet<String> =
        run.canary_accounts.iter().map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect();
    if !accounts.is_empty() {
        return Some(Canary::Accounts(accounts));
    }
    run.canary.map(|n| Canary::First(n as usize))
}

/// Whether `program` names an executable file, directly (with a `/`) or through `path`.
fn program_exists(program: &str, path: Option<&std::ffi::OsStr>) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let is_executable = |candidate: &std::path::Path| {
        candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return is_executable(std::path::Path::new(program));
    }
    path.is_some_and(|path| std::env::split_paths(path).any(|dir| is_executable(&dir.join(program))))
}

fn selection(cli: &Cli) -> Result<Selection, ConfigError> {
    let args = &cli.selection;
    let mut listed: Option<HashSet<String>> = None;
    if !args.accounts.is_empty() {
        listed.get_or_insert_default().extend(args.accounts.iter().map(|a| a.trim().to_owned()));
    }
    if let Some(path) = &args.accounts_file {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::AccountsFile { path: path.clone(), source })?;
        listed.get_or_insert_default().extend(parse_account_list(&text));
    }
    Ok(Selection {
        matches: args.matches.iter().map(|g| parse_glob(g)).collect::<Result<_, _>>()?,
        excludes: args.exclude.iter().map(|g| parse_glob(g)).collect::<Result<_, _>>()?,
        listed,
        shard: args.shard.as_deref().map(Shard::parse).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("fanout").chain(args.iter().copied())).unwrap();
        let env = Environment {
            home: Some("/home/u".into()),
            path: Some("/usr/bin:/bin".into()),
            xdg_cache_home: None,
            aws_config_file: None,
            stdout_is_terminal: false,
        };
        Config::from_cli(cli, &env)
    }

    #[test]
    fn a_run_needs_a_role_and_a_command() {
        assert!(matches!(config(&["--", "true"]), Err(ConfigError::MissingRole)));
        assert!(matches!(config(&["--role", "R"]), Err(ConfigError::MissingCommand)));
        let Action::Run(plan) = config(&["--role", "A,B", "-j", "3", "--", "echo", "{account_id}"]).unwrap().action
        else {
            panic!("expected a run")
        };
        assert_eq!(plan.roles, ["A", "B"]);
        assert!(matches!(config(&["--role", "A,x$(id)", "--", "true"]), Err(ConfigError::BadRole(_))));
        assert_eq!(plan.concurrency, 3);
    }

    #[test]
    fn timeouts_are_durations_and_off_by_default() {
        let plan = |args: &[&str]| match config(args).unwrap().action {
            Action::Run(plan) => plan.limits,
            Action::ListAccounts(_) => panic!("expected a run"),
        };
        assert_eq!(plan(&["--role", "R", "--", "true"]), Limits::default());
        assert_eq!(Limits::default(), Limits { timeout: None, kill_after: Duration::from_secs(5) });
        let limits = plan(&["--role", "R", "--timeout", "1h30m", "--kill-after", "500ms", "--", "true"]);
        assert_eq!(limits.timeout, Some(Duration::from_mins(90)));
        assert_eq!(limits.kill_after, Duration::from_millis(500));
        assert_eq!(plan(&["--role", "R", "--timeout", "90s", "--", "true"]).timeout, Some(Duration::from_secs(90)));
        for bad in [["--timeout", "nonsense"], ["--timeout", "0s"], ["--kill-after", "5"]] {
            let args = [&["fanout", "--role", "R"][..], &bad[..], &["--", "true"][..]].concat();
            let error = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation, "{bad:?}");
        }
    }

    #[test]
    fn a_missing_program_is_found_out_before_any_account() {
        assert!(matches!(config(&["--role", "R", "--", "no-such-program-x"]), Err(ConfigError::CommandNotFound(_))));
        assert!(matches!(config(&["--role", "R", "--", "./not/here.sh"]), Err(ConfigError::CommandNotFound(_))));
        assert!(
            config(&["--role", "R", "--dry-run", "--", "./not/here.sh"]).is_ok(),
            "a dry run may plan a future script"
        );
        assert!(config(&["--role", "R", "--", "{account_id}.sh"]).is_ok(), "known per account only");
        assert!(config(&["--role", "R", "--", "sh", "-c", "true"]).is_ok());
    }

    #[test]
    fn templates_and_globs_fail_early() {
        assert!(matches!(config(&["--role", "R", "--", "echo", "{nope}"]), Err(ConfigError::Template(_))));
        assert!(matches!(config(&["--role", "R", "--prefix", "{x}", "--", "true"]), Err(ConfigError::Template(_))));
        assert!(matches!(config(&["--match", "[", "accounts"]), Err(ConfigError::Glob(_))));
    }

    #[test]
    fn canaries_and_failure_limits() {
        let plan = |args: &[&str]| match config(&[&["--role", "R"], args, &["--", "true"]].concat()).map(|c| c.action) {
            Ok(Action::Run(plan)) => Ok(plan),
            Ok(Action::ListAccounts(_)) => unreachable!("a run"),
            Err(error) => Err(error),
        };
        assert_eq!(plan(&["--canary", "3"]).unwrap().canary, Some(Canary::First(3)));
        assert_eq!(
            plan(&["--canary-accounts", "a, 111122223333"]).unwrap().canary,
            Some(Canary::Accounts(["a".to_owned(), "111122223333".to_owned()].into()))
        );
        assert_eq!(plan(&["--fail-fast"]).unwrap().max_failures, Some(FailureLimit::Count(1)));
        assert_eq!(plan(&["--max-failures", "5%"]).unwrap().max_failures, Some(FailureLimit::Percent(5.0)));
        assert!(matches!(plan(&["--max-failures", "0"]), Err(ConfigError::FailureLimit(_))));
        assert_eq!(plan(&[]).unwrap().max_failures, None);
    }

    #[test]
    fn the_accounts_subcommand_needs_no_role() {
        let config = config(&["accounts", "--output", "json", "--match", "*-dev"]).unwrap();
        assert!(matches!(config.action, Action::ListAccounts(ListFormat::Json)));
        assert_eq!(config.selection.matches.len(), 1);
    }

    #[test]
    #[expect(clippy::float_cmp, reason = "the rates are set, not computed with rounding")]
    fn sharding_divides_the_default_portal_rate() {
        assert_eq!(config(&["accounts"]).unwrap().portal_rate, 20.0);
        assert_eq!(config(&["--shard", "2/4", "accounts"]).unwrap().portal_rate, 5.0);
        assert_eq!(config(&["--shard", "2/4", "--portal-rps", "8", "accounts"]).unwrap().portal_rate, 8.0);
        assert!(matches!(config(&["--shard", "5/4", "accounts"]), Err(ConfigError::Shard(_))));
        assert!(matches!(config(&["--portal-rps", "0", "accounts"]), Err(ConfigError::BadRate)));
    }
}
