//! `fanout apply FILE --dry-run` (the plan's review) and `--save-plan` (a dry run's
//! plan written for review).

use std::collections::HashMap;
use std::path::Path;

use crate::config::ConfigError;
use crate::error::Error;
use crate::login::SsoLogin;
use crate::plan::{self, Applied, Plan, PlanLogin};
use crate::reporter::writer::{Output, Stream};
use crate::runner::Finished;
use crate::text;

use super::Connected;

/// `--save-plan`: writes what the dry run planned, unless the listing was cut short
/// (a plan of some of the accounts would look whole to its reviewer). Returns what to
/// say on stderr.
pub fn save(path: &Path, finished: &mut Finished, login: &SsoLogin) -> Result<String, Error> {
    let tally = &finished.tally;
    if tally.listing_error.is_some() || tally.listing_stopped || !tally.failed.is_empty() {
        return Ok(format!(
            "fanout: the plan was not saved to {}: the dry run did not plan every selected account\n",
            path.display()
        ));
    }
    let plan = Plan::new(PlanLogin::of(login), std::mem::take(&mut finished.planned));
    let file_sha256 = plan.save(path).map_err(ConfigError::from)?;
    let quoted = shell_words::quote(&path.display().to_string()).into_owned();
    Ok(format!(
        "fanout: plan of {} saved to {}, sha256 {file_sha256}\n  review it with: fanout apply {quoted} --dry-run\n  after review, run it with: fanout apply {quoted} --approve {file_sha256}\n",
        text::plural(plan.accounts.len(), "account"),
        text::show(&path.display().to_string()),
    ))
}

/// `fanout apply FILE --dry-run`: the plan's review on stdout, with the names the
/// portal gives its accounts now (one renamed since is shown with both). Lists the
/// accounts, and nothing more: no roles, no credentials, no command.
pub async fn review(connected: &Connected, applied: &Applied, output: &Output) -> Result<(), Error> {
    let portal_error = |e| Error::from_portal(e, connected.login.login_command());
    let mut now: HashMap<String, String> = HashMap::new();
    let mut pages = connected.portal.account_pages();
    while let Some(page) = pages.next_page().await.map_err(portal_error)? {
        now.extend(page.into_iter().filter(|a| applied.by_id.contains_key(&a.id)).map(|a| (a.id, a.name)));
    }
    let listed = now.iter().map(|(id, name)| (id.as_str(), name.as_str())).collect();
    output.send(Stream::Stdout, plan::review::render(applied, &listed).into_bytes()).await;
    Ok(())
}
