//! Reports for CI systems, written when a run ends: `--summary-markdown` (a GitHub step
//! summary), `--junit` (`JUnit` XML) and `--report` (a self-contained HTML timeline).
//!
//! Memory stays flat in the number of accounts: the `JUnit` and HTML reports write their
//! per-account part to a private temporary file (a [`Spool`]) as accounts end, and only
//! when the run is over (totals known) write their file whole with
//! [`files::write_whole`]. The Markdown summary has a bounded table and is appended in
//! one write (see [`markdown`]). A report that cannot be written fails the run, after
//! the others are written.

pub mod html;
pub mod junit;
pub mod markdown;
pub mod tail;

use std::fs::File;
use std::io::{self, BufWriter, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::ReportPaths;
use crate::events::Ended;
use crate::files::{self, Unwritten};
use crate::reporter::summary::Tally;

/// The run as a whole, once it is over.
#[derive(Debug)]
pub struct RunTotals<'a> {
    pub tally: &'a Tally,
    pub elapsed: Duration,
    pub dry_run: bool,
    /// The roles asked for, which a coverage line names for accounts without one.
    pub roles: &'a [String],
}

impl RunTotals<'_> {
    /// The summary's coverage line (organization facts only), for the reports.
    pub fn coverage_line(&self) -> Option<String> {
        self.tally.coverage.as_ref().map(|coverage| coverage.line(self.roles, self.dry_run))
    }
}

/// A report's rows so far, in an unnamed temporary file (gone when fanout exits).
#[derive(Debug)]
pub struct Spool {
    file: BufWriter<File>,
    /// The first write that failed; the report is then not written.
    error: Option<io::Error>,
}

impl Spool {
    fn new() -> io::Result<Self> {
        Ok(Spool { file: BufWriter::new(tempfile::tempfile()?), error: None })
    }

    fn write(&mut self, text: &str) {
        if self.error.is_none()
            && let Err(error) = self.file.write_all(text.as_bytes())
        {
            self.error = Some(error);
        }
    }

    /// Writes `path` whole (see [`files::write_whole`]): `head`, the spooled rows, `foot`.
    fn finish(self, path: &Path, head: &str, foot: &str) -> io::Result<()> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut rows = self.file.into_inner().map_err(io::IntoInnerError::into_error)?;
        rows.rewind()?;
        files::write_whole(path, |writer| {
            writer.write_all(head.as_bytes())?;
            io::copy(&mut rows, writer)?;
            writer.write_all(foot.as_bytes())
        })
    }
}

/// The reports a run writes, each with its target.
#[derive(Debug)]
pub struct Reports {
    markdown: Option<(PathBuf, markdown::Markdown)>,
    junit: Option<(PathBuf, junit::Junit)>,
    html: Option<(PathBuf, html::Html)>,
}

impl Reports {
    /// Gets the reports `paths` asks for ready; `None` when it asks for none. Fails when
    /// a target's directory does not exist, before any account starts.
    pub fn open(paths: &ReportPaths, run_start: SystemTime) -> Result<Option<Self>, (PathBuf, io::Error)> {
        if !paths.any() {
            return Ok(None);
        }
        Ok(Some(Reports {
            markdown: ready(paths.markdown.as_ref(), || Ok(markdown::Markdown::new()))?,
            junit: ready(paths.junit.as_ref(), || Spool::new().map(junit::Junit::new))?,
            html: ready(paths.html.as_ref(), || Spool::new().map(|spool| html::Html::new(spool, run_start)))?,
        }))
    }

    /// `waited` (at the confirmation prompt) is not the run's: the HTML timeline starts
    /// that much later, as the run's duration leaves it out.
    pub fn leave_out(&mut self, waited: Duration) {
        if let Some((_, html)) = &mut self.html {
            html.leave_out(waited);
        }
    }

    /// One account has ended.
    pub fn record(&mut self, end: &Ended<'_>) {
        if let Some((_, markdown)) = &mut self.markdown {
            markdown.record(end);
        }
        if let Some((_, junit)) = &mut self.junit {
            junit.record(end);
        }
        if let Some((_, html)) = &mut self.html {
            html.record(end);
        }
    }

    /// Writes every report, each whatever became of the others; returns those that
    /// could not be written, and why.
    pub fn finish(self, totals: &RunTotals<'_>) -> Vec<Unwritten> {
        let results = [
            self.markdown.map(|(path, report)| (report.finish(&path, totals), "Markdown summary", path)),
            self.junit.map(|(path, report)| (report.finish(&path, totals), "JUnit report", path)),
            self.html.map(|(path, report)| (report.finish(&path, totals), "HTML report", path)),
        ];
        results
            .into_iter()
            .flatten()
            .filter_map(|(result, what, path)| result.err().map(|error| Unwritten { what, path, error }))
            .collect()
    }
}

/// A report for `path` (made by `new`), when `path` is given.
fn ready<R>(
    path: Option<&PathBuf>,
    new: impl FnOnce() -> io::Result<R>,
) -> Result<Option<(PathBuf, R)>, (PathBuf, io::Error)> {
    let Some(path) = path else { return Ok(None) };
    check_directory(path)
        .and_then(|()| new())
        .map(|report| Some((path.clone(), report)))
        .map_err(|error| (path.clone(), error))
}

/// Fails early when `path` names no file (`--summary-markdown "$GITHUB_STEP_SUMMARY"`
/// outside GitHub gives an empty one) or its directory does not exist: better than after
/// the whole run.
fn check_directory(path: &Path) -> io::Result<()> {
    if path.file_name().is_none() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no file name"));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if std::fs::metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::NotADirectory, "its directory is not a directory"))
    }
}

/// Seconds with millisecond precision: `1.234`.
pub fn seconds(duration: Duration) -> String {
    format!("{}.{:03}", duration.as_secs(), duration.subsec_millis())
}
