//! Each task's endings handed to the reporter's sinks of endings, and its roles to the
//! inventory cache.

use super::account::RegionEnd;
use super::{AccountTasks, RunLogin, TaskResult};
use crate::cache::inventory::{self, InventoryAccount};
use crate::portal::Account;
use crate::reporter::summary::{LoginTally, Tally};

impl AccountTasks {
    pub(super) fn record(&mut self, result: TaskResult) {
        let TaskResult { account, roles, ends } = result;
        for end in &ends {
            self.record_end(&account, end);
        }
        inventory::record(&mut self.writers[account.login], &InventoryAccount::new(account, roles));
    }

    /// One (account, region)'s ending, handed to every sink of endings.
    pub(super) fn record_end(&mut self, account: &Account, end: &RegionEnd) {
        self.ends.ended(&end.ended(account, &self.run.plan));
    }
}

/// The summary's tally before any account: with several logins, a line each.
pub(super) fn tally_of(logins: &[RunLogin]) -> Tally {
    let logins = match logins {
        [_] => Vec::new(),
        several => several.iter().map(|login| LoginTally::new(&login.name)).collect(),
    };
    Tally { logins, ..Tally::default() }
}
