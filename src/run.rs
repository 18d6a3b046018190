//! The flow, stage by stage: login → token → portal → select → credentials → command
//! → summary. Each stage lives in its own module; this one only wires them together.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sso::primitives::DateTime;
use tokio::task::JoinSet;

use crate::config::{Action, Config, ListFormat};
use crate::error::Error;
use crate::exec::stop::Stopper;
use crate::inventory::{self, Inventory, InventoryAccount};
use crate::login::{SsoLogin, load_profiles, resolve_login};
use crate::output::report::{self, AccountRoles};
use crate::output::writer::{self, Output, Stream, WriterEnd};
use crate::pipeline::{self, Finished, Run};
use crate::portal::{Portal, PortalLimits, RetryPolicy};
use crate::summary::plural;
use crate::{exit_code, token};

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
    let cache = InventoryCache::open(&config, &login);
    let stopper = Stopper::for_current_runtime();
    stopper.listen_for_signals().map_err(|source| Error::Io { context: "cannot listen for signals", source })?;
    let (output, writer) = {
        let stopper = stopper.clone();
        writer::start(config.stdout_is_terminal, move || stopper.stop(libc::SIGTERM))
    };
    let started = Instant::now();
    let result = match config.action {
        Action::ListAccounts(format) => list_accounts(&portal, &config, format, &output, &login, &cache).await,
        Action::Run(plan) => {
            let dry_run = plan.dry_run;
            if dry_run || config.verbosity > 0 {
                output.send(Stream::Stderr, cache.describe().into_bytes()).await;
            }
            let run = Arc::new(Run::new(plan, &login, Arc::clone(&portal), output.clone(), stopper.clone()));
            let finished = pipeline::run_everywhere(run, &config.selection, cache.fresh.as_ref(), &login).await;
            if let Ok(Finished { fresh_inventory: Some(inventory), .. }) = &finished {
                cache.store(inventory);
            }
            finished.map(Some)
        }
    };
    drop(output);
    let stdout_closed = writer.finish() == WriterEnd::StdoutClosed;
    let Some(Finished { mut tally, dry_run, roles, .. }) = result? else {
        return Ok(exit_code::SUCCESS);
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

/// The inventory cache for this login: what it holds, if fresh and wanted.
struct InventoryCache {
    path: Option<std::path::PathBuf>,
    fresh: Option<Inventory>,
    age: Duration,
}

impl InventoryCache {
    fn open(config: &Config, login: &SsoLogin) -> Self {
        let path = (!config.inventory_ttl.is_zero()).then(|| inventory::cache_path(&config.cache_dir, login));
        let loaded = path
            .as_deref()
            .filter(|_| !config.refresh)
            .and_then(|p| inventory::load(p, login, now_secs(), config.inventory_ttl));
        let (fresh, age) = loaded.map_or((None, Duration::ZERO), |(inventory, age)| (Some(inventory), age));
        InventoryCache { path, fresh, age }
    }

    /// One line for stderr: where the account list came from.
    fn describe(&self) -> String {
        match (&self.fresh, &self.path) {
            (Some(inventory), Some(path)) => format!(
                "fanout: inventory from cache ({}, {} old, {}); --refresh lists again\n",
                plural(inventory.accounts.len(), "account"),
                humanize(self.age),
                path.display()
            ),
            _ => "fanout: inventory listed from the portal\n".to_owned(),
        }
    }

    fn store(&self, inventory: &Inventory) {
        let Some(path) = &self.path else { return };
        if let Err(error) = inventory::store(path, inventory) {
            tracing::warn!("cannot write the inventory cache {}: {error}", path.display());
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn humanize(age: Duration) -> String {
    match age.as_secs() {
        s if s < 120 => format!("{s}s"),
        s => format!("{}m", s / 60),
    }
}

/// `fanout accounts`: every selected account with its roles, sorted by id, from the
/// cache when it knows every selected account's roles, else from the portal.
async fn list_accounts(
    portal: &Arc<Portal>,
    config: &Config,
    format: ListFormat,
    output: &Output,
    login: &SsoLogin,
    cache: &InventoryCache,
) -> Result<Option<Finished>, Error> {
    let selection = &config.selection;
    let cached = cache.fresh.as_ref().and_then(|inventory| {
        let selected = inventory.accounts.iter().filter(|a| selection.selects(&a.account));
        selected.map(|a| a.roles.clone().map(|roles| AccountRoles { account: a.account.clone(), roles })).collect()
    });
    let mut accounts: Vec<AccountRoles> = if let Some(accounts) = cached {
        if config.verbosity > 0 {
            output.send(Stream::Stderr, cache.describe().into_bytes()).await;
        }
        accounts
    } else {
        let accounts = list_from_portal(portal, config, login).await?;
        cache.store(&Inventory {
            start_url: login.start_url.clone(),
            written_at: now_secs(),
            accounts: accounts
                .iter()
                .map(|(account, roles)| InventoryAccount { account: account.clone(), roles: roles.clone() })
                .collect(),
        });
        accounts.into_iter().filter_map(|(account, roles)| roles.map(|roles| AccountRoles { account, roles })).collect()
    };
    accounts.sort_by(|a, b| a.account.id.cmp(&b.account.id));
    let text = match format {
        ListFormat::Table => report::accounts_table(&accounts),
        ListFormat::Json => report::accounts_json(&accounts),
    };
    output.send(Stream::Stdout, text).await;
    Ok(None)
}

/// Every account, with its roles listed where it is selected.
async fn list_from_portal(
    portal: &Arc<Portal>,
    config: &Config,
    login: &SsoLogin,
) -> Result<Vec<(crate::portal::Account, Option<Vec<String>>)>, Error> {
    let mut lookups = JoinSet::new();
    let mut unselected = Vec::new();
    let mut pages = portal.account_pages();
    while let Some(page) = pages.next_page().await.map_err(|e| Error::from_portal(e, login.login_command()))? {
        for account in page {
            if !config.selection.selects(&account) {
                unselected.push((account, None));
                continue;
            }
            let portal = Arc::clone(portal);
            lookups.spawn(async move {
                let mut roles = portal.list_roles(&account.id).await?;
                roles.sort();
                Ok((account, Some(roles)))
            });
        }
    }
    let mut accounts = unselected;
    while let Some(joined) = lookups.join_next().await {
        let listed = joined.expect("role lookups do not panic");
        accounts.push(listed.map_err(|e| Error::from_portal(e, login.login_command()))?);
    }
    Ok(accounts)
}
