//! The `ListAccounts` cursor: a page at a time, each valid account once, and a stop at a
//! repeated page token or past [`MAX_ACCOUNTS`] accounts or [`MAX_ACCOUNT_PAGES`] pages.

use std::collections::HashSet;

use super::{Account, MAX_ACCOUNT_PAGES, MAX_ACCOUNTS, PAGE_SIZE, Portal, PortalError, validate};
use crate::text;

/// A cursor over `ListAccounts` pages.
pub struct AccountPages<'p> {
    portal: &'p Portal,
    next_token: Option<String>,
    done: bool,
    /// Every page token seen: one coming back means the listing loops.
    seen_tokens: HashSet<String>,
    /// Every account listed so far: one listed again is dropped.
    seen_ids: HashSet<String>,
    pages: usize,
}

impl<'p> AccountPages<'p> {
    /// Before the first page.
    pub(super) fn new(portal: &'p Portal) -> Self {
        AccountPages {
            portal,
            next_token: None,
            done: false,
            seen_tokens: HashSet::new(),
            seen_ids: HashSet::new(),
            pages: 0,
        }
    }

    /// The next page's accounts that are valid and not listed before, or `None` after
    /// the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Account>>, PortalError> {
        const OPERATION: &str = "ListAccounts";
        if self.done {
            return Ok(None);
        }
        let portal = self.portal;
        let page = portal
            .call(OPERATION, |token| {
                portal
                    .client
                    .list_accounts()
                    .access_token(token)
                    .max_results(PAGE_SIZE)
                    .set_next_token(self.next_token.clone())
                    .send()
            })
            .await?;
        self.pages += 1;
        self.next_token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        self.done = self.next_token.is_none();
        let accounts: Vec<Account> = page.account_list().iter().filter_map(|a| self.admit(a)).collect();
        if self.seen_ids.len() > MAX_ACCOUNTS {
            return Err(PortalError::TooLong { operation: OPERATION, limit: MAX_ACCOUNTS, what: "accounts" });
        }
        if self.pages >= MAX_ACCOUNT_PAGES && !self.done {
            return Err(PortalError::TooLong { operation: OPERATION, limit: MAX_ACCOUNT_PAGES, what: "pages" });
        }
        if let Some(token) = &self.next_token
            && !self.seen_tokens.insert(token.clone())
        {
            return Err(PortalError::RepeatedPageToken { operation: OPERATION });
        }
        Ok(Some(accounts))
    }

    /// The account, if its id and name are valid and it was not listed before.
    fn admit(&mut self, info: &aws_sdk_sso::types::AccountInfo) -> Option<Account> {
        let id = info.account_id().unwrap_or_default();
        let name = info.account_name().unwrap_or_default();
        if !validate::is_account_id(id) {
            tracing::warn!(
                "skipping an account whose id {:?} is not 12 digits (named {:?})",
                text::show(id),
                text::show(name)
            );
            return None;
        }
        let email = info.email_address().unwrap_or_default();
        let problem = validate::account_name_problem(name)
            .map(|why| format!("its name {why}"))
            .or_else(|| validate::account_name_problem(email).map(|why| format!("its email {why}")));
        if let Some(problem) = problem {
            tracing::warn!("skipping account {id}: {problem}");
            return None;
        }
        if !self.seen_ids.insert(id.to_owned()) {
            tracing::warn!("account {id} was listed twice by the portal; it runs once");
            return None;
        }
        Some(Account { id: id.to_owned(), name: name.to_owned(), email: email.to_owned(), login: 0, org: None })
    }
}
