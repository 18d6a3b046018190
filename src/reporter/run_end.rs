//! The end of a run, as shown: the `summary` record, the files that could not be
//! written, the summary on stderr, and the exit code, which lost output fails. The
//! command hands over plain values; everything printed here is the reporter's.

use std::fmt::Write as _;
use std::time::Duration;

use crate::exit_code;
use crate::files::Unwritten;
use crate::reporter::ci::{Reports, RunTotals};
use crate::reporter::dir::OutputDir;
use crate::reporter::json;
use crate::reporter::summary::Tally;
use crate::reporter::tables::eprint_text;
use crate::reporter::writer::{Output, StdoutEnd, Stream, WriterEnd};
use crate::text;

/// The exit code the tally asks for, failed by any file already lost (the joblog, the
/// export).
fn code_of(tally: &Tally, signal: Option<i32>, unwritten: &[Unwritten]) -> u8 {
    match tally.exit_code(signal) {
        exit_code::SUCCESS if !unwritten.is_empty() => exit_code::ACCOUNT_FAILED,
        code => code,
    }
}

/// The `summary` record of `--output json` (to `stdout`) and `--output-dir` (to `dir`),
/// written before the CI reports (whose loss it cannot know yet).
pub async fn send_summary_record(
    tally: &Tally,
    unwritten: &[Unwritten],
    signal: Option<i32>,
    elapsed: Duration,
    dry_run: bool,
    (stdout, dir): (Option<&Output>, Option<&OutputDir>),
) {
    if stdout.is_none() && dir.is_none() {
        return;
    }
    let elapsed = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let record = json::summary_record(tally, code_of(tally, signal, unwritten), elapsed, dry_run);
    if let Some(dir) = dir {
        dir.write_record(&record);
    }
    if let Some(output) = stdout {
        output.send(Stream::Stdout, record).await;
    }
}

/// A finished run, once its output is drained, as the reporter ends it.
#[expect(clippy::struct_excessive_bools, reason = "four independent facts of one run, each named")]
pub struct RunEnd<'a> {
    pub tally: Tally,
    pub roles: &'a [String],
    pub dry_run: bool,
    pub reports: Option<Reports>,
    /// The `aws sso login` commands of logins the portal rejected mid-run.
    pub rejected_logins: &'a [String],
    pub unwritten: Vec<Unwritten>,
    /// The run's duration, the time its prompt waited left out.
    pub elapsed: Duration,
    pub signal: Option<i32>,
    pub verbose: bool,
    /// `--quiet`: a successful run prints no summary.
    pub quiet: bool,
    pub writer_end: &'a WriterEnd,
    /// Whether `--output-dir` kept everything written to it.
    pub dir_written: bool,
}

/// Writes the CI reports, says each file lost, prints the summary and returns the exit
/// code.
pub fn conclude(end: RunEnd<'_>) -> u8 {
    let RunEnd { tally, roles, dry_run, reports, rejected_logins, mut unwritten, elapsed, .. } = end;
    if let Some(reports) = reports {
        unwritten.extend(reports.finish(&RunTotals { tally: &tally, elapsed, dry_run, roles }));
    }
    let files_written = report_unwritten(&unwritten);
    if end.writer_end.stdout == StdoutEnd::Closed {
        // Whoever read our output has all they wanted: end quietly, as ripgrep does; but
        // a file asked for and lost is still a failure.
        return if files_written { exit_code::SUCCESS } else { exit_code::ACCOUNT_FAILED };
    }
    let mut summary = tally.render(roles, elapsed, dry_run, end.verbose);
    for login_command in rejected_logins {
        let _ = writeln!(summary, "fanout: the portal rejected the SSO token mid-run; run: {login_command}");
    }
    // A lost file fails the run: `--quiet` then prints the summary too.
    let code = code_of(&tally, end.signal, &unwritten);
    let summary_written = (end.quiet && code == exit_code::SUCCESS) || eprint_text(&summary);
    with_output_failures(code, end.writer_end, summary_written && end.dir_written)
}

/// Says on stderr, one line each, the files asked for that could not be written (the
/// joblog, the export, the CI reports); whether there were none. Each is lost output,
/// which fails the run.
fn report_unwritten(unwritten: &[Unwritten]) -> bool {
    for file in unwritten {
        eprint_text(&format!("error: {}\n", text::show_at_most(&file.to_string(), text::MAX_LINE)));
    }
    unwritten.is_empty()
}

/// Output that could not be written is a failure: never exit 0 after losing it. A
/// failed stdout is said on stderr, if stderr still works.
pub fn with_output_failures(code: u8, end: &WriterEnd, summary_written: bool) -> u8 {
    let mut lost = end.stderr_failed || !summary_written;
    if let StdoutEnd::Failed(reason) = &end.stdout {
        eprint_text(&format!(
            "error: cannot write to standard output: {reason}; output was lost, so the run was stopped\n"
        ));
        lost = true;
    }
    if lost && code == exit_code::SUCCESS { exit_code::ACCOUNT_FAILED } else { code }
}
