//! What a reviewer is shown of a plan: `fanout apply FILE --dry-run` prints it, and
//! `apply`'s prompt asks under it, so that what is approved is what is on screen.
//!
//! Every value comes from the plan file, which anyone who could write it may have
//! edited (its checksum is recomputed as easily), or from the portal: each is escaped
//! ([`text::show_at_most`]) and clipped, with the length said. Nothing is left out by design: every
//! distinct argv, with the accounts that run it, every role, every region, and the
//! SHA-256 of the file that `--approve` names.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{Applied, PlannedAccount};
use crate::text;

/// How many accounts are named under each argv; the rest are counted.
const SAMPLE: usize = 5;

/// A name, role, region or login longer than this (in characters) is clipped. The
/// portal's names are at most 50, roles 64: a longer one is someone's attempt to push
/// the rest of the screen away.
const VALUE_MAX: usize = 128;

/// An argv (shell-quoted) longer than this is clipped; the file holds it whole.
const ARGV_MAX: usize = 2048;

/// The review of `applied`. `listed` maps the id of each plan account the portal lists
/// now to its name there: an account renamed since the plan is shown with both names,
/// one the portal no longer lists is marked (it is skipped).
#[expect(clippy::implicit_hasher, reason = "built by its two callers with the default hasher")]
pub fn render(applied: &Applied, listed: &HashMap<&str, &str>) -> String {
    let plan = &applied.plan;
    let accounts = &plan.accounts;
    let mut text = format!("fanout: plan with sha256 {} (the file's, as sha256sum prints it)\n", applied.file_sha256);
    let _ = writeln!(text, "  login:    {} ({})", shown(&plan.login.name), shown(&plan.login.start_url));
    let gone = accounts.iter().filter(|a| !listed.contains_key(a.account_id.as_str())).count();
    let _ = write!(text, "  accounts: {}", accounts.len());
    if gone > 0 {
        let _ = write!(text, " ({gone} of them not listed by the portal now: skipped)");
    }
    let _ = writeln!(text);
    let _ = writeln!(text, "  roles:    {}", counted(groups(accounts, |a| &a.role)));
    let _ = writeln!(text, "  regions:  {}", counted(groups(accounts, |a| &a.region)));
    let argvs = groups(accounts, |a| &a.argv);
    let _ = writeln!(text, "  commands: {}, each run as saved:", text::plural(argvs.len(), "distinct argv"));
    for (argv, running) in argvs {
        let verb = if running.len() == 1 { "runs" } else { "run" };
        let _ = writeln!(text, "    {} {verb}: {}", text::plural(running.len(), "account"), shown_argv(argv));
        let names: Vec<String> = running.iter().take(SAMPLE).map(|a| named(a, listed)).collect();
        let _ = write!(text, "      {}", names.join(", "));
        if running.len() > names.len() {
            let _ = write!(text, ", … and {} more", running.len() - names.len());
        }
        let _ = writeln!(text);
    }
    text
}

/// The accounts grouped by `key`, largest group first, then in plan order (by id).
fn groups<'a, K: Eq + std::hash::Hash + ?Sized>(
    accounts: &'a [PlannedAccount],
    key: impl Fn(&'a PlannedAccount) -> &'a K,
) -> Vec<(&'a K, Vec<&'a PlannedAccount>)> {
    let mut index: HashMap<&K, usize> = HashMap::new();
    let mut groups: Vec<(&K, Vec<&PlannedAccount>)> = Vec::new();
    for account in accounts {
        let place = *index.entry(key(account)).or_insert_with(|| {
            groups.push((key(account), Vec::new()));
            groups.len() - 1
        });
        groups[place].1.push(account);
    }
    // Stable: equal counts keep plan order.
    groups.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
    groups
}

/// `ReadOnly (3 accounts), Admin (1 account)`.
fn counted(groups: Vec<(&String, Vec<&PlannedAccount>)>) -> String {
    let each: Vec<String> = groups
        .into_iter()
        .map(|(value, members)| format!("{} ({})", shown(value), text::plural(members.len(), "account")))
        .collect();
    each.join(", ")
}

/// `name (id)`; `planned → now (id)` for an account renamed since the plan (its
/// command still sees the planned name); `name (id, not listed now)` for one gone.
fn named(account: &PlannedAccount, listed: &HashMap<&str, &str>) -> String {
    let (id, planned) = (shown(&account.account_id), shown(&account.account_name));
    match listed.get(account.account_id.as_str()) {
        None => format!("{planned} ({id}, not listed now)"),
        Some(now) if *now != account.account_name => format!("{planned} → {} ({id})", shown(now)),
        Some(_) => format!("{planned} ({id})"),
    }
}

/// The argv shell-quoted, as one would type it, escaped and clipped.
fn shown_argv(argv: &[String]) -> String {
    if argv.is_empty() {
        return "(no command)".to_owned();
    }
    clipped(&shell_words::join(argv), ARGV_MAX)
}

fn shown(value: &str) -> String {
    clipped(value, VALUE_MAX)
}

/// `value` escaped, and cut at `max` characters with an ellipsis and its length (the
/// one clip every printer uses: the plan file still holds the value whole).
fn clipped(value: &str, max: usize) -> String {
    text::show_at_most(value, max).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, PlanLogin};

    fn account(id: &str, name: &str, argv: &[&str]) -> PlannedAccount {
        PlannedAccount {
            account_id: id.into(),
            account_name: name.into(),
            role: "ReadOnly".into(),
            region: "eu-west-1".into(),
            argv: argv.iter().map(|&a| a.to_owned()).collect(),
            ou_path: None,
            tags: None,
        }
    }

    fn applied(accounts: Vec<PlannedAccount>) -> Applied {
        let login = PlanLogin { name: "corp".into(), start_url: "https://corp.awsapps.com/start".into() };
        Applied::new(Plan::new(login, accounts), "ab".repeat(32)).unwrap()
    }

    #[test]
    fn every_distinct_argv_is_shown_with_the_accounts_that_run_it() {
        let mut accounts: Vec<PlannedAccount> =
            (1..=7).map(|i| account(&format!("10000000000{i}"), &format!("a{i}"), &["echo", "hi"])).collect();
        accounts.push(account("100000000009", "odd", &["rm", "-rf", "/tmp/x y"]));
        let applied = applied(accounts);
        let listed: HashMap<&str, &str> =
            applied.plan.accounts.iter().map(|a| (a.account_id.as_str(), a.account_name.as_str())).collect();
        let text = render(&applied, &listed);
        assert!(text.starts_with(&format!("fanout: plan with sha256 {}", "ab".repeat(32))), "{text}");
        assert!(text.contains("  accounts: 8\n"), "{text}");
        assert!(text.contains("  roles:    ReadOnly (8 accounts)\n"), "{text}");
        assert!(text.contains("  regions:  eu-west-1 (8 accounts)\n"), "{text}");
        assert!(text.contains("  commands: 2 distinct argvs, each run as saved:\n"), "{text}");
        assert!(
            text.contains(
                "    7 accounts run: echo hi\n      a1 (100000000001), a2 (100000000002), a3 (100000000003), a4 (100000000004), a5 (100000000005), … and 2 more\n"
            ),
            "{text}"
        );
        assert!(text.contains("    1 account runs: rm -rf '/tmp/x y'\n      odd (100000000009)\n"), "{text}");
    }

    #[test]
    fn renamed_and_gone_accounts_are_marked() {
        let applied = applied(vec![
            account("111111111111", "old-name", &["true"]),
            account("222222222222", "gone", &["true"]),
            account("333333333333", "same", &["true"]),
        ]);
        let listed = HashMap::from([("111111111111", "new-name"), ("333333333333", "same")]);
        let text = render(&applied, &listed);
        assert!(text.contains("  accounts: 3 (1 of them not listed by the portal now: skipped)\n"), "{text}");
        assert!(
            text.contains(
                "old-name → new-name (111111111111), gone (222222222222, not listed now), same (333333333333)"
            ),
            "{text}"
        );
    }

    #[test]
    fn hostile_values_are_escaped_and_clipped() {
        let long = "x".repeat(5000);
        let mut odd = account("111111111111", "evil\u{202e}name\x1b[2J", &["echo", "a\rb", &long]);
        odd.role = "R\u{2066}ole".into();
        let applied = applied(vec![odd]);
        let listed = HashMap::from([("111111111111", "new\nname")]);
        let text = render(&applied, &listed);
        assert!(!text.chars().any(|c| c == '\u{202e}' || c == '\u{2066}' || c == '\x1b' || c == '\r'), "{text:?}");
        assert!(text.contains("evil\\u{202e}name\\u{1b}[2J → new\\nname (111111111111)"), "{text}");
        assert!(text.contains("R\\u{2066}ole (1 account)"), "{text}");
        assert!(text.contains("echo a\\rb xxx"), "{text}");
        assert!(text.contains("… (5009 bytes)"), "{text}");
        assert!(text.lines().all(|line| line.chars().count() < ARGV_MAX + 100), "{text}");
    }
}
