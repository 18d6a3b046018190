//! The builder: clap's `Cli` turned into a [`Config`], flag by flag, each checked and
//! given its default. The files a flag names are read by `files.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::files::{read_plan, resumed_log, same_file, selection};
use super::{
    Action, Canary, Config, ConfigError, Environment, ExportFormat, Feedback, Format, JsonTarget, Limits, ListFormat,
    Order, ReportPaths, RunPlan,
};
use crate::cli::{Cli, ExportFormatArg, Jobs, OutputFormat, RunOutput, Subcommands};
use crate::concurrency::Concurrency;
use crate::confirm::Confirm;
use crate::gate::FailureLimit;
use crate::joblog::Logged;
use crate::org::OrgRole;
use crate::regions::Regions;
use crate::select::{AccountList, Selection};
use crate::template::{CommandTemplate, Template};

/// IAM Identity Center's documented collective limit is about 20 requests a second.
const DEFAULT_PORTAL_RATE: f64 = 20.0;

impl Config {
    pub fn from_cli(cli: Cli, env: &Environment) -> Result<Self, ConfigError> {
        let home = env.home.clone().ok_or(ConfigError::NoHome)?;
        let sso_sessions = sessions(&cli)?;
        let resumed = resumed_log(&cli)?;
        let selection = selection(&cli, resumed.as_ref())?;
        let shards = selection.shard.map_or(1, |s| s.count);
        let portal_rate = match cli.run.portal_rps {
            Some(rate) if rate.is_finite() && rate > 0.0 => rate,
            Some(_) => return Err(ConfigError::BadRate),
            // The portal's limit is shared by every machine on the same IAM Identity
            // Center instance, so N shards start at 1/N of the safe rate each.
            None => DEFAULT_PORTAL_RATE / f64::from(shards),
        };
        let mut selection = selection;
        let mut refresh = cli.run.refresh;
        let action = match &cli.subcommand {
            Some(Subcommands::Accounts { output }) => Action::ListAccounts(match output {
                OutputFormat::Table => ListFormat::Table,
                OutputFormat::Json => ListFormat::Json,
            }),
            Some(Subcommands::Doctor) => Action::Doctor,
            Some(Subcommands::Credentials { role, format, output_file }) => {
                let roles = if role.is_empty() { &cli.run.role } else { role };
                let format = export_format(*format, output_file.as_deref())?;
                Action::Run(Box::new(export_plan(&cli, roles.clone(), format)?))
            }
            Some(Subcommands::Apply { file, approve, dry_run }) => {
                let plan = apply_plan(&cli, env, file, approve.as_deref(), *dry_run)?;
                // Exactly the plan's accounts, as the portal lists them now (not as a
                // cache remembers them): one it no longer lists is skipped.
                let ids = AccountList::of_ids(plan.apply.iter().flat_map(|a| a.by_id.keys().cloned()));
                selection = Selection { listed: Some(ids), ..Selection::default() };
                refresh = true;
                Action::Run(Box::new(plan))
            }
            None => Action::Run(Box::new(run_plan(&cli, env, resumed.as_ref())?)),
            // `main` prints these before any configuration is read.
            Some(Subcommands::Completions { .. } | Subcommands::Man | Subcommands::Config) => {
                return Err(ConfigError::NotARun);
            }
        };
        Ok(Config {
            sso_sessions,
            profile: cli.login.profile.filter(|p| !p.is_empty()),
            cache_dir: env.xdg_cache_home.clone().unwrap_or_else(|| home.join(".cache")).join("fanout"),
            home,
            aws_config_file: env.aws_config_file.clone(),
            inventory_ttl: Duration::from_secs(cli.run.cache_ttl),
            refresh,
            selection,
            org_role: cli.selection.org_role.as_deref().map(OrgRole::parse).transpose()?,
            portal_concurrency: cli.run.portal_concurrency as usize,
            portal_rate,
            portal_rate_given: cli.run.portal_rps.is_some(),
            throttle_timeout: Duration::from_secs(cli.run.throttle_timeout),
            verbosity: cli.verbose,
            stdout_is_terminal: env.stdout_is_terminal,
            feedback: Feedback::new(cli.run.quiet, env.stderr_is_terminal, &action),
            action,
        })
    }
}

impl Feedback {
    fn new(quiet: bool, stderr_is_terminal: bool, action: &Action) -> Self {
        match action {
            _ if quiet => Feedback::Quiet,
            // A credential_process runs under the AWS CLI or an SDK at every refresh:
            // it speaks only when something failed. An `env` export is one account.
            Action::Run(plan) if plan.export == Some(ExportFormat::Process) => Feedback::Quiet,
            Action::Run(plan) if plan.export == Some(ExportFormat::Env) => Feedback::Summary,
            Action::Run(plan) if stderr_is_terminal && plan.format == Format::Text => Feedback::Bar,
            _ => Feedback::Summary,
        }
    }
}

/// The `--sso-session` names, each once in the order first given. Several logins refuse
/// what names a single login: a profile (its region and endpoint are one login's), and
/// a saved plan (`plan.rs` records one login, and `apply` checks it).
fn sessions(cli: &Cli) -> Result<Vec<String>, ConfigError> {
    let mut sessions: Vec<String> = Vec::new();
    for name in cli.login.sso_session.iter().map(|name| name.trim()).filter(|name| !name.is_empty()) {
        if !sessions.iter().any(|known| known == name) {
            sessions.push(name.to_owned());
        }
    }
    if sessions.len() > 1 {
        if cli.login.profile.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(ConfigError::ProfileWithSessions);
        }
        if cli.run.save_plan.is_some() {
            return Err(ConfigError::PlanWithSessions("--save-plan"));
        }
        if matches!(cli.subcommand, Some(Subcommands::Apply { .. })) {
            return Err(ConfigError::PlanWithSessions("`apply`"));
        }
    }
    Ok(sessions)
}

fn run_plan(cli: &Cli, env: &Environment, resumed: Option<&Logged>) -> Result<RunPlan, ConfigError> {
    // Given none, a resumed or retried run takes the logged run's roles and command.
    let logged_roles = resumed.and_then(|log| log.roles.clone()).unwrap_or_default();
    let roles = if cli.run.role.is_empty() { &logged_roles } else { &cli.run.role };
    let logged_command = resumed.and_then(|log| log.command.clone()).unwrap_or_default();
    let command_given = if cli.command.is_empty() { &logged_command } else { &cli.command };
    check_roles(roles)?;
    if command_given.is_empty() {
        return Err(ConfigError::MissingCommand);
    }
    if let Some(region) = cli.run.region.as_ref().filter(|r| !crate::portal::validate::is_region(r)) {
        return Err(ConfigError::BadRegion(region.clone()));
    }
    let regions = regions(cli, resumed)?;
    let command = CommandTemplate::parse(command_given)?;
    // A missing program would fail every account the same way, after fetching every
    // account's credentials: say so once, up front. A dry run may plan a script that
    // is not written yet, and a program named by a placeholder is only known per account.
    let program = &command_given[0];
    if !cli.run.dry_run && !command.program_has_placeholders() && !program_exists(program, env.path.as_deref()) {
        return Err(ConfigError::CommandNotFound(program.clone()));
    }
    let resumed_path = cli.run.resume.as_ref().or(cli.run.retry_failed.as_ref());
    let base = with_run_flags(cli, roles.clone(), command, cli.run.region.clone(), command_given.clone())?;
    Ok(RunPlan {
        joblog: cli.run.joblog.clone().map(|path| {
            let append = resumed_path.is_some_and(|resumed| same_file(resumed, &path));
            (path, append)
        }),
        command_text: shell_words::join(command_given),
        confirm: (env.can_ask && !cli.run.dry_run && !cli.run.yes && cli.run.confirm_above > 0)
            .then_some(Confirm { above: cli.run.confirm_above as usize }),
        save_plan: cli.run.save_plan.clone(),
        // Each child's prefix names its region too, unless the prefix was chosen.
        prefix: match &regions {
            Some(_) if cli.run.prefix == DEFAULT_PREFIX => Template::parse(REGIONS_PREFIX)?,
            _ => base.prefix,
        },
        regions,
        ..base
    })
}

/// `--prefix`'s default, and the default with `--regions`.
const DEFAULT_PREFIX: &str = "{account_id}";
const REGIONS_PREFIX: &str = "{account_id}/{region}";

/// `--regions`, parsed, with the flags it cannot be combined with refused: `--region`
/// (which region would a child get?), a joblog resumed (it records an account's last
/// line, not each region's), `--save-plan` (a plan holds one region an account), and
/// `--keep-order` with `enabled` (the order needs every account's region count before
/// its credentials are fetched).
fn regions(cli: &Cli, resumed: Option<&Logged>) -> Result<Option<Regions>, ConfigError> {
    let logged_regions = resumed.is_some_and(|log| log.entries.values().any(|e| e.region.is_some()));
    let Some(text) = &cli.run.regions else {
        if logged_regions {
            return Err(ConfigError::RegionsConflict(
                "wrote this joblog, and --resume/--retry-failed do not read back its regions",
            ));
        }
        return Ok(None);
    };
    let conflict = if cli.run.region.is_some() {
        Some("and --region together: give one; --regions sets each child's region")
    } else if resumed.is_some() {
        Some("with --resume/--retry-failed: the joblog cannot tell which regions ran; rerun with --accounts")
    } else if cli.run.save_plan.is_some() {
        Some("with --save-plan: a plan holds one region an account; save one plan per region with --region")
    } else {
        None
    };
    if let Some(conflict) = conflict {
        return Err(ConfigError::RegionsConflict(conflict));
    }
    let regions = Regions::parse(text)?;
    if regions == Regions::Enabled && cli.run.order.keep_order {
        return Err(ConfigError::RegionsConflict(
            "enabled with --keep-order: the order is not known before each account is asked; use --group",
        ));
    }
    Ok(Some(regions))
}

/// The roles of a run or an export: at least one, each a role's name.
fn check_roles(roles: &[String]) -> Result<(), ConfigError> {
    if roles.is_empty() {
        return Err(ConfigError::MissingRole);
    }
    if roles.iter().any(|r| r.trim().is_empty()) {
        return Err(ConfigError::EmptyRole);
    }
    // A role is a placeholder's value too, allowed where a name is not: it must be one.
    if let Some(role) = roles.iter().find(|r| !crate::portal::validate::is_role_name(r)) {
        return Err(ConfigError::BadRole(role.clone()));
    }
    Ok(())
}

/// `--format` and `--output-file` of `fanout credentials`: a json export goes to a file
/// only when one is named, to stdout only with `-`, and never to a default file nobody
/// asked for (a secrets file left in the working directory).
fn export_format(format: ExportFormatArg, output_file: Option<&std::path::Path>) -> Result<ExportFormat, ConfigError> {
    let format = match (format, output_file) {
        (ExportFormatArg::Json, None) => return Err(ConfigError::ExportNeedsFile),
        (ExportFormatArg::Json, Some(path)) if path.as_os_str() == "-" => ExportFormat::Json(JsonTarget::Stdout),
        (ExportFormatArg::Json, Some(path)) => ExportFormat::Json(JsonTarget::File(path.to_owned())),
        (ExportFormatArg::Jsonl, _) => ExportFormat::Jsonl,
        (ExportFormatArg::Env, _) => ExportFormat::Env,
        (ExportFormatArg::Process, _) => ExportFormat::Process,
    };
    match output_file {
        Some(_) if !matches!(format, ExportFormat::Json(_)) => Err(ConfigError::OutputFileIsForJson(format.name())),
        _ => Ok(format),
    }
}

/// `fanout credentials`: a run of the runner whose work per account is handing its
/// credentials to the export. No command, prompt, canary, dry run, joblog or report:
/// the run flags that shape a command's run do not apply.
fn export_plan(cli: &Cli, roles: Vec<String>, export: ExportFormat) -> Result<RunPlan, ConfigError> {
    check_roles(&roles)?;
    Ok(RunPlan {
        roles,
        command: CommandTemplate::parse(&[])?,
        prefix: Template::parse("{account_id}")?,
        command_argv: Vec::new(),
        concurrency: concurrency(&cli.run),
        region: None,
        dry_run: false,
        canary: None,
        max_failures: max_failures(&cli.run)?,
        format: Format::Text,
        limits: Limits::default(),
        joblog: None,
        command_text: String::new(),
        confirm: None,
        save_plan: None,
        apply: None,
        order: Order::Stream,
        output_dir: None,
        reports: ReportPaths::default(),
        expiry_margin: cli.run.expiry_margin,
        export: Some(export),
        credential_server: false,
        require_all: false,
        regions: None,
    })
}

/// A plan from what is common to a run and `apply`: the run flags, and the roles,
/// command and region given; no joblog, prompt, saved plan or applied plan yet.
pub(super) fn with_run_flags(
    cli: &Cli,
    roles: Vec<String>,
    command: CommandTemplate,
    region: Option<String>,
    command_argv: Vec<String>,
) -> Result<RunPlan, ConfigError> {
    let require_all = cli.run.require_all;
    if require_all && cli.selection.org_role.is_none() && cli.selection.accounts_meta.is_none() {
        return Err(ConfigError::RequireAllNeedsFacts);
    }
    Ok(RunPlan {
        require_all,
        roles,
        command,
        prefix: Template::parse(&cli.run.prefix)?,
        concurrency: concurrency(&cli.run),
        region,
        regions: None,
        dry_run: cli.run.dry_run,
        canary: canary(&cli.run)?,
        format: match cli.run.run_output {
            RunOutput::Json => Format::Json,
            RunOutput::Text => Format::Text,
        },
        max_failures: max_failures(&cli.run)?,
        limits: Limits { timeout: cli.run.timeout, kill_after: cli.run.kill_after },
        credential_server: cli.run.credential_server,
        order: order(&cli.run),
        output_dir: cli.run.output_dir.clone(),
        reports: ReportPaths {
            markdown: cli.run.summary_markdown.clone(),
            junit: cli.run.junit.clone(),
            html: cli.run.report.clone(),
        },
        command_text: String::new(),
        confirm: None,
        save_plan: None,
        apply: None,
        command_argv,
        joblog: None,
        expiry_margin: cli.run.expiry_margin,
        export: None,
    })
}

/// `--group`, `--keep-order` (which implies `--group`).
fn order(run: &crate::cli::RunArgs) -> Order {
    match (run.order.keep_order, run.order.group) {
        (true, _) => Order::Selection,
        (false, true) => Order::Group,
        (false, false) => Order::Stream,
    }
}

/// `-j N` fixed, or `-j auto` up to `--max-concurrency`.
fn concurrency(run: &crate::cli::RunArgs) -> Concurrency {
    match run.concurrency {
        Jobs::Fixed(n) => Concurrency::Fixed(n as usize),
        Jobs::Auto => Concurrency::Auto { max: run.max_concurrency as usize },
    }
}

/// `--max-failures`, or `--fail-fast` as a limit of one.
fn max_failures(run: &crate::cli::RunArgs) -> Result<Option<FailureLimit>, ConfigError> {
    Ok(match (&run.max_failures, run.fail_fast) {
        (_, true) => Some(FailureLimit::Count(1)),
        (Some(limit), false) => Some(FailureLimit::parse(limit)?),
        (None, false) => None,
    })
}

fn canary(run: &crate::cli::RunArgs) -> Result<Option<Canary>, ConfigError> {
    let accounts = AccountList::parse(run.canary_accounts.iter().map(String::as_str))?;
    if !accounts.is_empty() {
        return Ok(Some(Canary::Accounts(accounts)));
    }
    Ok(run.canary.map(|n| Canary::First(n as usize)))
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

/// `fanout apply FILE`: the plan read and checked (whole, approved), run with the run
/// flags given. Without `--approve` a person must say yes on the terminal, whatever
/// the plan's size and `--yes`; without a terminal, the run is refused. With
/// `--dry-run` (after `apply` or before it) the plan is only reviewed: no approval is
/// needed, and one given is checked.
fn apply_plan(
    cli: &Cli,
    env: &Environment,
    file: &std::path::Path,
    approve: Option<&str>,
    review_only: bool,
) -> Result<RunPlan, ConfigError> {
    let dry_run = review_only || cli.run.dry_run;
    let args = &cli.selection;
    let conflict = [
        (!cli.run.role.is_empty(), "--role"),
        (!cli.command.is_empty(), "the command after `--`"),
        (cli.run.region.is_some(), "--region"),
        (cli.run.regions.is_some(), "--regions"),
        (cli.run.save_plan.is_some(), "--save-plan"),
        (!args.matches.is_empty() || !args.exclude.is_empty(), "--match and --exclude"),
        (!args.accounts.is_empty() || args.accounts_file.is_some(), "--accounts and --accounts-file"),
        (args.shard.is_some(), "--shard"),
        (!args.ou.is_empty() || !args.exclude_ou.is_empty() || !args.tag.is_empty(), "--ou, --exclude-ou and --tag"),
        (args.org_role.is_some(), "--org-role"),
        (cli.run.resume.is_some() || cli.run.retry_failed.is_some(), "--resume and --retry-failed"),
    ];
    if let Some((_, what)) = conflict.iter().find(|(given, _)| *given) {
        return Err(ConfigError::ApplyConflict(what));
    }
    let (applied, confirm) = read_plan(file, approve, dry_run, env.can_ask)?;
    let first = &applied.plan.accounts[0];
    let same_argv =
        if applied.plan.accounts.iter().all(|a| a.argv == first.argv) { first.argv.clone() } else { Vec::new() };
    // Never rendered: each account runs its saved argv. For --retry-failed the joblog
    // records the plan's argv when every account runs the same one; none when they
    // differ (a retry then needs a command given). The prompt shows the plan's review
    // (`plan::review`), not this text.
    let command_text = shell_words::join(&same_argv);
    let region = applied.plan.single_region().map(str::to_owned);
    let base = with_run_flags(cli, applied.roles(), CommandTemplate::parse(&[])?, region, same_argv)?;
    Ok(RunPlan {
        dry_run,
        command_text,
        confirm,
        apply: Some(Arc::new(applied)),
        joblog: cli.run.joblog.clone().map(|path| (path, false)),
        ..base
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::testing::{config, environment};

    #[test]
    fn regions_name_the_prefix_unless_it_is_chosen_and_refuse_region() {
        use crate::template::Vars;
        let prefix_of = |args: &[&str]| {
            let Action::Run(plan) = config(args).unwrap().action else { panic!("a run") };
            let vars =
                Vars { account_id: "111122223333", account_name: "n", role: "R", region: "eu-west-1", ou_path: "" };
            (plan.prefix.render(&vars), plan.regions)
        };
        let (prefix, regions) = prefix_of(&["--role", "R", "--regions", "eu-west-1", "--", "true"]);
        assert_eq!(
            (prefix.as_str(), regions),
            ("111122223333/eu-west-1", Some(Regions::List(vec!["eu-west-1".into()])))
        );
        let (prefix, _) = prefix_of(&["--role", "R", "--regions", "enabled", "--prefix", "{role}", "--", "true"]);
        assert_eq!(prefix, "R");
        assert_eq!(prefix_of(&["--role", "R", "--", "true"]).0, "111122223333");
        let both = config(&["--role", "R", "--regions", "eu-west-1", "--region", "us-east-1", "--", "true"]);
        assert!(matches!(both, Err(ConfigError::RegionsConflict(_))));
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
        assert_eq!(plan.concurrency, Concurrency::Fixed(3));
        let Action::Run(plan) = config(&["--role", "A", "--max-concurrency", "9", "--", "true"]).unwrap().action else {
            panic!("expected a run")
        };
        assert_eq!(plan.concurrency, Concurrency::Auto { max: 9 });
    }

    #[test]
    fn timeouts_are_durations_and_off_by_default() {
        let plan = |args: &[&str]| match config(args).unwrap().action {
            Action::Run(plan) => plan.limits,
            Action::ListAccounts(_) | Action::Doctor => panic!("expected a run"),
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
            Ok(Action::ListAccounts(_) | Action::Doctor) => unreachable!("a run"),
            Err(error) => Err(error),
        };
        assert_eq!(plan(&["--canary", "3"]).unwrap().canary, Some(Canary::First(3)));
        assert_eq!(
            plan(&["--canary-accounts", "a, 111122223333"]).unwrap().canary,
            Some(Canary::Accounts(AccountList::parse(["a", "111122223333"]).unwrap()))
        );
        assert_eq!(plan(&["--fail-fast"]).unwrap().max_failures, Some(FailureLimit::Count(1)));
        assert_eq!(plan(&["--max-failures", "5%"]).unwrap().max_failures, Some(FailureLimit::Percent(5.0)));
        assert!(matches!(plan(&["--max-failures", "0"]), Err(ConfigError::FailureLimit(_))));
        assert_eq!(plan(&[]).unwrap().max_failures, None);
    }

    #[test]
    fn a_run_asks_only_a_person_and_only_when_it_will_run() {
        let confirm = |can_ask: bool, args: &[&str]| {
            let args = [&["fanout", "--role", "R"], args, &["--", "true"]].concat();
            match Config::from_cli(Cli::try_parse_from(args).unwrap(), &environment(can_ask)).unwrap().action {
                Action::Run(plan) => plan.confirm,
                Action::ListAccounts(_) | Action::Doctor => unreachable!("a run"),
            }
        };
        assert_eq!(confirm(true, &[]), Some(Confirm { above: 10 }));
        assert_eq!(confirm(true, &["--confirm-above", "3"]), Some(Confirm { above: 3 }));
        assert_eq!(confirm(false, &[]), None, "no terminal, no prompt");
        assert_eq!(confirm(true, &["--yes"]), None);
        assert_eq!(confirm(true, &["--confirm-above", "0"]), None);
        assert_eq!(confirm(true, &["--dry-run"]), None);
    }

    #[test]
    fn the_bar_needs_a_run_a_terminal_and_text_output() {
        let action = |args: &[&str]| config(args).unwrap().action;
        let text = action(&["--role", "R", "--", "true"]);
        let json = action(&["--role", "R", "--output", "json", "--", "true"]);
        assert_eq!(Feedback::new(false, true, &text), Feedback::Bar);
        assert_eq!(Feedback::new(false, false, &text), Feedback::Summary);
        assert_eq!(Feedback::new(false, true, &json), Feedback::Summary);
        assert_eq!(Feedback::new(false, true, &action(&["accounts"])), Feedback::Summary);
        assert_eq!(Feedback::new(true, true, &text), Feedback::Quiet);
        assert_eq!(config(&["-q", "--role", "R", "--", "true"]).unwrap().feedback, Feedback::Quiet);
        assert_eq!(config(&["--role", "R", "--", "true"]).unwrap().feedback, Feedback::Summary);
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
        assert!(
            config(&["--portal-rps", "8", "accounts"]).unwrap().portal_rate_given,
            "it overrides a remembered rate"
        );
        assert!(!config(&["accounts"]).unwrap().portal_rate_given);
        assert!(matches!(config(&["--shard", "5/4", "accounts"]), Err(ConfigError::Shard(_))));
        assert!(matches!(config(&["--portal-rps", "0", "accounts"]), Err(ConfigError::BadRate)));
    }
}
