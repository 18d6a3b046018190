//! The reporter: it owns stdout and stderr, and everything fanout shows or writes about
//! a run reaches its sinks from here: child lines through the writer thread
//! ([`writer`]), one account's output ([`account_output`]: prefixed lines, `--group`,
//! `--keep-order`, `--output-dir`), the JSON records, the progress bar, tables, the
//! summary, and the CI reports ([`ci`]). Other modules return text or emit events;
//! they never print.

pub mod account_output;
pub mod ci;
pub mod coverage;
pub mod dir;
pub mod ends;
pub mod export;
pub mod group;
pub mod json;
pub mod lines;
pub mod plans;
pub mod progress;
pub mod run_counts;
pub mod run_end;
pub mod summary;
pub mod tables;
pub mod writer;

use std::sync::Arc;

use crate::config::{Format, Order};
use crate::events::{Ended, Event, EventSink};
use crate::org::AccountFacts;
use crate::outcome::{ChildExit, FailureClass};
use crate::reporter::account_output::{AccountOutput, RunOutputs, Streams};
use crate::reporter::dir::OutputDir;
use crate::reporter::json::{AccountFields, ResultRecord};
use crate::reporter::lines::LineFormat;
use crate::reporter::progress::{Paused, Progress, Running};
use crate::reporter::run_counts::{Counted, RunCounts};
use crate::reporter::writer::{Output, Stream};

/// The runner's one handle on what is shown: every event, note and account's output
/// goes through it, and it decides what each becomes (a bar's tick, a line on stderr, a
/// JSON record, a file under `--output-dir`).
#[derive(Debug)]
pub struct Reporter {
    output: Output,
    progress: Progress,
    /// Where events go: the bar's counts and the summary's; shared with the portals.
    counts: Arc<RunCounts>,
    accounts: RunOutputs,
    format: Format,
}

impl Reporter {
    /// `keep_tails`: each account keeps the end of its stderr, for the CI reports.
    pub fn new(
        output: Output,
        progress: Progress,
        order: Order,
        dir: Option<Arc<OutputDir>>,
        format: Format,
        keep_tails: bool,
    ) -> Self {
        let accounts = RunOutputs::new(output.clone(), order, dir, keep_tails);
        let counts = Arc::new(RunCounts::new(progress.clone()));
        Reporter { output, progress, counts, accounts, format }
    }

    pub fn emit(&self, event: Event) {
        self.counts.emit(event);
    }

    /// A handle a stage emits its events through (the portal, its throttles).
    pub fn events(&self) -> Arc<dyn EventSink> {
        Arc::clone(&self.counts) as Arc<dyn EventSink>
    }

    /// What the run's events leave for the summary.
    pub fn counted(&self) -> Counted {
        self.counts.counted()
    }

    /// An account's command has started; it counts as running until the guard drops.
    pub fn command_started(&self) -> Running {
        self.progress.on_started()
    }

    /// Hides the progress bar while a prompt waits for its answer.
    pub fn pause(&self) -> Paused {
        self.progress.pause()
    }

    /// A note for the person running fanout (a warning, a skip, a prompt), on stderr.
    pub async fn say(&self, text: String) {
        self.output.send(Stream::Stderr, text.into_bytes()).await;
    }

    /// What the run shows as its result (a dry run's table), on stdout.
    pub async fn show(&self, bytes: Vec<u8>) {
        self.output.send(Stream::Stdout, bytes).await;
    }

    /// The output of the (account, region) selected `index`-th, named `key` under
    /// `--output-dir`; it must be [`AccountOutput::close`]d.
    pub fn account(&self, index: usize, key: &str) -> AccountOutput {
        self.accounts.account(index, key)
    }

    /// Where a command's lines go: `prefix|line` on stdout and stderr (a name's control
    /// characters escaped, so a name cannot forge a line), or with `--output json` line
    /// records on stdout.
    pub fn streams(&self, fields: AccountFields<'_>, prefix: &str) -> Streams {
        match self.format {
            Format::Json => {
                let format = |stream| LineFormat::Json(json::line_record_head(fields, stream));
                Streams {
                    stdout: (format(Stream::Stdout), Stream::Stdout),
                    stderr: (format(Stream::Stderr), Stream::Stdout),
                }
            }
            Format::Text => {
                let prefix = crate::text::show(prefix);
                Streams {
                    stdout: (LineFormat::prefixed(&prefix), Stream::Stdout),
                    stderr: (LineFormat::prefixed(&prefix), Stream::Stderr),
                }
            }
        }
    }

    /// An (account, region) has ended: its `result` record, on stdout with `--output json`
    /// (with its lines, in their order) and in `results.jsonl` with `--output-dir`.
    pub async fn account_ended(&self, sink: &mut AccountOutput, end: &Ended<'_>, login: &str, duration_ms: u64) {
        let dir = self.accounts.dir.as_deref();
        if self.format != Format::Json && dir.is_none() {
            return;
        }
        let trace = end.trace;
        let record = ResultRecord {
            version: json::VERSION,
            kind: "result",
            account_id: end.account_id,
            account_name: end.account_name,
            login,
            role: trace.role.as_deref(),
            region: end.child_region,
            status: end.outcome.status(end.dry_run),
            class: end.outcome.class().map(FailureClass::name),
            exit_code: trace.exit.as_ref().and_then(ChildExit::code),
            signal: trace.exit.as_ref().and_then(ChildExit::signal),
            duration_ms,
            error: end.outcome.error().map(str::to_owned),
            argv: trace.argv.as_deref().filter(|_| end.dry_run),
            ou_path: end.org.map(AccountFacts::ou_path),
            tags: end.org.map(|org| &org.tags),
        }
        .to_line();
        if let Some(dir) = dir {
            dir.write_record(&record);
        }
        if self.format == Format::Json {
            sink.record(Stream::Stdout, record).await;
        }
    }
}
