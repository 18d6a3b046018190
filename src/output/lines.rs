//! Splits a child's output bytes into records: `prefix|line\n`, or with `--output json`
//! one JSON object a line (see `json.rs`).
//!
//! Bytes pass through unchanged (no UTF-8 decoding); a line is emitted only once its
//! newline has arrived, so a record never holds half a line, and the unfinished tail
//! waits for the next chunk or for EOF, when it gets its newline.

/// A child line longer than this is cut into records of this size, each prefixed, so a
/// child that never prints a newline cannot exhaust memory.
pub const MAX_LINE: usize = 1024 * 1024;

/// How each line of a stream becomes a record.
#[derive(Debug)]
pub enum LineFormat {
    /// `prefix|line\n`; holds the rendered prefix and its `|`.
    Prefixed(Vec<u8>),
    /// A JSON line record; holds its start, up to the `"line":` key (see `json.rs`).
    Json(Vec<u8>),
}

impl LineFormat {
    pub fn prefixed(prefix: &str) -> Self {
        let mut bytes = Vec::with_capacity(prefix.len() + 1);
        bytes.extend_from_slice(prefix.as_bytes());
        bytes.push(b'|');
        LineFormat::Prefixed(bytes)
    }

    /// Appends the record of `line` (without its newline) to `out`.
    fn emit(&self, line: &[u8], out: &mut Vec<u8>) {
        match self {
            LineFormat::Prefixed(prefix) => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            LineFormat::Json(head) => {
                out.extend_from_slice(head);
                super::json::finish_line_record(line, out);
            }
        }
    }
}

/// The line splitter for one of a child's streams.
#[derive(Debug)]
pub struct LineSplitter {
    format: LineFormat,
    /// The start of a line whose newline has not arrived yet.
    partial: Vec<u8>,
}

impl LineSplitter {
    pub fn new(format: LineFormat) -> Self {
        LineSplitter { format, partial: Vec::new() }
    }

    /// Appends to `out` the record of every line that `chunk` completes.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        while let Some(newline) = memchr::memchr(b'\n', chunk) {
            if self.partial.is_empty() {
                self.format.emit(&chunk[..newline], out);
            } else {
                self.partial.extend_from_slice(&chunk[..newline]);
                self.format.emit(&self.partial, out);
                self.partial.clear();
            }
            chunk = &chunk[newline + 1..];
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() >= MAX_LINE {
            self.finish(out);
        }
    }

    /// At EOF: a last line with no newline still leaves, with one added.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            self.format.emit(&self.partial, out);
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_in_chunks(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut splitter = LineSplitter::new(LineFormat::prefixed("acct"));
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            splitter.push(piece, &mut out);
        }
        splitter.finish(&mut out);
        out
    }

    #[test]
    fn prefixes_every_line_and_ends_the_last() {
        assert_eq!(split_in_chunks(b"one\ntwo\nthree", 100), b"acct|one\nacct|two\nacct|three\n");
        assert_eq!(split_in_chunks(b"\n\n", 100), b"acct|\nacct|\n");
        assert_eq!(split_in_chunks(b"", 100), b"");
    }

    #[test]
    fn the_same_lines_come_out_however_the_input_is_chunked() {
        let input: Vec<u8> =
            (0..2000u32).flat_map(|i| [format!("line {i} \u{e9}").as_bytes(), b"\xff\n"].concat()).collect();
        let whole = split_in_chunks(&input, input.len());
        for chunk in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(split_in_chunks(&input, chunk), whole, "chunk size {chunk}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through() {
        assert_eq!(split_in_chunks(b"\xff\xfe\n", 1), b"acct|\xff\xfe\n");
    }

    #[test]
    fn an_endless_line_is_cut_not_hoarded() {
        let mut splitter = LineSplitter::new(LineFormat::prefixed("a"));
        let mut out = Vec::new();
        splitter.push(&vec![b'x'; MAX_LINE + 10], &mut out);
        assert_eq!(out.len(), 2 + MAX_LINE + 10 + 1);
        assert!(splitter.partial.is_empty());
    }
}
