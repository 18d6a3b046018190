//! The sole owner of stdout: one thread writes every record that children, the dry run,
//! the account list and the summary produce.
//!
//! Workers send whole records (complete `prefix|line\n` lines) over a bounded channel,
//! so a line is never torn or interleaved, and a slow reader slows the children instead
//! of filling memory. The thread holds a `BufWriter` and flushes whenever the channel
//! runs dry (fd's `ReceiverBuffer` trick), or after every record on a terminal.
//!
//! With a progress bar on the terminal, every record bound for the terminal is written
//! inside the bar's [`Progress::suspend`], flushed there with whatever else is queued for
//! the terminal, so the bar is cleared before the lines and redrawn below them, once a
//! batch. Stdout to a pipe or file is written outside it: a slow reader never holds the bar.
//!
//! A closed pipe (EPIPE) on stdout is a reader that has all it wanted: quiet. Any other
//! write error (a full disk, an I/O error) loses output, so it stops the run and is
//! reported with a failing exit code, as is a failed write to stderr.

use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::reporter::progress::Progress;
use crate::stop::Stopper;

/// Records in flight between the children and the writer; each holds one read's worth
/// of lines (at most 64 KiB plus prefixes), which bounds the memory output can take
/// whatever the children write.
const QUEUE: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug)]
struct Record {
    stream: Stream,
    bytes: Vec<u8>,
}

/// Written records' buffers, handed back for the next record: the hot path reuses a
/// few dozen allocations instead of making one per read.
type BufferPool = Arc<Mutex<Vec<Vec<u8>>>>;

/// A cheap handle for sending records; clone one per task.
#[derive(Clone, Debug)]
pub struct Output {
    sender: mpsc::Sender<Record>,
    pool: BufferPool,
    stopper: Stopper,
}

impl Output {
    /// An empty buffer to fill with complete lines, reused when one is free.
    pub fn buffer(&self) -> Vec<u8> {
        self.pool.lock().map(|mut pool| pool.pop()).ok().flatten().unwrap_or_default()
    }

    /// Queues complete lines for `stream`, waiting while the queue is full, but not past
    /// the killing of a stopped run: a reader that stopped reading must not hold fanout.
    pub async fn send(&self, stream: Stream, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        // After the writer thread is gone nothing can be shown; dropping is right.
        tokio::select! {
            _ = self.sender.send(Record { stream, bytes }) => {}
            () = self.stopper.killed() => {}
        }
    }
}

/// How the writer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterEnd {
    pub stdout: StdoutEnd,
    /// A write to stderr failed: the summary or a child's error lines may be lost.
    pub stderr_failed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StdoutEnd {
    Drained,
    /// Whoever read stdout closed it (`fanout ... | head`).
    Closed,
    /// A write failed otherwise (a full disk, say): output was lost.
    Failed(String),
    /// The run was stopped while stdout was blocked (its reader stopped reading).
    Blocked,
}

/// The writer thread; [`WriterHandle::finish`] waits for it once every [`Output`] is dropped.
pub struct WriterHandle(std::sync::mpsc::Receiver<WriterEnd>);

impl WriterHandle {
    /// Waits for the writer to drain, or for at most `patience` (a stopped run whose
    /// reader does not read must still end).
    pub fn finish(self, patience: Option<Duration>) -> WriterEnd {
        let blocked = WriterEnd { stdout: StdoutEnd::Blocked, stderr_failed: false };
        match patience {
            Some(patience) => self.0.recv_timeout(patience).unwrap_or(blocked),
            None => self.0.recv().unwrap_or(blocked),
        }
    }
}

/// Starts the writer. A failed write to stdout stops the run through `stopper`, so the
/// children do not go on writing into the void. `stdout_is_terminal` flushes every
/// record; `progress` is the bar the records are written under.
pub fn start(stdout_is_terminal: bool, progress: Progress, stopper: Stopper) -> (Output, WriterHandle) {
    let (sender, receiver) = mpsc::channel(QUEUE);
    let pool = BufferPool::default();
    let returned = Arc::clone(&pool);
    let (done, ended) = std::sync::mpsc::sync_channel(1);
    let on_stdout_lost = {
        let stopper = stopper.clone();
        move || stopper.stop(libc::SIGTERM)
    };
    std::thread::Builder::new()
        .name("fanout-writer".to_owned())
        .spawn(move || {
            let end = write_all_records(receiver, &returned, stdout_is_terminal, &progress, on_stdout_lost);
            let _ = done.send(end);
        })
        .expect("spawn the writer thread");
    (Output { sender, pool, stopper }, WriterHandle(ended))
}

fn write_all_records(
    mut receiver: mpsc::Receiver<Record>,
    pool: &BufferPool,
    stdout_is_terminal: bool,
    progress: &Progress,
    on_stdout_lost: impl FnOnce(),
) -> WriterEnd {
    let mut sinks = Sinks {
        stdout: StdoutSlot { out: Some(BufWriter::with_capacity(64 * 1024, io::stdout().lock())), end: None },
        // stderr is not locked for the whole run: tracing writes log lines to it too.
        stderr: BufWriter::with_capacity(16 * 1024, io::stderr()),
        stderr_failed: false,
        on_lost: Some(on_stdout_lost),
        stdout_is_terminal,
    };
    let under_bar = |record: &Record| progress.is_shown() && sinks_reach_terminal(record.stream, stdout_is_terminal);
    let mut next = None;
    loop {
        let record = match next.take().map_or_else(|| receiver.try_recv(), Ok) {
            Ok(record) => record,
            Err(mpsc::error::TryRecvError::Empty) => {
                sinks.flush();
                match receiver.blocking_recv() {
                    Some(record) => record,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        if under_bar(&record) {
            next = progress.suspend(|| {
                sinks.write(record, false, pool);
                let left = drain_for_terminal(&mut receiver, &mut sinks, pool, under_bar);
                sinks.flush_terminal();
                left
            });
        } else {
            sinks.write(record, stdout_is_terminal, pool);
        }
    }
    sinks.flush();
    WriterEnd { stdout: sinks.stdout.end.unwrap_or(StdoutEnd::Drained), stderr_failed: sinks.stderr_failed }
}

/// Whether records of `stream` show on the terminal the bar is drawn on.
fn sinks_reach_terminal(stream: Stream, stdout_is_terminal: bool) -> bool {
    stream == Stream::Stderr || stdout_is_terminal
}

/// Writes what is already queued for the terminal, up to a queue's worth (so a flood
/// still lets the bar be drawn now and then); returns the first record that is not.
fn drain_for_terminal(
    receiver: &mut mpsc::Receiver<Record>,
    sinks: &mut Sinks<impl FnOnce()>,
    pool: &BufferPool,
    for_terminal: impl Fn(&Record) -> bool,
) -> Option<Record> {
    for _ in 1..QUEUE {
        match receiver.try_recv() {
            Ok(record) if for_terminal(&record) => sinks.write(record, false, pool),
            Ok(record) => return Some(record),
            Err(_) => return None,
        }
    }
    None
}

/// Both streams, and how writing to them has gone.
struct Sinks<L: FnOnce()> {
    stdout: StdoutSlot,
    stderr: BufWriter<io::Stderr>,
    stderr_failed: bool,
    on_lost: Option<L>,
    stdout_is_terminal: bool,
}

impl<L: FnOnce()> Sinks<L> {
    fn write(&mut self, record: Record, flush: bool, pool: &BufferPool) {
        match record.stream {
            Stream::Stdout => self.stdout.write(&record.bytes, flush, &mut self.on_lost),
            Stream::Stderr => {
                self.stderr_failed |=
                    self.stderr.write_all(&record.bytes).is_err() || (flush && self.stderr.flush().is_err());
            }
        }
        recycle(pool, record.bytes);
    }

    fn flush(&mut self) {
        self.stdout.flush(&mut self.on_lost);
        self.stderr_failed |= self.stderr.flush().is_err();
    }

    /// Flushes what shows on the terminal, before the bar is drawn again below it.
    fn flush_terminal(&mut self) {
        if self.stdout_is_terminal {
            self.stdout.flush(&mut self.on_lost);
        }
        self.stderr_failed |= self.stderr.flush().is_err();
    }
}

/// Stdout while it works, and how it stopped working.
struct StdoutSlot {
    out: Option<BufWriter<io::StdoutLock<'static>>>,
    end: Option<StdoutEnd>,
}

impl StdoutSlot {
    fn write(&mut self, bytes: &[u8], flush: bool, on_lost: &mut Option<impl FnOnce()>) {
        if let Some(out) = self.out.as_mut() {
            let result = out.write_all(bytes).and_then(|()| if flush { out.flush() } else { Ok(()) });
            if let Err(error) = result {
                self.lose(&error, on_lost);
            }
        }
    }

    fn flush(&mut self, on_lost: &mut Option<impl FnOnce()>) {
        if let Some(Err(error)) = self.out.as_mut().map(Write::flush) {
            self.lose(&error, on_lost);
        }
    }

    /// Stops writing: quietly for a closed pipe (there is no one left to read, and
    /// ripgrep ends quietly too), as a failure for anything else. Later records are
    /// read and dropped so that no sender blocks.
    fn lose(&mut self, error: &io::Error, on_lost: &mut Option<impl FnOnce()>) {
        if let Some(out) = self.out.take() {
            // The buffer's remains cannot be written either; forget them, not retry on drop.
            let _ = out.into_parts();
        }
        self.end = Some(if error.kind() == io::ErrorKind::BrokenPipe {
            StdoutEnd::Closed
        } else {
            StdoutEnd::Failed(error.to_string())
        });
        if let Some(notify) = on_lost.take() {
            notify();
        }
    }
}

/// Hands a written buffer back, unless the pool is full or the buffer was a rare giant.
fn recycle(pool: &BufferPool, mut buffer: Vec<u8>) {
    if buffer.capacity() > 256 * 1024 {
        return;
    }
    buffer.clear();
    if let Ok(mut pool) = pool.lock()
        && pool.len() < QUEUE
    {
        pool.push(buffer);
    }
}
