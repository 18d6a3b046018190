//! The run itself: accounts stream in (from the inventory cache, or from the portal page
//! by page), each selected account gets a task as soon as a live slot is free, and each
//! task finds its role, fetches its credentials, waits for a command slot and runs its
//! command.
//!
//! Portal calls are bounded by the portal's slots and rate limiter, commands by `-j`,
//! and live tasks by both together (see [`AccountTasks`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::{ConfigError, RunPlan};
use crate::credentials::{self, Credentials};
use crate::error::Error;
use crate::exec::child::{self, ChildExit};
use crate::exec::env::AccountEnv;
use crate::exec::stop::Stopper;
use crate::exec::template::Vars;
use crate::inventory::{self, CachedInventory, InventoryAccount, InventoryWriter};
use crate::login::SsoLogin;
use crate::output::report;
use crate::output::writer::{Output, Stream};
use crate::portal::{Account, Portal, PortalError, validate};
use crate::select::{Selection, candidate_roles};
use crate::summary::{AccountReport, FailureClass, Outcome, Tally};

/// What every account task shares.
pub struct Run {
    plan: RunPlan,
    /// The children's `AWS_REGION`.
    region: String,
    portal: Arc<Portal>,
    output: Output,
    stopper: Stopper,
    /// Set at the first 401 mid-run: every later account would get one too.
    login_rejected: AtomicBool,
}

impl Run {
    /// Fails when the region the children would get (`--region`, else the profile's,
    /// else the `sso_region`) is not a region's name: it goes into their commands.
    pub fn new(
        plan: RunPlan,
        login: &SsoLogin,
        portal: Arc<Portal>,
        output: Output,
        stopper: Stopper,
    ) -> Result<Self, ConfigError> {
        let region = plan.region.clone().or(login.profile_region.clone()).unwrap_or(login.sso_region.clone());
        if !validate::is_region(&region) {
            return Err(ConfigError::BadRegion(region));
        }
        Ok(Run { plan, region, portal, output, stopper, login_rejected: AtomicBool::new(false) })
    }
}

/// How a run ended, for the summary.
pub struct Finished {
    pub tally: Tally,
    pub roles: Vec<String>,
    pub dry_run: bool,
}

/// Where the accounts come from.
pub enum AccountSource<'c> {
    /// A fresh inventory cache.
    Cache(&'c CachedInventory),
    /// The portal, page by page; the writer, when there is one, records them for the
    /// next run and is committed only if the listing completes.
    Portal(Option<InventoryWriter>),
}

/// What one account task hands back.
struct TaskResult {
    account: Account,
    outcome: Outcome,
    plan_line: Option<PlanLine>,
    /// The roles the task listed, for the cache.
    listed_roles: Option<Vec<String>>,
}

/// `(account id, name, role, command)` for the dry-run table.
type PlanLine = (String, String, String, String);

/// Runs the command in every selected account; see the module doc.
pub async fn run_everywhere(
    run: Arc<Run>,
    selection: &Selection,
    source: AccountSource<'_>,
    login: &SsoLogin,
) -> Result<Finished, Error> {
    let mut tasks = AccountTasks::new(Arc::clone(&run), selection);
    let mut complete = false;
    match source {
        AccountSource::Cache(inventory) => {
            // The cache was checked whole when it was opened; a read failing now (the
            // file replaced meanwhile) ends the listing like a portal error would.
            let mut entries = inventory.accounts();
            while !run.stopper.is_stopping() {
                match entries.next() {
                    Some(Ok(entry)) => tasks.add(selection, entry.account, entry.roles).await,
                    Some(Err(error)) => {
                        tasks.tally.listing_error = Some(format!("the inventory cache is unreadable: {error}"));
                        break;
                    }
                    None => {
                        complete = true;
                        break;
                    }
                }
            }
        }
        AccountSource::Portal(writer) => {
            tasks.writer = writer;
            let mut pages = run.portal.account_pages();
            while !run.stopper.is_stopping() {
                match pages.next_page().await {
                    Ok(Some(page)) => {
                        for account in page {
                            tasks.add(selection, account, None).await;
                        }
                    }
                    Ok(None) => {
                        complete = true;
                        break;
                    }
                    Err(PortalError::Cancelled) => break,
                    Err(error) if tasks.tally.selected == 0 => {
                        return Err(Error::from_portal(error, login.login_command()));
                    }
                    Err(error) => {
                        tasks.tally.listing_error = Some(error.to_string());
                        break;
                    }
                }
            }
        }
    }
    tasks.tally.listing_stopped = !complete && tasks.tally.listing_error.is_none();
    tasks.start_held(selection).await?;
    let missing = selection.unmatched_entries(&tasks.listed_seen);
    if !missing.is_empty() {
        let text = format!("fanout: warning: this login reaches no account named {}\n", missing.join(", "));
        run.output.send(Stream::Stderr, text.into_bytes()).await;
    }
    let AccountTasks { mut tally, mut plan_lines, writer, .. } = tasks.finish().await;
    inventory::commit(writer.filter(|_| complete));
    tally.login_rejected = run.login_rejected.load(Ordering::Relaxed);
    if run.plan.dry_run {
        plan_lines.sort();
        let rows = plan_lines.into_iter().map(|(id, name, role, command)| [id, name, role, command]);
        run.output.send(Stream::Stdout, report::table(&["ACCOUNT_ID", "NAME", "ROLE", "COMMAND"], rows)).await;
    }
    Ok(Finished { tally, roles: run.plan.roles.clone(), dry_run: run.plan.dry_run })
}

/// The account tasks of a run, and what they have reported so far.
///
/// At most `-j` + `--portal-concurrency` tasks are alive at once: `-j` running commands
/// and as many fetching roles or credentials ahead of a free command slot. So memory is
/// flat in the number of accounts, and no more than that many credential sets exist
/// before their commands start; their one-hour clock starts seconds early, not minutes.
struct AccountTasks {
    run: Arc<Run>,
    live: Arc<Semaphore>,
    child_slots: Arc<Semaphore>,
    set: JoinSet<TaskResult>,
    tally: Tally,
    /// Ids and names of the selected accounts, when `--accounts` lists some.
    listed_seen: HashSet<String>,
    plan_lines: Vec<PlanLine>,
    /// Records every account for the next run, when the portal is listed.
    writer: Option<InventoryWriter>,
    /// Selected accounts waiting for the whole listing, when `--accounts` names some by
    /// name: only then is it known whether a name is ambiguous.
    held: Option<Vec<(Account, Option<Vec<String>>)>>,
}

impl AccountTasks {
    fn new(run: Arc<Run>, selection: &Selection) -> Self {
        let live = Arc::new(Semaphore::new(run.plan.concurrency + run.portal.max_in_flight()));
        let child_slots = Arc::new(Semaphore::new(run.plan.concurrency));
        AccountTasks {
            run,
            live,
            child_slots,
            set: JoinSet::new(),
            tally: Tally::default(),
            listed_seen: HashSet::new(),
            plan_lines: Vec::new(),
            writer: None,
            held: selection.names_listed().then(Vec::new),
        }
    }

    /// Takes in one listed account: starts its task if the selection wants it, or holds
    /// it until the listing is complete when accounts are selected by name.
    async fn add(&mut self, selection: &Selection, account: Account, roles: Option<Vec<String>>) {
        if !selection.selects(&account) {
            inventory::record(&mut self.writer, &InventoryAccount { account, roles });
            return;
        }
        if selection.listed.is_some() {
            self.listed_seen.extend([account.id.clone(), account.name.clone()]);
        }
        match &mut self.held {
            Some(held) => held.push((account, roles)),
            None => self.start(account, roles).await,
        }
    }

    /// Once the listing is complete: fails if a name given to `--accounts` names two
    /// accounts (which one was meant cannot be known), else starts the held accounts.
    async fn start_held(&mut self, selection: &Selection) -> Result<(), Error> {
        let Some(held) = self.held.take() else { return Ok(()) };
        if let Some((name, ids)) = selection.ambiguous_name(held.iter().map(|(account, _)| account)) {
            return Err(Error::AmbiguousName { name, ids });
        }
        for (account, roles) in held {
            self.start(account, roles).await;
        }
        Ok(())
    }

    /// Starts `account`'s task once a live slot is free.
    async fn start(&mut self, account: Account, roles: Option<Vec<String>>) {
        self.tally.selected += 1;
        let live = Arc::clone(&self.live).acquire_owned().await.expect("the semaphore is never closed");
        let (run, child_slots) = (Arc::clone(&self.run), Arc::clone(&self.child_slots));
        self.set.spawn(async move {
            let result = run_account(run, child_slots, account, roles).await;
            drop(live);
            result
        });
        while let Some(joined) = self.set.try_join_next() {
            self.record(joined.expect("account tasks do not panic"));
        }
    }

    async fn finish(mut self) -> Self {
        while let Some(joined) = self.set.join_next().await {
            self.record(joined.expect("account tasks do not panic"));
        }
        self
    }

    fn record(&mut self, result: TaskResult) {
        self.plan_lines.extend(result.plan_line);
        let TaskResult { account, outcome, listed_roles, .. } = result;
        self.tally.record(AccountReport {
            account_id: account.id.clone(),
            account_name: account.name.clone(),
            outcome,
        });
        inventory::record(&mut self.writer, &InventoryAccount { account, roles: listed_roles });
    }
}

/// One account, start to end. Never fails: every ending is an [`Outcome`].
async fn run_account(
    run: Arc<Run>,
    child_slots: Arc<Semaphore>,
    account: Account,
    known_roles: Option<Vec<String>>,
) -> TaskResult {
    let mut listed_roles = None;
    let mut plan_line = None;
    let outcome = account_outcome(&run, &child_slots, &account, known_roles, &mut listed_roles, &mut plan_line).await;
    tracing::debug!(account = %account.id, ?outcome, "finished");
    TaskResult { account, outcome, plan_line, listed_roles }
}

async fn account_outcome(
    run: &Run,
    child_slots: &Semaphore,
    account: &Account,
    known_roles: Option<Vec<String>>,
    listed_roles: &mut Option<Vec<String>>,
    plan_line: &mut Option<PlanLine>,
) -> Outcome {
    let stopped = || run.stopper.is_stopping() || run.login_rejected.load(Ordering::Relaxed);
    if stopped() {
        return Outcome::NotStarted;
    }
    // A dry run must name the role without fetching credentials, so it lists roles;
    // a real run skips that call and asks for credentials directly (below).
    let known_roles = match known_roles {
        None if run.plan.dry_run => match run.portal.list_roles(&account.id).await {
            Ok(roles) => Some(listed_roles.insert(roles).clone()),
            Err(error) => return failed(run, &error),
        },
        known => known,
    };
    let candidates = candidate_roles(&run.plan.roles, known_roles.as_deref());
    if candidates.is_empty() {
        return Outcome::NoRole;
    }
    if run.plan.dry_run {
        let vars =
            Vars { account_id: &account.id, account_name: &account.name, role: candidates[0], region: &run.region };
        let command = shell_words::join(run.plan.command.render(&vars));
        *plan_line = Some((account.id.clone(), account.name.clone(), candidates[0].to_owned(), command));
        return Outcome::Succeeded;
    }
    // Credentials are fetched while earlier commands run (bounded by the live tasks),
    // so a command slot that frees up is filled without a portal round trip.
    let (role, credentials) = match first_role_with_credentials(run, &account.id, &candidates).await {
        Ok(Some(found)) => found,
        Ok(None) => return Outcome::NoRole,
        Err(error) => return failed(run, &error),
    };
    let _slot = child_slots.acquire().await.expect("the semaphore is never closed");
    if stopped() {
        return Outcome::NotStarted;
    }
    let vars = Vars { account_id: &account.id, account_name: &account.name, role, region: &run.region };
    let argv = run.plan.command.render(&vars);
    let env = AccountEnv {
        account_id: &account.id,
        account_name: &account.name,
        role,
        region: &run.region,
        credentials: &credentials,
    };
    let prefix = report::sanitize(&run.plan.prefix.render(&vars)).into_owned();
    match child::run(&argv, &env, &prefix, &run.output, &run.stopper, run.plan.limits).await {
        Ok(None) => Outcome::NotStarted,
        Ok(Some(exit)) if run.stopper.is_stopping() => Outcome::Interrupted(exit.to_string()),
        Ok(Some(exit)) if exit.success() => Outcome::Succeeded,
        Ok(Some(exit @ ChildExit::Code(_))) => Outcome::Failed { class: FailureClass::Exit, reason: exit.to_string() },
        Ok(Some(exit @ ChildExit::TimedOut { .. })) => {
            Outcome::Failed { class: FailureClass::Timeout, reason: exit.to_string() }
        }
        Ok(Some(exit @ ChildExit::Signal(_))) => {
            Outcome::Failed { class: FailureClass::Signal, reason: exit.to_string() }
        }
        Err(error) => {
            Outcome::Failed { class: FailureClass::Spawn, reason: format!("cannot run {}: {error}", argv[0]) }
        }
    }
}

/// Credentials for the first of `roles` the account has. Asking directly saves the
/// `ListAccountRoles` call: the portal answers 403 `ForbiddenException` for a role the
/// login does not have in the account, which moves on to the next role.
async fn first_role_with_credentials<'r>(
    run: &Run,
    account_id: &str,
    roles: &[&'r str],
) -> Result<Option<(&'r str, Credentials)>, PortalError> {
    for &role in roles {
        match credentials::fetch(&run.portal, account_id, role).await {
            Ok(credentials) => return Ok(Some((role, credentials))),
            Err(error) if error.is_forbidden() => tracing::debug!(account_id, role, "no such role"),
            Err(error) => return Err(error),
        }
    }
    Ok(None)
}

/// The outcome of an account the portal would not give credentials for.
fn failed(run: &Run, error: &PortalError) -> Outcome {
    let class = match error {
        PortalError::Cancelled => return Outcome::NotStarted,
        PortalError::Unauthorized { .. } => {
            run.login_rejected.store(true, Ordering::Relaxed);
            FailureClass::Login
        }
        error if error.is_throttled() => FailureClass::Throttled,
        _ => FailureClass::NoCredentials,
    };
    Outcome::Failed { class, reason: error.to_string() }
}
