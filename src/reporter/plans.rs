//! The sinks of a dry run and of `fanout apply`: the plan table a dry run prints, the
//! accounts `--save-plan` writes, and the planned accounts `apply` had to skip.

use std::sync::Arc;

use crate::events::Ended;
use crate::org::AccountFacts;
use crate::outcome::Outcome;
use crate::plan::{Applied, PlannedAccount};
use crate::reporter::tables;
use crate::text;

/// A dry run's table: a row for each (account, region) with the role and command it
/// would run, printed in selection order once the run is over.
#[derive(Debug, Default)]
pub struct PlanTable {
    /// With its selection index: the table prints in the order a `-j 1` run starts.
    rows: Vec<(usize, [String; 5])>,
}

impl PlanTable {
    pub fn ended(&mut self, end: &Ended<'_>) {
        if let (Some(role), Some(argv)) = (&end.trace.role, &end.trace.argv) {
            let row = [
                end.account_id.to_owned(),
                end.child_region.to_owned(),
                end.account_name.to_owned(),
                role.clone(),
                shell_words::join(argv),
            ];
            self.rows.push((end.index, row));
        }
    }

    /// The table; with `--regions` it has a REGION column.
    pub fn render(mut self, regions: bool) -> Vec<u8> {
        // A stable sort keeps an account's regions in the order given.
        self.rows.sort_by_key(|(index, _)| *index);
        let rows = self.rows.into_iter().map(|(_, row)| row);
        if regions {
            return tables::table(&["ACCOUNT_ID", "REGION", "NAME", "ROLE", "COMMAND"], rows);
        }
        let rows = rows.map(|[id, _, name, role, command]| [id, name, role, command]);
        tables::table(&["ACCOUNT_ID", "NAME", "ROLE", "COMMAND"], rows)
    }
}

/// `--save-plan`: every account the dry run planned, with its role, region and argv.
#[derive(Debug, Default)]
pub struct PlannedAccounts(pub Vec<PlannedAccount>);

impl PlannedAccounts {
    pub fn ended(&mut self, end: &Ended<'_>) {
        if let (Some(role), Some(argv)) = (&end.trace.role, &end.trace.argv) {
            self.0.push(PlannedAccount {
                account_id: end.account_id.to_owned(),
                account_name: end.account_name.to_owned(),
                role: role.clone(),
                region: end.child_region.to_owned(),
                argv: argv.clone(),
                ou_path: end.org.map(AccountFacts::ou_path),
                tags: end.org.map(|org| org.tags.clone()),
            });
        }
    }
}

/// `fanout apply`: a line for each planned account whose role is gone, said once the
/// run is over.
#[derive(Debug)]
pub struct ApplySkips {
    applied: Arc<Applied>,
    pub text: String,
}

impl ApplySkips {
    pub fn new(applied: Arc<Applied>) -> Self {
        ApplySkips { applied, text: String::new() }
    }

    pub fn ended(&mut self, end: &Ended<'_>) {
        if let Outcome::NoRole { .. } = end.outcome
            && let Some(planned) = self.applied.by_id.get(end.account_id)
        {
            let line = format!(
                "fanout: skipped {} ({}): it has no role {} any more\n",
                end.account_id,
                text::show(end.account_name),
                planned.role
            );
            self.text.push_str(&line);
        }
    }
}
