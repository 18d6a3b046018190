//! The last few KiB of an account's stderr, kept while its command runs, for the CI
//! reports ("the last stderr line", "the tail of stderr"). Bounded, so memory stays flat
//! however much a command writes.

/// How much of the end of stderr is kept.
pub const TAIL_BYTES: usize = 4096;

/// The end of one command's stderr.
#[derive(Debug, Default)]
pub struct StderrTail {
    bytes: Vec<u8>,
    /// Bytes before the kept ones were dropped: the first kept line may be partial.
    cut: bool,
}

impl StderrTail {
    /// Takes in what the command wrote; keeps at most twice [`TAIL_BYTES`] between trims,
    /// so a trim (a copy) happens once per [`TAIL_BYTES`] written, not on every read.
    pub fn push(&mut self, bytes: &[u8]) {
        if bytes.len() >= TAIL_BYTES {
            self.bytes.clear();
            self.bytes.extend_from_slice(&bytes[bytes.len() - TAIL_BYTES..]);
            self.cut = true;
            return;
        }
        self.bytes.extend_from_slice(bytes);
        if self.bytes.len() > 2 * TAIL_BYTES {
            self.bytes.drain(..self.bytes.len() - TAIL_BYTES);
            self.cut = true;
        }
    }

    /// The kept text: at most [`TAIL_BYTES`], whole lines when some were dropped, invalid
    /// UTF-8 replaced, trailing blank lines removed.
    pub fn text(&self) -> String {
        let start = self.bytes.len().saturating_sub(TAIL_BYTES);
        let kept = &self.bytes[start..];
        let cut = self.cut || start > 0;
        // A dropped start leaves a partial first line: start after its end, if one is kept.
        let kept = match memchr::memchr(b'\n', kept) {
            Some(end) if cut && end + 1 < kept.len() => &kept[end + 1..],
            _ => kept,
        };
        String::from_utf8_lossy(kept).trim_end().to_owned()
    }
}

/// The last line of `tail` with any text on it.
pub fn last_line(tail: &str) -> &str {
    tail.lines().rev().map(str::trim_end).find(|line| !line.trim().is_empty()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_within_the_bound() {
        let mut tail = StderrTail::default();
        for i in 0..10_000 {
            tail.push(format!("line {i}\n").as_bytes());
        }
        let text = tail.text();
        assert!(text.len() <= TAIL_BYTES, "{}", text.len());
        assert!(text.starts_with("line "), "whole lines only: {text:.20}");
        assert_eq!(last_line(&text), "line 9999");
        let mut big = StderrTail::default();
        big.push(&vec![b'x'; 3 * TAIL_BYTES]);
        assert_eq!(big.text().len(), TAIL_BYTES);
    }

    #[test]
    fn the_last_line_skips_blank_ones() {
        assert_eq!(last_line("a\nboom  \n\n  \n"), "boom");
        assert_eq!(last_line(""), "");
    }
}
