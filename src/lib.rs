//! fanout: run one command in every AWS account an IAM Identity Center login reaches.
//!
//! The modules stand in layers (docs/design.md); `commands/` wires them for each command.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod cache;
mod cli;
mod commands;
mod concurrency;
mod config;
mod confirm;
mod credentials;
mod credserver;
mod doctor;
mod error;
mod events;
mod exec;
mod exit_code;
mod files;
mod gate;
mod joblog;
mod limits;
mod login;
mod org;
mod organizations;
mod outcome;
pub mod plan;
mod portal;
mod rate;
mod regions;
mod reporter;
mod runner;
mod select;
mod settings;
mod shell_integration;
mod stop;
mod template;
pub mod text;
mod token;

use std::io::Write;
use std::process::ExitCode;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::Subcommands;
use crate::config::{Config, Environment};
use crate::reporter::tables::eprint_text;
use crate::shell_integration::Integration;

/// Parses the command line, runs, and maps the result to an exit code.
pub fn main() -> ExitCode {
    // The watchdog that kills the children of a fanout that died is this binary too.
    if exec::watchdog::is_requested(std::env::args_os()) {
        return exec::watchdog::serve();
    }
    // Help, version and usage errors leave here, before any file is read; then the
    // FANOUT_* variables and the config file fill in what no flag set.
    let layered = match settings::parse() {
        Ok(layered) => layered,
        Err(error) => {
            let error = error::Error::from(error);
            eprint_text(&error.line());
            return ExitCode::from(error.exit_code());
        }
    };
    if matches!(layered.cli.subcommand, Some(Subcommands::Config)) {
        return print_generated(layered.render().as_bytes());
    }
    let cli = layered.cli;
    // So do `completions` and `man`: they need no AWS config, HOME or token.
    if let Some(integration) = Integration::requested(&cli) {
        return print_generated(&integration.render());
    }
    init_logging(cli.verbose);
    let result = Config::from_cli(cli, &Environment::real()).map_err(error::Error::from).and_then(|config| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|source| error::Error::Io { context: "cannot start the async runtime", source })?;
        runtime.block_on(commands::run(config))
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprint_text(&error.line());
            ExitCode::from(error.exit_code())
        }
    }
}

/// Writes a generated script or page to stdout. A closed stdout (`fanout man | head`)
/// is a quiet 0, as for a run; another write error is reported, exit 1.
fn print_generated(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::from(exit_code::SUCCESS),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(exit_code::SUCCESS),
        Err(source) => {
            let error = error::Error::Io { context: "cannot write to standard output", source };
            eprint_text(&error.line());
            ExitCode::from(exit_code::ACCOUNT_FAILED)
        }
    }
}

/// `-v` shows fanout's retries and throttles, `-vv` every portal call, `-vvv` adds the
/// SDK's debug log. The SDK's trace level (which would log raw requests) is never on,
/// and `RUST_LOG` is not read, so no verbosity can reveal a token or a key.
fn init_logging(verbosity: u8) {
    let (ours, sdk) = match verbosity {
        0 => (LevelFilter::WARN, LevelFilter::OFF),
        1 => (LevelFilter::INFO, LevelFilter::OFF),
        2 => (LevelFilter::DEBUG, LevelFilter::WARN),
        _ => (LevelFilter::TRACE, LevelFilter::DEBUG),
    };
    let targets = Targets::new()
        .with_target("fanout", ours)
        .with_target("aws_config", sdk)
        .with_target("aws_smithy_runtime", sdk)
        .with_target("aws_sdk_sso", sdk);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).with_target(false);
    tracing_subscriber::registry().with(layer).with(targets).init();
}
