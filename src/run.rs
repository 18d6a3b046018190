//! The flow, stage by stage: login → token → portal → select → credentials → command
//! → summary. Each stage lives in its own module; this one only wires them together.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::concurrency::Concurrency;
use crate::config::{Action, Config, ConfigError, Feedback, ListFormat, RunPlan};
use crate::credserver::CredentialServer;
use crate::error::Error;
use crate::export::ExportSink;
use crate::files::Unwritten;
use crate::inventory::{self, CachedInventory, InventoryAccount, InventoryWriter, KnownRoles, RolesCache};
use crate::login::{AwsConfig, SsoLogin, resolve_logins};
use crate::pipeline::{self, AccountSource, Finished, Run, RunLogin};
use crate::plan::{Plan, PlanLogin};
use crate::portal::{Portal, PortalError, PortalLimits, RetryPolicy};
use crate::portal_rate;
use crate::rate::Sustained;
use crate::reporter::ci::RunTotals;
use crate::reporter::dir::OutputDir;
use crate::reporter::json;
use crate::reporter::progress::Progress;
use crate::reporter::tables::{self, AccountRoles};
use crate::reporter::writer::{self, Output, StdoutEnd, Stream, WriterEnd};
use crate::stop::Stopper;
use crate::token::refresh::TokenHolder;
use crate::{exit_code, limits, text};

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
            tables::eprint_text("fanout: stopped before any command started\n");
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
    for login in &logins {
        tracing::info!(login = %login.describe(), sso_region = %login.sso_region, "using");
    }
    if let Action::Run(plan) = &config.action
        && let Some(applied) = &plan.apply
    {
        // `apply` and `--save-plan` have one login: config.rs refuses them with several.
        applied.plan.check_login(&PlanLogin::of(&logins[0])).map_err(ConfigError::from)?;
    }
    let connected = connect(&config, &aws_config, logins, stopper).await?;
    // The first login's region is the children's, unless they are given one.
    let login = &connected[0].login;
    let shards = shard_count(&config);
    let (output, writer) = writer::start(config.stdout_is_terminal, progress.clone(), stopper.clone());
    let started = Instant::now();
    let mut output_dir = None;
    let result = match config.action {
        Action::Doctor => Ok(None), // answered by `run` before this
        Action::ListAccounts(format) => list_accounts(&connected, &config, format, &output).await,
        Action::Run(plan) if plan.dry_run && plan.apply.is_some() => {
            let applied = plan.apply.as_deref().expect("matched");
            review_plan(&connected[0], applied, &output).await
        }
        Action::Run(plan) => {
            if plan.dry_run || config.verbosity > 0 {
                for each in &connected {
                    output.send(Stream::Stderr, each.cache.describe(&each.login, connected.len()).into_bytes()).await;
                }
            }
            let json = plan.json;
            let dir = match &plan.output_dir {
                Some(path) => Some(Arc::new(OutputDir::create(path)?)),
                None => None,
            };
            output_dir.clone_from(&dir);
            let save_plan = plan.save_plan.clone();
            let credential_server = start_credential_server(&plan, &connected, stopper).await?;
            let run_logins =
                connected.iter().map(|each| RunLogin::new(&each.login, Arc::clone(&each.portal))).collect();
            let run =
                Run::new(*plan, login, run_logins, output.clone(), progress.clone(), dir.clone(), stopper.clone());
            let run = Arc::new(with_export(run?.with_credential_server(credential_server), &output)?);
            let sources = connected
                .iter()
                .map(|each| AccountSource {
                    cached_roles: each.cache.roles(config.inventory_ttl),
                    writer: each.cache.writer(&each.login),
                })
                .collect();
            let finished = pipeline::run_everywhere(Arc::clone(&run), &config.selection, sources).await;
            let mut finished = finish_export(run, stopper, &output, finished).await;
            if let (Ok(done), Some(path)) = (finished.as_mut(), save_plan) {
                match save(&path, done, login) {
                    Ok(text) => output.send(Stream::Stderr, text.into_bytes()).await,
                    Err(error) => finished = Err(error),
                }
            }
            if let Ok(finished) = finished.as_ref() {
                let elapsed = started.elapsed().saturating_sub(finished.tally.at_prompt);
                send_summary_record(finished, stopper, elapsed, json.then_some(&output), dir.as_deref()).await;
            }
            finished.map(Some)
        }
    };
    drop(output);
    for each in &connected {
        each.cache.remember_rate(&each.portal, shards, &each.login);
    }
    let writer_end = writer.finish(stopper.is_stopping().then_some(BLOCKED_WRITER_PATIENCE));
    progress.finish();
    // Output the directory lost is lost output, as a failed stdout is.
    let dir_written = output_dir.is_none_or(|dir| dir.finish());
    let Some(Finished { mut tally, dry_run, roles, reports, rejected_logins, mut unwritten, .. }) = result? else {
        return Ok(with_output_failures(exit_code::SUCCESS, &writer_end, true));
    };
    tally.throttles = connected.iter().map(|each| each.portal.stats.throttles.load(Ordering::Relaxed)).sum();
    tally.portal_calls = connected.iter().map(|each| each.portal.stats.calls.load(Ordering::Relaxed)).sum();
    // The run's duration leaves out the time its confirmation prompt waited.
    let elapsed = started.elapsed().saturating_sub(tally.at_prompt);
    if let Some(reports) = reports {
        unwritten.extend(reports.finish(&RunTotals { tally: &tally, elapsed, dry_run }));
    }
    let files_written = report_unwritten(&unwritten);
    if writer_end.stdout == StdoutEnd::Closed {
        // Whoever read our output has all they wanted: end quietly, as ripgrep does; but
        // a file asked for and lost is still a failure.
        return Ok(if files_written { exit_code::SUCCESS } else { exit_code::ACCOUNT_FAILED });
    }
    let mut summary = tally.render(&roles, elapsed, dry_run, config.verbosity > 0);
    for login_command in &rejected_logins {
        let _ = writeln!(summary, "fanout: the portal rejected the SSO token mid-run; run: {login_command}");
    }
    let code = match tally.exit_code(stopper.received_signal()) {
        // A lost file fails the run: `--quiet` then prints the summary too.
        exit_code::SUCCESS if !files_written => exit_code::ACCOUNT_FAILED,
        code => code,
    };
    let summary_written =
        (config.feedback == Feedback::Quiet && code == exit_code::SUCCESS) || tables::eprint_text(&summary);
    Ok(with_output_failures(code, &writer_end, summary_written && dir_written))
}

/// One login of the run, connected: its portal client (own limiter and retry quota:
/// each IAM Identity Center instance has its own limits) and its inventory cache.
struct Connected {
    login: SsoLogin,
    portal: Arc<Portal>,
    cache: InventoryCache,
}

/// Connects every login. Every token is read (and refreshed if it must be) first: one
/// missing or expired ends the run (exit 3, naming that login's `aws sso login`)
/// before any portal call, let alone any child.
async fn connect(
    config: &Config,
    aws_config: &AwsConfig,
    logins: Vec<SsoLogin>,
    stopper: &Stopper,
) -> Result<Vec<Connected>, Error> {
    let mut tokens = Vec::with_capacity(logins.len());
    for login in &logins {
        tokens.push(TokenHolder::load(&config.home, &config.cache_dir, login, aws_config).await?);
    }
    let mut connected = Vec::with_capacity(logins.len());
    for (login, token) in logins.into_iter().zip(tokens) {
        let cache = InventoryCache::open(config, &login);
        let limits = PortalLimits {
            max_in_flight: config.portal_concurrency,
            initial_rate: cache.start_rate(config, &login),
            retry: RetryPolicy::default(),
            throttle_timeout: config.throttle_timeout,
        };
        let portal = Arc::new(Portal::connect(&login, aws_config, token, limits, stopper.clone()).await);
        connected.push(Connected { login, portal, cache });
    }
    Ok(connected)
}

/// `--credential-server`: bound before any account starts (a dry run starts nothing);
/// it stops when the run drops it.
async fn start_credential_server(
    plan: &RunPlan,
    connected: &[Connected],
    stopper: &Stopper,
) -> Result<Option<CredentialServer>, Error> {
    if !plan.credential_server || plan.dry_run {
        return Ok(None);
    }
    let portals = connected.iter().map(|each| Arc::clone(&each.portal)).collect();
    let max_connections = crate::credserver::connection_cap(plan.concurrency.bound());
    let started = CredentialServer::start(portals, stopper.clone(), max_connections).await;
    Ok(Some(started.map_err(|source| Error::Io { context: "cannot start the credential server", source })?))
}

/// `fanout credentials`: the run with its export sink, opened before any credentials
/// are fetched (an unwritable --output-file fails first).
fn with_export(run: Run, output: &Output) -> Result<Run, Error> {
    let Some(format) = run.export_format() else { return Ok(run) };
    let sink = ExportSink::open(format, output.clone()).map_err(|(path, source)| Error::Write { path, source })?;
    Ok(run.with_export(sink))
}

/// Writes the collected export (`--format json`) once the run is done, and says where
/// on stderr; a run that failed outright writes none (its temp file goes with it). A file
/// that cannot be written fails the run as any lost file does, with its summary still
/// printed. Ends the run, which holds an output handle: the writer drains once every
/// handle is gone.
async fn finish_export(
    run: Arc<Run>,
    stopper: &Stopper,
    output: &Output,
    mut finished: Result<Finished, Error>,
) -> Result<Finished, Error> {
    let (Ok(done), Some(export)) = (&mut finished, run.export()) else { return finished };
    match export.finish(stopper.is_stopping()).await {
        Ok(note) => output.send(Stream::Stderr, note.unwrap_or_default().into_bytes()).await,
        Err((path, error)) => done.unwritten.push(Unwritten { what: "credentials file", path, error }),
    }
    finished
}

/// The `summary` record of `--output json` (to `stdout`) and `--output-dir` (to `dir`).
async fn send_summary_record(
    finished: &Finished,
    stopper: &Stopper,
    elapsed: Duration,
    stdout: Option<&Output>,
    dir: Option<&OutputDir>,
) {
    if stdout.is_none() && dir.is_none() {
        return;
    }
    let code = match finished.tally.exit_code(stopper.received_signal()) {
        // The joblog or the export lost (the reports are written after this).
        exit_code::SUCCESS if !finished.unwritten.is_empty() => exit_code::ACCOUNT_FAILED,
        code => code,
    };
    let elapsed = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let record = json::summary_record(&finished.tally, code, elapsed, finished.dry_run);
    if let Some(dir) = dir {
        dir.write_record(&record);
    }
    if let Some(output) = stdout {
        output.send(Stream::Stdout, record).await;
    }
}

/// Says on stderr, one line each, the files asked for that could not be written (the
/// joblog, the export, the CI reports); whether there were none. Each is lost output,
/// which fails the run.
fn report_unwritten(unwritten: &[Unwritten]) -> bool {
    for file in unwritten {
        tables::eprint_text(&format!("error: {}\n", text::show_at_most(&file.to_string(), text::MAX_LINE)));
    }
    unwritten.is_empty()
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
    let file_sha256 = plan.save(path).map_err(ConfigError::from)?;
    let quoted = shell_words::quote(&path.display().to_string()).into_owned();
    Ok(format!(
        "fanout: plan of {} saved to {}, sha256 {file_sha256}\n  review it with: fanout apply {quoted} --dry-run\n  after review, run it with: fanout apply {quoted} --approve {file_sha256}\n",
        crate::text::plural(plan.accounts.len(), "account"),
        text::show(&path.display().to_string()),
    ))
}

/// `fanout apply FILE --dry-run`: the plan's review on stdout, with the names the
/// portal gives its accounts now (one renamed since is shown with both). Lists the
/// accounts, and nothing more: no roles, no credentials, no command.
async fn review_plan(
    connected: &Connected,
    applied: &crate::plan::Applied,
    output: &Output,
) -> Result<Option<Finished>, Error> {
    let portal_error = |e| Error::from_portal(e, connected.login.login_command());
    let mut now: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut pages = connected.portal.account_pages();
    while let Some(page) = pages.next_page().await.map_err(portal_error)? {
        now.extend(page.into_iter().filter(|a| applied.by_id.contains_key(&a.id)).map(|a| (a.id, a.name)));
    }
    let listed = now.iter().map(|(id, name)| (id.as_str(), name.as_str())).collect();
    output.send(Stream::Stdout, crate::plan::review::render(applied, &listed).into_bytes()).await;
    Ok(None)
}

/// Output that could not be written is a failure: never exit 0 after losing it. A
/// failed stdout is said on stderr, if stderr still works.
fn with_output_failures(code: u8, end: &WriterEnd, summary_written: bool) -> u8 {
    let mut lost = end.stderr_failed || !summary_written;
    if let StdoutEnd::Failed(reason) = &end.stdout {
        tables::eprint_text(&format!(
            "error: cannot write to standard output: {reason}; output was lost, so the run was stopped\n"
        ));
        lost = true;
    }
    if lost && code == exit_code::SUCCESS { exit_code::ACCOUNT_FAILED } else { code }
}

/// Raises the open-file limit and caps `-j` (or the `-j auto` bound) and
/// `--portal-concurrency` to it, and the `-j auto` bound to the process limit too.
fn fit_open_file_limit(config: &mut Config) {
    let Some(open_files) = limits::raise_open_file_limit() else { return };
    let concurrency = match &config.action {
        Action::Run(plan) => plan.concurrency.bound(),
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
    let Action::Run(plan) = &mut config.action else { return };
    match plan.concurrency {
        Concurrency::Fixed(asked) if fitted.concurrency < asked => tracing::warn!(
            "the open-file limit (ulimit -n {open_files}) allows {} commands at once; running that many (-j {asked} asked; raise the limit with ulimit -n)",
            fitted.concurrency
        ),
        // The auto bound is a ceiling, not a request: capped quietly (-v says why).
        Concurrency::Auto { max } if fitted.concurrency < max => tracing::info!(
            "the open-file limit (ulimit -n {open_files}) allows {} commands at once; -j auto stays within it",
            fitted.concurrency
        ),
        _ => {}
    }
    plan.concurrency = plan.concurrency.capped(fitted.concurrency);
    if let (Concurrency::Auto { max }, Some(processes)) = (plan.concurrency, limits::process_limit())
        && processes < max
    {
        tracing::info!("the process limit (ulimit -u) allows about {processes} more commands; -j auto stays within it");
        plan.concurrency = plan.concurrency.capped(processes);
    }
}

/// The inventory cache for this login: where it lives, and what it holds if fresh; and
/// beside it the portal rate remembered for the login.
struct InventoryCache {
    /// `None` when `--cache-ttl 0` turns the cache off.
    path: Option<PathBuf>,
    fresh: Option<CachedInventory>,
    /// Where the portal rate is remembered; `None` when the cache is off (`--cache-ttl
    /// 0` writes nothing under the cache directory) or its directory is not the user's
    /// alone. `--refresh` does not turn it off: it is about the inventory.
    rate_path: Option<PathBuf>,
}

impl InventoryCache {
    /// The cache is off with `--cache-ttl 0`, and when its directory is not the user's
    /// alone (then with a warning).
    fn open(config: &Config, login: &SsoLogin) -> Self {
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
        InventoryCache { path, fresh, rate_path }
    }

    /// The portal rate to start at: `--portal-rps`, else the one remembered for the login
    /// (capped, divided among the shards), else the cold default.
    fn start_rate(&self, config: &Config, login: &SsoLogin) -> Sustained {
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
    fn remember_rate(&self, portal: &Portal, shards: u32, login: &SsoLogin) {
        let Some(path) = self.rate_path.as_deref() else { return };
        let Some(sustained) = portal.sustained_rate() else { return };
        tracing::debug!(rate = sustained.rate, throttled = sustained.throttled, "portal rate: remembered");
        if let Err(error) = portal_rate::remember(path, &login.start_url, sustained, shards, inventory::now_secs()) {
            tracing::debug!("cannot write the remembered portal rate {}: {error}", path.display());
        }
    }

    /// One line for stderr: where `login`'s accounts and their roles come from (named
    /// when the run has several logins).
    fn describe(&self, login: &SsoLogin, logins: usize) -> String {
        let of = if logins > 1 { format!(" of {}", text::show(login.name())) } else { String::new() };
        match &self.fresh {
            Some(inventory) => format!(
                "fanout: accounts{of} listed from the portal, roles known from the inventory cache (written {}, {}); --refresh lists them again\n",
                crate::text::ago(inventory.age),
                inventory.path().display()
            ),
            None => format!("fanout: inventory{of} listed from the portal\n"),
        }
    }

    /// The roles the fresh cache knows (listed within the TTL); none without one.
    fn roles(&self, ttl: Duration) -> RolesCache {
        self.fresh.as_ref().map(|inventory| inventory.roles(inventory::now_secs(), ttl)).unwrap_or_default()
    }

    /// A writer for a new inventory, unless the cache is off or cannot be written.
    fn writer(&self, login: &SsoLogin) -> Option<InventoryWriter> {
        let path = self.path.as_deref()?;
        InventoryWriter::create(path, &login.start_url, inventory::now_secs())
            .inspect_err(|error| tracing::warn!("cannot write the inventory cache {}: {error}", path.display()))
            .ok()
    }
}

/// N of `--shard I/N`, 1 without it.
fn shard_count(config: &Config) -> u32 {
    config.selection.shard.map_or(1, |shard| shard.count)
}

/// `fanout accounts`: every selected account with its roles, sorted by id. The accounts
/// are always the portal's; roles the fresh cache knows are not asked again. With
/// several logins, the union, each account once with the first login that lists it (as
/// a run would use).
async fn list_accounts(
    connected: &[Connected],
    config: &Config,
    format: ListFormat,
    output: &Output,
) -> Result<Option<Finished>, Error> {
    let mut accounts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for Connected { login, portal, cache } in connected {
        if config.verbosity > 0 {
            output.send(Stream::Stderr, cache.describe(login, connected.len()).into_bytes()).await;
        }
        let roles = cache.roles(config.inventory_ttl);
        for mut entry in list_from_portal(portal, config, login, roles, cache.writer(login)).await? {
            if seen.insert(entry.account.id.clone()) {
                entry.login = (connected.len() > 1).then(|| login.name().to_owned());
                accounts.push(entry);
            }
        }
    }
    accounts.sort_by(|a, b| a.account.id.cmp(&b.account.id));
    let text = match format {
        ListFormat::Table => tables::accounts_table(&accounts),
        ListFormat::Json => tables::accounts_json(&accounts),
    };
    output.send(Stream::Stdout, text).await;
    Ok(None)
}

/// The selected accounts as the portal lists them, with their roles: from `cached`
/// when it knows them, else listed. Every account goes to `writer`, committed once the
/// listing is complete.
async fn list_from_portal(
    portal: &Arc<Portal>,
    config: &Config,
    login: &SsoLogin,
    mut cached: RolesCache,
    mut writer: Option<InventoryWriter>,
) -> Result<Vec<AccountRoles>, Error> {
    let portal_error = |e| Error::from_portal(e, login.login_command());
    let mut lookups = JoinSet::new();
    let mut pages = portal.account_pages();
    while let Some(page) = pages.next_page().await.map_err(portal_error)? {
        for account in page {
            let known = cached.take(&account.id);
            if !config.selection.selects(&account) {
                inventory::record(&mut writer, &InventoryAccount::new(account, known));
                continue;
            }
            let portal = Arc::clone(portal);
            lookups.spawn(async move {
                let mut known = match known {
                    Some(known) => known,
                    None => KnownRoles::listed_now(portal.list_roles(&account.id).await?),
                };
                known.roles.sort();
                Ok((account, known))
            });
        }
    }
    let mut accounts = Vec::new();
    while let Some(joined) = lookups.join_next().await {
        let (account, known) = joined.expect("role lookups do not panic").map_err(portal_error)?;
        let listed = AccountRoles { account: account.clone(), roles: known.roles.clone(), login: None };
        inventory::record(&mut writer, &InventoryAccount::new(account, Some(known)));
        accounts.push(listed);
    }
    inventory::commit(writer);
    Ok(accounts)
}
