//! The files the command line names, read for the builder: the accounts file
//! (`--accounts-file`), the joblog resumed (`--resume`, `--retry-failed`), and the plan
//! `fanout apply` runs.

use std::collections::HashSet;
use std::sync::Arc;

use super::ConfigError;
use crate::cli::Cli;
use crate::confirm::Confirm;
use crate::files;
use crate::joblog::{self, Logged};
use crate::org::{OuSelector, meta_file};
use crate::plan::{Applied, Plan};
use crate::select::{AccountList, OrgSelection, Selection, Shard, TagFilter, parse_account_list, parse_glob};

/// The largest `--accounts-file`: far more than the most accounts a portal lists
/// (`portal::MAX_ACCOUNTS`) with a name and a comment each.
const MAX_ACCOUNTS_FILE: u64 = 16 << 20;

pub(super) fn selection(cli: &Cli, resumed: Option<&Logged>) -> Result<Selection, ConfigError> {
    let args = &cli.selection;
    let mut listed: Option<AccountList> = None;
    if !args.accounts.is_empty() {
        listed.get_or_insert_default().extend(AccountList::parse(args.accounts.iter().map(String::as_str))?);
    }
    if let Some(path) = &args.accounts_file {
        // Bounded like every file the user passes (issue 16, point 8): `/dev/zero` or a
        // FIFO that never ends is refused at the limit, not read into memory.
        let text = files::read_bounded_or_pipe(path, MAX_ACCOUNTS_FILE)
            .map_err(|source| ConfigError::AccountsFile { path: path.clone(), source })?;
        listed.get_or_insert_default().extend(parse_account_list(&text)?);
    }
    Ok(Selection {
        matches: args.matches.iter().map(|g| parse_glob(g)).collect::<Result<_, _>>()?,
        excludes: args.exclude.iter().map(|g| parse_glob(g)).collect::<Result<_, _>>()?,
        listed,
        org: org_selection(cli)?,
        shard: args.shard.as_deref().map(Shard::parse).transpose()?,
        done: match resumed {
            Some(log) if cli.run.resume.is_some() => {
                log.entries.values().filter(|e| e.is_done()).map(|e| e.account_id.clone()).collect()
            }
            _ => HashSet::new(),
        },
        retry: resumed
            .filter(|_| cli.run.retry_failed.is_some())
            .map(|log| log.entries.values().filter(|e| e.needs_retry()).map(|e| e.account_id.clone()).collect()),
    })
}

/// `--accounts-meta`, read and checked whole, and `--ou`, `--exclude-ou` and `--tag`,
/// parsed (with `--org-role` the facts come later, from the organization). A filter without facts to read, or an OU no account of the facts is in, is
/// refused before any portal call: either would quietly select nothing (or, for an
/// exclusion, leave in what the user meant to leave out).
fn org_selection(cli: &Cli) -> Result<OrgSelection, ConfigError> {
    let args = &cli.selection;
    if args.org_role.is_some() && args.accounts_meta.is_some() {
        return Err(ConfigError::TwoOrgSources);
    }
    let facts = args.accounts_meta.as_deref().map(meta_file::read).transpose()?.map(Arc::new);
    let ous = |given: &[String]| given.iter().map(|ou| OuSelector::parse(ou)).collect::<Result<Vec<_>, _>>();
    let selection = OrgSelection {
        ous: ous(&args.ou)?,
        exclude_ous: ous(&args.exclude_ou)?,
        tags: args.tag.iter().map(|tag| TagFilter::parse(tag)).collect::<Result<_, _>>()?,
        facts,
    };
    let Some(facts) = &selection.facts else {
        if cli.selection.org_role.is_some() {
            // Checked once the organization is listed (`commands/organization.rs`).
            return Ok(selection);
        }
        let given = [
            (!args.ou.is_empty(), "--ou"),
            (!args.exclude_ou.is_empty(), "--exclude-ou"),
            (!args.tag.is_empty(), "--tag"),
        ];
        return match given.iter().find(|(given, _)| *given) {
            Some((_, flag)) => Err(ConfigError::OrgFactsNeeded(flag)),
            None => Ok(selection),
        };
    };
    if let Some(unknown) = selection.unknown_ou() {
        return Err(ConfigError::UnknownOu { ou: unknown.to_string(), file: facts.source.clone() });
    }
    Ok(selection)
}

/// The joblog of `--resume` or `--retry-failed`, read.
pub(super) fn resumed_log(cli: &Cli) -> Result<Option<Logged>, ConfigError> {
    let path = cli.run.resume.as_ref().or(cli.run.retry_failed.as_ref());
    Ok(path.map(|path| joblog::read(path)).transpose()?)
}

/// `fanout apply`'s plan file, read and checked: its accounts, and the prompt it needs
/// unless `--approve` names its sha256 (or a dry run only reviews it).
pub(super) fn read_plan(
    file: &std::path::Path,
    approve: Option<&str>,
    dry_run: bool,
    can_ask: bool,
) -> Result<(Applied, Option<Confirm>), ConfigError> {
    let (plan, file_sha256) = Plan::read(file)?;
    let confirm = match approve {
        Some(given) => {
            plan.check_approval(given, &file_sha256)?;
            None
        }
        None if dry_run => None,
        None if can_ask => Some(Confirm { above: 0 }),
        None => return Err(ConfigError::ApprovalNeeded),
    };
    Ok((Applied::new(plan, file_sha256)?, confirm))
}

/// Whether two paths name one file (the joblog resumed and the one written).
pub(super) fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ConfigError;
    use crate::config::testing::config;
    use crate::plan::PlanError;

    #[test]
    fn apply_takes_neither_a_role_nor_a_selection() {
        for args in [
            &["--role", "R", "apply", "p.json"][..],
            &["apply", "p.json", "--match", "x"],
            &["--region", "eu-west-1", "apply", "p.json"],
        ] {
            assert!(matches!(config(args), Err(ConfigError::ApplyConflict(_))), "{args:?}");
        }
        assert!(matches!(config(&["apply", "/nonexistent/p.json"]), Err(ConfigError::Plan(PlanError::Read { .. }))));
    }
}
