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
    rows: Vec<(usize, PlanRow)>,
}

/// One (account, region) a dry run would run.
#[derive(Debug)]
struct PlanRow {
    account_id: String,
    region: String,
    name: String,
    role: String,
    command: String,
    /// The organization's facts (`--accounts-meta`): its OU path and tags, so that the
    /// reader checks an `--ou`/`--tag` selection before anything runs.
    org: Option<(String, String)>,
}

impl PlanTable {
    pub fn ended(&mut self, end: &Ended<'_>) {
        if let (Some(role), Some(argv)) = (&end.trace.role, &end.trace.argv) {
            let row = PlanRow {
                account_id: end.account_id.to_owned(),
                region: end.child_region.to_owned(),
                name: end.account_name.to_owned(),
                role: role.clone(),
                command: shell_words::join(argv),
                org: end.org.map(|org| (org.ou_path(), org.tags_text())),
            };
            self.rows.push((end.index, row));
        }
    }

    /// The table; with `--regions` it has a `REGION` column, and `OU_PATH` and `TAGS` ones when
    /// any account has the organization's facts.
    pub fn render(mut self, regions: bool) -> Vec<u8> {
        // A stable sort keeps an account's regions in the order given.
        self.rows.sort_by_key(|(index, _)| *index);
        let org = self.rows.iter().any(|(_, row)| row.org.is_some());
        let mut header = vec!["ACCOUNT_ID"];
        header.extend(regions.then_some("REGION"));
        header.extend(["NAME", "ROLE"]);
        header.extend(if org { &["OU_PATH", "TAGS"][..] } else { &[] });
        header.push("COMMAND");
        let rows = self.rows.into_iter().map(|(_, row)| {
            let mut cells = vec![row.account_id];
            cells.extend(regions.then_some(row.region));
            cells.extend([row.name, row.role]);
            if org {
                let (ou_path, tags) = row.org.unwrap_or_default();
                cells.extend([ou_path, tags]);
            }
            cells.push(row.command);
            cells
        });
        tables::table(&header, rows)
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
