//! `--group` and `--keep-order`: an account's output is held while its command runs and
//! printed whole when it ends, so the lines of one account stay together. With
//! `--keep-order` the groups also leave in selection order: a finished account waits
//! until every account selected before it has been printed.
//!
//! Held output stays in memory up to [`MEMORY_BOUND`] a stream, then spills to an
//! unnamed temp file (0600, gone when closed), so memory stays flat however much the
//! commands write; a group waiting for its turn is moved to disk whole. Only one group
//! is printed at a time, in chunks that end at a newline, so groups never interleave.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::sync::Mutex;

use crate::reporter::writer::{Output, Stream};

/// How much of one stream of one account is held in memory before it spills to disk.
pub const MEMORY_BOUND: usize = 512 * 1024;

/// How much of a spill file is read back at once.
const REPLAY_CHUNK: usize = 64 * 1024;

/// One writer stream's held records: the older ones in the spill file, the newer in memory.
#[derive(Debug, Default)]
struct HeldStream {
    memory: Vec<u8>,
    spill: Option<File>,
    /// Bytes in the spill file.
    spilled: u64,
    /// Spilling failed (a full disk): the rest stays in memory rather than be lost.
    spill_failed: bool,
}

impl HeldStream {
    fn push(&mut self, bytes: &[u8]) {
        self.memory.extend_from_slice(bytes);
        if self.memory.len() > MEMORY_BOUND {
            self.spill();
        }
    }

    /// Moves what memory holds to the spill file.
    fn spill(&mut self) {
        if self.memory.is_empty() || self.spill_failed {
            return;
        }
        if let Err(error) = self.try_spill() {
            tracing::warn!("cannot spill held output to a temp file ({error}); holding it in memory");
            self.spill_failed = true;
            // A write that failed halfway must not be printed twice.
            if let Some(file) = &self.spill {
                let _ = file.set_len(self.spilled);
            }
        }
    }

    fn try_spill(&mut self) -> io::Result<()> {
        let file = match &mut self.spill {
            Some(file) => file,
            None => self.spill.insert(tempfile::tempfile()?),
        };
        file.write_all(&self.memory)?;
        self.spilled += self.memory.len() as u64;
        // The capacity goes too: a waiting group must not keep its peak's memory.
        self.memory = Vec::new();
        Ok(())
    }

    /// Sends everything held to `stream`, the spill file first, in records that end at
    /// a newline (every held record does).
    async fn replay(self, output: &Output, stream: Stream) {
        let mut pending = Vec::new();
        if let Some(mut file) = self.spill
            && let Err(error) = replay_file(&mut file, self.spilled, output, stream, &mut pending).await
        {
            tracing::warn!("cannot read back held output from its temp file: {error}; some output is lost");
            pending.clear();
        }
        pending.extend_from_slice(&self.memory);
        output.send(stream, pending).await;
    }
}

async fn replay_file(
    file: &mut File,
    len: u64,
    output: &Output,
    stream: Stream,
    pending: &mut Vec<u8>,
) -> io::Result<()> {
    file.rewind()?;
    let mut reader = file.take(len);
    loop {
        let start = pending.len();
        pending.resize(start + REPLAY_CHUNK, 0);
        let read = reader.read(&mut pending[start..])?;
        pending.truncate(start + read);
        if read == 0 {
            return Ok(());
        }
        // Only whole lines leave: the rest waits for the next read.
        if let Some(newline) = memchr::memrchr(b'\n', &pending[start..]) {
            let rest = pending.split_off(start + newline + 1);
            output.send(stream, std::mem::replace(pending, rest)).await;
        }
    }
}

/// One account's output, held until it ends.
#[derive(Debug, Default)]
pub struct Held {
    stdout: HeldStream,
    stderr: HeldStream,
}

impl Held {
    /// Holds complete records for `stream`.
    pub fn push(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.push(bytes),
            Stream::Stderr => self.stderr.push(bytes),
        }
    }

    fn spill(&mut self) {
        self.stdout.spill();
        self.stderr.spill();
    }

    /// Prints it all: stdout's records, then stderr's (each keeps its stream; the order
    /// between the two streams is not observable apart from a terminal).
    async fn replay(self, output: &Output) {
        self.stdout.replay(output, Stream::Stdout).await;
        self.stderr.replay(output, Stream::Stderr).await;
    }
}

/// Prints held groups one at a time, in ticket order: selection order with
/// `--keep-order`, the order accounts end in with `--group`.
#[derive(Debug)]
pub struct Sequencer {
    output: Output,
    keep_order: bool,
    state: Mutex<SequencerState>,
}

#[derive(Debug, Default)]
struct SequencerState {
    /// The ticket to print next.
    next: usize,
    /// With `--group`: tickets handed out so far.
    ended: usize,
    /// Groups waiting for their turn, spilled.
    waiting: BTreeMap<usize, Held>,
    /// A task is printing groups: it prints those that arrive meanwhile too.
    printing: bool,
}

impl Sequencer {
    pub fn new(output: Output, keep_order: bool) -> Self {
        Sequencer { output, keep_order, state: Mutex::default() }
    }

    /// Takes the output of the account selected `index`-th (counting from 0), which has
    /// ended. Prints it now if its turn has come, with every group after it that is
    /// ready; else leaves it (on disk) to whoever prints the group before it. Every
    /// selected account must be delivered, or the later ones never print.
    pub async fn deliver(&self, index: usize, mut held: Held) {
        {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let ticket = if self.keep_order { index } else { state.ended };
            state.ended += 1;
            if state.printing || ticket != state.next {
                held.spill();
            }
            state.waiting.insert(ticket, held);
            if state.printing {
                return;
            }
            state.printing = true;
        }
        loop {
            let held = {
                let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let next = state.next;
                if let Some(held) = state.waiting.remove(&next) {
                    state.next += 1;
                    held
                } else {
                    state.printing = false;
                    return;
                }
            };
            held.replay(&self.output).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_output_past_the_bound_goes_to_disk() {
        let mut held = HeldStream::default();
        let line = [vec![b'a'; 999], b"\n".to_vec()].concat();
        for _ in 0..=MEMORY_BOUND / 1000 {
            held.push(&line);
        }
        assert!(held.memory.is_empty() && held.memory.capacity() == 0);
        assert_eq!(held.spilled, (MEMORY_BOUND / 1000 + 1) as u64 * 1000);
        held.push(b"last\n");
        assert_eq!(held.memory, b"last\n");
    }
}
