//! Accounts held until the listing is complete (named accounts, named canaries, a
//! prompt, an export of one account), then started canaries first: the rest start
//! only if no canary failed.

use super::AccountTasks;
use crate::cache::inventory::KnownRoles;
use crate::config::{Canary, ConfigError};
use crate::error::Error;
use crate::gate::Halt;
use crate::portal::Account;
use crate::select::Selection;

impl AccountTasks {
    /// Once the listing is complete: fails if a name given to `--accounts` names two
    /// accounts (which one was meant cannot be known), else starts the held accounts,
    /// named canaries first.
    pub(super) async fn start_held(&mut self, selection: &Selection) -> Result<(), Error> {
        let Some(held) = self.held.take() else { return Ok(()) };
        if let Some((name, ids)) = selection.ambiguous_name(held.iter().map(|(account, _)| account)) {
            return Err(Error::AmbiguousName { name, ids });
        }
        if let Some(format) = self.run.plan.export.as_ref().filter(|format| format.needs_one_account())
            && held.len() != 1
        {
            return Err(ConfigError::ExportNeedsOneAccount { format: format.name(), selected: held.len() }.into());
        }
        let waited = self.confirm(&held).await?;
        self.ends.tally.at_prompt += waited;
        if let Some(reports) = &mut self.ends.reports {
            reports.leave_out(waited);
        }
        let Some(Canary::Accounts(named)) = self.run.plan.canary.clone() else {
            for (account, roles) in held {
                self.start_after_first_canaries(account, roles).await;
            }
            return Ok(());
        };
        let (canaries, others): (Vec<_>, Vec<_>) = held.into_iter().partition(|(account, _)| named.contains(account));
        if canaries.is_empty() && !others.is_empty() {
            self.run.halt(Halt::NoCanary);
        }
        for (account, roles) in canaries {
            self.start(account, roles).await;
        }
        self.finish_canaries().await;
        for (account, roles) in others {
            self.start(account, roles).await;
        }
        Ok(())
    }

    /// With `--canary N`: the first N accounts start at once; the next waits until they
    /// are done, and starts only if none of them failed.
    pub(super) async fn start_after_first_canaries(&mut self, account: Account, roles: Option<KnownRoles>) {
        if let (Some(started), Some(Canary::First(wanted))) = (self.canaries, &self.run.plan.canary) {
            if started < *wanted {
                self.canaries = Some(started + 1);
            } else {
                self.finish_canaries().await;
            }
        }
        self.start(account, roles).await;
    }

    /// Waits for the canaries (every task started so far) and halts the run if one of
    /// them failed.
    pub(super) async fn finish_canaries(&mut self) {
        if self.canaries.take().is_none() {
            return;
        }
        while let Some(joined) = self.set.join_next().await {
            self.record(joined.expect("account tasks do not panic"));
        }
        let failed = self.ends.tally.failed.len() + self.ends.tally.interrupted.len();
        if failed > 0 {
            self.run.halt(Halt::Canary { failed, canaries: self.ends.tally.selected });
        }
    }
}
