//! `--junit FILE`: `JUnit` XML, one test case per account (classname `fanout`, name
//! `id (name)`), as CI systems (GitLab, Jenkins, GitHub test reporters) render it. A
//! failed account is a `<failure>` whose message is its class and whose text is its
//! error and the tail of its stderr; an account without the role, or never started, is
//! `<skipped/>`. With `--accounts-meta`, a case's `<properties>` hold its OU path and tags.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::{RunTotals, Spool, seconds};
use crate::events::Ended;
use crate::outcome::Outcome;
use crate::text;

#[derive(Debug, Default)]
struct Counts {
    tests: usize,
    failures: usize,
    skipped: usize,
}

#[derive(Debug)]
pub struct Junit {
    cases: Spool,
    counts: Counts,
}

impl Junit {
    pub fn new(cases: Spool) -> Self {
        Junit { cases, counts: Counts::default() }
    }

    pub fn record(&mut self, end: &Ended<'_>) {
        self.counts.tests += 1;
        let mut case = format!(
            "    <testcase classname=\"fanout\" name=\"{}\" time=\"{}\"",
            text::markup::xml(&text::show(&end.label())),
            seconds(end.duration())
        );
        let properties = properties(end);
        match end.outcome {
            Outcome::Succeeded if properties.is_empty() => case.push_str("/>\n"),
            Outcome::Succeeded => {
                let _ = write!(case, ">\n{properties}    </testcase>\n");
            }
            Outcome::Failed { .. } | Outcome::Interrupted(_) => {
                self.counts.failures += 1;
                let class = end.outcome.class().map_or("interrupted", |class| class.name());
                let mut text = end.outcome.error().unwrap_or("").to_owned();
                if !end.trace.stderr_tail.is_empty() {
                    let _ = write!(text, "\n--- the end of stderr ---\n{}", end.trace.stderr_tail);
                }
                let _ = write!(
                    case,
                    ">\n{properties}      <failure message=\"{class}\" type=\"{class}\">{}</failure>\n    </testcase>\n",
                    text::markup::xml(&text)
                );
            }
            Outcome::NoRole { .. } | Outcome::NotStarted => {
                self.counts.skipped += 1;
                let status = end.outcome.status(end.dry_run);
                let _ = write!(case, ">\n{properties}      <skipped message=\"{status}\"/>\n    </testcase>\n");
            }
        }
        self.cases.write(&case);
    }

    pub fn finish(self, path: &Path, totals: &RunTotals<'_>) -> io::Result<()> {
        let Counts { tests, failures, skipped } = self.counts;
        let time = seconds(totals.elapsed);
        let head = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <testsuites name=\"fanout\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time}\">\n  \
             <testsuite name=\"fanout\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time}\">\n"
        );
        self.cases.finish(path, &head, "  </testsuite>\n</testsuites>\n")
    }
}

/// What the organization says of the account, as the test case's `<properties>`
/// (`ou_path`, and `tag:KEY` for each tag: the names Jenkins and GitLab show as they are);
/// empty when it says nothing.
fn properties(end: &Ended<'_>) -> String {
    let Some(org) = end.org.filter(|org| !org.ous.is_empty() || !org.tags.is_empty()) else { return String::new() };
    let property = |name: &str, value: &str| {
        format!(
            "        <property name=\"{}\" value=\"{}\"/>\n",
            text::markup::xml(&text::show(name)),
            text::markup::xml(&text::show(value))
        )
    };
    let mut text = String::from("      <properties>\n");
    if let Some(ou_path) = end.ou_path() {
        text.push_str(&property("ou_path", &ou_path));
    }
    for (key, value) in &org.tags {
        text.push_str(&property(&format!("tag:{key}"), value));
    }
    text.push_str("      </properties>\n");
    text
}
