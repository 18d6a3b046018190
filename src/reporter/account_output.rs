//! One account's output, from its command's pipes to wherever it goes: split into
//! records (`lines.rs`), printed at once or held for `--group` / `--keep-order`
//! (`group.rs`), and copied raw into `--output-dir` (`dir.rs`).

use std::fs::File;
use std::io::Write as _;
use std::sync::Arc;

use crate::config::Order;
use crate::exec::{Pipe, PipeSink};
use crate::files::human_size;
use crate::reporter::ci::tail::StderrTail;
use crate::reporter::dir::OutputDir;
use crate::reporter::group::{Held, Sequencer};
use crate::reporter::lines::{LineFormat, LineSplitter, MAX_LINE};
use crate::reporter::writer::{Output, Stream};
use crate::text;

/// Where a command's stdout and stderr lines go, and in which form.
#[derive(Debug)]
pub struct Streams {
    pub stdout: (LineFormat, Stream),
    pub stderr: (LineFormat, Stream),
}

/// What every account's output shares in a run.
#[derive(Debug)]
pub struct RunOutputs {
    pub output: Output,
    sequencer: Option<Arc<Sequencer>>,
    pub dir: Option<Arc<OutputDir>>,
    /// Whether each account keeps the end of its stderr, for the CI reports.
    keep_tails: bool,
}

impl RunOutputs {
    pub fn new(output: Output, order: Order, dir: Option<Arc<OutputDir>>, keep_tails: bool) -> Self {
        let sequencer = match order {
            Order::Stream => None,
            Order::Group => Some(Arc::new(Sequencer::new(output.clone(), false))),
            Order::Selection => Some(Arc::new(Sequencer::new(output.clone(), true))),
        };
        RunOutputs { output, sequencer, dir, keep_tails }
    }

    /// The output of the account selected `index`-th; it must be [`AccountOutput::close`]d.
    pub fn account(&self, index: usize, account_id: &str) -> AccountOutput {
        AccountOutput {
            output: self.output.clone(),
            sequencer: self.sequencer.as_ref().map(|s| (Arc::clone(s), Held::default())),
            index,
            account_id: account_id.to_owned(),
            dir: self.dir.clone(),
            command: None,
            said_cut: false,
            spare: Vec::new(),
            tail: self.keep_tails.then(StderrTail::default),
        }
    }
}

/// The lines and files of the command an account runs.
#[derive(Debug)]
struct Command {
    splitters: [LineSplitter; 2],
    targets: [Stream; 2],
    files: [Option<File>; 2],
}

/// One account's output; see the module doc.
#[derive(Debug)]
pub struct AccountOutput {
    output: Output,
    /// With `--group` or `--keep-order`: where its output goes, and what is held so far.
    sequencer: Option<(Arc<Sequencer>, Held)>,
    index: usize,
    account_id: String,
    dir: Option<Arc<OutputDir>>,
    command: Option<Command>,
    /// A line longer than `MAX_LINE` was cut, and that was said.
    said_cut: bool,
    /// While output is held: the buffer records are split into, reused for every read.
    spare: Vec<u8>,
    /// For the CI reports: the end of the command's stderr.
    tail: Option<StderrTail>,
}

impl AccountOutput {
    /// Gets ready for the account's command: how its lines are formatted, and (with
    /// `--output-dir`) its files, created empty.
    pub fn start_command(&mut self, streams: Streams) {
        let files = match &self.dir {
            Some(dir) => match dir.account_files(&self.account_id) {
                Ok([stdout, stderr]) => [Some(stdout), Some(stderr)],
                Err(error) => {
                    dir.lost(&error, &self.account_id);
                    [None, None]
                }
            },
            None => [None, None],
        };
        let Streams { stdout: (out_format, out_stream), stderr: (err_format, err_stream) } = streams;
        self.command = Some(Command {
            splitters: [LineSplitter::new(out_format), LineSplitter::new(err_format)],
            targets: [out_stream, err_stream],
            files,
        });
    }

    /// Bytes the command wrote to `pipe`: copied to its file, and its complete lines sent.
    async fn bytes(&mut self, pipe: Pipe, bytes: &[u8]) {
        let Some(command) = &mut self.command else { return };
        if let (Pipe::Stderr, Some(tail)) = (pipe, &mut self.tail) {
            tail.push(bytes);
        }
        write_raw(&mut command.files[pipe.index()], bytes, self.dir.as_deref(), &self.account_id, pipe);
        let mut records = match self.sequencer {
            Some(_) => std::mem::take(&mut self.spare),
            None => self.output.buffer(),
        };
        records.reserve(bytes.len() + bytes.len() / 8);
        let splitter = &mut command.splitters[pipe.index()];
        splitter.push(bytes, &mut records);
        let (stream, cut) = (command.targets[pipe.index()], splitter.take_cut());
        if cut {
            self.say_cut().await;
        }
        self.send(stream, records).await;
    }

    /// `pipe` is closed (or will not be read again): its last line leaves, newline added.
    async fn closed(&mut self, pipe: Pipe) {
        let Some(command) = &mut self.command else { return };
        let mut records = Vec::new();
        command.splitters[pipe.index()].finish(&mut records);
        let stream = command.targets[pipe.index()];
        self.send(stream, records).await;
    }

    /// A record of fanout's about this account (its JSON `result`), printed with its lines.
    pub async fn record(&mut self, stream: Stream, bytes: Vec<u8>) {
        self.send(stream, bytes).await;
    }

    /// The end of the command's stderr, when the run keeps it (empty otherwise).
    pub fn stderr_tail(&self) -> String {
        self.tail.as_ref().map(StderrTail::text).unwrap_or_default()
    }

    /// The account has ended: its held output goes to be printed in its turn, and its
    /// files are closed.
    pub async fn close(self) {
        if let Some((sequencer, held)) = self.sequencer {
            sequencer.deliver(self.index, held).await;
        }
    }

    async fn send(&mut self, stream: Stream, bytes: Vec<u8>) {
        match &mut self.sequencer {
            Some((_, held)) => {
                held.push(stream, &bytes);
                // Kept for the next read, unless a giant line made it one.
                if bytes.capacity() <= 1024 * 1024 {
                    self.spare = bytes;
                    self.spare.clear();
                }
            }
            None => self.output.send(stream, bytes).await,
        }
    }

    /// Says once, on stderr and at once, that a line of this account's was cut.
    async fn say_cut(&mut self) {
        if std::mem::replace(&mut self.said_cut, true) {
            return;
        }
        let text = format!(
            "fanout: warning: account {} wrote a line longer than {}; it was cut\n",
            text::show(&self.account_id),
            human_size(MAX_LINE as u64)
        );
        self.output.send(Stream::Stderr, text.into_bytes()).await;
    }
}

impl PipeSink for AccountOutput {
    async fn pipe_bytes(&mut self, pipe: Pipe, bytes: &[u8]) {
        self.bytes(pipe, bytes).await;
    }

    async fn pipe_closed(&mut self, pipe: Pipe) {
        self.closed(pipe).await;
    }
}

/// Copies a command's bytes to its `--output-dir` file; a failed write closes the file
/// and marks the run's output as lost.
fn write_raw(file: &mut Option<File>, bytes: &[u8], dir: Option<&OutputDir>, account_id: &str, pipe: Pipe) {
    if let Some(open) = file
        && let Err(error) = open.write_all(bytes)
    {
        *file = None;
        if let Some(dir) = dir {
            dir.lost(&error, &format!("{account_id}/{}", pipe.name()));
        }
    }
}
