//! One account, start to end: its role, its credentials, a command slot, its command,
//! and the record of how it ended. Never fails: every ending is an [`Outcome`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Run, TaskResult};
use crate::credentials::{self, Credentials};
use crate::exec::child::{self, ChildExit};
use crate::exec::env::AccountEnv;
use crate::exec::template::Vars;
use crate::output::json::{self, AccountFields, ResultRecord};
use crate::output::lines::LineFormat;
use crate::output::report;
use crate::output::sink::{AccountOutput, Streams};
use crate::output::writer::Stream;
use crate::portal::{Account, PortalError};
use crate::select::candidate_roles;
use crate::summary::{FailureClass, Outcome};

/// What one account's task found out on its way, beside its outcome.
#[derive(Debug, Default)]
pub struct Trace {
    /// The roles it listed (a dry run does), for the inventory cache.
    pub listed_roles: Option<Vec<String>>,
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
    /// Its command slot, held until its failure (if any) is counted, so that no other
    /// account takes the slot before a `--fail-fast` halt is known.
    slot: Option<OwnedSemaphorePermit>,
}

pub async fn run_account(
    run: Arc<Run>,
    child_slots: Arc<Semaphore>,
    account: Account,
    known_roles: Option<Vec<String>>,
    index: usize,
) -> TaskResult {
    let started = Instant::now();
    let mut trace = Trace { began: Some(SystemTime::now()), ..Trace::default() };
    let mut sink = run.outputs.account(index, &account.id);
    let outcome = account_outcome(&run, &child_slots, &account, known_roles, &mut trace, &mut sink).await;
    if matches!(outcome, Outcome::Failed { .. }) {
        run.gate.on_failure();
    }
    drop(trace.slot.take());
    run.progress.on_finished(matches!(outcome, Outcome::Failed { .. } | Outcome::Interrupted(_)));
    tracing::debug!(account = %account.id, ?outcome, "finished");
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    trace.ended = Some(SystemTime::now());
    trace.stderr_tail = sink.stderr_tail();
    send_result(&run, &mut sink, &account, &outcome, &trace, duration_ms).await;
    sink.close().await;
    TaskResult { account, outcome, trace }
}

/// An account a halted run never started, selected `index`-th: its ending, without a task.
pub async fn not_started(run: &Run, account: Account, index: usize) -> TaskResult {
    let (outcome, trace) = (Outcome::NotStarted, Trace::default());
    run.progress.on_finished(false);
    let mut sink = run.outputs.account(index, &account.id);
    send_result(run, &mut sink, &account, &outcome, &trace, 0).await;
    sink.close().await;
    TaskResult { account, outcome, trace }
}

/// The account's `result` record: on stdout with `--output json`, in `results.jsonl`
/// with `--output-dir`.
async fn send_result(
    run: &Run,
    sink: &mut AccountOutput,
    account: &Account,
    outcome: &Outcome,
    trace: &Trace,
    duration_ms: u64,
) {
    if !run.plan.json && run.outputs.dir.is_none() {
        return;
    }
    let record = result_record(run, account, outcome, trace, duration_ms).to_line();
    if let Some(dir) = &run.outputs.dir {
        dir.write_record(&record);
    }
    if run.plan.json {
        sink.record(Stream::Stdout, record).await;
    }
}

/// The `result` record of `--output json`.
fn result_record<'a>(
    run: &'a Run,
    account: &'a Account,
    outcome: &Outcome,
    trace: &'a Trace,
    duration_ms: u64,
) -> ResultRecord<'a> {
    ResultRecord {
        version: json::VERSION,
        kind: "result",
        account_id: &account.id,
        account_name: &account.name,
        login: run.login_name(account),
        role: trace.role.as_deref(),
        region: &run.region,
        status: outcome.status(run.plan.dry_run),
        class: outcome.class().map(FailureClass::name),
        exit_code: trace.exit.as_ref().and_then(ChildExit::code),
        signal: trace.exit.as_ref().and_then(ChildExit::signal),
        duration_ms,
        error: outcome.error().map(str::to_owned),
        argv: trace.argv.as_deref().filter(|_| run.plan.dry_run),
    }
}

async fn account_outcome(
    run: &Run,
    child_slots: &Arc<Semaphore>,
    account: &Account,
    known_roles: Option<Vec<String>>,
    trace: &mut Trace,
    sink: &mut AccountOutput,
) -> Outcome {
    let stopped = || run.stopper.is_stopping() || run.login_rejected.load(Ordering::Relaxed) || run.gate.is_halted();
    if stopped() {
        return Outcome::NotStarted;
    }
    // A dry run must name the role without fetching credentials, so it lists roles;
    // a real run skips that call and asks for credentials directly (below).
    let known_roles = match known_roles {
        None if run.plan.dry_run => match run.portal(account).list_roles(&account.id).await {
            Ok(roles) => Some(trace.listed_roles.insert(roles).clone()),
            Err(error) => return failed(run, account, &error),
        },
        known => known,
    };
    // `fanout apply`: the plan's role and argv for this account, never re-rendered.
    let saved = run.plan.apply.as_ref().and_then(|applied| applied.by_id.get(&account.id));
    // The saved argv may refer to $FANOUT_ACCOUNT_NAME: it keeps the name it was planned
    // with, even if the account was renamed since.
    let account_name = saved.map_or(account.name.as_str(), |saved| saved.account_name.as_str());
    let wanted = saved.map_or(&run.plan.roles[..], |saved| std::slice::from_ref(&saved.role));
    let candidates = candidate_roles(wanted, known_roles.as_deref());
    if candidates.is_empty() {
        return Outcome::NoRole;
    }
    if run.plan.dry_run {
        let vars = Vars { account_id: &account.id, account_name, role: candidates[0], region: &run.region };
        trace.role = Some(candidates[0].to_owned());
        trace.argv = Some(saved.map_or_else(|| run.plan.command.render(&vars), |saved| saved.argv.clone()));
        return Outcome::Succeeded;
    }
    // Credentials are fetched while earlier commands run (bounded by the live tasks),
    // so a command slot that frees up is filled without a portal round trip.
    let roles_known = known_roles.is_some();
    let (role, credentials) = match first_role_with_credentials(run, account, &candidates).await {
        Ok(Some(found)) => found,
        // The account lists the role (inventory cache), yet the portal refuses it: that
        // is a denial to report, not an account to skip.
        Ok(None) if roles_known => {
            let reason = format!("the portal refused credentials for {} (HTTP 403)", candidates.join(" and "));
            return Outcome::Failed { class: FailureClass::Denied, reason };
        }
        Ok(None) => return Outcome::NoRole,
        Err(error) => return failed(run, account, &error),
    };
    trace.credentials_at = Some(SystemTime::now());
    trace.slot = Some(Arc::clone(child_slots).acquire_owned().await.expect("the semaphore is never closed"));
    if stopped() {
        return Outcome::NotStarted;
    }
    trace.role = Some(role.to_owned());
    let vars = Vars { account_id: &account.id, account_name, role, region: &run.region };
    let argv = trace.argv.insert(saved.map_or_else(|| run.plan.command.render(&vars), |saved| saved.argv.clone()));
    let env =
        AccountEnv { account_id: &account.id, account_name, role, region: &run.region, credentials: &credentials };
    sink.start_command(streams(run, &vars));
    trace.started = Some(SystemTime::now());
    let command_start = Instant::now();
    let running = run.progress.on_started();
    let ended = child::run(argv, &env, sink, &run.stopper, run.plan.limits).await;
    drop(running);
    trace.runtime = command_start.elapsed();
    match ended {
        Ok(None) => Outcome::NotStarted,
        Ok(Some(exit)) => {
            let outcome = match exit {
                _ if run.stopper.is_stopping() => Outcome::Interrupted(exit.to_string()),
                _ if exit.success() => Outcome::Succeeded,
                ChildExit::Code(_) => Outcome::Failed { class: FailureClass::Exit, reason: exit.to_string() },
                ChildExit::Signal(_) => Outcome::Failed { class: FailureClass::Signal, reason: exit.to_string() },
                ChildExit::TimedOut { .. } => {
                    Outcome::Failed { class: FailureClass::Timeout, reason: exit.to_string() }
                }
            };
            trace.exit = Some(exit);
            outcome
        }
        Err(error) => {
            Outcome::Failed { class: FailureClass::Spawn, reason: format!("cannot run {}: {error}", argv[0]) }
        }
    }
}

/// Where the command's lines go: `prefix|line` on stdout and stderr, or with `--output
/// json` line records on stdout.
fn streams(run: &Run, vars: &Vars<'_>) -> Streams {
    if run.plan.json {
        let fields = AccountFields {
            account_id: vars.account_id,
            account_name: vars.account_name,
            role: vars.role,
            region: vars.region,
        };
        let format = |stream| LineFormat::Json(json::line_record_head(fields, stream));
        return Streams {
            stdout: (format(Stream::Stdout), Stream::Stdout),
            stderr: (format(Stream::Stderr), Stream::Stdout),
        };
    }
    // Control characters of a name are escaped: a name cannot forge a line.
    let prefix = report::sanitize(&run.plan.prefix.render(vars)).into_owned();
    Streams {
        stdout: (LineFormat::prefixed(&prefix), Stream::Stdout),
        stderr: (LineFormat::prefixed(&prefix), Stream::Stderr),
    }
}

/// Credentials for the first of `roles` the account has. Asking directly saves the
/// `ListAccountRoles` call: the portal answers 403 `ForbiddenException` for a role the
/// login does not have in the account, which moves on to the next role.
async fn first_role_with_credentials<'r>(
    run: &Run,
    account: &Account,
    roles: &[&'r str],
) -> Result<Option<(&'r str, Credentials)>, PortalError> {
    let account_id = account.id.as_str();
    for &role in roles {
        match credentials::fetch(run.portal(account), account_id, role).await {
            Ok(credentials) => return Ok(Some((role, credentials))),
            Err(error) if error.is_forbidden() => tracing::debug!(account_id, role, "no such role"),
            Err(error) => return Err(error),
        }
    }
    Ok(None)
}

/// The outcome of an account its login's portal would not give credentials for.
fn failed(run: &Run, account: &Account, error: &PortalError) -> Outcome {
    let class = match error {
        PortalError::Cancelled => return Outcome::NotStarted,
        PortalError::Unauthorized { .. } => {
            run.reject_login(account.login);
            FailureClass::Login
        }
        error if error.is_throttled() => FailureClass::Throttled,
        _ => FailureClass::NoCredentials,
    };
    Outcome::Failed { class, reason: error.to_string() }
}
