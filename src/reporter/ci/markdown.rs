//! `--summary-markdown FILE`: the run's totals, then a table of the accounts that failed
//! (class, error, last stderr line), for `$GITHUB_STEP_SUMMARY`. GitHub collects what
//! each step appends to that file, so the file is appended to in one `O_APPEND` write of
//! the whole block ([`files::append`]), never copied or replaced: a shell appending to it
//! around fanout, a symlink to it and another appender at the same time all keep theirs.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::{RunTotals, seconds, tail};
use crate::events::Ended;
use crate::files;
use crate::outcome::Outcome;
use crate::text;

/// Rows in the table, at most: GitHub refuses a step summary over 1 MiB, and a row is at
/// most ~1.7 KiB (four cells of 200 characters, each punctuation character doubled).
/// So the whole block is held in memory (at most ~0.5 MiB) and written in one append.
const MAX_ROWS: usize = 300;
/// A step summary is no secret: readable as any file the shell would create.
const MODE: u32 = 0o644;

#[derive(Debug, Default)]
pub struct Markdown {
    rows: String,
    count: usize,
}

impl Markdown {
    pub fn new() -> Self {
        Markdown::default()
    }

    /// A failed or interrupted account becomes a row; the others are only counted.
    pub fn record(&mut self, end: &Ended<'_>) {
        let class = match end.outcome {
            Outcome::Failed { class, .. } => class.name(),
            Outcome::Interrupted(_) => "interrupted",
            _ => return,
        };
        self.count += 1;
        if self.count > MAX_ROWS {
            return;
        }
        // The OU shares the account's cell: a reviewer sees where the failure is, and the
        // table keeps its four columns whether or not the organization is known.
        let account = match end.ou_path() {
            Some(ou_path) => format!("{} in {ou_path}", end.label()),
            None => end.label(),
        };
        let row = format!(
            "| {} | {} | {} | {} |\n",
            text::markup::markdown_cell(&account),
            class,
            text::markup::markdown_cell(end.outcome.error().unwrap_or("")),
            code_cell(tail::last_line(&end.trace.stderr_tail)),
        );
        self.rows.push_str(&row);
    }

    /// Appends the block to `path`, in one write.
    pub fn finish(self, path: &Path, totals: &RunTotals<'_>) -> io::Result<()> {
        files::append(path, self.render(totals).as_bytes(), MODE)
    }

    /// The whole block: the totals, the table, how many more failed.
    fn render(&self, totals: &RunTotals<'_>) -> String {
        let mut text = totals_text(totals);
        if self.count > 0 {
            text.push_str("\n| Account | Class | Error | Last stderr line |\n| --- | --- | --- | --- |\n");
        }
        text.push_str(&self.rows);
        match self.count.checked_sub(MAX_ROWS) {
            Some(more) if more > 0 => {
                let _ = write!(text, "\n… and {more} more (the JUnit report and `--joblog` list them all)\n\n");
            }
            _ => text.push('\n'),
        }
        text
    }
}

/// `## fanout` and the counts, as the summary on stderr gives them.
fn totals_text(totals: &RunTotals<'_>) -> String {
    let tally = totals.tally;
    let mut text = format!(
        "\n## fanout{}\n\n**{} selected**: {} {}, {} failed, {} skipped (no role)",
        if totals.dry_run { " (dry run)" } else { "" },
        text::plural(tally.selected, "account"),
        tally.succeeded,
        if totals.dry_run { "would run" } else { "succeeded" },
        tally.failed.len(),
        tally.no_role.len(),
    );
    if !tally.interrupted.is_empty() {
        let _ = write!(text, ", {} interrupted", tally.interrupted.len());
    }
    if !tally.not_started.is_empty() {
        let _ = write!(text, ", {} not started", tally.not_started.len());
    }
    let _ = writeln!(text, " in {}s; {} throttled portal calls.", seconds(totals.elapsed), tally.throttles);
    if let Some(line) = totals.coverage_line() {
        let _ = writeln!(text, "\n{}", text::markup::markdown_cell(&line));
    }
    if let Some(halt) = &tally.halt {
        let _ = writeln!(text, "\n{}", text::markup::markdown_cell(&halt.to_string()));
    }
    if let Some(error) = &tally.listing_error {
        let _ = writeln!(text, "\nThe account listing stopped early: {}", text::markup::markdown_cell(error));
    }
    text
}

/// A stderr line in monospace: in `<code>`, not a backtick code span, because inside a
/// code span backslash escapes are shown as they are and a `|` still splits GitHub's cells.
fn code_cell(line: &str) -> String {
    if line.is_empty() { String::new() } else { format!("<code>{}</code>", text::markup::markdown_cell(line)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{FailureClass, Trace};
    use crate::reporter::summary::Tally;

    #[test]
    fn the_table_stops_at_max_rows_and_counts_the_rest() {
        let mut markdown = Markdown::new();
        let outcome = Outcome::Failed { class: FailureClass::Exit, reason: "exit code 1".to_owned() };
        for i in 0..MAX_ROWS + 5 {
            let id = format!("{i:012}");
            markdown.record(&Ended {
                account_id: &id,
                account_name: "a",
                org: None,
                region: None,
                child_region: "us-east-1",
                index: i,
                outcome: &outcome,
                trace: &Trace::default(),
                dry_run: false,
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        let tally = Tally::default();
        let totals = RunTotals { tally: &tally, elapsed: std::time::Duration::ZERO, dry_run: false, roles: &[] };
        markdown.finish(&path, &totals).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with("| 0")).count(), MAX_ROWS);
        assert!(text.contains("\n… and 5 more (the JUnit report"), "{text}");
    }

    #[test]
    fn cells_cannot_break_the_table_or_inject_markup() {
        assert_eq!(text::markup::markdown_cell("a|b"), "a\\|b");
        assert_eq!(text::markup::markdown_cell("<img src=x>[x](y)"), "\\<img src\\=x\\>\\[x\\]\\(y\\)");
        // Shown, not dropped: the Markdown `\\n` renders as `\n`.
        assert_eq!(text::markup::markdown_cell("a\nb"), "a\\\\nb");
        assert_eq!(text::markup::markdown_cell("\u{1b}[31mred\u{202e}"), "\\\\u\\{1b\\}\\[31mred\\\\u\\{202e\\}");
        assert!(text::markup::markdown_cell(&"x".repeat(500)).ends_with("… \\(500 bytes\\)"));
    }
}
