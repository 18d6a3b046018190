//! Stage 4: running the command in each account.

pub mod child;
pub mod env;
pub mod watchdog;

/// Where a command's output goes. The executor reads the pipes; what the bytes become
/// (prefixed lines, JSON records, held groups, files) is the reporter's, which
/// implements this, so the executor knows nothing of it.
pub trait PipeSink: Send {
    /// Bytes the command wrote to `pipe`, as one read got them.
    fn pipe_bytes(&mut self, pipe: Pipe, bytes: &[u8]) -> impl Future<Output = ()> + Send;

    /// `pipe` is closed, or will not be read again.
    fn pipe_closed(&mut self, pipe: Pipe) -> impl Future<Output = ()> + Send;
}

/// One of a command's two pipes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pipe {
    Stdout,
    Stderr,
}

impl Pipe {
    pub fn index(self) -> usize {
        match self {
            Pipe::Stdout => 0,
            Pipe::Stderr => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pipe::Stdout => "stdout",
            Pipe::Stderr => "stderr",
        }
    }
}
