//! `fanout doctor`: the login checked end to end, on one screen.

use crate::config::Config;
use crate::doctor::{self, DoctorEnv};
use crate::reporter::progress::Progress;
use crate::reporter::writer::{self, Stream};
use crate::stop::Stopper;

use crate::reporter::run_end::with_output_failures;

/// `fanout doctor`: the report on stdout, through the writer like any output; its
/// exit code is that of the first problem found.
pub async fn run(config: &Config, stopper: &Stopper, progress: &Progress) -> u8 {
    let report = doctor::check(config, &DoctorEnv::real(), stopper.clone()).await;
    let (output, writer) = writer::start(config.stdout_is_terminal, progress.clone(), stopper.clone());
    output.send(Stream::Stdout, report.render().into_bytes()).await;
    drop(output);
    let end = writer.finish(None);
    with_output_failures(report.exit_code(), &end, true)
}
