//! The run itself: accounts stream in from the portal page by page (the inventory cache
//! only adds the roles it knows of the accounts listed), each selected account gets a
//! task as soon as a live slot is free, and each task finds its role, fetches its
//! credentials, waits for a command slot and runs its command.
//!
//! Portal calls are bounded by the portal's slots and rate limiter, commands by `-j`
//! (adapted while the run goes with `-j auto`, see `concurrency/`), and live tasks by
//! both together (see [`AccountTasks`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinSet;

mod account;
mod canary;
mod confirm;
mod ends;
mod listing;

use self::account::{RegionEnd, Target, run_account};
use self::ends::tally_of;
use crate::cache::inventory::{self, InventoryWriter, KnownRoles, RolesCache};
use crate::concurrency::{self, Concurrency, Controller, Gauge, RunSlots, Slots, StartOrder, Ticker};
use crate::config::{Canary, ConfigError, ExportFormat, RunPlan};
use crate::credserver::CredentialServer;
use crate::error::Error;
use crate::events::Event;
use crate::files::Unwritten;
use crate::gate::{Gate, Halt};
use crate::login::SsoLogin;
use crate::plan::PlannedAccount;
use crate::portal::{Account, Portal, validate};
use crate::regions::{RegionLister, Regions};
use crate::reporter::Reporter;
use crate::reporter::ci::Reports;
use crate::reporter::coverage::Coverage;
use crate::reporter::ends::EndSinks;
use crate::reporter::export::ExportSink;
use crate::reporter::summary::Tally;
use crate::select::{AccountList, Selection};
use crate::stop::Stopper;
use crate::text;

/// One of the run's logins: its own portal client (own rate limiter and retry quota:
/// each IAM Identity Center instance is its own service), and how results name it.
pub struct RunLogin {
    /// The session name (`SsoLogin::name`), in results and the summary.
    pub name: String,
    /// `aws sso login --sso-session NAME`, for the fix when its portal rejects the token.
    pub login_command: String,
    pub portal: Arc<Portal>,
    /// Set at a 401 from this login's portal.
    rejected: AtomicBool,
}

impl RunLogin {
    pub fn new(login: &SsoLogin, portal: Arc<Portal>) -> Self {
        RunLogin {
            name: login.name().to_owned(),
            login_command: login.login_command(),
            portal,
            rejected: AtomicBool::new(false),
        }
    }
}

/// What every account task shares.
pub struct Run {
    plan: RunPlan,
    /// The children's `AWS_REGION`, without `--regions`.
    region: String,
    /// With `--regions enabled`: asks each account for its enabled regions.
    region_lister: RegionLister,
    /// Every login, in the order given; `Account::login` indexes it.
    logins: Vec<RunLogin>,
    /// Everything shown goes through it: events, notes, each account's output.
    reporter: Reporter,
    stopper: Stopper,
    /// Set at the first 401 mid-run: every later account would get one too.
    login_rejected: AtomicBool,
    /// Whether accounts may still start (`--max-failures`, a failed canary).
    gate: Gate,
    /// `--credential-server`: it serves the children their credentials; it stops when
    /// the run (its last task) drops it.
    credential_server: Option<CredentialServer>,
    /// `fanout credentials`: where each account's credentials go instead of a command.
    export: Option<ExportSink>,
    /// Commands running and finished, for `-j auto`.
    children: Arc<Gauge>,
    /// At `-j 1`: commands start in selection order; `None` above, where they start as
    /// their credentials arrive.
    start_order: Option<StartOrder>,
}

impl Run {
    /// Fails when the region the children would get (`--region`, else the profile's,
    /// else the `sso_region`; of the first login, with several) is not a region's name:
    /// it goes into their commands.
    pub fn new(
        plan: RunPlan,
        login: &SsoLogin,
        logins: Vec<RunLogin>,
        reporter: Reporter,
        stopper: Stopper,
    ) -> Result<Self, ConfigError> {
        let region = plan.region.clone().or(login.profile_region.clone()).unwrap_or(login.sso_region.clone());
        if !validate::is_region(&region) {
            return Err(ConfigError::BadRegion(region));
        }
        let gate = Gate::new(plan.max_failures);
        let plan_concurrency = plan.concurrency;
        for each in &logins {
            each.portal.report_to(reporter.events());
        }
        Ok(Run {
            plan,
            region,
            region_lister: RegionLister::default(),
            logins,
            reporter,
            stopper,
            login_rejected: AtomicBool::new(false),
            gate,
            credential_server: None,
            export: None,
            children: Arc::new(Gauge::default()),
            start_order: (plan_concurrency == Concurrency::Fixed(1)).then(StartOrder::default),
        })
    }

    /// At `-j 1`: waits until every (account, region) selected before `index` has ended
    /// (or the run is stopping, when nothing is left to start in order).
    async fn turn(&self, index: usize) {
        if let Some(order) = &self.start_order {
            tokio::select! {
                () = order.turn(index) => {}
                () = self.stopper.stopped() => {}
            }
        }
    }

    /// One of the `of` (account, region)s at `index` ended: at `-j 1`, the next may start.
    fn turn_ended(&self, index: usize, of: usize) {
        if let Some(order) = &self.start_order {
            order.ended(index, of);
        }
    }

    /// Halts the run (keeping the first reason), and says so to the reporter.
    fn halt(&self, halt: Halt) {
        if self.gate.halt_with(&halt) {
            self.reporter.emit(Event::Halted(halt));
        }
    }

    /// The portal of the login `account` runs through.
    fn portal(&self, account: &Account) -> &Portal {
        &self.logins[account.login].portal
    }

    /// The name of the login `account` runs through.
    fn login_name(&self, account: &Account) -> &str {
        &self.logins[account.login].name
    }

    /// Marks login `login` as rejected by its portal: no account starts after this
    /// (every later call would be refused too), and the summary names its fix.
    fn reject_login(&self, login: usize) {
        self.logins[login].rejected.store(true, Ordering::Relaxed);
        self.login_rejected.store(true, Ordering::Relaxed);
    }

    /// `--credential-server`: the children get `server`'s URI and a token each, not keys.
    #[must_use]
    pub fn with_credential_server(mut self, server: Option<CredentialServer>) -> Self {
        self.credential_server = server;
        self
    }

    /// The (account, region)s an account selected `index`-th runs in, as far as is known
    /// before its credentials: the run's region, the `--regions` list, or for `--regions
    /// enabled` one placeholder (`enabled`) that its task replaces once it has asked.
    fn targets(&self, index: usize) -> Vec<Target> {
        let regions = match &self.plan.regions {
            None => std::slice::from_ref(&self.region),
            Some(Regions::List(regions)) => &regions[..],
            Some(Regions::Enabled) => &[],
        };
        if regions.is_empty() {
            return vec![Target { region: ENABLED.to_owned(), index, of: 1 }];
        }
        regions
            .iter()
            .enumerate()
            .map(|(i, region)| Target { region: region.clone(), index: index + i, of: 1 })
            .collect()
    }

    /// The run of `fanout credentials`: each account hands its credentials to `sink`.
    #[must_use]
    pub fn with_export(self, sink: ExportSink) -> Self {
        Run { export: Some(sink), ..self }
    }

    pub fn export(&self) -> Option<&ExportSink> {
        self.export.as_ref()
    }

    /// What `fanout credentials` exports, before its sink is opened.
    pub fn export_format(&self) -> Option<ExportFormat> {
        self.plan.export.clone()
    }
}

/// How a run ended, for the summary.
pub struct Finished {
    pub tally: Tally,
    pub roles: Vec<String>,
    pub dry_run: bool,
    /// With `--save-plan`: every account the dry run planned.
    pub planned: Vec<PlannedAccount>,
    /// The CI reports asked for, to be written once the run's totals are known.
    pub reports: Option<Reports>,
    /// The `aws sso login` commands of the logins whose portal rejected the token mid-run.
    pub rejected_logins: Vec<String>,
    /// The files that could not be written (the joblog, then the export and reports
    /// once they are written): each fails the run.
    pub unwritten: Vec<Unwritten>,
}

/// Where the accounts come from: always the portal, page by page, so the cache can
/// never hide an account created or granted since it was written, nor run one removed.
pub struct AccountSource {
    /// Records the accounts for the next run; committed only if the listing completes.
    pub writer: Option<InventoryWriter>,
    /// The roles a fresh inventory cache knows, used for the accounts the portal lists.
    pub cached_roles: RolesCache,
}

/// The region an account's records name under `--regions enabled` when it ended before
/// its regions were known (no role, no credentials, not started, a dry run).
const ENABLED: &str = "enabled";

/// What one account task hands back: how it ended in each of its regions.
struct TaskResult {
    account: Account,
    /// Its roles as known at its end (listed by a dry run, or from the cache), with when
    /// they were listed: the inventory cache keeps them for the next run.
    roles: Option<KnownRoles>,
    ends: Vec<RegionEnd>,
}

/// Runs the command in every selected account; see the module doc. `sources` holds
/// one source a login, in the order of `Run::logins`: they are listed one after the
/// other, so an account more than one login reaches runs through the first, whatever
/// the timing.
pub async fn run_everywhere(
    run: Arc<Run>,
    selection: &Selection,
    sources: Vec<AccountSource>,
) -> Result<Finished, Error> {
    let ends =
        EndSinks::open(&run.plan, tally_of(&run.logins)).map_err(|(path, source)| Error::Write { path, source })?;
    let mut tasks = AccountTasks::new(Arc::clone(&run), selection, ends);
    tasks.ends.tally.coverage = selection.org.facts.is_some().then(|| Coverage::new(run.plan.require_all));
    // Which logins were listed whole: only their inventory is committed.
    let mut listed_whole = vec![false; run.logins.len()];
    for (login, source) in sources.into_iter().enumerate() {
        listed_whole[login] = tasks.list(selection, login, source).await?;
        if !listed_whole[login] {
            break;
        }
    }
    let complete = listed_whole.iter().all(|whole| *whole);
    tasks.ends.tally.listing_stopped =
        !complete && tasks.ends.tally.listing_error.is_none() && !run.login_rejected.load(Ordering::Relaxed);
    run.reporter.emit(Event::ListingComplete);
    tasks.start_held(selection).await?;
    let missing = selection.unmatched_entries(&tasks.listed_seen);
    if let Some(applied) = &run.plan.apply {
        let mut text = String::new();
        for planned in missing.iter().filter_map(|id| applied.by_id.get(id)) {
            let _ = writeln!(
                text,
                "fanout: skipped {} ({}): the portal no longer lists it",
                planned.account_id,
                text::show(&planned.account_name)
            );
        }
        run.reporter.say(text).await;
    } else if !missing.is_empty() {
        let logins = if run.logins.len() > 1 { "these logins reach" } else { "this login reaches" };
        let text = format!("fanout: warning: {logins} no account named {}\n", missing.join(", "));
        run.reporter.say(text).await;
    }
    let AccountTasks { mut ends, writers, ticker, .. } = tasks.finish().await;
    let unwritten = ends.finish_joblog().into_iter().collect();
    let EndSinks { mut tally, reports, plan_table, planned, apply_skips, .. } = ends;
    if let Some(coverage) = &mut tally.coverage {
        coverage.finish(selection, complete);
    }
    tally.concurrency = match (ticker, run.plan.concurrency) {
        (Some(ticker), _) => ticker.stop().await,
        (None, _) if run.plan.dry_run => None,
        (None, concurrency) => {
            let n = concurrency.bound();
            Some(concurrency::Range { low: n, high: n, auto: false })
        }
    };
    if let Some(skips) = apply_skips {
        run.reporter.say(skips.text).await;
    }
    for (writer, whole) in writers.into_iter().zip(listed_whole) {
        inventory::commit(writer.filter(|_| whole));
    }
    tally.login_rejected = run.login_rejected.load(Ordering::Relaxed);
    let counted = run.reporter.counted();
    (tally.halt, tally.throttles, tally.credentials) = (counted.halt, counted.throttles, counted.credentials);
    tally.regions = run.plan.regions.is_some();
    if let Some(table) = plan_table {
        run.reporter.show(table.render(tally.regions)).await;
    }
    if run.plan.dry_run && run.plan.regions == Some(Regions::Enabled) {
        let text = "fanout: dry run: --regions enabled asks each account's Account API with its credentials, which a dry run does not fetch; each account is shown once, in region `enabled`\n";
        run.reporter.say(text.to_owned()).await;
    }
    let rejected_logins = run
        .logins
        .iter()
        .filter(|login| login.rejected.load(Ordering::Relaxed))
        .map(|login| login.login_command.clone())
        .collect();
    Ok(Finished {
        tally,
        roles: run.plan.roles.clone(),
        dry_run: run.plan.dry_run,
        planned: planned.map(|planned| planned.0).unwrap_or_default(),
        reports,
        rejected_logins,
        unwritten,
    })
}

/// The account tasks of a run, and what they have reported so far.
///
/// At most `-j` + `--portal-concurrency` tasks are alive at once: `-j` running commands
/// and as many fetching roles or credentials ahead of a free command slot. So memory is
/// flat in the number of accounts, and no more than that many credential sets exist
/// before their commands start; their one-hour clock starts seconds early, not minutes.
struct AccountTasks {
    run: Arc<Run>,
    live: Arc<Slots>,
    child_slots: Arc<Slots>,
    set: JoinSet<TaskResult>,
    /// Where each (account, region)'s ending goes; its tally is the summary's.
    ends: EndSinks,
    /// Ids and names of the selected accounts, when `--accounts` lists some.
    listed_seen: AccountList,
    /// A login each: records every account for the next run.
    writers: Vec<Option<InventoryWriter>>,
    /// With several logins, every account id listed so far: the login it runs through,
    /// and whether another login's listing of it was counted.
    first_login: Option<HashMap<String, (usize, bool)>>,
    /// The next account's place in the selection (its first region's, with `--regions`).
    next_index: usize,
    /// The roles the inventory cache knows, taken as their accounts are listed.
    cached_roles: RolesCache,
    /// Selected accounts waiting for the whole listing, when `--accounts` names some by
    /// name (only then is it known whether a name is ambiguous) or the canaries are named.
    held: Option<Vec<(Account, Option<KnownRoles>)>>,
    /// Canaries started so far; `None` once they are done, or without canaries.
    canaries: Option<usize>,
    /// With `-j auto`: the task adapting the command slots.
    ticker: Option<Ticker>,
}

impl AccountTasks {
    fn new(run: Arc<Run>, selection: &Selection, ends: EndSinks) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let initial = run.plan.concurrency.initial(cores);
        let portal_slots = run.logins.iter().map(|login| login.portal.max_in_flight()).max().unwrap_or(1);
        let live = Slots::new(initial + portal_slots);
        let child_slots = Slots::new(initial);
        let ticker = match run.plan.concurrency {
            Concurrency::Auto { max } if !run.plan.dry_run => {
                let slots = RunSlots { commands: Arc::clone(&child_slots), live: Arc::clone(&live) };
                Some(concurrency::start(Controller::new(cores, max), slots, Arc::clone(&run.children)))
            }
            _ => None,
        };
        let named_canaries = matches!(run.plan.canary, Some(Canary::Accounts(_)));
        let canaries = run.plan.canary.as_ref().map(|_| 0);
        let run_confirms = run.plan.confirm.is_some();
        let one_account = run.plan.export.as_ref().is_some_and(ExportFormat::needs_one_account);
        let several = run.logins.len() > 1;
        let writers = run.logins.iter().map(|_| None).collect();
        AccountTasks {
            run,
            live,
            child_slots,
            set: JoinSet::new(),
            ends,
            listed_seen: AccountList::default(),
            next_index: 0,
            writers,
            first_login: several.then(HashMap::new),
            cached_roles: RolesCache::default(),
            // A prompt needs the count, known once the listing is complete.
            // `env` and `process` refuse any count but one before fetching anything.
            held: (selection.names_listed() || named_canaries || run_confirms || one_account).then(Vec::new),
            canaries,
            ticker,
        }
    }

    /// Starts `account`'s task once a live slot is free; after a halt, records it as
    /// never started without a task (and so without a portal call).
    async fn start(&mut self, account: Account, roles: Option<KnownRoles>) {
        self.run.reporter.emit(Event::TaskBegun);
        // Selection order, for --keep-order: every index must reach the output's sequencer.
        let targets = self.run.targets(self.next_index);
        self.next_index += targets.len();
        for _ in &targets {
            self.run.gate.on_selected();
        }
        if self.run.gate.is_halted() {
            let result = account::not_started(&self.run, account, roles, targets).await;
            self.record(result);
            return;
        }
        let live = self.live.acquire().await;
        let (run, child_slots) = (Arc::clone(&self.run), Arc::clone(&self.child_slots));
        self.set.spawn(async move {
            let result = run_account(run, child_slots, account, roles, targets).await;
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
}
