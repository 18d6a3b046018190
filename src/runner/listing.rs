//! Listing: each login's accounts page by page, fetched ahead of the accounts being
//! started, each taken in once (the first login that lists an account runs it) and
//! started or held as the selection says.

use std::sync::Arc;

use super::{AccountSource, AccountTasks};
use crate::cache::inventory::{self, InventoryAccount};
use crate::error::Error;
use crate::events::Event;
use crate::plan::PlannedAccount;
use crate::portal::{Account, Portal, PortalError};
use crate::select::Selection;

/// `ListAccounts` pages fetched ahead of the accounts being started. Starting an account
/// waits for a live slot, so without a page in hand the next page would be asked for only
/// once most of this one's accounts were under way: its round trip would stall the run.
const PAGES_AHEAD: usize = 4;

/// Lists the accounts page by page into `pages`, ahead of the tasks; ends after the
/// last page or an error, or when the run stops reading.
async fn list_ahead(portal: &Portal, pages: tokio::sync::mpsc::Sender<Result<Option<Vec<Account>>, PortalError>>) {
    let mut listing = portal.account_pages();
    loop {
        let page = listing.next_page().await;
        let last = !matches!(page, Ok(Some(_)));
        if pages.send(page).await.is_err() || last {
            return;
        }
    }
}

impl AccountTasks {
    /// Lists login `login`'s accounts into the run, pages fetched ahead as the accounts
    /// start; whether the listing is complete. An error before any account was selected
    /// is the run's error; after, it ends the listing (and a 401 stops new work, as
    /// mid-run).
    pub(super) async fn list(
        &mut self,
        selection: &Selection,
        login: usize,
        source: AccountSource,
    ) -> Result<bool, Error> {
        let run = Arc::clone(&self.run);
        self.writers[login] = source.writer;
        self.cached_roles = source.cached_roles;
        let mut complete = false;
        let (pages_out, mut pages) = tokio::sync::mpsc::channel(PAGES_AHEAD);
        let consume = async {
            while !run.stopper.is_stopping() {
                match pages.recv().await {
                    Some(Ok(Some(page))) => {
                        for account in page {
                            self.add(selection, Account { login, ..account }).await;
                        }
                    }
                    Some(Ok(None)) => {
                        complete = true;
                        break;
                    }
                    Some(Err(PortalError::Cancelled)) | None => break,
                    Some(Err(error)) if self.next_index == 0 => {
                        return Err(Error::from_portal(error, run.logins[login].login_command.clone()));
                    }
                    Some(Err(PortalError::Unauthorized { .. })) => {
                        run.reject_login(login);
                        break;
                    }
                    Some(Err(error)) => {
                        self.ends.tally.listing_error = Some(self.of_login(login, error.to_string()));
                        break;
                    }
                }
            }
            // Ends the listing if it is still going (a stop, an error).
            drop(pages);
            Ok(())
        };
        let ((), consumed) = tokio::join!(list_ahead(&run.logins[login].portal, pages_out), consume);
        consumed?;
        Ok(complete)
    }

    /// `text` about login `login`, named when the run has several.
    pub(super) fn of_login(&self, login: usize, text: String) -> String {
        match self.run.logins.as_slice() {
            [_] => text,
            logins => format!("{}: {text}", logins[login].name),
        }
    }

    /// Whether `account` runs through its own login, i.e. no earlier login listed it.
    /// With several logins every id listed is remembered (one login alone needs none,
    /// and keeps memory flat); an account seen again is counted once as shared by the
    /// login it runs through, when the selection wants it.
    pub(super) fn first_listing(&mut self, selection: &Selection, account: &Account) -> bool {
        let Some(first) = &mut self.first_login else { return true };
        match first.get_mut(&account.id) {
            None => {
                first.insert(account.id.clone(), (account.login, false));
                true
            }
            Some((login, counted)) => {
                if !*counted && selection.selects(account) {
                    *counted = true;
                    self.ends.tally.logins[*login].shared += 1;
                }
                false
            }
        }
    }

    /// Under `fanout apply`, which reads no organization: an account's facts as the plan
    /// recorded them, so its records, joblog line and reports carry them as the dry run's
    /// did.
    fn with_planned_facts(&self, account: Account) -> Account {
        let planned = self.run.plan.apply.as_ref().and_then(|applied| applied.by_id.get(&account.id));
        match planned.and_then(PlannedAccount::facts) {
            Some(facts) if account.org.is_none() => Account { org: Some(Arc::new(facts)), ..account },
            _ => account,
        }
    }

    /// Takes in one listed account, with the roles the cache knows for it: starts its
    /// task if the selection wants it, or holds it until the listing is complete
    /// (accounts or canaries selected by name).
    pub(super) async fn add(&mut self, selection: &Selection, account: Account) {
        let roles = self.cached_roles.take(&account.id);
        let account = self.with_planned_facts(selection.with_facts(account));
        if let Some(coverage) = &mut self.ends.tally.coverage
            && let Some(in_scope) = selection.in_scope(&account)
        {
            coverage.listed(&account.id, in_scope);
        }
        let first = self.first_listing(selection, &account);
        if !first || !selection.selects(&account) {
            if first && selection.skips_as_inactive(&account) {
                self.ends.tally.inactive += 1;
            }
            inventory::record(&mut self.writers[account.login], &InventoryAccount::new(account, roles));
            return;
        }
        if let Some(login) = self.ends.tally.logins.get_mut(account.login) {
            login.selected += 1;
        }
        if let Some(known) = &roles {
            self.ends.tally.roles_from_cache.note(known.age(inventory::now_secs()));
        }
        self.run.reporter.emit(Event::Selected);
        if selection.listed.is_some() {
            self.listed_seen.note(&account);
        }
        match &mut self.held {
            Some(held) => held.push((account, roles)),
            None => self.start_after_first_canaries(account, roles).await,
        }
    }
}
