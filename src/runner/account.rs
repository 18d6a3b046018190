//! One account, start to end: its role, its credentials (once), then in each of its
//! regions a command slot, its command, and the record of how it ended. Never fails:
//! every ending is an [`Outcome`].

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use tokio::task::JoinSet;

use super::{Run, TaskResult};
use crate::cache::inventory::{self, KnownRoles};
use crate::concurrency::{Slot, Slots};
use crate::config::RunPlan;
use crate::credentials::{self, Credentials};
use crate::events::{Ended, Event};
use crate::exec::child;
use crate::exec::env::{AccountEnv, ChildCredentials};
use crate::outcome::{ChildExit, FailureClass, Outcome, Trace};
use crate::portal::{Account, PortalError};
use crate::regions::{self, Enabled, Regions};
use crate::reporter::account_output::{AccountOutput, Streams};
use crate::reporter::json::AccountFields;
use crate::select::candidate_roles;
use crate::template::Vars;
use crate::text;

/// One (account, region): what a child, a `result` record, a joblog line, a report
/// entry and a count in the summary are for. Without `--regions` an account has one,
/// in the run's region.
#[derive(Clone, Debug)]
pub struct Target {
    pub region: String,
    /// Its place in the selection, for `--keep-order` and the start order at `-j 1`.
    pub index: usize,
    /// How many targets share `index`: one, or an account's regions with `--regions
    /// enabled` (all of which end before the next index starts at `-j 1`).
    pub of: usize,
}

/// How one (account, region) ended.
pub struct RegionEnd {
    pub region: String,
    /// Its place in the selection ([`Target::index`]), the order a dry run prints in.
    pub index: usize,
    pub outcome: Outcome,
    pub trace: Trace,
}

impl RegionEnd {
    /// The ending as the reporter's sinks take it.
    pub fn ended<'a>(&'a self, account: &'a Account, plan: &RunPlan) -> Ended<'a> {
        Ended {
            account_id: &account.id,
            account_name: &account.name,
            org: account.org.as_deref(),
            region: plan.regions.as_ref().map(|_| self.region.as_str()),
            child_region: &self.region,
            index: self.index,
            outcome: &self.outcome,
            trace: &self.trace,
            dry_run: plan.dry_run,
        }
    }
}

/// What an account's regions share once its role and credentials are found: the
/// credentials are fetched once per account, however many regions it runs in.
struct Ready {
    role: String,
    /// `None` in a dry run, which fetches none.
    credentials: Option<Credentials>,
    /// The name its commands see (a plan's, under `fanout apply`).
    account_name: String,
    /// The OU path its commands see (`FANOUT_OU_PATH`, `{ou_path}`): the plan's under
    /// `fanout apply`, else the organization's; empty when neither says.
    ou_path: String,
    /// Under `fanout apply`: the plan's argv, never re-rendered.
    saved_argv: Option<Vec<String>>,
    began: SystemTime,
    credentials_at: Option<SystemTime>,
}

/// One account's task: its role and credentials once, then its command in each of
/// `targets` (with `--regions enabled`, in each region it has enabled, asked now).
pub async fn run_account(
    run: Arc<Run>,
    child_slots: Arc<Slots>,
    account: Account,
    known_roles: Option<KnownRoles>,
    targets: Vec<Target>,
) -> TaskResult {
    let began = SystemTime::now();
    let mut roles = None;
    let ends = match prepare(&run, &account, known_roles, &mut roles, began).await {
        Ok(ready) if run.export().is_some() => export(&run, &account, &ready, targets).await,
        Ok(ready) => {
            let targets = resolve_targets(&run, &account, &ready, targets).await;
            run_regions(&run, &child_slots, &account, ready, targets).await
        }
        Err(outcome) => {
            let trace = || Trace { began: Some(began), ..Trace::default() };
            ends_without_child(&run, &account, targets, &outcome, trace).await
        }
    };
    let failed = ends.iter().any(|end| matches!(end.outcome, Outcome::Failed { .. } | Outcome::Interrupted(_)));
    run.reporter.emit(Event::TaskEnded { failed });
    TaskResult { account, roles, ends }
}

/// An account a halted run never started: its ending in each of `targets`, without a
/// task (and so without a portal call). Its cached roles, if any, stay known for the
/// next run.
pub async fn not_started(run: &Run, account: Account, roles: Option<KnownRoles>, targets: Vec<Target>) -> TaskResult {
    let ends = ends_without_child(run, &account, targets, &Outcome::NotStarted, Trace::default).await;
    run.reporter.emit(Event::TaskEnded { failed: false });
    TaskResult { account, roles, ends }
}

/// `fanout credentials`: the account's credentials go to the export, not to a command.
async fn export(run: &Run, account: &Account, ready: &Ready, targets: Vec<Target>) -> Vec<RegionEnd> {
    if let (Some(export), Some(credentials)) = (run.export(), &ready.credentials) {
        let index = targets.first().map_or(0, |target| target.index);
        export.hand(index, account, &ready.role, credentials.clone()).await;
    }
    let trace = || Trace {
        began: Some(ready.began),
        credentials_at: ready.credentials_at,
        role: Some(ready.role.clone()),
        ..Trace::default()
    };
    ends_without_child(run, account, targets, &Outcome::Succeeded, trace).await
}

/// With `--regions enabled`: the account's enabled regions, asked with its own
/// credentials, replace the one placeholder target; a role that may not ask gets the
/// default-enabled regions and a warning naming the account. A dry run cannot ask.
async fn resolve_targets(run: &Run, account: &Account, ready: &Ready, targets: Vec<Target>) -> Vec<Target> {
    let (Some(Regions::Enabled), Some(credentials)) = (&run.plan.regions, &ready.credentials) else {
        return targets;
    };
    let index = targets.first().map_or(0, |t| t.index);
    let regions::Answer { enabled, warnings } = run.region_lister.enabled(credentials).await;
    for warning in warnings {
        let text = format!("fanout: warning: {} ({}): {warning}\n", account.id, text::show(&account.name));
        run.reporter.say(text).await;
    }
    if let Enabled::Default(reason) = &enabled {
        let text = format!(
            "fanout: warning: {} ({}): cannot list its enabled regions ({}); running in the {} regions enabled by default\n",
            account.id,
            text::show(&account.name),
            text::show_at_most(reason, text::MAX_LINE),
            regions::DEFAULT_ENABLED.len()
        );
        run.reporter.say(text).await;
    }
    let regions = enabled.regions();
    // The placeholder was counted when the account was selected; the rest count now.
    for _ in 1..regions.len() {
        run.gate.on_selected();
    }
    if regions.is_empty() {
        // No target will end at this index: its turn must not wait for one.
        run.turn_ended(index, 1);
    }
    let of = regions.len();
    regions.into_iter().map(|region| Target { region, index, of }).collect()
}

/// Runs the account's command in each target at once: each child waits for its own
/// command slot, so `-j` bounds children across accounts and regions together.
async fn run_regions(
    run: &Arc<Run>,
    child_slots: &Arc<Slots>,
    account: &Account,
    ready: Ready,
    targets: Vec<Target>,
) -> Vec<RegionEnd> {
    let (account, ready) = (Arc::new(account.clone()), Arc::new(ready));
    let mut set = JoinSet::new();
    for (order, target) in targets.into_iter().enumerate() {
        let (run, child_slots, account, ready) =
            (Arc::clone(run), Arc::clone(child_slots), Arc::clone(&account), Arc::clone(&ready));
        set.spawn(async move { (order, run_region(&run, &child_slots, &account, &ready, target).await) });
    }
    let mut ends = Vec::new();
    while let Some(joined) = set.join_next().await {
        ends.push(joined.expect("region tasks do not panic"));
    }
    ends.sort_by_key(|(order, _)| *order);
    ends.into_iter().map(|(_, end)| end).collect()
}

/// One (account, region): its command, and the record of how it ended.
async fn run_region(
    run: &Run,
    child_slots: &Arc<Slots>,
    account: &Account,
    ready: &Ready,
    target: Target,
) -> RegionEnd {
    let mut trace = Trace { began: Some(ready.began), credentials_at: ready.credentials_at, ..Trace::default() };
    run.turn(target.index).await;
    let mut sink = run.reporter.account(target.index, &output_key(run, account, &target.region));
    let (outcome, slot) = region_outcome(run, child_slots, account, ready, &target.region, &mut trace, &mut sink).await;
    let end = finish(run, account, target, outcome, trace, sink).await;
    drop(slot);
    end
}

/// The (account, region)s that ended before their command, each with `outcome`: their
/// result records all the same.
async fn ends_without_child(
    run: &Run,
    account: &Account,
    targets: Vec<Target>,
    outcome: &Outcome,
    trace: impl Fn() -> Trace,
) -> Vec<RegionEnd> {
    let mut ends = Vec::with_capacity(targets.len());
    for target in targets {
        run.turn(target.index).await;
        let sink = run.reporter.account(target.index, &output_key(run, account, &target.region));
        ends.push(finish(run, account, target, outcome.clone(), trace(), sink).await);
    }
    ends
}

/// Counts a failure (halting the run at `--max-failures`), sends the `result` record and
/// closes the output. The caller gives up the command slot only after this, so that no
/// other account takes the slot before a `--fail-fast` halt is known.
async fn finish(
    run: &Run,
    account: &Account,
    target: Target,
    outcome: Outcome,
    mut trace: Trace,
    mut sink: AccountOutput,
) -> RegionEnd {
    if let Some(halt) = matches!(outcome, Outcome::Failed { .. }).then(|| run.gate.on_failure()).flatten() {
        run.reporter.emit(Event::Halted(halt));
    }
    run.turn_ended(target.index, target.of);
    tracing::debug!(account = %account.id, region = %target.region, ?outcome, "finished");
    let ended = SystemTime::now();
    let since = trace.began.and_then(|began| ended.duration_since(began).ok()).unwrap_or_default();
    let duration_ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
    trace.ended = Some(ended);
    trace.stderr_tail = sink.stderr_tail();
    let end = RegionEnd { region: target.region, index: target.index, outcome, trace };
    run.reporter.account_ended(&mut sink, &end.ended(account, &run.plan), run.login_name(account), duration_ms).await;
    sink.close().await;
    end
}

/// What names an (account, region)'s files under `--output-dir`: the account id, or
/// `<id>-<region>` with `--regions` (both are validated, so it is a safe name).
fn output_key(run: &Run, account: &Account, region: &str) -> String {
    if run.plan.regions.is_some() { format!("{}-{region}", account.id) } else { account.id.clone() }
}

/// The account's role and credentials, or how it ended without them.
async fn prepare(
    run: &Run,
    account: &Account,
    known_roles: Option<KnownRoles>,
    roles: &mut Option<KnownRoles>,
    began: SystemTime,
) -> Result<Ready, Outcome> {
    let stopped = || run.stopper.is_stopping() || run.login_rejected.load(Ordering::Relaxed) || run.gate.is_halted();
    roles.clone_from(&known_roles);
    if stopped() {
        return Err(Outcome::NotStarted);
    }
    // A dry run must name the role without fetching credentials, so it lists roles;
    // a real run skips that call and asks for credentials directly (below).
    let known_roles = match known_roles {
        None if run.plan.dry_run => match run.portal(account).list_roles(&account.id).await {
            Ok(listed) => Some(roles.insert(KnownRoles::listed_now(listed)).clone()),
            Err(error) => return Err(failed(run, account, &error)),
        },
        known => known,
    };
    // `fanout apply`: the plan's role and argv for this account, never re-rendered.
    let saved = run.plan.apply.as_ref().and_then(|applied| applied.by_id.get(&account.id));
    // The saved argv may refer to $FANOUT_ACCOUNT_NAME: it keeps the name it was planned
    // with, even if the account was renamed since.
    let account_name = saved.map_or(account.name.as_str(), |saved| saved.account_name.as_str()).to_owned();
    let ou_path = match saved {
        Some(saved) => saved.ou_path.clone().unwrap_or_default(),
        None => account.org.as_ref().map(|org| org.ou_path()).unwrap_or_default(),
    };
    let saved_argv = saved.map(|saved| saved.argv.clone());
    let wanted = saved.map_or(&run.plan.roles[..], |saved| std::slice::from_ref(&saved.role));
    let candidates = candidate_roles(wanted, known_roles.as_ref().map(|known| &known.roles[..]));
    if candidates.is_empty() {
        return Err(no_role(wanted, known_roles.as_ref()));
    }
    if run.plan.dry_run {
        let role = candidates[0].to_owned();
        return Ok(Ready { role, credentials: None, account_name, ou_path, saved_argv, began, credentials_at: None });
    }
    // Credentials are fetched while earlier commands run (bounded by the live tasks),
    // so a command slot that frees up is filled without a portal round trip.
    let roles_known = known_roles.is_some();
    let (role, credentials) = match first_role_with_credentials(run, account, &candidates).await {
        Ok(Some(found)) => found,
        // The account lists the role (inventory cache), yet the portal refuses it: that
        // is a denial to report, not an account to skip.
        Ok(None) if roles_known => {
            // The roles known are not the portal's any more: the next run asks again.
            *roles = None;
            let reason = format!("the portal refused credentials for {} (HTTP 403)", candidates.join(" and "));
            return Err(Outcome::Failed { class: FailureClass::Denied, reason });
        }
        Ok(None) => return Err(Outcome::NoRole { reason: None }),
        Err(error) => return Err(failed(run, account, &error)),
    };
    run.reporter.emit(Event::CredentialsFetched);
    Ok(Ready {
        role: role.to_owned(),
        credentials: Some(credentials),
        account_name,
        ou_path,
        saved_argv,
        began,
        credentials_at: Some(SystemTime::now()),
    })
}

/// The command in one region, once a command slot is free, with the slot it held; a dry
/// run only renders it.
async fn region_outcome(
    run: &Run,
    child_slots: &Arc<Slots>,
    account: &Account,
    ready: &Ready,
    region: &str,
    trace: &mut Trace,
    sink: &mut AccountOutput,
) -> (Outcome, Option<Slot>) {
    let Some(credentials) = &ready.credentials else {
        trace.role = Some(ready.role.clone());
        trace.argv = Some(render(run, account, ready, region));
        return (Outcome::Succeeded, None);
    };
    let slot = child_slots.acquire().await;
    let outcome = command_outcome(run, account, ready, region, credentials, trace, sink).await;
    (outcome, Some(slot))
}

/// The argv of `account`'s command in `region`: the plan's, under `fanout apply`.
fn render(run: &Run, account: &Account, ready: &Ready, region: &str) -> Vec<String> {
    let vars = Vars {
        account_id: &account.id,
        account_name: &ready.account_name,
        role: &ready.role,
        region,
        ou_path: &ready.ou_path,
    };
    ready.saved_argv.clone().unwrap_or_else(|| run.plan.command.render(&vars))
}

/// The command in one region, its slot held.
async fn command_outcome(
    run: &Run,
    account: &Account,
    ready: &Ready,
    region: &str,
    credentials: &Credentials,
    trace: &mut Trace,
    sink: &mut AccountOutput,
) -> Outcome {
    let (role, account_name) = (ready.role.as_str(), ready.account_name.as_str());
    let ou_path = ready.ou_path.as_str();
    let vars = Vars { account_id: &account.id, account_name, role, region, ou_path };
    if run.stopper.is_stopping() || run.login_rejected.load(Ordering::Relaxed) || run.gate.is_halted() {
        return Outcome::NotStarted;
    }
    let credentials = match fresh_enough(run, account, role, credentials).await {
        Ok(credentials) => credentials,
        Err(error) => return failed(run, account, &error),
    };
    trace.role = Some(role.to_owned());
    let argv = trace.argv.insert(render(run, account, ready, region));
    // With the credential server the child gets a token, forgotten when it ends (the
    // access is dropped with this function), instead of the keys.
    let mut access = None;
    let credentials = match &run.credential_server {
        Some(server) => match server.admit(&account.id, role, &credentials, account.login) {
            Ok(granted) => ChildCredentials::Server(access.insert(granted)),
            Err(error) => {
                let reason = format!("cannot make a credential server token: {error}");
                return Outcome::Failed { class: FailureClass::Spawn, reason };
            }
        },
        None => ChildCredentials::Keys(&credentials),
    };
    let env = AccountEnv { account_id: &account.id, account_name, role, region, ou_path, credentials };
    sink.start_command(streams(run, &vars));
    trace.started = Some(SystemTime::now());
    let command_start = Instant::now();
    let running = (run.reporter.command_started(), run.children.start());
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

/// The skip of an account that has none of the `wanted` roles. When that was decided
/// from cached roles it says so, and how old they are: the account may have been granted
/// the role since, and the user must not take the skip for the portal's word.
fn no_role(wanted: &[String], known: Option<&KnownRoles>) -> Outcome {
    let reason = known.filter(|known| known.from_cache).map(|known| {
        format!(
            "no role {}, as cached {}; --refresh asks again",
            wanted.join(" or "),
            text::ago(known.age(inventory::now_secs()))
        )
    });
    Outcome::NoRole { reason }
}

/// Where the command's lines go, with what names them.
fn streams(run: &Run, vars: &Vars<'_>) -> Streams {
    let fields = AccountFields {
        account_id: vars.account_id,
        account_name: vars.account_name,
        role: vars.role,
        region: vars.region,
    };
    run.reporter.streams(fields, &run.plan.prefix.render(vars))
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

/// `credentials`, or new ones if they expire within `--expiry-margin` now that the
/// command slot is free: fetched while earlier commands ran, they may have aged for as
/// long as those commands took. Fetched again at most once (a session shorter than the
/// margin cannot do better), so the child's `AWS_CREDENTIAL_EXPIRATION` is that of the
/// credentials it gets.
async fn fresh_enough<'c>(
    run: &Run,
    account: &Account,
    role: &str,
    credentials: &'c Credentials,
) -> Result<Cow<'c, Credentials>, PortalError> {
    if !credentials.expire_within(run.plan.expiry_margin, SystemTime::now()) {
        return Ok(Cow::Borrowed(credentials));
    }
    let account_id = account.id.as_str();
    tracing::info!(account_id, role, expiration = %credentials.expiration, "credentials expire within --expiry-margin; fetching them again");
    credentials::fetch(run.portal(account), account_id, role).await.map(Cow::Owned)
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
