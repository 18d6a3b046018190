//! The flow, stage by stage: login → token → portal → select → credentials → command
//! → summary. Each stage lives in its own module; this one only wires them together.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sso::primitives::DateTime;
use tokio::task::JoinSet;

use crate::config::{Action, Config, ConfigError, Feedback, ListFormat};
use crate::error::Error;
use crate::exec::stop::Stopper;
use crate::inventory::{self, CachedInventory, InventoryAccount, InventoryWriter};
use crate::login::{AwsConfig, SsoLogin, resolve_logins};
use crate::output::dir::OutputDir;
use crate::output::json;
use crate::output::progress::Progress;
use crate::output::report::{self, AccountRoles};
use crate::output::writer::{self, Output, StdoutEnd, Stream, WriterEnd};
use crate::pipeline::{self, AccountSource, Finished, Run, RunLogin};
use crate::plan::{Plan, PlanLogin};
use crate::portal::{Portal, PortalError, PortalLimits, RetryPolicy};
use crate::report::{Reports, RunTotals};
use crate::select::Selection;
use crate::summary::Tally;
use crate::{exit_code, limits, token};

/// How long a stopped run waits for a writer whose reader has stopped reading.
const BLOCKED_WRITER_PATIENCE: Duration = Duration::from_millis(500);

/// Runs what `config` asks and returns the exit code.
pub async fn run(config: Config) -> Result<u8, Error> {
    // Signals are fanout's from the first step: a stop during login or listing ends the
    // run with the signal's exit code and leaves nothing running.
    let stopper = Stopper::for_current_runtime();
    stopper.listen_for_signals().map_err(|source| Error::Io { context: "cannot listen for signals", source })?;
    // Cleared here too, so that an error from any step is printed on a clean line.
    let progress = Progress::new(config.feedback == Feedback::Bar);
    let result = match config.action {
        Action::Doctor => Ok(doctor(&config, &stopper, &progress).await),
        _ => run_with(config, &stopper, &progress).await,
    };
    progress.finish();
    match (result, stopper.received_signal()) {
        (Err(Error::Portal(PortalError::Cancelled)), Some(signal)) => {
            report::eprint_text("fanout: stopped before any command started\n");
            Ok(exit_code::for_signal(signal))
        }
        (result, _) => result,
    }
}

async fn run_with(mut config: Config, stopper: &Stopper, progress: &Progress) -> Result<u8, Error> {
    fit_open_file_limit(&mut config);
    let aws_config = AwsConfig::read(&config.home, config.aws_config_file.as_deref())?;
    let profiles = aws_config.profiles().await?;
    let logins = resolve_logins(&profiles, &config.sso_sessions, config.profile.as_deref())?;
    // The first login: the only one with `apply` and `--save-plan` (config.rs refuses
    // those with several), and the one whose region the children get.
    let login = &logins[0];
    for login in &logins {
        tracing::info!(login = %login.describe(), sso_region = %login.sso_region, "using");
    }
    if let Action::Run(plan) = &config.action
        && let Some(applied) = &plan.apply
    {
        applied.plan.check_login(&PlanLogin::of(login)).map_err(ConfigError::from)?;
    }
    let portals = connect(&config, &aws_config, &logins, stopper).await?;
    let caches: Vec<InventoryCache> = logins.iter().map(|login| InventoryCache::open(&config, login)).collect();
    let (output, writer) = writer::start(config.stdout_is_terminal, progress.clone(), stopper.clone());
    let started = Instant::now();
    let mut output_dir = None;
    let result = match config.action {
        Action::Doctor => Ok(None), // answered by `run` before this
        Action::ListAccounts(format) => list_accounts(&portals, &config, format, &output, &logins, &caches).await,
        Action::Run(plan) => {
            if plan.dry_run || config.verbosity > 0 {
                for (login, cache) in logins.iter().zip(&caches) {
                    output.send(Stream::Stderr, cache.describe(login, logins.len()).into_bytes()).await;
                }
            }
            let json = plan.json;
            let dir = match &plan.output_dir {
                Some(path) => Some(Arc::new(
                    OutputDir::create(path)
                        .map_err(|source| Error::Io { context: "cannot create the --output-dir directory", source })?,
                )),
                None => None,
            };
            output_dir.clone_from(&dir);
            let save_plan = plan.save_plan.clone();
            let run_logins =
                logins.iter().zip(&portals).map(|(l, portal)| RunLogin::new(l, Arc::clone(portal))).collect();
            let run =
                Run::new(*plan, login, run_logins, output.clone(), progress.clone(), dir.clone(), stopper.clone());
            let run = Arc::new(run?);
            let sources = logins
                .iter()
                .zip(&caches)
                .map(|(login, cache)| match &cache.fresh {
                    Some(inventory) => AccountSource::Cache(inventory),
                    None => AccountSource::Portal(cache.writer(login)),
                })
                .collect();
            let mut finished = pipeline::run_everywhere(run, &config.selection, sources).await;
            if let (Ok(done), Some(path)) = (finished.as_mut(), save_plan) {
                match save(&path, done, login) {
                    Ok(text) => output.send(Stream::Stderr, text.into_bytes()).await,
                    Err(error) => finished = Err(error),
                }
            }
            if let Ok(finished) = finished.as_ref()
                && (json || dir.is_some())
            {
                let code = finished.tally.exit_code(stopper.received_signal());
                let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let record = json::summary_record(&finished.tally, code, elapsed, finished.dry_run);
                if let Some(dir) = &dir {
                    dir.write_record(&record);
                }
                if json {
                    output.send(Stream::Stdout, record).await;
                }
            }
            finished.map(Some)
        }
    };
    drop(output);
    let writer_end = writer.finish(stopper.is_stopping().then_some(BLOCKED_WRITER_PATIENCE));
    progress.finish();
    // Output the directory lost is lost output, as a failed stdout is.
    let dir_written = output_dir.is_none_or(|dir| dir.finish());
    let Some(Finished { mut tally, dry_run, roles, reports, rejected_logins, .. }) = result? else {
        return Ok(with_output_failures(exit_code::SUCCESS, &writer_end, true));
    };
    tally.throttles = portals.iter().map(|portal| portal.stats.throttles.load(Ordering::Relaxed)).sum();
    tally.portal_calls = portals.iter().map(|portal| portal.stats.calls.load(Ordering::Relaxed)).sum();
    let reports_written = write_reports(reports, &tally, started.elapsed(), dry_run);
    if writer_end.stdout == StdoutEnd::Closed {
        // Whoever read our output has all they wanted: end quietly, as ripgrep does.
        return Ok(exit_code::SUCCESS);
    }
    let mut summary = tally.render(&roles, started.elapsed(), dry_run, config.verbosity > 0);
    for login_command in &rejected_logins {
        let _ = writeln!(summary, "fanout: the portal rejected the SSO token mid-run; run: {login_command}");
    }
    let code = tally.exit_code(stopper.received_signal());
    let summary_written =
        (config.feedback == Feedback::Quiet && code == exit_code::SUCCESS) || report::eprint_text(&summary);
    Ok(with_output_failures(code, &writer_end, summary_written && dir_written && reports_written))
}

/// A portal client a login, each with its own limiter and retry quota (each IAM
/// Identity Center instance has its own limits). Every login's token is read first: one
/// missing or expired ends the run (exit 3, naming that login's `aws sso login`) before
/// any portal call, let alone any child.
async fn connect(
    config: &Config,
    aws_config: &AwsConfig,
    logins: &[SsoLogin],
    stopper: &Stopper,
) -> Result<Vec<Arc<Portal>>, Error> {
    let now = DateTime::from(SystemTime::now());
    let tokens =
        logins.iter().map(|login| token::load_token(&config.home, login, now)).collect::<Result<Vec<_>, _>>()?;
    let limits = PortalLimits {
        max_in_flight: config.portal_concurrency,
        initial_rate: config.portal_rate,
        retry: RetryPolicy::default(),
        throttle_timeout: config.throttle_timeout,
    };
    let mut portals = Vec::with_capacity(logins.len());
    for (login, token) in logins.iter().zip(tokens) {
        portals.push(Arc::new(Portal::connect(login, aws_config, token.access_token, limits, stopper.clone()).await));
    }
    Ok(portals)
}

/// Writes the CI reports (`--summary-markdown`, `--junit`, `--report`); a report that
/// cannot be written is said on stderr and, as lost output, fails the run.
fn write_reports(reports: Option<Reports>, tally: &Tally, elapsed: Duration, dry_run: bool) -> bool {
    let Some(reports) = reports else { return true };
    let failed = reports.finish(&RunTotals { tally, elapsed, dry_run });
    for (path, error) in &failed {
        report::eprint_text(&format!(
            "error: cannot write {}: {}\n",
            report::sanitize(&path.display().to_string()),
            report::sanitize(&error.to_string())
        ));
    }
    failed.is_empty()
}

/// `fanout doctor`: the report on stdout, through the writer like any output; its
/// exit code is that of the first problem found.
async fn doctor(config: &Config, stopper: &Stopper, progress: &Progress) -> u8 {
    let report = crate::doctor::check(config, &crate::doctor::DoctorEnv::real(), stopper.clone()).await;
    let (output, writer) = writer::start(config.stdout_is_terminal, progress.clone(), stopper.clone());
    output.send(Stream::Stdout, report.render().into_bytes()).await;
    drop(output);
    let end = writer.finish(None);
    with_output_failures(report.exit_code(), &end, true)
}

/// `--save-plan`: writes what the dry run planned, unless the listing was cut short
/// (a plan of some of the accounts would look whole to its reviewer). Returns what to
/// say on stderr.
fn save(path: &std::path::Path, finished: &mut Finished, login: &SsoLogin) -> Result<String, Error> {
    let tally = &finished.tally;
    if tally.listing_error.is_some() || tally.listing_stopped || !tally.failed.is_empty() {
        return Ok(format!(
            "fanout: the plan was not saved to {}: the dry run did not plan every selected account\n",
            path.display()
        ));
    }
    let plan = Plan::new(PlanLogin::of(login), std::mem::take(&mut finished.planned));
    plan.save(path).map_err(ConfigError::from)?;
    Ok(format!(
        "fanout: plan of {} saved to {}, sha256 {}\n  after review, run it with: fanout apply {} --approve {}\n",
        crate::summary::plural(plan.accounts.len(), "account"),
        path.display(),
        plan.sha256,
        shell_words::quote(&path.display().to_string()),
        plan.sha256
    ))
}

/// Output that could not be written is a failure: never exit 0 after losing it. A
/// failed stdout is said on stderr, if stderr still works.
fn with_output_failures(code: u8, end: &WriterEnd, summary_written: bool) -> u8 {
    let mut lost = end.stderr_failed || !summary_written;
    if let StdoutEnd::Failed(reason) = &end.stdout {
        report::eprint_text(&format!(
            "error: cannot write to standard output: {reason}; output was lost, so the run was stopped\n"
        ));
        lost = true;
    }
    if lost && code == exit_code::SUCCESS { exit_code::ACCOUNT_FAILED } else { code }
}

/// Raises the open-file limit and caps `-j` and `--portal-concurrency` to it.
fn fit_open_file_limit(config: &mut Config) {
    let Some(open_files) = limits::raise_open_file_limit() else { return };
    let concurrency = match &config.action {
        Action::Run(plan) => plan.concurrency,
        Action::ListAccounts(_) | Action::Doctor => 1,
    };
    let fitted = limits::fit(open_files, concurrency, config.portal_concurrency);
    if fitted.portal_concurrency < config.portal_concurrency {
        tracing::warn!(
            "the open-file limit (ulimit -n {open_files}) allows {} portal calls at once; using that (--portal-concurrency)",
            fitted.portal_concurrency
        );
        config.portal_concurrency = fitted.portal_concurrency;
    }
    if let Action::Run(plan) = &mut config.action
        && fitted.concurrency < plan.concurrency
    {
        tracing::warn!(
            "the open-file limit (ulimit -n {open_files}) allows {} commands at once; running that many (-j {} asked; raise the limit with ulimit -n)",
            fitted.concurrency,
            plan.concurrency
        );
        plan.concurrency = fitted.concurrency;
    }
}

/// The inventory cache for this login: where it lives, and what it holds if fresh.
struct InventoryCache {
    /// `None` when `--cache-ttl 0` turns the cache off.
    path: Option<PathBuf>,
    fresh: Option<CachedInventory>,
}

impl InventoryCache {
    /// The cache is off with `--cache-ttl 0`, and when its directory is not the user's
    /// alone (then with a warning).
    fn open(config: &Config, login: &SsoLogin) -> Self {
        let trusted = inventory::check_dir(&config.cache_dir)
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
        InventoryCache { path, fresh }
    }

    /// One line for stderr: where `login`'s account list came from (named when the run
    /// has several logins).
    fn describe(&self, login: &SsoLogin, logins: usize) -> String {
        let of = if logins > 1 { format!(" of {}", report::sanitize(login.name())) } else { String::new() };
        match &self.fresh {
            Some(inventory) => format!(
                "fanout: inventory{of} from cache ({} old, {}); --refresh lists again\n",
                humanize(inventory.age),
                inventory.path().display()
            ),
            None => format!("fanout: inventory{of} listed from the portal\n"),
        }
    }

    /// A writer for a new inventory, unless the cache is off or cannot be written.
    fn writer(&self, login: &SsoLogin) -> Option<InventoryWriter> {
        let path = self.path.as_deref()?;
        InventoryWriter::create(path, &login.start_url, inventory::now_secs())
            .inspect_err(|error| tracing::warn!("cannot write the inventory cache {}: {error}", path.display()))
            .ok()
    }
}

fn humanize(age: Duration) -> String {
    match age.as_secs() {
        s if s < 120 => format!("{s}s"),
        s => format!("{}m", s / 60),
    }
}

/// `fanout accounts`: every selected account with its roles, sorted by id, from each
/// login's cache when it knows every selected account's roles, else from its portal.
/// With several logins, the union, each account once with the first login that lists
/// it (as a run would use).
async fn list_accounts(
    portals: &[Arc<Portal>],
    config: &Config,
    format: ListFormat,
    output: &Output,
    logins: &[SsoLogin],
    caches: &[InventoryCache],
) -> Result<Option<Finished>, Error> {
    let mut accounts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for ((login, portal), cache) in logins.iter().zip(portals).zip(caches) {
        let from_cache = match &cache.fresh {
            Some(inventory) => selected_from_cache(inventory, &config.selection),
            None => None,
        };
        let listed = if let Some(accounts) = from_cache {
            if config.verbosity > 0 {
                output.send(Stream::Stderr, cache.describe(login, logins.len()).into_bytes()).await;
            }
            accounts
        } else {
            list_from_portal(portal, config, login, cache.writer(login)).await?
        };
        for mut entry in listed {
            if seen.insert(entry.account.id.clone()) {
                entry.login = (logins.len() > 1).then(|| login.name().to_owned());
                accounts.push(entry);
            }
        }
    }
    accounts.sort_by(|a, b| a.account.id.cmp(&b.account.id));
    let text = match format {
        ListFormat::Table => report::accounts_table(&accounts),
        ListFormat::Json => report::accounts_json(&accounts),
    };
    output.send(Stream::Stdout, text).await;
    Ok(None)
}

/// The selected accounts with their roles, if the cache knows every one's roles.
fn selected_from_cache(inventory: &CachedInventory, selection: &Selection) -> Option<Vec<AccountRoles>> {
    let mut selected = Vec::new();
    for entry in inventory.accounts() {
        let InventoryAccount { account, roles } = entry.ok()?;
        if selection.selects(&account) {
            selected.push(AccountRoles { account, roles: roles?, login: None });
        }
    }
    Some(selected)
}

/// The selected accounts with their roles listed, from the portal; every account goes
/// to `writer`, committed once the listing is complete.
async fn list_from_portal(
    portal: &Arc<Portal>,
    config: &Config,
    login: &SsoLogin,
    mut writer: Option<InventoryWriter>,
) -> Result<Vec<AccountRoles>, Error> {
    let portal_error = |e| Error::from_portal(e, login.login_command());
    let mut lookups = JoinSet::new();
    let mut pages = portal.account_pages();
    while let Some(page) = pages.next_page().await.map_err(portal_error)? {
        for account in page {
            if !config.selection.selects(&account) {
                inventory::record(&mut writer, &InventoryAccount { account, roles: None });
                continue;
            }
            let portal = Arc::clone(portal);
            lookups.spawn(async move {
                let mut roles = portal.list_roles(&account.id).await?;
                roles.sort();
                Ok(AccountRoles { account, roles, login: None })
            });
        }
    }
    let mut accounts = Vec::new();
    while let Some(joined) = lookups.join_next().await {
        let listed: AccountRoles = joined.expect("role lookups do not panic").map_err(portal_error)?;
        let entry = InventoryAccount { account: listed.account.clone(), roles: Some(listed.roles.clone()) };
        inventory::record(&mut writer, &entry);
        accounts.push(listed);
    }
    inventory::commit(writer);
    Ok(accounts)
}
