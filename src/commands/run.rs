//! A run in every selected account: the runner started with its reporter, the
//! credential server and the export as asked, then the summary, the reports, the
//! `summary` record and the exit code once it is over.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::config::{Config, Feedback, Format, RunPlan};
use crate::credserver::CredentialServer;
use crate::error::Error;
use crate::files::Unwritten;
use crate::reporter::Reporter;
use crate::reporter::dir::OutputDir;
use crate::reporter::export::ExportSink;
use crate::reporter::progress::Progress;
use crate::reporter::run_end::{self, RunEnd};
use crate::reporter::writer::{Output, Stream, WriterEnd};
use crate::runner::{self, AccountSource, Finished, Run, RunLogin};
use crate::stop::Stopper;

use super::{Connected, apply};

/// Runs the command in every selected account, its export finished, its plan saved and
/// its `summary` record sent. The output directory comes back with the result, so that
/// it is flushed (and its losses counted) whatever the result.
pub async fn everywhere(
    config: &Config,
    plan: RunPlan,
    connected: &[Connected],
    output: &Output,
    progress: &Progress,
    stopper: &Stopper,
    started: Instant,
) -> (Result<Finished, Error>, Option<Arc<OutputDir>>) {
    if plan.dry_run || config.verbosity > 0 {
        for each in connected {
            output.send(Stream::Stderr, each.cache.describe(&each.login, connected.len()).into_bytes()).await;
        }
    }
    let dir = match &plan.output_dir {
        Some(path) => match OutputDir::create(path) {
            Ok(dir) => Some(Arc::new(dir)),
            Err(error) => return (Err(error.into()), None),
        },
        None => None,
    };
    let finished = async {
        // The first login's region is the children's, unless they are given one.
        let login = &connected[0].login;
        let json = plan.format == Format::Json;
        let save_plan = plan.save_plan.clone();
        let credential_server = start_credential_server(&plan, connected, stopper).await?;
        let run_logins = connected.iter().map(|each| RunLogin::new(&each.login, Arc::clone(&each.portal))).collect();
        let keep_tails = plan.reports.any();
        let reporter =
            Reporter::new(output.clone(), progress.clone(), plan.order, dir.clone(), plan.format, keep_tails);
        let run = Run::new(plan, login, run_logins, reporter, stopper.clone())?;
        let run = Arc::new(with_export(run.with_credential_server(credential_server), output)?);
        let sources = connected
            .iter()
            .map(|each| AccountSource {
                cached_roles: each.cache.roles(config.inventory_ttl),
                writer: each.cache.writer(&each.login),
            })
            .collect();
        let finished = Box::pin(runner::run_everywhere(Arc::clone(&run), &config.selection, sources)).await;
        let mut finished = finish_export(run, stopper, output, finished).await?;
        if let Some(path) = save_plan {
            let text = apply::save(&path, &mut finished, login)?;
            output.send(Stream::Stderr, text.into_bytes()).await;
        }
        let elapsed = started.elapsed().saturating_sub(finished.tally.at_prompt);
        let (tally, unwritten) = (&finished.tally, &finished.unwritten);
        let to = (json.then_some(output), dir.as_deref());
        run_end::send_summary_record(tally, unwritten, stopper.received_signal(), elapsed, finished.dry_run, to).await;
        Ok(finished)
    };
    (Box::pin(finished).await, dir)
}

/// Once the run is over and its output drained: the portals' counts added, and the
/// rest is the reporter's (the reports, the summary, the exit code).
pub fn conclude(
    finished: Finished,
    config: &Config,
    connected: &[Connected],
    stopper: &Stopper,
    started: Instant,
    writer_end: &WriterEnd,
    dir_written: bool,
) -> u8 {
    let Finished { mut tally, dry_run, roles, reports, rejected_logins, unwritten, .. } = finished;
    tally.portal_calls = connected.iter().map(|each| each.portal.stats.calls.load(Ordering::Relaxed)).sum();
    // The run's duration leaves out the time its confirmation prompt waited.
    let elapsed = started.elapsed().saturating_sub(tally.at_prompt);
    run_end::conclude(RunEnd {
        tally,
        roles: &roles,
        dry_run,
        reports,
        rejected_logins: &rejected_logins,
        unwritten,
        elapsed,
        signal: stopper.received_signal(),
        verbose: config.verbosity > 0,
        quiet: config.feedback == Feedback::Quiet,
        writer_end,
        dir_written,
    })
}

/// `--credential-server`: bound before any account starts (a dry run starts nothing);
/// it stops when the run drops it.
async fn start_credential_server(
    plan: &RunPlan,
    connected: &[Connected],
    stopper: &Stopper,
) -> Result<Option<CredentialServer>, Error> {
    if !plan.credential_server || plan.dry_run {
        return Ok(None);
    }
    let portals = connected.iter().map(|each| Arc::clone(&each.portal)).collect();
    let max_connections = crate::credserver::connection_cap(plan.concurrency.bound());
    let started = CredentialServer::start(portals, stopper.clone(), max_connections).await;
    Ok(Some(started.map_err(|source| Error::Io { context: "cannot start the credential server", source })?))
}

/// `fanout credentials`: the run with its export sink, opened before any credentials
/// are fetched (an unwritable --output-file fails first).
fn with_export(run: Run, output: &Output) -> Result<Run, Error> {
    let Some(format) = run.export_format() else { return Ok(run) };
    let sink = ExportSink::open(format, output.clone()).map_err(|(path, source)| Error::Write { path, source })?;
    Ok(run.with_export(sink))
}

/// Writes the collected export (`--format json`) once the run is done, and says where
/// on stderr; a run that failed outright writes none (its temp file goes with it). A file
/// that cannot be written fails the run as any lost file does, with its summary still
/// printed. Ends the run, which holds an output handle: the writer drains once every
/// handle is gone.
async fn finish_export(
    run: Arc<Run>,
    stopper: &Stopper,
    output: &Output,
    mut finished: Result<Finished, Error>,
) -> Result<Finished, Error> {
    let (Ok(done), Some(export)) = (&mut finished, run.export()) else { return finished };
    match export.finish(stopper.is_stopping()).await {
        Ok(note) => output.send(Stream::Stderr, note.unwrap_or_default().into_bytes()).await,
        Err((path, error)) => done.unwritten.push(Unwritten { what: "credentials file", path, error }),
    }
    finished
}
