//! Splits a child's output bytes into records: `prefix|line\n`, or with `--output json`
//! one JSON object a line (see `json.rs`).
//!
//! Bytes pass through unchanged (no UTF-8 decoding); a line is emitted only once its
//! newline has arrived, so a record never holds half a line, and the unfinished tail
//! waits for the next chunk or for EOF, when it gets its newline.

/// A child line longer than this is cut into records of this size, each prefixed, so a
/// child that never prints a newline cannot exhaust memory. Lines up to it stay whole:
/// a minified JSON document or a base64 blob is one line, and a tool reading fanout's
/// output must get it as one.
pub const MAX_LINE: usize = 64 * 1024 * 1024;

/// What the buffer of an unfinished line keeps between lines: past this, a long line's
/// buffer is given back once the line has left, so memory follows the output's shape
/// only while a long line is being read.
const KEPT_CAPACITY: usize = 1024 * 1024;

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

    /// Appends the record of `line` (without its newline) to `out`; `cut`: the line is a
    /// piece of one longer than [`MAX_LINE`], which a JSON record says.
    fn emit(&self, line: &[u8], cut: bool, out: &mut Vec<u8>) {
        match self {
            LineFormat::Prefixed(prefix) => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            LineFormat::Json(head) => {
                out.extend_from_slice(head);
                super::json::finish_line_record(line, cut, out);
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
    /// The line being read was cut already: its next pieces are marked too.
    cutting: bool,
    /// A line was cut since the last [`LineSplitter::take_cut`].
    cut_seen: bool,
}

impl LineSplitter {
    pub fn new(format: LineFormat) -> Self {
        LineSplitter { format, partial: Vec::new(), cutting: false, cut_seen: false }
    }

    /// Appends to `out` the record of every line that `chunk` completes.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        while let Some(newline) = memchr::memchr(b'\n', chunk) {
            let line = self.cut_overflow(&chunk[..newline], out);
            if self.partial.is_empty() {
                self.format.emit(line, self.cutting, out);
            } else {
                self.partial.extend_from_slice(line);
                self.format.emit(&self.partial, self.cutting, out);
                self.clear_partial();
            }
            self.cutting = false;
            chunk = &chunk[newline + 1..];
        }
        let rest = self.cut_overflow(chunk, out);
        self.partial.extend_from_slice(rest);
    }

    /// Emits, marked as cut, every [`MAX_LINE`] bytes of the current line that `bytes`
    /// would carry past the bound, and returns what is left of `bytes`. The cuts fall at
    /// the same bytes however the output was chunked.
    fn cut_overflow<'b>(&mut self, mut bytes: &'b [u8], out: &mut Vec<u8>) -> &'b [u8] {
        while self.partial.len() + bytes.len() > MAX_LINE {
            let (head, tail) = bytes.split_at(MAX_LINE - self.partial.len());
            if self.partial.is_empty() {
                self.format.emit(head, true, out);
            } else {
                self.partial.extend_from_slice(head);
                self.format.emit(&self.partial, true, out);
                self.clear_partial();
            }
            self.cutting = true;
            self.cut_seen = true;
            bytes = tail;
        }
        bytes
    }

    fn clear_partial(&mut self) {
        if self.partial.capacity() > KEPT_CAPACITY {
            self.partial = Vec::new();
        } else {
            self.partial.clear();
        }
    }

    /// Whether a line was cut since the last call: the caller says so once.
    pub fn take_cut(&mut self) -> bool {
        std::mem::take(&mut self.cut_seen)
    }

    /// At EOF: a last line with no newline still leaves, with one added.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            self.format.emit(&self.partial, self.cutting, out);
            self.clear_partial();
        }
        self.cutting = false;
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
    fn an_endless_line_is_cut_at_the_bound_not_hoarded() {
        let mut splitter = LineSplitter::new(LineFormat::prefixed("a"));
        let mut out = Vec::new();
        splitter.push(&vec![b'x'; MAX_LINE + 10], &mut out);
        assert_eq!(out.len(), 2 + MAX_LINE + 1, "the first piece leaves at once");
        assert_eq!(splitter.partial.len(), 10);
        assert!(splitter.take_cut());
        assert!(!splitter.take_cut(), "said once");
        splitter.push(b"yy\nz\n", &mut out);
        assert_eq!(out.len(), (2 + MAX_LINE + 1) + (2 + 12 + 1) + 4);
        assert!(out.ends_with(b"a|xxxxxxxxxxyy\na|z\n"));
    }

    #[test]
    fn a_line_past_the_bound_is_cut_the_same_however_it_is_chunked() {
        let mut input = vec![b'x'; MAX_LINE + 5];
        input.extend_from_slice(b"\nshort\n");
        let whole = split_in_chunks(&input, input.len());
        assert_eq!(whole.len(), (5 + MAX_LINE + 1) + (5 + 5 + 1) + (5 + 5 + 1), "acct|: five bytes");
        assert_eq!(split_in_chunks(&input, 1 << 16), whole);
        assert_eq!(split_in_chunks(&input, MAX_LINE - 3), whole);
    }

    #[test]
    fn a_long_line_under_the_bound_stays_whole() {
        let input = [vec![b'y'; 3 * 1024 * 1024], b"\n".to_vec()].concat();
        let out = split_in_chunks(&input, 65536);
        assert_eq!(out.len(), 5 + 3 * 1024 * 1024 + 1);
        assert_eq!(memchr::memchr_iter(b'\n', &out).count(), 1);
    }

    #[test]
    fn json_records_of_a_cut_line_say_so() {
        let fields = super::super::json::AccountFields {
            account_id: "111122223333",
            account_name: "n",
            role: "R",
            region: "eu-west-1",
        };
        let head = super::super::json::line_record_head(fields, crate::reporter::writer::Stream::Stdout);
        let mut splitter = LineSplitter::new(LineFormat::Json(head));
        let mut out = Vec::new();
        splitter.push(&[vec![b'x'; MAX_LINE + 1], b"\nok\n".to_vec()].concat(), &mut out);
        let records: Vec<serde_json::Value> =
            out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        assert_eq!(records.len(), 3);
        assert_eq!((&records[0]["cut"], &records[1]["cut"]), (&true.into(), &true.into()));
        assert_eq!(records[1]["line"], "x");
        assert!(records[2].get("cut").is_none());
    }
}
