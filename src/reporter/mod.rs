//! The reporter: it owns stdout and stderr, and everything fanout shows or writes about
//! a run reaches its sinks from here: child lines through the writer thread
//! ([`writer`]), one account's output ([`account_output`]: prefixed lines, `--group`,
//! `--keep-order`, `--output-dir`), the JSON records, the progress bar, tables, the
//! summary, and the CI reports ([`ci`]). Other modules return text or emit events;
//! they never print.

pub mod account_output;
pub mod ci;
pub mod dir;
pub mod group;
pub mod json;
pub mod lines;
pub mod progress;
pub mod summary;
pub mod tables;
pub mod writer;
