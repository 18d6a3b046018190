//! The flow, stage by stage: login → token → portal → select → credentials → command
//! → summary. Each stage lives in its own module; this one only wires them together.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use aws_sdk_sso::primitives::DateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::{Action, Config, ListFormat, RunPlan};
use crate::error::Error;
use crate::exec::child::{self, ChildExit};
use crate::exec::env::AccountEnv;
use crate::exec::stop::Stopper;
use crate::exec::template::Vars;
use crate::login::{SsoLogin, load_profiles, resolve_login};
use crate::output::report::{self, AccountRoles};
use crate::output::writer::{self, Output, Stream, WriterEnd};
use crate::portal::{Account, Portal, PortalError, PortalLimits, RetryPolicy};
use crate::select::{Selection, pick_role};
use crate::summary::{AccountReport, Outcome, Tally};
use crate::{credentials, exit_code, token};

/// Runs what `config` asks and returns the exit code.
pub async fn run(config: Config) -> Result<u8, Error> {
    let profiles = load_profiles().await?;
    let login = resolve_login(&profiles, config.sso_session.as_deref(), config.profile.as_deref())?;
    tracing::info!(login = %login.describe(), sso_region = %login.sso_region, "using");
    let token = token::load_token(&config.home, &login, DateTime::from(SystemTime::now()))?;
    let limits = PortalLimits {
        max_in_flight: config.portal_concurrency,
        initial_rate: config.portal_rate,
        retry: RetryPolicy::default(),
    };
    let portal = Arc::new(Portal::connect(&login, token.access_token, limits).await);
    let stopper = Stopper::for_current_runtime();
    stopper.listen_for_signals().map_err(|source| Error::Io { context: "cannot listen for signals", source })?;
    let (output, writer) = {
        let stopper = stopper.clone();
        writer::start(config.stdout_is_terminal, move || stopper.stop(libc::SIGTERM))
    };
    let started = Instant::now();
    let result = match config.action {
        Action::ListAccounts(format) => list_accounts(&portal, &config.selection, format, &output, &login).await,
        Action::Run(plan) => {
            let run = Arc::new(Run {
                region: plan.region.clone().or(login.profile_region.clone()).unwrap_or(login.sso_region.clone()),
                plan,
                portal: Arc::clone(&portal),
                output: output.clone(),
                stopper: stopper.clone(),
                login_rejected: AtomicBool::new(false),
            });
            run_everywhere(run, &config.selection, &login).await
        }
    };
    drop(output);
    let stdout_closed = writer.finish() == WriterEnd::StdoutClosed;
    let (mut tally, roles, dry_run) = match result? {
        Finished::Listed => return Ok(exit_code::SUCCESS),
        Finished::Ran { tally, roles, dry_run } => (tally, roles, dry_run),
    };
    if stdout_closed {
        // Whoever read our output has all they wanted: end quietly, as ripgrep does.
        return Ok(exit_code::SUCCESS);
    }
    tally.throttles = portal.stats.throttles.load(Ordering::Relaxed);
    tally.portal_calls = portal.stats.calls.load(Ordering::Relaxed);
    report::eprint_text(&tally.render(&roles, started.elapsed(), dry_run, config.verbosity > 0));
    if tally.login_rejected {
        report::eprint_text(&format!(
            "fanout: the portal rejected the SSO token mid-run; run: {}\n",
            login.login_command()
        ));
    }
    Ok(tally.exit_code(stopper.received_signal()))
}

enum Finished {
    Listed,
    Ran { tally: Tally, roles: Vec<String>, dry_run: bool },
}

/// `fanout accounts`: every selected account with its roles, sorted by id.
async fn list_accounts(
    portal: &Arc<Portal>,
    selection: &Selection,
    format: ListFormat,
    output: &Output,
    login: &SsoLogin,
) -> Result<Finished, Error> {
    let mut lookups = JoinSet::new();
    portal
        .list_accounts(|page| {
            for account in page.into_iter().filter(|a| selection.selects(a)) {
                let portal = Arc::clone(portal);
                lookups.spawn(async move {
                    let roles = portal.list_roles(&account.id).await;
                    roles.map(|mut roles| {
                        roles.sort();
                        AccountRoles { account, roles }
                    })
                });
            }
        })
        .await
        .map_err(|e| Error::from_portal(e, login.login_command()))?;
    let mut accounts = Vec::new();
    while let Some(joined) = lookups.join_next().await {
        let account = joined.expect("role lookups do not panic");
        accounts.push(account.map_err(|e| Error::from_portal(e, login.login_command()))?);
    }
    accounts.sort_by(|a, b| a.account.id.cmp(&b.account.id));
    let text = match format {
        ListFormat::Table => report::accounts_table(&accounts),
        ListFormat::Json => report::accounts_json(&accounts),
    };
    output.send(Stream::Stdout, text).await;
    Ok(Finished::Listed)
}

/// What every account task shares.
struct Run {
    plan: RunPlan,
    /// The children's AWS_REGION.
    region: String,
    portal: Arc<Portal>,
    output: Output,
    stopper: Stopper,
    /// Set at the first 401 mid-run: every later account would get one too.
    login_rejected: AtomicBool,
}

/// The pipeline: each page of accounts is filtered as it arrives and each selected
/// account gets a task at once, so role listing, credentials and commands start long
/// before the last page. Portal calls are bounded by the portal's slots, commands by
/// `-j`; an account's credentials are fetched only once its command may start, so their
/// expiry clock starts late and a stopped run stops fetching.
async fn run_everywhere(run: Arc<Run>, selection: &Selection, login: &SsoLogin) -> Result<Finished, Error> {
    let child_slots = Arc::new(Semaphore::new(run.plan.concurrency));
    let mut tasks = JoinSet::new();
    let mut tally = Tally::default();
    let mut listed_seen = HashSet::new();
    let listing = run
        .portal
        .list_accounts(|page| {
            for account in page.into_iter().filter(|a| selection.selects(a)) {
                if selection.listed.is_some() {
                    listed_seen.extend([account.id.clone(), account.name.clone()]);
                }
                tally.selected += 1;
                tasks.spawn(run_account(Arc::clone(&run), Arc::clone(&child_slots), account));
            }
        })
        .await;
    if let Err(error) = listing {
        if tally.selected == 0 {
            return Err(Error::from_portal(error, login.login_command()));
        }
        tally.listing_error = Some(error.to_string());
    }
    let missing = selection.unmatched_entries(&listed_seen);
    if !missing.is_empty() {
        let text = format!("fanout: warning: this login reaches no account named {}\n", missing.join(", "));
        run.output.send(Stream::Stderr, text.into_bytes()).await;
    }
    let mut plan_lines = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (report, dry_run_line) = joined.expect("account tasks do not panic");
        plan_lines.extend(dry_run_line);
        tally.record(report);
    }
    tally.login_rejected = run.login_rejected.load(Ordering::Relaxed);
    if run.plan.dry_run {
        plan_lines.sort();
        let rows = plan_lines.into_iter().map(|(id, name, role, command)| [id, name, role, command]);
        run.output.send(Stream::Stdout, report::table(&["ACCOUNT_ID", "NAME", "ROLE", "COMMAND"], rows)).await;
    }
    Ok(Finished::Ran { tally, roles: run.plan.roles.clone(), dry_run: run.plan.dry_run })
}

/// `(account id, name, role, command)` for the dry-run table.
type PlanLine = (String, String, String, String);

/// One account, start to end. Never fails: every ending is an [`Outcome`].
async fn run_account(
    run: Arc<Run>,
    child_slots: Arc<Semaphore>,
    account: Account,
) -> (AccountReport, Option<PlanLine>) {
    let (outcome, plan_line) = account_outcome(&run, &child_slots, &account).await;
    tracing::debug!(account = %account.id, ?outcome, "finished");
    (AccountReport { account_id: account.id, account_name: account.name, outcome }, plan_line)
}

async fn account_outcome(run: &Run, child_slots: &Semaphore, account: &Account) -> (Outcome, Option<PlanLine>) {
    let stopped = || run.stopper.is_stopping() || run.login_rejected.load(Ordering::Relaxed);
    if stopped() {
        return (Outcome::NotStarted, None);
    }
    let roles = match run.portal.list_roles(&account.id).await {
        Ok(roles) => roles,
        Err(error) => return (failed(run, error), None),
    };
    let Some(role) = pick_role(&run.plan.roles, &roles) else {
        return (Outcome::NoRole, None);
    };
    let vars = Vars { account_id: &account.id, account_name: &account.name, role, region: &run.region };
    let argv = run.plan.command.render(&vars);
    if run.plan.dry_run {
        let command = shell_words::join(&argv);
        return (Outcome::Succeeded, Some((account.id.clone(), account.name.clone(), role.to_owned(), command)));
    }
    let _slot = child_slots.acquire().await.expect("the semaphore is never closed");
    if stopped() {
        return (Outcome::NotStarted, None);
    }
    let credentials = match credentials::fetch(&run.portal, &account.id, role).await {
        Ok(credentials) => credentials,
        Err(error) => return (failed(run, error), None),
    };
    let env = AccountEnv {
        account_id: &account.id,
        account_name: &account.name,
        role,
        region: &run.region,
        credentials: &credentials,
    };
    let prefix = run.plan.prefix.render(&vars);
    let outcome = match child::run(&argv, &env, &prefix, &run.output, &run.stopper).await {
        Ok(exit) if exit.success() => Outcome::Succeeded,
        Ok(ChildExit::Code(code)) => Outcome::Failed(format!("exit code {code}")),
        Ok(ChildExit::Signal(signal)) => Outcome::Failed(format!("killed by signal {signal}")),
        Err(error) => Outcome::Failed(format!("cannot run {}: {error}", argv[0])),
    };
    (outcome, None)
}

fn failed(run: &Run, error: PortalError) -> Outcome {
    if matches!(error, PortalError::Unauthorized { .. }) {
        run.login_rejected.store(true, Ordering::Relaxed);
    }
    Outcome::Failed(error.to_string())
}
