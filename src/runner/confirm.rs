//! `--confirm-above`: the prompt before a big run, on the terminal, answered on a thread
//! of its own so that a signal still ends the run.

use std::time::{Duration, Instant};

use super::AccountTasks;
use crate::cache::inventory::KnownRoles;
use crate::error::Error;
use crate::portal::{Account, PortalError};

impl AccountTasks {
    /// Asks on the terminal before starting more accounts than `--confirm-above`, when
    /// the run asks at all; anything but a yes ends the run before any credentials. A yes
    /// returns how long it took to come, which the run's clocks (its duration, the
    /// progress bar's) do not count.
    pub(super) async fn confirm(&self, held: &[(Account, Option<KnownRoles>)]) -> Result<Duration, Error> {
        let Some(confirm) = self.run.plan.confirm else { return Ok(Duration::ZERO) };
        if held.len() <= confirm.above {
            return Ok(Duration::ZERO);
        }
        // `apply`: the plan's review, with the names the portal gives its accounts now.
        let review = self.run.plan.apply.as_ref().map(|applied| {
            let listed = held.iter().map(|(account, _)| (account.id.as_str(), account.name.as_str())).collect();
            crate::plan::review::render(applied, &listed)
        });
        let prompt = crate::confirm::Prompt {
            count: held.len(),
            names: held.iter().map(|(account, _)| account.name.as_str()).collect(),
            roles: &self.run.plan.roles,
            command: &self.run.plan.command_text,
            review: review.as_deref(),
        };
        self.run.reporter.say(prompt.render()).await;
        // The read blocks: on its own thread, so that a signal still ends the run (the
        // thread, stuck in a read, ends with the process).
        let (answer, answered) = tokio::sync::oneshot::channel();
        let asked = Instant::now();
        let _paused = self.run.reporter.pause();
        std::thread::spawn(move || answer.send(crate::confirm::read_answer()));
        tokio::select! {
            yes = answered => if yes.unwrap_or(false) { Ok(asked.elapsed()) } else { Err(Error::NotConfirmed) },
            () = self.run.stopper.stopped() => Err(Error::Portal(PortalError::Cancelled)),
        }
    }
}
