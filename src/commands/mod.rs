//! The commands, each a thin file wiring the stages: a run in the selected accounts
//! (`run.rs`), `fanout accounts` (`accounts.rs`), `fanout doctor` (`doctor.rs`), and
//! `fanout apply` with `--save-plan` (`apply.rs`). This file holds what they share:
//! the logins connected once, and the exit code that output lost must fail.

mod accounts;
mod apply;
mod doctor;
mod organization;
mod run;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::{self, InventoryCache};
use crate::concurrency::Concurrency;
use crate::config::{Action, Config, ConfigError, Feedback};
use crate::error::Error;
use crate::login::{AwsConfig, SsoLogin, resolve_logins};
use crate::plan::PlanLogin;
use crate::portal::{Portal, PortalError, PortalLimits, RetryPolicy};
use crate::reporter::progress::Progress;
use crate::reporter::run_end::with_output_failures;
use crate::reporter::tables;
use crate::reporter::writer;
use crate::stop::Stopper;
use crate::token::refresh::TokenHolder;
use crate::{exit_code, limits};

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
        Action::Doctor => Ok(doctor::run(&config, &stopper, &progress).await),
        _ => Box::pin(with_logins(config, &stopper, &progress)).await,
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

/// A command that needs the logins: each is resolved and connected (its token read,
/// refreshed if it must be), then the command runs with the writer started, and the
/// rate each portal sustained is remembered for the next run.
async fn with_logins(mut config: Config, stopper: &Stopper, progress: &Progress) -> Result<u8, Error> {
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
        // `apply` and `--save-plan` have one login: config refuses them with several.
        applied.plan.check_login(&PlanLogin::of(&logins[0])).map_err(ConfigError::from)?;
    }
    let connected = connect(&config, &aws_config, logins, stopper).await?;
    organization::attach_facts(&mut config, &connected, &aws_config, stopper).await?;
    let shards = cache::shard_count(&config);
    let (output, writer) = writer::start(config.stdout_is_terminal, progress.clone(), stopper.clone());
    let started = Instant::now();
    // Taken out of the config: a run owns its plan.
    let action = std::mem::replace(&mut config.action, Action::Doctor);
    let (result, output_dir) = match action {
        Action::Doctor => (Ok(None), None), // answered by `run` before this
        Action::ListAccounts(format) => {
            (accounts::list(&connected, &config, format, &output).await.map(|()| None), None)
        }
        Action::Run(plan) if plan.dry_run && plan.apply.is_some() => {
            let applied = plan.apply.as_deref().expect("matched");
            (apply::review(&connected[0], applied, &output).await.map(|()| None), None)
        }
        Action::Run(plan) => {
            let (finished, dir) =
                run::everywhere(&config, *plan, &connected, &output, progress, stopper, started).await;
            (finished.map(Some), dir)
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
    let Some(finished) = result? else {
        return Ok(with_output_failures(exit_code::SUCCESS, &writer_end, true));
    };
    Ok(run::conclude(finished, &config, &connected, stopper, started, &writer_end, dir_written))
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
