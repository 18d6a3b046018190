//! The sole owner of stdout: one thread writes every record that children, the dry run,
//! the account list and the summary produce.
//!
//! Workers send whole records (complete `prefix|line\n` lines) over a bounded channel,
//! so a line is never torn or interleaved, and a slow reader slows the children instead
//! of filling memory. The thread holds a `BufWriter` and flushes whenever the channel
//! runs dry (fd's `ReceiverBuffer` trick), or after every record on a terminal.

use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

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
}

impl Output {
    /// An empty buffer to fill with complete lines, reused when one is free.
    pub fn buffer(&self) -> Vec<u8> {
        self.pool.lock().map(|mut pool| pool.pop()).ok().flatten().unwrap_or_default()
    }

    /// Queues complete lines for `stream`, waiting while the queue is full.
    pub async fn send(&self, stream: Stream, bytes: Vec<u8>) {
        // After the writer thread is gone nothing can be shown; dropping is right.
        let _ = self.sender.send(Record { stream, bytes }).await;
    }
}

/// How the writer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterEnd {
    Drained,
    /// Whoever read stdout closed it (`fanout ... | head`).
    StdoutClosed,
}

/// The writer thread; [`WriterHandle::finish`] waits for it once every [`Output`] is dropped.
pub struct WriterHandle(JoinHandle<WriterEnd>);

impl WriterHandle {
    pub fn finish(self) -> WriterEnd {
        self.0.join().unwrap_or(WriterEnd::StdoutClosed)
    }
}

/// Starts the writer. `on_stdout_closed` runs once, on the writer thread, when a write
/// to stdout fails (a closed pipe), so the caller can stop the children.
pub fn start(flush_every_record: bool, on_stdout_closed: impl FnOnce() + Send + 'static) -> (Output, WriterHandle) {
    let (sender, receiver) = mpsc::channel(QUEUE);
    let pool = BufferPool::default();
    let returned = Arc::clone(&pool);
    let thread = std::thread::Builder::new()
        .name("fanout-writer".to_owned())
        .spawn(move || write_all_records(receiver, &returned, flush_every_record, on_stdout_closed))
        .expect("spawn the writer thread");
    (Output { sender, pool }, WriterHandle(thread))
}

fn write_all_records(
    mut receiver: mpsc::Receiver<Record>,
    pool: &BufferPool,
    flush_every_record: bool,
    on_stdout_closed: impl FnOnce(),
) -> WriterEnd {
    let mut stdout = Some(BufWriter::with_capacity(64 * 1024, io::stdout().lock()));
    // stderr is not locked for the whole run: tracing writes log lines to it too.
    let mut stderr = BufWriter::with_capacity(16 * 1024, io::stderr());
    let mut on_closed = Some(on_stdout_closed);
    loop {
        let record = match receiver.try_recv() {
            Ok(record) => record,
            Err(mpsc::error::TryRecvError::Empty) => {
                let stdout_ok = flush(stdout.as_mut());
                let _ = stderr.flush();
                if !stdout_ok {
                    close_stdout(&mut stdout, &mut on_closed);
                }
                match receiver.blocking_recv() {
                    Some(record) => record,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        match (record.stream, stdout.as_mut()) {
            (Stream::Stdout, None) => {}
            (Stream::Stdout, Some(out)) => {
                let ok = out.write_all(&record.bytes).is_ok() && (!flush_every_record || out.flush().is_ok());
                if !ok {
                    close_stdout(&mut stdout, &mut on_closed);
                }
            }
            (Stream::Stderr, _) => {
                let _ = stderr.write_all(&record.bytes);
                if flush_every_record {
                    let _ = stderr.flush();
                }
            }
        }
        recycle(pool, record.bytes);
    }
    let stdout_ok = flush(stdout.as_mut());
    let _ = stderr.flush();
    if stdout_ok && on_closed.is_some() { WriterEnd::Drained } else { WriterEnd::StdoutClosed }
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

fn flush(stdout: Option<&mut BufWriter<io::StdoutLock<'static>>>) -> bool {
    stdout.is_none_or(|out| out.flush().is_ok())
}

/// Any failed write to stdout is treated as a closed pipe: there is no one left to read,
/// and ripgrep ends quietly in the same case. Later records are read and dropped so
/// that no sender blocks.
fn close_stdout(stdout: &mut Option<BufWriter<io::StdoutLock<'static>>>, on_closed: &mut Option<impl FnOnce()>) {
    if let Some(out) = stdout.take() {
        // The buffer's remains cannot be written either; forget them, not retry on drop.
        let _ = out.into_parts();
    }
    if let Some(notify) = on_closed.take() {
        notify();
    }
}
