//! Where each (account, region)'s ending goes: one fan-out to the sinks the command
//! line chose. The runner hands every [`Ended`] here and knows none of them.

use std::path::PathBuf;

use crate::config::{Format, RunPlan};
use crate::events::Ended;
use crate::files::Unwritten;
use crate::joblog::{self, JobLog};
use crate::reporter::ci::Reports;
use crate::reporter::plans::{ApplySkips, PlanTable, PlannedAccounts};
use crate::reporter::summary::Tally;

/// The sinks of endings: the summary's tally always, the others as asked.
#[derive(Debug)]
pub struct EndSinks {
    pub tally: Tally,
    /// `--joblog`.
    pub joblog: Option<JobLog>,
    /// `--summary-markdown`, `--junit`, `--report`.
    pub reports: Option<Reports>,
    /// A dry run's table (not with `--output json`, whose records say it all).
    pub plan_table: Option<PlanTable>,
    /// `--save-plan`.
    pub planned: Option<PlannedAccounts>,
    /// `fanout apply`.
    pub apply_skips: Option<ApplySkips>,
}

impl EndSinks {
    /// The sinks `plan` asks for; the joblog and reports are opened first, so that an
    /// unwritable one fails the run before any account starts.
    pub fn open(plan: &RunPlan, tally: Tally) -> Result<Self, (PathBuf, std::io::Error)> {
        let joblog = match &plan.joblog {
            Some((path, append)) => Some(
                JobLog::open(path, *append, &plan.command_argv, &plan.roles)
                    .map_err(|source| (path.clone(), source))?,
            ),
            None => None,
        };
        let reports = Reports::open(&plan.reports, std::time::SystemTime::now())?;
        Ok(EndSinks {
            tally,
            joblog,
            reports,
            plan_table: (plan.dry_run && plan.format == Format::Text).then(PlanTable::default),
            planned: plan.save_plan.as_ref().map(|_| PlannedAccounts::default()),
            apply_skips: plan.apply.clone().map(ApplySkips::new),
        })
    }

    /// One (account, region) has ended: each sink records it.
    pub fn ended(&mut self, end: &Ended<'_>) {
        self.tally.selected += 1;
        if let Some(joblog) = &mut self.joblog {
            joblog.record(joblog::Entry::of(end));
        }
        if let Some(reports) = &mut self.reports {
            reports.record(end);
        }
        if let Some(table) = &mut self.plan_table {
            table.ended(end);
        }
        if let Some(planned) = &mut self.planned {
            planned.ended(end);
        }
        if let Some(skips) = &mut self.apply_skips {
            skips.ended(end);
        }
        self.tally.ended(end);
    }

    /// Closes the joblog: the file it could not write, if any, fails the run.
    pub fn finish_joblog(&mut self) -> Option<Unwritten> {
        let log = self.joblog.take()?;
        log.finish().err().map(|(path, error)| Unwritten { what: "joblog", path, error })
    }
}
