//! Reports for CI systems, written when a run ends: `--summary-markdown` (a GitHub step
//! summary), `--junit` (`JUnit` XML) and `--report` (a self-contained HTML timeline).
//!
//! Memory stays flat in the number of accounts: each report writes its per-account part
//! to a private temporary file (a [`Spool`]) as accounts end, and only when the run is
//! over (totals known) writes its file whole: a temporary file next to the target with
//! the head, the spooled rows and the foot, renamed over the target.

pub mod html;
pub mod junit;
pub mod markdown;
pub mod tail;

use std::fs::File;
use std::io::{self, BufWriter, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::summary::{Outcome, Tally};

/// Where each report goes; all `None` when none was asked for.
#[derive(Clone, Debug, Default)]
pub struct ReportPaths {
    pub markdown: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

impl ReportPaths {
    pub fn any(&self) -> bool {
        self.markdown.is_some() || self.junit.is_some() || self.html.is_some()
    }
}

/// How one account ended, as the reports see it.
#[derive(Debug)]
pub struct AccountEnd<'a> {
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub outcome: &'a Outcome,
    pub dry_run: bool,
    /// When its task began (before the portal was asked for its credentials).
    pub began: Option<SystemTime>,
    /// When its credentials arrived.
    pub credentials_at: Option<SystemTime>,
    /// When its command started, and how long it ran.
    pub started: Option<SystemTime>,
    pub runtime: Duration,
    /// When its task ended.
    pub ended: Option<SystemTime>,
    /// The end of its command's stderr (see [`tail`]).
    pub stderr_tail: &'a str,
}

impl AccountEnd<'_> {
    /// From its task's start to its end; zero for an account never started.
    pub fn duration(&self) -> Duration {
        match (self.began, self.ended) {
            (Some(began), Some(ended)) => ended.duration_since(began).unwrap_or_default(),
            _ => self.runtime,
        }
    }

    /// `id (name)`, as the summary names accounts.
    pub fn label(&self) -> String {
        format!("{} ({})", self.account_id, self.account_name)
    }
}

/// The run as a whole, once it is over.
#[derive(Debug)]
pub struct RunTotals<'a> {
    pub tally: &'a Tally,
    pub elapsed: Duration,
    pub dry_run: bool,
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

    /// Writes `path` atomically: `before` (for an appended file, its current content),
    /// `head`, the spooled rows, `foot`.
    fn finish(self, path: &Path, append: bool, head: &str, foot: &str) -> io::Result<()> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut rows = self.file.into_inner().map_err(io::IntoInnerError::into_error)?;
        rows.rewind()?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut out = tempfile::NamedTempFile::new_in(dir)?;
        if append {
            match File::open(path) {
                Ok(mut existing) => {
                    io::copy(&mut existing, &mut out)?;
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        {
            let mut writer = BufWriter::new(out.as_file_mut());
            writer.write_all(head.as_bytes())?;
            io::copy(&mut rows, &mut writer)?;
            writer.write_all(foot.as_bytes())?;
            writer.flush()?;
        }
        out.as_file().sync_all()?;
        out.persist(path).map_err(|error| error.error)?;
        Ok(())
    }
}

/// The reports a run writes.
#[derive(Debug)]
pub struct Reports {
    paths: ReportPaths,
    markdown: Option<markdown::Markdown>,
    junit: Option<junit::Junit>,
    html: Option<html::Html>,
}

impl Reports {
    /// Gets the reports `paths` asks for ready; `None` when it asks for none. Fails when
    /// a target's directory cannot be written, before any account starts.
    pub fn open(paths: &ReportPaths, run_start: SystemTime) -> Result<Option<Self>, (PathBuf, io::Error)> {
        if !paths.any() {
            return Ok(None);
        }
        for path in [&paths.markdown, &paths.junit, &paths.html].into_iter().flatten() {
            check_writable(path).map_err(|error| (path.clone(), error))?;
        }
        let spool = |path: &Option<PathBuf>| match path {
            Some(path) => Spool::new().map(Some).map_err(|error| (path.clone(), error)),
            None => Ok(None),
        };
        Ok(Some(Reports {
            markdown: spool(&paths.markdown)?.map(markdown::Markdown::new),
            junit: spool(&paths.junit)?.map(junit::Junit::new),
            html: spool(&paths.html)?.map(|spool| html::Html::new(spool, run_start)),
            paths: paths.clone(),
        }))
    }

    /// One account has ended.
    pub fn record(&mut self, end: &AccountEnd<'_>) {
        if let Some(markdown) = &mut self.markdown {
            markdown.record(end);
        }
        if let Some(junit) = &mut self.junit {
            junit.record(end);
        }
        if let Some(html) = &mut self.html {
            html.record(end);
        }
    }

    /// Writes every report; returns those that could not be written.
    pub fn finish(self, totals: &RunTotals<'_>) -> Vec<(PathBuf, io::Error)> {
        let mut failed = Vec::new();
        let mut done = |path: Option<PathBuf>, result: io::Result<()>| {
            if let (Some(path), Err(error)) = (path, result) {
                failed.push((path, error));
            }
        };
        if let Some(markdown) = self.markdown {
            let path = self.paths.markdown.clone();
            done(path.clone(), markdown.finish(path.as_deref().unwrap_or(Path::new("")), totals));
        }
        if let Some(junit) = self.junit {
            let path = self.paths.junit.clone();
            done(path.clone(), junit.finish(path.as_deref().unwrap_or(Path::new("")), totals));
        }
        if let Some(html) = self.html {
            let path = self.paths.html.clone();
            done(path.clone(), html.finish(path.as_deref().unwrap_or(Path::new("")), totals));
        }
        failed
    }
}

/// Fails early when `path`'s directory does not exist or is no directory: better than
/// after the whole run.
fn check_writable(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if std::fs::metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::NotADirectory, "its directory is not a directory"))
    }
}

/// Control characters out (but tabs, which become spaces), for text that is not a
/// terminal's; used by every report before its own escaping.
pub fn without_controls(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            if c == '\t' {
                Some(' ')
            } else if c.is_control() {
                None
            } else {
                Some(c)
            }
        })
        .collect()
}

/// At most `max` characters of `text`, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Seconds with millisecond precision: `1.234`.
pub fn seconds(duration: Duration) -> String {
    format!("{}.{:03}", duration.as_secs(), duration.subsec_millis())
}
